"""Split-conformal intervals of regression outputs, fitted on the validation split.

Split conformal prediction (Vovk et al. 2005; Lei et al. 2018; the tutorial of
Angelopoulos & Bates 2021) turns any predictor into intervals with a
coverage guarantee. With a normalised score ``s = |true - pred| / σ`` (σ the
run's raw predicted error bar, ``sqrt(aleatoric² + (rho epistemic)²)`` with
the run's epistemic weight rho (:mod:`physnn.training.calibration`); 1 for a
regressor without one, so that the interval has one width for all events)
computed on the ``n`` validation events, and ``q`` its
``ceil((n + 1) L)``-th smallest value (``L`` the level), the interval
``pred ± q σ`` of a new event covers its true value with probability

    L  <=  P(true in interval)  <=  L + 1 / (n + 1).

**The assumption** is that the new event and the validation events are
exchangeable: drawn from the same distribution. The guarantee is marginal
(on average over events like the validation events), not per event nor per
energy bin, and it says nothing about events unlike the validation events:
under a shift of the energy range or of the detector it holds no more than
any other error bar (``physnn evaluate`` measures coverage per bin and
in and out of the training domain; ``examples/domain_shift.py`` under shift).

The MC-dropout quantiles are fitted with T = 50 passes
(:data:`physnn.training.calibration.CALIBRATION_SAMPLES`) around the
deterministic central value that ``predict`` writes; another T changes the
spread's noise, and the scores with it. The validation split also chose
the best epoch, a mild use of the same events twice.

The quantiles are fitted at the end of training for the levels of
:data:`LEVELS`, per target and per prediction mode (deterministic, MC
dropout; an ensemble's own), by :mod:`physnn.training.calibration`, stored
in the task, and applied by ``physnn predict --conformal LEVEL`` (``t_low``,
``t_high`` branches).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from physnn.errors import ConfigError

__all__ = ["LEVELS", "check_level", "conformal_bounds", "conformal_quantiles", "level_key"]

#: The coverage levels whose conformal quantiles a run stores (68.27% is ±1σ of a Gaussian).
LEVELS = (0.6827, 0.8, 0.9, 0.95, 0.99)


def level_key(level: float) -> str:
    """The key of a level in a run's quantiles: ``0.9`` -> ``"0.9"``."""
    return f"{level:g}"


def conformal_quantiles(residual: torch.Tensor, std: torch.Tensor | None) -> dict[str, Any]:
    """The split-conformal quantiles of the normalised scores ``|residual| / std`` (N, K) at each level.

    Returns
    -------
    dict
        ``{"n": N, "normalised": bool, "quantiles": {level_key: [q per target]}}``; ``inf`` where
        ``(N + 1) L`` exceeds N (too few validation events for the level).
    """
    score = residual.double().abs()
    if std is not None:
        score = score / std.double()
    n = score.shape[0]
    ordered = torch.sort(score, dim=0).values
    quantiles = {}
    for level in LEVELS:
        rank = math.ceil((n + 1) * level)  # 1-based rank of the conformal quantile
        quantiles[level_key(level)] = ([math.inf] * score.shape[1] if rank > n else
                                       [float(v) for v in ordered[rank - 1]])
    return {"n": int(n), "normalised": std is not None, "quantiles": quantiles}


def check_level(level: float, fitted: dict[str, Any] | None, what: str) -> None:
    """Refuse, in one line, a level the run has no quantile for (or a run fitted without any)."""
    if fitted is None:
        msg = (f"--conformal: {what} has no conformal quantiles (a regression run trained before physnn fitted "
               f"them, or with train.calibrate_sigma false); train it again")
        raise ConfigError(msg)
    if level_key(level) not in fitted["quantiles"]:
        msg = f"--conformal {level:g}: expected one of the fitted levels {', '.join(map(level_key, LEVELS))}"
        raise ConfigError(msg)
    if not all(math.isfinite(q) for q in fitted["quantiles"][level_key(level)]):
        msg = (f"--conformal {level:g}: {what} has {fitted['n']} validation events, too few for this level "
               f"(it needs at least {math.ceil(level / (1 - level))}); take a lower level")
        raise ConfigError(msg)


def conformal_bounds(out: Mapping[str, torch.Tensor], fitted: dict[str, Any] | None, level: float,
                     scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``pred -/+ q sigma`` (N, K) of a regression summary ``out`` at ``level``: ``sigma`` the raw error bar
    the quantiles were fitted with, ``out["std"]`` over the σ ``scale`` (1 for unnormalised quantiles)."""
    check_level(level, fitted, "the run")
    assert fitted is not None
    pred = out["pred"]
    half = torch.tensor(fitted["quantiles"][level_key(level)], dtype=pred.dtype, device=pred.device)
    if fitted["normalised"]:
        half = half * out["std"] / scale.to(out["std"])
    return pred - half, pred + half
