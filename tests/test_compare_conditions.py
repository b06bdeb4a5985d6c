"""physnn compare checks the samples' conditions (particles, energy, impact point) and can match them (--match)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from physnn.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def unlike(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A reference of e- and pi+; candidates of e- only (two seeds), of e- at 20-50 GeV, and of photons only."""
    import physnn

    folder = tmp_path_factory.mktemp("unlike")
    files = {"ref": ({"particles": ["e-", "pi+"]}, 1000, 21), "electrons": ({"particles": ["e-"]}, 600, 22),
             "electrons2": ({"particles": ["e-"]}, 500, 25),
             "narrow": ({"particles": ["e-"], "energy_min": 20.0, "energy_max": 50.0}, 400, 23),
             "photons": ({"particles": ["gamma"]}, 200, 24),
             "positive": ({"particles": ["e-"], "suppression": "positive", "threshold_sigma": 2.0}, 500, 26)}
    for name, (config, events, seed) in files.items():
        physnn.simulate("showers", folder / f"{name}.root", events=events, seed=seed, config=config)
    return {name: folder / f"{name}.root" for name in files}


def test_unlike_particles_are_reported(unlike, tmp_path):
    """e- and pi+ against e- only: the result and metrics.json say which particle type is in one sample only."""
    import physnn

    result = physnn.compare(unlike["ref"], unlike["electrons"], out=tmp_path / "r", classifier=[])
    cond = result.conditions
    assert cond["matched"] is False
    assert any("pi+ only in the reference" in d for d in cond["differences"]), cond["differences"]
    ref = cond["reference"]["particles"]
    assert set(ref) == {"e-", "pi+"}
    assert sum(p["count"] for p in ref.values()) == 1000
    assert cond["candidate"]["particles"] == {"e-": {"count": 600, "fraction": 1.0}}
    assert not any(d.startswith("energy") for d in cond["differences"])  # same 1-100 GeV spectrum
    stored = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert stored["conditions"]["matched"] is False
    assert stored["conditions"]["differences"] == cond["differences"]


def test_unlike_energy_range_is_reported_and_matched(unlike):
    """1-100 GeV against 20-50 GeV: ranges and a KS p-value; --match keeps the reference inside 20-50 GeV."""
    import physnn

    result = physnn.compare(unlike["ref"], unlike["narrow"], classifier=[])
    energy = result.conditions["tests"]["energy"]
    assert energy["ks_pvalue"] < 1e-6
    assert any(d.startswith("energy") for d in result.conditions["differences"])
    assert result.conditions["reference"]["energy"]["max"] > 90
    assert 20 <= result.conditions["candidate"]["energy"]["min"] < 21

    matched = physnn.compare(unlike["ref"], unlike["narrow"], classifier=[], match=True)
    match = matched.conditions["match"]
    assert match["of"] == 1000
    # about half the reference is e-, and 30/99 of those are within 20-50 GeV
    assert 100 < match["kept"] < 220
    assert matched.events["reference"] == match["kept"]
    ref = matched.conditions["reference"]
    assert set(ref["particles"]) == {"e-"}
    cand = matched.conditions["candidate"]["energy"]
    assert cand["min"] <= ref["energy"]["min"]
    assert ref["energy"]["max"] <= cand["max"]
    assert matched.conditions["matched"] is True, matched.conditions["differences"]


def test_match_removes_the_particle_difference_from_the_auc(unlike):
    """Unmatched, the classifier finds the pions (AUC ~0.75); matched to e- only it cannot tell (AUC ~0.5)."""
    import physnn

    plain = physnn.compare(unlike["ref"], unlike["electrons"], classifier=["high"], seed=0)
    matched = physnn.compare(unlike["ref"], unlike["electrons"], classifier=["high"], seed=0, match=True)
    assert matched.conditions["matched"] is True
    assert set(matched.conditions["reference"]["particles"]) == {"e-"}
    assert 400 < matched.conditions["match"]["kept"] < 600
    auc_plain, auc_matched = plain.classifier["high"]["auc"], matched.classifier["high"]["auc"]
    assert auc_plain > 0.68, plain.classifier
    assert auc_matched < 0.62, matched.classifier
    assert auc_plain - auc_matched > 0.1


def test_identical_conditions_give_no_warning(unlike, tmp_path):
    """Two samples simulated with the same settings (other seeds): all four conditions compared, no warning."""
    import physnn

    result = physnn.compare(unlike["electrons"], unlike["electrons2"], classifier=[])
    assert result.conditions["matched"] is True
    assert result.conditions["differences"] == []
    assert result.conditions["checked"] == ["particles", "energy", "x0", "y0", "readout"]
    assert min(t["ks_pvalue"] for k, t in result.conditions["tests"].items() if k != "particles") > 1e-3
    res = runner.invoke(app, ["compare", str(unlike["electrons"]), str(unlike["electrons2"]), "--classifier", "none",
                              "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output.lower()
    assert "conditions match" in res.output


def test_an_unlike_readout_is_reported(unlike, tmp_path):
    """Same particles and ranges, but one file suppresses E > 2 sigma and the other |E| > 3 sigma: the cells hit
    and the soft showers' energy differ whatever a generator does, so the comparison says so."""
    import physnn

    result = physnn.compare(unlike["electrons"], unlike["positive"], classifier=[])
    assert result.conditions["matched"] is False
    assert "readout" in result.conditions["checked"]
    assert result.conditions["differences"] == [
        "readout: zero suppression |E| > 0.03 in the reference, E > 0.02 in the candidate"]
    res = runner.invoke(app, ["compare", str(unlike["electrons"]), str(unlike["positive"]), "--classifier", "none",
                              "--out", str(tmp_path / "r")], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "warning: the samples were made under different conditions" in res.output
    assert "|E| > 0.03 in the reference" in res.output
    assert "--match cannot remove a different readout" in " ".join(res.output.split())


def test_cli_warns_about_unlike_samples_and_matches(unlike, tmp_path):
    args = ["compare", str(unlike["ref"]), str(unlike["electrons"]), "--classifier", "high", "--max-events", "400"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "r1")])
    assert res.exit_code == 0, res.output
    assert "warning: the samples were made under different conditions" in res.output
    assert "pi+ only in the reference" in res.output
    assert "--match" in res.output
    # the warning is repeated next to the AUC, so that nobody reads one without the other
    assert res.output.rindex("warning") > res.output.index("classifier AUC")

    res = runner.invoke(app, [*args, "--match", "--out", str(tmp_path / "r2")])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.output.lower()
    stored = json.loads((tmp_path / "r2" / "metrics.json").read_text())
    kept = stored["conditions"]["match"]["kept"]
    assert f"kept {kept:,} of 1,000 reference showers" in res.output


def test_match_with_nothing_left_is_one_error_line(unlike, tmp_path):
    out = tmp_path / "r"
    res = runner.invoke(app, ["compare", str(unlike["ref"]), str(unlike["photons"]), "--match", "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error:")
    assert "none of the 1,000 reference showers" in res.output
    assert "gamma" in res.output
    assert not out.exists()


def test_match_without_shared_conditions_is_an_error(unlike, write_root, tmp_path):
    """A file with images only: the conditions cannot be compared (noted), and --match says why it cannot match."""
    import uproot

    import physnn
    from physnn.errors import ConfigError

    arrays = uproot.open(unlike["electrons"])["showers"].arrays(["image"], library="np")
    bare = write_root({"image": arrays["image"]}, name="bare.root", tree="showers")
    result = physnn.compare(unlike["ref"], bare, classifier=[], energy=None)
    assert result.conditions["checked"] == []
    assert result.conditions["matched"] is None
    assert any("pdgid" in note for note in result.conditions["unchecked"])
    with pytest.raises(ConfigError, match="--match"):
        physnn.compare(unlike["ref"], bare, classifier=[], energy=None, match=True)


def test_compare_conditions_particle_proportions():
    """Same particle types in other proportions is a difference too (chi-square test); label is the fallback."""
    from physnn.evaluation.conditions import compare_conditions

    rng = np.random.default_rng(5)
    even = {"pdgid": rng.choice([11, 22], size=2000), "energy": rng.uniform(1, 100, 2000)}
    skewed = {"pdgid": rng.choice([11, 22], size=2000, p=[0.9, 0.1]), "energy": rng.uniform(1, 100, 2000)}
    report = compare_conditions(even, skewed)
    assert report["matched"] is False
    assert report["tests"]["particles"]["chi2_pvalue"] < 1e-6
    assert any("proportions" in d for d in report["differences"])
    same = compare_conditions(even, {"pdgid": rng.choice([11, 22], size=2000),
                                     "energy": rng.uniform(1, 100, 2000)})
    assert same["matched"] is True, same["differences"]
    labels = compare_conditions({"label": np.array([0, 1] * 50)}, {"label": np.zeros(80, int)})
    assert any("label 1 only in the reference" in d for d in labels["differences"])
