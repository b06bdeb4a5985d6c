"""Issue 15 items 5 and 6: the task is fitted on the whole training split; classes are what survives the cut."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_config

import physnn
import physnn.data.streaming as streaming
import physnn.data.transform as transform_module
from physnn.errors import DataError


@pytest.fixture(scope="module")
def class_files(tmp_path_factory):
    """A file of electrons at 1-10 GeV, then a file of pions at 50-100 GeV: ordered by class, as files often are."""
    folder = tmp_path_factory.mktemp("classes")
    e, pi = folder / "electrons.root", folder / "pions.root"
    physnn.simulate("showers", e, events=300, seed=31, config={"particles": ["e-"], "energy_min": 1,
                                                                 "energy_max": 10})
    physnn.simulate("showers", pi, events=500, seed=32, config={"particles": ["pi+"], "energy_min": 50,
                                                                  "energy_max": 100})
    return [str(e), str(pi)]


@pytest.fixture
def stream_small(monkeypatch):
    """Stream whatever the size, with samples far smaller than one file (as on large data)."""
    monkeypatch.setattr(streaming, "IN_MEMORY_FACTOR", 1e12)
    monkeypatch.setattr(streaming, "rss_bytes", lambda: 0)
    monkeypatch.setattr(streaming, "SAMPLE_EVENTS", 100)
    monkeypatch.setattr(streaming, "BUFFER_SHARE", 400 * 7000 / streaming.data_share(streaming.parse_budget("400 MB"),
                                                                                        0))


def _config(files, task="classification", **data):
    cfg = run_config(files[0], task=task, epochs=1)
    cfg["data"].update(files=files, **data)
    if task == "classification":
        cfg["task"]["class_weight"] = "balanced"
    return cfg


def test_streamed_class_weights_and_targets_come_from_every_file(class_files, tmp_path, stream_small):
    memory = physnn.train(_config(class_files), out=tmp_path / "m", progress=False).task
    cfg = _config(class_files)
    cfg["train"]["memory_budget"] = "400 MB"
    streamed = physnn.train(cfg, out=tmp_path / "s", progress=False)
    assert streamed.history[0]["samples_per_s"] > 0
    np.testing.assert_allclose(streamed.task.class_weight.numpy(), memory.class_weight.numpy(), rtol=1e-6)
    assert memory.class_weight[0] > memory.class_weight[1]  # fewer electrons: a larger weight
    reg = _config(class_files, task="regression")
    memory = physnn.train(reg, out=tmp_path / "rm", progress=False).task
    reg["train"]["memory_budget"] = "400 MB"
    streamed = physnn.train(reg, out=tmp_path / "rs", progress=False).task
    np.testing.assert_allclose(streamed.center.numpy(), memory.center.numpy(), rtol=1e-5)
    np.testing.assert_allclose(streamed.scale.numpy(), memory.scale.numpy(), rtol=1e-3)


def test_robust_standardisation_samples_the_whole_training_split(class_files, monkeypatch):
    """The median and IQR of a sample of the training split must not come from the first file only."""
    from physnn.config import DataConfig

    data = _config(class_files)["data"]
    data.update(standardize={"method": "robust"}, scalars=["energy"])
    cfg = DataConfig.model_validate(data)
    exact = physnn.load(cfg).transform  # fewer rows than the sample: every training event
    monkeypatch.setattr(transform_module, "ROBUST_SAMPLE", 150)  # far fewer than the ~560 training events
    sampled = physnn.fit(cfg.model_copy(update={"step_size": 50}))
    assert exact.center["scalars"][0] > 40  # most training events are 50-100 GeV pions
    np.testing.assert_allclose(sampled.center["scalars"], exact.center["scalars"], rtol=0.1)
    np.testing.assert_allclose(sampled.scale["scalars"], exact.scale["scalars"], rtol=0.25)


def test_classes_are_what_the_selection_leaves(showers_file):
    """Item 6: pdgid != 22 leaves electrons and pions: two classes, not an empty photon class."""
    data = {"files": str(showers_file), "images": {"branches": ["image"]}, "label": "label",
            "selection": "pdgid != 22"}
    loaded = physnn.load(data)
    labels = physnn.load({**data, "selection": None}).info["classes"]
    assert len(labels) == 3
    assert len(loaded.info["classes"]) == 2
    assert set(np.unique(loaded.train.label.numpy())) == {0, 1}


def test_a_declared_class_without_training_events_is_an_error(showers_file):
    data = {"files": str(showers_file), "images": {"branches": ["image"]}, "label": "pdgid",
            "selection": "pdgid != 22", "classes": [11, 22, 211]}
    with pytest.raises(DataError, match=r"classes: 22 of label 'pdgid' has no training event after the selection"):
        physnn.load(data)


def test_a_log_target_is_regressed_in_log_and_predicted_in_its_unit(showers_file, tmp_path):
    """transform: log: the network's Gaussian is in log E; predictions and error bars come back in GeV."""
    import torch

    from physnn.models.tasks import Task

    task = Task("regression", "gaussian", targets=["energy"], center=[2.0], scale=[1.5], transforms=["log"])
    energy = torch.tensor([[2.0], [20.0], [90.0]])
    z = (energy.log() - 2.0) / 1.5
    raw = torch.cat([z, torch.full_like(z, -20.0)], dim=1)  # a vanishing variance: exp(μ) exactly
    torch.testing.assert_close(task.predict(raw)["mean"], energy, rtol=1e-4, atol=1e-4)
    assert float(task.loss(raw, {"target": energy}).max()) < -5  # the NLL of the log targets: tiny σ, no error
    var = task.predict(torch.cat([z, torch.zeros_like(z)], dim=1))["var"]
    assert bool((var.sqrt() / energy > 0.5).all())  # a σ of order 1.5 in log E is a wide relative error in GeV

    cfg = run_config(showers_file, task="regression", epochs=2)
    cfg["data"]["targets"] = {"energy": {"unit": "GeV", "kind": "energy", "transform": "log"}}
    physnn.train(cfg, out=tmp_path / "log", progress=False)
    a = physnn.predict(tmp_path / "log", showers_file, mc_samples=5).arrays
    assert bool((a["energy_pred"] > 0).all())
    assert 0.5 < np.median(a["energy_pred"] / a["energy"]) < 2.0
    assert bool((a["energy_std"] > 0).all())


def test_a_log_target_must_be_positive(write_root):
    path = write_root({"x": np.arange(10.0), "e": np.linspace(-1.0, 5.0, 10)})
    data = {"files": str(path), "scalars": ["x"], "targets": {"e": {"transform": "log"}},
            "split": {"val": 0, "test": 0}}
    with pytest.raises(DataError, match=r"target 'e' has \d+ values <= 0; transform: log needs a positive target"):
        physnn.load(data)


def test_gaussian_mean_mse_fits_the_mean_like_a_plain_regression():
    """gaussian_mean: mse: the mean's gradient is the squared error's, whatever variance is predicted; the
    variance is fitted by the NLL; validation reports the plain NLL (a proper score)."""
    import torch
    import torch.nn.functional as F

    from physnn.models.tasks import Task

    y = torch.tensor([[0.5], [-1.0], [2.0]])
    out = torch.tensor([[0.0, 3.0], [0.0, -2.0], [0.0, 0.0]], requires_grad=True)  # μ = 0, variances differ
    decoupled = Task("regression", "gaussian", targets=["e"], gaussian_mean="mse")
    decoupled.loss(out, {"target": y}).sum().backward()
    torch.testing.assert_close(out.grad[:, 0], -2 * y[:, 0])  # d/dμ (μ - y)², not (μ - y) / var
    plain = Task("regression", "gaussian", targets=["e"])
    var = F.softplus(out.detach()[:, 1:]) + 1e-6
    torch.testing.assert_close(decoupled.loss(out, {"target": y}, training=False),
                               plain.loss(out, {"target": y}))
    torch.testing.assert_close(plain.loss(out, {"target": y}),
                               F.gaussian_nll_loss(out.detach()[:, :1], y, var, reduction="none")[:, 0])


def test_a_label_with_thousands_of_values_is_refused(write_root):
    """Issue 16: a 64-bit event number used as a label would make thousands of classes."""
    path = write_root({"x": np.arange(3000.0), "run_event": np.arange(3000, dtype=np.int64) * 7})
    with pytest.raises(DataError, match=r"label 'run_event': \d[\d,]* distinct values .* use targets: \[run_event\]"):
        physnn.load({"files": str(path), "scalars": ["x"], "label": "run_event"})
