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
``aleatoric`` is the root mean predicted variance and ``epistemic`` the
spread of all M x T means (the sample standard deviation), which by the law
of total variance holds both the members' disagreement and each member's
dropout spread. ``physnn train
--ensemble N`` trains the members (:mod:`physnn.training.ensemble`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from physnn.models.base import StagedModel
from physnn.models.mc_dropout import mc_forward, set_dropout

__all__ = ["stacked_outputs"]


@torch.no_grad()
def stacked_outputs(models: Sequence[StagedModel], batch: Mapping[str, torch.Tensor],
                    mc_samples: int = 0) -> torch.Tensor:
    """The raw outputs of every member, (M x T, B, ...): T MC-dropout passes each (``mc_samples`` >= 2), or
    one deterministic pass (``mc_samples`` 0, T = 1). One model is a plain run."""
    outs = []
    for model in models:
        if mc_samples > 0:
            outs.append(mc_forward(model, batch, mc_samples))
        else:
            set_dropout(model, False)
            outs.append(model(batch)[None])
    return outs[0] if len(outs) == 1 else torch.cat(outs)
