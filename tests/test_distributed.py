"""Multi-process training: torchrun with two CPU processes (gloo) against one process."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import yaml
from conftest import run_config, torchrun

import physnn
from physnn.training.checkpoint import load_checkpoint
from physnn.training.distributed import Dist, from_environment


def test_shards_are_disjoint_equal_and_cover_the_permutation():
    order = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    shards = [Dist(rank=r, world=3).shard(order) for r in range(3)]
    assert {len(s) for s in shards} == {34}  # equal: every process takes the same number of steps
    joined = torch.cat(shards)
    assert len(set(joined.tolist())) == 102  # disjoint; one event of 103 waits for the next epoch's order
    assert set(joined.tolist()) <= set(order.tolist())
    assert torch.equal(Dist().shard(order), order)


def test_environment_without_torchrun_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert from_environment() == Dist()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert from_environment() == Dist(rank=2, world=4, local_rank=0)
    assert not from_environment().main


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_torchrun_two_cpu_processes_train_like_one(epi_file, tmp_path):
    cfg = run_config(epi_file, epochs=4, optimizer={"lr": 3e-3})
    single = physnn.train(cfg, out=tmp_path / "one", progress=False)
    ddp_cfg = run_config(epi_file, epochs=4, optimizer={"lr": 3e-3}, batch_size=16)  # 2 x 16 = the same 32
    (tmp_path / "ddp.yaml").write_text(yaml.safe_dump(ddp_cfg))
    proc = torchrun(tmp_path, "-m", "physnn", "train", "ddp.yaml", "--out", "ddp")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("finished after 4 epochs") == 1  # rank 0 reports, rank 1 stays quiet
    rows = _rows(tmp_path / "ddp" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]  # one writer: no duplicated rows
    best = max(float(r["val_auc"]) for r in rows)
    assert best > 0.95
    assert best >= single.best["val_auc"] - 0.03  # the same quality as one process
    assert not list((tmp_path / "ddp").glob(".*.tmp"))
    ckpt = load_checkpoint(tmp_path / "ddp", "last.pt")
    assert ckpt["epoch"] == 4
    assert not any(k.startswith("module.") for k in ckpt["model"])  # the bare model's weights, loadable anywhere
    preds = physnn.predict(tmp_path / "ddp", epi_file).arrays
    assert len(preds["score"]) == 2000


GAN_TRAIN = """
import json, os
import physnn
rows = []
physnn.train("gan.yaml", out="gan", progress=False, on_epoch_end=rows.append)
with open(f"rank{os.environ['RANK']}.json", "w") as f:  # every process's own validation of its own weights
    json.dump(rows, f)
"""


def test_torchrun_trains_a_gan_with_averaged_gradients(epi_file, tmp_path):
    from conftest import gan_config

    cfg = gan_config(epi_file, epochs=2, batch_size=16)
    cfg["data"].update(scalars=["energy"], selection="pdgid != 22")
    (tmp_path / "gan.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "train.py").write_text(GAN_TRAIN)
    proc = torchrun(tmp_path, "train.py")
    assert proc.returncode == 0, proc.stderr[-2000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert [r["train_loss"] for r in r0] != [r["train_loss"] for r in r1]  # each process its own shard
    val = [k for k in r0[0] if k.startswith("val_")]
    assert len(val) > 3
    # yet the same weights: every process validates to the same numbers, the gradients were averaged
    assert [[r[k] for k in val] for r in r0] == [[r[k] for k in val] for r in r1]
    rows = _rows(tmp_path / "gan" / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r["train_loss"])) and math.isfinite(float(r["val_loss"])) for r in rows)
    out = physnn.generate(tmp_path / "gan", tmp_path / "gen.root", events=50, seed=1)
    assert out.events == 50


def test_epoch_seeds_differ_by_process_and_epoch():
    from physnn.training.trainer import epoch_seed

    seeds = {epoch_seed(1, e, r) for e in range(3) for r in range(4)}
    assert len(seeds) == 12
    assert epoch_seed(1, 2, 3) == epoch_seed(1, 2, 3)
    assert all(0 <= s < 2**63 for s in seeds)


STREAMING_TRAIN = """
import sys
import physnn, physnn.data.streaming as s
s.IN_MEMORY_FACTOR = 1e12  # stream these small data, 400 events in the buffer
s.rss_bytes = lambda: 0
s.BUFFER_SHARE = 400 * 7000 / s.data_share(s.parse_budget("400 MB"), 0)
out, stop_at = sys.argv[1], int(sys.argv[2])
def stop(row):
    if row["epoch"] == stop_at:
        raise SystemExit(3)
if stop_at < 0:
    physnn.train(out=out, resume=True, progress=False)
else:
    physnn.train("run.yaml", out=out, progress=False, on_epoch_end=stop)
"""


@pytest.mark.slow
@pytest.mark.parametrize("memory_budget", [None, "400 MB"])
def test_torchrun_resume_is_exact(epi_file, tmp_path, memory_budget):
    cfg = run_config(epi_file, epochs=3, batch_size=16, memory_budget=memory_budget)
    cfg["data"]["entry_stop"] = 600  # exactness needs steps, not statistics
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "train.py").write_text(STREAMING_TRAIN)
    proc = torchrun(tmp_path, "train.py", "full", "0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # stopped in both processes after the second epoch (its checkpoint written), then resumed under torchrun
    assert torchrun(tmp_path, "train.py", "cut", "2").returncode != 0
    assert load_checkpoint(tmp_path / "cut", "last.pt")["epoch"] == 2
    proc = torchrun(tmp_path, "train.py", "cut", "-1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    full = load_checkpoint(tmp_path / "full", "last.pt")
    cut = load_checkpoint(tmp_path / "cut", "last.pt")
    assert cut["epoch"] == 3
    assert full["data_info"].get("streaming", False) == (memory_budget is not None)
    for key, value in full["model"].items():
        assert torch.equal(cut["model"][key], value), key
    assert [r["train_loss"] for r in cut["history"]] == [r["train_loss"] for r in full["history"]]
