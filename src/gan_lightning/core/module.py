"""The training schedule: one LightningModule for every GAN family.

An *iteration* is ``n_critic`` batches. On each batch the module runs the family's phases (``family.phases()``)
in order: a phase ``per="batch"`` on every batch, a phase ``per="iteration"`` on the iteration's last batch, each
on every ``interval``-th occasion and while ``active``. The default phases are Algorithm 1 of Goodfellow et al.
(2014) and of the WGAN papers: k discriminator updates, each on a fresh real batch, then one generator update.

The iteration (``self.iteration``) is the only unit a user sets and the code counts: ``max_iterations`` (this
module stops the trainer), sample, metric and checkpoint intervals, resume. Lightning's ``global_step`` counts
optimizer steps, which phases may add (lazy regularisation) or skip (a warm-up); nothing here depends on it.

Nothing here is model-specific: the family (``core.family``) says which networks each player owns, which phases
it runs and how a step's loss is computed.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger
import torch
from torch import Tensor, nn

from ..errors import TrainingDiverged
from .family import GANFamily, Phase, StepContext, StepResult

UNBOUNDED_STEPS = 2**62
"""The ``max_steps`` to give the Trainer: the module stops it at ``max_iterations``, but Lightning restores a
data loader's position in an unfinished epoch only when it sees iteration-based training (``max_steps != -1``)."""


class GANModule(pl.LightningModule):
    """Alternating GAN training with manual optimization and an EMA of the generator.

    Args:
        family: the networks and losses (a ``GANFamily``).
        optimizer: per player (``generator``, ``discriminator``), a factory taking parameters (Hydra ``_partial_``).
        n_critic: batches per iteration: discriminator steps per generator step in the default phases.
        scheduler: optional per-player LR scheduler factories taking the optimizer, stepped once per iteration.
        ema_decay: decay of the generator's exponential moving average; ``None`` or 0 turns it off.
        ema_warmup: use ``min(decay, (1 + i) / (10 + i))`` at iteration ``i`` so early averages forget the init.
        grad_clip: clip each player's gradient norm to this value (after unscaling under 16-mixed); ``None``: off.
        log_every_n_iterations: how often losses, D outputs, gradient norms and learning rates are logged.
        stop_on_nonfinite: stop with ``TrainingDiverged`` when a loss is NaN or infinite, before its step is
            taken (so weights and checkpoints stay good). Under 16-mixed the GradScaler handles such steps itself
            (it skips them and lowers its scale), so the check is left to it there.
        compile: ``torch.compile`` the training networks (generator, discriminator and any other network the
            family trains) in place: ``True`` for the default mode or a mode name (``"reduce-overhead"`` adds CUDA
            graphs). Parameter names, and so checkpoints, are those of the uncompiled networks.
        channels_last: keep image networks and real batches in channels-last memory format (faster convolutions
            on tensor-core GPUs under mixed precision).
        max_iterations: stop the trainer when this many iterations are done (``None``: the trainer decides).
        config: plain dict saved in checkpoints so that ``generate.py`` can rebuild the family.
    """

    def __init__(
        self,
        family: GANFamily,
        optimizer: Mapping[str, Callable[..., torch.optim.Optimizer]],
        n_critic: int = 1,
        scheduler: Mapping[str, Callable[..., Any] | None] | None = None,
        ema_decay: float | None = 0.999,
        ema_warmup: bool = True,
        grad_clip: float | None = None,
        log_every_n_iterations: int = 10,
        stop_on_nonfinite: bool = True,
        compile: bool | str = False,
        channels_last: bool = False,
        max_iterations: int | None = None,
        config: dict | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.family = family
        self.optimizer_factories = dict(optimizer)
        self.scheduler_factories = dict(scheduler or {})
        self.n_critic = int(n_critic)
        self.ema_decay = ema_decay or 0.0
        self.ema_warmup = ema_warmup
        self.grad_clip = grad_clip
        self.log_every_n_iterations = max(1, int(log_every_n_iterations))
        self.stop_on_nonfinite = stop_on_nonfinite
        self.compile_mode = compile
        self.channels_last = channels_last
        self.max_iterations = max_iterations
        self.config = config or {}
        self.phases: list[Phase] = family.phases()
        self.generator_ema = copy.deepcopy(family.generator).requires_grad_(False) if self.ema_decay else None
        self.iteration = 0  # generator iterations completed
        self._batch_in_iteration = 0  # batches of the current iteration already done
        self._player_of: dict[int, str] = {}  # id(torch optimizer) -> player
        self._optimizer_index: dict[str, int] = {}  # player -> index in self.optimizers()
        self._grad_norms: dict[str, Tensor] = {}
        self._logs: dict[str, Tensor] = {}  # this iteration's values to log
        self._rng_restored = False
        self.rollbacks = 0  # times training went back to the last checkpoint after diverging

    # --- optimizers ------------------------------------------------------------------------------------------
    def lazy_ratio(self, player: str) -> float:
        """``c = r / (r + 1)`` for a player with a lazy regularisation phase of interval ``r`` (1: none): its
        learning rate is multiplied by ``c`` and its betas raised to ``c``, so that the regulariser's extra steps
        leave the optimizer's effective step size and momentum as they were (Karras et al. 2020)."""
        ratio = 1.0
        for phase in self.phases:
            if phase.lazy and phase.player == player:
                ratio *= phase.interval / (phase.interval + 1)
        return ratio

    def configure_optimizers(self):
        optimizers, schedulers = [], []
        for player in self.family.players:
            opt = self.optimizer_factories[player](self.family.parameters_of(player))
            ratio = self.lazy_ratio(player)
            if ratio != 1.0:  # on the built optimizer: whatever its lr and betas, defaults included
                for group in opt.param_groups:
                    group["lr"] *= ratio
                    if "betas" in group:
                        group["betas"] = tuple(b**ratio for b in group["betas"])
            self._player_of[id(opt)] = player
            self._optimizer_index[player] = len(optimizers)
            optimizers.append(opt)
            factory = self.scheduler_factories.get(player)
            if factory is not None:
                schedulers.append({"scheduler": factory(opt), "interval": "step", "name": f"lr_{player}"})
        return optimizers, schedulers

    def _optimizer(self, player: str):
        optimizers = self.optimizers(use_pl_optimizer=True)
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        return optimizers[self._optimizer_index[player]]

    # --- speed options ---------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        trainer = self._trainer  # (None when setup is called by hand, outside a Trainer)
        if stage == "fit" and trainer is not None and trainer.datamodule is not None:
            self.family.prepare(trainer.datamodule)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)  # only 4-D parameters change; MLPs are unaffected
        if self.compile_mode and not getattr(self, "_compiled", False):
            mode = None if self.compile_mode in (True, "default") else self.compile_mode
            nets = {id(n): n for player in self.family.players for n in self.family.networks_of(player)}
            for net in nets.values():  # the trained networks; the EMA copy is for sampling only
                net.compile(mode=mode)
            self._compiled = True

    def _format(self, batch):
        if self.channels_last and isinstance(batch, dict):
            batch = {k: v.contiguous(memory_format=torch.channels_last) if getattr(v, "ndim", 0) == 4 else v
                     for k, v in batch.items()}
        return batch

    # --- the schedule ----------------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> None:
        batch = self._format(batch)
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if self._batch_in_iteration == 0:
            self._logs = {}
        last = self._batch_in_iteration == self.n_critic - 1
        ctx = StepContext(iteration=self.iteration, scaler=scaler, batch_in_iteration=self._batch_in_iteration,
                          n_critic=self.n_critic)
        logging = self._logging_now(upcoming=True)
        for phase in self.phases:
            if phase.per == "iteration" and not last:
                continue
            if phase.interval > 1 and ctx.occasion(phase) % phase.interval:
                continue
            ctx.phase = phase
            if phase.active is not None and not phase.active(ctx):
                continue
            result = self._optimize(phase, batch, ctx)
            if logging:  # (later phases' values of the same name win: the iteration's last D step, as before)
                self._logs.update({k: v.detach() if isinstance(v, Tensor) else v for k, v in result.logs.items()})
        if not last:
            self._batch_in_iteration += 1
            return
        self._batch_in_iteration = 0
        self.iteration += 1
        self._average_buffers_across_ranks()
        self._update_ema()
        for sched in self._schedulers():
            sched.step()
        if self._logging_now():
            self._log_iteration()
        if self.max_iterations is not None and self.iteration >= self.max_iterations:
            self.trainer.should_stop = True

    def _optimize(self, phase: Phase, batch, ctx: StepContext) -> StepResult:
        optimizer = self._optimizer(phase.player)
        with self.toggled_optimizer(optimizer):
            result = getattr(self.family, phase.step)(batch, ctx)
            if result.loss is None:
                return result
            if self.stop_on_nonfinite and ctx.scaler is None:
                self._check_finite(phase.player, result.loss)
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(result.loss)
            optimizer.step()
        self.family.after_step(phase)
        return result

    def _check_finite(self, player: str, loss: Tensor) -> None:
        # The decision is shared by all ranks, so that under DDP they stop together instead of deadlocking.
        finite = self.trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss.detach())), all=True)
        if not finite:
            raise TrainingDiverged(
                f"training diverged: the {player} loss is {loss.item()} at iteration {self.iteration + 1}; "
                "the weights and checkpoints from before this step are untouched: resume from the last checkpoint "
                "with a lower learning rate (optim.*.lr), gradient clipping (module.grad_clip) or another loss"
            )

    def on_before_optimizer_step(self, optimizer) -> None:
        # Called by Lightning inside optimizer.step(), after the GradScaler has unscaled the gradients, so the
        # norm and the clipping see true gradient values under 16-mixed too.
        if self.grad_clip is None and not self._logging_now(upcoming=True):
            return
        player = self._player_of.get(id(optimizer))
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        self._grad_norms[player] = norm.detach()

    def _logging_now(self, upcoming: bool = False) -> bool:
        # upcoming: asked during an iteration's steps, before self.iteration counts it.
        return (self.iteration + int(upcoming)) % self.log_every_n_iterations == 0

    def _log_iteration(self) -> None:
        values: dict[str, Tensor | float] = dict(self._logs)
        for player, norm in self._grad_norms.items():
            values[f"grad_norm_{player[0]}"] = norm
        for player in self.family.players:  # lr_g, lr_d; further parameter groups as lr_g1, lr_g2, ...
            for i, group in enumerate(self._optimizer(player).param_groups):
                values[f"lr_{player[0]}{i or ''}"] = group["lr"]
        values["iteration"] = float(self.iteration)
        # Straight to the loggers, with the iteration as the step: self.log would re-send these values on every
        # batch until the next call, and count steps in batches.
        if self.trainer.is_global_zero:
            metrics = {f"train/{k}": float(v) for k, v in values.items()}
            for logger in self.loggers:
                logger.log_metrics(metrics, step=self.iteration)
                logger.save()
        shown = {k: values[k] for k in self.family.log_keys if k in values}
        if shown:
            self.log_dict(shown, prog_bar=True, logger=False)

    def _schedulers(self) -> list:
        scheds = self.lr_schedulers()
        if scheds is None:
            return []
        return scheds if isinstance(scheds, list) else [scheds]

    @torch.no_grad()
    def _average_buffers_across_ranks(self) -> None:
        """Under DDP each rank updates its BatchNorm running statistics from its own batches; average them once
        per iteration so that every rank (and the EMA copy, checkpoints and samples) holds the same values."""
        if self.trainer.world_size == 1:
            return
        own = {id(b) for b in self.family.per_rank_buffers().values()}
        buffers = [b for b in self.family.buffers() if b.is_floating_point() and id(b) not in own]
        if buffers:
            flat = self.trainer.strategy.reduce(torch.cat([b.flatten() for b in buffers]), reduce_op="mean")
            torch._foreach_copy_(buffers, [c.view_as(b) for c, b in zip(flat.split([b.numel() for b in buffers]), buffers)])

    # --- EMA -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.generator_ema is None:
            return
        beta = self.ema_decay
        if self.ema_warmup:
            beta = min(beta, (1 + self.iteration) / (10 + self.iteration))
        ema_params = list(self.generator_ema.parameters())
        params = [p.detach() for p in self.family.generator.parameters()]
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for b_ema, b in zip(self.generator_ema.buffers(), self.family.generator.buffers()):
            b_ema.copy_(b)

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator used for samples and evaluation: the EMA copy where there is one."""
        return self.generator_ema if self.generator_ema is not None else self.family.generator

    @torch.no_grad()
    def generate(self, inputs: dict[str, Tensor], use_ema: bool = True) -> Tensor:
        """Samples for ``inputs`` (see ``family.sample_inputs``), in eval mode, outside autocast."""
        net = self.sampling_generator if use_ema else self.family.generator
        was_training = net.training
        net.eval()
        try:
            return self.family.generate(inputs, net).float()
        finally:
            net.train(was_training)

    # --- randomness and checkpoints ----------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        # seed_everything gives every rank the same seed; the ranks must draw different noise (reproducibly).
        if self.trainer.world_size > 1 and not self._rng_restored:
            seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
            torch.manual_seed(seed + 1_000_003 * self.global_rank)

    def _rng_states(self) -> dict[str, list[Tensor]]:
        """This process's RNG states, gathered from every rank (called on all ranks when saving)."""
        states = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.trainer is None or self.trainer.world_size == 1:
            return {k: [v] for k, v in states.items()}
        return {k: list(self.all_gather(v.to(self.device)).cpu().unbind(0)) for k, v in states.items()}

    def _per_rank_buffers(self) -> dict[str, list[Tensor]]:
        """``family.per_rank_buffers()`` of every rank (called on all ranks when saving), by state_dict name."""
        own = self.family.per_rank_buffers()
        if not own or self.trainer is None or self.trainer.world_size == 1:
            return {}
        return {f"family.{name}": list(self.all_gather(buf).cpu().unbind(0)) for name, buf in own.items()}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gan_lightning"] = {
            "iteration": self.iteration,
            "d_steps": self._batch_in_iteration,  # batches of the iteration in progress (the name predates phases)
            "config": self.config,
            "rng": self._rng_states(),  # one state per rank
            "per_rank": self._per_rank_buffers(),  # state each rank keeps for itself (CycleGAN's image pools)
            "wandb_run_id": next((lg.version for lg in self.loggers if isinstance(lg, WandbLogger)), None),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("gan_lightning", {})
        self.iteration = int(state.get("iteration", 0))
        self._batch_in_iteration = int(state.get("d_steps", 0))
        rng = state.get("rng", {})
        rank = self.global_rank
        for name, values in state.get("per_rank", {}).items():  # this rank's own, loaded with the state_dict
            if name in checkpoint.get("state_dict", {}):
                checkpoint["state_dict"][name] = values[rank % len(values)]
        # (clone: the saved states were gathered from the ranks, so each is a view into one storage, and
        # set_rng_state misreads a view at an offset: rank 1 failed with "Invalid mt19937 state" or crashed)
        if rng.get("torch"):
            torch.set_rng_state(rng["torch"][rank % len(rng["torch"])].cpu().clone())
            self._rng_restored = True
        if rng.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"][rank % len(rng["cuda"])].cpu().clone(), self.device)
        if self.rollbacks:  # back from a divergence: the same state, but other noise from here on (CPU and CUDA)
            torch.manual_seed(int(torch.randint(2**62, (1,))) + self.rollbacks)
