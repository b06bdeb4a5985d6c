"""Sample production with ``physnn generate``: seeds and job indices, file identities, conditions from a file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import uproot
from typer.testing import CliRunner

import physnn
from physnn.cli import app
from physnn.data.split import assign_split
from physnn.errors import BranchError, ConfigError, DataError

runner = CliRunner()


def _showers(path):
    return uproot.open(path)["showers"].arrays(library="np")


def _uuid(path) -> str:
    return str(uproot.open(path).file.uuid)


def test_seeds_and_job_indices_give_distinct_reproducible_samples(gan_run, tmp_path):
    def job(name: str, seed: int, job_index: int | None) -> dict:
        extra = {} if job_index is None else {"job_index": job_index}
        physnn.generate(gan_run, tmp_path / name, events=70, seed=seed, chunk_size=30, device="cpu", **extra)
        return _showers(tmp_path / name)

    default, first, again, second, other = (job("d.root", 5, None), job("a.root", 5, 0), job("b.root", 5, 0),
                                            job("c.root", 5, 1), job("e.root", 6, 1))
    # the same (seed, job) gives the same file, bit for bit; job 0 is the default
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        np.testing.assert_array_equal(first[key], default[key])
    assert _uuid(tmp_path / "a.root") == _uuid(tmp_path / "b.root")
    # other jobs and other seeds: other conditions and other showers, chunk by chunk (no stream is reused)
    for a, b in [(first, second), (second, other), (first, other)]:
        for lo in range(0, 70, 30):
            assert not np.isin(a["energy"][lo:lo + 30], b["energy"]).any()
            assert not np.array_equal(a["image"][lo:lo + 30], b["image"][lo:lo + 30])
    uuids = {_uuid(tmp_path / n) for n in ("a.root", "c.root", "e.root")}
    assert len(uuids) == 3  # the identity the training splits hash differs per (seed, job)
    splits = [assign_split(np.arange(2000), val=0.2, test=0.2, seed=1, file_id=f"{u}/showers") for u in uuids]
    assert not np.array_equal(splits[0], splits[1])
    meta = physnn.read_metadata(tmp_path / "c.root")
    assert (meta["seed"], meta["job_index"]) == (5, 1)


def test_the_batch_size_does_not_change_the_showers(gan_run, tmp_path):
    """The same (seed, job) gives the same file whatever --batch-size: the latents and the readout noise of a chunk
    are drawn for the whole chunk, not batch by batch from one interleaved stream."""
    for name, batch in (("b7.root", 7), ("b64.root", 64)):
        physnn.generate(gan_run, tmp_path / name, events=40, seed=3, batch_size=batch, device="cpu")
    small, large = _showers(tmp_path / "b7.root"), _showers(tmp_path / "b64.root")
    for key in small:
        np.testing.assert_allclose(small[key], large[key], rtol=1e-5, atol=1e-6)


def test_jobs_differ_even_where_torch_would_see_one_seed(gan_run, tmp_path, monkeypatch):
    """torch's CPU generator keeps only the low 32 bits of a seed, so chunk seeds drawn from each job's 128-bit
    stream could collide (about 1% of pairs at 1e8 showers). The latents and the readout noise come from the chunk's
    numpy stream itself: even with every torch seed forced to one value, two jobs at the same fixed conditions give
    different showers."""
    import types

    from physnn.inference import generate as module

    class OneSeed:  # torch.Generator(device).manual_seed(any seed) -> a generator seeded with 1234
        def __init__(self, device=None) -> None:
            self.device = device

        def manual_seed(self, _seed: int) -> torch.Generator:
            return torch.Generator(device=self.device).manual_seed(1234)

    proxy = types.ModuleType("torch")
    proxy.__dict__.update({k: v for k, v in vars(torch).items() if not k.startswith("__")})
    proxy.Generator = OneSeed
    monkeypatch.setattr(module, "torch", proxy)
    images = []
    for job in (0, 1):
        out = tmp_path / f"job{job}.root"
        physnn.generate(gan_run, out, events=20, seed=2, job_index=job, energy=20.0, classes=[11], device="cpu",
                        conditions={"x0": 0.0, "y0": 0.0})
        images.append(_showers(out)["image"])
    assert not np.array_equal(images[0], images[1])


def test_file_identity_depends_on_the_weights(gan_run, tmp_path):
    """Two trainings of one config to the same epoch with other weights (another machine, a GPU's rounding)
    never write files of one identity: the identity hashes the weights, not only the config and the epoch."""
    import shutil

    import torch

    other = tmp_path / "other"
    shutil.copytree(gan_run, other)
    ckpt = torch.load(other / "best.pt", weights_only=True)
    name = next(iter(ckpt["model"]))
    ckpt["model"][name] = ckpt["model"][name] + 1e-3
    torch.save(ckpt, other / "best.pt")
    a = physnn.generate(gan_run, tmp_path / "a.root", events=20, seed=1, device="cpu")
    b = physnn.generate(other, tmp_path / "b.root", events=20, seed=1, device="cpu")
    assert (a.meta["config_hash"], a.meta["epoch"], a.meta["seed"]) == (b.meta["config_hash"], b.meta["epoch"], 1)
    assert not np.array_equal(_showers(a.path)["image"], _showers(b.path)["image"])
    assert _uuid(a.path) != _uuid(b.path)


def _conditions_file(path, *, n=45, tree="events", drop=(), pdgid=None, energy=None):
    rng = np.random.default_rng(11)
    branches = {
        "energy": np.round(np.exp(rng.uniform(np.log(2.0), np.log(90.0), n)), 2).astype(np.float32)
        if energy is None else np.asarray(energy, np.float32),
        "x0": rng.uniform(-0.8, 0.8, n).astype(np.float32),
        "y0": rng.uniform(-0.8, 0.8, n).astype(np.float32),
        "pdgid": rng.choice([11, 22, 211], n).astype(np.int32) if pdgid is None else np.asarray(pdgid, np.int32),
        "eventNumber": np.arange(1000, 1000 + n, dtype=np.int64),
    }
    with uproot.recreate(path) as f:
        f[tree] = {k: v for k, v in branches.items() if k not in drop}
    return branches


def test_conditions_from_a_file_are_honoured_per_event(gan_run, tmp_path):
    source = tmp_path / "sample.root"
    given = _conditions_file(source)
    result = physnn.generate(gan_run, tmp_path / "g.root", conditions_file=source, conditions_tree="events",
                             seed=2, chunk_size=20, device="cpu")
    assert result.events == 45
    assert result.notes == []  # every condition within the training showers' ranges
    out = _showers(result.path)
    for name in ("energy", "x0", "y0", "pdgid"):  # same entry order, same count
        np.testing.assert_array_equal(out[name], given[name])
    np.testing.assert_array_equal(np.array([11, 22, 211])[out["label"]], out["pdgid"])
    # the showers follow their own entry's incident energy
    deposited = out["image"].reshape(45, -1).sum(1)
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.corrcoef(rank(deposited), rank(given["energy"]))[0, 1] > 0.8
    meta = physnn.read_metadata(result.path)
    assert meta["conditions_file"]["tree"] == "events"
    assert meta["conditions_file"]["identity"] == f"{uproot.open(source).file.uuid}/events"
    # the same conditions with another job: other showers, the same conditions; events equal to the entries pass
    again = physnn.generate(gan_run, tmp_path / "h.root", conditions_file=source, events=45, seed=2, job_index=1,
                            device="cpu")
    other = _showers(again.path)
    np.testing.assert_array_equal(other["energy"], given["energy"])
    assert not np.array_equal(other["image"], out["image"])
    assert _uuid(again.path) != _uuid(result.path)


def test_conditions_file_errors_in_the_api(gan_run, tmp_path):
    source = tmp_path / "sample.root"
    _conditions_file(source, n=10)
    with pytest.raises(ConfigError, match="has 10 entries"):
        physnn.generate(gan_run, tmp_path / "x.root", conditions_file=source, events=12, device="cpu")
    with pytest.raises(ConfigError, match="not to be combined with --energy"):
        physnn.generate(gan_run, tmp_path / "x.root", conditions_file=source, energy=10.0, device="cpu")
    bad = tmp_path / "bad.root"
    _conditions_file(bad, n=3, pdgid=[11, 13, 22])
    with pytest.raises(DataError, match=r"bad.root:events: branch 'pdgid' has the value 13"):
        physnn.generate(gan_run, tmp_path / "x.root", conditions_file=bad, device="cpu")
    _conditions_file(bad, n=3, energy=[5.0, 0.0, 7.0])
    with pytest.raises(DataError, match=r"'energy' .* must be positive, entry 1 has 0"):
        physnn.generate(gan_run, tmp_path / "x.root", conditions_file=bad, device="cpu")
    _conditions_file(bad, n=3, energy=[5.0, np.nan, 7.0])
    with pytest.raises(DataError, match=r"'energy' has NaN or infinite values \(entry 1\)"):
        physnn.generate(gan_run, tmp_path / "x.root", conditions_file=bad, device="cpu")
    import awkward as ak

    with uproot.recreate(bad) as f:
        f["events"] = {"energy": np.ones(2, np.float32), "x0": ak.Array([[0.1], [0.2, 0.3]]),
                       "y0": np.zeros(2, np.float32), "pdgid": np.full(2, 11, np.int32)}
    with pytest.raises(BranchError, match="branch 'x0' must hold one number per entry"):
        physnn.generate(gan_run, tmp_path / "x.root", conditions_file=bad, device="cpu")
    with pytest.raises(ConfigError, match="--events"):
        physnn.generate(gan_run, tmp_path / "x.root", device="cpu")
    with pytest.raises(ConfigError, match="2 files match"):  # sample.root and bad.root
        physnn.generate(gan_run, tmp_path / "x.root", conditions_file=tmp_path / "*.root", device="cpu")
    assert not (tmp_path / "x.root").exists()


def test_generate_cli_jobs_and_conditions(gan_run, tmp_path):
    source = tmp_path / "sample.root"
    given = _conditions_file(source, n=30)
    out = tmp_path / "job3.root"
    res = runner.invoke(app, ["generate", str(gan_run), "--conditions", f"{source}:events", "--seed", "4",
                              "--job-index", "3", "--out", str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "30 showers" in res.output
    np.testing.assert_array_equal(_showers(out)["energy"], given["energy"])
    assert (physnn.read_metadata(out)["seed"], physnn.read_metadata(out)["job_index"]) == (4, 3)
    # FILE without :TREE takes the file's only tree; conditions beyond the training range are generated, with a note
    far = tmp_path / "far.root"
    _conditions_file(far, n=6, energy=[5.0, 150.0, 20.0, 300.0, 50.0, 80.0])
    res = runner.invoke(app, ["generate", str(gan_run), "--conditions", str(far), "--out", str(tmp_path / "b.root")])
    assert res.exit_code == 0, res.output
    assert "note: 2 of 6 entries of" in res.output
    assert "have energy outside the training showers' range" in res.output


def test_generate_cli_bad_production_options(gan_run, tmp_path):
    source = tmp_path / "sample.root"
    _conditions_file(source, n=10)
    _conditions_file(tmp_path / "noimpact.root", n=10, drop=("x0",))
    bad = [
        (["--conditions", str(tmp_path / "noimpact.root")], ["noimpact.root:events", "no branch 'x0'"]),
        (["--conditions", f"{source}:evnts"], ["sample.root", "'evnts'"]),
        (["--conditions", str(tmp_path / "missing.root")], ["missing.root"]),
        (["--conditions", str(source), "--events", "5"], ["--events 5", "10 entries"]),
        (["--conditions", str(source), "--pdgid", "11"], ["--pdgid"]),
        (["--conditions", str(source), "--condition", "x0=0"], ["--condition"]),
    ]
    typer_checks = [(["--events", "5", "--job-index", "-1"], ["--job-index"]),
                    (["--events", "5", "--seed", "-3"], ["--seed"])]
    for args, texts in bad + typer_checks:
        target = tmp_path / "bad.root"
        res = runner.invoke(app, ["generate", str(gan_run), "--out", str(target), "--device", "cpu", *args])
        assert res.exit_code == 2, (args, res.output)
        for text in texts:
            assert text in res.output, (args, res.output)
        assert "Traceback" not in res.output
        if (args, texts) in bad:  # physnn's line; typer's own range checks print its usage box
            assert res.output.strip().startswith("error:"), res.output
            assert len(res.output.strip().splitlines()) == 1, res.output
        assert not target.exists()


def test_a_negative_seed_is_one_line_naming_it(gan_run, tmp_path):
    """numpy's SeedSequence refuses negative seeds: that was an 'unexpected ValueError' without the option."""
    res = runner.invoke(app, ["generate", str(gan_run), "--events", "5", "--seed", "-3", "--out",
                              str(tmp_path / "x.root"), "--device", "cpu"])
    assert res.exit_code == 2
    assert "--seed" in res.output, res.output
    assert "unexpected" not in res.output, res.output
    with pytest.raises(ConfigError, match="--seed -3"):
        physnn.generate(gan_run, tmp_path / "x.root", events=5, seed=-3, device="cpu")
    assert not (tmp_path / "x.root").exists()
