"""The GAN generator's speed levers, one at a time: CPU ms per shower of the forward pass on one pinned core.

Usage (from the repository root; RUN: a fastsim run, e.g. ``physnn train configs/train/fastsim.yaml --set
train.epochs=1``; the speed does not depend on the weights)::

    OMP_NUM_THREADS=1 python bench/gan_levers.py RUN [--events 10000] [--batch 10000]

Rows: the plain pass with the conditions as concatenated maps in the default layout, channels-last only, the
conditions as a per-event bias only (default layout), both, then both with the pass tiled (``TILE`` showers, and a
few other tile sizes); each with the largest difference of its cells from the plain pass's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import physnn
from physnn.models import gan, generation

torch.set_num_threads(1)


def _concatenated(conv: torch.nn.Conv2d, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """The generator's convolution as it was: the conditions as constant maps concatenated to the input."""
    joined = torch.cat([h, gan._maps(cond, h)], dim=1)
    return conv(joined.contiguous(memory_format=torch.channels_last))  # a no-op unless the lever is on


@contextlib.contextmanager
def lever(bias: bool, channels_last: bool, tile: int | None) -> Iterator[None]:
    """The generator with the given levers on (the others off) until exit."""
    saved = gan.conv_with_conditions, torch.channels_last, generation.TILE
    try:
        if not channels_last:
            torch.channels_last = torch.contiguous_format  # every .contiguous(memory_format=...) a no-op
        if not bias:
            gan.conv_with_conditions = _concatenated
        generation.TILE = tile or 10**9
        yield
    finally:
        gan.conv_with_conditions, torch.channels_last, generation.TILE = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    loaded = physnn.load_run(args.run, device="cpu")
    task, model = loaded.task, loaded.model
    n, batch = args.events, args.batch
    raw = task.sample_conditions(n, np.random.default_rng(0))
    cond, incident = task.conditions_tensor(raw), task.incident_of(raw)
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(1))

    def forward() -> np.ndarray:
        out = np.empty((n, *task.shape), np.float32)
        with torch.inference_mode():
            for lo in range(0, n, batch):
                out[lo:lo + batch] = task.to_phys(task.generate(
                    model, z[lo:lo + batch], cond[lo:lo + batch], incident[lo:lo + batch],
                    generator=torch.Generator().manual_seed(lo))).numpy()
        return out

    variants = [("plain: condition maps concatenated, default layout", False, False, None),
                ("channels-last only", False, True, None), ("conditions as a per-event bias only", True, False, None),
                ("bias + channels-last", True, True, None),
                *[(f"bias + channels-last + tiles of {t}", True, True, t) for t in (32, generation.TILE, 128, 256)]]
    reference = None
    print(f"{n:,} showers, batch {batch:,}, one core, torch {torch.__version__}")
    for name, bias, last, tile in variants:
        with lever(bias, last, tile):
            forward()
            times = []
            for _ in range(args.repeat):
                t0 = time.process_time()  # CPU time: other jobs on the machine do not inflate it
                out = forward()
                times.append(time.process_time() - t0)
        reference = out if reference is None else reference
        diff = np.abs(out - reference).max()
        best = min(times) / n
        print(f"{name:55s} {best * 1e3:7.3f} ms/shower {1 / best:8,.0f}/s   max |diff| {diff:.1e} GeV")


if __name__ == "__main__":
    main()
