"""Inpainting results: the GAN (model=inpaint) beside the same U-Net on the hole L1 alone (model=inpaint_l1), the
mean fill and scikit-image's biharmonic fill, with centre and free-form masks on Fashion-MNIST, at the preset's
iteration budget (max_iterations=3000: about 10 minutes on 2 CPU cores).

    python benchmarks/inpaint_results.py --seeds 0 1 2 --jobs 2 --out runs/inpaint

Each run is `train.py model=<model> data.mask=<mask> seed=K` at the budget, then `evaluate.py` on its last
checkpoint over the 10,000 test images with fixed masks (evaluate's seed 0): PSNR, SSIM and L1 on the hole, the
whole-image L1, fid_domain of the completed images against the test images, and class_kept (the share the domain
classifier puts in the original's class); the baselines get the same scores from the same images and masks (they
do not depend on the run: the table shows seed 0's). ``--jobs 2`` runs two trainings side by side with one thread
each (iteration budgets make the results independent of the machine's load; the seconds are not). Writes
<out>/results.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runs import evaluate, table, train

MINUTES = {"minutes": lambda r: r["train_s"] / 60}
MODELS = ("inpaint", "inpaint_l1")
BASELINES = ("mean_fill", "biharmonic")
KEYS = ("psnr_hole", "ssim_hole", "l1_hole", "fid_domain", "class_kept")


def train_and_score(model: str, mask: str, seed: int, a: argparse.Namespace) -> dict:
    run_dir = Path(a.out) / f"{model}-{mask}-s{seed}"
    scores = run_dir / "evaluate.json"
    threads = 1 if a.jobs > 1 else None
    if not scores.exists():
        budget = [f"max_iterations={a.iterations}"] if a.iterations else []
        train_s = train(run_dir, [f"model={model}", f"data.mask={mask}", f"seed={seed}", *budget], threads)
        evaluate(run_dir / "checkpoints/last.ckpt", scores, n=a.n, threads=threads, train_s=train_s)
    data = json.loads(scores.read_text())
    return {"metrics": data["metrics"], "train_s": data["train_s"], "iteration": data["checkpoint"]["iteration"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--masks", nargs="+", default=["center", "free_form"])
    parser.add_argument("--iterations", type=int, default=None, help="instead of the preset's max_iterations")
    parser.add_argument("--n", type=int, default=10000, help="held-out images evaluate.py scores")
    parser.add_argument("--jobs", type=int, default=1, help="trainings side by side (one thread each when > 1)")
    parser.add_argument("--out", default="runs/inpaint")
    a = parser.parse_args()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    jobs = [(model, mask, seed) for seed in a.seeds for mask in a.masks for model in MODELS]
    with ThreadPoolExecutor(a.jobs) as pool:
        done = list(pool.map(lambda job: (job, train_and_score(*job, a)), jobs))
    print(f"seeds {a.seeds}; {a.iterations or 'the preset'} iterations a run; {a.n} test images")
    results = {}
    for mask in a.masks:
        rows = {model: [r for (m, k, _), r in done if (m, k) == (model, mask)] for model in MODELS}
        first = rows["inpaint"][0]
        for name in BASELINES:
            rows[name] = [{"metrics": {k: first["metrics"].get(f"{name}_{k}") for k in KEYS
                                       if f"{name}_{k}" in first["metrics"]}, "train_s": 0.0, "iteration": 0}]
        table(f"{mask} masks ({a.n} test images)", KEYS, rows, MINUTES)
        results[mask] = rows
    (Path(a.out) / "results.json").write_text(json.dumps({"args": vars(a), "rows": results}, indent=2))


if __name__ == "__main__":
    main()
