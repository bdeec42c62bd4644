"""Distributed and mixed-precision training: correct, not just accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from gan_lightning.train.checkpoints import read_checkpoint
from gan_lightning.losses import gradient_penalty
from gan_lightning.train.fit import train

from .test_training import LOSSES, changed, initial_state, read_metrics

pytestmark = pytest.mark.slow  # end-to-end: subprocesses, DDP, sweeps or many trainings


class RankDump(pl.Callback):
    """Saves each rank's weights and a noise draw (picklable: spawned processes get a copy)."""

    def __init__(self, dirpath: str):
        self.dirpath = dirpath

    def on_train_start(self, trainer, pl_module):
        self.noise = pl_module.family.noise(4)

    def on_train_end(self, trainer, pl_module):
        torch.save({"noise": self.noise, "state": {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}},
                   Path(self.dirpath) / f"rank{trainer.global_rank}.pt")


@pytest.mark.parametrize("loss", ["non_saturating", "wgan_gp"])
def test_two_process_ddp_keeps_ranks_identical(make_cfg, tmp_path, loss):
    cfg = make_cfg("model=dcgan", f"loss={loss}", "trainer=ddp_cpu", "max_iterations=3", "data.batch_size=16",
                   "callbacks.samples.every_n_iterations=2")
    result = train(cfg, callbacks=[RankDump(str(tmp_path))])

    k = cfg.optim.n_critic
    assert result["iteration"] == 3 and result["global_step"] == 3 * (k + 1)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), f"ranks differ in {key}"
    assert not torch.equal(rank0["noise"], rank1["noise"]), "both ranks drew the same noise"
    # the run's outputs come from rank 0 only: one metrics row per logged iteration, one grid per interval
    run = Path(result["output_dir"])
    assert read_metrics(run)["train/iteration"] == [1.0, 2.0, 3.0]
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == ["iter_0000002.png", "iter_0000003.png"]
    # the checkpoint holds one RNG state per rank, so a resumed run gives each rank its own stream back
    assert len(read_checkpoint(result["last_checkpoint"])["gan_lightning"]["rng"]["torch"]) == 2


def test_every_rank_gets_its_own_rng_state_back_from_a_checkpoint():
    """The saved states are gathered from the ranks, so each is a view into one storage; rank 1's must restore
    (set_rng_state misreads a view at an offset: "Invalid mt19937 state" or a crash, so a 2-process run could not
    resume)."""
    from types import SimpleNamespace

    from gan_lightning.core.module import GANModule

    states = [torch.Generator().manual_seed(seed).get_state() for seed in (42, 42 + 1_000_003)]
    gathered = list(torch.stack(states).unbind(0))  # as GANModule._rng_states saves them
    expected = torch.Generator().manual_seed(42 + 1_000_003)
    with torch.random.fork_rng():
        for rank in (0, 1):
            rank_module = SimpleNamespace(global_rank=rank, rollbacks=0, _rng_restored=False)
            GANModule.on_load_checkpoint(rank_module, {"gan_lightning": {"rng": {"torch": gathered}}})
        assert torch.equal(torch.rand(3), torch.rand(3, generator=expected))  # rank 1's stream


@pytest.mark.parametrize("loss", LOSSES)
def test_bf16_mixed_trains_every_loss(make_cfg, loss):
    cfg = make_cfg("model=dcgan", f"loss={loss}", "trainer.precision=bf16-mixed", "max_iterations=2",
                   "data.batch_size=8", "callbacks.samples.every_n_iterations=0")
    before = initial_state(cfg)
    result = train(cfg)
    metrics = read_metrics(Path(result["output_dir"]))
    assert all(torch.isfinite(torch.tensor(metrics[k])).all() for k in ("train/loss_d", "train/loss_g"))
    after = read_checkpoint(result["last_checkpoint"])["state_dict"]
    assert changed(before, after, "family.generator.") and changed(before, after, "family.discriminator.")
    assert all(v.dtype == torch.float32 for k, v in after.items() if v.is_floating_point())  # master weights


FP16_ON_CPU = ["+trainer.plugins=[{_target_: pytorch_lightning.plugins.precision.MixedPrecision, "
               "precision: 16-mixed, device: cpu, scaler: {_target_: torch.amp.GradScaler, device: cpu, init_scale: 256.0}}]",
               "trainer.precision=null"]


def test_fp16_scaler_run_clips_and_logs_unscaled_gradients(make_cfg, tmp_path):
    """16-mixed with a real GradScaler (on CPU here, as on a GPU): the gradient penalty and the gradient norms
    are those of fp32 training, not multiplied by the loss scale (256 here, small enough not to overflow)."""
    common = ["model=dcgan", "loss=wgan_gp", "max_iterations=1", "data.batch_size=16",
              "callbacks.samples.every_n_iterations=0", "module.grad_clip=1.0e9"]
    fp32 = read_metrics(Path(train(make_cfg(*common, output_dir=tmp_path / "fp32"))["output_dir"]))
    fp16 = read_metrics(Path(train(make_cfg(*common, *FP16_ON_CPU, output_dir=tmp_path / "fp16"))["output_dir"]))
    for key in ("train/grad_norm_d", "train/grad_norm_g", "train/reg_d"):
        assert fp16[key][0] == pytest.approx(fp32[key][0], rel=0.05), key


def test_gradient_penalty_through_a_real_grad_scaler_equals_fp32():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(1, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8 * 14 * 14, 1))
    real, fake = torch.randn(16, 1, 28, 28), torch.randn(16, 1, 28, 28)
    torch.manual_seed(1)
    reference = gradient_penalty(critic, real, fake)

    # A scale the scaler would settle at (at 2^16 the first fp16 backward overflows and the scaler skips it).
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.float16):
        penalty = gradient_penalty(critic, real, fake, grad_scale=scaler.get_scale())
    assert penalty.dtype == torch.float32
    assert penalty.item() == pytest.approx(reference.item(), rel=1e-2)
    # and it backpropagates through the scaler like any loss
    scaler.scale(penalty).backward()
    grads = [p.grad for p in critic.parameters() if p.grad is not None]  # biases don't shape the input gradient
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_nonfinite_loss_stops_before_the_step_and_keeps_the_checkpoint(make_cfg, monkeypatch):
    from gan_lightning import losses
    from gan_lightning.errors import TrainingDiverged

    original = losses.NonSaturating.generator_loss
    calls = {"n": 0}

    def poisoned(self, fake):
        calls["n"] += 1
        loss = original(self, fake)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(losses.NonSaturating, "generator_loss", poisoned)
    cfg = make_cfg("model=fcgan", "max_iterations=5", "callbacks.checkpoint.every_n_iterations=1")
    with pytest.raises(TrainingDiverged, match="generator loss is nan at iteration 3"):
        train(cfg)
    ckpt_dir = Path(cfg.paths.output_dir) / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.glob("*.ckpt")) == ["iter0000001.ckpt", "iter0000002.ckpt", "last.ckpt"]
    last = read_checkpoint(ckpt_dir / "last.ckpt")
    assert last["gan_lightning"]["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_slurm_launcher_config_matches_the_trainer(tmp_path):
    from .conftest import compose_cfg

    cfg = compose_cfg(["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"], tmp_path)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)


@pytest.mark.parametrize("launcher,expected", [("basic", "ddp_spawn_find_unused_parameters_true"),
                                               ("slurm", "ddp_find_unused_parameters_true")])
def test_local_sweeps_spawn_instead_of_relaunching(tmp_path, launcher, expected):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict

    from gan_lightning.train.fit import _spawn_in_sweeps

    from .conftest import compose_cfg

    cfg = compose_cfg(["trainer=ddp", f"hydra/launcher={launcher}"], tmp_path)
    OmegaConf.set_readonly(cfg.hydra, False)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
    HydraConfig.instance().set_config(cfg)
    _spawn_in_sweeps(cfg)
    assert cfg.trainer.strategy == expected
