"""Pix2Pix (Isola et al. 2017): paired image-to-image translation ``G(a) -> b``.

Generator loss: ``adversarial_weight * adversarial + l1_weight * L1(G(a), b)``, the adversarial term being the
loss's generator term on the discriminator's patch logits (the paper: non-saturating, L1 weight 100). With
``conditional`` (the paper's cGAN) the discriminator judges the pair ``(a, b)``; without, ``b`` alone (the
paper's "L1 + GAN" ablation). ``adversarial_weight=0`` is the paper's "L1" row: the same U-Net trained on L1
alone, with no discriminator at all (``model=pix2pix_l1``), the baseline a GAN must beat on realism.

Schedule (the authors' code updates the discriminator and the generator on the same forward pass; here): ``G``
first on each iteration's last batch, then ``D`` on every batch, reusing ``G``'s output of that batch (detached)
instead of a second forward pass.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.family import Batch, GANFamily, Phase, StepContext, StepResult
from ..data.convert import to_float
from ..data.spec import DataSpec
from ..losses import GANLoss


def check_translation_spec(spec: DataSpec, what: str, data: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (source, target) image shapes of a translation data spec, or a ValueError naming the data to use."""
    if spec.source is None or len(spec.shapes[spec.source]) != 3 or len(spec.shape) != 3:
        raise ValueError(f"{what} translates images into images: use {data}")
    source, target = spec.shapes[spec.source], spec.shape
    if source[1:] != target[1:]:
        raise ValueError(f"{what} needs inputs and targets of one size; the data has {source} and {target}")
    return source, target


class Pix2Pix(GANFamily):
    """U-Net ``G(a)`` against a PatchGAN ``D(b | a)``; see the module docstring."""

    paired = True
    reference_split = "test"  # metrics (reference_split=auto): FID against the held-out targets
    log_keys = ("loss_d", "loss_g", "l1")
    directions = ("AtoB",)  # translate.py: the direction it was trained (the data's a -> b)

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        loss: GANLoss,
        spec: DataSpec,
        l1_weight: float = 100.0,
        adversarial_weight: float = 1.0,
        conditional: bool = True,
    ):
        super().__init__(loss, spec)
        (c_in, size, _), (c_out, _, _) = check_translation_spec(
            spec, "pix2pix", "data=fashion_edges or data=aligned_folder data.path=DIR")
        if l1_weight < 0 or adversarial_weight < 0:
            raise ValueError("model.l1_weight and model.adversarial_weight must be >= 0")
        self.l1_weight, self.adversarial_weight, self.conditional = float(l1_weight), float(adversarial_weight), \
            bool(conditional)
        self.source_key, self.target_key = spec.source, spec.target
        self.generator = generator(in_channels=c_in, out_channels=c_out)
        self.discriminator = (discriminator(in_channels=c_out + (c_in if conditional else 0), image_size=size)
                              if self.adversarial else None)

    @property
    def adversarial(self) -> bool:
        return self.adversarial_weight > 0

    # --- the schedule ----------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        if not self.adversarial:
            return [Phase("G", "generator", "l1_step", per="iteration")]
        return [Phase("G", "generator", "generator_step", per="iteration"),
                Phase("D", "discriminator", "discriminator_step", per="batch")]

    def _condition(self, batch: Batch) -> dict[str, Tensor]:
        return {"a": batch[self.source_key]} if self.conditional else {}

    # --- losses ----------------------------------------------------------------------------------------------
    def l1_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        l1 = F.l1_loss(self.generator(batch[self.source_key]).float(), batch[self.target_key].float())
        return StepResult(self.l1_weight * l1, {"l1": l1})

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        fake = self.generator(batch[self.source_key])
        ctx.scratch["fake"] = fake.detach()
        adv = self.loss.generator_loss(self.discriminator(fake, **self._condition(batch)))
        l1 = F.l1_loss(fake.float(), batch[self.target_key].float())
        return StepResult(self.adversarial_weight * adv + self.l1_weight * l1, {"loss_g": adv, "l1": l1})

    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        fake = ctx.scratch.get("fake")
        if fake is None:  # the iteration's earlier batches (n_critic > 1)
            with torch.no_grad():
                fake = self.generator(batch[self.source_key])
        return StepResult(*self.adversarial_d_step(batch[self.target_key], fake, ctx, **self._condition(batch)))

    # --- sampling --------------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator | None = None, device=None,
                      source: Batch | None = None) -> dict[str, Tensor]:
        """The first ``n`` held-out pairs of ``source`` (the input; the target too where it has one)."""
        if source is None:
            raise ValueError("pix2pix translates data: pass source= (held-out inputs)")
        return {k: to_float(source[k][:n]).to(device) for k in (self.source_key, self.target_key) if k in source}

    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        return (net or self.generator)(inputs[self.source_key])

    def translate(self, x: Tensor, direction: str = "AtoB", net: nn.Module | None = None) -> Tensor:
        return (net or self.generator)(x)

    def visuals(self, inputs: dict[str, Tensor], samples: Tensor) -> dict[str, Tensor]:
        """input | output | target."""
        panels = {"input": inputs[self.source_key], "output": samples.clamp(-1, 1)}
        if self.target_key in inputs:
            panels["target"] = inputs[self.target_key]
        return panels
