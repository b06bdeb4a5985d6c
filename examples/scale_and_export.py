"""From many files to a C++-ready model: scan, stream under a memory budget, export with error bars.

The production story of an energy regressor:

1. the data come as several ROOT files (a glob);
2. ``physnn.scan`` computes exact statistics over every entry with dask
   (NaN/inf counts, ranges) before anything is trained;
3. training streams the files through a shuffle buffer within a memory
   budget (add ``torchrun --nproc_per_node=N`` in front of the same
   ``physnn train`` command line to train on N processes or GPUs);
4. the run is exported to ONNX with MC dropout inside the graph, and
   onnxruntime gives the same error bars as ``physnn predict --mc-samples``;
5. every output file says where it came from (``physnn_meta``).

Run (about two minutes on a laptop CPU; needs ``pip install 'physnn[onnx,dask]'``):

    python examples/scale_and_export.py [--out physnn-scale]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import physnn
from physnn.training.checkpoint import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("physnn-scale"))
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--events", type=int, default=5000, help="showers per file")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    for i in range(args.files):  # "runs" of a test beam, one file each
        physnn.simulate("showers", args.out / f"run{i:03d}.root", events=args.events, seed=100 + i, overwrite=True)
    files = str(args.out / "run*.root")

    for s in physnn.scan(files, branches=["energy", "image"]):
        print(f"scan {s.name}: {s.entries:,} entries, min {s.minimum:.3g}, max {s.maximum:.3g}, "
              f"NaN/inf {s.nonfinite}")

    model = {"name": "cnn", "params": {
        "features": [{"type": "conv", "filters": 16, "kernel_size": 3}, {"type": "pool", "pool_size": 2},
                     {"type": "conv", "filters": 16, "kernel_size": 3}, {"type": "global_pool"}],
        "head": [{"type": "dense", "units": 32}, {"type": "dropout", "rate": 0.2}]}}
    config = {"data": {"files": files, "images": {"branches": ["image"]}, "targets": ["energy"]},
              "model": model, "task": {"kind": "regression", "loss": "gaussian"},
              "train": {"epochs": 4, "batch_size": 128, "seed": 1, "memory_budget": "1 GB"}}
    run = physnn.train(config, out=args.out / "run", overwrite=True, progress=False)
    info = load_checkpoint(run.run_dir, "last.pt")["data_info"]
    how = (f"streamed through a buffer of {info['buffer_events']:,} events" if info.get("streaming") else
           "in memory (the data fit the budget)")
    print(f"trained {len(run.history)} epochs, {how}; best val loss {run.best['val_loss']:.3f}")

    exported = physnn.export(run.run_dir, args.out / "energy_mc.onnx", mc_samples=50, overwrite=True)
    print(f"exported {exported.path}: inputs {exported.inputs}, outputs {list(exported.outputs)}")

    import onnxruntime as ort
    import uproot

    with uproot.open(args.out / "run000.root") as f:
        images = f["showers"]["image"].array(library="np", entry_stop=5).astype(np.float32)
        energy = f["showers"]["energy"].array(library="np", entry_stop=5)
    pred, sigma, epistemic, std = ort.InferenceSession(str(exported.path)).run(None, {"image": images})
    ref = physnn.predict(run.run_dir, args.out / "run000.root", mc_samples=50,
                         out=args.out / "predictions.root", overwrite=True, collect=True)
    print(f"{'true E':>8} {'ONNX: E ± aleatoric ± epistemic (total)':>42} {'predict: E ± total':>20}")
    for i in range(5):
        print(f"{energy[i]:8.1f} {pred[i, 0]:14.1f} ± {sigma[i, 0]:5.1f} ± {epistemic[i, 0]:5.1f} "
              f"({std[i, 0]:5.1f}) {ref.arrays['energy_pred'][i]:12.1f} ± {ref.arrays['energy_std'][i]:5.1f}")
    meta = physnn.read_metadata(args.out / "predictions.root")
    print(f"predictions.root written by physnn {meta['physnn']} ({meta['command']}), config {meta['config_hash']}")


if __name__ == "__main__":
    main()
