"""Throughput of the package's training iteration beside the plain hand-written loop, and peak memory.

    make bench                       # = python benchmarks/bench_step.py, then the same with --variants
    python benchmarks/bench_step.py model.generator.ngf=64 model.discriminator.ndf=64 --iterations 200
    python benchmarks/bench_step.py --variants     # each speed option against the plain loop fed by a DataLoader
    python benchmarks/bench_step.py --models [M ...]  # images/s, ms an iteration of every model (or M ...)

Both run the same DCGAN (the default config's networks, batch size and optimizers) in the same process, in
alternation, after a warm-up; the figure is the median of the repeats. The package side is the real
``GANModule`` in a Lightning ``Trainer`` (no logger, progress bar or checkpoints: their cost is I/O, not the step).
Peak memory is measured in a fresh subprocess for each side (max RSS on CPU, max allocated on GPU).

With ``--variants``, the package runs once per speed option (mixed precision, channels-last, fused Adam,
torch.compile, CUDA graphs on a GPU; data kept on the device is the GPU default) and each is set beside the plain
loop fed the usual way, by a ``torch.utils.data.DataLoader`` with workers.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plain_loop import PlainDCGAN  # noqa: E402

from gan_lightning.config import compose_config  # noqa: E402
from gan_lightning.core.module import UNBOUNDED_STEPS  # noqa: E402
from gan_lightning.train.build import build_module  # noqa: E402


class _Timer(pl.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.t0, self.t1, self.n = warmup, None, None, 0

    def on_train_batch_end(self, trainer, pl_module, *args):
        if pl_module.iteration == self.warmup and self.t0 is None:
            self._sync(pl_module)
            self.t0 = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self._sync(pl_module)
        self.t1 = time.perf_counter()
        self.n = pl_module.iteration - self.warmup

    @staticmethod
    def _sync(pl_module):
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()


def package_images_per_s(cfg, iterations: int, warmup: int) -> float:
    pl.seed_everything(0, verbose=False)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg, datamodule)
    module.max_iterations = warmup + iterations  # the module stops the trainer
    timer = _Timer(warmup)
    trainer = pl.Trainer(
        accelerator=cfg.trainer.accelerator, devices=1, precision=cfg.trainer.precision, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
        max_steps=UNBOUNDED_STEPS, max_epochs=-1,
    )
    trainer.fit(module, datamodule=datamodule)
    return timer.n * cfg.data.batch_size / (timer.t1 - timer.t0)


def plain_loop(cfg, images_u8: torch.Tensor, device: str, dataloader_workers: int | None = None) -> PlainDCGAN:
    opt = cfg.optim.generator
    return PlainDCGAN(images_u8, batch_size=cfg.data.batch_size, ngf=cfg.model.generator.ngf,
                      ndf=cfg.model.discriminator.ndf, latent_dim=cfg.model.latent_dim, lr=opt.lr,
                      betas=tuple(opt.betas), ema_decay=cfg.module.ema_decay, device=device,
                      dataloader_workers=dataloader_workers)


def plain_images_per_s(loop: PlainDCGAN, iterations: int, warmup: int) -> float:
    for _ in range(warmup):
        loop.step()
    sync = torch.cuda.synchronize if loop.device == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(iterations):
        loop.step()
    sync()
    return iterations * loop.batch_size / (time.perf_counter() - t0)


# Speed options measured by --variants: (label, overrides), each added to the config both sides use.
_FUSED = ["optim.generator.fused=true", "optim.discriminator.fused=true"]
CPU_VARIANTS = [
    ("package, default options", []),
    ("+ channels_last", ["model.channels_last=true"]),
    ("+ fused Adam", _FUSED),
    ("+ torch.compile", ["model.compile=true"]),
    ("channels_last + fused Adam + torch.compile", ["model.channels_last=true", *_FUSED, "model.compile=true"]),
]
_BF16 = ["trainer.precision=bf16-mixed"]
GPU_VARIANTS = [
    ("package, fp32, data in host memory (data.device=cpu)", ["data.device=cpu"]),
    ("package, fp32, data on the GPU (the default)", []),
    ("16-mixed", ["trainer.precision=16-mixed"]),
    ("bf16-mixed", _BF16),
    ("bf16-mixed + channels_last", [*_BF16, "model.channels_last=true"]),
    ("bf16-mixed + channels_last + fused Adam", [*_BF16, "model.channels_last=true", *_FUSED]),
    ("bf16-mixed + channels_last + fused Adam + torch.compile",
     [*_BF16, "model.channels_last=true", *_FUSED, "model.compile=true"]),
    ("bf16-mixed + channels_last + fused Adam + torch.compile reduce-overhead (CUDA graphs)",
     [*_BF16, "model.channels_last=true", *_FUSED, "model.compile=reduce-overhead"]),
]


MODELS = ["fcgan", "dcgan", "cgan", "acgan", "infogan", "stylegan2", "pix2pix", "cyclegan"]


def run_models(overrides: list[str], models: list[str], args) -> dict:
    """Images/s and milliseconds a training iteration of each model (its default size, loss and data: the
    translation models their Fashion-MNIST tasks) in the package."""
    rows = []
    for model in models:
        base = [o for o in overrides if not o.startswith(("model=", "data=fashion_mnist"))]
        cfg = compose_config([*base, f"model={model}"], tempfile.mkdtemp(prefix="bench-"))
        images_per_s = package_images_per_s(cfg, args.iterations, args.warmup)
        rows.append({"model": model, "batch_size": cfg.data.batch_size, "images_per_s": images_per_s,
                     "ms_per_iteration": 1000 * cfg.data.batch_size / images_per_s})
    return {"models": rows}


def run_variants(overrides: list[str], images: torch.Tensor, device: str, args) -> dict:
    """Images/s of the package under each speed option, and of the plain loop fed by a DataLoader."""
    base_cfg = compose_config(overrides, tempfile.mkdtemp(prefix="bench-"))
    loop = plain_loop(base_cfg, images, device, dataloader_workers=args.loader_workers)
    rows = [{"variant": f"plain loop, DataLoader with {args.loader_workers} workers (the yardstick)",
             "images_per_s": plain_images_per_s(loop, args.iterations, args.warmup)}]
    del loop
    for label, extra in GPU_VARIANTS if device == "cuda" else CPU_VARIANTS:
        cfg = compose_config([*overrides, *extra], tempfile.mkdtemp(prefix="bench-"))
        torch._dynamo.reset()
        rows.append({"variant": label, "overrides": extra,
                     "images_per_s": package_images_per_s(cfg, args.iterations, args.warmup)})
    for row in rows:
        row["vs_plain_dataloader"] = row["images_per_s"] / rows[0]["images_per_s"]
    return {"variants": rows}


def peak_memory_mb(side: str, overrides: list[str]) -> float:
    out = subprocess.run([sys.executable, __file__, "--memory-of", side, *overrides], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else f"{cpu_name()}, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the config both sides use")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--variants", action="store_true",
                        help="time each speed option against the plain loop fed by a DataLoader")
    parser.add_argument("--models", nargs="*", default=None, metavar="MODEL",
                        help=f"time each model's iteration (package only; no names: {' '.join(MODELS)})")
    parser.add_argument("--loader-workers", type=int, default=2, help="the DataLoader's workers (--variants)")
    parser.add_argument("--memory-of", choices=["package", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    overrides = ["model=dcgan", "data=fashion_mnist", "logger=none", "callbacks=none",
                 f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}", *args.overrides]
    cfg = compose_config(overrides, tempfile.mkdtemp(prefix="bench-"))
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    images = datamodule.load_split("train")[0]

    if args.memory_of:  # subprocess: one side, a short run, its peak memory in MB on the last line
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        if args.memory_of == "package":
            package_images_per_s(cfg, 20, 5)
        else:
            plain_images_per_s(plain_loop(cfg, images, device), 20, 5)
        peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else \
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{peak:.1f}")
        return

    # What every result records: the machine, the versions and the settings.
    result = {"device": device_name(device), "torch": torch.__version__, "pytorch_lightning": pl.__version__,
              "config": overrides, "batch_size": cfg.data.batch_size, "iterations": args.iterations}
    print(f"device: {result['device']}; torch {result['torch']}, Lightning {result['pytorch_lightning']}")

    def write(result: dict) -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))

    if args.models is not None:
        result.update(run_models(overrides, args.models or MODELS, args))
        print("| model | batch | images/s | ms / iteration |")
        print("|---|---|---|---|")
        for row in result["models"]:
            print(f"| {row['model']} | {row['batch_size']} | {row['images_per_s']:.0f} | "
                  f"{row['ms_per_iteration']:.1f} |")
        write(result)
        return
    if args.variants:
        result.update(run_variants(overrides, images, device, args))
        print("| variant | images/s | vs the plain loop with a DataLoader |")
        print("|---|---|---|")
        for row in result["variants"]:
            print(f"| {row['variant']} | {row['images_per_s']:.0f} | {row['vs_plain_dataloader']:.2f}x |")
        write(result)
        return

    package, plain = [], []
    for _ in range(args.repeats):
        package.append(package_images_per_s(cfg, args.iterations, args.warmup))
        plain.append(plain_images_per_s(plain_loop(cfg, images, device), args.iterations, args.warmup))
    result.update({
        "package_images_per_s": statistics.median(package),
        "plain_images_per_s": statistics.median(plain),
        "ratio": statistics.median(package) / statistics.median(plain),
        "package_runs": package,
        "plain_runs": plain,
        "package_peak_mb": peak_memory_mb("package", args.overrides),
        "plain_peak_mb": peak_memory_mb("plain", args.overrides),
        "memory_measure": "max allocated (CUDA)" if device == "cuda" else "max RSS of the process",
    })
    print(f"| side | images/s (median of {args.repeats}) | peak memory (MB) |")
    print("|---|---|---|")
    print(f"| gan_lightning GANModule | {result['package_images_per_s']:.0f} | {result['package_peak_mb']:.0f} |")
    print(f"| plain PyTorch loop | {result['plain_images_per_s']:.0f} | {result['plain_peak_mb']:.0f} |")
    print(f"ratio package / plain: {result['ratio']:.3f}")
    write(result)


if __name__ == "__main__":
    main()
