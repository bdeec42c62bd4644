"""Soak test: a long CPU training run with metrics on, interrupted twice (SIGTERM, then SIGKILL) and resumed with the
same command, against the same run uninterrupted. Both must end at the same iteration; their final domain FIDs
(``evaluate.py``, 10k samples) must agree within the seed-to-seed noise of the evaluation.

    python benchmarks/soak.py --iterations 40000          # about 30 minutes per run on 2 CPU cores
    python benchmarks/soak.py --iterations 8000 --out benchmarks/results/soak.json

The interrupted run is killed at 1/3 (SIGTERM: a checkpoint is written on the way out) and at 2/3 (SIGKILL: the
work since the last periodic checkpoint is lost and done again) of the uninterrupted run's wall time, and each
time restarted with ``ckpt_path=last`` in the same run directory. Prints one JSON record (and writes it with
``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RUN = ["logger=csv", "~callbacks.progress_bar", "trainer=cpu"]


def train_command(run_dir: Path, iterations: int, extra: list[str]) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *RUN, f"max_iterations={iterations}", "ckpt_path=last",
            f"hydra.run.dir={run_dir}", *extra]


def last_iteration(run_dir: Path) -> int | None:
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return None
    return int(torch.load(last, map_location="cpu", weights_only=True)["gan_lightning"]["iteration"])


def run_to_end(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def run_and_kill(cmd: list[str], after: float, sig: signal.Signals) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=after)
        raise RuntimeError("the run ended before it could be interrupted: use more --iterations")
    except subprocess.TimeoutExpired:
        proc.send_signal(sig)
        proc.wait()
    return time.perf_counter() - t0


def domain_fid(run_dir: Path, n: int, seeds: list[int]) -> list[float]:
    """The final checkpoint's domain FID for each evaluation seed (the seeds' spread is the noise)."""
    values = []
    for seed in seeds:
        out = run_dir / f"eval-seed{seed}.json"
        subprocess.run([sys.executable, str(ROOT / "evaluate.py"), f"ckpt={run_dir / 'checkpoints' / 'last.ckpt'}",
                        f"n={n}", f"seed={seed}", f"out={out}", "features=domain"], check=True,
                       stdout=subprocess.DEVNULL, cwd=ROOT)
        values.append(json.loads(out.read_text())["metrics"]["fid_domain"])
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=40000, help="length of each run (40000: ~30 min)")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="callbacks.checkpoint.every_n_iterations")
    parser.add_argument("--n", type=int, default=10000, help="samples for the final FID")
    parser.add_argument("--eval-seeds", type=int, default=3, help="evaluation seeds (their spread is the noise)")
    parser.add_argument("--dir", type=Path, default=None, help="where the two runs go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON record here")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides (e.g. model=fcgan)")
    args = parser.parse_args()

    base = args.dir or Path(tempfile.mkdtemp(prefix="soak-"))
    extra = [f"callbacks.checkpoint.every_n_iterations={args.checkpoint_every}", *args.overrides]
    straight, interrupted = base / "uninterrupted", base / "interrupted"

    wall = run_to_end(train_command(straight, args.iterations, extra))
    cmd = train_command(interrupted, args.iterations, extra)
    legs = [run_and_kill(cmd, wall / 3, signal.SIGTERM)]
    after_sigterm = last_iteration(interrupted)
    legs.append(run_and_kill(cmd, wall / 3, signal.SIGKILL))
    after_sigkill = last_iteration(interrupted)
    legs.append(run_to_end(cmd))

    seeds = list(range(args.eval_seeds))
    fid_straight, fid_interrupted = domain_fid(straight, args.n, seeds), domain_fid(interrupted, args.n, seeds)
    noise = max(max(fid_straight) - min(fid_straight), max(fid_interrupted) - min(fid_interrupted))
    record = {
        "command": " ".join(["python benchmarks/soak.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "iterations": args.iterations,
        "uninterrupted": {"seconds": round(wall, 1), "final_iteration": last_iteration(straight),
                          "fid_domain": fid_straight},
        "interrupted": {"seconds_per_leg": [round(s, 1) for s in legs],
                        "iteration_saved_on_sigterm": after_sigterm,
                        "iteration_of_last_checkpoint_at_sigkill": after_sigkill,
                        "final_iteration": last_iteration(interrupted), "fid_domain": fid_interrupted},
        "fid_difference": abs(sum(fid_straight) / len(seeds) - sum(fid_interrupted) / len(seeds)),
        "evaluation_noise": noise,
    }
    record["same_final_iteration"] = record["uninterrupted"]["final_iteration"] == \
        record["interrupted"]["final_iteration"] == args.iterations
    record["fid_within_noise"] = record["fid_difference"] <= max(noise, 1e-9)
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if not (record["same_final_iteration"] and record["fid_within_noise"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
