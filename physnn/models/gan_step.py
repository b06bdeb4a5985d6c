"""The GAN's training step: the generator and the critic, each with its optimiser, in the alternating scheme.

The trainer (:mod:`physnn.training.trainer`) runs the epochs, checkpoints,
resume, early stopping and logging; this step is what an epoch and a
validation pass are for a GAN (see :mod:`physnn.models.steps`). Under
torchrun the gradients are averaged by the process group's
``average_gradients`` (not DistributedDataParallel, which supports neither
the critic's gradient penalty, a double backward, nor a critic frozen for
every other step), and the batch-norm buffers are rank 0's after every epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from physnn.models.gan_losses import cell_spectrum_loss, critic_loss, energy_matching_loss, generator_loss
from physnn.models.steps import Loop
from physnn.physics.showers import high_level_features, separation_powers


class AdversarialStep:
    """Train a conditional GAN (:mod:`physnn.models.gan`) for a generation task."""

    def optimizers(self, loop: Loop) -> dict[str, torch.optim.Optimizer]:
        """The generator's (``optimizer``) and the critic's (``train.critic_optimizer``, default the same); with
        ``energy_lr``, the layer-energy density's own Adam (``density_optimizer``), the generator's without it."""
        generator, critic = loop.model.generator, loop.model.critic
        critic_opt = loop.optimizer(critic, loop.cfg.critic_optimizer)
        lr = loop.model.params.energy_lr
        if generator.density is None or lr is None:
            return {"optimizer": loop.optimizer(generator), "critic_optimizer": critic_opt}
        rest = nn.Module()  # the generator's parameters but the density's
        rest.params = nn.ParameterList(p for name, p in generator.named_parameters() if not name.startswith("density."))
        return {"optimizer": loop.optimizer(rest), "critic_optimizer": critic_opt,
                "density_optimizer": torch.optim.Adam(generator.density.parameters(), lr=lr)}

    def forward_model(self, loop: Loop) -> nn.Module:
        """The bare model, its weights rank 0's in every process (the trainer asks once, before training)."""
        if loop.dist.enabled:
            loop.dist.broadcast_state(loop.model)
        return loop.model

    @staticmethod
    def _latent(loop: Loop, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, loop.model.latent_dim, device=loop.device, generator=generator)

    def train_epoch(self, loop: Loop, tensors: Any, optimizers: Mapping[str, torch.optim.Optimizer],
                    batch_done: Callable[[], None], progress: Any) -> dict[str, float]:
        """One epoch of GAN training: the classic alternating scheme.

        For every batch of real showers:

        1. **critic step**: generate as many showers with the batch's
           conditions (the generator fixed: no gradient flows into it) and
           update the critic to tell the real from the generated ones
           (:func:`~physnn.models.gan_losses.critic_loss`: Wasserstein with gradient
           penalty, or hinge);
        2. **generator step**, every ``n_critic`` batches: generate fresh
           showers and update the generator to fool the critic
           (:func:`~physnn.models.gan_losses.generator_loss`), plus the
           energy-matching term when asked for
           (:func:`~physnn.models.gan_losses.energy_matching_loss`); the critic's
           weights are frozen during this step.

        With a layer-energy density (``energy_model: mixture``) both steps
        generate the shapes for the real showers' layer energies, and the
        density takes a maximum-likelihood step on them for every batch: with
        its own optimiser (``energy_lr``), or with the generator's (in the
        generator step, its negative log-likelihood is added to the
        generator's loss; it shares no weight with the image network).

        The critic sees images in the task's cell representation with zero
        suppression applied (straight-through), so it judges exactly what
        ``physnn generate`` writes.
        """
        model, task, gan = loop.model, loop.task, loop.model.params
        opt, critic_opt = optimizers["optimizer"], optimizers["critic_optimizer"]
        own = optimizers.get("density_optimizer")
        model.train()
        sums = {"critic": torch.zeros((), device=loop.device), "distance": torch.zeros((), device=loop.device),
                "generator": torch.zeros((), device=loop.device)}
        density = model.generator.density
        if density is not None:
            sums["energy_nll"] = torch.zeros((), device=loop.device)
        n_critic = n_gen = 0
        for step, batch in enumerate(loop.batches(tensors, loop.cfg.batch_size, shuffle=True)):
            batch = task.augment(loop.augment_inputs(batch))  # the data's flips: training batches only
            real, cond = batch["real"], batch["conditions"]
            critic = task.critic_of(model, batch)  # x -> D(x | conditions, energy features of x)
            energies = task.layer_energies(real) if density is not None else None

            # 1) critic step: real vs generated showers, the generator fixed
            with torch.no_grad():
                fake = task.generate(model, self._latent(loop, len(real)), cond, batch["incident"], energies)
            loss_c, distance = critic_loss(critic, real, fake, gan)
            critic_opt.zero_grad(set_to_none=True)
            loss_c.backward()
            loop.dist.average_gradients(model.critic.parameters())
            loop.clip(model.critic.parameters())
            critic_opt.step()
            sums["critic"] += loss_c.detach()
            sums["distance"] += distance
            n_critic += 1

            # 2) generator step every n_critic critic steps: fool the (frozen) critic. The layer-energy
            # density (if any) learns on every batch: with the generator's loss, or in a step of its own.
            nll = None if density is None else density.nll(energies, cond, task.offset(batch["incident"]))
            if nll is not None:
                sums["energy_nll"] += nll.detach()
                if own is not None:  # the density's own optimiser (energy_lr)
                    self._density_step(loop, own, nll, density)
                    nll = None
            if (step + 1) % model.n_critic == 0:
                model.critic.requires_grad_(False)
                fake = task.generate(model, self._latent(loop, len(real)), cond, batch["incident"], energies)
                loss_g = generator_loss(critic, fake)
                if nll is not None:  # the layer energies' density: maximum likelihood
                    loss_g = loss_g + nll
                elif density is None and gan.energy_matching > 0 and task.incident is not None:
                    cols = task.energy_columns
                    loss_g = loss_g + gan.energy_matching * energy_matching_loss(
                        task.critic_features(fake, batch["incident"])[:, cols],
                        task.critic_features(real, batch["incident"])[:, cols])
                if gan.cell_spectrum > 0:
                    loss_g = loss_g + gan.cell_spectrum * cell_spectrum_loss(fake, real)
                opt.zero_grad(set_to_none=True)
                loss_g.backward()
                loop.dist.average_gradients(model.generator.parameters())
                loop.clip(model.generator.parameters())
                opt.step()
                model.critic.requires_grad_(True)
                sums["generator"] += loss_g.detach()
                n_gen += 1
            elif nll is not None:  # a step of the density's parameters only (the others have no gradient)
                self._density_step(loop, opt, nll, model.generator)
            batch_done()
            progress.step(lambda n=n_critic: float(sums["critic"]) / n)
        out = {"train_loss": float(sums["critic"]) / max(n_critic, 1),
               "train_distance": float(sums["distance"]) / max(n_critic, 1),
               "train_generator_loss": float(sums["generator"]) / max(n_gen, 1)}
        if density is not None:
            out["train_energy_nll"] = float(sums["energy_nll"]) / max(n_critic, 1)
        if loop.dist.enabled:  # batch-norm running statistics: rank 0's, like DDP
            loop.dist.broadcast_state(model, buffers_only=True)
        return out

    @staticmethod
    def _density_step(loop: Loop, opt: torch.optim.Optimizer, nll: torch.Tensor, owner: nn.Module) -> None:
        """A step of the layer-energy density's parameters only (``owner``'s others get no gradient)."""
        opt.zero_grad(set_to_none=True)
        nll.backward()
        loop.dist.average_gradients(owner.parameters())
        opt.step()
        opt.zero_grad(set_to_none=True)  # no stale gradient in the generator's averaging and clipping

    def evaluate(self, loop: Loop, tensors: Any) -> dict[str, float]:
        """GAN validation: generate one shower per validation event (same conditions, fixed noise) and
        compare high-level features (``loss`` = mean separation power), plus the critic's distance."""
        model, task = loop.model, loop.task
        model.eval()
        noise = torch.Generator(device=loop.device).manual_seed(loop.cfg.seed + 1)
        real_f: list[dict[str, Any]] = []
        fake_f: list[dict[str, Any]] = []
        distance, n = 0.0, 0
        with torch.no_grad():
            for batch in loop.batches(tensors, loop.cfg.eval_batch_size, shuffle=False):
                batch = task.augment(batch)
                real = batch["real"]
                fake = task.generate(model, self._latent(loop, len(real), noise), batch["conditions"],
                                     batch["incident"], generator=noise)
                critic = task.critic_of(model, batch)
                distance += float(critic(real).sum() - critic(fake).sum())
                n += len(real)
                incident = batch["incident"].cpu().numpy() if task.incident is not None else None
                real_f.append(high_level_features(task.to_phys(real).cpu().numpy(), incident))
                fake_f.append(high_level_features(task.to_phys(fake).cpu().numpy(), incident))
        join = lambda parts: {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}  # noqa: E731
        metrics = generation_metrics(join(real_f), join(fake_f))
        metrics["distance"] = distance / max(n, 1)
        return metrics

    def after_epoch(self, loop: Loop, epoch: int) -> None:
        """A figure of generated showers at fixed conditions every ``train.samples_every`` epochs
        (``plots/samples_epoch_NNN.png``), when the caller hands in a way to draw it."""
        every = loop.cfg.samples_every
        if every == 0 or epoch % every or loop.plots.samples is None:
            return
        loop.plots.samples(loop.model, loop.task, loop.run_dir / "plots" / f"samples_epoch_{epoch:03d}.png",
                           device=loop.device, seed=loop.cfg.seed, title=f"epoch {epoch}")


def generation_metrics(real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Separation powers of the high-level features of validation vs generated showers.

    ``loss`` is their mean (0: identical histograms), ``sep_energy`` the
    one of the total energy over the incident energy and ``sep_layers``
    the mean over the per-layer energies.
    """
    sep = separation_powers(real, fake)
    result = {"loss": float(np.mean(list(sep.values())))}
    if "e_ratio" in sep:
        result["sep_energy"] = sep["e_ratio"]
    layers = [v for k, v in sep.items() if k.startswith("e_layer")]
    if layers:
        result["sep_layers"] = float(np.mean(layers))
    return result
