"""Hydra multirun sweeps: one W&B run per job in one group, and a failing job doesn't stop the others."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .conftest import HANG_LIMIT_S, ROOT, run_cli

WANDB = str(ROOT / ".venv/bin/wandb") if (ROOT / ".venv/bin/wandb").exists() else "wandb"


def run_record(run_dir: Path) -> dict:
    """The run's own record, read back with wandb's tools from its offline transaction log."""
    out = subprocess.run([WANDB, "leet", "inspect", "--json", str(run_dir)], capture_output=True, text=True,
                         timeout=HANG_LIMIT_S, check=True).stdout
    return next(json.loads(line)["run"] for line in out.splitlines() if '"type":"run"' in line)


def test_sweep_jobs_are_grouped_named_and_isolated_from_failures(tmp_path):
    sweep = tmp_path / "my-sweep"
    proc = run_cli(
        "train.py", "-m", "experiment=gaussian_ring", "loss=non_saturating,hinge", "data.batch_size=64,0",
        "max_iterations=10", "data.n_samples=2048", "logger=wandb", "~callbacks.progress_bar",
        "callbacks.samples.every_n_iterations=0", "trainer=cpu", f"hydra.sweep.dir={sweep}",
        env={"WANDB_API_KEY": "", "NETRC": str(tmp_path / "none"), "WANDB_MODE": ""}, timeout=HANG_LIMIT_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(jobs) == 4
    failed = sorted(p.name for p in jobs if (p / "error.txt").exists())
    assert failed == ["1", "3"]  # loss=non_saturating / hinge with data.batch_size=0
    assert "data.batch_size must be a positive integer" in (sweep / failed[0] / "error.txt").read_text()

    records = [run_record(next((job / "wandb").glob("offline-run-*"))) for job in jobs if job.name not in failed]
    assert len(records) == 2  # the jobs after a failure still ran
    assert {r["run_group"] for r in records} == {"my-sweep"}
    assert sorted(r["display_name"] for r in records) == ["data.batch_size=64,loss=hinge",
                                                          "data.batch_size=64,loss=non_saturating"]
    assert all("loss=" + r["display_name"].split("loss=")[1] in r["tags"] for r in records)
    for job in jobs:
        if job.name not in failed:
            assert (job / "checkpoints" / "last.ckpt").exists()
