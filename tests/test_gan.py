"""GAN fast simulation: the model, the generation task, adversarial training, generate to ROOT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_GAN_HITS, gan_config
from typer.testing import CliRunner

from physnn.cli import app
from physnn.models.gan import GANParams, LayerEnergyDensity, build_gan
from physnn.models.gan_losses import critic_loss, generator_loss, gradient_penalty
from physnn.models.registry import ModelIO

runner = CliRunner()



@pytest.mark.parametrize(("image", "n_cond"), [((3, 24, 24), 6), ((1, 25, 25), 1), ((25, 17), 0), ((2, 7, 5), 3)])
@pytest.mark.parametrize("layer_energies", [True, False])
def test_generator_and_critic_shapes(image, n_cond, layer_energies):
    params = GANParams(latent_dim=8, generator_channels=[8, 4, 4], critic_channels=[4, 8], critic_hidden=8,
                       layer_energies=layer_energies)
    model = build_gan(params, ModelIO(image=image, conditions=n_cond, incident_energy=True))
    shape = image if len(image) == 3 else (1, *image)
    z, cond = torch.randn(5, 8), torch.randn(5, n_cond)
    x = model.generator(z, cond, torch.zeros(5, shape[0]), torch.zeros(shape))
    assert tuple(x.shape) == (5, *shape)
    assert bool((x >= 0).all())
    extra = torch.randn(5, 5 * shape[0] + 1)
    assert tuple(model.critic(x, cond, extra).shape) == (5,)


def test_layer_energies_conserve_the_requested_energy():
    """With layer_energies the cells of a layer sum exactly to the layer energy asked for (before suppression):
    exp(offset + a_l) from the adversarial head, expm1(y_l) for energies y given to the mixture model."""
    torch.manual_seed(0)
    small = {"latent_dim": 4, "generator_channels": [4, 4], "critic_channels": [4]}
    io = ModelIO(image=(2, 8, 8), conditions=1, incident_energy=True)
    z, cond = torch.randn(6, 4), torch.randn(6, 1)
    offset = torch.log(torch.tensor([10.0, 50.0, 100.0, 1.0, 2.0, 3.0]))[:, None].expand(-1, 2)
    model = build_gan(GANParams(**small, energy_model="adversarial"), io)
    energy = torch.expm1(model.generator(z, cond, offset)).sum((2, 3))  # eps = 1
    expected = torch.exp(offset + model.generator.energy(torch.cat([z, cond], 1)))
    torch.testing.assert_close(energy, expected, rtol=1e-4, atol=1e-4)

    model = build_gan(GANParams(**small), io)
    y = offset + 0.5 + torch.rand(6, 2)  # > 0: no empty layer
    energy = torch.expm1(model.generator(z, cond, offset, energies=y)).sum((2, 3))
    torch.testing.assert_close(energy, torch.expm1(y), rtol=1e-4, atol=1e-4)
    # without energies they are sampled from the density, deterministically from z
    torch.testing.assert_close(model.generator(z, cond, offset), model.generator(z, cond, offset))


@pytest.mark.parametrize("signed", [False, True])
def test_readout_noise_speckles_the_grid_and_keeps_the_layer_energy(signed):
    """The readout stage adds noise cells above threshold all over the grid (more with a wider noise) while
    the layer energy after zero suppression stays what the shower was asked for. A symmetric readout
    (signed code) keeps noise cells below -cut too."""
    from physnn.models.cells import CellCode

    torch.manual_seed(0)
    model = build_gan(GANParams(latent_dim=4, generator_channels=[4, 4], critic_channels=[4]),
                      ModelIO(image=(1, 24, 24), conditions=0))
    code = CellCode(scale=1.0, threshold=1.0, signed=signed)
    shower = torch.zeros(200, 1, 24, 24)
    shower[:, :, 11:13, 11:13] = torch.log1p(torch.tensor(250.0))  # 1000 eps in the 4 central cells
    noise = torch.randn(200, 1, 24, 24)
    counts = []
    for log_scale in (-2.0, -0.7):  # noise widths of 0.14 and 0.5 eps
        model.generator.noise_scale.data.fill_(log_scale)
        with torch.no_grad():
            cells = code.decode(code.suppress(model.generator.readout(shower, noise, code, torch.zeros(200, 0))))
        counts.append(float((cells != 0).sum((1, 2, 3)).float().mean()))
        assert float(cells.sum((1, 2, 3)).mean()) == pytest.approx(1000.0, rel=0.01)
        assert bool((cells < 0).any()) == (signed and log_scale > -1)
    assert counts[0] == pytest.approx(4.0, abs=0.1)  # the shower's 4 cells: noise at 7 sigma never passes
    # noise at 2 sigma: ~13 speckles (2.3% of 572 cells) above the cut, as many again below -cut when signed
    assert counts[1] > counts[0] + (20 if signed else 8)


def test_energy_density_learns_a_conditional_correlated_distribution():
    """The mixture density, fitted by maximum likelihood, reproduces a conditional mean, spreads and the
    correlation between layers; its samples are a deterministic function of the noise."""
    torch.manual_seed(0)
    density = LayerEnergyDensity(2, 1, components=2, hidden=32)
    cov = torch.tensor([[0.04, 0.03], [0.03, 0.09]])
    chol = torch.linalg.cholesky(cov)

    def draw(n):
        c = torch.rand(n, 1) * 2 - 1
        return c, torch.cat([c, 2 * c], 1) + torch.randn(n, 2) @ chol.T

    opt = torch.optim.Adam(density.parameters(), lr=1e-2)
    offset = torch.zeros(512, 2)
    for _ in range(400):
        c, y = draw(512)
        loss = density.nll(y, c, offset)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        c = torch.full((20000, 1), 0.5)
        noise = torch.randn(20000, 3)
        y = density.sample(c, torch.zeros(20000, 2), noise)
        torch.testing.assert_close(density.sample(c, torch.zeros(20000, 2), noise), y)
        assert y.mean(0).tolist() == pytest.approx([0.5, 1.0], abs=0.05)
        torch.testing.assert_close(torch.cov(y.T), cov, atol=0.015, rtol=0.0)
        low = density.sample(torch.full((20000, 1), -0.5), torch.zeros(20000, 2), noise)
        assert float(low.mean(0)[1]) == pytest.approx(-1.0, abs=0.05)


def test_gradient_penalty_of_linear_critics():
    real, fake = torch.randn(16, 2, 3, 3), torch.randn(16, 2, 3, 3)
    w = torch.randn(2, 3, 3)
    unit = w / w.norm()
    assert float(gradient_penalty(lambda x: (x * unit).sum((1, 2, 3)), real, fake)) == pytest.approx(0.0, abs=1e-10)
    assert float(gradient_penalty(lambda x: (x * 3 * unit).sum((1, 2, 3)), real, fake)) == pytest.approx(4.0)


def test_critic_and_generator_losses():
    params = GANParams(gp_weight=0.0, drift=0.0)
    real, fake = torch.ones(4, 1, 2, 2), torch.zeros(4, 1, 2, 2)
    critic = lambda x: x.sum((1, 2, 3))  # noqa: E731  D(real) = 4, D(fake) = 0
    loss, distance = critic_loss(critic, real, fake, params)
    assert float(loss) == pytest.approx(-4.0)
    assert float(distance) == pytest.approx(4.0)
    hinge, _ = critic_loss(critic, real, fake, GANParams(loss="hinge"))
    assert float(hinge) == pytest.approx(1.0)  # relu(1 - 4) + relu(1 + 0)
    assert float(generator_loss(critic, real)) == pytest.approx(-4.0)


def test_gan_training_writes_a_run(gan_run):
    import csv

    import physnn
    from physnn.training.checkpoint import load_checkpoint

    with (gan_run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for key in ("train_loss", "train_distance", "train_generator_loss", "val_loss", "val_sep_energy",
                "val_sep_layers", "val_distance"):
        assert np.isfinite(float(rows[-1][key])), key
    assert 0.0 <= float(rows[-1]["val_loss"]) <= 1.0  # a mean separation power
    last = load_checkpoint(gan_run, "last.pt")
    assert "critic_optimizer" in last
    assert "optimizer" in last
    assert last["optimizer"]["state"]
    assert last["critic_optimizer"]["state"]
    assert (gan_run / "plots" / "samples_epoch_001.png").is_file()
    loaded = physnn.load_run(gan_run, device="cpu")
    assert loaded.task.kind == "generation"
    assert loaded.task.scalars == ["energy", "x0", "y0"]
    assert loaded.task.classes == [11, 22, 211]
    # the readout the simulated file declares: zero suppression of |E| < 3 sigma = 30 MeV, negative cells kept
    assert loaded.task.threshold == 0.03
    assert loaded.task.cells.signed


@pytest.mark.parametrize("model", ["tiny", "hits"])
def test_gan_resume_matches_uninterrupted_training(showers_file, tmp_path, model):
    """Also with the shipped readout (hit fluctuations) and the density's own optimiser, whose state the
    checkpoint keeps."""
    import physnn
    from physnn.training.checkpoint import load_checkpoint

    cfg = gan_config(showers_file, epochs=2, model=TINY_GAN_HITS if model == "hits" else None)
    cfg["data"]["entry_stop"] = 200
    physnn.train(cfg, out=tmp_path / "full")
    physnn.train({**cfg, "train": {**cfg["train"], "epochs": 1}}, out=tmp_path / "part")
    # continue the one-epoch run to two epochs (the resumed config is the stored one, with epochs raised)
    last = load_checkpoint(tmp_path / "part", "last.pt")
    last["config"]["train"]["epochs"] = 2
    torch.save(last | {}, tmp_path / "part" / "last.pt")
    physnn.train(out=tmp_path / "part", resume=True)
    full, part = load_checkpoint(tmp_path / "full", "last.pt"), load_checkpoint(tmp_path / "part", "last.pt")
    assert ("density_optimizer" in full) == (model == "hits")
    for key, value in full["model"].items():
        torch.testing.assert_close(part["model"][key], value, rtol=0, atol=0, msg=key)


def test_generate_matches_the_simulator_layout(gan_run, showers_file, tmp_path):
    import uproot

    import physnn

    out = tmp_path / "fastsim.root"
    result = physnn.generate(gan_run, out, events=250, energy=(5.0, 50.0), seed=1, chunk_size=100, device="cpu")
    assert result.events == 250
    assert result.rate > 0
    assert result.forward_rate >= result.rate
    sim, gen = uproot.open(showers_file)["showers"], uproot.open(out)["showers"]
    assert gen.keys() == sim.keys()  # image, energy, pdgid, label, x0, y0, in the simulator's order
    assert [b.typename for b in gen.branches] == [b.typename for b in sim.branches]
    arrays = gen.arrays(library="np")
    assert arrays["image"].shape == (250, 3, 24, 24)
    nonzero = arrays["image"][arrays["image"] != 0]
    assert np.abs(nonzero).min() >= 0.03 * 0.999  # zero suppression of |E| at the training data's threshold
    assert (nonzero < 0).sum() > 0  # noise below -3 sigma, as the symmetric readout of the simulation keeps
    from physnn.io.metadata import read_metadata

    readout = read_metadata(out)["readout"]  # the generated file declares its readout, as the simulation's does
    assert (readout["suppression"], readout["threshold"]) == ("symmetric", 0.03)
    assert arrays["energy"].min() >= 5.0
    assert arrays["energy"].max() <= 50.0
    assert set(np.unique(arrays["pdgid"])) <= {11, 22, 211}
    np.testing.assert_array_equal(np.array([11, 22, 211])[arrays["label"]], arrays["pdgid"])
    assert abs(arrays["x0"]).max() <= 1.0 + 1e-6  # drawn like the training impact points (|x0| < 1 cm)
    meta = physnn.read_metadata(out)
    assert meta["generator"] == "physnn generate"
    assert meta["showers_per_s"] > 0
    assert meta["seed"] == 1
    # the same seed gives the same file; fixed classes and conditions are obeyed
    again = physnn.generate(gan_run, tmp_path / "again.root", events=250, energy=(5.0, 50.0), seed=1,
                            chunk_size=100, device="cpu")
    np.testing.assert_array_equal(uproot.open(again.path)["showers"]["image"].array(library="np"), arrays["image"])
    fixed = physnn.generate(gan_run, tmp_path / "e.root", events=50, energy=20.0, classes=[11],
                            conditions={"x0": 0.5}, seed=2, device="cpu")
    arrays = uproot.open(fixed.path)["showers"].arrays(library="np")
    assert set(arrays["pdgid"]) == {11}
    assert set(arrays["label"]) == {0}
    np.testing.assert_allclose(arrays["energy"], 20.0)
    np.testing.assert_allclose(arrays["x0"], 0.5)


def test_generated_files_feed_compare(gan_run, showers_file, tmp_path):
    import physnn

    out = tmp_path / "fastsim.root"
    physnn.generate(gan_run, out, events=300, seed=4, device="cpu")
    result = physnn.compare(showers_file, out, classifier=["high"], max_events=300)
    assert result.timing["candidate_by"] == "physnn generate"
    assert result.timing["speedup"] > 0
    assert result.classifier["high"]["auc"] > 0.5  # a two-epoch GAN is easy to tell apart


def test_generate_cli_and_errors(gan_run, showers_file, tmp_path):
    out = tmp_path / "g.root"
    res = runner.invoke(app, ["generate", str(gan_run), "--events", "120", "--energy", "1:100", "--pdgid", "11",
                              "--condition", "y0=-0.5:0.5", "--out", str(out), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "showers/s" in res.output
    bad = [
        (["--pdgid", "13"], "13"),
        (["--energy", "0:10"], "positive"),
        (["--energy", "50:10"], "below the minimum"),
        (["--condition", "z0=1"], "z0"),
        (["--condition", "x0"], "NAME=VALUE"),
        (["--spectrum", "flat"], "--spectrum"),
    ]
    for args, text in bad:
        target = tmp_path / "bad.root"
        res = runner.invoke(app, ["generate", str(gan_run), "--events", "10", "--out", str(target), *args])
        assert res.exit_code == 2, (args, res.output)
        assert text in res.output, (args, res.output)
        assert not target.exists()
    res = runner.invoke(app, ["generate", str(gan_run), "--events", "10", "--out", str(out)])
    assert res.exit_code == 2
    assert "--overwrite" in res.output


def test_generate_refuses_other_runs(cls_run, tmp_path):
    res = runner.invoke(app, ["generate", str(cls_run.run_dir), "--events", "10", "--out", str(tmp_path / "x.root")])
    assert res.exit_code == 2
    assert "not a GAN run" in res.output


def test_gan_config_errors(showers_file, tmp_path):
    import physnn
    from physnn.errors import ConfigError

    cfg = gan_config(showers_file)
    with pytest.raises(ConfigError, match="generative model"):
        physnn.train({**cfg, "task": {"kind": "classification"}}, out=tmp_path / "a")
    from conftest import TINY_CNN

    with pytest.raises(ConfigError, match="needs a generative model"):
        physnn.train({**cfg, "model": TINY_CNN}, out=tmp_path / "b")
    with pytest.raises(ConfigError, match="incident_energy 'mass'"):
        physnn.train({**cfg, "task": {"kind": "generation", "incident_energy": "mass"}}, out=tmp_path / "c")
    two = {**cfg, "data": {**cfg["data"], "images": {"branches": ["image", "image"]}}}
    with pytest.raises(ConfigError, match="one branch"):
        physnn.train(two, out=tmp_path / "d")
    with pytest.raises(ConfigError, match="kernel_size must be odd"):
        physnn.train({**cfg, "model": {"name": "gan", "params": {"kernel_size": 4}}}, out=tmp_path / "e")
    with pytest.raises(ConfigError, match="latent_dim must be at least layers"):
        physnn.train({**cfg, "model": {"name": "gan", "params": {"latent_dim": 2}}}, out=tmp_path / "f")
    # errors found once the data are read leave no run folder behind
    assert not any((tmp_path / name).exists() for name in "abcdef")


def test_evaluate_a_gan_run_on_its_test_split(gan_run, tmp_path):
    import physnn

    result = physnn.evaluate_generator(gan_run, out=tmp_path / "rep", classifier=["high"], device="cpu")
    n_test = result.events["reference"]
    assert 50 < n_test < 150  # the test split (15 %) of 600 showers
    assert result.events["candidate"] == n_test  # one generated shower per test event, same conditions
    assert set(result.separation) >= {"e_ratio", "e_layer0", "sparsity2"}
    assert 0.0 <= result.separation["e_ratio"] <= 1.0
    assert 0.5 <= result.classifier["high"]["auc"] <= 1.0
    assert result.timing["candidate_showers_per_s"] > 0
    assert (tmp_path / "rep" / "features_energy.png").is_file()
    res = runner.invoke(app, ["evaluate", str(gan_run), "--out", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    assert "classifier AUC on cells" in res.output


def test_other_commands_refuse_gan_runs(gan_run, showers_file, tmp_path):
    for command in ("predict", "encode"):
        res = runner.invoke(app, [command, str(gan_run), str(showers_file), "--out", str(tmp_path / "x.root")])
        assert res.exit_code == 2, res.output
        assert "physnn generate" in res.output
        assert not (tmp_path / "x.root").exists()


def test_a_run_refuses_the_commands_its_task_does_not_serve(cls_run, ae_run, gan_run, showers_file, tmp_path):
    """Each task names the commands its runs serve; any other is one line naming the run and the right command."""
    import physnn
    from physnn.errors import ConfigError

    with pytest.raises(ConfigError, match=r"not a classifier or regressor run \(reconstruction of image.*\); physnn "
                                          r"predict needs one; use: physnn denoise "):
        physnn.predict(ae_run.run_dir, showers_file)
    with pytest.raises(ConfigError, match=r"not an autoencoder run \(.*\); physnn encode needs one; "
                                          r"use: physnn generate "):
        physnn.encode(gan_run, showers_file)
    with pytest.raises(ConfigError, match=r"not a GAN run \(binary classification.*use: physnn predict "):
        physnn.generate(cls_run.run_dir, tmp_path / "g.root", events=5)
    assert not list(tmp_path.iterdir())
