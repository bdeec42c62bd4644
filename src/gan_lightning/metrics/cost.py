"""What the metrics cost during training, at the default settings (docs/benchmarks.md, "Metrics cost").

    python -m gan_lightning.metrics.cost                     # the default recipe: DCGAN on Fashion-MNIST
    python -m gan_lightning.metrics.cost --iterations 6700 --repeats 3 [OVERRIDES ...]

Alternates, in one process, a timed stretch of the package's own training (``train()``, ``metrics=none``, 300
iterations after a warm-up) with one timed evaluation exactly as the metrics callback does it (M samples from the
EMA generator, features, all scores; reference statistics from the cache). Alternating makes the ratio robust to
other load on the machine. The overhead of a run of ``--iterations`` iterations is
``evaluations x seconds per evaluation / (iterations / iterations per second)``, with one evaluation every
``metrics.every_n_iterations`` and one at the end.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time

import torch


def _train_rate(overrides: list[str], iterations: int, out_dir: str) -> float:
    """Generator iterations per second of ``train()`` (metrics off), first 30 iterations excluded."""
    from gan_lightning.config import compose_config
    from gan_lightning.train.fit import train

    def run(n: int) -> float:
        cfg = compose_config(["trainer=cpu", "logger=none", "metrics=none", "callbacks=none",
                              "+trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
                              f"max_iterations={n}", *overrides], out_dir)
        t0 = time.perf_counter()
        train(cfg)
        return time.perf_counter() - t0

    warm = run(30)
    return iterations / max(run(30 + iterations) - warm, 1e-9)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gan_lightning.metrics.cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=6700, help="length of the run to cost (default: the "
                        "~6700 iterations of the default recipe's 5 minutes on 2 CPU cores)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. metrics.n_samples=10000")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from hydra.utils import instantiate

    from gan_lightning.config import compose_config
    from gan_lightning.metrics.build import build_evaluator, feed
    from gan_lightning.metrics.options import MetricOptions
    from gan_lightning.train.build import build_module

    out_dir = tempfile.mkdtemp(prefix="metrics_cost_")
    cfg = compose_config(["trainer=cpu", *args.overrides], out_dir)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg, datamodule).eval()
    m = cfg.metrics
    t0 = time.perf_counter()
    options = MetricOptions(features=m.features, n_reference=m.n_reference, reference_split=m.reference_split,
                            inception_weights=m.inception_weights, domain_weights=m.domain_weights,
                            panel=m.get("panel", True), cache_dir=m.cache_dir, kid_subsets=m.kid_subsets)
    evaluator, protocol = build_evaluator(datamodule, options, warn=lambda message: None)
    setup_s = time.perf_counter() - t0
    inputs = module.family.sample_inputs(m.n_samples, generator=torch.Generator().manual_seed(m.seed))

    def evaluate() -> float:
        t = time.perf_counter()
        evaluator.reset()
        feed(evaluator, module, ({k: v[s : s + m.batch_size] for k, v in inputs.items()}
                                 for s in range(0, m.n_samples, m.batch_size)), "cpu")
        evaluator.compute()
        return time.perf_counter() - t

    rates, evals = [], []
    for _ in range(args.repeats):
        rates.append(_train_rate(args.overrides, 300, out_dir))
        evals.append(evaluate())
    rate, eval_s = statistics.median(rates), statistics.median(evals)
    n_evals = args.iterations // m.every_n_iterations + (args.iterations % m.every_n_iterations != 0) \
        if m.every_n_iterations else 1
    train_s = args.iterations / rate
    spaces = ", ".join(protocol.get("feature_spaces", {})) or "mixture scores"
    print(f"features: {spaces}; M={m.n_samples}, N={m.n_reference}, every {m.every_n_iterations} iterations, "
          f"KID subsets {m.kid_subsets}; torch threads {torch.get_num_threads()}")
    print(f"reference statistics (set-up, once per run; cached after the first): {setup_s:.1f} s")
    print(f"training: {rate:.1f} iterations/s (runs: {', '.join(f'{r:.1f}' for r in rates)})")
    print(f"one evaluation: {eval_s:.2f} s (runs: {', '.join(f'{e:.2f}' for e in evals)})")
    print(f"a {args.iterations}-iteration run: {train_s:.0f} s of training, {n_evals} evaluations = "
          f"{n_evals * eval_s:.1f} s: {100 * n_evals * eval_s / train_s:.1f}% of the training time")


if __name__ == "__main__":
    main()
