"""StyleGAN2 (Karras et al. 2020, "Analyzing and improving the image quality of StyleGAN"), the training of
StyleGAN2-ADA's ``StyleGAN2Loss`` on the package's phases:

- ``D``: the loss's discriminator objective (the non-saturating logistic loss by default) on a real batch against
  fakes of the generator, on every batch;
- ``Dreg``: lazy R1 on reals, ``gamma / 2 * |grad_x D(x)|^2``, every ``r1_interval`` discriminator steps with gain
  ``r1_interval`` (``lazy``: the module multiplies the discriminator's learning rate by ``c = r / (r + 1)`` and raises
  its betas to ``c``); off when ``r1_gamma`` is 0;
- ``G``: the loss's generator objective on fakes, once per iteration;
- ``Greg``: lazy path-length regularisation every ``pl_interval`` iterations, gain ``pl_interval``, on a batch
  ``pl_batch_shrink`` times smaller: ``pl_weight * (|J_w^T r| - a)^2`` with ``r`` image-shaped noise scaled by
  ``1 / sqrt(H W)`` and ``a`` (``pl_mean``, a buffer) the running mean of the lengths (decay ``pl_decay``); off when
  ``pl_weight`` is 0.

Fakes use style mixing with probability ``mixing`` (one random crossover point for the batch). Both regularisers
run in float32 outside autocast, and add ``0 x`` the network's output so that every parameter is in their graph
(DDP). They call the networks' ``forward`` directly, so a ``torch.compile``d network (no double backward) runs them
eagerly.

Images: the generator works at a power-of-two ``resolution`` >= 8 (by default the image size rounded up: 32 for
Fashion-MNIST's 28 px); the discriminator centre-pads smaller real images with -1 (the background) and ``generate``
centre-crops the generator's output back to the data's size, so data, samples and metrics keep the data's size.

Sampling: ``sample_inputs(n, generator, device, psi=1.0, labels=None)``; ``psi`` < 1 truncates w towards the
tracked mean ``w_avg`` (the truncation trick; 0: every sample is the mean image). A conditional model
(``conditional: true`` on labelled data) takes ``labels=`` and lays its grids out one row per class, like CGAN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from ..config.checks import is_int, is_number
from ..core.family import Batch, GANFamily, GridInputs, Phase, StepContext, StepResult
from ..data.spec import DataSpec
from ..losses import GANLoss
from .class_conditional import ConditionalFamily, require_labels


def check_psi(psi) -> float:
    """``psi`` as a float, or the ``ValueError`` for a truncation outside [0, 1]."""
    if not is_number(psi) or not 0 <= psi <= 1:
        raise ValueError(f"psi (truncation) must be a number in [0, 1] (1: none, 0: the mean image); got {psi!r}")
    return float(psi)


def image_resolution(shape: Sequence[int], resolution: int | None = None) -> int:
    """The generator's resolution for images of ``shape``: ``resolution`` if given (a power of two >= 8, at least
    the image size), else the image size rounded up to a power of two, at least 8 (28 -> 32)."""
    if len(shape) != 3:
        raise ValueError(f"StyleGAN2 needs images (C, H, W); the data has shape {tuple(shape)}: use model=fcgan "
                         "for other data")
    _, h, w = shape
    if h != w:
        raise ValueError(f"StyleGAN2 needs square images; the data is {h}x{w} px (data.image_size=N resizes it)")
    if resolution is None:
        return max(8, 1 << (h - 1).bit_length())
    if not is_int(resolution) or resolution < max(8, h) or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 8 and >= the image size ({h} px), or null for "
                         f"{max(8, 1 << (h - 1).bit_length())}; got {resolution!r}")
    return resolution


class StyleGAN2(GANFamily):
    """StyleGAN2 with lazy R1 and path-length regularisation, style mixing and the truncation trick.

    Args:
        generator, discriminator: factories (Hydra ``_partial_``) of ``networks.stylegan2.Generator`` /
            ``Discriminator``, called with the resolution, the image channels and the number of classes.
        loss: the adversarial objective (``NonSaturating``: the paper's logistic loss).
        spec: the data's spec.
        latent_dim: size of z.
        conditional: a class-conditional model (needs labelled data).
        resolution: the generator's image size (None: the data's, rounded up to a power of two >= 8).
        r1_gamma, r1_interval: R1 weight (0: off) and interval (discriminator steps).
        pl_weight, pl_interval, pl_batch_shrink, pl_decay: path-length weight (0: off), interval (iterations),
            batch divisor and the decay of its running mean.
        mixing: probability of style mixing (0: off).
    """

    augmentable = True  # D scores every real and fake through ``d`` (padded, then augmented); R1 too
    style_based = True  # an intermediate latent space W: interpolation in W, style mixing, ppl_domain

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        loss: GANLoss,
        spec: DataSpec,
        latent_dim: int = 512,
        conditional: bool = False,
        resolution: int | None = None,
        r1_gamma: float = 10.0,
        r1_interval: int = 16,
        pl_weight: float = 2.0,
        pl_interval: int = 4,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        mixing: float = 0.9,
    ):
        _check_options(latent_dim=latent_dim, r1_gamma=r1_gamma, r1_interval=r1_interval, pl_weight=pl_weight,
                       pl_interval=pl_interval, pl_batch_shrink=pl_batch_shrink, pl_decay=pl_decay, mixing=mixing)
        if not isinstance(conditional, bool):
            raise ValueError(f"conditional must be true or false; got {conditional!r}")
        num_classes = require_labels("stylegan2 with conditional=true", spec.num_classes) if conditional else None
        super().__init__(loss, spec)
        self.class_conditional = conditional
        self.latent_dim = latent_dim
        self.resolution = image_resolution(spec.shape, resolution)
        self.r1_gamma, self.r1_interval = float(r1_gamma), r1_interval
        self.pl_weight, self.pl_interval, self.pl_batch_shrink = float(pl_weight), pl_interval, pl_batch_shrink
        self.pl_decay, self.mixing = float(pl_decay), float(mixing)
        channels = spec.shape[0]
        self.generator = generator(latent_dim=latent_dim, resolution=self.resolution, img_channels=channels,
                                   num_classes=num_classes)
        self.discriminator = discriminator(resolution=self.resolution, img_channels=channels, num_classes=num_classes)
        self.register_buffer("pl_mean", torch.zeros([]))

    # --- the schedule ----------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        phases = [Phase("D", "discriminator", "discriminator_step", per="batch")]
        if self.r1_gamma > 0:
            phases.append(Phase("Dreg", "discriminator", "r1_step", per="batch", interval=self.r1_interval,
                                gain=self.r1_interval, lazy=True))
        phases.append(Phase("G", "generator", "generator_step", per="iteration"))
        if self.pl_weight > 0:
            phases.append(Phase("Greg", "generator", "pl_step", per="iteration", interval=self.pl_interval,
                                gain=self.pl_interval, lazy=True))
        return phases

    # --- the pieces of a step ----------------------------------------------------------------------------------
    def labels(self, batch: Batch, n: int | None = None) -> Tensor | None:
        """The batch's labels (its first ``n``) for a conditional model; None for an unconditional one."""
        if not self.class_conditional:
            return None
        y = batch.get("y")
        if y is None:
            raise RuntimeError(f"stylegan2: a training batch has no labels ('y') although the model is conditional "
                               f"on {self.num_classes} classes")
        return y if n is None else y[:n]

    def condition(self, y: Tensor | None) -> dict[str, Tensor]:
        """The discriminator's keyword arguments for labels ``y``."""
        return {} if y is None else {"y": y}

    def mixing_options(self, z: Tensor) -> dict:
        """Style mixing for one batch: with probability ``mixing``, a second z and a crossover point in
        [1, num_ws) (the ws from it on are the second z's); else nothing. Both draws are always made, so the
        random stream does not depend on the outcome."""
        num_ws = self.generator.num_ws
        if self.mixing <= 0 or num_ws < 2:
            return {}
        cutoff = int(torch.randint(1, num_ws, ()))
        if float(torch.rand(())) >= self.mixing:
            return {}
        return {"mix_z": torch.randn_like(z), "cutoff": cutoff}

    def fakes(self, n: int, device, y: Tensor | None) -> Tensor:
        """``n`` fakes at the generator's resolution (style mixing included), for labels ``y``."""
        z = self.noise(n, device)
        return self.generator(z, y, **self.mixing_options(z))

    def d(self, x: Tensor, **condition) -> Tensor:
        """The discriminator's score of ``x`` padded to its resolution, then augmented: reals (the data's size)
        and fakes (the generator's) get the same shifts and cutouts at the same size."""
        return self.discriminator(self.augment(self.discriminator.pad(x)), **condition)

    # --- the phases ----------------------------------------------------------------------------------------------
    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch[self.spec.target]
        y = self.labels(batch)
        with torch.no_grad():
            fake = self.fakes(len(real), real.device, y)
        return StepResult(*self.adversarial_d_step(real, fake, ctx, **self.condition(y)))

    def r1_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        """``gain * gamma / 2 * |grad_x D(x)|^2`` on the real batch, in float32 outside autocast. With
        ``augment=``, as StyleGAN2-ADA: ``D(augment(x))``, its gradient w.r.t. the unaugmented ``x``."""
        real = batch[self.spec.target].detach().float().requires_grad_(True)
        y = self.labels(batch)
        with torch.autocast(device_type=real.device.type, enabled=False):
            logits = self.discriminator.forward(self.augment(self.discriminator.pad(real)), **self.condition(y)).float()
            (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
            penalty = grad.square().flatten(1).sum(1)
            loss = (penalty * (self.r1_gamma / 2) + 0 * logits).mean() * ctx.gain
        return StepResult(loss, {"r1": penalty.mean()})

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch[self.spec.target]
        y = self.labels(batch)
        fake = self.fakes(len(real), real.device, y)
        loss = self.loss.generator_loss(self.d(fake, **self.condition(y)))
        return StepResult(loss, {"loss_g": loss})

    def pl_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        """Path-length regularisation on ``batch / pl_batch_shrink`` fakes, in float32 outside autocast; updates
        ``pl_mean``."""
        real = batch[self.spec.target]
        n = max(1, len(real) // self.pl_batch_shrink)
        y = self.labels(batch, n)
        z = self.noise(n, real.device)
        with torch.autocast(device_type=real.device.type, enabled=False):
            ws = self.generator.styles(z, y, **self.mixing_options(z))
            img = self.generator.synthesis(ws).float()
            noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
            (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
            lengths = grad.square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(lengths.mean(), self.pl_decay)
            self.pl_mean.copy_(pl_mean.detach())
            penalty = (lengths - pl_mean).square()
            loss = (penalty * self.pl_weight + 0 * img[:, 0, 0, 0]).mean() * ctx.gain
        return StepResult(loss, {"pl": penalty.mean(), "pl_mean": pl_mean.detach()})

    # --- sampling --------------------------------------------------------------------------------------------
    label_tensor = ConditionalFamily.label_tensor

    def sample_inputs(self, n: int, generator: torch.Generator | None = None, device=None,
                      source: Batch | None = None, psi: float = 1.0,
                      labels: int | Tensor | Sequence[int] | None = None) -> dict[str, Tensor]:
        """Noise ``z`` from ``generator``; labels ``y`` for a conditional model (balanced over the classes unless
        ``labels`` says otherwise, as CGAN's); ``psi`` (one per sample) when it truncates (< 1)."""
        psi = check_psi(psi)
        inputs = {"z": self.noise(n, generator=generator).to(device)}
        if self.class_conditional:
            inputs["y"] = self.label_tensor(n, labels).to(device)
        elif labels is not None:
            raise ValueError("labels: this StyleGAN2 is not class-conditional (train it with model.conditional=true)")
        if psi != 1.0:
            inputs["psi"] = torch.full((n,), psi, device=device)
        return inputs

    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        """Images at the data's size: the generator's output, centre-cropped. Beside ``z`` (and ``y``, ``psi``),
        ``inputs`` may hold ``z_end`` and ``t`` (one per sample): the image at ``t`` on the straight line in W from
        z's w to z_end's (interpolation strips, ``ppl_domain``); and ``mix_z`` and ``cutoff`` (one per sample):
        the styles from index ``cutoff`` on are mix_z's (style mixing)."""
        net = net or self.generator
        psi = inputs.get("psi")
        if psi is not None and bool(((psi < 0) | (psi > 1)).any()):
            raise ValueError(f"psi (truncation) must be in [0, 1]; got values from {psi.min().item()} to "
                             f"{psi.max().item()}")
        y = inputs.get("y") if self.class_conditional else None
        ws = net.styles(inputs["z"], y, psi, inputs.get("mix_z"), inputs.get("cutoff"))
        if "z_end" in inputs:
            end = net.mapping(inputs["z_end"], y, psi=psi)
            ws = ws.lerp(end, inputs["t"].to(ws.dtype).view(-1, 1, 1))
        return self.crop(net.synthesis(ws))

    def crop(self, images: Tensor) -> Tensor:
        """The centre of ``images`` at the data's size (the inverse of the discriminator's padding)."""
        h, w = self.data_shape[1:]
        top, left = (images.shape[-2] - h) // 2, (images.shape[-1] - w) // 2
        return images[..., top : top + h, left : left + w]

    def grid_inputs(self, n: int, nrow: int = 8, generator: torch.Generator | None = None,
                    class_names: Sequence[str] | None = None, source: Batch | None = None) -> GridInputs:
        """One row per class for a conditional model (as CGAN's), else ``n`` samples."""
        if self.class_conditional:
            return ConditionalFamily.grid_inputs(self, n, nrow, generator, class_names)
        return super().grid_inputs(n, nrow, generator, class_names, source)


def _check_options(**options) -> None:
    """The family's numeric options, or a one-line ``ValueError``."""
    rules = {
        "latent_dim": (lambda v: is_int(v) and v > 0, "a positive integer"),
        "r1_gamma": (lambda v: is_number(v) and v >= 0, "a number >= 0"),
        "r1_interval": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
        "pl_weight": (lambda v: is_number(v) and v >= 0, "a number >= 0"),
        "pl_interval": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
        "pl_batch_shrink": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
        "pl_decay": (lambda v: is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
        "mixing": (lambda v: is_number(v) and 0 <= v <= 1, "a probability in [0, 1]"),
    }
    for name, value in options.items():
        ok, description = rules[name]
        if not ok(value):
            raise ValueError(f"{name} must be {description}; got {value!r}")
