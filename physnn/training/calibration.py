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
``s_t x sqrt(aleatoric² + epistemic²)`` (Kendall & Gal 2017, see
:func:`physnn.models.mc_dropout.regression_summary`); ``t_aleatoric`` and
``t_epistemic`` stay the raw predicted σ and the raw MC-dropout spread.
Deterministic predictions have their own factor (the aleatoric σ alone; for
an ensemble, with the members' spread). Both are fitted around the central
value that ``predict`` writes, the deterministic pass in either mode (the
mean of an ensemble's members in the network's space):
:mod:`physnn.models.mc_dropout`. An ensemble's factors are fitted for
the ensemble (:mod:`physnn.training.ensemble`). The factors are fitted on the
whole validation split (streamed batch by batch when it is), stored in the
task, applied by ``predict`` and ``export``, recorded in ``physnn_meta`` and
judged on the test split by ``evaluate``. The same pass gives the split-
conformal quantiles (:mod:`physnn.models.conformal`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

from physnn.data.dataset import TRUTH
from physnn.models.base import StagedModel
from physnn.models.ensemble import stacked_outputs
from physnn.models.tasks import ONE_SIGMA, Task

#: MC-dropout passes of the fit: the T that physnn suggests (``predict --mc-samples 50``). The sample spread of
#: fewer passes is noisier, which widens the pulls: a scale fitted with T = 30 covered 70% at T = 50 on the
#: demo's energy run (measured on the validation split), 68.3% when fitted with the T used
CALIBRATION_SAMPLES = 50


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
        σ is not defined, e.g. no Gaussian head and no dropout),
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
            parts.append(task.regression_summary(passes, central, ones))
        targets.append(batch["target"].double().cpu())
    target = torch.cat(targets)
    scales: dict[str, list[float]] = {}
    conformal: dict[str, dict] = {}
    for mode, parts in (("deterministic", det), ("mc", mc)):
        pred = torch.cat([p["pred"] for p in parts])
        std = torch.cat([p["std"] for p in parts]) if "std" in parts[0] else None
        if std is not None and bool((std > 0).all()):
            scales[mode] = _scales(target - pred, std)
            conformal[mode] = conformal_quantiles(target - pred, std)
        elif std is None:  # no σ: intervals of constant width, from the absolute residuals
            conformal[mode] = conformal_quantiles(target - pred, None)
    return scales, conformal


def _scales(residual: torch.Tensor, std: torch.Tensor) -> list[float]:
    """The 68.27% quantile of |pull| of each target (column)."""
    pulls = residual.double().abs() / std.double()
    return [float(torch.quantile(pulls[:, j], ONE_SIGMA)) for j in range(pulls.shape[1])]
