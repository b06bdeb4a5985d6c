"""A finely segmented first layer (η strips): simulated, folded into a CNN's channels, read by the BDT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import physnn
from physnn.data.convert import flip_order, fold_to_grid
from physnn.errors import BranchError, ConfigError
from physnn.physics.photon_id import photon_id_variables, strip_variables
from physnn.simulation import ShowerConfig, simulate_showers

STRIPS = {"layer": 0, "eta": 4, "phi": 1}


def test_strips_leave_the_other_layers_as_they_were_and_sum_to_their_layer():
    plain = ShowerConfig(particles=["gamma", "pi0"])
    with_strips = ShowerConfig(particles=["gamma", "pi0"], strips=STRIPS)
    a, b = simulate_showers(300, plain, seed=4), simulate_showers(300, with_strips, seed=4)
    assert b["strips"].shape == (300, 96, 24)
    np.testing.assert_array_equal(a["image"][:, 1:], b["image"][:, 1:])
    summed = b["strips"].reshape(300, 24, 4, 24, 1).sum(axis=(2, 4))
    kept = np.abs(summed) >= with_strips.cut  # the layer's cells obey the cut that the file declares
    np.testing.assert_allclose(b["image"][:, 0][kept], summed[kept], atol=1e-5)
    assert np.all(b["image"][:, 0][~kept] == 0)
    layer = b["image"][:, 0]
    assert np.all(np.abs(layer[layer != 0]) >= with_strips.cut)
    assert with_strips.readout()["strips"] == {"layer": 0, "eta": 4, "phi": 1, "layer_noise": pytest.approx(0.02)}


def test_without_noise_the_strips_bin_the_same_deposits_finer():
    cfg = ShowerConfig(particles=["gamma"], noise=0.0, threshold=0.0, strips=STRIPS)
    fine = simulate_showers(200, cfg, seed=2)
    coarse = simulate_showers(200, ShowerConfig(**{**cfg.model_dump(), "strips": None}), seed=2)
    np.testing.assert_allclose(fine["image"], coarse["image"], atol=1e-4)
    # the strips resolve more: every row of cells hit has a strip hit, and the shower spans more strips
    hit_rows = (fine["strips"] > 0).any(axis=2).sum(1)
    hit_cells = (coarse["image"][:, 0] > 0).any(axis=2).sum(1)
    assert np.all(hit_rows >= hit_cells)
    assert np.mean(hit_rows) > 1.5 * np.mean(hit_cells)


def test_a_strip_layer_beyond_the_layers_is_refused():
    with pytest.raises(ValueError, match=r"strips.layer \(3\) is not one of the 3 layers"):
        ShowerConfig(strips={"layer": 3})


def test_finer_images_fold_into_channels_of_the_coarsest_grid():
    image = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    strips = np.arange(2 * 8 * 2, dtype=np.float32).reshape(2, 8, 2)  # 4 strips per cell along rows
    out = fold_to_grid([image, strips], ["image", "strips"], "f.root:t")
    assert out.shape == (2, 3 + 4, 2, 2)
    np.testing.assert_array_equal(out[:, :3], image)
    for k in range(4):  # channel k holds strip k of every cell
        np.testing.assert_array_equal(out[:, 3 + k], strips[:, k::4, :])
    np.testing.assert_allclose(out[:, 3:].sum(1), strips.reshape(2, 2, 4, 2).sum(2))


def test_grids_that_do_not_divide_are_refused_with_both_shapes():
    with pytest.raises(BranchError, match=r"image: \[3, 24, 24\], strips: \[50, 24\].*coarsest grid 24 x 24"):
        fold_to_grid([np.zeros((1, 3, 24, 24)), np.zeros((1, 50, 24))], ["image", "strips"], "f.root:t")


def test_strip_variables_see_two_photons_that_the_cells_merge():
    strips = np.zeros((2, 16, 3))
    strips[0, 6, 1] = 2.0  # one photon
    strips[1, 5, 1], strips[1, 8, 1] = 1.2, 0.8  # a π0: two photons 3 strips (< one 4-strip cell) apart
    v = strip_variables(strips)
    assert v["strips_maxima"].tolist() == [1.0, 2.0]
    assert v["strips_eratio"][0] == 1.0
    assert v["strips_eratio"][1] == pytest.approx(0.2)
    assert v["strips_fside"][0] == 0.0
    assert v["strips_fside"][1] > 0.5
    merged = strips.reshape(2, 4, 4, 3).sum(2)  # the same energies in 4 cells of 4 strips
    assert local_count(merged) == [1, 1]
    with pytest.raises(ConfigError, match="strips of shape"):
        strip_variables(np.zeros((2, 16)))


def local_count(layer: np.ndarray) -> list[int]:
    return [int(c) for c in photon_id_variables(layer[:, None])["maxima0"]]


def test_a_cnn_trains_and_predicts_on_image_and_strips(tmp_path):
    showers = tmp_path / "strips.root"
    physnn.simulate("showers", showers, events=400, seed=1,
                    overrides=["particles=['gamma', 'pi0']", "energy_min=2", "energy_max=20", f"strips={STRIPS}"])
    cfg = {"data": {"files": str(showers), "images": {"branches": ["image", "strips"]}, "label": "pdgid",
                    "classes": {22: "photon", 111: "pi0"}},
           "model": {"name": "cnn", "params": {"features": [{"type": "conv", "filters": 4, "kernel_size": 3},
                                                            {"type": "flatten"}],
                                               "head": [{"type": "dense", "units": 8}]}},
           "task": {"kind": "classification"}, "train": {"epochs": 1, "batch_size": 64}}
    physnn.train(cfg, out=tmp_path / "run", progress=False)
    preds = physnn.predict(tmp_path / "run", showers, out=tmp_path / "p.root", collect=True).arrays
    assert preds["prob"].shape == (400, 2)
    assert np.isfinite(preds["prob"]).all()


def test_a_flip_of_folded_strips_is_the_fold_of_the_flipped_strips():
    image = np.random.default_rng(0).random((3, 2, 4, 5)).astype(np.float32)
    strips = np.random.default_rng(1).random((3, 16, 10)).astype(np.float32)  # 4 x 2 strips per cell
    folded = fold_to_grid([image, strips], ["image", "strips"], "f.root:t")
    for axis in (-2, -1):
        expected = fold_to_grid([np.flip(image, axis), np.flip(strips, axis)], ["image", "strips"], "f.root:t")
        order = flip_order([image.shape[1:], strips.shape[1:]], axis)
        np.testing.assert_array_equal(np.flip(folded, axis)[:, order], expected)
    assert flip_order([(3, 24, 24), (3, 24, 24)], -2) is None


def test_training_flips_reverse_the_strips_inside_each_cell(tmp_path):
    from physnn.config import DataConfig
    from physnn.data.augment import flips_for
    from physnn.data.transform import Transform

    showers = tmp_path / "s.root"
    physnn.simulate("showers", showers, events=20, seed=1, overrides=[f"strips={STRIPS}"])
    cfg = DataConfig(files=str(showers), images={"branches": ["image", "strips"]}, augment={"flip": ["eta"]})
    flips = flips_for(cfg, Transform(), (7, 24, 24))
    cells = physnn.read(showers, ["image", "strips"])
    image, strips = np.asarray(cells["image"]), np.asarray(cells["strips"])
    x = torch.from_numpy(fold_to_grid([image, strips], ["image", "strips"], "s"))
    out = flips({"image": x}, torch.Generator().manual_seed(0))["image"].numpy()
    mirrored = fold_to_grid([image[:, :, ::-1], strips[:, ::-1]], ["image", "strips"], "s")
    flipped = [np.array_equal(o, m) for o, m in zip(out, mirrored, strict=True)]
    kept = [np.array_equal(o, k) for o, k in zip(out, x.numpy(), strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 0 < sum(flipped) < 20
