"""report.py: metric curves, final sample grids and a table of final metrics from a sweep's run directories."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from PIL import Image

from gan_lightning.errors import UserError
from gan_lightning.report import error_line, find_runs, read_metrics, report

from .conftest import compose_cfg, run_cli, run_entry

# 2-D ring, a few hundred iterations: metrics and a sample grid halfway and at the end, in seconds on a CPU.
RING = ["experiment=gaussian_ring", "max_iterations=300", "data.n_samples=2048", "logger=none", "trainer=cpu",
        "metrics.every_n_iterations=150", "metrics.n_samples=500", "callbacks.samples.every_n_iterations=150",
        "callbacks.progress_bar=null", "callbacks.model_summary=null"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    sweep = tmp_path_factory.mktemp("report") / "sweep"
    proc = run_cli("train.py", "-m", "loss=non_saturating,hinge", "seed=1,2", *RING, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def markdown_rows(md: str, table: int = 0) -> list[dict[str, str]]:
    """The rows of the ``table``-th markdown table of ``md`` as dicts."""
    tables, previous = [], False
    for line in md.splitlines():
        is_row = line.startswith("|")
        if is_row and not previous:
            tables.append([])
        if is_row:
            tables[-1].append(line)
        previous = is_row
    lines = tables[table]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


@pytest.mark.slow
def test_every_evaluation_is_a_line_of_metrics_jsonl(sweep):
    for job in (sweep / str(n) for n in range(4)):
        lines = [json.loads(line) for line in (job / "metrics.jsonl").read_text().splitlines()]
        assert [line["iteration"] for line in lines] == [150, 300]
        assert {"metrics/mode_kl", "metrics/modes_covered", "metrics/high_quality_frac"} <= set(lines[-1])
        # The clock of each evaluation: training wall time so far, of which earlier evaluations took a part.
        first, last = lines
        assert 0 < first["elapsed_s"] < last["elapsed_s"]
        assert first["evaluation_s"] == 0 < last["evaluation_s"] < last["elapsed_s"]


@pytest.mark.slow
def test_report_of_a_sweep(sweep):
    proc = run_entry("report.py", str(sweep))
    assert proc.returncode == 0, proc.stderr[-3000:]

    with Image.open(sweep / "report.png") as image:
        image.verify()
    with Image.open(sweep / "report.png") as image:
        assert image.format == "PNG" and image.width >= 600 and image.height >= 500

    rows = markdown_rows((sweep / "report.md").read_text())
    assert len(rows) == 4
    assert sorted(r["run"] for r in rows) == ["loss=hinge,seed=1", "loss=hinge,seed=2", "loss=non_saturating,seed=1",
                                              "loss=non_saturating,seed=2"]
    for row in rows:
        assert row["status"] == "ok"
        last = json.loads((sweep / row["job"] / "metrics.jsonl").read_text().splitlines()[-1])
        assert int(row["iteration"]) == last["iteration"] == 300
        for key in ("mode_kl", "modes_covered", "high_quality_frac"):
            value = last[f"metrics/{key}"]
            if math.isnan(value):
                assert row[key] == "nan"
            else:
                assert float(row[key]) == pytest.approx(value, rel=1e-5)


@pytest.mark.slow
def test_report_averages_over_seeds(sweep):
    report(sweep)
    rows = markdown_rows((sweep / "report.md").read_text(), table=1)
    assert sorted(r["setting"] for r in rows) == ["loss=hinge", "loss=non_saturating"]
    for row in rows:
        finals = [json.loads((sweep / str(job) / "metrics.jsonl").read_text().splitlines()[-1])["metrics/mode_kl"]
                  for job in range(4)
                  if f"- {row['setting']}" in (sweep / str(job) / ".hydra" / "overrides.yaml").read_text()]
        assert row["seeds"] == "2" and len(finals) == 2
        mean, std = (float(v) for v in row["mode_kl"].split(" ± "))
        assert mean == pytest.approx(statistics.mean(finals), rel=1e-3, abs=1e-4)
        assert std == pytest.approx(statistics.stdev(finals), rel=0.05, abs=1e-3)


@pytest.mark.slow
def test_report_of_one_run_and_elsewhere(sweep, tmp_path):
    png, md = report(sweep / "0", out=tmp_path / "out")
    assert png.is_file() and md.parent == tmp_path / "out"
    rows = markdown_rows(md.read_text())
    assert [r["run"] for r in rows] == ["0"]  # a lone run is named after its directory


@pytest.mark.parametrize("make_dir", [lambda tmp: tmp / "nope", lambda tmp: tmp])
def test_report_of_no_runs_is_one_line(tmp_path, make_dir):
    (tmp_path / "notes").mkdir()  # a directory, but not a job
    proc = run_entry("report.py", str(make_dir(tmp_path)))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: report: "), proc.stderr
    assert "Traceback" not in proc.stderr


def write_job(job: Path, overrides: list[str], metrics: list[str] = (), error: str | None = None) -> None:
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics:
        (job / "metrics.jsonl").write_text("".join(line + "\n" for line in metrics))
    if error:
        (job / "error.txt").write_text(error)


TRACEBACK = """Traceback (most recent call last):
  File "/x/training.py", line 207, in run_job
    outcome = train(cfg)
              ^^^^^^^^^^
gan_lightning.errors.UserError: data.batch_size must be a positive integer; got 0
"""


@pytest.mark.slow
def test_resumed_and_failed_runs(tmp_path):
    sweep = tmp_path / "sweep"
    # Job 0 was interrupted after its evaluation at 200 and resumed from the checkpoint at 100: 200 came twice.
    write_job(sweep / "0", ["loss=hinge", "seed=1"], [
        '{"iteration": 100, "metrics/fid_domain": 80.0}',
        '{"iteration": 200, "metrics/fid_domain": 60.0}',
        '{"iteration": 200, "metrics/fid_domain": 55.0}',
        '{"iteration": 300, "metrics/fid_domain": 40.5, "metrics/kid_domain": 0.25}',
        '{"iteration": 400, "metrics/fi',  # cut short by a kill
    ])
    write_job(sweep / "1", ["loss=hinge", "seed=2"], error=TRACEBACK)
    write_job(sweep / "2", ["loss=lsgan", "seed=1"])  # still running: nothing yet
    (sweep / ".hydra").mkdir()

    assert [r["iteration"] for r in read_metrics(sweep / "0")] == [100, 200, 300]
    assert read_metrics(sweep / "0")[1]["metrics/fid_domain"] == 55.0
    assert error_line(TRACEBACK) == "UserError: data.batch_size must be a positive integer; got 0"

    runs = find_runs(sweep)
    assert [r.name for r in runs] == ["loss=hinge,seed=1", "loss=hinge,seed=2", "loss=lsgan,seed=1"]
    png, md = report(sweep)
    assert Image.open(png).size[0] > 0
    rows = {r["job"]: r for r in markdown_rows(md.read_text())}
    assert rows["0"]["status"] == "ok" and rows["0"]["iteration"] == "300"
    assert rows["0"]["fid_domain"] == "40.5" and rows["0"]["kid_domain"] == "0.25"
    assert rows["1"]["status"] == "failed: UserError: data.batch_size must be a positive integer; got 0"
    assert rows["2"]["status"] == "no metrics"

    with pytest.raises(UserError, match="no runs"):
        find_runs(sweep / ".hydra")


def test_a_fresh_run_in_a_used_directory_keeps_the_old_history_aside(tmp_path):
    from gan_lightning.train.fit import train

    run_dir = tmp_path / "run"
    for seed in (1, 2):  # the same directory twice, from scratch both times
        train(compose_cfg([*RING, "max_iterations=150", f"seed={seed}"], run_dir))
    assert [row["iteration"] for row in read_metrics(run_dir)] == [150]  # only the second run's evaluation
    aside = list(run_dir.glob("metrics.*.jsonl"))
    assert len(aside) == 1 and [row["iteration"] for row in read_metrics_file(aside[0])] == [150]
    assert read_metrics_file(aside[0]) != read_metrics(run_dir)  # the first run's (other seed) numbers


def read_metrics_file(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
