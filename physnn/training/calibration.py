"""Recalibration of regression error bars on the validation split (σ scaling).

A Gaussian head trained with dropout learns a variance that also absorbs the
dropout noise of its own mean, so its error bars come out too wide when the
data's resolution is small compared with the target's range (a calorimeter:
a few % of 1-100 GeV). The standard remedy (Levi et al. 2019, "Evaluating
and calibrating uncertainty prediction in regression tasks"; Kuleshov et al.
2018) is one scale factor per target and prediction mode, fitted on held-out
data so that the ±1σ interval covers 68.27% of the events: ``s_t`` is the
68.27% quantile of ``|pred - true| / σ`` of target ``t``. (A quantile, not
the RMS of the pulls, so that a few events in non-Gaussian tails, e.g. pions
that leak, do not widen everyone's error bar; per target, so that one
target's tails do not set another's error bar.)

What is calibrated is the **total** error bar ``t_std``:
``s_t x sqrt(aleatoric² + (rho_t epistemic)²)`` (Kendall & Gal 2017, see
:func:`physnn.models.mc_dropout.regression_summary`); ``t_aleatoric`` and
``t_epistemic`` stay the raw predicted σ and the raw MC-dropout spread.

**Two factors where the error bar has two parts** (MC dropout; an
ensemble's members' spread): one scale cannot make both parts right when
their ratio differs between groups of events (particle types, energies)
that the prediction cannot tell apart. The type is not known at prediction
time, but the epistemic fraction epistemic² / (aleatoric² + epistemic²) is:
``rho_t`` is chosen on a log grid (0.01-10) so that the events above and
below its median get the same ±1σ coverage, with ``s_t`` the 68.27%
quantile of |pull| at each rho (:func:`fit_epistemic_weight`). It is stored
as ``sigma_scale["mc_epistemic"]`` (``"deterministic_epistemic"`` for an
ensemble's deterministic mode); a run without it has rho = 1, as before.
On the demo's energy run (10k showers) most of the per-type miss with MC
dropout (π+ covered 60%, e- 74%) came from the aleatoric part, the mean of
the T predicted variances, 1.35x the deterministic σ for e/gamma and 1.05x
for π+; the aleatoric part is now the deterministic pass's σ
(:mod:`physnn.models.mc_dropout`), and rho takes out the rest (rho = 0.020
fitted there, examples/mc_coverage_by_type.py).

Deterministic predictions have their own factor (the aleatoric σ alone; for
an ensemble, with the members' spread). Both are fitted around the central
value that ``predict`` writes, the deterministic pass in either mode (the
mean of an ensemble's members in the network's space):
:mod:`physnn.models.mc_dropout`. An ensemble's factors are fitted for
the ensemble (:mod:`physnn.training.ensemble`). The factors are fitted on the
whole validation split (streamed batch by batch when it is), stored in the
task, applied by ``predict`` and ``export``, recorded in ``physnn_meta`` and
judged on the test split by ``evaluate``. The same pass gives the split-
conformal quantiles (:mod:`physnn.models.conformal`), normalised by the same
rho-weighted total.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch

from physnn.data.dataset import TRUTH
from physnn.models.base import StagedModel
from physnn.models.ensemble import stacked_outputs
from physnn.models.mc_dropout import EPISTEMIC
from physnn.models.tasks import ONE_SIGMA, Task

#: MC-dropout passes of the fit: the T that physnn suggests (``predict --mc-samples 50``). The sample spread of
#: fewer passes is noisier, which widens the pulls: a scale fitted with T = 30 covered 70% at T = 50 on the
#: demo's energy run (measured on the validation split), 68.3% when fitted with the T used
CALIBRATION_SAMPLES = 50

#: The candidate weights rho of the epistemic part (:func:`fit_epistemic_weight`): 0.01 to 10 on a log grid
#: of ten steps per decade, 1 (today's plain sum) among them.
RHO_GRID = tuple(float(10 ** (k / 10)) for k in range(-20, 11))


@torch.no_grad()
def fit_sigma_scale(model: StagedModel | Sequence[StagedModel], task: Task,
                    batches: Iterable[Mapping[str, torch.Tensor]], *, device: torch.device,
                    samples: int = CALIBRATION_SAMPLES) -> tuple[dict[str, list[float]], dict[str, dict]]:
    """Per-target scale factors of the deterministic and the MC-dropout total σ, and the conformal quantiles.

    Parameters
    ----------
    model, task
        The trained model (best weights), or an ensemble's members, and its regression task.
    batches
        The validation split, batch by batch (with ``target``).
    device
        Where the model runs.
    samples
        MC-dropout passes T.

    Returns
    -------
    tuple of dict
        The σ scales ``{"deterministic": [s per target], "mc": [s per target]}`` (a mode is missing when its
        σ is not defined, e.g. no Gaussian head and no dropout), with ``"mc_epistemic"`` (and for an ensemble
        ``"deterministic_epistemic"``): [rho per target] where the mode's σ has both parts,
        and the split-conformal quantiles of each mode (:func:`physnn.models.conformal.conformal_quantiles`).
    """
    from physnn.models.conformal import conformal_quantiles

    models = list(model) if isinstance(model, Sequence) else [model]
    ones = torch.ones(len(task.targets))
    det, mc, targets = [], [], []
    for batch in batches:
        inputs = {k: v.to(device) for k, v in batch.items() if k not in TRUTH}
        for parts, t in ((det, 0), (mc, samples)):  # around the central value predict writes: the deterministic
            passes, central = (o.float().cpu() for o in stacked_outputs(models, inputs, t))
            parts.append(task.regression_summary(passes, central, ones, ones))  # raw parts, as with a rho
        targets.append(batch["target"].double().cpu())
    target = torch.cat(targets)
    scales: dict[str, list[float]] = {}
    conformal: dict[str, dict] = {}
    for mode, parts in (("deterministic", det), ("mc", mc)):
        pred = torch.cat([p["pred"] for p in parts])
        std = torch.cat([p["std"] for p in parts]) if "std" in parts[0] else None
        rho = None
        if "aleatoric" in parts[0] and "epistemic" in parts[0]:  # two parts: the epistemic one's weight rho
            aleatoric, epistemic = (torch.cat([p[key] for p in parts]).double() for key in ("aleatoric", "epistemic"))
            rho = fit_epistemic_weight(target - pred, aleatoric, epistemic)
            std = (aleatoric**2 + (torch.tensor(rho, dtype=torch.float64) * epistemic) ** 2).sqrt()
        if std is not None and bool((std > 0).all()):  # rho only with its scale (none: predict uses rho = 1, s = 1)
            scales[mode] = _scales(target - pred, std)
            if rho is not None:
                scales[mode + EPISTEMIC] = rho
            conformal[mode] = conformal_quantiles(target - pred, std)
        elif std is None:  # no σ: intervals of constant width, from the absolute residuals
            conformal[mode] = conformal_quantiles(target - pred, None)
    return scales, conformal


def fit_epistemic_weight(residual: torch.Tensor, aleatoric: torch.Tensor, epistemic: torch.Tensor,
                         grid: Sequence[float] = RHO_GRID) -> list[float]:
    """The weight rho of the epistemic part of each target (column) in ``s x sqrt(aleatoric² + (rho epistemic)²)``.

    The events are split at the median of the epistemic fraction epistemic² / (aleatoric² + epistemic²); for
    each rho of ``grid``, s is the 68.27% quantile of |pull| of all events (:func:`_scales`), and rho is the one
    whose ±1σ coverages of the two halves are closest (ties: the rho closest to 1 in log). Only events with a
    finite residual and parts enter (a NaN pull would make every coverage gap 0, hence rho = 1). A target whose
    fraction does not vary (no half above the median), or with no finite event, keeps rho = 1.

    Parameters
    ----------
    residual, aleatoric, epistemic
        ``true - pred`` and the raw parts of the error bar in the target's unit (N, K), validation events.
    grid
        The candidate weights.

    Returns
    -------
    list of float
        rho per target.
    """
    rhos = []
    for j in range(residual.shape[1]):
        r, a, e = (x[:, j].double() for x in (residual.abs(), aleatoric, epistemic))
        finite = torch.isfinite(r) & torch.isfinite(a) & torch.isfinite(e) & ((a**2 + e**2) > 0)
        r, a, e = r[finite], a[finite], e[finite]
        if r.numel() == 0:
            rhos.append(1.0)
            continue
        fraction = e**2 / (a**2 + e**2).clamp_min(1e-300)
        high = fraction > torch.quantile(fraction, 0.5)
        if not bool(high.any()) or bool(high.all()):
            rhos.append(1.0)
            continue
        best, choice = math.inf, 1.0
        for rho in sorted(grid, key=lambda g: abs(math.log(g))):  # the closest to 1 first: it wins ties
            pull = r / (a**2 + (rho * e) ** 2).sqrt()
            inside = pull <= torch.quantile(pull, ONE_SIGMA)
            gap = abs(float(inside[high].double().mean() - inside[~high].double().mean()))
            if gap < best - 1e-12:
                best, choice = gap, float(rho)
        rhos.append(choice)
    return rhos


def _scales(residual: torch.Tensor, std: torch.Tensor) -> list[float]:
    """The 68.27% quantile of |pull| of each target (column)."""
    pulls = residual.double().abs() / std.double()
    return [float(torch.quantile(pulls[:, j], ONE_SIGMA)) for j in range(pulls.shape[1])]
