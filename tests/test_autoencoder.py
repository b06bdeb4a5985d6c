"""Autoencoders: models, the reconstruction task, training, denoise/encode outputs and evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import uproot
from conftest import NOISE, TINY_AE

import physnn
from physnn.errors import ConfigError
from physnn.models.reconstruction import ReconstructionTask
from physnn.models.registry import ModelConfig, ModelIO, build_model
from physnn.models.task_config import TaskConfig
from physnn.models.tasks import Task


# -- models ---------------------------------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"upsampling": "transpose"}, {"code_size": None},
                                    {"decoder": [{"type": "upsample", "size": 4}, {"type": "conv", "filters": 4}]}])
@pytest.mark.parametrize("grid", [24, 25])
def test_conv_autoencoder_outputs_the_input_shape(params: dict, grid: int) -> None:
    model = build_model(ModelConfig(name="conv_autoencoder", params=params),
                        ModelIO(image=(3, grid, grid), reconstruct="image"))
    x = torch.rand(4, 3, grid, grid)
    out = model({"image": x})
    assert out.shape == x.shape
    assert (out >= 0).all()  # relu output: energies are never negative
    code = model.encode({"image": x})
    assert code.shape[0] == 4
    assert code.ndim == 2
    if params.get("code_size", 32) is not None:
        assert code.shape[1] == 32
    # dropout only after the code: MC dropout caches the whole encoder
    assert model.first_stochastic_stage() >= model.n_features


def test_conv_autoencoder_3d_and_dense_autoencoders() -> None:
    model = build_model(ModelConfig(name="conv_autoencoder", params={
        "dims": 3, "encoder": [{"type": "conv", "filters": 4}, {"type": "pool", "pool_size": [1, 2, 2]}]}),
        ModelIO(image=(3, 12, 12), reconstruct="image"))
    assert model({"image": torch.rand(2, 3, 12, 12)}).numel() == 2 * 3 * 12 * 12
    dense = build_model(ModelConfig(name="dense_autoencoder", params={"code_size": 3}),
                        ModelIO(scalars=6, reconstruct="scalars"))
    assert dense({"scalars": torch.rand(5, 6)}).shape == (5, 6)
    assert dense.encode({"scalars": torch.rand(5, 6)}).shape == (5, 3)
    seq = build_model(ModelConfig(name="dense_autoencoder"), ModelIO(sequence=(7, 2), reconstruct="sequence"))
    x = torch.rand(3, 7, 2)
    mask = torch.tensor([[True] * k + [False] * (7 - k) for k in (2, 7, 0)])
    junk = x.clone()
    junk[~mask] = 99.0
    seq.eval()
    assert torch.equal(seq({"sequence": x * mask[..., None], "mask": mask}), seq({"sequence": junk, "mask": mask}))


def test_autoencoder_with_a_head_is_a_classifier_on_the_code() -> None:
    io = ModelIO(image=(3, 24, 24), outputs=2, scalars=1)
    model = build_model(ModelConfig(name="conv_autoencoder"), io)
    assert model({"image": torch.rand(5, 3, 24, 24), "scalars": torch.rand(5, 1)}).shape == (5, 2)
    ae = build_model(ModelConfig(name="conv_autoencoder"), ModelIO(image=(3, 24, 24), reconstruct="image"))
    assert ae.feature_prefixes() == model.feature_prefixes()
    ae_keys = {k: v.shape for k, v in ae.state_dict().items() if k.startswith(tuple(ae.feature_prefixes()))}
    cls_keys = {k: v.shape for k, v in model.state_dict().items() if k.startswith(tuple(model.feature_prefixes()))}
    assert ae_keys == cls_keys
    assert ae_keys


def test_only_autoencoders_reconstruct() -> None:
    with pytest.raises(ConfigError, match=r"'cnn' cannot be trained for reconstruction.*conv_autoencoder"):
        build_model(ModelConfig(name="cnn"), ModelIO(image=(3, 24, 24), reconstruct="image"))
    with pytest.raises(ConfigError, match="encoder must keep the spatial axes"):
        build_model(ModelConfig(name="conv_autoencoder", params={"encoder": [{"type": "flatten"}]}),
                    ModelIO(image=(3, 8, 8), reconstruct="image"))
    with pytest.raises(ConfigError, match=r"encoder\[1\] \(upsample\): decoder: mirror can only reverse"):
        build_model(ModelConfig(name="conv_autoencoder", params={
            "encoder": [{"type": "conv", "filters": 4}, {"type": "upsample"}]}),
            ModelIO(image=(3, 8, 8), reconstruct="image"))


# -- the task ---------------------------------------------------------------------------
def test_balanced_loss_does_not_drown_in_empty_cells() -> None:
    clean = torch.zeros(2, 1, 10, 10)
    clean[:, 0, 5, 5] = 4.0
    task = ReconstructionTask("balanced", key="image", shape=[1, 10, 10])
    mse = ReconstructionTask("mse", key="image", shape=[1, 10, 10])
    zeros = torch.zeros_like(clean)
    batch = {"image": clean, "clean": clean}
    # predicting all zeros misses the one hit cell: the balanced loss gives it half the weight
    assert torch.allclose(task.loss(zeros, batch), torch.full((2,), 0.5 * 16.0))
    assert torch.allclose(mse.loss(zeros, batch), torch.full((2,), 16.0 / 100))
    assert torch.allclose(task.loss(clean, batch), torch.zeros(2))


def test_reconstruction_task_from_config_and_state() -> None:
    from physnn.config import DataConfig

    data = DataConfig(files=["x.root"], images={"branches": ["image"]})
    train = {"image": torch.rand(10, 3, 4, 4)}
    task = Task.from_config(TaskConfig(noise=NOISE), data, None, train)  # auto: no label, no targets
    assert isinstance(task, ReconstructionTask)
    assert task.loss_name == "balanced"
    assert task.key == "image"
    assert task.shape == [3, 4, 4]
    again = Task.from_state(task.state())
    assert isinstance(again, ReconstructionTask)
    assert again.state() == task.state()
    batch = again.augment(dict(train), torch.Generator().manual_seed(0))
    assert torch.equal(batch["clean"], train["image"])
    assert not torch.equal(batch["image"], train["image"])
    with pytest.raises(ConfigError, match=r"task.reconstruct sequence: the data config has no sequence"):
        Task.from_config(TaskConfig(kind="reconstruction", reconstruct="sequence"), data, None, train)
    with pytest.raises(ConfigError, match=r"task.noise and data.target_images are for task.kind reconstruction"):
        Task.from_config(TaskConfig(kind="regression", noise=NOISE), data.model_copy(update={"targets": ["e"]}),
                         None, {**train, "target": torch.rand(10, 1)})


# -- training and outputs -------------------------------------------------------------
def test_training_reports_the_denoising_gain(ae_run) -> None:
    last = ae_run.history[-1]
    for key in ("val_rmse", "val_rmse_input", "val_gain", "val_energy_bias"):
        assert np.isfinite(last[key])
    assert last["val_rmse_input"] > 0.1  # the validation noise is there
    assert ae_run.history[-1]["val_loss"] < ae_run.history[0]["train_loss"]


def test_denoise_writes_the_input_layout(ae_run, showers_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "clean.root"
    result = physnn.denoise(ae_run.run_dir, showers_file, out=out, mc_samples=4, add_noise=True, seed=1)
    with uproot.open(showers_file) as fin, uproot.open(out) as fout:
        tin, tout = fin["showers"], fout["showers"]
        assert tout.num_entries == tin.num_entries == result.events
        assert set(tin.keys()) <= set(tout.keys())
        assert {"image_std", "image_noisy"} <= set(tout.keys())
        assert tout["image"].typename == tin["image"].typename  # float[3][24][24]
        for name in ("energy", "pdgid", "label", "x0"):  # copied entry by entry
            np.testing.assert_array_equal(tout[name].array(library="np"), tin[name].array(library="np"))
        image, std = tout["image"].array(library="np"), tout["image_std"].array(library="np")
        truth = tin["image"].array(library="np")
        assert image.shape == truth.shape == std.shape
        assert (image >= 0).all()
        assert (std >= 0).all()
        assert std.max() > 0  # MC dropout gives a spread
        noisy = tout["image_noisy"].array(library="np")
        assert not np.array_equal(noisy, truth)
    again = physnn.denoise(ae_run.run_dir, showers_file, add_noise=True, seed=1, mc_samples=0)
    np.testing.assert_array_equal(again.arrays["image_noisy"], noisy)  # seeded noise


def test_denoise_refuses_other_runs_and_leaves_nothing(cls_run, showers_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.root"
    with pytest.raises(ConfigError, match="needs an autoencoder"):
        physnn.denoise(cls_run.run_dir, showers_file, out=out)
    assert not out.exists()


def test_predict_points_to_denoise_and_encode(ae_run, showers_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"physnn denoise.*physnn encode"):
        physnn.predict(ae_run.run_dir, showers_file)


def test_encode_writes_codes_and_clusters(ae_run, showers_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "codes.root"
    result = physnn.encode(ae_run.run_dir, showers_file, out=out, clusters=3, seed=0)
    with uproot.open(out) as f:
        tree = f["codes"]
        assert tree.num_entries == 600 == result.events
        codes = np.stack([tree[f"code_{j}"].array(library="np") for j in range(8)], axis=1)
        np.testing.assert_array_equal(tree["entry"].array(library="np"), np.arange(600))
        cluster = tree["cluster"].array(library="np")
        energy = tree["energy"].array(library="np")
    truth = uproot.open(showers_file)["showers"]["energy"].array(library="np")
    np.testing.assert_array_equal(energy, truth)
    assert set(np.unique(cluster)) == {0, 1, 2}
    assert np.isfinite(codes).all()
    assert codes.std(0).max() > 0
    # the same codes in memory, and the same clusters for the same seed
    again = physnn.encode(ae_run.run_dir, showers_file, clusters=3, seed=0)
    np.testing.assert_allclose(again.arrays["code_0"], codes[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(again.arrays["cluster"], cluster)
    with pytest.raises(ConfigError, match="--clusters 1000: only 600 events"):
        physnn.encode(ae_run.run_dir, showers_file, clusters=1000)


def test_evaluate_denoising_figures_and_plots(ae_run, tmp_path: Path) -> None:
    result = physnn.evaluate_denoising(ae_run.run_dir, out=tmp_path / "report", mc_samples=3)
    fig = result.figures
    assert fig["split"] == "test split"
    assert fig["events"] > 50
    assert fig["gain"] == pytest.approx(fig["rmse_input"] / fig["rmse_output"])
    assert {"input", "output"} <= set(fig["total_energy"])
    assert len(fig["layers"]) == 3
    assert fig["mean_cell_std"] > 0
    names = {p.name for p in result.files}
    assert {"metrics.json", "denoising_panels.png", "denoising_energy.png"} <= names


def test_paired_branches_train_against_the_clean_target(write_root, tmp_path: Path, rng) -> None:
    clean = np.zeros((300, 2, 8, 8), np.float32)
    clean[:, :, 3:5, 3:5] = rng.uniform(1, 5, (300, 1, 1, 1)).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.3, clean.shape)).astype(np.float32)
    path = write_root({"noisy": noisy, "clean": clean, "e": clean.sum((1, 2, 3))}, tree="t")
    model = {"name": "conv_autoencoder", "params": {"encoder": [{"type": "conv", "filters": 8}], "code_size": None,
                                                     "dropout": 0.0}}
    cfg = {"data": {"files": str(path), "images": {"branches": ["noisy"]}, "target_images": {"branches": ["clean"]}},
           "model": model, "task": {"kind": "reconstruction", "loss": "mse"},
           "train": {"epochs": 25, "batch_size": 32, "seed": 0, "early_stopping": {"patience": None},
                     "optimizer": {"lr": 3e-3}}}
    run = physnn.train(cfg, out=tmp_path / "paired", progress=False)
    assert run.task.paired
    fig = physnn.evaluate_denoising(run.run_dir).figures
    assert fig["rmse_input"] == pytest.approx(0.3, rel=0.05)
    assert fig["gain"] > 1.5  # closer to the clean branch than the noisy one
    bad = {**cfg, "data": {**cfg["data"], "target_images": {"branches": ["e"]}}}
    with pytest.raises(Exception, match="'e' holds one number per event"):
        physnn.train(bad, out=tmp_path / "bad", progress=False)


def test_classifier_on_frozen_codes_separates_e_from_pi(ae_run, epi_file: Path, tmp_path: Path) -> None:
    cfg = {"data": {"files": str(epi_file), "images": {"branches": ["image"]}, "label": "pdgid",
                    "classes": [11, 211]},
           "model": {**TINY_AE, "params": {**TINY_AE["params"], "head": [{"type": "dense", "units": 16}]}},
           "task": {"kind": "classification"},
           "train": {"epochs": 4, "batch_size": 64, "seed": 0, "optimizer": {"lr": 3e-3},
                     "early_stopping": {"patience": None}}}
    run = physnn.train(cfg, out=tmp_path / "codes_cls", init_from=ae_run.run_dir, freeze="features", progress=False)
    source = torch.load(ae_run.checkpoint, weights_only=True)["model"]
    own = run.model.state_dict()
    for key in ("stages.0.1.weight", "stages.2.1.weight"):
        torch.testing.assert_close(own[key].cpu(), source[key])  # the encoder and the code layer, unchanged
    assert run.best["val_auc"] > 0.75  # a tiny 3-epoch autoencoder; the measured figure is in the example
