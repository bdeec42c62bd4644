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
import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.plugins.precision import MixedPrecision, Precision
from pytorch_lightning.strategies import DDPStrategy, SingleDeviceStrategy
from pytorch_lightning.utilities.model_helpers import is_overridden
import torch
from torch import Tensor, nn

from ..errors import TrainingDiverged
from .family import GANFamily, Phase, StepContext, StepResult

UNBOUNDED_STEPS = 2**62
"""The ``max_steps`` to give the Trainer: the module stops it at ``max_iterations``, but Lightning restores a
data loader's position in an unfinished epoch only when it sees iteration-based training (``max_steps != -1``)."""

STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
"""The hooks Lightning calls around each backward and optimizer step: where no callback (and no subclass) uses
them, the module takes its steps directly (see ``GANModule.direct_steps``)."""

MAX_PENDING_LOSSES = 1024
"""Losses kept for the finiteness check before it runs anyway (when logging is rare)."""


class _Player:
    """What a player's steps need, looked up once per fit: its optimizer (Lightning's wrapper and the torch one)
    and the parameters of the other players' optimizers, which its steps hold frozen."""

    def __init__(self, lightning_optimizer, others: list[Tensor]):
        self.lightning = lightning_optimizer
        self.optimizer = lightning_optimizer.optimizer
        self.others = others


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
        stop_on_nonfinite: stop with ``TrainingDiverged`` when a loss is NaN or infinite. The losses are checked
            without a host sync per step: together, on the logging iterations and before every checkpoint is
            written (``check_finite``), so no checkpoint holds weights a non-finite loss reached. Under 16-mixed
            the GradScaler handles such steps itself (it skips them and lowers its scale), so the check is left to
            it there.
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
        self.progress_values: dict[str, float] = {}  # the last logged values of family.log_keys (progress bar)
        self._pending: list[tuple[str, int, Tensor]] = []  # (player, iteration, loss) not yet checked finite
        self._ctx = StepContext(iteration=0, n_critic=self.n_critic)  # reused by every batch's phases
        self._batch_phases = [p for p in self.phases if p.per == "batch"]  # the phases of a batch before the last
        self._players: dict[str, _Player] = {}  # looked up at the start of each fit (on_train_start)
        self._ema_tensors: tuple[list[Tensor], ...] | None = None
        self._sched_list: list = []
        self.direct_steps = False  # steps without Lightning's per-step hooks (on_train_start decides)
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

    def __setattr__(self, name: str, value: Any) -> None:
        # What changes every step and is never a parameter, buffer or submodule skips nn.Module's checks for
        # those (Lightning sets ``_current_fx_name`` around every hook it calls, ten times a step).
        if name in _PLAIN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _format(self, batch):
        if self.channels_last and isinstance(batch, dict):
            batch = {k: v.contiguous(memory_format=torch.channels_last) if getattr(v, "ndim", 0) == 4 else v
                     for k, v in batch.items()}
        return batch

    # --- the schedule ----------------------------------------------------------------------------------------
    def on_train_start(self) -> None:
        # Looked up once per fit (a rollback builds a new Trainer, with new optimizer wrappers), after the move to
        # the device and the checkpoint's restore.
        optimizers = self.optimizers(use_pl_optimizer=True)
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        params = {player: [p for g in optimizers[i].param_groups for p in g["params"]]
                  for player, i in self._optimizer_index.items()}
        self._players = {}
        for player, own in params.items():
            mine = {id(p) for p in own}
            others = {id(p): p for other, ps in params.items() if other != player for p in ps if id(p) not in mine}
            self._players[player] = _Player(optimizers[self._optimizer_index[player]], list(others.values()))
        self._sched_list = self._schedulers()
        self._ema_tensors = None
        self.direct_steps = self._can_step_directly()

    def _can_step_directly(self) -> bool:
        """Whether the steps may skip Lightning's per-step machinery (``manual_backward`` and the optimizer
        wrapper): their only work beyond ``loss.backward()`` and ``optimizer.step()`` is calling ``STEP_HOOKS``,
        which nothing here uses, and the GradScaler, which is not there. So: 32-bit or bf16 precision, one device
        or plain DDP, and no callback or subclass overriding those hooks or ``backward``. The steps are then the
        same, with the step counts Lightning keeps (``global_step``)."""
        trainer = self.trainer
        precision, strategy = trainer.precision_plugin, trainer.strategy
        if type(precision) not in (Precision, MixedPrecision) or getattr(precision, "scaler", None) is not None:
            return False
        if not (type(strategy) is SingleDeviceStrategy
                or (type(strategy) is DDPStrategy and getattr(strategy, "_model_averager", None) is None)):
            return False
        if is_overridden("backward", self, pl.LightningModule):
            return False
        own = {"on_before_optimizer_step": GANModule}  # the module's own hook is called directly
        for hook in STEP_HOOKS:
            if is_overridden(hook, self, own.get(hook, pl.LightningModule)):
                return False
            if any(is_overridden(hook, cb, pl.Callback) for cb in trainer.callbacks):
                return False
        return True

    def training_step(self, batch, batch_idx: int) -> None:
        batch = self._format(batch)
        last = self._batch_in_iteration == self.n_critic - 1
        if self._batch_in_iteration == 0:
            self._logs = {}
        logging = self._logging_now(upcoming=True)
        ctx = self._ctx
        ctx.iteration, ctx.batch_in_iteration = self.iteration, self._batch_in_iteration
        ctx.scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        ctx.logging, ctx.phase = logging, None
        ctx.scratch.clear()
        for phase in self.phases if last else self._batch_phases:
            if phase.interval > 1 and ctx.occasion(phase) % phase.interval:
                continue
            ctx.phase = phase
            if phase.active is not None and not phase.active(ctx):
                continue
            result = self._optimize(phase, batch, ctx)
            if logging:  # (later phases' values of the same name win: the iteration's last D step, as before)
                self._logs.update({k: v.detach() if isinstance(v, Tensor) else v for k, v in result.logs.items()})
        ctx.scratch.clear()
        if not last:
            self._batch_in_iteration += 1
            return
        self._batch_in_iteration = 0
        self.iteration += 1
        self._average_buffers_across_ranks()
        self._update_ema()
        for sched in self._sched_list:
            sched.step()
        if self._logging_now():
            self._log_iteration()
        if self.max_iterations is not None and self.iteration >= self.max_iterations:
            self.trainer.should_stop = True

    def _optimize(self, phase: Phase, batch, ctx: StepContext) -> StepResult:
        player = self._players.get(phase.player)
        if player is None or not self.direct_steps:
            return self._optimize_through_lightning(phase, batch, ctx)
        frozen = [p for p in player.others if p.requires_grad]  # what toggle_optimizer does, without its hooks
        for p in frozen:
            p.requires_grad_(False)
        try:
            result = getattr(self.family, phase.step)(batch, ctx)
            if result.loss is None:
                return result
            self._watch(phase.player, result.loss, ctx)
            optimizer, strategy = player.optimizer, self.trainer.strategy
            optimizer.zero_grad(set_to_none=True)
            strategy.pre_backward(result.loss)  # (DDP prepares its reducer here)
            result.loss.backward()
            strategy.post_backward(result.loss)
            player.lightning._on_before_step()  # Lightning's step count (global_step)
            self._before_step(phase.player, optimizer)
            optimizer.step()
            player.lightning._on_after_step()
        finally:
            for p in frozen:
                p.requires_grad_(True)
        self.family.after_step(phase)
        return result

    def _optimize_through_lightning(self, phase: Phase, batch, ctx: StepContext) -> StepResult:
        optimizer = self._optimizer(phase.player)
        with self.toggled_optimizer(optimizer):
            result = getattr(self.family, phase.step)(batch, ctx)
            if result.loss is None:
                return result
            self._watch(phase.player, result.loss, ctx)
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(result.loss)
            optimizer.step()
        self.family.after_step(phase)
        return result

    # --- divergence ------------------------------------------------------------------------------------------
    def _watch(self, player: str, loss: Tensor, ctx: StepContext) -> None:
        """Keep ``loss`` for the next finiteness check (no host sync here)."""
        if not self.stop_on_nonfinite or ctx.scaler is not None:
            return
        self._pending.append((player, self.iteration + 1, loss.detach()))
        if len(self._pending) >= MAX_PENDING_LOSSES:
            self.check_finite()

    def check_finite(self) -> None:
        """Raise ``TrainingDiverged`` if a loss since the last check was NaN or infinite: one host sync for all of
        them. Called on the logging iterations, before every checkpoint is written and at the end of training,
        on every rank at once (under DDP the ranks decide together, so that they stop together)."""
        pending, self._pending = self._pending, []
        bad = None
        if pending:
            finite = torch.isfinite(torch.stack([loss.float().reshape(()) for _, _, loss in pending]))
            if not bool(finite.all()):
                bad = pending[int((~finite).nonzero()[0])]
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1:
            if trainer.strategy.reduce_boolean_decision(bad is None, all=True):
                return
        elif bad is None:
            return
        where = (f"the {bad[0]} loss is {bad[2].item()} at iteration {bad[1]}" if bad is not None
                 else "a loss on another process is not finite")
        raise TrainingDiverged(
            f"training diverged: {where}; the checkpoints from before it are untouched: resume from the last "
            "checkpoint with a lower learning rate (optim.*.lr), gradient clipping (module.grad_clip) or another loss"
        )

    def on_train_end(self) -> None:
        self.check_finite()
        self._players, self._ema_tensors = {}, None  # (they hold the Trainer's optimizer wrappers and tensors)

    def __getstate__(self) -> dict[str, Any]:
        # What on_train_start looks up is the fit's own (a spawned DDP process or a copy looks it up again).
        return {**super().__getstate__(), "_players": {}, "_ema_tensors": None, "_pending": []}

    # --- gradient norms --------------------------------------------------------------------------------------
    def on_before_optimizer_step(self, optimizer) -> None:
        # Called by Lightning inside optimizer.step(), after the GradScaler has unscaled the gradients, so the
        # norm and the clipping see true gradient values under 16-mixed too.
        self._before_step(self._player_of.get(id(optimizer)), optimizer)

    def _before_step(self, player: str | None, optimizer) -> None:
        """The player's gradient norm on logging iterations, and its clipping (``grad_clip``)."""
        if self.grad_clip is None and not self._logging_now(upcoming=True):
            return
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
        self.check_finite()
        values: dict[str, Tensor | float] = dict(self._logs)
        for player, norm in self._grad_norms.items():
            values[f"grad_norm_{player[0]}"] = norm
        tensors = [k for k, v in values.items() if isinstance(v, Tensor)]
        if tensors:  # one host sync for all of them
            floats = torch.stack([values[k].detach().float().reshape(()).to(self.device) for k in tensors]).tolist()
            values.update(zip(tensors, floats))
        for player in self.family.players:  # lr_g, lr_d; further parameter groups as lr_g1, lr_g2, ...
            for i, group in enumerate(self._optimizer(player).param_groups):
                values[f"lr_{player[0]}{i or ''}"] = group["lr"]
        values["iteration"] = float(self.iteration)
        # Straight to the loggers, with the iteration as the step (self.log would re-send these values on every
        # batch until the next call, and count steps in batches), and to the progress bar (GANProgressBar).
        if self.trainer.is_global_zero:
            metrics = {f"train/{k}": float(v) for k, v in values.items()}
            for logger in self.loggers:
                logger.log_metrics(metrics, step=self.iteration)
                logger.save()
        self.progress_values = {k: float(values[k]) for k in self.family.log_keys if k in values}

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
        if self._ema_tensors is None:  # (listed once per fit: after the move to the device, buffers are new tensors)
            g, ema = self.family.generator, self.generator_ema
            self._ema_tensors = (list(ema.parameters()), list(g.parameters()), list(ema.buffers()), list(g.buffers()))
        ema_params, params, ema_buffers, buffers = self._ema_tensors
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        if buffers:
            torch._foreach_copy_(ema_buffers, buffers)

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
        self.check_finite()  # no checkpoint of weights that a non-finite loss reached
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
        self._pending = []  # (back from a divergence: its losses are not this run's)
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


_PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "iteration", "_batch_in_iteration", "_logs", "_pending"})
"""``GANModule`` attributes set every step that are plain values (see ``GANModule.__setattr__``)."""

# Lightning reads ``training_step``'s signature on every batch (is ``batch_idx`` a parameter?); a function's
# ``__signature__`` answers that without parsing it again.
GANModule.training_step.__signature__ = inspect.signature(GANModule.training_step)
