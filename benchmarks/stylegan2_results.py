"""StyleGAN2 beside the DCGAN presets on Fashion-MNIST, at equal iterations and at equal wall time, and
differentiable augmentation (DiffAugment, ADA) on small training subsets.

    python benchmarks/stylegan2_results.py compare --seeds 0 1 2 --iterations 2500 --time-ratio 4.25 --jobs 2
    python benchmarks/stylegan2_results.py augment --seeds 0 1 2 --subsets 1000 5000 --iterations 2000 --jobs 2

compare: `model=stylegan2` for --iterations; the tuned DCGAN preset (`experiment=fashion_mnist/dcgan_non_saturating`)
for --iterations x --time-ratio iterations, with a checkpoint at --iterations; the paper default `model=dcgan` for
--iterations. --time-ratio is StyleGAN2's cost of an iteration over DCGAN's, measured on the same
machine the same day with `python benchmarks/bench_step.py --models dcgan stylegan2` (2 threads, a quiet machine),
so the equal-time point does not depend on the load while these runs share the cores. Each checkpoint is scored by
`evaluate.py n=10000 features=domain` against the training split (FID, precision/recall, classes covered, and
StyleGAN2's ppl_domain).

augment: the DCGAN preset on the first --subsets training images, with augment=none, diffaugment and ada, each for
--iterations, scored against the 10,000 test images (`reference_split=test`: what the generator learned beyond
the subset) with the final ADA probability p.

``--jobs 2`` runs two trainings side by side with one thread each. Writes <out>/results.json and prints Markdown.
"""

from __future__ import annotations

import argparse
import csv
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import runs
from runs import table

DCGAN_PRESET = "experiment=fashion_mnist/dcgan_non_saturating"
KEYS = ("fid_domain", "precision_domain", "recall_domain", "classes_covered", "class_kl", "ppl_domain")
AUGMENTS = ("none", "diffaugment", "ada")
MINUTES = {"minutes (1 thread)": lambda r: r["minutes"]}


def last_logged(run_dir: Path, key: str) -> float | None:
    """The last value of ``key`` in the run's CSV log, if it logged one."""
    values = []
    for path in run_dir.rglob("metrics.csv"):
        with path.open() as f:
            values += [float(row[key]) for row in csv.DictReader(f) if row.get(key)]
    return values[-1] if values else None


def train_and_score(name: str, seed: int, overrides: list[str], iterations: int, points: dict[str, int],
                    a: argparse.Namespace, extra: list[str] = ()) -> dict:
    """``runs.train_and_score`` for run ``<name>-s<seed>`` under --out, with ADA's final p in each result."""
    run_dir = Path(a.out) / f"{name}-s{seed}"
    results = runs.train_and_score(run_dir, [*overrides, f"seed={seed}"], iterations, points,
                                   threads=1 if a.jobs > 1 else None, extra=extra)
    return {label: {**r, "p": last_logged(run_dir, "train/p")} for label, r in results.items()}


def compare(a: argparse.Namespace) -> dict:
    n, long = a.iterations, round(a.iterations * a.time_ratio)
    systems = {"stylegan2": (["model=stylegan2"], n, {"equal": n}),
               "dcgan_non_saturating": ([DCGAN_PRESET], long, {"equal": n, "time": long}),
               "dcgan": (["model=dcgan"], n, {"equal": n})}  # the paper default, at equal iterations only
    jobs = [(name, seed) for seed in a.seeds for name in systems]
    with ThreadPoolExecutor(a.jobs) as pool:
        done = list(pool.map(lambda job: (job, train_and_score(*job, *systems[job[0]], a)), jobs))
    rows: dict[str, list[dict]] = {}
    for (name, _), results in done:
        for label, result in results.items():
            point = "equal iterations" if label == "equal" else "equal wall time"
            rows.setdefault(f"{name}, {point}", []).append(result)
    order = sorted(rows, key=lambda k: ("wall" in k, not k.startswith("stylegan2")))
    rows = {k: rows[k] for k in order}
    title = f"seeds {a.seeds}; StyleGAN2 {n} iterations = DCGAN {long} iterations of wall time (x{a.time_ratio})"
    table(title, KEYS, rows, MINUTES)
    return rows


def augment(a: argparse.Namespace) -> dict:
    jobs = [(subset, policy, seed) for seed in a.seeds for subset in a.subsets for policy in AUGMENTS]

    def one(job):
        subset, policy, seed = job
        overrides = [DCGAN_PRESET, f"data.subset={subset}", f"augment={policy}"]
        return job, train_and_score(f"dcgan-{subset}-{policy}", seed, overrides, a.iterations,
                                    {"end": a.iterations}, a, ["reference_split=test"])["end"]

    with ThreadPoolExecutor(a.jobs) as pool:
        done = list(pool.map(one, jobs))
    rows: dict[str, list[dict]] = {}
    for (subset, policy, _), result in sorted(done, key=lambda d: (d[0][0], AUGMENTS.index(d[0][1]))):
        rows.setdefault(f"{subset} images, augment={policy}", []).append(result)
    table(f"seeds {a.seeds}; DCGAN preset, {a.iterations} iterations; FID against the test split", KEYS[:5], rows,
          {**MINUTES, "p": lambda r: r["p"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=["compare", "augment"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=None,
                        help="compare: StyleGAN2's (default 2500); augment: each run's (default 2000)")
    parser.add_argument("--time-ratio", type=float, default=4.25,
                        help="StyleGAN2's seconds an iteration over DCGAN's (bench_step.py --models)")
    parser.add_argument("--subsets", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--jobs", type=int, default=1, help="trainings side by side (one thread each when > 1)")
    parser.add_argument("--out", default=None, help="default: runs/stylegan2 or runs/augment")
    a = parser.parse_args()
    a.iterations = a.iterations or (2500 if a.study == "compare" else 2000)
    a.out = a.out or f"runs/{'stylegan2' if a.study == 'compare' else 'augment'}"
    Path(a.out).mkdir(parents=True, exist_ok=True)
    rows = compare(a) if a.study == "compare" else augment(a)
    (Path(a.out) / "results.json").write_text(json.dumps({"args": vars(a), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
