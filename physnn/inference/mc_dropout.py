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
    first = model.first_stochastic_stage()
    if first < 0:  # the adapter itself is stochastic: T full passes
        return naive_mc_forward(model, batch, samples)
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
    set_dropout(model, False)
    return torch.cat(outs)


@torch.no_grad()
def naive_mc_forward(model: StagedModel, batch: Mapping[str, torch.Tensor], samples: int) -> torch.Tensor:
    """T full forward passes (the reference that :func:`mc_forward` must match). Shape (T, B, outputs)."""
    set_dropout(model, True)
    outs = torch.stack([model(batch) for _ in range(samples)])
    set_dropout(model, False)
    return outs
