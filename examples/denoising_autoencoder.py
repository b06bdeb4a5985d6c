"""Denoise calorimeter showers and classify e/pi from an autoencoder's code.

1. Simulate 10k showers (e-, gamma, pi+) with the built-in calorimeter.
2. Train a convolutional denoiser on them with electronic noise (0.1 GeV per
   cell, 10x the simulator's own) and 5 % dead cells added on the fly, and
   judge it on the test split against the clean showers: the denoising gain,
   the total-energy bias, centroids and widths, image panels (PNG).
3. Write denoised showers in the input layout with MC-dropout uncertainty maps.
4. Train a compressing autoencoder (1728 cells -> 32 numbers), write the codes
   with k-means clusters, and train e/pi identification layers on the frozen
   encoder (transfer learning): the AUC on the test split.

Run: python examples/denoising_autoencoder.py [--out physnn-ae]   (about 6 minutes on 2 CPU cores)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import physnn

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("physnn-ae"))
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    out = args.out
    out.mkdir(exist_ok=True)
    showers = out / "showers.root"
    physnn.simulate("showers", showers, events=args.events, seed=11, overwrite=True)
    data = {"data.files": str(showers)}
    sets = [f"{k}={v}" for k, v in data.items()]

    denoiser = physnn.train(CONFIGS / "denoise.yaml", out=out / "denoise", overrides=sets, overwrite=True)
    report = physnn.evaluate_denoising(denoiser.run_dir, out=out / "denoise_report", mc_samples=20)
    f = report.figures
    print(f"denoising, {f['events']} test showers: RMS per cell {f['rmse_input']:.4f} -> {f['rmse_output']:.4f} GeV,"
          f" gain {f['gain']:.2f}")
    for name in ("input", "output"):
        e = f["total_energy"][name]
        print(f"  total energy {name:>6}: median E/E_true - 1 = {e['median']:+.4f}, spread {e['spread']:.4f}")
    for row in f["layers"]:
        print(f"  layer {row['layer']}: centroid shift x {row['input_centroid_shift_x']:.3f} -> "
              f"{row['output_centroid_shift_x']:.3f} cells, width/true {row['input_width_ratio_x']:.3f} -> "
              f"{row['output_width_ratio_x']:.3f}")
    print(f"  mean per-cell MC-dropout spread {f['mean_cell_std']:.4f} GeV")
    physnn.denoise(denoiser.run_dir, showers, out=out / "denoised.root", mc_samples=20, add_noise=True,
                   overwrite=True)

    compress = physnn.train(CONFIGS / "compress.yaml", out=out / "compress", overrides=sets, overwrite=True)
    codes = physnn.encode(compress.run_dir, showers, out=out / "codes.root", clusters=3, overwrite=True,
                          collect=True)
    table = np.zeros((3, 3), int)
    for c, p in zip(codes.arrays["cluster"], codes.arrays["pdgid"], strict=True):
        table[c, {11: 0, 22: 1, 211: 2}[int(p)]] += 1
    print("k-means on the 32-number codes (rows: cluster, columns: e-, gamma, pi+):")
    print(table)
    epi = physnn.train(CONFIGS / "epi_codes.yaml", out=out / "epi_codes", overrides=sets, overwrite=True,
                       init_from=compress.run_dir, freeze="features")
    preds = physnn.predict(epi.run_dir, showers, out=out / "epi_codes.root", overwrite=True)
    result = physnn.evaluate(preds.path, out=out / "epi_codes_report")
    fig = result.figures["classification"]
    print(f"e/pi from the frozen encoder's code: AUC {fig['auc']:.4f} [{fig['roc']['auc_low']:.4f}, "
          f"{fig['roc']['auc_high']:.4f}] ({result.figures['events']} test showers)")


if __name__ == "__main__":
    main()
