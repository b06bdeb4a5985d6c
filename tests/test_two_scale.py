"""Issue 30 item 1: MC-dropout error bars that cover 68% per group, with two calibration factors: the total is
``s x sqrt(aleatoric² + (rho epistemic)²)``, rho and s fitted on the validation split
(:mod:`physnn.training.calibration`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import physnn.training.calibration as calibration
from physnn.models.tasks import MIN_VAR, ONE_SIGMA, Task

T = 20  # MC passes of the synthetic runs


def _two_groups(seed: int, n: int = 4000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
    """Raw outputs of T passes (T, 2n, 2), the deterministic pass (1, 2n, 2), the truth (2n, 1) and the group
    of each event: e/gamma-like (aleatoric σ 0.02) and π-like (0.12), the same MC spread 0.05 in both; the truth
    scatters by the aleatoric σ alone (the head absorbed the dropout noise, as on the demo's energy run)."""
    gen = torch.Generator().manual_seed(seed)
    group = np.repeat([0, 1], n)
    sigma = torch.tensor(np.where(group == 0, 0.02, 0.12), dtype=torch.float32)
    centre = 3.0 * torch.rand(2 * n, generator=gen)
    raw_var = torch.log(torch.expm1(sigma**2 - MIN_VAR))  # softplus⁻¹: the head's variance output
    means = centre + 0.05 * torch.randn(T, 2 * n, generator=gen)
    outs = torch.stack([means, raw_var.expand(T, -1)], dim=-1)
    central = torch.stack([centre, raw_var], dim=-1)[None]
    truth = (centre + sigma * torch.randn(2 * n, generator=gen))[:, None]
    return outs, central, truth, group


def _task() -> Task:
    return Task("regression", "gaussian", targets=["x"], center=[0.0], scale=[1.0], transforms=["none"])


def _fit(task: Task, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    """fit_sigma_scale on the synthetic validation split (seed 1), in batches of 1000 events."""
    outs, central, truth, _ = _two_groups(1)

    def stacked(models, batch, mc_samples=0):  # the model's outputs for the batch's rows
        rows = batch["rows"]
        if mc_samples == 0:
            return central[:, rows], central[:, rows]
        return outs[:, rows], central[:, rows]

    monkeypatch.setattr(calibration, "stacked_outputs", stacked)
    batches = [{"rows": torch.arange(lo, lo + 1000), "target": truth[lo:lo + 1000]} for lo in range(0, 8000, 1000)]
    return calibration.fit_sigma_scale(torch.nn.Identity(), task, batches, device=torch.device("cpu"), samples=T)


def _coverage(task: Task, seed: int) -> list[float]:
    """±1σ coverage of each group on fresh events (another seed) with the task's fitted factors."""
    outs, central, truth, group = _two_groups(seed)
    s = task.summarize(outs, central=central, mc=True)
    inside = ((s["pred"] - truth).abs() <= s["std"])[:, 0].numpy()
    return [float(inside[group == g].mean()) for g in (0, 1)]


def test_two_factors_make_mc_error_bars_cover_68_percent_in_each_group(monkeypatch):
    task = _task()
    scales, _ = _fit(task, monkeypatch)
    task.sigma_scale = scales
    for cov in _coverage(task, 2):
        assert cov == pytest.approx(ONE_SIGMA, abs=0.03)
    rho = scales["mc_epistemic"][0]
    assert 0 < rho < 1
    assert "deterministic_epistemic" not in scales  # one model's deterministic pass has no epistemic part
    # today's one factor (rho = 1) covers 68% overall but not per group: e/gamma-like over, π-like under
    old = {k: v for k, v in scales.items() if k != "mc_epistemic"}
    outs, central, truth, _ = _two_groups(1)
    raw = task.regression_summary(outs, central, torch.ones(1))
    old["mc"] = [float(torch.quantile((raw["pred"] - truth).abs()[:, 0] / raw["std"][:, 0], ONE_SIGMA))]
    task.sigma_scale = old
    low, high = _coverage(task, 2)
    assert low > ONE_SIGMA + 0.1
    assert high < ONE_SIGMA - 0.05


def test_conformal_quantiles_are_fitted_with_the_same_total(monkeypatch):
    """The 68.27% conformal interval of the MC mode uses the rho-weighted total too: it covers each group."""
    task = _task()
    task.sigma_scale, task.conformal = _fit(task, monkeypatch)
    outs, central, truth, group = _two_groups(2)
    s = task.summarize(outs, central=central, mc=True, conformal=0.6827)
    inside = ((s["low"] <= truth) & (truth <= s["high"]))[:, 0].numpy()
    for g in (0, 1):
        assert float(inside[group == g].mean()) == pytest.approx(ONE_SIGMA, abs=0.03)


def test_an_old_run_without_the_epistemic_weight_predicts_as_before():
    """sigma_scale without ``mc_epistemic`` (runs trained before it): std = s sqrt(aleatoric² + epistemic²);
    with it: s sqrt(aleatoric² + (rho epistemic)²), the written parts raw in both."""
    outs, central, _, _ = _two_groups(3, n=50)
    old = Task.from_state({**_task().state(), "sigma_scale": {"deterministic": [1.1], "mc": [0.7]}})
    s = old.summarize(outs, central=central, mc=True)
    total = (s["aleatoric"] ** 2 + s["epistemic"] ** 2).sqrt()
    torch.testing.assert_close(s["std"], 0.7 * total)
    new = Task.from_state({**old.state(), "sigma_scale": {"deterministic": [1.1], "mc": [0.7], "mc_epistemic": [0.3]}})
    n = new.summarize(outs, central=central, mc=True)
    torch.testing.assert_close(n["aleatoric"], s["aleatoric"])
    torch.testing.assert_close(n["epistemic"], s["epistemic"])
    torch.testing.assert_close(n["std"], 0.7 * (s["aleatoric"] ** 2 + (0.3 * s["epistemic"]) ** 2).sqrt())
    det = new.summarize(central, central=central, mc=False)  # deterministic mode: unchanged
    torch.testing.assert_close(det["std"], 1.1 * det["aleatoric"])


def test_the_mc_aleatoric_part_is_the_deterministic_pass_sigma():
    """With dropout on, the variance head's output scatters and its mean over the passes is biased up, the more
    the smaller the σ (on the demo's energy run 1.35x the deterministic σ for e-/gamma, 1.05x for pi+: one scale
    could not serve both). The aleatoric part is the deterministic pass's σ, as the central value is its mean."""
    task = Task.from_state({**_task().state(), "sigma_scale": {"mc": [1.0], "mc_epistemic": [1.0]}})
    var = torch.tensor([0.01, 0.03] * 10)[:, None]  # passes' variances scatter around the deterministic 0.01
    raw = torch.log(torch.expm1(var - MIN_VAR))
    outs = torch.stack([torch.linspace(0.9, 1.1, 20)[:, None], raw], dim=-1)  # (20, 1, 2)
    central = torch.stack([torch.ones(1, 1), torch.log(torch.expm1(torch.full((1, 1), 0.01 - MIN_VAR)))], dim=-1)
    s = task.summarize(outs, central=central, mc=True)
    assert float(s["aleatoric"]) == pytest.approx(0.1, rel=1e-4)
    assert float(s["epistemic"]) == pytest.approx(float(torch.linspace(0.9, 1.1, 20).std()), rel=1e-4)
    ensemble = task.summarize(outs, mc=False)  # an ensemble's members without dropout: their mean variance
    assert float(ensemble["aleatoric"]) == pytest.approx(0.02**0.5, rel=1e-4)
    old = Task.from_state({**task.state(), "sigma_scale": {"mc": [1.0]}})  # calibrated before: as it was fitted
    assert float(old.summarize(outs, central=central, mc=True)["aleatoric"]) == pytest.approx(0.02**0.5, rel=1e-4)


def _passes_with_scattered_variances() -> tuple[torch.Tensor, torch.Tensor]:
    """20 passes whose variances scatter around the dropout-off pass's 0.01 (mean 0.02), and that pass."""
    var = torch.tensor([0.01, 0.03] * 10)[:, None]
    outs = torch.stack([torch.linspace(0.9, 1.1, 20)[:, None], torch.log(torch.expm1(var - MIN_VAR))], dim=-1)
    central = torch.stack([torch.ones(1, 1), torch.log(torch.expm1(torch.full((1, 1), 0.01 - MIN_VAR)))], dim=-1)
    return outs, central


@pytest.mark.parametrize("sigma_scale", [{}, {"deterministic": [1.2]}], ids=["uncalibrated", "no-mc-scale"])
def test_a_run_without_rho_but_not_calibrated_before_it_uses_the_dropout_off_sigma(sigma_scale):
    """Runs trained with ``calibrate_sigma: false`` (or with an empty validation split) never get rho: their
    aleatoric part is still the dropout-off pass's σ. Only an old calibrated run ("mc" scale, no "mc_epistemic")
    keeps the mean of the T variances, with which its scale was fitted."""
    outs, central = _passes_with_scattered_variances()
    task = Task.from_state({**_task().state(), "sigma_scale": sigma_scale})
    s = task.summarize(outs, central=central, mc=True)
    assert float(s["aleatoric"]) == pytest.approx(0.1, rel=1e-4)
    old = Task.from_state({**_task().state(), "sigma_scale": {"deterministic": [1.2], "mc": [0.8]}})
    assert float(old.summarize(outs, central=central, mc=True)["aleatoric"]) == pytest.approx(0.02**0.5, rel=1e-4)


class _Parts:
    """A stand-in regression task whose raw parts are given per event: ``regression_summary`` of the rows the
    stubbed ``stacked_outputs`` hands over (the MC mode when its second output is non-zero)."""

    def __init__(self, pred: torch.Tensor, aleatoric: torch.Tensor, epistemic: torch.Tensor):
        self.targets = ["x"]
        self.pred, self.aleatoric, self.epistemic = pred, aleatoric, epistemic

    def regression_summary(self, rows, mc, scale, weight):
        rows = rows.long()
        out = {"pred": self.pred[rows], "aleatoric": self.aleatoric[rows]}
        if float(mc) > 0:
            out["epistemic"] = self.epistemic[rows]
        out["std"] = (out["aleatoric"] ** 2 + out.get("epistemic", torch.zeros_like(out["pred"])) ** 2).sqrt()
        return out


def _fit_parts(monkeypatch, task: _Parts, truth: torch.Tensor) -> tuple[dict, dict]:
    monkeypatch.setattr(calibration, "stacked_outputs", lambda models, batch, t=0: (batch["rows"], torch.tensor(t)))
    n = truth.shape[0]
    batches = [{"rows": torch.arange(lo, min(lo + 500, n)), "target": truth[lo:lo + 500]} for lo in range(0, n, 500)]
    return calibration.fit_sigma_scale(torch.nn.Identity(), task, batches, device=torch.device("cpu"), samples=T)


def _two_group_parts(seed: int, n: int = 1000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """pred, aleatoric, epistemic (2n, 1) and truth: aleatoric 0.02 / 0.12 in two groups, epistemic 0.05 in both,
    the truth scattering by the aleatoric σ alone (rho well below 1)."""
    gen = torch.Generator().manual_seed(seed)
    aleatoric = torch.tensor([0.02] * n + [0.12] * n)[:, None]
    epistemic = torch.full_like(aleatoric, 0.05)
    pred = torch.rand(2 * n, 1, generator=gen)
    return pred, aleatoric, epistemic, pred + aleatoric * torch.randn(2 * n, 1, generator=gen)


def test_rho_is_stored_only_where_the_scale_is(monkeypatch):
    """A total error bar of zero on one validation event skips the MC scale and its conformal quantiles: rho must
    be skipped with them (else predict would apply rho with s = 1 and no conformal fit)."""
    pred, aleatoric, epistemic, truth = _two_group_parts(4)
    aleatoric[7], epistemic[7] = 0.0, 0.0
    scales, conformal = _fit_parts(monkeypatch, _Parts(pred, aleatoric, epistemic), truth)
    assert "mc" not in scales
    assert "mc" not in conformal
    assert "mc_epistemic" not in scales


def test_rho_is_fitted_on_the_finite_pulls_only():
    """A few NaN / inf pulls must not turn every coverage gap into 0 (which silently gave rho = 1)."""
    pred, aleatoric, epistemic, truth = _two_group_parts(5)
    clean = calibration.fit_epistemic_weight(truth - pred, aleatoric, epistemic)[0]
    assert clean < 0.5
    residual = truth - pred
    residual[3], residual[1500] = float("nan"), float("inf")
    dirty = calibration.fit_epistemic_weight(residual, aleatoric, epistemic)[0]
    assert dirty == pytest.approx(clean, rel=0.3)
    assert dirty != 1.0
