"""Hydra multirun sweeps: one W&B run per job in one group, all in the sweep's W&B folder (one offline dashboard
shows them together), and a failing job doesn't stop the others."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import HANG_LIMIT_S, ROOT, run_cli

pytestmark = pytest.mark.slow  # end-to-end: subprocesses, DDP, sweeps or many trainings

WANDB = str(ROOT / ".venv/bin/wandb") if (ROOT / ".venv/bin/wandb").exists() else "wandb"


def run_record(run_dir: Path) -> dict:
    """The run's own record, read back with wandb's tools from its offline transaction log."""
    out = subprocess.run([WANDB, "leet", "inspect", "--json", str(run_dir)], capture_output=True, text=True,
                         timeout=HANG_LIMIT_S, check=True).stdout
    return next(json.loads(line)["run"] for line in out.splitlines() if '"type":"run"' in line)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A 4-job sweep of which 2 jobs fail (data.batch_size=0), logged offline to W&B."""
    tmp_path = tmp_path_factory.mktemp("sweeps")
    sweep = tmp_path / "my-sweep"
    proc = run_cli(
        "train.py", "-m", "experiment=gaussian_ring", "loss=non_saturating,hinge", "data.batch_size=64,0",
        "max_iterations=10", "data.n_samples=2048", "logger=wandb", "~callbacks.progress_bar",
        "callbacks.samples.every_n_iterations=0", "trainer=cpu", f"hydra.sweep.dir={sweep}",
        env={"WANDB_API_KEY": "", "NETRC": str(tmp_path / "none"), "WANDB_MODE": ""}, timeout=HANG_LIMIT_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def test_sweep_jobs_are_grouped_named_and_isolated_from_failures(sweep):
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 4
    failed = sorted(p.name for p in jobs if (p / "error.txt").exists())
    assert failed == ["1", "3"]  # loss=non_saturating / hinge with data.batch_size=0
    assert "data.batch_size must be a positive integer" in (sweep / failed[0] / "error.txt").read_text()

    assert not any((job / "wandb").exists() for job in jobs)  # the runs are in the sweep's W&B folder
    records = [run_record(run) for run in sorted((sweep / "wandb").glob("offline-run-*"))]
    assert len(records) == 2  # the jobs after a failure still ran
    assert {r["run_group"] for r in records} == {"my-sweep"}
    assert sorted(r["display_name"] for r in records) == ["data.batch_size=64,loss=hinge",
                                                          "data.batch_size=64,loss=non_saturating"]
    assert all("loss=" + r["display_name"].split("loss=")[1] in r["tags"] for r in records)
    for job in jobs:
        if job.name not in failed:
            assert (job / "checkpoints" / "last.ckpt").exists()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (.ci/run installs it)")
def test_the_sweeps_runs_side_by_side_in_wandbs_terminal_dashboard(sweep):
    """As a person would: ``wandb leet <sweep>/wandb`` in a real terminal lists both runs and charts their
    metrics, with no account and no network."""
    session = f"leet-{sweep.parent.name}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "220", "-y", "60",
                    f"{WANDB} leet {sweep / 'wandb'}"], check=True, timeout=HANG_LIMIT_S)
    ids = [run.name.rsplit("-", 1)[1] for run in (sweep / "wandb").glob("offline-run-*")]
    wanted = ["Runs [2 items]", *ids, "train/loss_d", "metrics/mode_kl"]
    try:
        deadline, screen = time.monotonic() + 300, ""  # a guard for a hung terminal, not a speed limit
        while time.monotonic() < deadline and not all(w in screen for w in wanted):
            time.sleep(1)
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                                    timeout=HANG_LIMIT_S).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], timeout=HANG_LIMIT_S)
    assert len(ids) == 2 and all(w in screen for w in wanted), screen
