"""Sampling fluctuations of generated cells (physnn.models.gan_hits) and the readout that keeps the layer energy.

- Gamma variates from two normals have the exact moments and hit fraction of torch's Gamma sampler;
- hit fluctuations keep every layer's energy, vary like ``theta x mean`` per cell, and are a deterministic,
  differentiable function of the draws;
- ``energy_kept: readout`` makes the cells that survive the zero suppression sum to the asked energy, where
  ``noise`` loses the shower's small cells.
"""

from __future__ import annotations

import pytest
import torch

from physnn.models.cells import CellCode
from physnn.models.gan import GANParams, build_gan
from physnn.models.gan_hits import CellFluctuations, gamma_from_normals
from physnn.models.registry import ModelIO


@pytest.mark.parametrize("alpha", [0.01, 0.3, 2.0, 30.0])
def test_gamma_from_normals_matches_torchs_gamma(alpha):
    g = torch.Generator().manual_seed(0)
    n1, n2 = torch.randn(2, 400_000, generator=g, dtype=torch.float64)
    ours = gamma_from_normals(torch.full((400_000,), alpha, dtype=torch.float64), n1, n2)
    exact = torch.distributions.Gamma(torch.tensor(alpha, dtype=torch.float64), 1.0).sample((400_000,))
    assert float(ours.mean()) == pytest.approx(alpha, rel=0.02)
    assert float(ours.var()) == pytest.approx(alpha, rel=0.04)
    cut = 0.1 * alpha
    assert float((ours > cut).double().mean()) == pytest.approx(float((exact > cut).double().mean()), abs=0.003)


def _layer(n: int = 4000) -> torch.Tensor:
    """n copies of one layer of mean cells (units of eps): a core of 200 and a halo of 0.05 per cell."""
    cells = torch.full((n, 1, 8, 8), 0.05)
    cells[:, :, 3:5, 3:5] = 50.0
    return cells


@pytest.mark.parametrize("theta", [0.5, 5.0])
def test_hits_keep_the_layer_energy_and_fluctuate_like_theta_times_the_mean(theta):
    hits = CellFluctuations(1, 0, hit_energy=theta)
    cells = _layer()
    draws = torch.randn(len(cells), 2, *cells.shape[1:], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = hits(cells, torch.zeros(len(cells), 0), draws)
    torch.testing.assert_close(out.sum((1, 2, 3)), cells.sum((1, 2, 3)), rtol=1e-4, atol=0)
    halo_cells = cells[0, 0] < 1
    assert float(out[:, 0, 3:5, 3:5].mean()) == pytest.approx(50.0, rel=0.01)
    assert float(out[:, 0][:, halo_cells].mean()) == pytest.approx(0.05, rel=0.1)
    core = out[:, 0, 3, 3]
    total = float(cells[0].sum())  # a Dirichlet share of it: var = theta mu (1 - mu / E) E / (E + theta)
    expected = theta * 50.0 * (1 - 50.0 / total) * total / (total + theta)
    assert float(core.var()) == pytest.approx(expected, rel=0.1)
    halo = out[:, 0, 0, 0]  # far from the core a hit is rare, and then about a whole one (theta)
    alpha = torch.tensor(0.05 / theta, dtype=torch.float64)
    exact = float(torch.special.gammaincc(alpha, torch.tensor(0.1, dtype=torch.float64)))  # P(Gamma > 0.1)
    assert float((halo > 0.1 * theta).double().mean()) == pytest.approx(exact, abs=0.02)
    with torch.no_grad():
        torch.testing.assert_close(hits(cells, torch.zeros(len(cells), 0), draws), out, rtol=0, atol=0)


def test_hits_pass_gradients_to_the_shape_and_the_hit_energy():
    hits = CellFluctuations(1, 0)
    cells = _layer(64).requires_grad_(True)
    draws = torch.randn(64, 2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    (hits(cells, torch.zeros(64, 0), draws)[:, :, 3:5, 3:5] ** 2).sum().backward()
    assert cells.grad is not None
    assert bool(torch.isfinite(cells.grad).all())
    assert float(cells.grad.abs().sum()) > 0
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in hits.parameters())


@pytest.mark.parametrize("energy_kept", ["noise", "readout"])
def test_the_readout_keeps_the_asked_energy_in_the_cells_it_keeps(energy_kept):
    torch.manual_seed(0)
    params = GANParams(latent_dim=4, generator_channels=[4, 4], critic_channels=[4], energy_kept=energy_kept)
    model = build_gan(params, ModelIO(image=(1, 8, 8), conditions=0))
    code = CellCode(scale=1.0, threshold=1.0, signed=True)
    cells = torch.full((500, 1, 8, 8), 0.5)  # a flat layer of 0.5 eps per cell, below the cut, and a core
    cells[:, :, 3:5, 3:5] = 10.0
    x = torch.log1p(cells)
    draws = torch.randn(500, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = code.decode(code.suppress(model.generator.readout(x, draws, code, torch.zeros(500, 0))))
    asked = float(cells[0].sum())  # 40 + 60 x 0.5 = 70
    mean = float(out.sum((1, 2, 3)).mean())
    if energy_kept == "readout":
        assert mean == pytest.approx(asked, rel=0.01)
    else:  # the flat part goes below the cut
        assert mean < 0.8 * asked


def test_the_declared_noise_width_replaces_the_learnt_one():
    torch.manual_seed(0)
    io = ModelIO(image=(1, 8, 8), conditions=0)
    learnt = build_gan(GANParams(latent_dim=4, generator_channels=[4, 4], critic_channels=[4]), io).generator
    declared = build_gan(GANParams(latent_dim=4, generator_channels=[4, 4], critic_channels=[4],
                                   noise_width="declared"), io).generator
    code = CellCode(scale=0.03, threshold=0.03, signed=True, noise=0.01)
    torch.testing.assert_close(declared.noise_sigma(code), torch.full((1,), 1 / 3))
    torch.testing.assert_close(learnt.noise_sigma(code), learnt.noise_scale.exp())
    undeclared = CellCode(scale=0.03, threshold=0.03, signed=True)  # files that declare no noise: learnt
    torch.testing.assert_close(declared.noise_sigma(undeclared), declared.noise_scale.exp())


def test_a_run_keeps_the_declared_noise_and_generate_records_it(gan_hits_run, tmp_path):
    import physnn
    from physnn.evaluation.samples import read_meta
    from physnn.inference.loading import load_run

    loaded = load_run(gan_hits_run, device="cpu")
    assert loaded.task.cells.noise == pytest.approx(0.01)  # the simulator's physnn_meta["readout"]
    physnn.generate(gan_hits_run, tmp_path / "gen.root", events=50, seed=1)
    readout = read_meta(tmp_path / "gen.root")["readout"]
    assert readout["noise"] == pytest.approx(0.01)
    assert readout["threshold_sigma"] == pytest.approx(loaded.task.threshold / 0.01)



def test_the_density_has_its_own_optimiser_with_energy_lr(gan_hits_run):
    """energy_lr: the density's parameters are in its own Adam only; the generator's optimiser has the rest."""
    from physnn.inference.loading import load_run
    from physnn.models.gan_step import AdversarialStep

    model = load_run(gan_hits_run, device="cpu").model

    class Loop:  # what optimizers() asks of the trainer
        def __init__(self) -> None:
            self.model = model
            self.cfg = type("Cfg", (), {"critic_optimizer": None})()

        def optimizer(self, module, settings=None):
            return torch.optim.Adam(module.parameters(), lr=2e-4)

    optimizers = AdversarialStep().optimizers(Loop())
    ids = {key: {id(p) for group in opt.param_groups for p in group["params"]} for key, opt in optimizers.items()}
    density = {id(p) for p in model.generator.density.parameters()}
    assert ids["density_optimizer"] == density
    assert ids["optimizer"] == {id(p) for p in model.generator.parameters()} - density
    assert optimizers["density_optimizer"].param_groups[0]["lr"] == pytest.approx(1e-3)


def test_the_independent_tree_judge_sees_a_shift_and_not_a_twin(showers_file):
    """examples/gbdt_judge.py: ~0.5 on two draws of one distribution, > 0.85 on a shift of one sigma in every
    input; its inputs are physnn's classifier inputs with the particle type of each shower."""
    import importlib.util
    from pathlib import Path

    import numpy as np

    path = Path(__file__).resolve().parents[1] / "examples" / "gbdt_judge.py"
    spec = importlib.util.spec_from_file_location("gbdt_judge", path)
    judge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(judge)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 2000, 5))
    assert abs(float(judge.auc(a, b).split()[0]) - 0.5) < 0.05
    assert float(judge.auc(a, b + 1.0).split()[0]) > 0.85
    x, types = judge.inputs(judge.read_sample(str(showers_file), max_cells=300), "high", 300)
    assert x.shape[0] == len(types) == 300
    assert set(types) == {"e-", "gamma", "pi+"}


@pytest.mark.parametrize(("energy", "theta"), [(0.05, 3.0), (1.0, 20.0), (30.0, 2981.0)])
def test_hits_keep_a_soft_layers_energy(energy, theta):
    """A layer whose energy is small next to its hit energy (every Gamma variate would underflow float32)
    keeps its energy: the shares are a softmax of the variates' logarithms."""
    hits = CellFluctuations(1, 0, hit_energy=theta)
    cells = torch.full((2000, 1, 12, 12), energy / 144)
    draws = torch.randn(2000, 2, 1, 12, 12, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = hits(cells, torch.zeros(2000, 0), draws)
    assert bool(torch.isfinite(out).all())
    torch.testing.assert_close(out.sum((1, 2, 3)), torch.full((2000,), energy), rtol=1e-5, atol=0)


def test_readout_kept_energy_passes_gradients_to_cells_below_the_cut():
    """energy_kept: readout zeroes the cells the cut removes with a straight-through gradient, as the zero
    suppression does, so the critic can push a cell just below the cut above it."""
    torch.manual_seed(0)
    params = GANParams(latent_dim=4, generator_channels=[4, 4], critic_channels=[4], energy_kept="readout")
    model = build_gan(params, ModelIO(image=(1, 8, 8), conditions=0))
    code = CellCode(scale=1.0, threshold=1.0, signed=True)
    cells = torch.full((50, 1, 8, 8), 0.5)
    cells[:, :, 3:5, 3:5] = 10.0
    x = torch.log1p(cells).requires_grad_(True)
    draws = torch.zeros(50, 1, 8, 8)  # no noise: the flat cells all fall below the cut
    out = code.suppress(model.generator.readout(x, draws, code, torch.zeros(50, 0)))
    assert float(out.detach()[:, 0, 0, 0].abs().max()) == 0.0
    out[:, 0, 0, 0].sum().backward()
    assert float(x.grad[:, 0, 0, 0].abs().min()) > 0


@pytest.mark.parametrize("option", [{"cell_fluctuations": True}, {"energy_kept": "readout"}, {"energy_lr": 1e-3}])
def test_options_on_the_layer_energies_need_them(option):
    from physnn.errors import ConfigError

    params = GANParams(latent_dim=4, generator_channels=[4, 4], critic_channels=[4], layer_energies=False, **option)
    with pytest.raises(ConfigError, match="needs layer_energies: true"):
        build_gan(params, ModelIO(image=(1, 8, 8), conditions=0))
