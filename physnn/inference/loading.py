"""A trained run loaded for inference.

Every inference command starts here: :func:`load_run` rebuilds the model of a
run folder or checkpoint (a weights-only load), and :func:`match_image_shape`
accepts images stored with another layout of the same cells.
:func:`~physnn.inference.plan.plan_prediction` points the run's data config
at the files to process (branch mapping, truth only where present, no cut
unless asked for).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physnn.data.domain import Domain
from physnn.data.transform import Transform
from physnn.errors import DataError
from physnn.models.base import StagedModel
from physnn.models.feature_domain import FeatureDomain
from physnn.models.registry import ModelIO, build_model
from physnn.models.tasks import Task
from physnn.training.checkpoint import load_checkpoint
from physnn.training.config import RunConfig
from physnn.training.device import resolve_device

__all__ = ["LoadedRun", "load_run", "match_image_shape"]


@dataclass
class LoadedRun:
    """A trained model ready to predict, with everything it was trained with."""

    model: StagedModel
    task: Task
    transform: Transform
    config: RunConfig
    io: ModelIO
    checkpoint: Path
    device: torch.device
    epoch: int = 0
    #: identities of the training files (``"<uuid>/<tree>"``); events of other files get split -1
    training_files: list[str] = field(default_factory=list)
    #: what the training inputs looked like (None for runs trained before physnn recorded it)
    domain: Domain | None = None
    #: the domain of the network's features (None for runs trained before physnn fitted it)
    feature_domain: FeatureDomain | None = None
    #: an ensemble's members (``model`` is the first); empty for a single run
    members: list[StagedModel] = field(default_factory=list)

    @property
    def models(self) -> list[StagedModel]:
        """The networks whose outputs are stacked: an ensemble's members, else the one model."""
        return self.members or [self.model]


def load_run(source: str | os.PathLike, *, device: str = "auto", which: str = "best.pt") -> LoadedRun:
    """Rebuild the model of a run folder or checkpoint (weights-only load) on ``device``; every member of an
    ensemble (``physnn train --ensemble N``)."""
    ckpt = load_checkpoint(source, which)
    cfg = RunConfig.model_validate(ckpt["config"])
    io = ModelIO.from_state(ckpt["io"])
    dev = resolve_device(device)
    states = ckpt["ensemble"]["models"] if "ensemble" in ckpt else [ckpt["model"]]
    models = []
    for state in states:
        with torch.random.fork_rng(devices=[]):  # the random initialisation is overwritten: leave the RNG be
            model = build_model(cfg.model, io)
        model.load_state_dict(state)
        models.append(model.to(dev).eval())
    return LoadedRun(models[0], Task.from_state(ckpt["task"]), Transform.from_state(ckpt["transform"]), cfg, io,
                     Path(ckpt["path"]), dev, int(ckpt.get("epoch", 0)),
                     list(ckpt.get("data_info", {}).get("file_ids", [])),
                     Domain.from_state(ckpt["domain"]) if "domain" in ckpt else None,
                     FeatureDomain.from_state(ckpt["feature_domain"]) if "feature_domain" in ckpt else None,
                     models if len(models) > 1 else [])


def match_image_shape(loaded: LoadedRun, raw: Any, where: str) -> str | None:
    """Give the images of ``raw`` the run's shape when only their layout differs (RDataFrame's ``Snapshot``
    writes ``img[3][16][16]`` as ``img[768]``); one line with both shapes when the cells cannot be the same.

    Returns
    -------
    str or None
        A note to show once when the images were reshaped.
    """
    want = None if loaded.io.image is None else tuple(loaded.io.image)
    if want is None or raw.image is None or tuple(raw.image.shape[1:]) == want:
        return None
    got = tuple(raw.image.shape[1:])
    if int(np.prod(got)) != int(np.prod(want)):
        msg = (f"{where}: images of shape {list(got)} per event ({int(np.prod(got))} cells), but the run was "
               f"trained on {list(want)} ({int(np.prod(want))} cells)")
        raise DataError(msg)
    raw.image = raw.image.reshape(len(raw.image), *want)
    return f"images of shape {list(got)} reshaped to the run's {list(want)} (the same {int(np.prod(want))} cells)"
