"""The main job on built-in demo data, end to end (``physnn demo``).

1. simulate calorimeter showers (e-, gamma, pi+; 1-100 GeV) and photons
   and neutral pions (pi0 -> two photons; 1-100 GeV);
2. train a CNN photon/pi0 classifier, predict with MC dropout, evaluate:
   the classic hard calorimeter problem, where the two photons of a pi0
   merge at high energy (e/pi is too easy to tell a good model from a bad
   one: AUC 1.000);
3. train a CNN energy regressor with a Gaussian head, predict with MC
   dropout, evaluate against the plain calibrated sum of cell energies,
   overall and per particle type;
4. simulate collision events (variable-length particle lists);
5. train a particle-flow network (``pfn``: DeepSets with Lorentz pooling) to
   tell signal from background from the particles, their identification
   (``is_muon``) and four-momenta, predict with MC dropout, evaluate;
6. train the same network to regress the resonance mass with a Gaussian head,
   predict with MC dropout, evaluate against the dimuon mass an analysis
   computes from the two muons it identifies.

Each evaluation writes ``report_NAME/report.html``: one self-contained page
with its figures, plots, run config and provenance.

The run configs below are the same as ``configs/train/{epi,energy,events_cls,
events_mass}.yaml`` with the demo's file names; the photon/pi0 CNN is a
smaller one than ``configs/train/gamma_pi0.yaml`` (the same layers, residual
blocks and flips in η and φ, with half the channels: the benchmark's is 3x
the computing per shower; 20 epochs), so that the demo stays a few minutes on a laptop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from physnn.io.write import make_folder

SHOWER_FEATURES: list[dict[str, Any]] = [
    {"type": "conv", "filters": 16, "kernel_size": 3, "kernel_initializer": "he_normal", "batch_norm": True},
    {"type": "pool", "mode": "average", "pool_size": 2},
    {"type": "conv", "filters": 32, "kernel_size": 3, "kernel_initializer": "he_normal", "batch_norm": True},
    {"type": "pool", "mode": "average", "pool_size": 2},
    {"type": "flatten"}]
"""The one feature extractor of the shipped shower CNNs (``configs/model/cnn.yaml``, ``configs/train/energy.yaml``):
the e/pi classifier's features transfer to the energy regressor (``--init-from runs/epi --freeze features``).
Average pooling keeps the deposited energy, which the regression needs; batch norm trains both in a few epochs."""

EPI_MODEL: dict[str, Any] = {"name": "cnn", "params": {
    "features": SHOWER_FEATURES,
    "head": [{"type": "dense", "units": 64, "kernel_initializer": "he_normal"}, {"type": "dropout", "rate": 0.3}],
}}

PHOTON_MODEL: dict[str, Any] = {"name": "cnn", "params": {
    "features": [  # full resolution before the first pooling: at high energy the two photons are a cell apart
        {"type": "conv", "filters": 16, "kernel_size": 3, "kernel_initializer": "he_normal", "batch_norm": True},
        {"type": "residual", "filters": 16, "kernel_size": 3},  # ResNet basic blocks, as the benchmark's
        {"type": "pool", "mode": "max", "pool_size": 2},
        {"type": "residual", "filters": 32, "kernel_size": 3},
        {"type": "pool", "mode": "max", "pool_size": 2},
        {"type": "flatten"}],
    "head": [{"type": "dense", "units": 64, "kernel_initializer": "he_normal"}, {"type": "dropout", "rate": 0.3}],
}}

ENERGY_MODEL: dict[str, Any] = {"name": "cnn", "params": {
    "sums": "per_layer",  # the cell sum's total and per-layer fractions joined to the head
    "features": SHOWER_FEATURES,
    "head": [{"type": "dense", "units": 64, "kernel_initializer": "he_normal"}, {"type": "dropout", "rate": 0.1}],
}}


#: The demo's event model: a Particle Flow Network whose Lorentz pooling sums the four-momenta (features 0-3, GeV)
#: of the particles it learns to pick, so that the pair's mass is computed (physnn/models/deepsets.py).
EVENTS_MODEL: dict[str, Any] = {"name": "pfn", "params": {
    "embedding": [{"type": "dense", "units": 64}, {"type": "dense", "units": 64}],
    "readout": "mean",
    "lorentz": {"four_momentum": [0, 1, 2, 3], "channels": 1, "scale": 100.0},
    "head": [{"type": "dense", "units": 64, "kernel_initializer": "he_normal"}, {"type": "dropout", "rate": 0.1}],
}}

#: Per-particle defines: particle identification as a detector gives it, and the Cartesian four-momentum in GeV.
EVENTS_DEFINE = {"is_muon": "abs(part_pid) == 13", "part_px": "part_pt * cos(part_phi)",
                 "part_py": "part_pt * sin(part_phi)", "part_pz": "part_pt * sinh(part_eta)"}
FOUR_MOMENTUM = ["part_px", "part_py", "part_pz", "part_e"]


def events_data(events: str | Path, *, particle_id: bool = True, four_momentum: bool = True) -> dict[str, Any]:
    """The particles of each event as a pt-ordered sequence (the demo's data config for events).

    ``particle_id``: the per-particle ``is_muon`` (``|part_pid| == 13``) is the last feature; ``four_momentum``:
    (px, py, pz, E) in GeV, not standardised, are the first four features (the PFN's Lorentz pooling sums them)
    instead of the standardised energy."""
    features = ["part_pt", "part_eta", "part_phi", "part_e", "part_charge"]
    raw = ["part_charge"]
    if four_momentum:
        features = [*FOUR_MOMENTUM, "part_pt", "part_eta", "part_phi", "part_charge"]
        raw = [*FOUR_MOMENTUM, "part_charge"]
    if particle_id:
        features, raw = [*features, "is_muon"], [*raw, "is_muon"]
    define = {k: v for k, v in EVENTS_DEFINE.items() if (k == "is_muon" and particle_id) or (
        k != "is_muon" and four_momentum)}
    return {"files": str(events), "tree": "events", **({"define": define} if define else {}),
            "sequence": {"features": features, "sort_by": "part_pt", "max_length": 24},
            "standardize": {"exclude": raw}}


def events_cls_config(events: str | Path, epochs: int = 20) -> dict[str, Any]:
    """Signal (a resonance to two muons) against background (a Drell-Yan-like continuum)."""
    return {"data": {**events_data(events), "label": "label", "classes": {0: "background", 1: "signal"},
                     "signal": "signal", "observers": ["mass"]},
            "model": EVENTS_MODEL, "task": {"kind": "classification"},
            "train": {"epochs": epochs, "batch_size": 128, "optimizer": {"lr": 2e-3},
                      "scheduler": {"name": "cosine"}, "early_stopping": {"patience": None}}}


def events_mass_config(events: str | Path, epochs: int = 20) -> dict[str, Any]:
    """The mass of the muon pair with error bars (Gaussian head + MC dropout)."""
    return {"data": {**events_data(events), "targets": {"mass": {"unit": "GeV", "kind": "mass", "transform": "log"}},
                     "observers": ["label"]},
            "model": EVENTS_MODEL, "task": {"kind": "regression", "loss": "gaussian"},
            "train": {"epochs": epochs, "batch_size": 128, "optimizer": {"lr": 2e-3},
                      "scheduler": {"name": "cosine"}, "early_stopping": {"patience": None}}}


def dimuon_mass(events: str | Path, entries: np.ndarray) -> np.ndarray:
    """The invariant mass of the two muons (``|pid| == 13``) of each event: what an analysis computes."""
    import awkward as ak

    from physnn import api

    ev = api.read(str(events), ["part_pt", "part_eta", "part_phi", "part_e", "part_pid"], tree="events")
    muon = abs(ev["part_pid"]) == 13
    pt, eta, phi, e = (ev[f"part_{k}"][muon] for k in ("pt", "eta", "phi", "e"))
    px, py, pz = ak.sum(pt * np.cos(phi), axis=1), ak.sum(pt * np.sin(phi), axis=1), ak.sum(pt * np.sinh(eta), axis=1)
    m2 = ak.to_numpy(ak.sum(e, axis=1) ** 2 - px**2 - py**2 - pz**2).astype(np.float64)
    return np.sqrt(np.clip(m2, 0.0, None))[entries]


def epi_config(showers: str | Path, epochs: int = 12) -> dict[str, Any]:
    """Electron/pion classification from the calorimeter image."""
    return {"data": {"files": str(showers), "selection": "pdgid != 22", "images": {"branches": ["image"]},
                     "label": "pdgid", "classes": [11, 211], "observers": ["energy"]},
            "model": EPI_MODEL, "task": {"kind": "classification"},
            "train": {"epochs": epochs, "batch_size": 128, "optimizer": {"lr": 1e-3},
                      "scheduler": {"name": "cosine"}, "early_stopping": {"patience": 4}}}


def photon_config(showers: str | Path, epochs: int = 20) -> dict[str, Any]:
    """Photon/pi0 classification from the calorimeter image: the photon is the signal (the benchmark's
    convention: pi0 rejection at fixed photon efficiency); class 1 = pi0, the score branch is P(photon)."""
    return {"data": {"files": str(showers), "images": {"branches": ["image"]}, "label": "pdgid",
                     "classes": {22: "photon", 111: "pi0"}, "signal": "photon",
                     "observers": ["energy", "opening_angle"], "augment": {"flip": ["eta", "phi"]}},
            "model": PHOTON_MODEL, "task": {"kind": "classification"},
            "train": {"epochs": epochs, "batch_size": 128, "optimizer": {"lr": 1e-3},
                      "scheduler": {"name": "cosine"}, "early_stopping": {"patience": None}}}


def energy_config(showers: str | Path, epochs: int = 40) -> dict[str, Any]:
    """Incident-energy regression with error bars (Gaussian head + MC dropout), as a correction to the cell sum:
    the network regresses log(E / cell sum) (``configs/train/energy.yaml``)."""
    energy = {"unit": "GeV", "kind": "energy", "transform": "log", "baseline": "cell_sum"}
    return {"data": {"files": str(showers), "images": {"branches": ["image"]}, "targets": {"energy": energy},
                     "define": {"spectrum_weight": "1 / sqrt(energy)", "cell_sum": "total(image)"},
                     "weight": "spectrum_weight", "observers": ["pdgid"]},
            "model": ENERGY_MODEL, "task": {"kind": "regression", "loss": "gaussian", "gaussian_mean": "nll"},
            "train": {"epochs": epochs, "batch_size": 128, "grad_clip": 5.0, "scheduler": {"name": "cosine"},
                      "early_stopping": {"patience": None}}}


def calibrated_sum(showers: str | Path, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """The classic estimator for the rows of a predictions file (``arrays``: entry, split, the truth, and
    in_selection where present): sum of cell energies times one factor fitted on the events the run trained on,
    as ``evaluate(..., baseline="cell-sum")`` without ``by`` calibrates it (its ``training_rows``)."""
    from physnn import api
    from physnn.evaluation.baselines import calibrate, training_rows

    image = api.read(str(showers), ["image", "energy"])
    entries = np.asarray(arrays["entry"], dtype=np.int64)
    total = np.asarray(image["image"]).reshape(len(image["energy"]), -1).sum(1)[entries]
    truth = np.asarray(arrays["energy"]) if "energy" in arrays else np.asarray(image["energy"])[entries]
    return calibrate(total, truth, training_rows(arrays))[0]


#: The demo's jobs, in order: each a run folder ``run_NAME``, predictions ``predictions_NAME.root`` and a report.
JOBS = ("photon", "energy", "events_cls", "events_mass")
#: The files the demo simulates.
SIMULATED = ("showers.root", "gamma_pi0.root", "events.root")


def check_outputs(out: Path, *, overwrite: bool = False) -> None:
    """Refuse, before any work, a folder that holds what an earlier demo wrote: its simulated files, run folders,
    predictions and reports (``report_JOB`` holding a report, as :func:`physnn.evaluate` refuses one).

    Raises
    ------
    OutputError
        Without ``overwrite``, naming the outputs found.
    """
    from physnn.errors import OutputError

    if overwrite:
        return
    from physnn.evaluation.report import REPORT_MARKERS

    names = [*SIMULATED, *(f"run_{job}" for job in JOBS), *(f"predictions_{job}.root" for job in JOBS)]
    found = [name for name in names if (out / name).exists() and not ((out / name).is_dir()
                                                                      and not any((out / name).iterdir()))]
    found += [f"report_{job}" for job in JOBS if any((out / f"report_{job}" / m).is_file() for m in REPORT_MARKERS)]
    if found:
        msg = f"{out}: holds the outputs of an earlier demo ({', '.join(found)}); pass overwrite=True to replace them"
        raise OutputError(msg, options=["overwrite"])


def run(out: Path, *, events: int = 10000, seed: int = 1, epochs: int | None = None,
        mc_samples: int = 50, overwrite: bool = False, say: Callable[[str], None] = print,
        image_format: str = "png") -> dict[str, Any]:
    """Run the demo into ``out``; returns the paths (``page``: each evaluation's ``report.html``) and the
    evaluation figures. Without ``overwrite``, a folder that holds an earlier demo's outputs is refused before any
    work (:func:`check_outputs`). ``image_format``: the figures' file format, ``png``, ``svg`` or ``pdf``."""
    from physnn import api
    from physnn.evaluation.image_format import check_format

    check_format(image_format)  # before any work
    check_outputs(out, overwrite=overwrite)
    make_folder(out)
    showers = out / "showers.root"
    sim = api.simulate("showers", showers, events=events, seed=seed, overwrite=True)
    say(f"simulated {sim.events:,} showers -> {sim.path} ({sim.rate:,.0f} showers/s)")
    photons = out / "gamma_pi0.root"
    pi0 = api.simulate("showers", photons, events=events, seed=seed + 1, overwrite=True,
                       overrides=["particles=[gamma,pi0]"])
    say(f"simulated {pi0.events:,} photon and pi0 showers -> {pi0.path} ({pi0.rate:,.0f} showers/s)")
    events_file = out / "events.root"
    ev = api.simulate("events", events_file, events=events, seed=seed, overwrite=True)
    say(f"simulated {ev.events:,} collision events -> {ev.path} ({ev.rate:,.0f} events/s)")
    results: dict[str, Any] = {"showers": showers, "gamma_pi0": photons, "events": events_file}
    more = [epochs] if epochs else []
    jobs = zip(JOBS, (photon_config(photons, *more), energy_config(showers, *more),
                      events_cls_config(events_file, *more), events_mass_config(events_file, *more)), strict=True)
    for name, cfg in jobs:
        run_dir = out / f"run_{name}"
        trained = api.train(cfg, out=run_dir, overwrite=True, progress=None, image_format=image_format)
        say(f"trained {name}: {trained.task.describe()}, best epoch {trained.best['epoch']} -> {run_dir}")
        preds = out / f"predictions_{name}.root"
        source = events_file if name.startswith("events") else photons if name == "photon" else showers
        pred = api.predict(run_dir, source, out=preds, mc_samples=mc_samples, keep_samples=name == "photon",
                              overwrite=True, collect=name in ("energy", "events_mass"))
        say(f"predicted {pred.events:,} events with MC dropout (T = {mc_samples}) -> {preds} "
            f"({pred.rate:,.0f} events/s)")
        baselines = None
        if name == "energy":
            assert pred.arrays is not None
            baselines = {"calibrated cell sum": {"energy": calibrated_sum(showers, pred.arrays)}}
        if name == "events_mass":
            assert pred.arrays is not None
            baselines = {"dimuon mass (muons identified)": {"mass": dimuon_mass(events_file, pred.arrays["entry"])}}
        report = api.evaluate(preds, out=out / f"report_{name}", baselines=baselines,
                              by="pdgid" if name == "energy" else None,
                              bins_of="energy" if name == "photon" else None, image_format=image_format,
                              overwrite=overwrite)
        page = next((p for p in report.files if p.name == "report.html"), None)
        say(f"evaluated {name} on {report.figures['events']:,} events ({report.figures['split']}) -> "
            f"{page or report.out}")
        results[name] = {"run": run_dir, "predictions": preds, "report": report.out, "page": page,
                         "figures": report.figures}
    return results
