"""Never lose a run (signals, kills, bad checkpoints, W&B trouble), never crash on bad input, never run code
from a checkpoint."""

from __future__ import annotations

import csv
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gan_lightning.train.checkpoints import load_module, read_checkpoint
from gan_lightning.errors import UserError
from gan_lightning.train.fit import train

from .conftest import HANG_LIMIT_S, ROOT

pytestmark = pytest.mark.slow  # end-to-end: subprocesses, DDP, sweeps or many trainings

LONG_RUN = ["experiment=gaussian_ring", "max_iterations=1000000", "logger=csv", "trainer=cpu",
            "~callbacks.progress_bar", "~callbacks.model_summary", "callbacks.samples.every_n_iterations=0",
            "module.log_every_n_iterations=10", "data.n_samples=4096"]


def start(run_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *LONG_RUN, f"hydra.run.dir={run_dir}", *args],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for_iteration(run_dir: Path, proc: subprocess.Popen, iteration: int, timeout: float = HANG_LIMIT_S) -> None:
    """Until the run has logged ``iteration`` (read from its CSV log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        for path in run_dir.glob("csv/version_*/metrics.csv"):
            with open(path) as f:
                its = [float(r["train/iteration"]) for r in csv.DictReader(f) if r.get("train/iteration")]
            if its and its[-1] >= iteration:
                return
        time.sleep(0.5)
    raise AssertionError(f"the run did not reach iteration {iteration} in {timeout} s")


def resume(run_dir: Path, max_iterations: int) -> subprocess.CompletedProcess:
    args = [a for a in LONG_RUN if not a.startswith("max_iterations")]
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args, f"max_iterations={max_iterations}",
                           f"hydra.run.dir={run_dir}", "ckpt_path=last"], cwd=ROOT, capture_output=True, text=True,
                          timeout=HANG_LIMIT_S)


def test_sigterm_writes_a_checkpoint_exits_cleanly_and_resumes(tmp_path):
    run_dir = tmp_path / "run"
    proc = start(run_dir, "callbacks.checkpoint.every_n_iterations=1000000")  # no periodic checkpoint
    wait_for_iteration(run_dir, proc, 30)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=HANG_LIMIT_S)
    assert proc.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    stopped_at = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["gan_lightning"]["iteration"]
    assert stopped_at >= 30

    done = resume(run_dir, stopped_at + 20)
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["gan_lightning"]["iteration"] == stopped_at + 20


def test_sigkill_loses_only_the_work_since_the_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    proc = start(run_dir, "callbacks.checkpoint.every_n_iterations=20")
    wait_for_iteration(run_dir, proc, 50)
    proc.kill()
    proc.wait(timeout=HANG_LIMIT_S)
    last = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # complete and readable
    saved_at = last["gan_lightning"]["iteration"]
    assert saved_at >= 40 and saved_at % 20 == 0

    done = resume(run_dir, saved_at + 20)
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["gan_lightning"]["iteration"] == saved_at + 20


@pytest.fixture
def trained(make_cfg, tmp_path):
    result = train(make_cfg("model=fcgan", "max_iterations=2", output_dir=tmp_path / "trained"))
    return Path(result["last_checkpoint"])


def test_resuming_with_another_model_config_is_refused(make_cfg, trained, tmp_path):
    cfg = make_cfg("model=dcgan", f"ckpt_path={trained}", "max_iterations=4", output_dir=tmp_path / "other")
    with pytest.raises(UserError, match="was trained with other settings .*model"):
        train(cfg)
    cfg = make_cfg("model=fcgan", "optim=wgan", f"ckpt_path={trained}", "max_iterations=4",
                   output_dir=tmp_path / "other2")
    with pytest.raises(UserError, match="optim.discriminator: 'torch.optim.Adam' vs 'torch.optim.RMSprop'"):
        train(cfg)


def test_truncated_and_foreign_checkpoints_are_refused(make_cfg, trained, tmp_path):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(trained.read_bytes()[: trained.stat().st_size // 2])
    with pytest.raises(UserError, match="not a readable checkpoint"):
        train(make_cfg("model=fcgan", f"ckpt_path={truncated}", output_dir=tmp_path / "a"))
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"model": {"w": torch.zeros(3)}}, foreign)
    with pytest.raises(UserError, match="not a gan_lightning checkpoint"):
        train(make_cfg("model=fcgan", f"ckpt_path={foreign}", output_dir=tmp_path / "b"))


def test_a_checkpoint_cannot_run_code(trained, tmp_path):
    ckpt = torch.load(trained, weights_only=True)
    ckpt["gan_lightning"]["config"]["model"]["_target_"] = "os.system"
    evil = tmp_path / "evil.ckpt"
    torch.save(ckpt, evil)
    with pytest.raises(UserError, match="refusing to instantiate 'os.system'"):
        load_module(evil)

    class Payload:  # a pickled object: weights_only loading refuses it instead of running its code
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"gan_lightning": {}, "state_dict": {}, "payload": Payload()}, evil)
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_module(evil)
    assert not (tmp_path / "pwned").exists()


def test_unreachable_wandb_falls_back_to_offline_and_never_records_the_key(make_cfg, monkeypatch, caplog):
    secret = "local-0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there: refused at once
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = make_cfg("logger=wandb", "model=fcgan", "max_iterations=3", "callbacks.samples.every_n_iterations=0")
    with caplog.at_level(logging.WARNING, logger="gan_lightning.train.loggers"):
        result = train(cfg)
    warnings = [r.getMessage() for r in caplog.records if r.name == "gan_lightning.train.loggers"]
    assert len(warnings) == 1 and "unreachable" in warnings[0] and "offline" in warnings[0]
    run_dir = Path(result["output_dir"])
    assert list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the API key leaked into {path}"


def _poison_generator_loss(monkeypatch, bad_calls):
    """Make the generator loss NaN on the calls (1-based) in ``bad_calls``."""
    from gan_lightning import losses

    original, calls = losses.NonSaturating.generator_loss, {"n": 0}

    def poisoned(self, fake):
        calls["n"] += 1
        loss = original(self, fake)
        return loss * float("nan") if bad_calls(calls["n"]) else loss

    monkeypatch.setattr(losses.NonSaturating, "generator_loss", poisoned)
    return calls


def test_divergence_rollback_goes_back_to_the_last_checkpoint_and_finishes(make_cfg, monkeypatch, caplog):
    calls = _poison_generator_loss(monkeypatch, lambda n: n == 4)
    cfg = make_cfg("model=fcgan", "max_iterations=6", "callbacks.checkpoint.every_n_iterations=2",
                   "divergence.action=rollback")
    with caplog.at_level(logging.WARNING, logger="gan_lightning.train.fit"):
        result = train(cfg)
    assert result["iteration"] == 6  # finished despite the NaN at iteration 4
    assert calls["n"] == 8  # iterations 1-4, then 3-6 again from the iteration-2 checkpoint
    assert "rolling back to" in caplog.text and "iteration 4" in caplog.text
    last = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_divergence_rollback_gives_up_after_max_rollbacks(make_cfg, monkeypatch):
    from gan_lightning.errors import TrainingDiverged

    calls = _poison_generator_loss(monkeypatch, lambda n: n >= 3)  # diverges every time
    cfg = make_cfg("model=fcgan", "max_iterations=6", "callbacks.checkpoint.every_n_iterations=1",
                   "divergence.action=rollback", "divergence.max_rollbacks=2")
    with pytest.raises(TrainingDiverged, match=r"at iteration 3.*after 2 rollbacks"):
        train(cfg)
    assert calls["n"] == 5  # the first NaN, then one per rollback
    last = read_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert last["gan_lightning"]["iteration"] == 2


def test_a_resumed_run_continues_its_wandb_run(make_cfg, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = make_cfg("model=fcgan", "max_iterations=2", "logger=wandb", "metrics=none")
    first = train(cfg)
    run_id = read_checkpoint(first["last_checkpoint"])["gan_lightning"]["wandb_run_id"]
    assert run_id
    resumed = train(make_cfg("model=fcgan", "max_iterations=4", "logger=wandb", "metrics=none", "ckpt_path=last"))
    assert resumed["iteration"] == 4
    runs = sorted((Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*"))
    # (offline-run-<time>-<id>, with "-1" added when both runs started in the same second)
    assert len(runs) == 2 and all(f"-{run_id}" in r.name for r in runs), (run_id, [r.name for r in runs])
