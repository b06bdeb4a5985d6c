"""bench/bench.py's model-quality group: which examples it runs, with which sizes, and the rows it prints.

The examples' trainings are replaced by fakes (the benchmarks themselves take minutes); what is checked is the
bench's side: the arguments it passes, one row per particle type / energy bin / geometry, the wall-time rows.
"""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench():
    threads = torch.get_num_threads()
    yield _load(ROOT / "bench" / "bench.py", "bench_under_test")
    torch.set_num_threads(threads)  # the bench sets one thread at import and the cores around each group


def _energy_metrics() -> dict:
    def row(model, base, lo, hi, pull=1.05):
        return {"range": [lo, hi], "events": 100, "sigma_rel": model, "sigma_rel_err": 0.001, "coverage_1sigma": 0.69,
                "pull_std": pull, "baselines": {"calibrated cell sum": {"sigma_rel": base, "sigma_rel_err": 0.001}}}

    return {"by": {"groups": {
        "11": {**row(0.020, 0.020, 1, 100), "bins": [row(0.030, 0.020, 1, 50), row(0.010, 0.0105, 50, 100)]},
        "211": {**row(0.10, 0.12, 1, 100, pull=None), "bins": [row(0.08, 0.12, 1, 100)]}}}}


def test_energy_group_runs_the_example_and_prints_a_row_per_type_and_bin(bench, monkeypatch, tmp_path):
    example = _load(ROOT / "examples" / "energy_vs_cell_sum.py", "energy_example")
    calls = []
    monkeypatch.setattr(example, "compare", lambda out, **kw: calls.append(kw) or _energy_metrics())
    monkeypatch.setattr(bench, "example_module", lambda name: {"energy_vs_cell_sum": example}[name])
    monkeypatch.setattr(bench, "ENERGY_SPECTRUM", "log-uniform")

    rows = bench.energy_rows(tmp_path, quick=True)
    assert calls == [{"events": 3000, "overrides": ["train.epochs=2"], "progress": False, "spectrum": "log-uniform"}]
    labels = [r[0] for r in rows]
    assert labels == ["energy e-, all energies: network σ/E (100 test showers)", "energy e-: ±1σ coverage, pull width",
                      "energy e-, 1-50 GeV: network σ/E (100 test showers)",
                      "energy e-, 50-100 GeV: network σ/E (100 test showers)",
                      "energy pi+, all energies: network σ/E (100 test showers)",
                      "energy pi+: ±1σ coverage, pull width", "energy pi+, 1-100 GeV: network σ/E (100 test showers)"]
    assert rows[2][1:] == ("0.0300 ± 0.0010", "cell sum 0.0200 ± 0.0010", "1.50×, cell sum better")
    assert rows[3][3] == "0.95×, within 1 s.e."
    assert rows[1][1:] == ("0.690, 1.05", "goal 0.683 ± 0.03, ≤ 1.2", "goal met")
    assert rows[5][1:] == ("0.690, n/a", "goal 0.683 ± 0.03, ≤ 1.2", "goal missed")  # no pull width: not met

    bench.energy_rows(tmp_path, quick=False)
    assert calls[-1]["events"] == bench.ENERGY_EVENTS == 60000
    assert calls[-1]["overrides"] == []


def test_photon_group_runs_both_geometries_with_the_readme_spectrum(bench, monkeypatch, tmp_path):
    example = _load(ROOT / "examples" / "gamma_pi0.py", "gamma_pi0_example")
    calls = []

    def compare(out, **kw):
        calls.append(kw)
        row = {"low": 1, "high": 5, "auc_low": 0.80, "auc_high": 0.82, "rejection": 3.0, "rejection_low": 2.8,
               "rejection_high": 3.2}
        return [{**row, "score": example.CNN, "auc": 0.81 + kw["strips"] / 100},
                {**row, "score": example.BASELINE, "auc": 0.81, "auc_low": 0.70, "auc_high": 0.72}]

    monkeypatch.setattr(example, "compare", compare)
    monkeypatch.setattr(bench, "example_module", lambda name: {"gamma_pi0": example}[name])
    rows = bench.photon_id_rows(tmp_path, quick=True)
    assert [(c["strips"], c["spectrum"], c["events"], c["test_events"], c["overrides"]) for c in calls] == [
        (0, "log-uniform", 4000, 4000, ["train.epochs=3"]), (4, "log-uniform", 4000, 4000, ["train.epochs=3"])]
    rejection = "  π0 rejection at 80% photon efficiency"
    assert [r[0] for r in rows] == ["photon/π0 AUC, no strips, 1-5 GeV", rejection,
                                    "photon/π0 AUC, η strips ×4, 1-5 GeV", rejection]
    assert rows[2][1:] == ("CNN 0.850 [0.800, 0.820]", "BDT 0.810 [0.700, 0.720]", "CNN better")
    assert rows[3][1:] == ("CNN 3.0 [2.8, 3.2]", "BDT 3.0 [2.8, 3.2]", "")
    bench.photon_id_rows(tmp_path, quick=False)
    assert {c["events"] for c in calls[2:]} == {bench.PHOTON_EVENTS} == {30000}
    assert {c["test_events"] for c in calls[2:]} == {bench.PHOTON_TEST_EVENTS} == {60000}


def test_sequences_group_trains_the_families_of_the_module_constant(bench, monkeypatch, tmp_path):
    example = types.SimpleNamespace(FAMILIES=("gru", "lstm", "seq_conv", "pfn"), BASELINE="b", table=lambda *a: [])
    seen = []
    example.compare = lambda out, **kw: seen.append(kw["families"]) or ([], 0.9, {"sigma": 1.0, "sigma_err": 0.1})
    monkeypatch.setattr(bench, "example_module", lambda name: example)
    monkeypatch.setattr(bench, "SEQUENCE_FAMILIES", None)  # None: every family of the example
    bench.sequences_rows(tmp_path, quick=True)
    monkeypatch.setattr(bench, "SEQUENCE_FAMILIES", ("gru", "pfn"))
    bench.sequences_rows(tmp_path, quick=True)
    assert seen == [("gru", "lstm", "seq_conv", "pfn"), ("gru", "pfn")]


def test_model_quality_runs_the_four_groups_in_order_each_with_its_wall_time(bench, monkeypatch, tmp_path):
    assert list(bench.MODEL_QUALITY) == ["quality", "energy", "photon_id", "sequences"]
    ran = []
    for name in bench.MODEL_QUALITY:
        monkeypatch.setitem(bench.MODEL_QUALITY, name,
                            lambda tmp, quick, name=name: ran.append((name, quick)) or [(f"{name} row", "", "", "")])
    rows = bench.model_quality_rows(tmp_path, quick=True)
    assert ran == [(n, True) for n in ("quality", "energy", "photon_id", "sequences")]
    assert [r[0] for r in rows] == [x for n in ("quality", "energy", "photon_id", "sequences")
                                    for x in (f"{n} row", f"{n} wall time")]
    assert rows[1][1] == "0.0 min"
    assert rows[1][2] == "budget 20 min"


def test_energy_example_passes_the_spectrum_to_the_simulator(monkeypatch, tmp_path):
    example = _load(ROOT / "examples" / "energy_vs_cell_sum.py", "energy_example_spectrum")
    seen = {}

    def simulate(kind, path, **kw):
        seen.update(kw)
        raise RuntimeError("stop after the simulation")

    monkeypatch.setattr(example.physnn, "simulate", simulate)
    with pytest.raises(RuntimeError, match="stop after"):
        example.main(["--out", str(tmp_path), "--events", "500", "--spectrum", "log-uniform"])
    assert seen["events"] == 500
    assert seen["overrides"] == ["spectrum=log-uniform"]


def test_generation_group_times_each_batch_size_with_torch_onnxruntime_and_root(bench, monkeypatch, tmp_path,
                                                                                 gan_run):
    """The generation group on the tests' tiny GAN (instead of training the shipped one) at two small batch sizes:
    a row per batch for the forward pass (torch, onnxruntime), generate + ROOT per codec and the writing apart,
    physnn generate called at each batch size, onnxruntime equal to torch, the core affinity restored."""
    pytest.importorskip("onnxruntime")
    import os

    import physnn

    monkeypatch.setattr(bench, "_fastsim_run", lambda tmp, showers: gan_run)
    monkeypatch.setattr(bench, "GENERATION_BATCHES", (1, 7))
    monkeypatch.setattr(bench, "GENERATION_GOAL_BATCH", 7)
    monkeypatch.setattr(bench, "GENERATION_QUICK_EVENTS", {1: 5, 7: 30})
    batches = []
    generate = physnn.generate
    monkeypatch.setattr(bench.physnn, "generate", lambda *a, **kw: batches.append(kw["batch_size"]) or generate(*a,
                                                                                                                **kw))
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    rows = bench.generation_rows(tmp_path, quick=True)
    assert [r[0] for r in rows] == [
        "built-in simulator, showers (numpy, 1 core)", "  with ROOT writing (zlib:1)",
        *[x for b in (1, 7) for x in (
            f"GAN forward, batch {b} (torch, bare)", f"GAN forward, batch {b} (onnxruntime, 1 thread, noise given)",
            f"physnn generate + ROOT (zlib:1), batch {b}", "  ROOT writing apart (zlib:1)",
            f"physnn generate + ROOT (zstd:1), batch {b}", "  ROOT writing apart (zstd:1)")],
        "  (process pinned to one core)" if before else "  (not pinned: os.sched_setaffinity missing)"]
    assert batches == [1, 1, 7, 7]  # one physnn generate per codec at each batch size (--quick: one repeat)
    for row in rows[2:-1]:
        if "ms/shower" in row[1]:
            ms, rate = row[1].split(" ms/shower (")
            assert float(ms) > 0
            assert float(rate.rstrip("/s)").replace(",", "")) > 0
    ort_rows = [r for r in rows if "onnxruntime" in r[0]]
    assert all(float(r[3].split("%")[0]) >= 99 for r in ort_rows), ort_rows  # cells = torch's (5 showers at batch 1)
    assert rows[10][2] == "goal 2,000/s"
    assert rows[10][3].endswith("x goal")
    assert (os.sched_getaffinity(0) if before else None) == before
