"""docs/results.md "Too few labels": for each N, a class-conditional GAN per seed trained on N labelled
Fashion-MNIST images a class (experiment=few_labels/n<N>, its subset drawn by the seed), 3N synthetic images a
class from each (synthesize.py), then augmentation_gain.py over the seeds' datasets (one classifier seed each: a
replicate is a GAN seed with its own real subset).

    python benchmarks/few_labels_results.py --n 10 50 --seeds 0 1 2 --jobs 2 --out runs/few_labels
    python benchmarks/few_labels_results.py --n 10 --set model.diversity_weight=1 --out runs/few_labels_div1

Writes <out>/n<N>/gain.json (augmentation_gain.py's) and <out>/summary.json, and prints a Markdown table per N.
Finished steps are reused (a run with its last.ckpt, a dataset with its provenance.json).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runs import run, train

from gan_lightning.metrics.augmentation import table


def gan_and_dataset(n: int, seed: int, out: Path, threads: int | None, filter: float | None,
                    overrides: list[str]) -> dict:
    run_dir = out / f"n{n}" / f"gan-s{seed}"
    record = run_dir / "train_s.json"
    if not record.exists():
        train_s = train(run_dir, [f"experiment=few_labels/n{n}", f"seed={seed}", *overrides], threads)
        record.write_text(json.dumps({"train_s": train_s}))
    synthetic = out / f"n{n}" / f"synthetic-s{seed}"
    if not (synthetic / "provenance.json").exists():
        run(["synthesize.py", f"ckpt={run_dir / 'checkpoints/last.ckpt'}", f"per_class={3 * n}",
             f"out={synthetic}", f"seed={seed}", *([f"filter={filter}"] if filter else [])], threads)
    return {"n": n, "seed": seed, "synthetic": str(synthetic),
            "train_minutes": json.loads(record.read_text())["train_s"] / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50, 100, 500])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="GANs trained side by side (one thread each when > 1)")
    parser.add_argument("--filter", type=float, default=None, help="synthesize.py's filter=")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="train.py overrides for every GAN (a candidate recipe), e.g. model.diversity_weight=1")
    parser.add_argument("--out", default="runs/few_labels")
    a = parser.parse_args()
    out = Path(a.out).resolve()
    threads = 1 if a.jobs > 1 else None
    with ThreadPoolExecutor(a.jobs) as pool:
        made = list(pool.map(lambda job: gan_and_dataset(*job, out, threads, a.filter, a.set),
                             [(n, s) for n in a.n for s in a.seeds]))
    summary = {}
    for n in a.n:
        datasets = [m["synthetic"] for m in made if m["n"] == n]
        gain = out / f"n{n}" / "gain.json"
        start = time.time()
        if not gain.exists():
            run(["augmentation_gain.py", f"synthetic=[{','.join(datasets)}]", f"out={gain}"])
        result = json.loads(gain.read_text())
        summary[n] = {"summary": result["summary"], "neighbours": result["neighbours"],
                      "gan_minutes": [m["train_minutes"] for m in made if m["n"] == n],
                      "measure_minutes": (time.time() - start) / 60}
        print(f"\n### N = {n} a class ({len(datasets)} GAN seeds; GAN training "
              f"{sum(summary[n]['gan_minutes']) / len(datasets):.1f} min each)")
        print(table(result["summary"], result["neighbours"]))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
