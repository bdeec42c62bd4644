"""Optuna searches (hparams_search=...): each trial returns its final optimized_metric; failed trials don't end the
study; search configs pass the command-line checks."""

from __future__ import annotations

import json
import math
import re

import pytest
import yaml

from gan_lightning.config.entry import precheck
from gan_lightning.errors import UserError

from .conftest import run_cli
from .test_config import assert_one_line_error

pytestmark = pytest.mark.slow  # end-to-end: subprocesses, DDP, sweeps or many trainings

RING = ["experiment=gaussian_ring", "hparams_search=gaussian_ring_kl", "max_iterations=300", "data.n_samples=2048",
        "logger=none", "trainer=cpu", "metrics.n_samples=500", "callbacks.progress_bar=null",
        "callbacks.model_summary=null"]


def test_search_returns_the_trials_metric_and_survives_failed_trials(tmp_path):
    sweep = tmp_path / "search"
    # With this seed the sampler picks batch sizes 256, 256, 0: two trials train, the third fails.
    proc = run_cli("train.py", "-m", *RING, "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.seed=4",
                   "data.batch_size=choice(256,0)", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]

    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 3
    failed = [job for job in jobs if (job / "error.txt").exists()]
    assert [job.name for job in failed] == ["2"]  # and the study went on to write its results

    objectives = []
    for job in jobs:
        if job in failed:
            continue
        value = json.loads((job / "metrics.jsonl").read_text().splitlines()[-1])["metrics/mode_kl"]
        objectives.append(math.inf if math.isnan(value) else value)  # a run that covers no mode scores inf
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert result["best_value"] == min(objectives)
    assert set(result["best_params"]) == {"optim.generator.lr", "optim.discriminator.lr", "optim.n_critic",
                                          "data.batch_size"}
    assert result["best_params"]["data.batch_size"] == 256


def test_a_metric_the_run_does_not_log_ends_the_search_with_one_line(tmp_path):
    proc = run_cli("train.py", "-m", *RING, "max_iterations=5", "hydra.sweeper.n_trials=2",
                   "optimized_metric=metrics/fid", f"hydra.sweep.dir={tmp_path / 'search'}")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[-1].startswith("error: optimized_metric: metrics/fid is not among the metrics this run logged ("), \
        lines[-1]
    assert "metrics/mode_kl" in lines[-1]
    assert not (tmp_path / "search" / "1").exists()  # no second trial


@pytest.mark.parametrize("args", [
    ["hparams_search=dcgan_fid"],
    ["experiment=gaussian_ring", "hparams_search=gaussian_ring_kl", "optim.generator.lr=tag(log,interval(1e-4,1e-2))"],
    ["optimized_metric=metrics/fid_domain"],
])
def test_search_command_lines_pass_the_checks(args):
    precheck(["-m", *args], "train")


@pytest.mark.parametrize("args,message", [
    (["hparams_search=dcgan_fdi"], "unknown hparams_search 'dcgan_fdi'; valid options: dcgan_fid, gaussian_ring_kl"),
    (["hparams_serch=dcgan_fid"], "Could not override 'hparams_serch'"),
    (["optimized_metric=fid"], "optimized_metric must be null or a metric name such as metrics/fid_domain"),
    (["hparams_search=dcgan_fid", "metrics=none"], "needs metrics during training"),
    (["optim.generator.lr=interval(-1,1)"], "optim.generator.lr must be a positive number; got -1"),
])
def test_bad_search_command_lines(args, message):
    with pytest.raises(UserError, match=re.escape(message)):
        precheck(["-m", *args], "train")


def test_misspelled_search_group_is_one_line(tmp_path):
    proc = run_cli("train.py", "-m", "hparams_serch=dcgan_fid", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert_one_line_error(proc, "hparams_serch")
    assert not (tmp_path / "sweep").exists()
