"""`denoise` keeps the input's layout (branch names, order, types, shared counters); `encode` reads the same files.

The inputs are written the way physicists write them: PyROOT (``std::vector<float>``, a NanoAOD-like
``nMuon`` + ``Muon_pt[nMuon]`` + ``Muon_eta[nMuon]``, a ``std::string``, a ``vector<vector<float>>``
that uproot cannot write, a fixed-size ``image[1][8][8]/F``), and uproot's default writing
(an RNTuple with a zipped ``Muon`` collection).
"""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from typer.testing import CliRunner

import physnn
from physnn.cli import app

ROOT = pytest.importorskip("ROOT")

N = 120
#: the input's branches in order (the tree as C++ sees it)
NANO_ORDER = ["run", "hits", "nMuon", "Muon_pt", "Muon_eta", "image", "tag", "tracks", "energy"]


def _write_nano(path: Path, n: int = N, seed: int = 0) -> Path:
    """A TTree written by PyROOT like a C++ analysis writes one."""
    rng = np.random.default_rng(seed)
    f = ROOT.TFile(str(path), "RECREATE")
    t = ROOT.TTree("events", "events")
    run = np.zeros(1, np.int32)
    hits = ROOT.std.vector("float")()
    nmu = np.zeros(1, np.int32)
    pt, eta = np.zeros(8, np.float32), np.zeros(8, np.float32)
    img = np.zeros((1, 8, 8), np.float32)
    tag = ROOT.std.string()
    tracks = ROOT.std.vector(ROOT.std.vector("float"))()
    energy = np.zeros(1, np.float64)
    t.Branch("run", run, "run/I")
    t.Branch("hits", hits)
    t.Branch("nMuon", nmu, "nMuon/I")
    t.Branch("Muon_pt", pt, "Muon_pt[nMuon]/F")
    t.Branch("Muon_eta", eta, "Muon_eta[nMuon]/F")
    t.Branch("image", img, "image[1][8][8]/F")
    t.Branch("tag", tag)
    t.Branch("tracks", tracks)
    t.Branch("energy", energy, "energy/D")
    for i in range(n):
        run[0] = i
        hits.clear()
        for value in rng.normal(size=rng.integers(0, 4)):
            hits.push_back(float(value))
        nmu[0] = rng.integers(0, 4)
        pt[:nmu[0]] = rng.uniform(5, 50, nmu[0])
        eta[:nmu[0]] = rng.normal(size=nmu[0])
        img[:] = 0
        img[0, 3:5, 3:5] = rng.uniform(1, 5)
        tag.assign(f"ev{i}")
        tracks.clear()
        tracks.push_back(ROOT.std.vector("float")([1.0, float(i)]))
        energy[0] = rng.uniform()
        t.Fill()
    t.Write()
    f.Close()
    return path


@pytest.fixture(scope="module")
def nano_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_nano(tmp_path_factory.mktemp("layout") / "nano.root")


@pytest.fixture(scope="module")
def zipped_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``f["events"] = {... "Muon": ak.zip(...)}``: uproot (>= 5.7) writes an RNTuple with a record field."""
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 4, N)
    total = int(counts.sum())
    muon = ak.zip({"pt": ak.unflatten(rng.uniform(5, 50, total).astype(np.float32), counts),
                   "eta": ak.unflatten(rng.normal(size=total).astype(np.float32), counts)})
    image = np.zeros((N, 1, 8, 8), np.float32)
    image[:, 0, 3:5, 3:5] = rng.uniform(1, 5, (N, 1, 1))
    path = tmp_path_factory.mktemp("layout") / "zipped.root"
    with uproot.recreate(path) as f:
        f["events"] = {"run": np.arange(N, dtype=np.int32), "Muon": muon, "image": image}
    return path


@pytest.fixture(scope="module")
def ae8(nano_file: Path, tmp_path_factory: pytest.TempPathFactory):
    """A tiny denoiser of 1x8x8 images (one epoch), with jagged observers for ``encode``."""
    cfg = {"data": {"files": str(nano_file), "tree": "events", "images": {"branches": ["image"]},
                    "observers": ["run", "nMuon", "Muon_pt", "Muon_eta"]},
           "model": {"name": "conv_autoencoder", "params": {
               "encoder": [{"type": "conv", "filters": 4, "kernel_size": 3}, {"type": "pool", "pool_size": 2}],
               "code_size": 4, "dropout": 0.1}},
           "task": {"kind": "reconstruction", "noise": [{"type": "gaussian", "sigma": 0.1}]},
           "train": {"epochs": 1, "batch_size": 64, "seed": 2, "early_stopping": {"patience": None}}}
    return physnn.train(cfg, out=tmp_path_factory.mktemp("layout") / "ae", progress=False)


#: The branches every physnn output adds after the file's own: the run's training-domain check.
DOMAIN = ("ood_score", "in_domain")


def _branches(path: Path, tree: str = "events", *, domain: bool = False) -> list[tuple[str, str, str, str]]:
    """(name, class name, leaf type, leaf count) of every branch, in order, as ROOT sees them (without the
    domain branches unless ``domain``)."""
    f = ROOT.TFile.Open(str(path))
    t = f.Get(tree)
    out = []
    for b in t.GetListOfBranches():
        leaf = b.GetListOfLeaves()[0]
        count = leaf.GetLeafCount()
        out.append((b.GetName(), b.GetClassName(), leaf.GetTypeName(), count.GetName() if count else ""))
    f.Close()
    return [b for b in out if domain or b[0] not in DOMAIN]


def _columns(path: Path, tree: str = "events") -> dict[str, str]:
    df = ROOT.RDataFrame(tree, str(path))
    return {str(c): str(df.GetColumnType(c)) for c in df.GetColumnNames() if str(c) not in DOMAIN}


def _meta(path: Path) -> dict:
    with uproot.open(path) as f:
        return json.loads(str(f["physnn_meta"]))


def test_denoise_keeps_a_root_written_tree(ae8, nano_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "clean.root"
    result = physnn.denoise(ae8.run_dir, nano_file, out=out)
    assert result.events == N
    before, after = _branches(nano_file), _branches(out)
    assert [b[0] for b in before] == NANO_ORDER
    # same order; std::vector<float> gets its counter n_hits just before it; the unwritable branch is gone
    assert [b[0] for b in after] == ["run", "n_hits", "hits", "nMuon", "Muon_pt", "Muon_eta", "image", "tag",
                                     "energy"]
    assert [b[:3] for b in _branches(out, domain=True)[-2:]] == [("ood_score", "", "Float_t"),
                                                                  ("in_domain", "", "Bool_t")]  # appended
    kinds = {b[0]: b[1:] for b in after}
    assert kinds["Muon_pt"] == kinds["Muon_eta"] == ("", "Float_t", "nMuon")  # the shared counter stays shared
    assert kinds["nMuon"] == ("", "Int_t", "")
    assert kinds["image"] == ("", "Float_t", "")
    assert kinds["hits"] == ("", "Float_t", "n_hits")  # uproot writes std::vector<float> as float[n_hits]
    assert kinds["tag"][1] == "Char_t"  # std::string as a C string
    assert {b[0]: b[1:] for b in before}["hits"][0] == "vector<float>"
    # what C++ reads: RDataFrame sees RVec<float> for both, the image with its shape
    cols_in, cols_out = _columns(nano_file), _columns(out)
    for name in ("run", "nMuon", "energy"):
        assert cols_out[name] == cols_in[name]
    for name in ("hits", "Muon_pt", "Muon_eta"):
        assert cols_out[name].replace("Float_t", "float") == cols_in[name].replace("Float_t", "float")
    with uproot.open(nano_file) as fin, uproot.open(out) as fout:
        tin, tout = fin["events"], fout["events"]
        assert tout["image"].typename == tin["image"].typename == "float[1][8][8]"
        for name in ("run", "hits", "nMuon", "Muon_pt", "Muon_eta", "tag", "energy"):
            assert ak.to_list(tout[name].array()) == ak.to_list(tin[name].array()), name
    meta = _meta(out)
    assert meta["skipped_branches"] == ["tracks"] == result.meta["skipped_branches"]
    assert meta["tree"] == "events"


def test_cpp_reads_std_vector_and_its_copy_alike(ae8, nano_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "clean.root"
    physnn.denoise(ae8.run_dir, nano_file, out=out)
    sums = []
    for path in (nano_file, out):
        f = ROOT.TFile.Open(str(path))
        reader = ROOT.TTreeReader("events", f)
        hits = ROOT.TTreeReaderArray["float"](reader, "hits")
        pt = ROOT.TTreeReaderArray["float"](reader, "Muon_pt")
        total = 0.0
        while reader.Next():
            total += sum(hits) + sum(pt)
        sums.append(total)
        f.Close()
    assert sums[0] == pytest.approx(sums[1])


def test_skipped_branches_are_known_before_the_work(ae8, nano_file: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import physnn.inference.autoencode as autoencode

    calls = []
    original = autoencode.reconstruct
    monkeypatch.setattr(autoencode, "reconstruct", lambda *a, **k: calls.append(1) or original(*a, **k))
    seen = []
    result = physnn.denoise(ae8.run_dir, nano_file, out=tmp_path / "c.root", step_size=50,
                            on_skipped=lambda skipped: seen.append((dict(skipped), len(calls))))
    assert len(seen) == 1
    skipped, done = seen[0]
    assert done == 0  # told before any event was denoised
    assert list(skipped) == ["tracks"]
    assert "uproot cannot write it" in skipped["tracks"]  # with the reason
    assert len(calls) == 3  # three chunks
    assert result.meta["skipped_branches"] == ["tracks"]


def test_denoise_command_line_says_what_it_skips_first(ae8, nano_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "clean.root"
    result = CliRunner().invoke(app, ["denoise", str(ae8.run_dir), str(nano_file), "--out", str(out), "-T", "2"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "tracks" in text
    assert text.index("tracks") < text.index("denoised events")
    names = [b[0] for b in _branches(out)]
    assert names == ["run", "n_hits", "hits", "nMuon", "Muon_pt", "Muon_eta", "image", "tag", "energy",
                     "image_std"]
    assert _meta(out)["skipped_branches"] == ["tracks"]


def test_denoise_in_memory_keeps_the_order(ae8, nano_file: Path) -> None:
    result = physnn.denoise(ae8.run_dir, nano_file, add_noise=True, mc_samples=2)
    assert list(result.arrays) == ["run", "hits", "nMuon", "Muon_pt", "Muon_eta", "image", "tag", "energy",
                                   "image_noisy", "image_std", *DOMAIN]
    assert ak.to_list(result.arrays["tag"][:2]) == ["ev0", "ev1"]


def test_denoise_keeps_an_uproot_zipped_collection(ae8, zipped_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "clean.root"
    result = physnn.denoise(ae8.run_dir, zipped_file, out=out)
    assert result.events == N
    assert result.meta["skipped_branches"] == []
    with uproot.open(zipped_file) as fin, uproot.open(out) as fout:
        tin, tout = fin["events"], fout["events"]
        assert type(tout).__name__ == type(tin).__name__  # an RNTuple stays an RNTuple
        assert tout.keys(recursive=False) == [*tin.keys(recursive=False), *DOMAIN]
        assert str(tout.arrays(filter_name=tin.keys(recursive=False), entry_stop=0).type) == str(
            tin.arrays(entry_stop=0).type)
        assert ak.to_list(tout["Muon"].array()) == ak.to_list(tin["Muon"].array())
    assert _columns(out) == _columns(zipped_file)
    assert _meta(out)["tree"] == "events"


def test_denoise_keeps_shared_counters_of_an_uproot_written_tree(ae8, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 3, N)
    muon = ak.zip({"pt": ak.unflatten(rng.uniform(5, 50, counts.sum()).astype(np.float32), counts),
                   "eta": ak.unflatten(rng.normal(size=counts.sum()).astype(np.float32), counts)})
    data = {"Muon": muon, "image": np.ones((N, 1, 8, 8), np.float32)}
    path = tmp_path / "tree.root"
    with uproot.recreate(path) as f:  # mktree: a TTree nMuon, Muon_pt[nMuon], Muon_eta[nMuon], image
        f.mktree("events", {"Muon": muon.type, "image": np.dtype((np.float32, (1, 8, 8)))}).extend(data)
    out = tmp_path / "clean.root"
    physnn.denoise(ae8.run_dir, path, out=out)
    assert _branches(out) == _branches(path)


def test_encode_reads_collections(ae8, nano_file: Path, zipped_file: Path, tmp_path: Path) -> None:
    result = physnn.encode(ae8.run_dir, nano_file, out=tmp_path / "codes.root")
    assert result.events == N
    with uproot.open(tmp_path / "codes.root") as f:
        tree = f["codes"]
        assert {"run", "nMuon", "Muon_pt", "Muon_eta", "code_0"} <= set(tree.keys())
        assert ak.to_list(tree["Muon_pt"].array()) == ak.to_list(uproot.open(nano_file)["events"]["Muon_pt"].array())
    result = physnn.encode(ae8.run_dir, zipped_file, out=tmp_path / "codes2.root")
    assert result.events == N
    with uproot.open(tmp_path / "codes2.root") as f:
        np.testing.assert_array_equal(f["codes"]["run"].array(library="np"), np.arange(N))


def test_a_new_counter_never_takes_an_existing_name(tmp_path: Path, real_dir: Path) -> None:
    from physnn.io.layout import plan_layout

    path = tmp_path / "v.root"
    f = ROOT.TFile(str(path), "RECREATE")
    t = ROOT.TTree("t", "t")
    taken = np.zeros(1, np.int32)
    hits = ROOT.std.vector("float")([1.0, 2.0])
    t.Branch("n_hits", taken, "n_hits/I")  # an unrelated branch with the conventional counter name
    t.Branch("hits", hits)
    t.Fill()
    t.Write()
    f.Close()
    with uproot.open(path) as fin:
        layout = plan_layout(fin["t"])
    assert layout.branches == ["n_hits", "hits"]
    assert layout.counters == {"hits": "n_hits_2"}
    with uproot.open(real_dir / "uproot-issue-tbranch-of-th2.root") as fin:  # one TH2F per entry
        assert plan_layout(fin["g4SimHits/tree"]).skipped == {"histogram": "one histogram object per entry"}


def test_denoise_and_encode_map_the_run_branches_to_the_file(ae8, nano_file: Path, tmp_path: Path) -> None:
    """``--map image=calo_image``: a file whose branches are named otherwise."""
    from typer.testing import CliRunner

    from physnn.cli import app

    renamed = tmp_path / "renamed.root"
    with uproot.open(nano_file) as f:
        image = f["events"]["image"].array(library="np")
        run = f["events"]["run"].array(library="np")
    with uproot.recreate(renamed) as f:
        f.mktree("events", {"run_number": run.dtype, "calo_image": np.dtype((np.float32, (1, 8, 8)))})
        f["events"].extend({"run_number": run, "calo_image": image})
    runner = CliRunner()
    res = runner.invoke(app, ["denoise", str(ae8.run_dir), str(renamed), "--out", str(tmp_path / "clean.root"),
                              "--map", "image=calo_image"])
    assert res.exit_code == 0, res.output
    branches = [b[0] for b in _branches(tmp_path / "clean.root")]
    assert branches[:2] == ["run_number", "calo_image"]  # the file's layout, denoised in place
    assert "calo_image_std" not in branches  # no MC dropout asked
    res = runner.invoke(app, ["encode", str(ae8.run_dir), str(renamed), "--out", str(tmp_path / "codes.root"),
                              "--map", "image=calo_image,run=run_number"])
    assert res.exit_code == 0, res.output
    with uproot.open(tmp_path / "codes.root") as f:
        np.testing.assert_array_equal(f["codes"]["run_number"].array(library="np"), np.arange(N))
    res = runner.invoke(app, ["encode", str(ae8.run_dir), str(renamed), "--out", str(tmp_path / "c2.root"),
                              "--map", "img=calo_image"])
    assert res.exit_code == 2
    assert "img" in res.output
    assert not (tmp_path / "c2.root").exists()
