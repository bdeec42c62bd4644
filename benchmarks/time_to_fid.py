"""Time to FID: the wall time a run took to first reach each FID threshold, read from its ``metrics.jsonl``.

    python train.py trainer.max_time=00:00:05:00 metrics.every_n_iterations=250 hydra.run.dir=runs/ttf-default
    python benchmarks/time_to_fid.py runs/ttf-default --fid 20 15 10

Each evaluation line carries ``elapsed_s`` (training wall time so far) and ``evaluation_s`` (the part of it spent
in earlier evaluations). A threshold's time is that of the first evaluation at or below it, with and without the
evaluations; the resolution is the evaluation interval.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gan_lightning.report import read_metrics


def time_to_fid(history: list[dict], threshold: float, key: str) -> dict | None:
    for row in history:
        if key in row and row[key] <= threshold and "elapsed_s" in row:
            return {"iteration": row["iteration"], "fid": row[key], "wall_s": row["elapsed_s"],
                    "training_s": row["elapsed_s"] - row["evaluation_s"]}
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (each with a metrics.jsonl)")
    parser.add_argument("--fid", type=float, nargs="+", default=[20.0, 15.0, 10.0], help="thresholds")
    parser.add_argument("--key", default="metrics/fid_domain")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    results = {}
    print(f"| run | {args.key.removeprefix('metrics/')} <= | iteration | wall s (with evaluations) | training s |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        history = read_metrics(run)
        if not history:
            raise SystemExit(f"{run}: no metrics.jsonl with evaluations; train with metrics on")
        results[run] = {}
        for threshold in args.fid:
            hit = time_to_fid(history, threshold, args.key)
            results[run][threshold] = hit
            if hit is None:
                best = min((r[args.key] for r in history if args.key in r), default=float("nan"))
                print(f"| {run} | {threshold:g} | not reached (best {best:.2f}) | | |")
            else:
                print(f"| {run} | {threshold:g} | {hit['iteration']} | {hit['wall_s']:.0f} | {hit['training_s']:.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
