"""What the results scripts share: train.py and evaluate.py in subprocesses, and mean ± sd cells."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["logger=csv", "trainer=cpu", "metrics=none", "~callbacks.progress_bar",
         "callbacks.samples.every_n_iterations=1000000"]  # no metrics, grids or progress bar during the run


def run(args: list[str], threads: int | None = None) -> None:
    """``python ARGS`` in the repository root (``threads``: OMP/MKL threads), or exit with its stderr's tail."""
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {})}
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env)
    if result.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stderr[-3000:]}")


def train(run_dir: Path, overrides: list[str], threads: int | None = None) -> float:
    """``train.py OVERRIDES`` quietly into ``run_dir``; its wall time in seconds."""
    start = time.time()
    run(["train.py", *overrides, *QUIET, f"hydra.run.dir={run_dir}"], threads)
    return time.time() - start


def evaluate(ckpt: Path, out: Path, n: int = 10000, threads: int | None = None, extra: list[str] = (),
             **record) -> dict:
    """``evaluate.py`` on ``ckpt`` (domain features) into ``out``, with ``record`` added to its json; the json."""
    run(["evaluate.py", f"ckpt={ckpt}", f"n={n}", f"out={out}", "features=domain", *extra], threads)
    data = {**json.loads(out.read_text()), **record}
    out.write_text(json.dumps(data, indent=2))
    return data


def train_and_score(run_dir: Path, overrides: list[str], iterations: int, points: dict[str, int],
                    threads: int | None = None, extra: list[str] = (), every: int | None = None) -> dict:
    """Train into ``run_dir`` for ``iterations`` (a checkpoint every ``every`` iterations, by default
    ``min(points)``; once: a finished
    run is reused) and score the checkpoint of each ``points`` entry ({label: iteration}) with ``evaluate``;
    {label: {"metrics", "iteration", "minutes"}} (minutes: the run's wall time pro rata)."""
    train_s_file = run_dir / "train_s.json"
    if not train_s_file.exists():
        train_s = train(run_dir, [*overrides, f"max_iterations={iterations}",
                                  f"callbacks.checkpoint.every_n_iterations={every or min(points.values())}"], threads)
        train_s_file.write_text(json.dumps({"train_s": train_s, "iterations": iterations}))
    train_s = json.loads(train_s_file.read_text())["train_s"]
    results = {}
    for label, iteration in points.items():
        out = run_dir / f"evaluate-{iteration}.json"
        if not out.exists():
            name = "last" if iteration == iterations else f"iter{iteration:07d}"  # the end: last.ckpt
            evaluate(run_dir / f"checkpoints/{name}.ckpt", out, threads=threads, extra=extra)
        data = json.loads(out.read_text())
        results[label] = {"metrics": data["metrics"], "iteration": data["checkpoint"]["iteration"],
                          "minutes": train_s / 60 * iteration / iterations}
    return results


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{statistics.mean(values):.3g} ± {statistics.stdev(values):.2g}"


def table(title: str, keys: tuple[str, ...], rows: dict[str, list[dict]],
          columns: dict[str, Callable[[dict], float | None]] = {}) -> None:
    """Print a Markdown table: a row per entry of ``rows`` (its runs' results: ``metrics``, ``iteration``), the
    mean ± sd of each metric of ``keys`` that some run has, the iterations, then each of ``columns`` (name: the
    value of a result, None where it has none); "-" where a run lacks a value."""
    keys = [k for k in keys if any(k in r["metrics"] for results in rows.values() for r in results)]

    def cell(values: list) -> str:
        return mean_sd(values) if all(v is not None for v in values) else "-"

    print(f"\n{title}\n| run | {' | '.join(keys)} | iterations | {' | '.join(columns)} |".replace(" |  |", " |"))
    print("|---|" + "---|" * (len(keys) + 1 + len(columns)))
    for name, results in rows.items():
        cells = [cell([r["metrics"].get(k) for r in results]) for k in keys]
        cells.append("/".join(map(str, sorted({r["iteration"] for r in results}))))
        cells += [cell([get(r) for r in results]) for get in columns.values()]
        print(f"| {name} | {' | '.join(cells)} |")
