"""Inpainting (Pathak et al. 2016, "Context Encoders"; the pix2pix-style completion after it): a U-Net fills the hole
of ``a`` (the known pixels and the mask, ``data.inpaint``) and a PatchGAN judges the completed image beside the
masked input.

The output is composited: ``m * G(a) + (1 - m) * known``, so known pixels pass through unchanged and only the hole
is learnt. Generator loss: ``l1_weight`` x the L1 over the hole's pixels (the mean over the missing pixels, so a
small hole weighs as much as a large one) ``+ adversarial_weight`` x the loss's generator term on the
discriminator's patch logits of the composite, conditioned on the masked input. ``adversarial_weight=0``
(``model=inpaint_l1``) is the same U-Net on the hole L1 alone, with no discriminator: the baseline a GAN must beat
on realism. Two classical baselines are scored beside it (``baselines``): the hole filled with the mean of the
known pixels, and scikit-image's biharmonic inpainting.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.family import Batch, StepContext, StepResult
from ..data.inpaint import split_input
from .pix2pix import Pix2Pix


def hole_l1(output: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """The mean absolute error over the missing pixels (every channel) of each image, averaged over images."""
    per_image = ((output.float() - target.float()).abs() * mask).flatten(1).sum(1)
    return (per_image / (mask.flatten(1).sum(1) * output.shape[1]).clamp(min=1)).mean()


def mean_fill(a: Tensor) -> Tensor:
    """The hole of each image filled with the mean of its known pixels (per channel)."""
    known, m = split_input(a)
    mean = (known * (1 - m)).sum((2, 3), keepdim=True) / (1 - m).sum((2, 3), keepdim=True).clamp(min=1)
    return known * (1 - m) + mean * m


def biharmonic(a: Tensor) -> Tensor:
    """scikit-image's biharmonic inpainting (``skimage.restoration.inpaint_biharmonic``) of each image."""
    from skimage.restoration import inpaint_biharmonic

    known, m = split_input(a.detach().float().cpu())
    out = []
    for image, hole in zip(known.numpy(), m[:, 0].numpy() > 0.5):
        filled = inpaint_biharmonic(image.transpose(1, 2, 0), hole, channel_axis=-1)
        out.append(torch.from_numpy(filled.transpose(2, 0, 1)).float())
    return torch.stack(out).clamp(-1, 1).to(a.device)


class Inpaint(Pix2Pix):
    """A U-Net fills the hole, a PatchGAN judges (completion, masked input); see the module docstring."""

    inpainting = True
    log_keys = ("loss_d", "loss_g", "l1_hole")

    def __init__(self, generator, discriminator, loss, spec, **kwargs) -> None:
        source = spec.shapes.get(spec.source) if spec.source else None
        if source is None or len(spec.shape) != 3 or tuple(source) != (spec.shape[0] + 1, *spec.shape[1:]):
            raise ValueError("inpaint fills holes: use data=fashion_inpaint or data=inpaint_folder data.path=DIR "
                             "(inputs are the image and its mask)")
        super().__init__(generator, discriminator, loss, spec, **kwargs)

    def complete(self, a: Tensor, net: nn.Module | None = None) -> Tensor:
        """The completed images: the generator's pixels in the hole, the known ones elsewhere."""
        known, m = split_input(a)
        return (net or self.generator)(a) * m + known * (1 - m)

    def baselines(self) -> dict:
        """The classical fills scored beside the model (``metrics.paired.baselines_of``)."""
        key = self.source_key
        return {"mean_fill": ("the hole filled with the mean of the known pixels", lambda i: mean_fill(i[key])),
                "biharmonic": ("skimage.restoration.inpaint_biharmonic", lambda i: biharmonic(i[key]))}

    # --- losses ----------------------------------------------------------------------------------------------
    def l1_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        a, b = batch[self.source_key], batch[self.target_key]
        l1 = hole_l1(self.complete(a), b, split_input(a)[1])
        return StepResult(self.l1_weight * l1, {"l1_hole": l1})

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        a, b = batch[self.source_key], batch[self.target_key]
        fake = self.complete(a)
        ctx.scratch["fake"] = fake.detach()
        adv = self.loss.generator_loss(self.discriminator(fake, **self._condition(batch)))
        l1 = hole_l1(fake, b, split_input(a)[1])
        return StepResult(self.adversarial_weight * adv + self.l1_weight * l1, {"loss_g": adv, "l1_hole": l1})

    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        fake = ctx.scratch.get("fake")
        if fake is None:  # the iteration's earlier batches (n_critic > 1)
            with torch.no_grad():
                fake = self.complete(batch[self.source_key])
        return StepResult(*self.adversarial_d_step(batch[self.target_key], fake, ctx, **self._condition(batch)))

    # --- sampling --------------------------------------------------------------------------------------------
    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        return self.complete(inputs[self.source_key], net)

    def translate(self, x: Tensor, direction: str = "AtoB", net: nn.Module | None = None) -> Tensor:
        return self.complete(x, net)

    def visuals(self, inputs: dict[str, Tensor], samples: Tensor) -> dict[str, Tensor]:
        """input (the masked image, the hole mid grey) | output | target (the original)."""
        known, m = split_input(inputs[self.source_key])
        panels = {"input": known * (1 - m), "output": samples.clamp(-1, 1)}
        if self.target_key in inputs:
            panels["target"] = inputs[self.target_key]
        return panels
