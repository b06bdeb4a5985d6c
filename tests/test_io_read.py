"""Reading ROOT files: compressions, file lists, trees, images, sequences, scalars, real files."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

import physnn
from physnn.io.read import plan_chunks, read


@pytest.mark.parametrize("compression", ["zlib:6", "lz4", "zstd:3", "lzma:2", "none"])
def test_every_compression_round_trips(tmp_path, compression):
    out = tmp_path / f"s_{compression.replace(':', '_')}.root"
    physnn.simulate("showers", out, events=40, seed=1, compression=compression)
    physnn.simulate("events", tmp_path / "e.root", events=40, seed=1, compression=compression, overwrite=True)
    arrays = read(out, ["image", "energy"])
    from physnn.simulation import simulate_showers

    expected = simulate_showers(40, seed=1)
    np.testing.assert_array_equal(arrays["image"].to_numpy(), expected["image"])
    ev = read(tmp_path / "e.root", ["part_pt", "n_part"])
    assert ak.all(ak.num(ev["part_pt"]) == ev["n_part"])


def test_written_layout_of_simulator(showers_file, events_file):
    with uproot.open(showers_file) as f:
        t = f["showers"]
        assert t.num_entries == 600
        assert set(t.keys()) == {"image", "energy", "pdgid", "label", "x0", "y0"}
        assert t["image"].typename == "float[3][24][24]"
    with uproot.open(events_file) as f:
        names = set(f["events"].keys())
    assert {"n_part", "part_pt", "part_eta", "part_phi", "part_e", "part_charge", "part_pid", "label",
            "mass"} <= names


def test_file_list_glob_and_entry_ranges(tmp_path):
    for i in range(3):
        physnn.simulate("events", tmp_path / f"ev_{i}.root", events=30, seed=i)
    pattern = str(tmp_path / "ev_*.root")
    all_ = read(pattern, ["mass"])
    assert len(all_["mass"]) == 90
    listed = read([tmp_path / "ev_0.root", tmp_path / "ev_2.root"], ["mass"])
    assert len(listed["mass"]) == 60
    ranged = read(pattern, ["mass"], entry_start=5, entry_stop=15)
    assert len(ranged["mass"]) == 30
    np.testing.assert_array_equal(ranged["mass"][:10], all_["mass"][5:15])


def test_chunks_cover_entries_with_global_offsets(events_file):
    chunks = [c for c, _ in plan_chunks([events_file, events_file], None, ["mass"], step_size=400)]
    assert [c.stop - c.start for c in chunks] == [400, 400, 400, 300] * 2
    assert chunks[4].offset == 1500
    by_memory = [c for c, _ in plan_chunks(events_file, None, ["part_pt"], step_size="20 kB")]
    assert len(by_memory) > 3
    assert sum(c.stop - c.start for c in by_memory) == 1500


def test_images_from_fixed_size_branch(showers_file):
    data = physnn.load({"files": str(showers_file), "images": {"branches": "image"}, "label": "label",
                        "targets": ["energy"], "observers": ["pdgid", "x0"]})
    n = sum(len(getattr(data, s)) for s in ("train", "val", "test"))
    assert n == 600
    assert data.train.inputs["image"].shape[1:] == (3, 24, 24)
    assert data.train.label.dtype.is_floating_point is False
    assert data.train.target.shape[1] == 1
    assert set(data.train.observers) == {"pdgid", "x0"}
    assert 0.6 < len(data.train) / 600 < 0.8


def test_flat_branch_with_shape_and_stacked_channels(write_root, rng):
    flat = rng.normal(size=(20, 64)).astype(np.float32)
    path = write_root({"cells": flat, "other": flat * 2, "y": np.arange(20.0)})
    data = physnn.load({"files": str(path), "images": {"branches": ["cells"], "shape": [8, 8]},
                        "targets": "y", "split": {"val": 0, "test": 0}})
    img = data.train.inputs["image"].numpy()
    assert img.shape == (20, 1, 8, 8)
    order = np.argsort(data.train.entry)
    np.testing.assert_allclose(img[order, 0], flat.reshape(20, 8, 8))
    stacked = physnn.load({"files": str(path), "images": {"branches": ["cells", "other"], "shape": [8, 8]},
                           "targets": "y", "split": {"val": 0, "test": 0}})
    both = stacked.train.inputs["image"].numpy()
    assert both.shape == (20, 2, 8, 8)
    np.testing.assert_allclose(both[:, 1], 2 * both[:, 0])


def test_jagged_branch_with_declared_shape(write_root, rng):
    cells = ak.Array([rng.normal(size=12).astype(np.float32) for _ in range(10)])
    path = write_root({"cells": cells, "y": np.arange(10.0)})
    data = physnn.load({"files": str(path), "images": {"branches": "cells", "shape": [3, 4]}, "targets": "y",
                        "split": {"val": 0, "test": 0}})
    img = data.train.inputs["image"].numpy()
    assert img.shape == (10, 1, 3, 4)
    order = np.argsort(data.train.entry)
    np.testing.assert_allclose(img[order, 0], ak.to_numpy(cells).reshape(10, 3, 4))


def test_sequences_padded_sorted_and_masked(events_file):
    cfg = {"files": str(events_file), "label": "label", "targets": "mass",
           "sequence": {"features": ["part_pt", "part_eta"], "max_length": 12, "sort_by": "part_pt"},
           "standardize": {"method": "none"}, "split": {"val": 0, "test": 0}}
    data = physnn.load(cfg).train
    x, mask, length = data.inputs["sequence"], data.inputs["mask"], data.inputs["length"]
    assert x.shape[1:] == (12, 2)
    raw = read(events_file, ["part_pt", "n_part"])
    n_part = raw["n_part"][data.entry]
    np.testing.assert_array_equal(length.numpy(), np.minimum(n_part, 12))
    assert mask.sum(1).tolist() == length.tolist()
    pt = x[..., 0]
    assert bool((pt[:, :-1][mask[:, 1:]] >= pt[:, 1:][mask[:, 1:]]).all())  # leading first
    assert bool((x[~mask] == 0).all())  # padding is zero
    top = ak.sort(raw["part_pt"][data.entry], axis=1, ascending=False)[:, 0].to_numpy()
    np.testing.assert_allclose(pt[:, 0].numpy(), top)


def test_length_from_quantile(events_file):
    cfg = {"files": str(events_file), "label": "label",
           "sequence": {"features": ["part_pt"], "length_quantile": 0.5}}
    data = physnn.load(cfg)
    n_part = read(events_file, ["n_part"])["n_part"].to_numpy()
    train_lengths = n_part[data.train.entry]
    assert data.transform.max_length == int(np.ceil(np.quantile(train_lengths, 0.5)))
    assert data.info["length_info"]["clipped_fraction"] == pytest.approx(
        np.mean(train_lengths > data.transform.max_length))


def test_selection_cut(showers_file):
    data = physnn.load({"files": str(showers_file), "images": {"branches": "image"}, "targets": "energy",
                        "selection": "energy > 50 && pdgid != 22", "observers": ["pdgid", "energy"]})
    for part in (data.train, data.val, data.test):
        assert np.all(part.observers["energy"] > 50)
        assert np.all(part.observers["pdgid"] != 22)
    assert 0 < data.info["selected"] < 600


def test_string_labels_and_classes(write_root):
    kinds = np.array(["ele", "pion", "pion", "ele", "muon"] * 6)
    path = write_root({"kind": kinds, "x": np.arange(30.0)})
    auto = physnn.load({"files": str(path), "scalars": ["x"], "label": "kind", "split": {"val": 0, "test": 0}})
    assert auto.transform.classes == ["ele", "muon", "pion"]
    given = physnn.load({"files": str(path), "scalars": ["x"], "label": "kind", "classes": ["pion", "ele", "muon"],
                         "split": {"val": 0, "test": 0}})
    labels = given.train.label.numpy()
    expected = np.array([{"pion": 0, "ele": 1, "muon": 2}[k] for k in kinds[given.train.entry]])
    np.testing.assert_array_equal(labels, expected)


def test_integer_labels_map_to_the_classes_present(write_root):
    """Labels 0 and 2 are two classes (indices 0 and 1), not three with an empty class 1 (issue 15 item 6)."""
    path = write_root({"x": np.arange(40.0), "c": np.array([0, 2] * 20)})
    data = physnn.load({"files": str(path), "scalars": ["x"], "label": "c", "split": {"val": 0, "test": 0}})
    assert data.transform.classes == [0, 2]
    np.testing.assert_array_equal(data.train.label.numpy(), np.array([0, 1] * 20)[data.train.entry])
    pdg = write_root({"x": np.arange(4.0), "c": np.array([11, 211, 11, 211])}, name="pdg.root")
    mapped = physnn.load({"files": str(pdg), "scalars": ["x"], "label": "c", "split": {"val": 0, "test": 0}})
    assert mapped.transform.classes == [11, 211]


def test_integer_classes_mapping(showers_file):
    data = physnn.load({"files": str(showers_file), "images": {"branches": "image"}, "label": "pdgid",
                        "classes": [11, 211], "selection": "pdgid != 22"})
    assert set(np.unique(data.train.label.numpy())) == {0, 1}


# --- real files written by ROOT ---------------------------------------------------


def test_real_th2_branch_as_image(real_dir):
    path = real_dir / "uproot-issue-tbranch-of-th2.root"
    data = physnn.load({"files": str(path), "tree": "g4SimHits/tree", "images": {"branches": "histogram"},
                        "split": {"val": 0, "test": 0}})
    img = data.train.inputs["image"]
    assert tuple(img.shape) == (1, 1, 100, 100)
    with uproot.open(path) as f:
        h = f["g4SimHits/tree"]["histogram"].array(library="np")[0]
    np.testing.assert_allclose(img[0, 0].numpy(), h.values().T)


def test_real_rntuple_muons_as_sequences(real_dir):
    path = real_dir / "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"
    data = physnn.load({"files": str(path), "sequence": {"features": ["Muon_pt", "Muon_eta", "Muon_phi",
                                                                      "Muon_charge"], "max_length": 4,
                                                         "sort_by": "Muon_pt"},
                        "standardize": {"method": "none"}, "observers": ["nMuon"],
                        "split": {"val": 0, "test": 0}})
    train = data.train
    assert len(train) == 1000
    n_mu = np.asarray(train.observers["nMuon"])
    np.testing.assert_array_equal(train.inputs["length"].numpy(), np.minimum(n_mu, 4))
    charges = train.inputs["sequence"][..., 3][train.inputs["mask"]]
    assert set(np.unique(charges.numpy())) <= {-1.0, 1.0}


def test_real_hzz_muons_ttree_sequences(real_dir):
    data = physnn.load({"files": str(real_dir / "uproot-HZZ.root"),
                        "sequence": {"features": ["Muon_Px", "Muon_Py", "Muon_Pz", "Muon_E"], "max_length": 4},
                        "scalars": ["MET_px", "MET_py"], "weight": "EventWeight", "split": {"val": 0.2, "test": 0}})
    assert len(data.train) + len(data.val) == 2421
    assert data.train.weight is not None
    seq = data.train.inputs["sequence"][data.train.inputs["mask"]]
    assert abs(float(seq.mean())) < 0.2  # standardised on the training split
    assert float(seq.std()) == pytest.approx(1.0, abs=0.1)


def test_real_tntuple_scalars(real_dir):
    path = real_dir / "uproot-hepdata-example.root"
    data = physnn.load({"files": str(path), "scalars": ["px", "py"], "targets": "pz", "tree": "ntuple",
                        "standardize": {"method": "robust"}})
    total = len(data.train) + len(data.val) + len(data.test)
    assert total == 75000
    assert abs(float(data.train.inputs["scalars"].median())) < 0.05


def test_real_zmumu_string_branch_label(real_dir):
    data = physnn.load({"files": str(real_dir / "uproot-Zmumu.root"), "scalars": ["pt1", "pt2"], "label": "Type"})
    assert all(isinstance(c, str) for c in data.transform.classes)
    assert len(data.transform.classes) >= 2


def test_inspect_roles(showers_file, events_file, real_dir):
    (tree,) = physnn.inspect(showers_file)
    roles = {b.name: (b.role, b.shape) for b in tree.branches}
    assert roles["image"] == ("image", [3, 24, 24])
    assert roles["energy"][0] == "scalar"
    (ev,) = physnn.inspect(events_file)
    seq = {b.name: b for b in ev.branches if b.role == "sequence"}
    assert "part_pt" in seq
    assert seq["part_pt"].collection == "part"
    assert seq["part_pt"].lengths["max"] <= 60
    (th2,) = physnn.inspect(real_dir / "uproot-issue-tbranch-of-th2.root")
    assert {b.name: b.shape for b in th2.branches}["histogram"] == [100, 100]
    (rnt,) = physnn.inspect(real_dir / "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root")
    assert rnt.kind == "RNTuple"
    assert {b.name: b.role for b in rnt.branches}["Muon_pt"] == "sequence"
