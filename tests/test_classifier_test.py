"""The CaloChallenge classifier test: calibrated AUC and JSD on a held-out split, per particle type."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
from typer.testing import CliRunner

from physnn.cli import app
from physnn.evaluation.classifier_test import CHALLENGE, ClassifierSpec, _network, classifier_test

runner = CliRunner()
SMALL = ClassifierSpec(width=64, layers=2, epochs=40, batch_size=64, lr=1e-3, patience=8)


def test_two_halves_of_one_sample_are_indistinguishable():
    x = np.random.default_rng(3).normal(size=(6000, 8))
    result = classifier_test(x[:3000], x[3000:], seed=0, spec=SMALL)
    assert abs(result["auc"] - 0.5) < 0.05, result
    assert result["auc_high"] - result["auc_low"] < 0.06, result  # 600 + 600 test events: about +-0.02
    assert 0.0 <= result["jsd"] < 0.02, result
    assert result["events"] == {"train": 1800, "val": 600, "test": 600}
    assert 1 <= result["best_epoch"] <= result["epochs"] <= SMALL.epochs


def test_identical_samples_give_jsd_zero_and_obviously_different_ones_auc_above_0_9():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(2000, 5))
    same = classifier_test(a, a.copy(), seed=1, spec=SMALL)
    assert same["jsd"] == pytest.approx(0.0, abs=0.01)
    assert abs(same["auc"] - 0.5) < 0.05
    b = rng.normal(size=(2000, 5))
    b[:, 0] += 3.0
    apart = classifier_test(a, b, seed=1, spec=SMALL)
    assert apart["auc_low"] > 0.9, apart
    assert 0.5 < apart["jsd"] <= 1.0, apart
    assert apart["auc_low"] <= apart["auc"] <= apart["auc_high"]
    assert apart["jsd_low"] <= apart["jsd"] <= apart["jsd_high"]


def test_the_network_is_the_challenges():
    """CaloChallenge's evaluate.py DNN: Linear(in, 2048) + 2 x Linear(2048, 2048), LeakyReLU and dropout after
    each, Linear(2048, 1); Adam 2e-4, batch 1000, 50 epochs."""
    import torch

    net = _network(10, CHALLENGE)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 2048), (2048, 2048), (2048, 2048), (2048, 1)]
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in net) == 3
    assert (CHALLENGE.lr, CHALLENGE.batch_size, CHALLENGE.epochs, CHALLENGE.dropout) == (2e-4, 1000, 50, 0.0)


@pytest.fixture(scope="module")
def pions_off(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A simulated reference and an independent sample whose pi+ showers (only) carry twice their energy."""
    import physnn

    folder = tmp_path_factory.mktemp("types")
    ref, cand = folder / "ref.root", folder / "cand.root"
    physnn.simulate("showers", ref, events=2400, seed=21)
    physnn.simulate("showers", folder / "twin.root", events=2400, seed=22)
    arrays = uproot.open(folder / "twin.root")["showers"].arrays(library="np")
    pions = arrays["pdgid"] == 211
    arrays["image"][pions] *= np.float32(2.0)
    with uproot.recreate(cand) as f:
        f["showers"] = arrays
    return ref, cand


def test_compare_judges_each_particle_type(pions_off, tmp_path):
    import physnn

    ref, cand = pions_off
    result = physnn.compare(ref, cand, out=tmp_path / "r", classifier=["high"], plots=False)
    per_type = result.classifier["high"]["per_type"]
    assert set(per_type) == {"e-", "gamma", "pi+"}
    assert per_type["pi+"]["auc"] > 0.85, per_type["pi+"]
    for clean in ("e-", "gamma"):
        assert abs(per_type[clean]["auc"] - 0.5) < 0.1, (clean, per_type[clean])
        assert per_type[clean]["auc"] < per_type["pi+"]["auc_low"]
    stored = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert stored["classifier"]["high"]["per_type"]["pi+"]["auc"] == pytest.approx(per_type["pi+"]["auc"])
    assert 0.0 <= stored["classifier"]["high"]["jsd"] <= 1.0


@pytest.mark.slow  # ~14 s: the feature histograms and the page
def test_compare_cli_prints_the_per_type_table(pions_off, tmp_path):
    ref, cand = pions_off
    res = runner.invoke(app, ["compare", str(ref), str(cand), "--out", str(tmp_path / "r"), "--classifier", "high",
                              "--max-events", "600", "--classifier-width", "32", "--classifier-epochs", "5",
                              "--classifier-batch", "32", "--classifier-lr", "0.002"])
    assert res.exit_code == 0, res.output
    assert "per particle type" in res.output
    for name in ("e-", "gamma", "pi+"):
        assert name in res.output
    assert "JSD" in res.output
    assert "3 x 32 LeakyReLU, dropout 0, Adam 0.002, batch 32, <= 5 epochs" in res.output


def test_simulator_floor_judges_two_independent_samples_per_type():
    import physnn

    floor = physnn.simulator_floor(events=1200, seed=5, classifier=["high"], plots=False)
    assert floor.events == {"reference": 1200, "candidate": 1200}
    assert floor.conditions["matched"] is True
    high = floor.classifier["high"]
    assert set(high["per_type"]) == {"e-", "gamma", "pi+"}
    for name, row in {"all": high, **high["per_type"]}.items():
        assert abs(row["auc"] - 0.5) < 0.1, (name, row)
        assert 0.0 <= row["jsd"] <= 0.1, (name, row)


def test_the_same_seed_gives_the_same_figures():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(500, 4)), rng.normal(0.5, 1.0, size=(500, 4))
    first, again = (classifier_test(a, b, seed=3, spec=SMALL, n_boot=20) for _ in range(2))
    assert first == again
    assert classifier_test(a, b, seed=4, spec=SMALL, n_boot=20)["auc"] != first["auc"]


def test_physnns_default_network_is_the_one_the_help_and_readme_name():
    """The suite shrinks ``DEFAULT`` (tests/conftest.py); the default users get is ``RECOMMENDED``: pinned here, and
    run once (two epochs) so that a broken default cannot hide behind the fixture."""
    import re

    from physnn.evaluation.classifier_test import RECOMMENDED

    assert (RECOMMENDED.width, RECOMMENDED.layers, RECOMMENDED.batch_size, RECOMMENDED.lr, RECOMMENDED.epochs,
            RECOMMENDED.patience) == (256, 2, 64, 1e-3, 50, 10)
    text = re.sub(r"[\s│]+", " ", runner.invoke(app, ["compare", "--help"], terminal_width=200).output)
    for phrase in ("default 256", "default 64", "default 1e-3", "default and the CaloChallenge's 50"):
        assert phrase in text
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 5)), rng.normal(0.5, 1, size=(300, 5))
    result = classifier_test(a, b, spec=ClassifierSpec(**{**RECOMMENDED.__dict__, "epochs": 2}), n_boot=10)
    assert result["auc"] > 0.6  # half a sigma apart in 5 features


@pytest.mark.parametrize("option", [{"lr": 0.0}, {"epochs": 0}, {"width": 0}, {"dropout": 1.0}, {"patience": 0}])
def test_a_classifier_option_out_of_range_is_one_error_naming_it(option):
    from physnn.errors import ConfigError
    from physnn.evaluation.classifier_test import classifier_spec

    with pytest.raises(ConfigError, match=f"classifier option {next(iter(option))}="):
        classifier_spec(option)


def test_the_cli_refuses_a_zero_learning_rate(tmp_path):
    result = runner.invoke(app, ["compare", str(tmp_path / "a.root"), str(tmp_path / "b.root"),
                                 "--classifier-lr", "0"])
    assert result.exit_code == 2
    assert "--classifier-lr" in result.output
