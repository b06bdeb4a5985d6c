"""Read real CMS open data (RNTuple) as muon sequences and compute the dimuon mass.

The tensors physnn produces are the input of the LSTM/GRU models; here we
check them against physics: the invariant mass of the two leading muons,
computed from the padded sequence tensor, shows the J/psi, Upsilon and Z.

    python examples/cms_dimuon_sequences.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import physnn

FILE = Path(__file__).resolve().parents[1].parent / "shared/data/real/" \
    "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"


def main() -> None:
    data = physnn.load({"files": str(FILE), "selection": "nMuon >= 2",
                        "sequence": {"features": ["Muon_pt", "Muon_eta", "Muon_phi"], "max_length": 2,
                                     "sort_by": "Muon_pt"},
                        "standardize": {"method": "none"}, "split": {"val": 0, "test": 0}})
    seq = data.train.inputs["sequence"].numpy().astype(np.float64)
    pt, eta, phi = seq[..., 0], seq[..., 1], seq[..., 2]
    m2 = 2 * pt[:, 0] * pt[:, 1] * (np.cosh(eta[:, 0] - eta[:, 1]) - np.cos(phi[:, 0] - phi[:, 1]))
    mass = np.sqrt(m2)
    print(f"{len(mass)} events with two muons; sequence tensor {tuple(data.train.inputs['sequence'].shape)}")
    counts, edges = np.histogram(np.log10(mass), bins=20, range=(0, 2.2))
    for c, lo in zip(counts, edges, strict=False):
        print(f"{10**lo:8.1f} GeV  {'#' * int(c // 2)}")


if __name__ == "__main__":
    main()
