"""Issue 30 item 1: the central value written with MC dropout is the deterministic pass, the MC passes give the
spread, combined in the network's space (log E for ``transform: log``) before mapping to the target's unit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import run_config

import physnn
from physnn.models.tasks import ONE_SIGMA, Task


@pytest.fixture(scope="module")
def log_run(epi_file, tmp_path_factory):
    """An energy regressor of log E with a Gaussian head and dropout in its dense head."""
    cfg = run_config(epi_file, task="regression", epochs=3)
    cfg["data"]["targets"] = {"energy": {"unit": "GeV", "kind": "energy", "transform": "log"}}
    out = tmp_path_factory.mktemp("runs") / "log"
    physnn.train(cfg, out=out, progress=False)
    return out


def test_mc_dropout_writes_the_deterministic_central_value(log_run, epi_file):
    """The mean of exp(log E) over T passes is biased up (Jensen) and noisy: the written value is the
    deterministic pass, whatever T and the seed; MC dropout adds the spread only."""
    det = physnn.predict(log_run, epi_file).arrays
    mc = physnn.predict(log_run, epi_file, mc_samples=20, seed=3).arrays
    np.testing.assert_allclose(mc["energy_pred"], det["energy_pred"], rtol=1e-5)
    assert bool((mc["energy_epistemic"] > 0).all())
    assert bool((mc["energy_std"] > 0).all())


def test_mc_error_bars_are_combined_in_log_space_and_mapped_at_the_central_value():
    """Passes symmetric around the central value in log E: the central value is exp(μ0) (the mean of the exp
    of the passes is exp(μ0) cosh δ, higher); σ in GeV is the log-normal σ of the log-space total variance,
    shared by the aleatoric and epistemic parts in their log-space proportions."""
    task = Task("regression", "gaussian", targets=["energy"], center=[0.0], scale=[1.0], transforms=["log"])
    mu0, delta, var = np.log(50.0), 0.2, 0.01
    passes = torch.tensor([[[mu0 + delta]], [[mu0 - delta]]] * 5, dtype=torch.float32)  # (10, 1, 1)
    raw_var = float(np.log(np.expm1(var)))  # softplus⁻¹: the head's variance output
    outs = torch.cat([passes, torch.full_like(passes, raw_var)], dim=-1)
    central = torch.tensor([[[mu0, raw_var]]], dtype=torch.float32)
    s = task.summarize(outs, central=central, mc=True)
    assert float(s["pred"]) == pytest.approx(50.0, rel=1e-5)
    e2 = float(passes.var())
    total = var + e2
    lognormal = 50.0 * np.sqrt(np.expm1(total) * np.exp(total))
    assert float(s["std"]) == pytest.approx(lognormal, rel=1e-4)
    assert float(s["aleatoric"] ** 2 + s["epistemic"] ** 2) == pytest.approx(lognormal**2, rel=1e-4)
    assert float(s["epistemic"] / s["aleatoric"]) == pytest.approx(np.sqrt(e2 / var), rel=1e-4)


def test_calibration_is_fitted_on_the_written_central_value(log_run, epi_file):
    """±1σ and the 68.27% conformal interval cover 68.27% of the validation split, with MC dropout and without."""
    for mc in (0, 50):
        a = physnn.predict(log_run, epi_file, mc_samples=mc, conformal=0.6827).arrays
        val = a["split"] == 1
        pull = np.abs(a["energy_pred"] - a["energy"])[val] / a["energy_std"][val]
        assert np.mean(pull <= 1) == pytest.approx(ONE_SIGMA, abs=0.03), mc
        inside = (a["energy_low"] <= a["energy"]) & (a["energy"] <= a["energy_high"])
        assert np.mean(inside[val]) == pytest.approx(ONE_SIGMA, abs=0.03), mc


def test_an_ensemble_central_value_is_the_members_mean_in_log_space():
    """Two members at 40 and 60 GeV (log target): the central value is exp(mean log E) = 49.0 GeV, the same
    rule as MC dropout (the mean in GeV, 50, is the members' arithmetic mean of exp)."""
    task = Task("regression", "mse", targets=["energy"], center=[0.0], scale=[1.0], transforms=["log"])
    outs = torch.tensor([[[np.log(40.0)]], [[np.log(60.0)]]], dtype=torch.float32)  # (M = 2, N = 1, 1)
    s = task.summarize(outs, mc=False)
    assert float(s["pred"]) == pytest.approx(np.sqrt(40.0 * 60.0), rel=1e-5)
    spread = float(outs.std())  # the members' spread in log E, mapped at the central value
    assert float(s["epistemic"]) == pytest.approx(np.sqrt(2400.0 * np.expm1(spread**2) * np.exp(spread**2)),
                                                  rel=1e-4)


def test_mc_forward_central_is_the_deterministic_pass_and_the_same_masks():
    from conftest import TINY_CNN

    from physnn.models.mc_dropout import mc_forward, mc_forward_central, set_dropout
    from physnn.models.registry import ModelConfig, ModelIO, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig.model_validate(TINY_CNN), ModelIO(image=(3, 24, 24), outputs=2))
    batch = {"image": torch.rand(6, 3, 24, 24)}
    torch.manual_seed(1)
    central, passes = mc_forward_central(model, batch, 8)
    torch.manual_seed(1)
    np.testing.assert_array_equal(passes.numpy(), mc_forward(model, batch, 8).numpy())
    set_dropout(model, False)
    with torch.no_grad():
        torch.testing.assert_close(central[0], model(batch))
    assert central.shape == (1, 6, 2)
    assert float((passes - central).abs().max()) > 1e-3  # the passes do drop
