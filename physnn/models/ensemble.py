"""Deep ensembles: the outputs of several independently trained members, stacked like MC-dropout passes.

A deep ensemble (Lakshminarayanan et al. 2017) is N copies of one network
trained from different random initialisations and batch orders. The spread
of their predictions is an epistemic uncertainty that, unlike the spread of
MC dropout, grows under dataset shift (Ovadia et al. 2019, "Can you trust
your model's uncertainty?"): members agree where they saw data and disagree
where they extrapolate.

The members' raw outputs are stacked along the axis that MC-dropout passes
use, (M x T, B, outputs) with T = 1 without MC dropout, so that
:meth:`~physnn.models.tasks.Task.summarize` computes the ensemble mean and
spread in the same branches as MC dropout: for a Gaussian regressor,
``aleatoric`` is the root mean predicted variance (with MC dropout: of the
members' deterministic passes, for runs calibrated since 2026-12-07 and
uncalibrated runs; older calibrated runs: the mean of the T variances) and
``epistemic`` the
spread of all M x T means (the sample standard deviation), which by the law
of total variance holds both the members' disagreement and each member's
dropout spread. The central value is the mean of the members' deterministic
passes (dropout off) in the network's space (log E for a ``log`` target),
mapped to the unit once: the rule of :mod:`physnn.models.mc_dropout`, for
the same reasons. ``physnn train --ensemble N`` trains the members
(:mod:`physnn.training.ensemble`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from physnn.models.base import StagedModel
from physnn.models.mc_dropout import mc_forward_central, set_dropout

__all__ = ["stacked_outputs"]


@torch.no_grad()
def stacked_outputs(models: Sequence[StagedModel], batch: Mapping[str, torch.Tensor],
                    mc_samples: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The raw outputs of every member, (M x T, B, ...): T MC-dropout passes each (``mc_samples`` >= 2), or
    one deterministic pass (``mc_samples`` 0, T = 1); and every member's deterministic pass, (M, B, ...), the
    central value's (the same tensor without MC dropout). One model is a plain run."""
    outs, central = [], []
    for model in models:
        if mc_samples > 0:
            det, passes = mc_forward_central(model, batch, mc_samples)
        else:
            set_dropout(model, False)
            det = passes = model(batch)[None]
        outs.append(passes)
        central.append(det)
    stacked = torch.cat(outs)
    return stacked, stacked if mc_samples == 0 else torch.cat(central)
