"""Training beyond memory: the streamed split, the shuffle buffer and the memory budget."""

from __future__ import annotations

import pytest
import torch
from conftest import run_config

import physnn
import physnn.data.streaming as streaming
from physnn.config import DataConfig
from physnn.errors import ConfigError
from physnn.training.checkpoint import load_checkpoint
from physnn.training.config import RunConfig


@pytest.fixture
def always_stream(monkeypatch):
    """Stream whatever the size of the data, with the buffer set by each test."""
    monkeypatch.setattr(streaming, "IN_MEMORY_FACTOR", 1e12)
    monkeypatch.setattr(streaming, "rss_bytes", lambda: 0)
    return "400 MB"


def _per_event_fraction(events: int, budget: str = "400 MB") -> float:
    return events * 7000 / streaming.data_share(streaming.parse_budget(budget), 0)


def _bundle(epi_file, monkeypatch, budget):
    monkeypatch.setattr(streaming, "BUFFER_SHARE", _per_event_fraction(400))
    cfg = DataConfig.model_validate(run_config(epi_file)["data"])
    return cfg, streaming.prepare(cfg, budget)


def test_a_streamed_epoch_sees_every_training_event_once(epi_file, monkeypatch, always_stream):
    cfg, bundle = _bundle(epi_file, monkeypatch, always_stream)
    assert isinstance(bundle, streaming.StreamingBundle)
    split = bundle.train
    assert 300 <= split.capacity <= 500
    assert len(split.chunks) > 20
    memory = physnn.load(cfg, transform=bundle.transform).train
    assert len(split) == len(memory)

    def epoch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        batches = list(split.batches(32, shuffle=True, generator=torch.Generator().manual_seed(seed)))
        assert all(len(b["label"]) == 32 for b in batches[:-1])
        # an event is identified by its image's sum (continuous values: no ties)
        return torch.cat([b["image"].sum((1, 2, 3)) for b in batches]), torch.cat([b["label"] for b in batches])

    keys, labels = epoch(1)
    ref = memory.inputs["image"].sum((1, 2, 3))
    assert torch.allclose(keys.sort().values, ref.sort().values)  # every event once, with its own label
    assert torch.equal(labels[keys.argsort()], memory.label[ref.argsort()])
    again, _ = epoch(1)
    other, _ = epoch(2)
    assert torch.equal(keys, again)  # the same generator state: the same order (exact --resume)
    assert not torch.equal(keys, other)
    plain = torch.cat([b["image"].sum((1, 2, 3)) for b in split.batches(64)])
    assert torch.allclose(plain, ref)  # without shuffling: the file order, like in memory
    # shuffled for real: the first batch mixes events from all over the file
    first = keys[:32]
    position = torch.searchsorted(ref.sort().values, first.clamp(max=ref.max()))
    assert position.float().std() > len(ref) / 8


def test_streaming_training_matches_in_memory_quality_and_resumes_exactly(epi_file, tmp_path, monkeypatch,
                                                                          always_stream):
    monkeypatch.setattr(streaming, "BUFFER_SHARE", _per_event_fraction(400))
    cfg = run_config(epi_file, epochs=3, optimizer={"lr": 3e-3}, memory_budget=always_stream)
    streamed = physnn.train(cfg, out=tmp_path / "stream", progress=False)
    info = torch.load(tmp_path / "stream" / "last.pt", weights_only=True)["data_info"]
    assert info["streaming"]
    assert info["buffer_events"] < info["split"]["train"] / 3
    assert streamed.best["val_auc"] > 0.95
    # killed after two epochs, then --resume: the same final weights as three epochs at once
    def kill_after_two(row):
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        physnn.train(cfg, out=tmp_path / "cut", progress=False, on_epoch_end=kill_after_two)
    physnn.train(out=tmp_path / "cut", resume=True, progress=False)
    full = load_checkpoint(tmp_path / "stream", "last.pt")["model"]
    cut = load_checkpoint(tmp_path / "cut", "last.pt")["model"]
    for key, value in full.items():
        assert torch.equal(cut[key], value), key


def test_small_data_stay_in_memory_under_a_budget(epi_file, tmp_path):
    result = physnn.train(run_config(epi_file, epochs=1, memory_budget="64 GB"), out=tmp_path / "r", progress=False)
    info = torch.load(tmp_path / "r" / "last.pt", weights_only=True)["data_info"]
    assert info["streaming"] is False
    assert result.history


def test_memory_budget_errors(epi_file):
    with pytest.raises(ConfigError, match="process already uses"):
        streaming.prepare(DataConfig.model_validate(run_config(epi_file)["data"]), "10 MB")
    with pytest.raises(ValueError, match="memory_budget 'lots': expected a size such as '4 GB'"):
        RunConfig.model_validate(run_config(epi_file, memory_budget="lots"))
    with pytest.raises(ValueError, match="memory_budget '1000'"):  # a number of entries is not a size
        RunConfig.model_validate(run_config(epi_file, memory_budget="1000"))


def test_rss_is_measured():
    assert 10 * 2**20 < streaming.rss_bytes() < 64 * 2**30


class _ThreadRanks:
    """Two ranks of a fake process group in threads: ``reduce`` waits for both, like an all-reduce."""

    def __init__(self, world: int) -> None:
        import threading

        self.world = world
        self.barrier = threading.Barrier(world)
        self.values: dict[int, int] = {}

    def rank(self, r: int):
        group = self

        class Rank:
            rank, world, enabled = r, group.world, True

            def reduce(self, value, op):
                group.values[r] = value
                group.barrier.wait()
                out = min(group.values.values()) if op == "min" else max(group.values.values())
                group.barrier.wait()
                return out

            def all_true(self, flag):
                return bool(self.reduce(int(flag), "min"))

        return Rank()


def test_processes_stream_disjoint_chunks_in_lockstep(epi_file, monkeypatch, always_stream):
    import threading

    _cfg, bundle = _bundle(epi_file, monkeypatch, always_stream)
    split = bundle.train
    group = _ThreadRanks(2)
    seen: dict[int, list[torch.Tensor]] = {0: [], 1: []}

    def run(r: int) -> None:
        gen = torch.Generator().manual_seed(5)  # the trainer's generator: the same state in every process
        for batch in split.batches(32, shuffle=True, generator=gen, dist=group.rank(r)):
            seen[r].append(batch["image"].sum((1, 2, 3)))

    threads = [threading.Thread(target=run, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert len(seen[0]) == len(seen[1]) > 0  # the same number of steps: DDP cannot hang
    keys = [torch.cat(seen[r]) for r in (0, 1)]
    both = torch.cat(keys)
    assert len(torch.unique(both)) == len(both)  # disjoint: no event twice in an epoch
    biggest = max(c.stop - c.start for c in split.chunks)
    assert len(split) - 2 * biggest <= len(both) <= len(split)  # only the tail of the longer shard waits
    assert abs(len(keys[0]) - len(keys[1])) <= 32 + biggest


def test_torchrun_streams_with_a_memory_budget(epi_file, tmp_path):
    import yaml
    from conftest import torchrun

    cfg = run_config(epi_file, epochs=3, optimizer={"lr": 3e-3}, batch_size=16, memory_budget="400 MB")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    # the Python API under torchrun, with the streaming thresholds of this test file
    (tmp_path / "train.py").write_text(
        "import physnn, physnn.data.streaming as s\n"
        "s.IN_MEMORY_FACTOR = 1e12\n"
        "s.rss_bytes = lambda: 0\n"
        f"s.BUFFER_SHARE = {_per_event_fraction(400)}\n"
        "physnn.train('run.yaml', out='ddp', progress=False)\n")
    proc = torchrun(tmp_path, "train.py")
    assert proc.returncode == 0, proc.stderr[-2000:]
    ckpt = load_checkpoint(tmp_path / "ddp", "last.pt")
    assert ckpt["data_info"]["streaming"]
    assert ckpt["data_info"]["chunks"] >= 8
    assert ckpt["epoch"] == 3
    assert max(row["val_auc"] for row in ckpt["history"]) > 0.95
    assert [row["epoch"] for row in ckpt["history"]] == [1, 2, 3]  # one writer
