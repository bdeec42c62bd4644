"""Unlabelled Fashion-MNIST at equal wall time: the hand-written DCGAN loop, the paper default and `python train.py`.

    python benchmarks/unconditional_results.py speed --minutes 2            # a quiet machine: nothing else running
    python benchmarks/unconditional_results.py train --seeds 0 1 2 --jobs 2
    python benchmarks/unconditional_results.py timed --minutes 5 --seeds 0  # a quiet machine: the direct check

The systems: `loop`, `benchmarks/plain_loop.py --no-ema` (the textbook loop: DCGAN, Adam 2e-4, no EMA); `default`,
`python train.py model=dcgan` (the paper's DCGAN recipe: `python train.py` before the self-conditioned recipe);
`recipe`, `python train.py` (model=self_conditioned with its defaults).

speed: each system trains --minutes on 2 threads, one after the other. Its iterations a second of training (after
the data is loaded) go to <out>/speed.json, with the recipe's clustering time, which its budget pays: T minutes
are rate x (60 T - clustering s) iterations, rounded to 100.

train: each system and seed trains for the iterations of the longest of --points (minutes), and every point is
scored on 10,000 samples with the domain metrics of `evaluate.py features=domain` (the loop: the same evaluator
in-process, on samples of G in train mode, as the loop samples). `--jobs 2` trains two side by side with one thread
each (iteration budgets do not depend on the load). Sample grids of seed 0 at each point, side by side:
<out>/grids-<minutes>min.png (loop | paper default | recipe).

timed: the direct check: --minutes of wall time on 2 threads for each system and seed, one after the other (the
loop, then train.py with trainer.max_time), scored the same way.

Each command prints Markdown tables and writes <out>/<command>.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torchvision.io import read_image
from torchvision.utils import make_grid, save_image

from runs import evaluate, run, table, train, train_and_score

SYSTEMS = {"loop": None, "default": ["model=dcgan"], "recipe": []}  # None: benchmarks/plain_loop.py
NAMES = {"loop": "plain loop (`plain_loop.py --no-ema`)", "default": "paper default (`python train.py model=dcgan`)",
         "recipe": "`python train.py` (self-conditioned recipe)"}
KEYS = ("fid_domain", "precision_domain", "recall_domain", "classes_covered")
UNIT = 100  # budgets are rounded to this many iterations: the checkpoint interval


def run_loop(run_dir: Path, seed: int, budget: list[str], score_at: list[int] = (), threads: int | None = None,
             fid: bool = True) -> dict:
    """``plain_loop.py --no-ema`` into ``run_dir`` (once); its json: iterations, training_s, {iteration: scores}."""
    out = run_dir / "loop.json"
    if not out.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        run(["benchmarks/plain_loop.py", "--no-ema", "--seed", str(seed), *budget, "--json", str(out),
             "--out", str(run_dir / "grid.png"), *(["--fid", "10000"] if fid else []),
             *(["--score-at", *map(str, score_at)] if score_at else [])], threads)
    return json.loads(out.read_text())


def clustering_s(run_dir: Path) -> float:
    """The clustering time a train.py run logged (0 for a model without clusters)."""
    found = re.search(r"self_conditioned: .* in ([0-9.]+) s", (run_dir / "train.log").read_text())
    return float(found.group(1)) if found else 0.0


def checkpoint_iteration(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=False)["gan_lightning"]["iteration"])


def max_time(minutes: float) -> str:
    seconds = round(minutes * 60)
    return f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}"


def speed(a: argparse.Namespace) -> dict:
    rates = {}
    for name, overrides in SYSTEMS.items():
        run_dir = Path(a.out) / "speed" / name
        if overrides is None:
            done = run_loop(run_dir, 0, ["--minutes", str(a.minutes)], fid=False)
            iterations, seconds, cluster_s = done["iterations"], done["training_s"], 0.0
        else:
            if not (run_dir / "checkpoints/last.ckpt").exists():
                train(run_dir, [*overrides, max_time(a.minutes), "max_iterations=10000000"])
            iterations, seconds = checkpoint_iteration(run_dir / "checkpoints/last.ckpt"), 60.0 * a.minutes
            cluster_s = clustering_s(run_dir)
        rates[name] = {"iterations": iterations, "training_s": seconds, "per_s": iterations / seconds,
                       "clustering_s": cluster_s}
    print(f"| system | iterations in {a.minutes} min | iterations/s | clustering s |\n|---|---|---|---|")
    for name, r in rates.items():
        print(f"| {NAMES[name]} | {r['iterations']} | {r['per_s']:.2f} | {r['clustering_s']:.1f} |")
    return rates


def budgets(a: argparse.Namespace) -> dict[str, dict[float, int]]:
    """{system: {minutes: iterations}} from speed.json."""
    rates = json.loads((Path(a.out) / "speed.json").read_text())
    return {name: {t: UNIT * max(1, round(r["per_s"] * (60 * t - r["clustering_s"]) / UNIT)) for t in a.points}
            for name, r in rates.items()}


def train_system(name: str, seed: int, points: dict[float, int], a: argparse.Namespace) -> dict[float, dict]:
    """One system and seed trained for the longest budget and scored at each; {minutes: result}."""
    run_dir, last = Path(a.out) / f"{name}-s{seed}", max(points.values())
    threads = 1 if a.jobs > 1 else None
    if SYSTEMS[name] is None:
        done = run_loop(run_dir, seed, ["--iterations", str(last)], list(points.values()), threads)
        scores = {int(k): v for k, v in done["scores"].items()}
        return {t: {"metrics": scores[n], "iteration": n} for t, n in points.items()}
    results = train_and_score(run_dir, [*SYSTEMS[name], f"seed={seed}"], last, points, threads, every=UNIT)
    for t, n in points.items():  # the grid of each point (seed 0): generate.py's 64-sample PNG
        grid = run_dir / f"grid-{n}.png"
        if seed == 0 and not grid.exists():
            ckpt = run_dir / "checkpoints" / ("last.ckpt" if n == last else f"iter{n:07d}.ckpt")
            run(["generate.py", f"ckpt={ckpt}", "n=64", f"out={run_dir / f'grid-{n}.npz'}"], threads)
    for ckpt in (run_dir / "checkpoints").glob("iter*.ckpt"):  # keep the scored points only
        if int(ckpt.stem[4:]) not in points.values():
            ckpt.unlink()
    return results


def side_by_side(a: argparse.Namespace, plan: dict[str, dict[float, int]]) -> None:
    for t in a.points:
        grids = []
        for name in SYSTEMS:
            n = plan[name][t]
            run_dir = Path(a.out) / f"{name}-s0"
            path = run_dir / f"grid-{n}.png"
            if not path.exists():  # the loop's last grid
                path = run_dir / "grid.png"
            grids.append(read_image(str(path)).float() / 255)
        save_image(make_grid(grids, nrow=len(grids), padding=8, pad_value=1.0), Path(a.out) / f"grids-{t:g}min.png")


def summary(rows: dict[str, list[dict]], title: str) -> None:
    table(title, KEYS, rows)
    loop = [r["metrics"]["fid_domain"] for r in rows[next(k for k in rows if k.startswith(NAMES["loop"]))]]
    for name, results in rows.items():
        fids = [r["metrics"]["fid_domain"] for r in results]
        print(f"- {name}: FID / the loop's = {statistics.mean(fids) / statistics.mean(loop):.2f}")


def train_all(a: argparse.Namespace) -> dict:
    plan = budgets(a)
    jobs = [(name, seed) for seed in a.seeds for name in a.systems]
    with ThreadPoolExecutor(a.jobs) as pool:
        done = dict(zip(jobs, pool.map(lambda job: train_system(*job, plan[job[0]], a), jobs)))
    if 0 in a.seeds and list(a.systems) == list(SYSTEMS):
        side_by_side(a, plan)
    tables = {}
    for t in a.points:
        rows = {NAMES[name]: [done[(name, seed)][t] for seed in a.seeds] for name in a.systems}
        summary(rows, f"{t:g} minutes of 2 quiet cores (seeds {a.seeds}; iterations from speed.json)")
        tables[t] = rows
    return {"budgets": plan, "tables": tables}


def timed(a: argparse.Namespace) -> dict:
    rows: dict[str, list[dict]] = {NAMES[name]: [] for name in a.systems}
    for seed in a.seeds:
        for name in a.systems:
            overrides = SYSTEMS[name]
            run_dir = Path(a.out) / f"timed-{a.minutes:g}min" / f"{name}-s{seed}"
            if overrides is None:
                done = run_loop(run_dir, seed, ["--minutes", str(a.minutes)])
                result = {"metrics": next(iter(done["scores"].values())), "iteration": done["iterations"]}
            else:
                if not (run_dir / "checkpoints/last.ckpt").exists():
                    train(run_dir, [*overrides, f"seed={seed}", max_time(a.minutes),
                                    "max_iterations=10000000"])
                data = evaluate(run_dir / "checkpoints/last.ckpt", run_dir / "evaluate.json")
                result = {"metrics": data["metrics"], "iteration": data["checkpoint"]["iteration"]}
            rows[NAMES[name]].append(result)
    summary(rows, f"{a.minutes} minutes of wall time on 2 cores, one run after the other (seeds {a.seeds})")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["speed", "train", "timed"])
    parser.add_argument("--out", default="runs/unconditional")
    parser.add_argument("--minutes", type=float, default=2, help="speed, timed: the wall time of each run")
    parser.add_argument("--points", type=float, nargs="+", default=[2, 5, 10], help="train: minutes of wall time")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="train: runs side by side (one thread each)")
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS), default=list(SYSTEMS))
    a = parser.parse_args()
    result = {"speed": speed, "train": train_all, "timed": timed}[a.command](a)
    out = Path(a.out) / f"{a.command}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
