"""Interop with ROOT itself: files written by PyROOT read by physnn, physnn's outputs read back by ROOT.

Skipped where ROOT is not importable (the ``ROOT`` pip wheel exists for Linux x86-64; CI installs it with the
``dev`` extra). Leaf lists, objects with members and friend trees are in ``test_layouts.py``; the layout that
``denoise`` keeps in ``test_denoise_layout.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = pytest.importorskip("ROOT")

import physnn  # noqa: E402

N = 40

#: ROOT's compression settings (algorithm * 100 + level), the ones physicists meet.
COMPRESSIONS = {"uncompressed": 0, "zlib": 101, "lzma": 207, "lz4": 404, "zstd": 505, "zlib-9": 109}


def _cells(i: int) -> np.ndarray:
    """A deterministic (2, 8, 8) image for entry ``i``."""
    return (np.arange(128, dtype=np.float32).reshape(2, 8, 8) * 0.01 + i).astype(np.float32)


def _write_fixed_arrays(path: Path, compression: int, folder: str | None = None) -> None:
    """``image[2][8][8]/F``, ``energy/F`` and ``label/I`` with ``TTree::Branch`` and numpy buffers."""
    f = ROOT.TFile(str(path), "RECREATE", "", compression)
    where = f.mkdir(folder) if folder else f
    where.cd()
    tree = ROOT.TTree("calo", "calorimeter")
    image = np.zeros((2, 8, 8), dtype=np.float32)
    energy = np.zeros(1, dtype=np.float32)
    label = np.zeros(1, dtype=np.int32)
    tree.Branch("image", image, "image[2][8][8]/F")
    tree.Branch("energy", energy, "energy/F")
    tree.Branch("label", label, "label/I")
    for i in range(N):
        image[...] = _cells(i)
        energy[0] = 1.5 * i
        label[0] = i % 2
        tree.Fill()
    tree.Write()
    f.Close()


def _all_entries(data_cfg: dict) -> physnn.TensorData:
    """Every entry in the training split, unstandardised, in file order."""
    cfg = {**data_cfg, "split": {"val": 0.0, "test": 0.0}, "standardize": {"method": "none"}}
    return physnn.load(cfg).train


@pytest.mark.parametrize("name", list(COMPRESSIONS))
def test_fixed_arrays_written_by_root_with_every_compression_load_exactly(name, tmp_path):
    path = tmp_path / f"{name}.root"
    _write_fixed_arrays(path, COMPRESSIONS[name])
    data = _all_entries({"files": str(path), "tree": "calo", "images": {"branches": ["image"]},
                         "label": "label", "targets": ["energy"]})
    order = np.argsort(data.entry)
    image = data.inputs["image"].numpy()[order]
    assert image.shape == (N, 2, 8, 8)
    np.testing.assert_array_equal(image, np.stack([_cells(i) for i in range(N)]))
    np.testing.assert_array_equal(data.label.numpy()[order], np.arange(N) % 2)


def test_a_tree_in_a_subfolder_is_addressed_by_its_path(tmp_path):
    path = tmp_path / "folders.root"
    _write_fixed_arrays(path, 101, folder="calo_dir")
    [info] = physnn.inspect(str(path))
    assert info.name == "calo_dir/calo"
    data = _all_entries({"files": str(path), "tree": "calo_dir/calo", "images": {"branches": ["image"]},
                         "label": "label"})
    assert len(data) == N


def test_std_vector_branches_become_padded_sequences(tmp_path):
    path = tmp_path / "vectors.root"
    f = ROOT.TFile(str(path), "RECREATE")
    tree = ROOT.TTree("hits", "hits")
    e = ROOT.std.vector["float"]()
    t = ROOT.std.vector["float"]()
    label = np.zeros(1, dtype=np.int32)
    tree.Branch("hit_e", e)
    tree.Branch("hit_t", t)
    tree.Branch("label", label, "label/I")
    lengths = [i % 5 for i in range(N)]
    for i, n in enumerate(lengths):
        e.clear()
        t.clear()
        for k in range(n):
            e.push_back(10.0 * i + k)
            t.push_back(-float(k))
        label[0] = i % 2
        tree.Fill()
    tree.Write()
    f.Close()
    data = _all_entries({"files": str(path), "tree": "hits", "label": "label",
                         "sequence": {"features": ["hit_e", "hit_t"], "max_length": 6}})
    order = np.argsort(data.entry)
    seq = data.inputs["sequence"].numpy()[order]
    mask = data.inputs["mask"].numpy()[order]
    assert seq.shape == (N, 6, 2)
    np.testing.assert_array_equal(mask.sum(1), lengths)
    for i, n in enumerate(lengths):
        np.testing.assert_array_equal(seq[i, :n, 0], 10.0 * i + np.arange(n))
        np.testing.assert_array_equal(seq[i, :n, 1], -np.arange(n, dtype=np.float32))
        assert not seq[i, n:].any()  # padding is zeros


def test_a_th2_per_entry_is_an_image_of_its_bin_contents(tmp_path):
    path = tmp_path / "th2.root"
    f = ROOT.TFile(str(path), "RECREATE")
    tree = ROOT.TTree("maps", "one TH2F per entry")
    hist = ROOT.TH2F("h", "h", 4, 0.0, 4.0, 3, 0.0, 3.0)  # nx = 4, ny = 3
    label = np.zeros(1, dtype=np.int32)
    tree.Branch("hist", hist)
    tree.Branch("label", label, "label/I")
    for i in range(N):
        hist.Reset()
        for ix in range(4):
            for iy in range(3):
                hist.SetBinContent(ix + 1, iy + 1, i + 10 * iy + ix)
        label[0] = i % 2
        tree.Fill()
    tree.Write()
    f.Close()
    data = _all_entries({"files": str(path), "tree": "maps", "images": {"branches": ["hist"]}, "label": "label"})
    image = data.inputs["image"].numpy()[np.argsort(data.entry)]
    assert image.shape == (N, 1, 3, 4)  # (channel, y, x), without under/overflow
    expected = np.arange(N)[:, None, None] + 10 * np.arange(3)[None, :, None] + np.arange(4)[None, None, :]
    np.testing.assert_array_equal(image[:, 0], expected)


RNTUPLE_WRITER = """
void physnn_write_rntuple(const char *path) {
  auto model = ROOT::RNTupleModel::Create();
  auto image = model->MakeField<std::array<float, 128>>("image");
  auto energy = model->MakeField<float>("energy");
  auto label = model->MakeField<int>("label");
  auto writer = ROOT::RNTupleWriter::Recreate(std::move(model), "calo", path);
  for (int i = 0; i < 40; ++i) {
    for (int k = 0; k < 128; ++k) (*image)[k] = k * 0.01f + i;
    *energy = 1.5f * i;
    *label = i % 2;
    writer->Fill();
  }
}
"""


def test_an_rntuple_written_by_rntuplewriter_loads_exactly(tmp_path):
    if not hasattr(ROOT, "physnn_write_rntuple"):
        ROOT.gInterpreter.Declare(RNTUPLE_WRITER)
    path = tmp_path / "rntuple.root"
    ROOT.physnn_write_rntuple(str(path))
    data = _all_entries({"files": str(path), "tree": "calo", "images": {"branches": ["image"], "shape": [2, 8, 8]},
                         "label": "label", "targets": ["energy"]})
    order = np.argsort(data.entry)
    np.testing.assert_array_equal(data.inputs["image"].numpy()[order], np.stack([_cells(i) for i in range(N)]))
    np.testing.assert_array_equal(data.target.numpy()[order, 0], 1.5 * np.arange(N, dtype=np.float32))


def test_rdataframe_snapshot_to_ttree_and_rntuple_loads(tmp_path):
    source = tmp_path / "source.root"
    _write_fixed_arrays(source, 101)
    df = ROOT.RDataFrame("calo", str(source)).Define("e2", "2 * energy")
    as_tree = tmp_path / "snap_tree.root"
    df.Snapshot("snap", str(as_tree), ["image", "energy", "e2", "label"])
    opts = ROOT.RDF.RSnapshotOptions()
    opts.fOutputFormat = ROOT.RDF.ESnapshotOutputFormat.kRNTuple
    as_ntuple = tmp_path / "snap_rntuple.root"
    ROOT.RDataFrame("calo", str(source)).Define("e2", "2 * energy").Snapshot(
        "snap", str(as_ntuple), ["image", "energy", "e2", "label"], opts)
    for path in (as_tree, as_ntuple):
        data = _all_entries({"files": str(path), "tree": "snap", "scalars": ["energy"], "label": "label",
                             "targets": ["e2"], "images": {"branches": ["image"], "shape": [2, 8, 8]}})
        order = np.argsort(data.entry)
        np.testing.assert_array_equal(data.inputs["image"].numpy()[order], np.stack([_cells(i) for i in range(N)]))
        np.testing.assert_allclose(data.target.numpy()[order, 0], 3.0 * np.arange(N))


# ---- physnn's outputs read back by ROOT ----

def test_simulated_showers_open_in_root_with_their_layout(showers_file):
    f = ROOT.TFile.Open(str(showers_file))
    tree = f.Get("showers")
    assert tree.GetEntries() == 600
    leaf = tree.GetLeaf("image")
    assert leaf.GetTypeName() == "Float_t"
    assert leaf.GetLenStatic() == 3 * 24 * 24  # image[3][24][24]/F: a fixed array, not a vector
    df = ROOT.RDataFrame(tree)
    assert df.GetColumnType("energy") == "Float_t"
    assert df.Filter("energy >= 1 && energy <= 100").Count().GetValue() == 600
    meta = json.loads(str(f.Get("physnn_meta").GetString()))
    assert meta["command"].startswith("physnn simulate")
    assert meta["physnn"] == physnn.__version__
    f.Close()


def test_predictions_join_the_input_with_addfriend(cls_run, epi_file, tmp_path):
    out = tmp_path / "preds.root"
    physnn.predict(cls_run.run_dir, epi_file, out=out, mc_samples=5, seed=1)
    f = ROOT.TFile.Open(str(epi_file))
    tree = f.Get("showers")
    tree.AddFriend("predictions", str(out))
    df = ROOT.RDataFrame(tree)
    n = tree.GetEntries()
    assert df.Count().GetValue() == n
    # every prediction row is the input's entry of the same number, with the same observers copied
    assert df.Filter("predictions.entry != rdfentry_").Count().GetValue() == 0
    assert df.Filter("predictions.energy != energy").Count().GetValue() == 0
    assert df.Filter("predictions.pdgid != pdgid").Count().GetValue() == 0
    scores = df.Take["float"]("predictions.score").GetValue()
    assert min(scores) >= 0.0
    assert max(scores) <= 1.0
    # the score separates pions (class 1) from electrons as seen from ROOT
    pions = df.Filter("pdgid == 211").Mean("predictions.score").GetValue()
    electrons = df.Filter("pdgid == 11").Mean("predictions.score").GetValue()
    assert pions > electrons + 0.3
    pred = ROOT.TFile.Open(str(out))
    meta = json.loads(str(pred.Get("physnn_meta").GetString()))
    assert meta["command"].startswith("physnn predict")
    assert meta["mc_samples"] == 5
    pred.Close()
    f.Close()


def test_an_image_computed_in_rdataframe_predicts_like_the_original(cls_run, epi_file, tmp_path):
    """``Define("calo", "image * 1")`` is an RVec: Snapshot writes it as a vector per event, which the run
    reads in its own shape when every event has the run's number of cells."""
    import uproot

    snap = tmp_path / "rdf.root"
    ROOT.RDataFrame("showers", str(epi_file)).Define("calo", "image * 1.0f").Snapshot(
        "showers", str(snap), ["calo", "energy", "pdgid"])
    physnn.predict(cls_run.run_dir, epi_file, out=tmp_path / "a.root")
    result = physnn.predict(cls_run.run_dir, snap, out=tmp_path / "b.root", mapping={"image": "calo"})
    assert result.events == 2000
    with uproot.open(tmp_path / "a.root") as a, uproot.open(tmp_path / "b.root") as b:
        np.testing.assert_array_equal(a["predictions"]["score"].array(library="np"),
                                      b["predictions"]["score"].array(library="np"))
    short = tmp_path / "short.root"  # one cell short: refused in one line with both counts
    ROOT.RDataFrame("showers", str(epi_file)).Define("calo", "ROOT::VecOps::Take(image * 1.0f, 1727)").Snapshot(
        "showers", str(short), ["calo", "energy", "pdgid"])
    with pytest.raises(physnn.errors.PhysnnError, match=r"1727.*1728|1728.*1727") as err:
        physnn.predict(cls_run.run_dir, short, out=tmp_path / "c.root", mapping={"image": "calo"})
    assert "calo" in str(err.value)
    assert not (tmp_path / "c.root").exists()
