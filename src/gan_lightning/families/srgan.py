"""Super-resolution: SRResNet and SRGAN (Ledig et al. 2017) on ``{"lr", "hr"}`` pairs, as one family.

Generator loss: ``pixel_weight * pixel + content_weight * content + adversarial_weight * adversarial`` where
``pixel`` is L1 or MSE to the high-resolution image, ``content`` a frozen network's feature distance
(``losses.content``; off by default) and ``adversarial`` the loss's generator term (the paper's 1e-3 of the
non-saturating loss by default).

Phases: ``pixel`` (the generator alone on the pixel loss: SRResNet, stage 1) for the first ``warmup`` iterations,
then ``D`` and ``G`` (stage 2, the generator starting from stage 1's weights); no discriminator step is taken
during the warm-up. ``adversarial_weight=0`` is SRResNet itself: the pixel phase only, no discriminator at all.
The reconstruction terms are the same in both stages unless ``warmup_content_weight`` (stage 1's content weight)
or ``gan_pixel_weight`` (stage 2's pixel weight) say otherwise: the paper trains SRResNet on MSE alone, then SRGAN
on VGG54 + adversarial alone (``warmup_content_weight=0 gan_pixel_weight=0``, ``experiment=srgan/paper``).
``relativistic=true`` uses the relativistic average discriminator of ESRGAN (Wang et al. 2018) with any of the
package's losses: each side's logits are taken relative to the other side's mean, and the generator's loss is the
discriminator's with real and fake swapped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.family import Batch, Before, From, GANFamily, Phase, StepContext, StepResult
from ..data.convert import to_float
from ..data.spec import DataSpec
from ..data.super_resolution import bicubic_upscale
from ..losses import GANLoss
from ..losses.content import build_content

log = logging.getLogger(__name__)

PIXEL_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


class SuperResolution(GANFamily):
    """G(lr) -> hr against D(hr). See the module docstring for the loss and the schedule."""

    paired = True
    log_keys = ("loss_d", "loss_g", "pixel")
    baseline_name = "bicubic upsampling (torch.nn.functional.interpolate, align_corners=False, clamped)"

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        loss: GANLoss,
        spec: DataSpec,
        pixel_loss: str = "l1",
        pixel_weight: float = 1.0,
        adversarial_weight: float = 1e-3,
        content: dict | None = None,
        content_weight: float = 1.0,
        warmup: int = 0,
        relativistic: bool = False,
        warmup_content_weight: float | None = None,
        gan_pixel_weight: float | None = None,
    ):
        super().__init__(loss, spec)
        if spec.source is None or len(spec.shapes[spec.source]) != 3:
            raise ValueError("the super-resolution models need low-resolution inputs: use data=fashion_sr or "
                             "data=sr_folder")
        lr, hr = spec.shapes[spec.source], spec.shape
        if hr[1] <= lr[1] or hr[1] % lr[1] or hr[1] // lr[1] != hr[2] // lr[2] or hr[0] != lr[0]:
            raise ValueError(f"inputs {lr} and targets {hr} are not a super-resolution pair (smaller inputs): use "
                             "data=fashion_sr or data=sr_folder")
        if pixel_loss not in PIXEL_LOSSES:
            raise ValueError(f"model.pixel_loss must be one of {', '.join(PIXEL_LOSSES)}; got {pixel_loss!r}")
        if warmup < 0 or adversarial_weight < 0:
            raise ValueError("model.warmup and model.adversarial_weight must be >= 0")
        self.scale = hr[1] // lr[1]
        self.pixel_loss, self.pixel_weight = pixel_loss, float(pixel_weight)
        self.adversarial_weight, self.warmup, self.relativistic = float(adversarial_weight), int(warmup), relativistic
        self.content_weight = float(content_weight)
        # (pixel, content) weights of each stage; a None weight is the one both stages share
        self.stage_weights = {
            "pixel": (self.pixel_weight, self.content_weight if warmup_content_weight is None
                      else float(warmup_content_weight)),
            "gan": (self.pixel_weight if gan_pixel_weight is None else float(gan_pixel_weight), self.content_weight),
        }
        if min(w for pair in self.stage_weights.values() for w in pair) < 0:
            raise ValueError("model.warmup_content_weight and model.gan_pixel_weight must be >= 0")
        self.content = build_content(**(content or {}))
        log.info("super-resolution x%d: %s pixel loss%s%s", self.scale, pixel_loss,
                 f", content loss: {self.content.describe()}" if self.content is not None else ", no content loss",
                 f", adversarial weight {adversarial_weight}" + (" (relativistic)" if relativistic else "")
                 if self.adversarial else " (SRResNet: no discriminator)")
        self.generator = generator(out_shape=hr, scale=self.scale)
        self.discriminator = discriminator(in_shape=hr) if self.adversarial else None

    @property
    def adversarial(self) -> bool:
        return self.adversarial_weight > 0

    # --- the schedule ----------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        if not self.adversarial:
            return [Phase("pixel", "generator", "pixel_step", per="iteration")]

        return [Phase("pixel", "generator", "pixel_step", per="iteration", active=Before(self.warmup)),
                Phase("D", "discriminator", "discriminator_step", per="batch", active=From(self.warmup)),
                Phase("G", "generator", "generator_step", per="iteration", active=From(self.warmup))]

    def networks_of(self, player: str) -> list[nn.Module]:
        return [self.generator] if player == "generator" else [self.discriminator]

    # --- losses ----------------------------------------------------------------------------------------------
    def _reconstruction(self, fake: Tensor, hr: Tensor, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        """The stage's weighted pixel + content loss; the pixel loss is logged even at weight 0, the content
        network is not run at weight 0 (VGG costs more than the generator)."""
        pixel_weight, content_weight = self.stage_weights[stage]
        pixel = PIXEL_LOSSES[self.pixel_loss](fake.float(), hr.float())
        loss, logs = pixel_weight * pixel, {"pixel": pixel}
        if self.content is not None and content_weight > 0:
            content = self.content(fake, hr)
            loss = loss + content_weight * content
            logs["content"] = content
        return loss, logs

    def pixel_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        loss, logs = self._reconstruction(self.generator(batch["lr"]), batch["hr"], "pixel")
        return StepResult(loss, logs)

    def _relative(self, a: Tensor, b: Tensor) -> Tensor:
        return a - b.mean() if self.relativistic else a

    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch["hr"]
        with torch.no_grad():
            fake = self.generator(batch["lr"])
        if not self.relativistic:
            return StepResult(*self.adversarial_d_step(real, fake, ctx))
        d_real, d_fake = self.discriminator(real), self.discriminator(fake)
        loss = self.loss.discriminator_loss(self._relative(d_real, d_fake), self._relative(d_fake, d_real))
        logs = self.d_logs(loss, d_real, d_fake, ctx.logging)
        return StepResult(self.add_regularizer(loss, logs, real, fake, ctx), logs)

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch["hr"]
        fake = self.generator(batch["lr"])
        d_fake = self.discriminator(fake)
        if self.relativistic:
            with torch.no_grad():
                d_real = self.discriminator(real)
            adv = self.loss.discriminator_loss(self._relative(d_fake, d_real), self._relative(d_real, d_fake))
        else:
            adv = self.loss.generator_loss(d_fake)
        loss, logs = self._reconstruction(fake, real, "gan")
        return StepResult(loss + self.adversarial_weight * adv, {"loss_g": adv, **logs})

    # --- sampling --------------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator | None = None, device=None,
                      source: Batch | None = None) -> dict[str, Tensor]:
        """The first ``n`` held-out pairs of ``source`` (``lr``; ``hr`` too where it has it, for the grids)."""
        if source is None:
            raise ValueError("a super-resolution model upscales data: pass source= (held-out low-resolution images)")
        return {k: to_float(source[k][:n]).to(device) for k in ("lr", "hr") if k in source}

    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        return (net or self.generator)(inputs["lr"])

    def baseline(self, inputs: dict[str, Tensor]) -> Tensor:
        """Bicubic upsampling of the inputs: what every super-resolution model is scored beside."""
        return bicubic_upscale(inputs["lr"], self.scale)

    def paired_metric_options(self) -> dict:
        """SR papers' convention: borders cropped by the scale, the Y channel of RGB images."""
        return {"crop_border": self.scale, "y_channel": True}

    def visuals(self, inputs: dict[str, Tensor], samples: Tensor) -> dict[str, Tensor]:
        """LR (nearest-upsampled) | bicubic | output | HR."""
        lr = inputs["lr"]
        panels = {"input": F.interpolate(lr.float(), scale_factor=self.scale, mode="nearest"),
                  "bicubic": self.baseline(inputs), "output": samples.clamp(-1, 1)}
        if "hr" in inputs:
            panels["target"] = inputs["hr"]
        return panels
