"""physnn benchmarks: each figure beside its anchor, printed as one table.

Run with ``bench/run`` (or ``python bench/bench.py --quick``). ``--only GROUP`` runs one group:

- ``model_quality``: the four groups below in this order, each followed by its wall time against a 20-minute
  budget: every goal of issue 30 measured against the classic method;
- ``quality``: the ``physnn demo`` jobs (photon/π0 CNN vs BDT, energy CNN vs cell sum, event model vs the
  likelihood ratio and the dimuon mass);
- ``energy``: the energy regression per particle type and energy bin against the cell sum calibrated per type,
  with each type's coverage and pull width (``examples/energy_vs_cell_sum.py``, ``ENERGY_EVENTS`` showers);
- ``photon_id``: photon/π0 CNN vs shower-shape BDT per energy bin, on the default and on the strip geometry
  (``examples/gamma_pi0.py``, ``PHOTON_EVENTS`` showers, ``PHOTON_SPECTRUM``);
- ``sequences``: the sequence families with and without particle ID (``examples/sequence_benchmark.py``,
  ``SEQUENCE_FAMILIES``);
- ``training``: physnn's training epoch vs a hand-written loop and under torchrun;
- ``mcdropout``: prefix-cached MC dropout vs the naive loop;
- ``generation``: the shipped GAN's speed on one core at batch 1, 100 and 10,000 (ms per shower: the bare
  forward pass in torch and in onnxruntime, ``physnn generate`` with ROOT writing, the writing apart) beside the
  built-in simulator.

Figures:

- simulator rates (showers/s, events/s), on one core, with and without ROOT writing;
- a training epoch of physnn's trainer against a minimal hand-written PyTorch
  loop on the same CNN, tensors and batch size (target: within 10 %), and
  the same epoch under ``torchrun`` with two processes;
- peak resident memory of a training job on a file whose tensors are several
  times the ``train.memory_budget`` (streamed through the shuffle buffer),
  against the same job in memory (each in a fresh process, ``bench/peak_rss.py``);
- ROOT -> tensor load throughput of ``physnn.load`` for images and sequences,
  against bare ``uproot`` + ``awkward`` producing the same tensors from the same file;
- GAN fast simulation (issue 31's timing, CaloChallenge style): ms per shower of the shipped generator at batch
  1, 100 and 10,000 on one pinned core, the bare forward pass (torch; onnxruntime on the exported graph, with its
  largest difference from torch), ``physnn generate`` with ROOT writing (zlib:1, the default, and zstd:1) against
  the goal of 2,000 showers/s at batch 10,000, and the ROOT writing apart, beside the built-in simulator;
- MC-dropout prediction with prefix caching against the naive loop of T full
  forward passes (same model, same events), and the ratio of their spreads;
- recurrent models on padded sequences: training and inference samples/s of
  the same LSTM/GRU (same weights) run on padded batches with masking vs
  packed sequences, and the 1D-conv baseline;
- photon vs π0 -> two photons per energy bin: the CNN of ``configs/train/gamma_pi0.yaml``
  against the experiments' shower-shape BDT (``examples/gamma_pi0.py``), on the default geometry
  and with η strips 4x finer in the first layer;
- energy per particle type (electron, photon, π+) and per energy bin: the network of ``configs/train/energy.yaml``
  against the cell sum calibrated per type (``examples/energy_vs_cell_sum.py``), ±1σ coverage and pull width;
- the sequence benchmark (``examples/sequence_benchmark.py``): every family of ``SEQUENCE_FAMILIES`` (default the
  example's ``FAMILIES``) on the same events and split, with and without particle ID: AUC against the
  likelihood-ratio ceiling, mass σ against the dimuon mass;
- model quality of the ``physnn demo`` jobs: the photon/π0 CNN's AUC and ECE
  against the shower-shape BDT on the same showers, energy resolution of the
  CNN vs the calibrated cell sum (overall and per particle type), ±1σ/±2σ
  coverage; on
  simulated events the event model's (pfn) signal/background AUC and its mass resolution
  and coverage vs the dimuon mass computed from the identified muons;
- the wall time of each model-quality group (budget 20 minutes each).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import types
from collections.abc import Callable, Sequence
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


def best_of(fn: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """Least time of ``repeat`` calls (the least disturbed) on ``clock``: wall time by default."""
    times = []
    for _ in range(repeat):
        t = clock()
        fn()
        times.append(clock() - t)
    return min(times)


def cpu_best_of(fn: Callable[[], object], repeat: int) -> float:
    """Least CPU time (``time.process_time``: every thread of the process) of ``repeat`` calls."""
    return best_of(fn, repeat, clock=time.process_time)


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


def mc_dropout_rows(repeat: int, events: int = 2000, samples: int = 50) -> list[tuple[str, str, str, str]]:
    """Prefix-cached MC dropout vs T full passes, on the demo's e/pi CNN (dropout in the dense head)."""
    from physnn.demo import EPI_MODEL
    from physnn.models.mc_dropout import mc_forward, naive_mc_forward

    torch.manual_seed(0)
    model = physnn.build_model(physnn.ModelConfig(**EPI_MODEL), physnn.ModelIO(image=(3, 24, 24), outputs=1))
    batch = {"image": torch.rand(events, 3, 24, 24)}
    chunks = [{"image": batch["image"][i:i + 500]} for i in range(0, events, 500)]

    def cached() -> torch.Tensor:
        return torch.cat([mc_forward(model, c, samples) for c in chunks], dim=1)

    def naive() -> torch.Tensor:
        return torch.cat([naive_mc_forward(model, c, samples) for c in chunks], dim=1)

    t_fast = best_of(cached, repeat)
    t_slow = best_of(naive, max(1, repeat // 2))
    spread = float(torch.sigmoid(cached()).std(0).mean() / torch.sigmoid(naive()).std(0).mean())
    return [(f"MC dropout T={samples}, prefix cached (CNN, dropout in head)", f"{events / t_fast:,.0f} events/s",
             f"naive T full passes {events / t_slow:,.0f}/s", f"{t_slow / t_fast:.0f}x faster"),
            ("  mean score spread, cached / naive", f"{spread:.3f}", "1 = same distribution", "")]


def sequence_rows(events: Path, repeat: int, n: int = 8000, length: int = 40) -> list[tuple[str, str, str, str]]:
    """Padded+masked vs packed sequences on the same recurrent model (same weights), and the conv baseline."""
    cfg = {"files": str(events), "label": "label", "split": {"val": 0, "test": 0}, "entry_stop": n,
           "sequence": {"features": ["part_pt", "part_eta", "part_phi", "part_e", "part_charge"],
                        "max_length": length, "sort_by": "part_pt"}}
    data = physnn.load(cfg).train
    tensors = {k: data.tensors()[k] for k in ("sequence", "mask", "length", "label")}
    io = physnn.ModelIO(sequence=(length, 5), outputs=1)
    mean_len = float(data.inputs["length"].float().mean())

    def rates(model: torch.nn.Module) -> tuple[float, float]:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(0))

        def train_epoch() -> None:
            model.train()
            for lo in range(0, n, 128):
                idx = order[lo:lo + 128]
                batch = {k: v[idx] for k, v in tensors.items()}
                opt.zero_grad()
                loss = loss_fn(model(batch)[:, 0], batch["label"].float())
                loss.backward()
                opt.step()

        @torch.no_grad()
        def infer() -> None:
            model.eval()
            for lo in range(0, n, 1024):
                model({k: v[lo:lo + 1024] for k, v in tensors.items()})

        return n / best_of(train_epoch, max(1, repeat // 2)), n / best_of(infer, repeat)

    rows = []
    params = {"embedding": [{"type": "dense", "units": 64}], "hidden_size": 64,
              "head": [{"type": "dense", "units": 64}, {"type": "dropout", "rate": 0.1}]}
    for cell in ("lstm", "gru"):
        torch.manual_seed(0)
        model = physnn.build_model(physnn.ModelConfig(name=cell, params=params), io)
        model.stages[1].packing = "padded"
        pad_train, pad_infer = rates(model)
        model.stages[1].packing = "packed"
        pack_train, pack_infer = rates(model)
        winner = "padded" if pad_train >= pack_train else "packed"
        rows.append((f"{cell} 64, padded + masked: train / predict (samples/s)",
                     f"{pad_train:,.0f} / {pad_infer:,.0f}", f"packed {pack_train:,.0f} / {pack_infer:,.0f}",
                     f"{winner} wins training ({max(pad_train, pack_train) / min(pad_train, pack_train):.2f}x)"))
    conv = physnn.build_model(physnn.ModelConfig(name="seq_conv", params={
        "embedding": params["embedding"], "filters": [64, 64], "head": params["head"]}), io)
    conv_train, conv_infer = rates(conv)
    rows.append(("seq_conv 64x2 baseline: train / predict (samples/s)", f"{conv_train:,.0f} / {conv_infer:,.0f}",
                 f"{n:,} events, mean length {mean_len:.1f} of {length}, 1 thread", ""))
    return rows


def likelihood_ratio_auc(events: Path, predictions: Path) -> float:
    """AUC of the generator's own likelihood ratio (true mass, pair pt) on the test split: the best reachable
    (``examples/sequence_benchmark.py``'s ``ceiling``)."""
    return float(example_module("sequence_benchmark").ceiling(events, predictions))


def example_module(name: str) -> types.ModuleType:
    """The script ``examples/NAME.py`` as a module (the bench reuses the examples' comparisons)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "examples" / f"{name}.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def quality_rows(tmp: Path, quick: bool) -> list[tuple[str, str, str, str]]:
    """Model quality of the demo job (simulate, train, predict with MC dropout, evaluate)."""
    from physnn.demo import EVENTS_MODEL, run
    from physnn.evaluation.summary import fit_line

    events = 3000 if quick else 10000
    res = run(tmp / "demo", events=events, epochs=3 if quick else None, say=lambda _: None)
    c = res["photon"]["figures"]["classification"]
    bdt = photon_baseline_auc(res["gamma_pi0"], res["photon"]["predictions"])
    verdict = ("CNN better" if c["roc"]["auc_low"] > bdt["auc_high"] else
               "BDT better" if bdt["auc_low"] > c["roc"]["auc_high"] else "the intervals overlap")
    r = res["energy"]["figures"]["regression"]["energy"]
    base = r["baselines"]["calibrated cell sum"]
    fit, base_fit = fit_line(r.get("fit")), fit_line(base.get("fit"))
    e = res["events_cls"]["figures"]["classification"]
    m = res["events_mass"]["figures"]["regression"]["mass"]
    mb = m["baselines"]["dimuon mass (muons identified)"]
    optimum = likelihood_ratio_auc(res["events"], res["events_cls"]["predictions"])
    n = f"{events:,} showers, test split"
    return [
        ("photon/π0 CNN AUC (" + n + ")", f"{c['auc']:.4f} [{c['roc']['auc_low']:.4f}, {c['roc']['auc_high']:.4f}]",
         f"shower-shape BDT {bdt['auc']:.4f} [{bdt['auc_low']:.4f}, {bdt['auc_high']:.4f}]", verdict),
        ("photon/π0 CNN expected calibration error", f"{c['ece']:.4f}", "0 = calibrated", ""),
        ("energy CNN resolution σ (robust, GeV)", f"{r['sigma']:.2f}", f"calibrated cell sum {base['sigma']:.2f}",
         base["comparison"]["summary"]),  # per bin too: never a ratio that hides a bin where the CNN is worse
        ("energy CNN σ/E in the lowest-energy bin", _lowest_bin(r, "calibrated cell sum"),
         "vs calibrated cell sum", ""),
        ("energy CNN σ/E fit a/√E ⊕ b", fit, f"cell sum {base_fit}", ""),
        ("energy error bars: ±1σ / ±2σ coverage (MC dropout + Gaussian)",
         f"{r['coverage_1sigma']:.3f} / {r['coverage_2sigma']:.3f}", "Gaussian 0.683 / 0.954", ""),
        *_per_type_rows(r),
        (f"signal/background {EVENTS_MODEL['name']} AUC ({events:,} events, test split)",
         f"{e['auc']:.4f} [{e['roc']['auc_low']:.4f}, {e['roc']['auc_high']:.4f}]",
         f"generator likelihood ratio {optimum:.4f}", ""),
        (f"mass {EVENTS_MODEL['name']} resolution σ (robust, GeV)", f"{m['sigma']:.2f} ± {m['sigma_err']:.2f}",
         f"dimuon mass of identified muons {mb['sigma']:.2f}", mb["comparison"]["summary"]),
        ("mass error bars: ±1σ / ±2σ coverage (MC dropout + Gaussian)",
         f"{m['coverage_1sigma']:.3f} / {m['coverage_2sigma']:.3f}", "Gaussian 0.683 / 0.954", ""),
    ]


def photon_baseline_auc(showers: Path, predictions: Path) -> dict[str, float]:
    """The AUC of the shower-shape BDT on the demo's photon/π0 test split, fitted on its training split, with its
    bootstrap 68% interval as ``physnn evaluate`` gives the CNN's (``metrics.roc_with_band``): ``auc``,
    ``auc_low``, ``auc_high``."""
    import uproot

    from physnn.evaluation.metrics import roc_with_band
    from physnn.evaluation.photon_id import shower_shape_scores

    cells = uproot.open(showers)["showers"].arrays(["image", "pdgid"], library="np")
    preds = uproot.open(predictions)["predictions"].arrays(["entry", "split"], library="np")
    order = np.argsort(preds["entry"])
    split = preds["split"][order]
    y = (cells["pdgid"] == 111).astype(int)
    scores = shower_shape_scores(np.stack(cells["image"]), y, split == 0)
    test = split == 2
    roc = roc_with_band(1 - y[test], 1 - scores[test])  # the photon is the signal, as the demo's CNN is judged
    return {k: float(roc[k]) for k in ("auc", "auc_low", "auc_high")}


def _per_type_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """The energy CNN per particle type (``evaluate --by pdgid``): σ/E and bias against the cell sum's, coverage."""
    names = {"11": "e-", "22": "\N{GREEK SMALL LETTER GAMMA}", "211": "π+"}
    rows = []
    for value, g in (r.get("by") or {}).get("groups", {}).items():
        base = g["baselines"]["calibrated cell sum"]
        rows.append((f"energy CNN, {names.get(value, value)} only: σ/E, bias, ±1σ coverage",
                     f"{g['sigma_rel']:.3f}, {g['bias']:+.2f} GeV, {g['coverage_1sigma']:.2f}",
                     f"cell sum {base['sigma_rel']:.3f}, {base['bias']:+.2f} GeV",
                     f"{g['sigma_rel'] / base['sigma_rel']:.2f}× the cell sum's σ/E"))
    return rows


# photon vs π0: both geometries of the README's photon tables (``examples/gamma_pi0.py --events 30000 --test-events
# 60000 --spectrum log-uniform``, and the same with ``--strips 4``); --quick: 4,000 + 4,000 showers, 3 epochs
PHOTON_EVENTS = 30000
PHOTON_TEST_EVENTS = 60000  # an independent test sample: 2,300 to 10,500 showers a bin
PHOTON_SPECTRUM = "log-uniform"
PHOTON_GEOMETRIES = (("no strips", 0), ("η strips ×4", 4))  # (label, η strips per cell of the first layer)


def photon_id_rows(tmp: Path, quick: bool) -> list[tuple[str, str, str, str]]:
    """Photon vs π0 -> two photons per energy bin, on the default geometry and on the strip geometry: the CNN of
    configs/train/gamma_pi0.yaml against the shower-shape BDT (``examples/gamma_pi0.py``), AUC and π0 rejection at
    80% photon efficiency on an independent test sample, each with its bootstrap 68% interval."""
    example = example_module("gamma_pi0")
    out = []
    for label, strips in PHOTON_GEOMETRIES:
        rows = example.compare(tmp / f"gamma_pi0_strips{strips}", events=4000 if quick else PHOTON_EVENTS,
                               test_events=4000 if quick else PHOTON_TEST_EVENTS,
                               overrides=["train.epochs=3"] if quick else [], progress=False, strips=strips,
                               spectrum=PHOTON_SPECTRUM)
        for cnn, bdt in example.pairs(rows):  # per bin: the AUC, then the π0 rejection, each with its 68% interval
            out.append((f"photon/π0 AUC, {label}, {cnn['low']:g}-{cnn['high']:g} GeV",
                        f"CNN {cnn['auc']:.3f} [{cnn['auc_low']:.3f}, {cnn['auc_high']:.3f}]",
                        f"BDT {bdt['auc']:.3f} [{bdt['auc_low']:.3f}, {bdt['auc_high']:.3f}]",
                        example.verdict(cnn, bdt)))
            out.append(("  π0 rejection at 80% photon efficiency",
                        f"CNN {cnn['rejection']:.1f} [{cnn['rejection_low']:.1f}, {cnn['rejection_high']:.1f}]",
                        f"BDT {bdt['rejection']:.1f} [{bdt['rejection_low']:.1f}, {bdt['rejection_high']:.1f}]", ""))
    return out


# energy per particle type and energy bin against the cell sum calibrated per type (``examples/
# energy_vs_cell_sum.py``): the larger benchmark of issue 30's energy goals; --quick: 3,000 showers, 2 epochs
ENERGY_EVENTS = 60000
ENERGY_SPECTRUM = "uniform"


def energy_rows(tmp: Path, quick: bool) -> list[tuple[str, str, str, str]]:
    """The energy regression of configs/train/energy.yaml per particle type and per bin of the true energy
    (``examples/energy_vs_cell_sum.py``'s ``compare`` and ``rows``): σ/E of the network (deterministic pass) and
    of the cell sum calibrated per type, each ± its standard error, their ratio and the example's verdict; per
    type the ±1σ coverage and the pull width of the network's error bars."""
    example = example_module("energy_vs_cell_sum")
    events = 3000 if quick else ENERGY_EVENTS
    metrics = example.compare(tmp / "energy", events=events, overrides=["train.epochs=2"] if quick else [],
                              progress=False, spectrum=ENERGY_SPECTRUM)
    out = []
    for r in example.rows(metrics):
        energies = "all energies" if r["range"] == "all" else f"{r['range']} GeV"
        out.append((f"energy {r['type']}, {energies}: network σ/E ({r['events']:,} test showers)",
                    f"{r['model']:.4f} ± {r['model_err']:.4f}", f"cell sum {r['sum']:.4f} ± {r['sum_err']:.4f}",
                    f"{r['ratio']:.2f}×, {example.verdict(r)}"))
        if r["range"] == "all":
            pull = "n/a" if r["pull_std"] is None else f"{r['pull_std']:.2f}"
            met = abs(r["coverage"] - 0.683) <= 0.03 and r["pull_std"] is not None and r["pull_std"] <= 1.2
            out.append((f"energy {r['type']}: ±1σ coverage, pull width", f"{r['coverage']:.3f}, {pull}",
                        "goal 0.683 ± 0.03, ≤ 1.2", "goal met" if met else "goal missed"))
    return out


# the sequence families the benchmark trains, each with and without particle ID: the recurrent baseline and the best
# family, within the 20-minute budget (None: every family of the example's FAMILIES, as the README's sequence table)
SEQUENCE_FAMILIES: tuple[str, ...] | None = ("gru", "pfn")


def sequences_rows(tmp: Path, quick: bool, families: tuple[str, ...] | None = None) -> list[tuple[str, str, str, str]]:
    """Every sequence family (``families``, else ``SEQUENCE_FAMILIES``, else the example's ``FAMILIES``) with and
    without particle ID on the same events and split (``examples/sequence_benchmark.py``): AUC against the
    likelihood-ratio ceiling, mass σ against the analytic dimuon mass. The 80-column table is printed as well."""
    example = example_module("sequence_benchmark")
    rows, best, base = example.compare(tmp / "sequences", events=3000 if quick else 10000, epochs=3 if quick else 30,
                                       families=families or SEQUENCE_FAMILIES or example.FAMILIES)
    print("\n".join(example.table(rows, best, base)))
    out = []
    for r in rows:
        name = f"{r['family']} {'with' if r['id'] else 'without'} particle ID"
        m = r["mass"]
        out.append((f"{name}: signal/background AUC", f"{r['auc']:.4f} [{r['auc_low']:.4f}, {r['auc_high']:.4f}]",
                    f"likelihood ratio {best:.4f}", f"{r['auc'] - best:+.4f}"))
        out.append((f"{name}: mass σ (robust, GeV)", f"{m['sigma']:.2f} ± {m['sigma_err']:.2f}",
                    f"dimuon mass {base['sigma']:.2f} ± {base['sigma_err']:.2f}",
                    m["baselines"][example.BASELINE]["comparison"]["summary"].split(";")[0]))
    return out


def _lowest_bin(r: dict, baseline: str) -> str:
    """``1-13 GeV: 0.15 vs 0.26``: σ/E of the model and of a baseline in the lowest-energy bin."""
    b = r["bins"][0]
    lo, hi = b["range"]
    return f"{lo:.0f}-{hi:.0f} GeV: {b['sigma_rel']:.3f} vs {b['baselines'][baseline]['sigma_rel']:.3f}"


#: showers per generator call in the generation group (CaloChallenge's timing: batch 1, 100 and 10,000), and the
#: showers timed at each (--quick: fewer at the small batches; 10,000 is one call either way)
GENERATION_BATCHES = (1, 100, 10_000)
GENERATION_EVENTS = {1: 500, 100: 5_000, 10_000: 20_000}
GENERATION_QUICK_EVENTS = {1: 100, 100: 1_000, 10_000: 10_000}
GENERATION_GOAL, GENERATION_GOAL_BATCH = 2000, 10_000  # showers/s on one CPU thread at batch 10,000, ROOT included
GENERATION_CODECS = ("zlib:1", "zstd:1")  # physnn generate's default (uproot's zlib level 1), and the fast one


def generation_rows(tmp: Path, quick: bool) -> list[tuple[str, str, str, str]]:
    """The shipped GAN (configs/train/fastsim.yaml, trained for a few steps: the speed does not depend on the
    weights) on one CPU core, in ms per shower at each of ``GENERATION_BATCHES``: the bare forward pass (torch and
    onnxruntime), ``physnn generate`` with ROOT writing, and the ROOT writing apart; beside the built-in simulator.
    The process is pinned to one core, so that generate's writer thread cannot hide its cost on another, and every
    figure is CPU time (``time.process_time``, all threads), which other jobs on the machine do not inflate the way
    they do wall time; generate's includes loading the run."""
    pinned = _pin_one_core()
    try:
        showers = tmp / "generation_showers.root"
        n_sim = 4000 if quick else 20000
        t_sim = cpu_best_of(lambda: simulate_showers(n_sim, seed=1), 2 if quick else 5)
        t_write = cpu_best_of(lambda: physnn.simulate("showers", showers, events=n_sim, seed=1, overwrite=True), 1)
        rows = [("built-in simulator, showers (numpy, 1 core)", _per_shower(t_sim / n_sim), "", ""),
                ("  with ROOT writing (zlib:1)", _per_shower(t_write / n_sim), "", "")]
        run = _fastsim_run(tmp, showers)
        onnx = _onnx_session(run, tmp)
        for batch in GENERATION_BATCHES:
            n = (GENERATION_QUICK_EVENTS if quick else GENERATION_EVENTS)[batch]
            rows += _generation_batch_rows(run, tmp, batch, n, onnx, t_sim / n_sim, repeat=1 if quick else 2)
        rows.append(("  (process pinned to one core)" if pinned else "  (not pinned: os.sched_setaffinity missing)",
                     "", "", ""))
        return rows
    finally:
        _unpin(pinned)


def _pin_one_core() -> set[int] | None:
    """Pin the process to one of its cores; the previous set, to restore (None where it cannot)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    return before


def _unpin(before: set[int] | None) -> None:
    if before is not None:
        os.sched_setaffinity(0, before)


def _per_shower(seconds: float) -> str:
    """``0.512 ms/shower (1,953/s)``."""
    return f"{seconds * 1e3:.3f} ms/shower ({1 / seconds:,.0f}/s)"


def _fastsim_run(tmp: Path, showers: Path) -> Path:
    """configs/train/fastsim.yaml with configs/model/gan.yaml on ``showers``, trained for one short epoch."""
    import yaml

    cfg = yaml.safe_load(Path("configs/train/fastsim.yaml").read_text())
    cfg["data"]["files"] = str(showers)
    cfg["data"]["entry_stop"] = 2000
    cfg["model"] = yaml.safe_load(Path("configs/model/gan.yaml").read_text())
    cfg["train"].update(epochs=1, samples_every=0)
    physnn.train(cfg, out=tmp / "fastsim", progress=False)
    return tmp / "fastsim"


def _onnx_session(run: Path, tmp: Path) -> object | None:
    """An onnxruntime session (one thread) of the run's exported generator; None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    path = physnn.export(run, tmp / "fastsim.onnx", overwrite=True).path
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _generation_batch_rows(run: Path, tmp: Path, batch: int, n: int, onnx: object | None, sim: float,
                           repeat: int) -> list[tuple[str, str, str, str]]:
    """The rows of one batch size: forward (torch, onnxruntime), generate + ROOT, ROOT writing apart."""
    loaded = physnn.load_run(run, device="cpu")
    task, model = loaded.task, loaded.model
    raw = task.sample_conditions(n, np.random.default_rng(0))
    cond, incident = task.conditions_tensor(raw), task.incident_of(raw)
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(n, *(task.readout_shape(model) or task.shape), generator=torch.Generator().manual_seed(2))
    inputs = {"conditions": np.stack([raw[s] for s in task.scalars], axis=1).astype(np.float32),
              "class_index": np.asarray(raw["class"], dtype=np.int64), "z": z.numpy(), "noise": noise.numpy()}

    def forward() -> None:
        with torch.inference_mode():
            for lo in range(0, n, batch):
                task.to_phys(task.generate(model, z[lo:lo + batch], cond[lo:lo + batch], incident[lo:lo + batch]))

    label = f"batch {batch:,}"
    t_fwd = cpu_best_of(forward, repeat) / n
    rows = [(f"GAN forward, {label} (torch, bare)", _per_shower(t_fwd), f"simulator {_per_shower(sim)}",
             f"{sim / t_fwd:.2f}x the simulator's rate")]
    if onnx is not None:
        def run_onnx() -> list[np.ndarray]:
            return [onnx.run(None, {k: v[lo:lo + batch] for k, v in inputs.items()})[0] for lo in range(0, n, batch)]

        t_ort = cpu_best_of(run_onnx, repeat) / n
        head = min(n, 256)
        (ort_image,) = onnx.run(None, {k: v[:head] for k, v in inputs.items()})
        graph = task.graph(model, loaded.transform, loaded.io)
        with torch.inference_mode():
            ref = graph(*(torch.from_numpy(inputs[k][:head]) for k in graph.input_names))[0].numpy()
        same = float(np.isclose(ort_image, ref, rtol=1e-5, atol=1e-5).mean())  # tests/test_generation_speed.py
        rows.append((f"GAN forward, {label} (onnxruntime, 1 thread, noise given)", _per_shower(t_ort),
                     f"torch {_per_shower(t_fwd)}", f"{same:.2%} of cells = torch's to 1e-5"))
    for codec in GENERATION_CODECS:
        t_gen = cpu_best_of(lambda codec=codec: physnn.generate(run, tmp / "gen.root", events=n, batch_size=batch,
                                                                device="cpu", compression=codec, overwrite=True),
                            repeat) / n
        rows.append((f"physnn generate + ROOT ({codec}), {label}", _per_shower(t_gen), f"goal {GENERATION_GOAL:,}/s"
                     if batch == GENERATION_GOAL_BATCH else f"forward {_per_shower(t_fwd)}",
                     f"{1 / t_gen / GENERATION_GOAL:.2f}x goal" if batch == GENERATION_GOAL_BATCH else ""))
        rows.append((f"  ROOT writing apart ({codec})", _per_shower(_write_seconds(tmp / "gen.root", codec) / n),
                     f"{(tmp / 'gen.root').stat().st_size / n:,.0f} bytes/shower", ""))
    return rows


def _write_seconds(path: Path, codec: str) -> float:
    """CPU seconds to write ``path``'s tree again (physnn's writer, ``codec``): the ROOT writing alone."""
    from physnn.io.metadata import read_metadata
    from physnn.io.write import write_tree

    with uproot.open(path) as f:
        arrays = f["showers"].arrays(library="np")
    meta = read_metadata(path)
    return cpu_best_of(lambda: write_tree(path.with_name("rewrite.root"), "showers", [arrays], overwrite=True,
                                          compression=codec, meta=meta), 1)


def training_rows(tmp: Path, showers: Path, quick: bool) -> list[tuple[str, str, str, str]]:
    """physnn's training epoch vs a minimal hand-written PyTorch loop: same model, same tensors, same batch."""
    import yaml

    epochs = 2 if quick else 3
    cfg = {"data": {"files": str(showers), "images": {"branches": "image"}, "label": "label",
                    "split": {"val": 0.1, "test": 0.0}},
           "model": yaml.safe_load(Path("configs/model/cnn.yaml").read_text()), "task": {"kind": "classification"},
           "train": {"epochs": epochs, "batch_size": 128, "seed": 1, "early_stopping": {"patience": None},
                     "calibrate_sigma": False}}
    res = physnn.train(cfg, out=tmp / "loop", progress=False)
    physnn_rate = max(h["samples_per_s"] for h in res.history)  # the training pass alone, as timed by the trainer

    data = physnn.load(cfg["data"]).train
    x, y = data.inputs["image"], data.label
    model = physnn.load_run(tmp / "loop", device="cpu").model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rates = []
    for _ in range(epochs):  # the nanoGPT-sized loop: shuffle, forward, loss, backward, step
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(y))
        for lo in range(0, len(y), 128):
            idx = order[lo:lo + 128]
            loss = torch.nn.functional.cross_entropy(model({"image": x[idx]}), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        rates.append(len(y) / (time.perf_counter() - t0))
    hand = max(rates)
    rows = [("training epoch, CNN e/pi/gamma (samples/s)", f"{physnn_rate:,.0f}",
             f"hand-written loop {hand:,.0f}", f"{physnn_rate / hand:.0%} (target >= 90%)")]
    ddp = ddp_rate(tmp, cfg)
    rows.append(("  the same under torchrun, 2 processes x 1 thread (gloo)", f"{ddp:,.0f}",
                 f"1 process x 1 thread {physnn_rate:,.0f}", f"{ddp / physnn_rate:.2f}x"))
    return rows


def ddp_rate(tmp: Path, cfg: dict, processes: int = 2) -> float:
    """Samples/s of a training epoch under ``torchrun`` (the same global batch: batch_size / processes each)."""
    import csv
    import subprocess
    import sys

    import yaml

    ddp = {**cfg, "train": {**cfg["train"], "batch_size": cfg["train"]["batch_size"] // processes}}
    (tmp / "ddp.yaml").write_text(yaml.safe_dump(ddp))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                    "-m", "physnn", "train", str(tmp / "ddp.yaml"), "--out", str(tmp / "ddp")], env=env,
                   check=True, capture_output=True)
    with open(tmp / "ddp" / "metrics.csv") as f:  # rank 0's epochs: the whole training split per epoch
        return max(float(row["samples_per_s"]) for row in csv.DictReader(f))


def memory_rows(tmp: Path, quick: bool, budget: str = "600 MB") -> list[tuple[str, str, str, str]]:
    """Training on a file whose tensors are several times the memory budget: peak RSS, streamed vs in memory.

    Each run is a fresh process (``bench/peak_rss.py``), so the peak is that of one training job.
    """
    import json
    import subprocess
    import sys

    from physnn.data.streaming import parse_budget

    n = 60_000 if quick else 300_000
    big = tmp / "big.root"
    physnn.simulate("showers", big, events=n, seed=11)
    model = {"name": "cnn", "params": {"features": [{"type": "conv", "filters": 8, "kernel_size": 3},
                                                    {"type": "pool", "pool_size": 4}, {"type": "flatten"}],
                                       "head": [{"type": "dense", "units": 32}, {"type": "dropout", "rate": 0.2}]}}
    base = {"data": {"files": str(big), "images": {"branches": "image"}, "targets": ["energy"]},
            "model": model, "task": {"kind": "regression"},
            "train": {"epochs": 1, "batch_size": 256, "seed": 1, "early_stopping": {"patience": None}}}
    results = {}
    for name, budget_value in (("stream", budget), ("memory", None)):
        cfg = json.loads(json.dumps(base))
        if budget_value is not None:
            cfg["train"]["memory_budget"] = budget_value
        (tmp / f"{name}.json").write_text(json.dumps(cfg))
        out = subprocess.run([sys.executable, "bench/peak_rss.py", str(tmp / f"{name}.json"), str(tmp / name)],
                             capture_output=True, text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    s, m = results["stream"], results["memory"]
    limit = parse_budget(budget)
    tensors = s["bytes_per_event"] * sum(s["split"].values())
    return [
        (f"streaming training, budget {budget}: peak RSS", f"{s['peak_rss'] / 1e6:,.0f} MB",
         f"data {tensors / 1e6:,.0f} MB as tensors ({tensors / limit:.1f}x budget; file "
         f"{big.stat().st_size / 1e6:,.0f} MB)", f"{s['peak_rss'] / limit:.0%} of budget"),
        ("in-memory training, same data: peak RSS", f"{m['peak_rss'] / 1e6:,.0f} MB",
         f"streamed {s['peak_rss'] / 1e6:,.0f} MB", f"{m['peak_rss'] / s['peak_rss']:.1f}x"),
        ("  training epoch streamed / in memory (samples/s)", f"{s['samples_per_s']:,.0f}",
         f"in memory {m['samples_per_s']:,.0f}", f"{s['samples_per_s'] / m['samples_per_s']:.0%}"),
    ]


#: The model-quality group (``--only model_quality``), in the order it runs: each measures goals of issue 30 against
#: the classic method (the demo's jobs, the larger energy benchmark, photon/π0 on both geometries, the sequence
#: families); ``--only NAME`` runs one of them.
MODEL_QUALITY: dict[str, Callable[[Path, bool], list[tuple[str, str, str, str]]]] = {
    "quality": quality_rows, "energy": energy_rows, "photon_id": photon_id_rows, "sequences": sequences_rows}
GROUP_BUDGET_MIN = 20  # wall-time budget of each model-quality group on the 2-core machine (issue 30: ≤ 20 minutes)


def model_quality_rows(tmp: Path, quick: bool, groups: Sequence[str] = tuple(MODEL_QUALITY)
                       ) -> list[tuple[str, str, str, str]]:
    """The rows of the model-quality ``groups`` in order, each followed by its wall time against the budget; each
    group trains on every core (the rest of the bench times one)."""
    rows: list[tuple[str, str, str, str]] = []
    for name in groups:
        t0 = time.perf_counter()
        torch.set_num_threads(os.cpu_count() or 1)
        try:
            rows += MODEL_QUALITY[name](tmp, quick)
        finally:
            torch.set_num_threads(1)
        minutes = (time.perf_counter() - t0) / 60
        rows.append((f"{name} wall time", f"{minutes:.1f} min", f"budget {GROUP_BUDGET_MIN} min", ""))
    return rows


def only_rows(which: str, quick: bool) -> list[tuple[str, str, str, str]]:
    """One group of rows, for re-measuring the figures a change moves."""
    with tempfile.TemporaryDirectory() as tmp:
        if which == "model_quality":
            return model_quality_rows(Path(tmp), quick)
        if which in MODEL_QUALITY:
            return model_quality_rows(Path(tmp), quick, [which])
        if which == "mcdropout":
            return mc_dropout_rows(3 if quick else 5)
        if which == "generation":
            return generation_rows(Path(tmp), quick)
        showers = Path(tmp) / "showers.root"
        physnn.simulate("showers", showers, events=4000 if quick else 20000, seed=1)
        return training_rows(Path(tmp), showers, quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller samples (for a smoke run)")
    parser.add_argument("--only", choices=["model_quality", *MODEL_QUALITY, "training", "mcdropout", "generation"],
                        help="only these rows (model_quality: quality, energy, photon_id and sequences in this "
                             "order, each with its wall time; quality: the physnn demo jobs' figures; energy: the "
                             "energy regression per particle type and energy bin against the cell sum calibrated "
                             "per type (examples/energy_vs_cell_sum.py); photon_id: the photon/π0 CNN against the "
                             "shower-shape BDT per energy bin on the default and the strip geometry "
                             "(examples/gamma_pi0.py); sequences: every sequence family with and without particle "
                             "ID against the likelihood ratio and the dimuon mass (examples/sequence_benchmark.py); "
                             "training: the CNN epoch vs a hand-written loop and torchrun; mcdropout: "
                             "prefix-cached MC dropout; generation: the shipped GAN at batch 1, 100 and 10,000 on "
                             "one core, torch and onnxruntime, with and without ROOT writing, beside the simulator)")
    args = parser.parse_args()
    if args.only:
        _print(only_rows(args.only, args.quick), f"{'quick' if args.quick else 'full'}, {args.only} rows")
        return
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

        rows += training_rows(Path(tmp), showers, args.quick)
        rows += generation_rows(Path(tmp), args.quick)
        rows += mc_dropout_rows(repeat)
        rows += sequence_rows(events, repeat, n=4000 if args.quick else 8000)
        rows += memory_rows(Path(tmp), args.quick)
        rows += model_quality_rows(Path(tmp), args.quick)

    _print(rows, "quick" if args.quick else "full")


def _print(rows: list[tuple[str, str, str, str]], what: str) -> None:
    table = Table(title=f"physnn {physnn.__version__} benchmarks ({what})", title_justify="left")
    for col in ("figure", "physnn", "anchor", "ratio"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
