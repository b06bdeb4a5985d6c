"""Monte Carlo dropout: T stochastic passes with dropout on and batch norm off.

Dropout kept active at test time samples from an approximate posterior of
the network (Gal & Ghahramani 2016); the spread of T passes is the model's
(epistemic) uncertainty. Two traps are avoided here:

- only dropout layers are put in training mode; batch normalisation stays in
  eval mode, otherwise it would normalise with the statistics of the
  prediction batch and change the predictions;
- the deterministic part of the network before the first dropout (for a CNN
  with dropout in its dense head: every convolution) is computed once per
  event and its output is repeated T times; only the rest runs T times, as
  one batch of T x B rows. This gives the same distribution as T full passes
  at a fraction of the cost (``bench/`` measures it).

**The central value is the deterministic pass, the passes give the spread.**
A regressor's written ``pred`` is the network with dropout off (one more
pass of the part after the cached prefix), not the mean of the T passes:
with inverted dropout the deterministic pass is the network the training
fitted, and the mean of T passes is the same up to a noise of its own
(std / √T per event, different for every seed). For a ``log`` target the mean
of the T values of exp(μ) is also biased up by Jensen's inequality, by
about half the MC variance, whatever T. (On the demo's energy run the old
mean of T = 50 values in GeV had a σ of (pred - true) 3.47-3.67 GeV against
3.33 GeV deterministic.) Classifiers keep the mean probability of the
passes, the standard MC-dropout predictive distribution.

**The aleatoric part is the deterministic pass's σ too**, not the mean of
the T predicted variances: with dropout on, the variance head's output
scatters, and the mean of the variances is biased up, the more the smaller
the σ (on the demo's energy run 1.35x the deterministic σ for e-/gamma and
1.05x for pi+, whose σ is 6x larger), so that no single scale could make
both types cover 68%. (An ensemble without MC dropout: the mean of its
members' variances, the passes being the members' deterministic passes.
This holds for runs calibrated since 2026-12-07 and for runs without
calibration; a run calibrated before, with a fitted scale but without the
weight rho below, keeps the mean of the T variances its scale was fitted
with: :func:`summary_weight`.)

**The spread is combined in the network's space, and mapped once.** The
aleatoric variance and the epistemic variance
(the variance of the T means) are added in the space the network regresses
(log E for ``transform: log``); the total is mapped to the unit at the
central value as the network's Gaussian is for one pass
(:func:`~physnn.models.target_maps.to_units`: for ``log`` the σ of the
log-normal, sqrt((exp(v) - 1) exp(2μ + v))), and ``t_aleatoric`` and
``t_epistemic`` share it in the proportions of their variances in that space,
so that ``t_std`` = s sqrt(aleatoric² + (rho epistemic)²) holds for every
target (s and rho: :mod:`physnn.training.calibration`).
The written interval ``pred ± std`` (and the conformal ``t_low``, ``t_high``)
is symmetric in the unit; the σ scale s and the conformal quantiles are
fitted on the validation split around the same central value
(:mod:`physnn.training.calibration`), which absorbs the log-normal's
asymmetry on average. ``t_samples`` keeps each pass's value in the unit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from physnn.errors import ConfigError
from physnn.models.base import DROPOUT_TYPES, StagedModel

#: The suffix of the σ-scale key of a mode's epistemic weight rho: ``sigma_scale["mc" + EPISTEMIC]``.
EPISTEMIC = "_epistemic"


def set_dropout(model: torch.nn.Module, active: bool) -> None:
    """Eval mode everywhere, dropout layers (and RNN dropout) in training mode when ``active``."""
    model.eval()
    if not active:
        return
    for module in model.modules():
        if isinstance(module, DROPOUT_TYPES) or (isinstance(module, torch.nn.RNNBase) and module.dropout > 0):
            module.train()


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's RNG (that draws the dropout masks) for a block, restoring the caller's RNG after."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def repeat_rows(x: torch.Tensor, times: int) -> torch.Tensor:
    """(N, ...) -> (T x N, ...): the T copies one after the other, so (T x N, O) reshapes to (T, N, O)."""
    return x.repeat(times, *([1] * (x.dim() - 1)))


@torch.no_grad()
def mc_forward(model: StagedModel, batch: Mapping[str, torch.Tensor], samples: int, *,
               max_rows: int = 65536) -> torch.Tensor:
    """T stochastic outputs per event with prefix caching.

    Parameters
    ----------
    model
        A registry model.
    batch
        Input tensors of B events.
    samples
        T, the number of stochastic passes.
    max_rows
        Largest number of rows (T x events) sent through the stochastic part at once.

    Returns
    -------
    torch.Tensor
        Shape (T, B, outputs).
    """
    return _passes(model, batch, samples, max_rows=max_rows, central=False)[1]


@torch.no_grad()
def mc_forward_central(model: StagedModel, batch: Mapping[str, torch.Tensor], samples: int, *,
                       max_rows: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """The deterministic output (1, B, outputs), dropout off, and the T stochastic outputs (T, B, outputs) of
    :func:`mc_forward` (the same masks for the same seed): the central value and the spread's passes. The
    deterministic pass costs one pass of the part after the cached prefix."""
    central, passes = _passes(model, batch, samples, max_rows=max_rows, central=True)
    assert central is not None
    return central, passes


def _passes(model: StagedModel, batch: Mapping[str, torch.Tensor], samples: int, *, max_rows: int,
            central: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
    """(deterministic output (1, B, outputs) when ``central``, else None; T stochastic outputs (T, B, outputs))."""
    check_samples(samples)
    first = model.first_stochastic_stage()
    if first < 0:  # the adapter itself is stochastic: T full passes
        det = None
        if central:
            set_dropout(model, False)
            det = model(batch)[None]
        return det, naive_mc_forward(model, batch, samples)
    try:
        set_dropout(model, False)
        side = model.side(batch)
        x = model.run(model.adapt(batch), side, 0, first)
        det = model.run(x, side, first)[None] if central else None
        set_dropout(model, True)
        n = x.shape[0]
        per_pass = max(1, max_rows // max(n, 1))
        outs = []
        for lo in range(0, samples, per_pass):
            t = min(per_pass, samples - lo)
            xt = repeat_rows(x, t)
            side_t = {k: repeat_rows(v, t) for k, v in side.items()}
            outs.append(model.run(xt, side_t, first).reshape(t, n, -1))
    finally:  # also when a pass fails (e.g. out of memory): the model is left deterministic
        set_dropout(model, False)
    return det, torch.cat(outs)


@torch.no_grad()
def naive_mc_forward(model: StagedModel, batch: Mapping[str, torch.Tensor], samples: int) -> torch.Tensor:
    """T full forward passes (the reference that :func:`mc_forward` must match). Shape (T, B, outputs)."""
    check_samples(samples)
    try:
        set_dropout(model, True)
        outs = torch.stack([model(batch) for _ in range(samples)])
    finally:
        set_dropout(model, False)
    return outs


def check_samples(samples: int) -> None:
    """T must be at least 2: the spread of one pass is undefined (0 means no MC dropout, a separate path)."""
    if samples < 2:
        msg = f"--mc-samples {samples}: MC dropout needs T >= 2 passes for a spread (0: deterministic)"
        raise ConfigError(msg)


def regression_summary(pred: Mapping[str, torch.Tensor], central: Mapping[str, torch.Tensor] | None,
                       scale: torch.Tensor,
                       to_units: Callable[[torch.Tensor, torch.Tensor | None], Mapping[str, torch.Tensor]],
                       weight: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The central value and error bars of regression outputs over T passes (Kendall & Gal 2017), the one place
    they are computed. Everything is combined in the network's space (log E for a ``log`` target) and mapped to
    the target's unit once, at the central value (see the module docs).

    Parameters
    ----------
    pred
        The network's Gaussian of each pass in its own space (:meth:`~physnn.models.tasks.Task.predict` with
        ``units=False``): ``mean`` (T, N, K) and, for a Gaussian head, ``var`` (T, N, K).
    central
        The same of the deterministic pass of each member (M, N, K), dropout off: the mean of their means is
        the central value. None: the mean of ``pred``'s means (``pred`` deterministic: an ensemble's members).
    scale
        The σ scale factor of each target (K,), fitted on the validation split
        (:mod:`physnn.training.calibration`).
    to_units
        ``(mean, var) -> {"mean", "var"}`` in the target's unit (:func:`physnn.models.target_maps.to_units`).
    weight
        The epistemic part's weight rho of each target (K,) in the calibrated total, fitted on the validation split
        with the scale (:mod:`physnn.training.calibration`); ones for a run without calibration. None only for a
        run calibrated before rho was fitted (:func:`summary_weight`), whose scale was fitted with rho = 1 and
        the mean of the passes' variances as the aleatoric part: both as then.

    Returns
    -------
    dict
        ``pred`` (N, K), the central value in the target's unit; with a Gaussian head ``aleatoric``, the root
        mean predicted variance of ``central`` (of ``pred`` without ``central`` or ``weight``), the data's own
        resolution (raw, not scaled);
        with T >= 2 ``epistemic``, the
        spread of the T means (ddof 1, raw); ``std`` = scale x sqrt(aleatoric² + (weight x epistemic)²), the
        calibrated total error bar. In the unit, the raw total sqrt(aleatoric² + epistemic²) is the σ of the
        network's Gaussian of variance aleatoric² + epistemic² around the central value (for ``log``: of the
        log-normal), and the two parts share it in the proportions of their variances in the network's space;
        the weight re-weighs the two parts in the unit, so that the relation above holds for every target.
    """
    mean = pred["mean"]
    centre = (pred if central is None else central)["mean"].mean(0)
    out = {"pred": to_units(centre, None)["mean"]}
    parts: dict[str, torch.Tensor] = {}
    if "var" in pred:  # the deterministic pass's variance (module docs); an old calibrated run: the passes' mean
        parts["aleatoric"] = (pred if central is None or weight is None else central)["var"].mean(0)
    if mean.shape[0] > 1:
        parts["epistemic"] = mean.var(0)
    if not parts:
        return out
    total = sum(parts.values(), torch.zeros_like(centre))
    sigma = to_units(centre, total)["var"].sqrt()  # the total error bar in the unit
    positive = total > 0
    for key, part in parts.items():
        out[key] = torch.where(positive, sigma * (part / torch.where(positive, total, 1.0)).sqrt(), 0.0)
    if weight is not None and len(parts) == 2:  # the epistemic part re-weighed (weight 1: sigma itself)
        rho = weight.to(sigma.device, sigma.dtype)
        sigma = (out["aleatoric"] ** 2 + (rho * out["epistemic"]) ** 2).sqrt()
    out["std"] = sigma * scale.to(sigma.device, sigma.dtype)
    return out


def epistemic_weight(sigma_scale: Mapping[str, Any], mc: bool) -> torch.Tensor | None:
    """The epistemic part's weight rho of each target (K,) for MC-dropout (``mc``) or deterministic predictions
    (an ensemble's members' spread), stored next to the σ scales as ``"mc_epistemic"`` and
    ``"deterministic_epistemic"`` (:mod:`physnn.training.calibration`); None where the run has none (runs
    calibrated before rho was fitted, modes without an epistemic part): weight 1."""
    value = sigma_scale.get(("mc" if mc else "deterministic") + EPISTEMIC)
    return None if value is None else torch.tensor(value, dtype=torch.float32)


def summary_weight(sigma_scale: Mapping[str, Any], mc: bool, targets: int) -> torch.Tensor | None:
    """The ``weight`` that :func:`regression_summary` gets: the fitted rho (:func:`epistemic_weight`); None only
    for a run calibrated before rho was fitted (a fitted scale of the mode but no rho), whose aleatoric part is
    the mean of the T variances, as its scale was fitted; ones (K,) for every other run (not calibrated, e.g.
    ``calibrate_sigma: false`` or an empty validation split), whose aleatoric part is the dropout-off σ."""
    mode = "mc" if mc else "deterministic"
    rho = epistemic_weight(sigma_scale, mc)
    if rho is None and mode not in sigma_scale:
        return torch.ones(targets)
    return rho


def classification_summary(prob: torch.Tensor, *, binary: bool, keep_samples: bool = False, signal: int = 1
                           ) -> dict[str, torch.Tensor]:
    """The per-event summary of class probabilities of T passes (T, N, K).

    ``signal``: the class index whose probability a binary classifier's ``score`` is (the data config's
    ``signal``; default class 1).

    Returns
    -------
    dict
        ``prob`` (N, K) the mean class probabilities, ``pred`` their argmax, ``score`` (binary: P(class
        ``signal``)); with T >= 2 ``prob_std`` (and ``score_std``), the spread of the T passes; ``keep_samples``:
        also the T passes per event, ``score_samples`` (N, T) or ``prob_samples`` (N, T, K).
    """
    out = {"prob": prob.mean(0)}
    out["pred"] = out["prob"].argmax(-1)
    if binary:
        out["score"] = out["prob"][..., signal]
    if prob.shape[0] > 1:
        out["prob_std"] = prob.std(0)
        if binary:
            out["score_std"] = out["prob_std"][..., signal]
    if keep_samples:
        if binary:
            out["score_samples"] = prob[..., signal].transpose(0, 1)
        else:
            out["prob_samples"] = prob.transpose(0, 1)
    return out
