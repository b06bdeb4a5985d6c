"""physnn benchmarks: each figure beside its anchor, printed as one table.

Run with ``bench/run`` (or ``python bench/bench.py --quick``). Figures:

- simulator rates (showers/s, events/s), on one core, with and without ROOT writing;
- ROOT -> tensor load throughput of ``physnn.load`` for images and sequences,
  against bare ``uproot`` + ``awkward`` producing the same tensors from the same file.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import awkward as ak
import numpy as np
import torch
import uproot
from rich.console import Console
from rich.table import Table

import physnn
from physnn.simulation import simulate_events, simulate_showers

torch.set_num_threads(1)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    """Fastest wall time of ``repeat`` calls (the least disturbed)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bare_images(path: Path) -> dict[str, torch.Tensor]:
    with uproot.open(path) as f:
        arrays = f["showers"].arrays(["image", "label", "energy"])
    return {"image": torch.from_numpy(ak.to_numpy(arrays["image"])),
            "label": torch.from_numpy(ak.to_numpy(arrays["label"]).astype(np.int64)),
            "target": torch.from_numpy(ak.to_numpy(arrays["energy"])[:, None])}


def bare_sequences(path: Path, length: int) -> dict[str, torch.Tensor]:
    features = ["part_pt", "part_eta", "part_phi", "part_e", "part_charge"]
    with uproot.open(path) as f:
        arrays = f["events"].arrays([*features, "label", "mass"])
    order = ak.argsort(arrays["part_pt"], axis=1, ascending=False)
    cols = []
    for name in features:
        padded = ak.pad_none(arrays[name][order], length, clip=True, axis=1)
        cols.append(ak.to_numpy(ak.fill_none(padded, 0.0)).astype(np.float32))
    mask = ak.to_numpy(~ak.is_none(ak.pad_none(arrays["part_pt"], length, clip=True, axis=1), axis=1))
    return {"sequence": torch.from_numpy(np.stack(cols, axis=-1)), "mask": torch.from_numpy(mask),
            "label": torch.from_numpy(ak.to_numpy(arrays["label"]).astype(np.int64)),
            "target": torch.from_numpy(ak.to_numpy(arrays["mass"])[:, None])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller samples (for a smoke run)")
    args = parser.parse_args()
    n_showers = 4000 if args.quick else 20000
    n_events = 40000 if args.quick else 200000
    repeat = 3 if args.quick else 5
    rows: list[tuple[str, str, str, str]] = []

    t_sim = best_of(lambda: simulate_showers(n_showers, seed=1), repeat)
    rows.append(("simulate showers (numpy, 1 core)", f"{n_showers / t_sim:,.0f} showers/s", "target 2,000/s",
                 f"{n_showers / t_sim / 2000:.1f}x target"))
    t_ev = best_of(lambda: simulate_events(n_events, seed=1), repeat)
    rows.append(("simulate events (numpy, 1 core)", f"{n_events / t_ev:,.0f} events/s", "target 100,000/s",
                 f"{n_events / t_ev / 1e5:.1f}x target"))

    with tempfile.TemporaryDirectory() as tmp:
        showers = Path(tmp) / "showers.root"
        events = Path(tmp) / "events.root"
        res = physnn.simulate("showers", showers, events=n_showers, seed=1)
        rows.append(("simulate showers + ROOT write (zlib:1)", f"{res.rate:,.0f} showers/s",
                     f"{n_showers / t_sim:,.0f}/s without writing", f"{res.rate / (n_showers / t_sim):.0%}"))
        res = physnn.simulate("events", events, events=n_events, seed=1)
        rows.append(("simulate events + ROOT write (zlib:1)", f"{res.rate:,.0f} events/s",
                     f"{n_events / t_ev:,.0f}/s without writing", f"{res.rate / (n_events / t_ev):.0%}"))

        img_cfg = {"files": str(showers), "images": {"branches": "image"}, "label": "label", "targets": "energy",
                   "split": {"val": 0, "test": 0}, "standardize": {"method": "none"}}
        t_phys = best_of(lambda: physnn.load(img_cfg), repeat)
        t_bare = best_of(lambda: bare_images(showers), repeat)
        rows.append(("load images -> tensors", f"{n_showers / t_phys:,.0f} events/s",
                     f"bare uproot+awkward {n_showers / t_bare:,.0f}/s", f"overhead {t_phys / t_bare - 1:+.0%}"))

        length = 40
        seq_cfg = {"files": str(events), "label": "label", "targets": "mass", "split": {"val": 0, "test": 0},
                   "sequence": {"features": ["part_pt", "part_eta", "part_phi", "part_e", "part_charge"],
                                "max_length": length, "sort_by": "part_pt"}, "standardize": {"method": "none"}}
        t_phys = best_of(lambda: physnn.load(seq_cfg), repeat)
        t_bare = best_of(lambda: bare_sequences(events, length), repeat)
        rows.append(("load sequences -> padded tensors", f"{n_events / t_phys:,.0f} events/s",
                     f"bare uproot+awkward {n_events / t_bare:,.0f}/s", f"overhead {t_phys / t_bare - 1:+.0%}"))
        a = physnn.load(seq_cfg).train
        b = bare_sequences(events, length)
        order = np.argsort(a.entry)
        same = torch.equal(a.inputs["sequence"][order], b["sequence"])
        rows.append(("  same padded tensor as the bare path", str(same), "", ""))

    table = Table(title=f"physnn {physnn.__version__} benchmarks ({'quick' if args.quick else 'full'})",
                  title_justify="left")
    for col in ("figure", "physnn", "anchor", "ratio"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
