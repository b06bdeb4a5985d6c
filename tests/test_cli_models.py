"""The command line for models: models, train, predict, evaluate, demo; bad options exit 2 in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import uproot
import yaml
from conftest import run_config
from typer.testing import CliRunner

import physnn
from physnn import demo
from physnn.cli import app

runner = CliRunner()
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_models_lists_parameters_and_layers():
    result = invoke("models", "--layers")
    assert result.exit_code == 0
    for word in ("cnn", "features", "head", "dims", "conv_transpose", "kernel_regularizer", "residual"):
        assert word in result.output


@pytest.mark.parametrize("name", ["epi.yaml", "energy.yaml"])
def test_shipped_run_configs_validate_and_match_the_demo(name):
    cfg = physnn.load_run_config(CONFIGS / "train" / name)
    demo_cfg = (demo.epi_config if name == "epi.yaml" else demo.energy_config)(cfg.data.files[0])
    assert cfg == physnn.load_run_config(demo_cfg)
    for model in (CONFIGS / "model").glob("*.yaml"):
        physnn.load_run_config({"data": {"files": "x.root", "images": {"branches": ["image"]}},
                                "model": yaml.safe_load(model.read_text())})


def test_train_predict_evaluate_from_the_command_line(epi_file, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(run_config(epi_file, epochs=2)))
    run = tmp_path / "run"
    result = invoke("train", cfg, "--out", run, "--set", "train.batch_size=64")
    assert result.exit_code == 0, result.output
    assert "best epoch" in result.output
    assert physnn.load_run_config(run / "config.yaml").train.batch_size == 64
    preds = tmp_path / "p.root"
    result = invoke("predict", run, epi_file, "--out", preds, "--mc-samples", "5")
    assert result.exit_code == 0, result.output
    assert "wrote 2,000 predictions (MC dropout, T = 5)" in result.output
    with uproot.open(preds) as f:
        assert "score_std" in f["predictions"]
    result = invoke("evaluate", preds, "--out", tmp_path / "report", "--bootstrap", "10")
    assert result.exit_code == 0, result.output
    assert "AUC" in result.output
    assert (tmp_path / "report" / "roc.png").is_file()
    result = invoke("train", "--out", run, "--resume")
    assert result.exit_code == 2
    assert "already finished" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["train", "{cfg}", "--out", "{tmp}/r", "--set", "train.epochs=0"], "train.epochs: Input should be greater"),
    (["train", "{cfg}", "--out", "{tmp}/r", "--set", "model.name=resnet"], "model 'resnet' is not in the registry"),
    (["train", "{cfg}", "--out", "{tmp}/r", "--freeze", "everything"], "train.freeze"),
    (["train", "{cfg}", "--out", "{tmp}/r", "--init-from", "{tmp}/none"], "no such checkpoint or run folder"),
    (["train", "--out", "{tmp}/r"], "give a run config"),
    (["predict", "{tmp}/none", "x.root"], "no such checkpoint or run folder"),
    (["predict", "{cfg}", "x.root"], "not a readable physnn checkpoint"),
    (["evaluate", "{tmp}/none.root"], "none.root"),
])
def test_bad_options_exit_2_with_one_line(args, message, epi_file, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(run_config(epi_file, epochs=1)))
    result = invoke(*[a.format(cfg=cfg, tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "r" / "best.pt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_device_cuda_without_cuda_is_a_clear_error(epi_file, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(run_config(epi_file, epochs=1)))
    result = invoke("train", cfg, "--out", tmp_path / "r", "--device", "cuda")
    assert result.exit_code == 2
    assert "CUDA is not available" in result.output


def test_demo_runs_end_to_end(tmp_path):
    result = invoke("demo", "--out", tmp_path, "-n", "1500", "--epochs", "2", "-T", "5")
    assert result.exit_code == 0, result.output
    for name in ("showers.root", "gamma_pi0.root", "predictions_photon.root", "predictions_energy.root",
                 "report_photon/roc.png", "report_photon/mc_scores.png", "report_photon/discrimination_by_energy.png",
                 "report_energy/energy_pulls.png", "run_photon/best.pt", "events.root", "run_events_cls/best.pt",
                 "predictions_events_mass.root", "report_events_cls/roc.png", "report_events_mass/mass_pulls.png"):
        assert (tmp_path / name).exists(), name
    text = " ".join(result.output.split())
    assert "calibrated cell sum" in text
    assert "dimuon mass (muons identified)" in text
    for pdgid in (11, 22, 211):  # the energy regression per particle type
        assert f"energy, pdgid {pdgid}:" in text or f"energy, pdgid {pdgid} " in text, pdgid
    for name in ("photon", "energy", "events_cls", "events_mass"):  # where each evaluation's page is
        page = tmp_path / f"report_{name}" / "report.html"
        assert page.is_file(), name
        assert str(page) in text, name


@pytest.mark.parametrize("name", ["denoise.yaml", "compress.yaml", "epi_codes.yaml"])
def test_shipped_autoencoder_configs_validate(name):
    cfg = physnn.load_run_config(CONFIGS / "train" / name)
    assert cfg.model.name == "conv_autoencoder"
    assert cfg.task.kind == ("classification" if name == "epi_codes.yaml" else "reconstruction")


def test_denoise_and_encode_from_the_command_line(showers_file, tmp_path):
    from conftest import ae_config

    cfg = tmp_path / "ae.yaml"
    cfg.write_text(yaml.safe_dump(ae_config(showers_file, epochs=1)))
    run = tmp_path / "ae"
    assert invoke("train", cfg, "--out", run).exit_code == 0
    result = invoke("denoise", run, showers_file, "--out", tmp_path / "clean.root", "-T", "3")
    assert result.exit_code == 0, result.output
    assert "600 denoised events" in result.output
    result = invoke("encode", run, showers_file, "--out", tmp_path / "codes.root", "--clusters", "2")
    assert result.exit_code == 0, result.output
    assert "(8 numbers each), 2 k-means clusters" in " ".join(result.output.split())  # rich wraps long paths
    result = invoke("evaluate", run, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    assert "denoising gain" in result.output
    result = invoke("denoise", run, showers_file, "--out", tmp_path / "clean.root")
    assert result.exit_code == 2
    assert "exists" in result.output
