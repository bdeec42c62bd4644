"""Training runs end to end on real data: every model × loss, resume, samples, logging, generate.py."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from gan_lightning.train.checkpoints import load_module, read_checkpoint
from gan_lightning.config import CONF_DIR
from gan_lightning.train.build import build_module
from gan_lightning.train.fit import train

from .conftest import HANG_LIMIT_S, ROOT, run_entry

MODELS = ["fcgan", "dcgan"]
LOSSES = sorted(p.stem for p in (CONF_DIR / "loss").glob("*.yaml"))


def read_metrics(run_dir: Path) -> dict[str, list[float]]:
    """The CSV logger's columns, without empty cells."""
    columns: dict[str, list[float]] = {}
    latest = max((run_dir / "csv").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    with open(latest / "metrics.csv") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if value != "":
                    columns.setdefault(key, []).append(float(value))
    return columns


def initial_state(cfg) -> dict[str, torch.Tensor]:
    """The weights a run of ``cfg`` starts from (train() seeds before building, as here)."""
    pl.seed_everything(cfg.seed, verbose=False)
    return {k: v.clone() for k, v in build_module(cfg, instantiate(cfg.data)).state_dict().items()}


def changed(before: dict, after: dict, prefix: str) -> bool:
    keys = [k for k in before if k.startswith(prefix) and before[k].is_floating_point()]
    assert keys, prefix
    return any(not torch.equal(before[k], after[k]) for k in keys)


@pytest.mark.slow
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_loss_trains_on_fashion_mnist(make_cfg, model, loss):
    cfg = make_cfg(f"model={model}", f"loss={loss}", "max_iterations=3", "data.batch_size=16")
    before = initial_state(cfg)
    result = train(cfg)

    k = cfg.optim.n_critic
    assert result["iteration"] == 3
    assert result["global_step"] == 3 * (k + 1)  # n_critic discriminator steps + 1 generator step per iteration
    metrics = read_metrics(Path(result["output_dir"]))
    assert metrics["train/iteration"] == [1.0, 2.0, 3.0]
    for key in ("train/loss_d", "train/loss_g", "train/D(x)", "train/D(G(z))", "train/grad_norm_d", "train/grad_norm_g"):
        assert len(metrics[key]) == 3 and all(math.isfinite(v) for v in metrics[key]), key
    assert len(set(metrics["train/loss_g"])) > 1, "the generator loss never moved"

    after = read_checkpoint(result["last_checkpoint"])["state_dict"]
    assert changed(before, after, "family.generator.")
    assert changed(before, after, "family.discriminator.")
    assert changed(before, after, "generator_ema.")
    if loss == "wgan":  # weight clipping held after every critic step
        assert all(v.abs().max() <= 0.01 + 1e-7 for key, v in after.items()
                   if key.startswith("family.discriminator.") and v.is_floating_point() and "running" not in key)
    assert sorted(p.name for p in (Path(result["output_dir"]) / "samples").glob("*.png")) == ["iter_0000003.png"]


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_on_gaussian_mixture(make_cfg, loss):
    cfg = make_cfg("model=fcgan", "data=gaussian_mixture", f"loss={loss}", "max_iterations=3", "data.n_samples=2048")
    before = initial_state(cfg)
    result = train(cfg)
    assert result["iteration"] == 3
    after = read_checkpoint(result["last_checkpoint"])["state_dict"]
    assert changed(before, after, "family.generator.")
    metrics = read_metrics(Path(result["output_dir"]))
    assert "metrics/high_quality_frac" in metrics  # mixture scores are logged with the samples


def nearest_mode_distance(points: torch.Tensor, modes: torch.Tensor) -> float:
    return torch.cdist(points.float(), modes.float()).min(dim=1).values.mean().item()


@pytest.mark.slow
def test_training_moves_samples_onto_the_mixture_modes(make_cfg):
    cfg = make_cfg("experiment=gaussian_ring", "max_iterations=400", "callbacks.samples.every_n_iterations=0")
    datamodule = instantiate(cfg.data)
    pl.seed_everything(0, verbose=False)
    untrained = build_module(cfg, datamodule)
    inputs = untrained.family.sample_inputs(2000, generator=torch.Generator().manual_seed(0))
    before = nearest_mode_distance(untrained.generate(inputs, use_ema=False), datamodule.modes)

    result = train(cfg)
    module = load_module(result["last_checkpoint"])
    after_raw = nearest_mode_distance(module.generate(inputs, use_ema=False), datamodule.modes)
    after_ema = nearest_mode_distance(module.generate(inputs), datamodule.modes)
    # Untrained samples sit around the origin, ~2 away from the ring's modes.
    assert before > 1.0
    assert after_raw < 0.35 * before and after_ema < 0.35 * before, (before, after_raw, after_ema)


@pytest.mark.slow
def test_resume_continues_exactly(make_cfg, tmp_path):
    common = ["model=dcgan", "loss=wgan_gp", "data.batch_size=16", "callbacks.samples.every_n_iterations=0"]
    full = train(make_cfg(*common, "max_iterations=6", output_dir=tmp_path / "full"))
    half = train(make_cfg(*common, "max_iterations=3", output_dir=tmp_path / "half"))
    resumed = train(make_cfg(*common, "max_iterations=6", f"ckpt_path={half['last_checkpoint']}",
                             output_dir=tmp_path / "resumed"))

    assert (half["iteration"], resumed["iteration"]) == (3, 6)
    assert resumed["global_step"] == full["global_step"] == 6 * 6
    resumed_metrics = read_metrics(Path(resumed["output_dir"]))
    assert resumed_metrics["train/iteration"] == [4.0, 5.0, 6.0]  # it went on from where it stopped
    a = read_checkpoint(full["last_checkpoint"])
    b = read_checkpoint(resumed["last_checkpoint"])
    # Same data order, noise, optimizer and EMA state: the same weights as an uninterrupted run.
    for key, value in a["state_dict"].items():
        assert torch.allclose(value.float(), b["state_dict"][key].float(), atol=1e-6), key


@pytest.mark.slow
def test_ckpt_path_last_resumes_an_interrupted_command(make_cfg, tmp_path):
    run_dir = tmp_path / "fixed-run-dir"
    common = ["model=fcgan", "ckpt_path=last", "callbacks.samples.every_n_iterations=0"]
    first = train(make_cfg(*common, "max_iterations=2", output_dir=run_dir))  # nothing to resume: a fresh start
    assert first["iteration"] == 2
    second = train(make_cfg(*common, "max_iterations=4", output_dir=run_dir))
    assert second["iteration"] == 4
    assert read_metrics(run_dir)["train/iteration"] == [3.0, 4.0]  # continued, in a new csv version
    assert len(list((run_dir / "csv").glob("version_*/metrics.csv"))) == 2  # the first run's log is kept


@pytest.mark.slow
def test_checkpoints_every_n_iterations_and_last(make_cfg):
    cfg = make_cfg("model=fcgan", "max_iterations=4", "callbacks.checkpoint.every_n_iterations=2",
                   "optim.n_critic=2")
    result = train(cfg)
    ckpt_dir = Path(result["output_dir"]) / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.glob("*.ckpt")) == ["iter0000002.ckpt", "iter0000004.ckpt", "last.ckpt"]
    assert read_checkpoint(ckpt_dir / "iter0000002.ckpt")["gan_lightning"]["iteration"] == 2
    assert read_checkpoint(ckpt_dir / "last.ckpt")["gan_lightning"]["iteration"] == 4


@pytest.mark.slow
def test_generate_cli_writes_uint8_images_and_a_grid(make_cfg, tmp_path):
    result = train(make_cfg("model=dcgan", "max_iterations=30", "data.batch_size=32"))
    out = tmp_path / "gen" / "samples.npz"
    proc = run_entry("generate.py", f"ckpt={result['last_checkpoint']}", "n=70", f"out={out}", "batch_size=32")
    assert proc.returncode == 0, proc.stderr
    images = np.load(out)["images"]
    assert images.dtype == np.uint8 and images.shape == (70, 1, 28, 28)
    assert len(np.unique(images)) > 10  # real samples, not a constant image
    assert out.with_suffix(".png").stat().st_size > 0
    # the EMA generator, loaded with weights_only=True, gives the same images as in-process sampling
    module = load_module(result["last_checkpoint"])
    inputs = module.family.sample_inputs(32, generator=torch.Generator().manual_seed(0))
    expected = module.generate(inputs).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).numpy()
    assert np.array_equal(images[:32], expected)


@pytest.mark.slow
def test_wandb_offline_run_is_written_and_readable(make_cfg, monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    cfg = make_cfg("logger=wandb", "model=fcgan", "data=gaussian_mixture", "max_iterations=20",
                   "data.n_samples=2048", "callbacks.samples.every_n_iterations=10")
    result = train(cfg)
    import os
    assert "WANDB_MODE" not in os.environ  # the logger's offline switch does not leak into later runs

    runs = list((Path(result["output_dir"]) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    proc = subprocess.run([str(Path(ROOT / ".venv/bin/wandb")) if (ROOT / ".venv/bin/wandb").exists() else "wandb",
                           "leet", "inspect", "--summary", "--json", str(runs[0])],
                          capture_output=True, text=True, timeout=HANG_LIMIT_S)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["state"] == "finished"
    assert summary["name"] == "fcgan-non_saturating-gaussian_mixture-s42"
    assert set(summary["tags"]) == {"model=fcgan", "loss=non_saturating", "data=gaussian_mixture"}
    assert summary["config"]["max_iterations"] == 20 and summary["config"]["model"]["latent_dim"] == 16
    assert summary["summary"]["train/iteration"] == 20
    assert "samples" in summary["summary"] and "metrics/high_quality_frac" in summary["summary"]


@pytest.mark.slow
def test_lr_schedulers_step_once_per_iteration_and_resume(make_cfg):
    linear = "{_target_: torch.optim.lr_scheduler.LinearLR, _partial_: true, start_factor: 1.0, " \
             "end_factor: 0.0, total_iters: 8}"
    cfg = make_cfg("model=fcgan", "max_iterations=4", "optim.n_critic=2",
                   f"+optim.scheduler.generator={linear}", f"+optim.scheduler.discriminator={linear}")
    result = train(cfg)
    lr_g = read_metrics(Path(result["output_dir"]))["train/lr_g"]
    # 2e-4 decays linearly to 0 over 8 iterations: after iteration i the lr is 2e-4 * (1 - i/8).
    assert lr_g == pytest.approx([2e-4 * (1 - i / 8) for i in range(1, 5)], rel=1e-4)
    ckpt = read_checkpoint(result["last_checkpoint"])
    assert [s["last_epoch"] for s in ckpt["lr_schedulers"]] == [4, 4]


@pytest.mark.slow
def test_gradient_clipping_bounds_each_update(make_cfg):
    sgd = ["optim.generator._target_=torch.optim.SGD", "~optim.generator.betas", "optim.generator.lr=1.0"]
    clip = 1e-6

    def generator_change(*extra):
        cfg = make_cfg("model=fcgan", "max_iterations=3", *sgd, *extra)
        before = initial_state(cfg)
        after = read_checkpoint(train(cfg)["last_checkpoint"])["state_dict"]
        keys = [k for k in before if k.startswith("family.generator.") and "running_" not in k
                and before[k].is_floating_point()]  # parameters, not BatchNorm statistics
        return torch.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in keys)).item()

    # With plain SGD at lr 1, three clipped steps move the generator by at most 3 * lr * clip in total norm.
    assert generator_change(f"module.grad_clip={clip}") <= 3 * clip * 1.01
    assert generator_change() > 100 * clip


def test_spectral_norm_makes_every_discriminator_layer_1_lipschitz():
    from gan_lightning.networks.dcgan import Discriminator

    torch.manual_seed(0)
    x = torch.randn(8, 1, 28, 28)

    def sigmas(net):
        for _ in range(30):  # the power iteration runs one step per training forward pass
            net(x)
        layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        return [torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item() for m in layers]

    normalised = sigmas(Discriminator((1, 28, 28), ndf=8, norm="none", spectral_norm=True))
    assert len(normalised) == 3 and all(abs(s - 1) < 0.05 for s in normalised), normalised
    plain = sigmas(Discriminator((1, 28, 28), ndf=8, norm="none"))
    assert all(abs(s - 1) > 0.2 for s in plain), plain
