"""The training step's fixed cost: the module steps without Lightning's per-step hooks where nothing uses them,
with the same weights as through them; the finiteness check, logging and the progress bar run on their own
schedule, not on every step (benchmarks/bench_overhead.py measures the time)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import pytest
import torch

from gan_lightning.core.module import GANModule
from gan_lightning.errors import TrainingDiverged
from gan_lightning.train.checkpoints import read_checkpoint
from gan_lightning.train.fit import train


class _Listens(pl.Callback):
    """A callback that uses a step hook: the module must then step through Lightning, which calls it."""

    def __init__(self):
        self.calls = 0

    def on_after_backward(self, trainer, pl_module):
        self.calls += 1


class _Records(pl.Callback):
    def on_train_end(self, trainer, pl_module):
        self.direct, self.global_step = pl_module.direct_steps, trainer.global_step


def test_direct_steps_train_the_same_weights_as_lightnings_hooks(make_cfg, tmp_path):
    states, records, listens = [], [], _Listens()
    for name, extra in (("direct", []), ("hooks", [listens])):
        record = _Records()
        cfg = make_cfg("model=dcgan", "optim.n_critic=2", "module.grad_clip=1.0", "max_iterations=3",
                       "module.log_every_n_iterations=2", output_dir=tmp_path / name)
        result = train(cfg, callbacks=[record, *extra])
        states.append(read_checkpoint(result["last_checkpoint"])["state_dict"])
        records.append(record)
    direct, hooks = records
    assert direct.direct and not hooks.direct  # a callback that uses a step hook sends the steps through Lightning
    assert listens.calls == 3 * (2 + 1)  # ... which calls it on every step: two D steps and one G step an iteration
    assert direct.global_step == hooks.global_step == 3 * 3  # Lightning's step count is kept on both paths
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_losses_are_checked_on_logging_iterations_and_checkpoints_not_every_step(make_cfg, monkeypatch):
    checked = []
    original = GANModule.check_finite

    def record(self):
        checked.append(self.iteration)
        original(self)

    monkeypatch.setattr(GANModule, "check_finite", record)
    train(make_cfg("model=fcgan", "max_iterations=12", "module.log_every_n_iterations=5",
                   "callbacks.checkpoint.every_n_iterations=4"))
    # logging at 5 and 10, checkpoints at 4, 8 and 12 (iter and last each), the end of training at 12
    assert sorted(set(checked)) == [4, 5, 8, 10, 12]


def test_a_nan_between_checks_stops_the_run_before_the_next_checkpoint(make_cfg, monkeypatch):
    from gan_lightning import losses

    original, calls = losses.NonSaturating.generator_loss, {"n": 0}

    def poisoned(self, fake):
        calls["n"] += 1
        loss = original(self, fake)
        return loss * float("nan") if calls["n"] == 7 else loss

    monkeypatch.setattr(losses.NonSaturating, "generator_loss", poisoned)
    cfg = make_cfg("model=fcgan", "max_iterations=20", "module.log_every_n_iterations=10",
                   "callbacks.checkpoint.every_n_iterations=5")
    with pytest.raises(TrainingDiverged, match="generator loss is nan at iteration 7"):
        train(cfg)
    assert calls["n"] == 10  # found at iteration 10's log and checkpoint, not at the step itself
    ckpt_dir = Path(cfg.paths.output_dir) / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.glob("*.ckpt")) == ["iter0000005.ckpt", "last.ckpt"]
    last = read_checkpoint(ckpt_dir / "last.ckpt")
    assert last["gan_lightning"]["iteration"] == 5
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_the_progress_bar_redraws_by_time_not_by_batch_and_shows_the_logged_losses(make_cfg, monkeypatch):
    from pytorch_lightning.callbacks import RichProgressBar

    from gan_lightning.callbacks import progress

    clock = {"t": 0.0}

    def monotonic():  # every batch takes 0.05 s: at 4 redraws a second, one batch in five redraws
        clock["t"] += 0.05
        return clock["t"]

    redraws = []
    redraw = RichProgressBar.on_train_batch_end

    def counted(self, trainer, module, *args):
        redraws.append(self.get_metrics(trainer, module))
        redraw(self, trainer, module, *args)

    monkeypatch.setattr(progress, "monotonic", monotonic)
    monkeypatch.setattr(RichProgressBar, "on_train_batch_end", counted)
    cfg = make_cfg("model=fcgan", "max_iterations=40", "module.log_every_n_iterations=10")
    train(cfg, callbacks=[progress.GANProgressBar(refresh_rate=4)])
    assert 7 <= len(redraws) <= 10  # 40 batches, 2 s of the fake clock: 8 redraws, and the last batch's
    assert redraws[-1]["iteration"] == 40
    assert all(isinstance(redraws[-1].get(k), float) for k in ("loss_d", "loss_g"))


class _SeesBatches(pl.Callback):
    def __init__(self):
        self.batches = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(batch)


def test_a_batch_on_the_device_is_passed_on_as_it_is_and_one_elsewhere_is_moved(make_cfg, monkeypatch):
    from pytorch_lightning.core.hooks import DataHooks

    from gan_lightning.data import GaussianMixtureDataModule

    seen, moved = _SeesBatches(), []
    original = DataHooks.transfer_batch_to_device

    def lightning_transfer(self, batch, device, dataloader_idx):
        moved.append(batch)
        return original(self, batch, device, dataloader_idx)

    monkeypatch.setattr(DataHooks, "transfer_batch_to_device", lightning_transfer)
    result = train(make_cfg("model=dcgan", "max_iterations=2"), callbacks=[seen])
    assert result["iteration"] == 2 and len(seen.batches) == 2 and not moved  # CPU batches: nothing walked
    data = GaussianMixtureDataModule(kind="ring")
    batch = {"x": torch.zeros(2, 3), "y": torch.zeros(2, dtype=torch.int64)}
    assert data.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch
    elsewhere = data.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert len(moved) == 1 and elsewhere["x"].device.type == "meta" and elsewhere["y"].device.type == "meta"


def test_attributes_set_every_step_stay_plain_and_parameters_still_register():
    module = GANModule.__new__(GANModule)
    torch.nn.Module.__init__(module)
    module.iteration = 5
    module._current_fx_name = "training_step"
    module.net = torch.nn.Linear(2, 2)
    assert module.iteration == 5 and "iteration" not in module._buffers and "net" in module._modules
    assert {n for n, _ in module.named_parameters()} == {"net.weight", "net.bias"}


class _Profilers(pl.Callback):
    def on_train_end(self, trainer, pl_module):
        self.profiler = trainer.profiler


def test_lightnings_hook_contexts_are_one_shared_no_op_unless_a_profiler_is_asked_for(make_cfg):
    from pytorch_lightning.profilers import SimpleProfiler

    from gan_lightning.train.build import NoProfiler

    default, asked = _Profilers(), _Profilers()
    train(make_cfg("model=dcgan", "max_iterations=2"), callbacks=[default])
    assert isinstance(default.profiler, NoProfiler)
    assert default.profiler.profile("[Callback]a.on_train_batch_end") is default.profiler.profile("b")
    train(make_cfg("model=dcgan", "max_iterations=2", "+trainer.profiler=simple"), callbacks=[asked])
    assert isinstance(asked.profiler, SimpleProfiler)
    assert any("training_step" in action for action in asked.profiler.recorded_durations)
