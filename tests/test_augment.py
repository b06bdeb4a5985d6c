"""augment: {flip: [eta, phi]}: training batches flipped with probability 1/2 per axis, never anything else."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import uproot

import physnn
from physnn.config import DataConfig
from physnn.data.augment import Flips, flips_for
from physnn.data.transform import Transform
from physnn.errors import ConfigError
from physnn.models.cnn import CNN


def _orientations(x: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Per event of ``x``: 0 as ``original``, 1 flipped in η, 2 in φ, 3 in both (-1: none of these)."""
    out = torch.full((len(x),), -1)
    for code, axes in enumerate([(), (-2,), (-1,), (-2, -1)]):
        same = (x == (original.flip(axes) if axes else original)).flatten(1).all(1)
        out[same] = code
    return out


def test_flips_each_axis_with_probability_one_half_seeded():
    x = torch.randn(4000, 2, 5, 7)  # no event is symmetric
    batch = {"image": x, "target_image": 2 * x, "label": torch.arange(4000)}
    out = Flips(["eta", "phi"])(batch, torch.Generator().manual_seed(3))
    codes = _orientations(out["image"], x)
    assert (codes >= 0).all()
    eta, phi = (codes % 2 == 1).float(), (codes >= 2).float()
    assert abs(eta.mean() - 0.5) < 0.03  # 4 sigma
    assert abs(phi.mean() - 0.5) < 0.03
    assert abs((eta * phi).mean() - 0.25) < 0.03  # independent axes
    assert torch.equal(_orientations(out["target_image"] / 2, x), codes)  # the target image with its input
    assert torch.equal(out["label"], batch["label"])
    again = Flips(["eta", "phi"])(batch, torch.Generator().manual_seed(3))
    assert torch.equal(again["image"], out["image"])  # seeded
    only_phi = _orientations(Flips(["phi"])(batch, torch.Generator().manual_seed(3))["image"], x)
    assert set(only_phi.tolist()) == {0, 2}


def test_coordinates_change_sign_in_standardised_units():
    cfg = DataConfig(files="x.root", images={"branches": ["image"]}, scalars=["energy", "impact_eta"],
                     augment={"flip": ["eta"], "coordinates": {"eta": ["impact_eta"]}})
    transform = Transform(center={"scalars": [50.0, 0.3]}, scale={"scalars": [20.0, 1.5]})
    flips = flips_for(cfg, transform, (3, 8, 8))
    raw = torch.tensor([[10.0, -2.0], [90.0, 1.0]]).repeat(500, 1)
    z = (raw - torch.tensor([50.0, 0.3])) / torch.tensor([20.0, 1.5])
    x = torch.randn(len(raw), 3, 8, 8)
    out = flips(({"image": x, "scalars": z}), torch.Generator().manual_seed(0))
    back = out["scalars"] * torch.tensor([20.0, 1.5]) + torch.tensor([50.0, 0.3])
    flipped = _orientations(out["image"], x) == 1
    assert 0.4 < flipped.float().mean() < 0.6
    torch.testing.assert_close(back[:, 0], raw[:, 0])  # the energy does not change
    torch.testing.assert_close(back[:, 1], torch.where(flipped, -raw[:, 1], raw[:, 1]))


def test_bad_augment_options_are_one_line_errors():
    with pytest.raises(ValueError, match=r"augment.coordinates: \['x0'\] are not among the scalars"):
        DataConfig(files="x.root", images={"branches": ["image"]}, augment={"flip": ["eta"],
                                                                            "coordinates": {"eta": ["x0"]}})
    with pytest.raises(ValueError, match=r"augment\.coordinates: 'phi' is not flipped"):
        DataConfig(files="x.root", images={"branches": ["image"]}, scalars=["y0"],
                   augment={"flip": ["eta"], "coordinates": {"phi": ["y0"]}})
    with pytest.raises(ValueError, match=r"augment\.flip flips images"):
        DataConfig(files="x.root", scalars=["a"], augment={"flip": ["phi"]})
    cfg = DataConfig(files="x.root", images={"branches": ["strip"]}, augment={"flip": ["phi"]})
    with pytest.raises(ConfigError, match=r"augment.flip: \['phi'\] needs images of channels x η x φ cells"):
        flips_for(cfg, Transform(), (2, 16))


@pytest.fixture(scope="module")
def asymmetric_file(tmp_path_factory):
    """600 events of random (2, 6, 6) images (none symmetric) and a label."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("aug") / "images.root"
    with uproot.recreate(path) as f:
        f["showers"] = {"image": rng.normal(size=(600, 2, 6, 6)).astype(np.float32),
                        "label": rng.integers(0, 2, 600).astype(np.int32)}
    return path


@pytest.fixture
def seen(monkeypatch) -> list[tuple[bool, torch.Tensor]]:
    """Every image batch the CNN is given, with whether it was in training mode (a spy on ``CNN.adapt``)."""
    inputs: list[tuple[bool, torch.Tensor]] = []
    adapt = CNN.adapt

    def spy(self, batch):
        inputs.append((self.training, batch["image"].detach().clone()))
        return adapt(self, batch)

    monkeypatch.setattr(CNN, "adapt", spy)
    return inputs


def trained(seen: list[tuple[bool, torch.Tensor]]) -> torch.Tensor:
    """The images the model trained on, in order."""
    return torch.cat([x for train, x in seen if train])


def test_only_training_batches_are_flipped(asymmetric_file, tmp_path, seen):
    data = {"files": str(asymmetric_file), "images": {"branches": ["image"]}, "label": "label",
            "augment": {"flip": ["eta", "phi"]}}
    model = {"name": "cnn", "params": {"features": [{"type": "residual", "filters": 2}, {"type": "flatten"}],
                                       "head": [{"type": "dropout", "rate": 0.2}]}}
    cfg = {"data": data, "model": model, "task": {"kind": "classification"},
           "train": {"epochs": 2, "batch_size": 50, "seed": 1, "early_stopping": {"patience": None}}}
    physnn.train(cfg, out=tmp_path / "run", progress=False)
    with uproot.open(asymmetric_file) as f:
        images = torch.from_numpy(f["showers"]["image"].array(library="np"))
    known = {img.numpy().tobytes() for img in images}
    training = trained(seen)
    checked = torch.cat([x for train, x in seen if not train])  # validation, and the run's feature domain
    assert len(training) > 700  # 2 epochs of ~70% of 600 events
    assert len(checked) >= 90
    assert all(img.numpy().tobytes() in known for img in checked)  # as in the file, never flipped
    flipped = [img.numpy().tobytes() not in known for img in training]
    assert 0.65 < np.mean(flipped) < 0.85  # 3/4 flipped in at least one axis
    seen.clear()
    physnn.predict(tmp_path / "run", asymmetric_file, out=tmp_path / "p.root", mc_samples=5)
    predicted = torch.cat([x for _, x in seen])
    assert {img.numpy().tobytes() for img in predicted} == known  # predictions: every event, as it is in the file
    assert torch.equal(predicted[:len(images)], images)


def test_flips_leave_the_shuffle_order_alone_and_stay_seeded(asymmetric_file, tmp_path, seen):
    """The flips draw from a generator of their own: the shuffle generator (whose draws split a streamed
    epoch's chunks between torchrun processes) is where it would be without flips; same seed, same flips."""
    from physnn.training.checkpoint import LAST, load_checkpoint

    model = {"name": "cnn", "params": {"features": [{"type": "residual", "filters": 2}, {"type": "flatten"}]}}

    def run(name, flip):
        data = {"files": str(asymmetric_file), "images": {"branches": ["image"]}, "label": "label"}
        if flip:
            data["augment"] = {"flip": ["eta", "phi"]}
        cfg = {"data": data, "model": model, "task": {"kind": "classification"},
               "train": {"epochs": 2, "batch_size": 64, "seed": 4, "early_stopping": {"patience": None}}}
        seen.clear()
        physnn.train(cfg, out=tmp_path / name, progress=False)
        return trained(seen), load_checkpoint(tmp_path / name, LAST)["rng"]["shuffle"]

    plain, plain_state = run("plain", False)
    flipped, flipped_state = run("flipped", True)
    again, _ = run("again", True)
    assert torch.equal(flipped_state, plain_state)  # the shuffle generator as without flips
    codes = _orientations(flipped, plain)  # the same events in the same order, each one flipped or not
    assert (codes >= 0).all()
    assert 0.65 < (codes > 0).float().mean() < 0.85
    assert torch.equal(again, flipped)  # seeded


def test_flips_resume_exactly_and_old_checkpoints_still_resume(asymmetric_file, tmp_path, seen):
    """--resume continues the flips' own stream (saved in last.pt); a last.pt without it (written before
    the flips had their own generator) still resumes."""
    from physnn.training.checkpoint import LAST, load_checkpoint, save_checkpoint

    data = {"files": str(asymmetric_file), "images": {"branches": ["image"]}, "label": "label",
            "augment": {"flip": ["eta", "phi"]}}
    model = {"name": "cnn", "params": {"features": [{"type": "residual", "filters": 2}, {"type": "flatten"}]}}
    cfg = {"data": data, "model": model, "task": {"kind": "classification"},
           "train": {"epochs": 2, "batch_size": 64, "seed": 4, "early_stopping": {"patience": None}}}
    physnn.train(cfg, out=tmp_path / "full", progress=False)
    full = trained(seen)

    def kill_after_one(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        physnn.train(cfg, out=tmp_path / "cut", progress=False, on_epoch_end=kill_after_one)
    first = len(trained(seen))
    shutil.copytree(tmp_path / "cut", tmp_path / "old")
    seen.clear()
    physnn.train(out=tmp_path / "cut", resume=True, progress=False)
    assert torch.equal(trained(seen), full[first:])  # the second epoch's events and flips as without the cut
    old = load_checkpoint(tmp_path / "old", LAST)
    del old["rng"]["flip"]
    save_checkpoint(old, tmp_path / "old" / LAST)
    resumed = physnn.train(out=tmp_path / "old", resume=True, progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
