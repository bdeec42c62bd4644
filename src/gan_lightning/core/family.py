"""The seam between the training schedule (``core.module.GANModule``, which knows nothing model-specific) and a
model: a *family* says which networks each player trains, in which phases, on what data, and how it samples.

A family declares:

- ``phases()``: its schedule, a list of ``Phase``s run in order on each batch: which player's optimizer steps,
  which method computes the loss, whether on each of the ``n_critic`` batches of an iteration or once per
  iteration, how often (lazy regularisation) and with what gain, and when it is active (a warm-up). The default is
  Algorithm 1 of Goodfellow et al. (2014) and of the WGAN papers: ``n_critic`` discriminator steps, each on a
  fresh batch, then one generator step;
- ``networks_of(player)``: the modules each player's optimizer updates (a player may own several networks:
  CycleGAN's two generators, InfoGAN's Q head);
- capabilities that generic code reads instead of testing types: ``class_conditional`` (labels in, one grid row
  per class), ``has_codes`` (latent codes to recover), ``paired`` / ``unpaired`` (generates from a data
  ``source`` with or without an aligned target), and ``needs_source`` (sampling needs held-out data);
- ``sample_inputs(n, generator, device, source=None, **options)`` / ``generate``: how to draw samples (noise,
  labels, codes, or held-out inputs from ``source``), ``grid_inputs`` for the sample grids and ``visuals`` for
  what a grid shows (the samples, or input | output | target panels).

A family is built from the data's ``DataSpec`` (``spec``); its losses and regularisers are ``nn.Module``s, so any
state they keep is checkpointed and moved to the device with it. See docs/architecture.md ("Adding a family").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from ..augment import Augment
from ..data.spec import DataSpec
from ..losses import GANLoss

Batch = dict[str, Tensor]
PLAYERS = ("generator", "discriminator")  # optimizer order (checkpoints store optimizer states in this order)


@dataclass(frozen=True)
class Phase:
    """One step of a family's schedule.

    Args:
        name: short name, logged with the phase's values (``D``, ``G``, ``Dreg``, ``warmup``...).
        player: ``generator`` or ``discriminator``: whose networks get gradients and whose optimizer steps.
        step: the name of the family method ``fn(batch, ctx) -> StepResult`` that computes the loss. A result
            whose ``loss`` is None takes no optimizer step.
        per: ``batch``: on each of the ``n_critic`` batches of an iteration (the discriminator's k steps);
            ``iteration``: once, on the iteration's last batch (the generator's step).
        interval: run on every ``interval``-th occasion only (lazy regularisation: R1 every 16 discriminator
            steps). Occasions are counted from the iteration counters, so resuming keeps the rhythm.
        gain: ``ctx.gain`` while the phase runs (lazy regularisation multiplies its term by the interval).
        lazy: a lazy regulariser of ``player``: its optimizer's learning rate is multiplied by
            ``c = interval / (interval + 1)`` and its betas raised to ``c`` (Karras et al. 2020, appendix B).
        active: ``active(ctx)`` -> False skips the phase (a warm-up before the discriminator starts: ``Before(n)``,
            ``From(n)``). It must be picklable (DDP spawns processes with a copy of the module): an object or a
            bound method, not a local function.
    """

    name: str
    player: str
    step: str
    per: str = "batch"
    interval: int = 1
    gain: float = 1.0
    lazy: bool = False
    active: Callable[[StepContext], bool] | None = None

    def __post_init__(self):
        if self.player not in PLAYERS:
            raise ValueError(f"phase {self.name}: player must be one of {PLAYERS}; got {self.player!r}")
        if self.per not in ("batch", "iteration"):
            raise ValueError(f"phase {self.name}: per must be 'batch' or 'iteration'; got {self.per!r}")
        if int(self.interval) < 1:
            raise ValueError(f"phase {self.name}: interval must be >= 1; got {self.interval}")


@dataclass(frozen=True)
class Before:
    """``Phase.active`` for a warm-up: true during the first ``iteration`` iterations. (Phases are pickled with
    the module by DDP's spawned processes, so their conditions are objects like this, not local functions.)"""

    iteration: int

    def __call__(self, ctx: StepContext) -> bool:
        return ctx.iteration < self.iteration


@dataclass(frozen=True)
class From:
    """``Phase.active`` after a warm-up: true from iteration ``iteration`` on."""

    iteration: int

    def __call__(self, ctx: StepContext) -> bool:
        return ctx.iteration >= self.iteration


@dataclass
class StepContext:
    """What the schedule tells a family about the step being taken."""

    iteration: int  # generator iterations completed before this step
    scaler: Any = None  # the GradScaler of 16-mixed precision, or None
    batch_in_iteration: int = 0  # which of the iteration's n_critic batches this is (0-based)
    n_critic: int = 1
    phase: Phase | None = None  # the phase being run
    scratch: dict[str, Any] = field(default_factory=dict)  # this batch's values a phase leaves for later phases
    logging: bool = True  # this iteration logs: values that are only logged need not be computed otherwise

    @property
    def grad_scale(self) -> float | None:
        return None if self.scaler is None or not self.scaler.is_enabled() else float(self.scaler.get_scale())

    @property
    def gain(self) -> float:
        return 1.0 if self.phase is None else float(self.phase.gain)

    def occasion(self, phase: Phase) -> int:
        """How many times ``phase`` was due before this one (0-based): batches so far for ``per="batch"``,
        iterations for ``per="iteration"``."""
        if phase.per == "batch":
            return self.iteration * self.n_critic + self.batch_in_iteration
        return self.iteration


class _Augmented:
    """``family.d`` as a callable the loss's penalties take in place of the discriminator (not a module: the
    family is not registered twice)."""

    def __init__(self, family: GANFamily):
        self.family = family

    def __call__(self, x: Tensor, *args, **condition) -> Tensor:
        return self.family.d(x, *args, **condition)


@dataclass
class StepResult:
    """A player's loss for one step (None: no optimizer step) and the scalars to log with it."""

    loss: Tensor | None
    logs: dict[str, Tensor] = field(default_factory=dict)


class GridInputs(NamedTuple):
    """What a sample grid draws: the generator's inputs, images per row, and a caption (or None) saying what the
    rows and columns are."""

    inputs: dict[str, Tensor]
    nrow: int
    caption: str | None = None


class GANFamily(nn.Module):
    """Base class of the GAN families. Subclasses set ``self.generator`` and ``self.discriminator`` (the module
    the EMA tracks and the one the default constraint applies to) and implement the phases' step methods."""

    # Capabilities: what generic code (sampling, grids, metrics, generate.py) may rely on.
    class_conditional = False  # sample_inputs takes labels=; generate follows class labels; one grid row per class
    has_codes = False  # latent codes a network recovers (InfoGAN): sample_inputs takes categorical=
    paired = False  # generates spec.target from spec.source, aligned pairs: paired metrics against the target
    unpaired = False  # generates from spec.source without aligned targets (unpaired translation)
    inpainting = False  # fills the holes of spec.source (its last channel the mask): hole metrics, baselines
    log_keys = ("loss_d", "loss_g")  # the values shown in the progress bar
    augmentable = False  # scores its images through ``d`` / ``augment``: takes ``augment=`` (on image data)
    style_based = False  # a W space (StyleGAN2): generate takes z_end/t (interpolation in W) and mix_z/cutoff

    def __init__(self, loss: GANLoss, spec: DataSpec):
        super().__init__()
        self.loss = loss
        self.spec = spec
        self.data_shape = spec.shape
        self.num_classes = spec.num_classes
        self.augment = Augment()  # the discriminator's input augmentation (none; ``set_augment``)

    def set_augment(self, augment: Augment) -> None:
        """Augment every image the discriminator scores (``augment=diffaugment`` / ``ada``). A ``ValueError`` for
        a family that doesn't route its discriminator's inputs through ``augment``, or for data that are not
        images."""
        if augment.kind != "none":
            if not self.augmentable:
                raise ValueError(f"augment={augment.kind}: {type(self).__name__} does not support augmentation "
                                 "(only the image families gan/dcgan, cgan, acgan, infogan and stylegan2 do)")
            if len(self.data_shape) != 3:
                raise ValueError(f"augment={augment.kind} augments images; the data are {len(self.data_shape)}-D "
                                 f"points of shape {tuple(self.data_shape)}")
        self.augment = augment

    def prepare(self, datamodule) -> None:
        """Called once when training starts, before the first step and before a checkpoint is restored: what a
        family fits on the data itself (SelfConditionedGAN's clusters). Nothing by default."""

    @property
    def needs_source(self) -> bool:
        """Sampling reads held-out data (``sample_inputs(..., source=...)``)."""
        return self.paired or self.unpaired

    # --- the schedule ----------------------------------------------------------------------------------------
    def phases(self) -> list[Phase]:
        """``n_critic`` discriminator steps, then one generator step (each on its own noise)."""
        return [Phase("D", "discriminator", "discriminator_step", per="batch"),
                Phase("G", "generator", "generator_step", per="iteration")]

    @property
    def players(self) -> tuple[str, ...]:
        """The players that take optimizer steps, in optimizer order."""
        used = {phase.player for phase in self.phases()}
        return tuple(p for p in PLAYERS if p in used)

    def after_step(self, phase: Phase) -> None:
        """After an optimizer step of ``phase``: the loss's constraint on the discriminator (weight clipping)."""
        if phase.player == "discriminator":
            self.loss.after_discriminator_step(self.discriminator)

    def per_rank_buffers(self) -> dict[str, Tensor]:
        """Buffers (by their name in the family's state_dict) that each DDP process keeps for itself instead of
        sharing (an image pool of its own fakes): not averaged across ranks, and checkpoints store every rank's."""
        return {}

    # --- what is trained -------------------------------------------------------------------------------------
    def networks_of(self, player: str) -> list[nn.Module]:
        return [{"generator": self.generator, "discriminator": self.discriminator}[player]]

    def parameters_of(self, player: str) -> list[nn.Parameter]:
        return [p for net in self.networks_of(player) for p in net.parameters()]

    # --- how each player is scored ---------------------------------------------------------------------------
    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        raise NotImplementedError

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        raise NotImplementedError

    def d(self, x: Tensor, **condition) -> Tensor:
        """The discriminator's score of ``x`` augmented (``self.augment``: fresh randomness on every call; ``x``
        itself without augmentation). Augmenting families score every real and fake through this, in the
        discriminator's steps and the generator's."""
        return self.discriminator(self.augment(x), **condition)

    def observe_reals(self, d_real: Tensor, ctx: StepContext) -> None:
        """ADA's overfitting heuristic: feed the discriminator's scores of a (augmented) real batch to
        ``augment``, which adjusts its probability on schedule. The sign is taken about the loss's real/fake
        boundary: 0 for logits and critics, 0.5 for LSGAN's 0-1 coding."""
        self.augment.observe(d_real, ctx.iteration, ctx.batch_in_iteration == 0,
                             boundary=0.5 if getattr(self.loss, "name", "") == "lsgan" else 0.0)

    def adversarial_d_step(self, real: Tensor, fake: Tensor, ctx: StepContext, **condition
                           ) -> tuple[Tensor, dict[str, Tensor]]:
        """The discriminator's loss on ``real`` against (detached) ``fake`` with the loss's regulariser, and what
        every family logs. ``condition`` (class labels, a translation's input) goes to the discriminator and its
        penalty. Both batches are scored through ``d`` (augmented, where the family is)."""
        d_real, d_fake = self.d(real, **condition), self.d(fake, **condition)
        self.observe_reals(d_real, ctx)
        loss = self.loss.discriminator_loss(d_real, d_fake)
        logs = self.d_logs(loss, d_real, d_fake, ctx.logging)
        return self.add_regularizer(loss, logs, real, fake, ctx, **condition), logs

    def d_logs(self, loss: Tensor, d_real: Tensor, d_fake: Tensor, logging: bool = True) -> dict[str, Tensor]:
        """``loss_d``, the discriminator's mean score of the real and the fake batch, and ADA's ``p`` and ``r_t``
        (with ``augment=ada``); only ``loss_d`` on an iteration that does not log (``StepContext.logging``)."""
        if not logging:
            return {"loss_d": loss}
        return {"loss_d": loss, "D(x)": self.loss.score(d_real).mean(), "D(G(z))": self.loss.score(d_fake).mean(),
                **self.augment.logs()}

    def add_regularizer(self, loss: Tensor, logs: dict, real: Tensor, fake: Tensor, ctx: StepContext,
                        **condition) -> Tensor:
        """``loss`` plus the loss's regulariser of the discriminator (the gradient penalty; logged as ``reg_d``).
        With augmentation the penalty is of ``D(augment(x))`` as ADA's R1 (its gradient w.r.t. the unaugmented
        ``x``, through the augmentation)."""
        net = self.discriminator if self.augment.kind == "none" else _Augmented(self)
        reg = self.loss.regularizer(net, real, fake, grad_scale=ctx.grad_scale, **condition)
        if reg is None:
            return loss
        logs["reg_d"] = reg
        return loss + reg

    # --- sampling --------------------------------------------------------------------------------------------
    def noise(self, n: int, device=None, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, device=device, generator=generator)

    def sample_inputs(self, n: int, generator: torch.Generator | None = None, device=None,
                      source: Batch | None = None, **options) -> dict[str, Tensor]:
        """The generator's inputs for ``n`` samples: drawn with ``generator``; for a family that
        ``needs_source``, read from the first ``n`` rows of ``source`` (a held-out batch of the data).
        ``options``: the family's sampling choices (``labels=``, ``categorical=``, ...)."""
        raise NotImplementedError

    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        raise NotImplementedError

    def grid_inputs(self, n: int, nrow: int = 8, generator: torch.Generator | None = None,
                    class_names: Sequence[str] | None = None, source: Batch | None = None) -> GridInputs:
        """The fixed inputs of the sample grids and their layout. By default ``n`` draws of ``sample_inputs``,
        ``nrow`` a row, no caption; conditional families lay out one row per class (named from ``class_names``),
        InfoGAN its latent traversals, translation families ``n`` held-out inputs from ``source``."""
        return GridInputs(self.sample_inputs(n, generator=generator, source=source), nrow)

    def visuals(self, inputs: dict[str, Tensor], samples: Tensor) -> dict[str, Tensor]:
        """What a grid shows for ``inputs`` and the samples generated from them, as named panels of images in
        [-1, 1] with the samples' batch size: by default the samples alone; a translation family shows
        ``{"input", "output", "target"}`` side by side."""
        return {"samples": samples}
