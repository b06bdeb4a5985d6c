"""Transfer learning: reuse a trained feature extractor in a new model.

The feature extractor is what :meth:`StagedModel.feature_prefixes` names (the
convolution stack of a CNN, the embedding and recurrent layers of an RNN).
Its weights are copied from a checkpoint into a new model whose head is
built for the new task; then they are frozen, or fine-tuned with a smaller
learning rate (``train.features_lr``).
"""

from __future__ import annotations

import os
from typing import Any

from physnn.errors import ConfigError
from physnn.models.base import StagedModel
from physnn.training.checkpoint import load_checkpoint


def transfer_features(model: StagedModel, source: str | os.PathLike, *, freeze: bool) -> dict[str, Any]:
    """Copy the feature extractor's weights from ``source`` into ``model``.

    Parameters
    ----------
    model
        The new model (same feature architecture as the source).
    source
        A checkpoint or run folder.
    freeze
        Stop gradients through the copied layers (batch norm statistics stay
        fixed too: the trainer keeps frozen modules in eval mode).

    Returns
    -------
    dict
        ``source``, ``model`` (the source's registry name) and ``tensors``
        (how many tensors were copied).
    """
    ckpt = load_checkpoint(source)
    src = ckpt["model"]
    own = model.state_dict()
    prefixes = tuple(model.feature_prefixes())
    keys = [k for k in own if k.startswith(prefixes)]
    for key in keys:
        if key not in src:
            msg = (f"--init-from {ckpt['path']}: the source model has no {key!r}; the feature extractor "
                   f"(model params 'features') must be the same as in the source run")
            raise ConfigError(msg)
        if src[key].shape != own[key].shape:
            msg = (f"--init-from {ckpt['path']}: {key} has shape {list(src[key].shape)} in the source and "
                   f"{list(own[key].shape)} here; use the same features and input shape as the source run")
            raise ConfigError(msg)
        own[key] = src[key]
    model.load_state_dict(own)
    if freeze:
        for module in model.feature_modules():
            module.requires_grad_(False)
    return {"source": ckpt["path"], "model": ckpt["config"]["model"]["name"], "tensors": len(keys)}
