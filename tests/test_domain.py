"""The domain of a run: predict flags the events whose inputs lie outside what training saw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import run_config
from typer.testing import CliRunner

from physnn.data.domain import Domain, domain_quantities


def test_fresh_events_like_the_training_ones_are_rarely_flagged():
    """Four quantities at 0.1% per side: about 0.8% of fresh events of the same distribution are flagged."""
    rng = np.random.default_rng(0)

    def draw(n):
        return {"image": torch.from_numpy(rng.gamma(2.0, 1.0, size=(n, 3, 4, 4))),
                "scalars": torch.from_numpy(rng.normal(size=(n, 1)))}

    domain = Domain.fit(draw(20_000))
    assert domain.names == ["image sum, channel 0", "image sum, channel 1", "image sum, channel 2", "image sum",
                            "scalar 0"]
    flagged = float((domain.scores(draw(20_000)) > 0).mean())
    assert 0.002 < flagged < 0.02, flagged  # 5 quantities x 2 sides x 0.1% = 1%
    shifted = draw(2000)
    shifted["image"] = shifted["image"] * 3  # a detector that reads three times the energy
    assert float((domain.scores(shifted) > 0).mean()) > 0.95


def test_the_score_is_the_excess_in_units_of_the_interval_and_nan_is_outside():
    domain = Domain(["scalar 0"], [0.0], [10.0])
    scores = domain.scores({"scalars": torch.tensor([[5.0], [-5.0], [30.0], [float("nan")]])})
    assert scores.tolist() == [0.0, 0.5, 2.0, float("inf")]
    assert Domain.from_state(domain.state()) == domain


def test_sequence_quantities_use_the_valid_elements_only():
    seq = torch.tensor([[[1.0], [5.0], [99.0]], [[2.0], [0.0], [0.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    q = domain_quantities({"sequence": seq, "mask": mask})
    assert q["sequence length"].tolist() == [2.0, 1.0]
    assert q["sequence feature 0 max"].tolist() == [5.0, 2.0]  # the padded 99 is not an element
    assert q["sequence feature 0 min"].tolist() == [1.0, 2.0]


@pytest.fixture(scope="module")
def energy_domain(tmp_path_factory: pytest.TempPathFactory):
    """An energy regressor trained (one epoch) on 3000 showers of 1-100 GeV; fresh showers in and beyond it."""
    import physnn

    folder = tmp_path_factory.mktemp("domain")
    files = {"train": (3000, 1, 1.0, 100.0), "fresh": (2000, 2, 1.0, 100.0), "high": (300, 3, 150.0, 250.0)}
    for name, (events, seed, low, high) in files.items():
        physnn.simulate("showers", folder / f"{name}.root", events=events, seed=seed,
                        config={"energy_min": low, "energy_max": high})
    physnn.train(run_config(folder / "train.root", task="regression", epochs=1), out=folder / "run", progress=False)
    return folder


def test_predict_flags_showers_beyond_the_training_energies(energy_domain):
    """The issue's case, small: at most 2% of fresh 1-100 GeV showers are flagged, at least 95% of 150-250 GeV."""
    import physnn

    run = energy_domain / "run"
    fresh = physnn.predict(run, energy_domain / "fresh.root", collect=True)
    high = physnn.predict(run, energy_domain / "high.root", collect=True)
    assert fresh.arrays["in_domain"].dtype == bool
    outside = (fresh.arrays["ood_score"] > 0) | (fresh.arrays["feature_score"] > 1)
    assert outside.tolist() == (~fresh.arrays["in_domain"]).tolist()
    assert fresh.counts["out_of_feature_domain"] == int((fresh.arrays["feature_score"] > 1).sum())
    assert fresh.counts["out_of_domain"] <= 0.02 * fresh.events
    assert high.counts["out_of_domain"] >= 0.95 * high.events
    assert high.meta["domain"]["names"][-1] == "image sum"


def test_the_command_line_warns_when_many_events_are_outside(energy_domain, tmp_path):
    from physnn.cli import app

    run = energy_domain / "run"
    out = CliRunner().invoke(app, ["predict", str(run), str(energy_domain / "high.root"), "--out",
                                   str(tmp_path / "p.root")], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "domain: " in out.output
    assert "of 300 events outside the training domain (in_domain 0)" in out.output
    assert "features: " in out.output
    assert "warning: " in out.output
    assert "extrapolations" in out.output
    import uproot

    tree = uproot.open(tmp_path / "p.root")["predictions"]
    assert {"ood_score", "feature_score", "in_domain"} <= set(tree.keys())
    fresh = CliRunner().invoke(app, ["predict", str(run), str(energy_domain / "fresh.root"), "--out",
                                     str(tmp_path / "q.root")], env={"COLUMNS": "200"})
    assert fresh.exit_code == 0, fresh.output
    assert "warning" not in fresh.output


def test_denoise_and_encode_flag_their_events_too(energy_domain, tmp_path):
    """An autoencoder trained on 1-100 GeV showers: denoise and encode write ood_score and in_domain, count the
    events outside in physnn_meta and say so on the command line."""
    from conftest import ae_config

    import physnn
    from physnn.cli import app
    from physnn.io.metadata import read_metadata

    cfg = ae_config(energy_domain / "train.root", epochs=1)
    physnn.train(cfg, out=tmp_path / "ae", progress=False)
    clean = physnn.denoise(tmp_path / "ae", energy_domain / "high.root", out=tmp_path / "clean.root", collect=True)
    assert clean.arrays["in_domain"].mean() < 0.05
    assert read_metadata(tmp_path / "clean.root")["counts"]["out_of_domain"] >= 0.95 * clean.events
    codes = physnn.encode(tmp_path / "ae", energy_domain / "fresh.root", collect=True)
    assert codes.arrays["in_domain"].mean() >= 0.98
    out = CliRunner().invoke(app, ["denoise", str(tmp_path / "ae"), str(energy_domain / "high.root"), "--out",
                                   str(tmp_path / "c2.root")], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "of 300 events outside the training domain (in_domain 0)" in out.output
    assert "features: " not in out.output  # trained on noisy copies: no feature domain (not what it saw)
    assert "warning: " in out.output


def test_the_feature_distance_sees_a_broken_correlation_that_no_single_quantity_shows():
    """Two correlated features: events with each feature in its usual range but the two anti-correlated are
    ordinary one by one (the input domain's view) and far in Mahalanobis distance."""
    from physnn.models.feature_domain import FeatureDomain

    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.95], [0.95, 1.0]])
    train, val, fresh = (rng.multivariate_normal([0, 0], cov, size=n) for n in (20_000, 20_000, 20_000))
    domain = FeatureDomain.fit(train, val)
    assert 0.002 < float((domain.scores(fresh) > 1).mean()) < 0.01  # 0.5% of fresh events
    broken = rng.multivariate_normal([0, 0], [[1.0, -0.95], [-0.95, 1.0]], size=2000)
    assert np.all(np.abs(broken) < 5)  # each feature alone stays in range
    assert float((domain.scores(broken) > 1).mean()) > 0.5  # those near the centre stay inside
    assert FeatureDomain.from_state(domain.state()).cut == domain.cut
