"""The training step's fixed cost: milliseconds an iteration of the package beside the plain hand-written loop, on
a model whose compute is almost free (the ring MLP of ``experiment=gaussian_ring``) and on DCGAN at batch 64, with
the package's cost broken down.

    python benchmarks/bench_overhead.py                      # both models, with the breakdown
    python benchmarks/bench_overhead.py --models ring --no-breakdown --json overhead.json
    python benchmarks/bench_overhead.py --profile ring       # cProfiles of both sides, by where the time goes

The package side is ``train.py``'s own path (``gan_lightning.train.fit.train`` on the composed config) as a user
runs it with metrics, logger, sample grids and checkpoints out of the way (``metrics=none logger=none``, grids and
checkpoints every 100,000 iterations): Lightning's Trainer, the Rich progress bar and the default callbacks. The
plain side is ``plain_loop.PlainGAN`` on copies of the same networks (same initial weights), the same batch size,
Adam settings and EMA, one discriminator and one generator step an iteration, batches cut from the same tensor.
The two sides run in alternating blocks of iterations in one process (``PairedTimer``: the plain loop's blocks
run from a callback, between the package's), so that the machine's drift falls on both alike; the figures are
medians over the blocks, after a warm-up.

The breakdown takes the package's parts away one at a time, each row on top of the ones above it: the progress
bar, the other callbacks, logging and gradient norms (``module.log_every_n_iterations`` beyond the run), the EMA,
the finiteness check. What is left beside the plain loop is Lightning's loop and hooks, the phase dispatch, the
optimizer wrappers and the data path; ``data path`` times the package's batches alone against the plain loop's.
``--profile`` runs cProfile over both sides and sums each function's own time by area.
"""

from __future__ import annotations

import argparse
import cProfile
import copy
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import cpu_name  # noqa: E402
from plain_loop import PlainGAN  # noqa: E402

from gan_lightning.config import compose_config  # noqa: E402
from gan_lightning.train.build import build_module  # noqa: E402
from gan_lightning.train.fit import train  # noqa: E402

QUIET = ["metrics=none", "logger=none", "trainer=cpu", "callbacks.samples.every_n_iterations=100000",
         "callbacks.checkpoint.every_n_iterations=100000"]
MODELS = {  # name: (overrides, iterations a block, blocks)
    "ring": (["experiment=gaussian_ring"], 50, 24),
    "dcgan": (["model=dcgan", "data=fashion_mnist"], 10, 12),
}
NO_BAR = ["~callbacks.progress_bar", "+trainer.enable_progress_bar=false"]
ABLATIONS = [  # (label, overrides added to every row above)
    ("package, as train.py runs it", []),
    ("- the progress bar", NO_BAR),
    ("- the other callbacks (callbacks=none)", ["callbacks=none"]),
    ("- logging and gradient norms", ["module.log_every_n_iterations=100000000"]),
    ("- the EMA", ["module.ema_decay=0"]),
    ("- the finiteness check", ["+module.stop_on_nonfinite=false"]),
]


class PairedTimer(pl.Callback):
    """Times the package and the plain loop in alternating blocks of ``block`` iterations, in the same seconds:
    after ``warmup`` iterations of the package, each block of its iterations is followed by ``block`` steps of the
    plain loop ``loop`` (run from this callback, outside the package's timing), ``blocks`` times; then the run stops.
    The machine's drift (its speed changes from minute to minute here) then falls on both sides alike."""

    def __init__(self, loop: PlainGAN, warmup: int, block: int, blocks: int):
        self.loop, self.warmup, self.block, self.blocks = loop, warmup, block, blocks
        self.package: list[float] = []  # ms an iteration, per block
        self.plain: list[float] = []
        self._t = None

    def on_train_batch_end(self, trainer, pl_module, *args):
        if pl_module._batch_in_iteration:  # inside an iteration (n_critic > 1)
            return
        it = pl_module.iteration
        if it < self.warmup or (it - self.warmup) % self.block:
            return
        if self._t is not None:
            self.package.append(1000 * (time.perf_counter() - self._t) / self.block)
            self.plain.append(plain_ms(self.loop, self.block, 0))
        if len(self.package) == self.blocks:
            trainer.should_stop = True
            return
        if it == self.warmup:
            plain_ms(self.loop, self.warmup, 0)  # the plain loop's own warm-up
        self._t = time.perf_counter()


def config(overrides: list[str]):
    return compose_config(overrides, tempfile.mkdtemp(prefix="bench-overhead-"))


def plain_side(overrides: list[str]) -> PlainGAN:
    """The plain loop on copies of the package's networks for ``overrides`` (same seed, so same initial weights),
    its batch size, Adam settings and EMA decay, batches from the same training tensor."""
    cfg = config(overrides)
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data)
    family = build_module(cfg, datamodule).family
    datamodule.setup("fit")
    data = datamodule.train_dataloader().tensors[datamodule.spec.target]
    opt = cfg.optim.generator
    return PlainGAN(copy.deepcopy(family.generator), copy.deepcopy(family.discriminator), data, family.latent_dim,
                    batch_size=cfg.data.batch_size, lr=opt.lr, betas=tuple(opt.betas),
                    ema_decay=cfg.module.ema_decay)


def plain_ms(loop: PlainGAN, iterations: int, warmup: int) -> float:
    for _ in range(warmup):
        loop.step()
    start = time.perf_counter()
    for _ in range(iterations):
        loop.step()
    return 1000 * (time.perf_counter() - start) / iterations


def paired_ms(overrides: list[str], plain_overrides: list[str], warmup: int, block: int, blocks: int
              ) -> tuple[list[float], list[float]]:
    """ms an iteration of ``train.py OVERRIDES`` (in this process) and of the plain loop, per block (see
    ``PairedTimer``). With ``callbacks=none``, the overrides of single callbacks are left out (there are none to
    set)."""
    if "callbacks=none" in overrides:
        overrides = [o for o in overrides if not o.lstrip("~+").startswith("callbacks.")]
    timer = PairedTimer(plain_side(plain_overrides), warmup, block, blocks)
    cfg = config([*overrides, f"max_iterations={warmup + block * blocks + 1}"])
    train(cfg, callbacks=[timer])
    return timer.package, timer.plain


def data_path_ms(overrides: list[str], loop: PlainGAN, batches: int) -> tuple[float, float]:
    """Milliseconds a batch: the package's training loader alone, and the plain loop's batch cutting."""
    cfg = config(overrides)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    batches_of = iter(loader)
    start = time.perf_counter()
    for _ in range(batches):
        if next(batches_of, None) is None:
            batches_of = iter(loader)
    package = 1000 * (time.perf_counter() - start) / batches
    start = time.perf_counter()
    for _ in range(batches):
        loop.real_batch()
    return package, 1000 * (time.perf_counter() - start) / batches


def measure(model: str, args) -> dict:
    base, block, blocks = MODELS[model]
    block, blocks = args.block or block, args.blocks or blocks
    warmup = 2 * block
    rows = ABLATIONS if args.breakdown else ABLATIONS[:1]
    quiet = [*base, *QUIET]
    result: dict = {"model": model, "batch_size": config(quiet).data.batch_size, "block": block, "blocks": blocks,
                    "warmup": warmup, "overrides": quiet, "rows": []}
    extra: list[str] = []
    for label, overrides in rows:
        extra = extra + overrides
        package, plain = paired_ms([*quiet, *extra], quiet, warmup, block, blocks)
        beyond = [a - b for a, b in zip(package, plain)]
        row = {"side": label, "overrides": list(extra), "ms": statistics.median(package),
               "plain_ms": statistics.median(plain), "beyond_ms": statistics.median(beyond),
               "plain_over_package": statistics.median(b / a for a, b in zip(package, plain)),
               "package_blocks": package, "plain_blocks": plain}
        result["rows"].append(row)
        print(f"{model}: {label}: {row['ms']:.3f} ms, plain {row['plain_ms']:.3f}, beyond {row['beyond_ms']:+.3f}",
              flush=True)
    package, plain = data_path_ms(quiet, plain_side(quiet), 500)
    result["data_path_ms"] = {"package": package, "plain": plain}
    return result


def report(result: dict) -> None:
    print(f"\n{result['model']} (batch {result['batch_size']}; medians over {result['blocks']} blocks of "
          f"{result['block']} iterations, each side in turn)\n")
    print("| package side | ms / iteration | plain loop, same blocks | beyond the plain loop (ms) | plain / package "
          "| the part's cost (ms) |")
    print("|---|---|---|---|---|---|")
    previous = None
    for row in result["rows"]:
        part = "" if previous is None else f"{previous - row['beyond_ms']:.3f}"
        print(f"| {row['side']} | {row['ms']:.3f} | {row['plain_ms']:.3f} | {row['beyond_ms']:+.3f} | "
              f"{row['plain_over_package']:.3f} | {part} |")
        previous = row["beyond_ms"]
    d = result["data_path_ms"]
    print(f"\ndata path, ms a batch: package {d['package']:.3f}, plain {d['plain']:.3f}")


# Where a profile's time goes: (area, test on "file:function") in order, the first match wins.
AREAS = [
    ("progress bar (Rich)", lambda f: "/rich/" in f or "progress/rich" in f or "callbacks/progress.py" in f),
    ("logging", lambda f: "_log_iteration" in f or "logger_connector" in f or "/loggers/" in f),
    ("EMA", lambda f: "_update_ema" in f),
    ("finiteness check", lambda f: "check_finite" in f or f.endswith(":_watch")),
    ("gradient norms", lambda f: "on_before_optimizer_step" in f or "clip_grad" in f),
    ("data path", lambda f: "gan_lightning/data/" in f or "fetchers.py" in f or "combined_loader" in f
     or "torch/utils/data" in f),
    ("family step (forward, loss)", lambda f: "gan_lightning/families" in f or "gan_lightning/losses" in f
     or "gan_lightning/networks" in f or "core/family.py" in f or "torch/nn/" in f),
    ("backward", lambda f: "torch/autograd" in f or "_tensor.py:backward" in f or "manual_backward" in f),
    ("optimizer step", lambda f: "torch/optim" in f),
    ("phase dispatch (GANModule)", lambda f: "gan_lightning/core/module.py" in f),
    ("Lightning loop, hooks and wrappers", lambda f: "pytorch_lightning" in f or "lightning_fabric" in f),
]


def _by_area(profiler: cProfile.Profile) -> tuple[dict[str, float], list[tuple[float, float, str]]]:
    """A profile's own time (tottime) summed by area (``AREAS``; a builtin or C function goes to the area of its
    main caller), and (cumulative, own time, name) of every function."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    areas: dict[str, float] = {}
    rows = []
    for (file, line, function), (_, _, tottime, cumtime, callers) in stats.stats.items():
        key = f"{file}:{function}"
        area = next((name for name, test in AREAS if test(key)), None)
        if area is None:
            caller = max(callers.items(), key=lambda kv: kv[1][2], default=None)
            ckey = f"{caller[0][0]}:{caller[0][2]}" if caller else ""
            area = next((name for name, test in AREAS if test(ckey)), "other (start-up, kernels)")
        areas[area] = areas.get(area, 0.0) + tottime
        rows.append((cumtime, tottime, f"{key.split('site-packages/')[-1].split('/src/')[-1]}:{line}"))
    return areas, rows


def profile(model: str, args) -> None:
    """cProfile of one package run and of the plain loop for as many iterations: each side's own time (tottime)
    summed by area, in ms an iteration, and the package's functions that took the most (profiling slows Python
    code, not the kernels it calls: the figures are larger than the timings, the differences in the same places)."""
    base, block, blocks = MODELS[model]
    iterations = args.iterations or block * blocks
    overrides = [*base, *QUIET, f"max_iterations={iterations}"]
    cfg = config(overrides)
    package = cProfile.Profile()
    package.enable()
    train(cfg)
    package.disable()
    loop = plain_side([*base, *QUIET])
    plain = cProfile.Profile()
    plain.enable()
    for _ in range(iterations):
        loop.step()
    plain.disable()
    areas, rows = _by_area(package)
    plain_areas, plain_rows = _by_area(plain)
    print(f"\n{model}: cProfile of `train.py {' '.join(overrides)}` and of the plain loop, {iterations} iterations\n")
    print("| area | package (ms / iteration) | plain loop | difference |")
    print("|---|---|---|---|")
    for area in sorted(set(areas) | set(plain_areas), key=lambda a: -areas.get(a, 0.0)):
        a, b = (1000 * d.get(area, 0.0) / iterations for d in (areas, plain_areas))
        print(f"| {area} | {a:.3f} | {b:.3f} | {a - b:+.3f} |")
    a, b = (1000 * sum(d.values()) / iterations for d in (areas, plain_areas))
    print(f"| all | {a:.3f} | {b:.3f} | {a - b:+.3f} |")
    plain_own = {name.rsplit(":", 1)[0]: own for _, own, name in plain_rows}
    print("\npackage functions by own time beyond the plain loop's (ms an iteration; cumulative):")
    extra = sorted(((own - plain_own.get(name.rsplit(":", 1)[0], 0.0), cum, name) for cum, own, name in rows),
                   reverse=True)
    for own, cum, name in extra[: args.top]:
        print(f"  {1000 * own / iterations:8.3f}  ({1000 * cum / iterations:8.3f})  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--block", type=int, help="iterations a block (default: ring 50, dcgan 10)")
    parser.add_argument("--blocks", type=int, help="blocks a side (default: ring 24, dcgan 12)")
    parser.add_argument("--iterations", type=int, help="--profile: iterations (default: a side's blocks)")
    parser.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                        help="only the package as train.py runs it and the plain loop")
    parser.add_argument("--profile", choices=list(MODELS), help="profile one run of this model instead")
    parser.add_argument("--top", type=int, default=30, help="functions the profile lists")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    import logging

    logging.getLogger("gan_lightning").setLevel(logging.WARNING)
    if args.profile:
        profile(args.profile, args)
        return
    machine = f"{cpu_name()}, {torch.get_num_threads()} threads"
    print(f"{machine}; torch {torch.__version__}, Lightning {pl.__version__}")
    results = []
    for model in args.models:
        results.append(measure(model, args))
    for result in results:
        report(result)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "torch": torch.__version__,
                                               "pytorch_lightning": pl.__version__, "command": " ".join(sys.argv),
                                               "when": time.strftime("%Y-%m-%d %H:%M"), "results": results},
                                              indent=1) + "\n")


if __name__ == "__main__":
    main()
