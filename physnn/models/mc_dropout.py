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
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch

from physnn.errors import ConfigError
from physnn.models.base import DROPOUT_TYPES, StagedModel


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
    check_samples(samples)
    first = model.first_stochastic_stage()
    if first < 0:  # the adapter itself is stochastic: T full passes
        return naive_mc_forward(model, batch, samples)
    try:
        set_dropout(model, False)
        side = model.side(batch)
        x = model.run(model.adapt(batch), side, 0, first)
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
    return torch.cat(outs)


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


def regression_summary(pred: Mapping[str, torch.Tensor], scale: torch.Tensor) -> dict[str, torch.Tensor]:
    """The error bars of regression outputs over T passes (Kendall & Gal 2017), the one place they are computed.

    Parameters
    ----------
    pred
        :meth:`~physnn.models.tasks.Task.predict` of raw outputs (T, N, outputs): ``mean`` (T, N, K) in
        target units and, for a Gaussian head, ``var`` (T, N, K).
    scale
        The σ scale factor of each target (K,), fitted on the validation split
        (:mod:`physnn.training.calibration`).

    Returns
    -------
    dict
        ``pred`` (N, K), the mean of the T passes; ``aleatoric`` = sqrt(mean over passes of the predicted
        variance), the data's own resolution as the Gaussian head sees it (raw, not scaled); ``epistemic``
        (T >= 2 only) = the standard deviation of the T means (ddof 1), the MC-dropout spread (raw);
        ``std`` = scale x sqrt(aleatoric² + epistemic²), the calibrated total error bar.
    """
    mean = pred["mean"]
    out = {"pred": mean.mean(0)}
    total = torch.zeros_like(out["pred"])
    if "var" in pred:
        out["aleatoric"] = pred["var"].mean(0).sqrt()
        total = total + out["aleatoric"] ** 2
    if mean.shape[0] > 1:
        out["epistemic"] = mean.std(0)
        total = total + out["epistemic"] ** 2
    if len(out) > 1:
        out["std"] = total.sqrt() * scale.to(total.device, total.dtype)
    return out


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
