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
        ``source``, ``model`` (the source's registry name), ``tensors`` (how
        many tensors were copied), ``prefixes`` (their state-dict prefixes),
        ``head`` (the source's tensors left behind), ``layers`` and
        ``parameters`` (of the feature extractor) and ``frozen``; see
        :func:`describe_transfer`.
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
    params = {id(p): p for m in model.feature_modules() for p in m.parameters()}
    layers = [m for f in model.feature_modules() for m in f.modules() if any(True for _ in m.parameters(recurse=False))]
    source = f"{ckpt['path']} (member 0 of its ensemble)" if "ensemble" in ckpt else ckpt["path"]
    return {"source": source, "model": ckpt["config"]["model"]["name"], "tensors": len(keys),
            "prefixes": [p for p in prefixes if any(k.startswith(p) for k in keys)],
            "head": sum(not k.startswith(prefixes) for k in src), "layers": len(layers),
            "parameters": sum(p.numel() for p in params.values()), "frozen": freeze}


def describe_transfer(info: dict[str, Any], features_lr: float = 1.0) -> str:
    """One line on what :func:`transfer_features` did, e.g.

    ``init from runs/epi/best.pt: 2 tensors transferred (stages.0.*), the head starts afresh (4 tensors in
    the source); frozen: features (1 layer, 112 parameters)``
    """
    where = ", ".join(f"{p}*" for p in info["prefixes"])
    layers = f"{info['layers']} layer{'s' if info['layers'] != 1 else ''}, {info['parameters']:,} parameters"
    if info["frozen"]:
        how = f"frozen: features ({layers})"
    else:
        rate = "the full learning rate" if features_lr == 1.0 else f"{features_lr:g} x the learning rate"
        how = f"fine-tuned: features ({layers}) at {rate}"
    return (f"init from {info['source']}: {info['tensors']} tensors transferred ({where}), the head starts afresh "
            f"({info['head']} tensors in the source); {how}")
