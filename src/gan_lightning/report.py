"""Compare the runs of a sweep: ``python report.py multirun/<date>/<time>`` writes ``report.png`` (metric curves,
final sample grids) and ``report.md`` (final metrics per run) into the sweep directory.

Everything is read from the run directories: ``.hydra/overrides.yaml`` (what each job changed),
``metrics.jsonl`` (one line per evaluation, written by ``MetricsCallback``), ``samples/iter_XXXXXXX.png`` and
``error.txt`` (a failed job). Nothing is imported from the training stack, so it works offline, anywhere.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .outputs import atomic_write, check_output

# The curve to draw for a run: the first of these it logged (images: FID; 2-D mixtures: mode KL, else coverage).
CURVE_METRICS = ("metrics/fid", "metrics/fid_domain", "metrics/mode_kl", "metrics/modes_covered")
HISTORY = "metrics.jsonl"


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The run's evaluations from ``<run_dir>/metrics.jsonl``, one dict per iteration in order. A resumed run
    appends to the file, so an iteration evaluated twice keeps its last line; a line cut short (a killed
    process) is skipped."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return []
    by_iteration: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("iteration"), int):
            by_iteration[row["iteration"]] = row
    return [by_iteration[i] for i in sorted(by_iteration)]


def final_metric(run_dir: str | Path, key: str) -> float:
    """``key``'s value at the run's last evaluation (what a sweeper optimises). A ``UserError`` when the run
    logged no such metric."""
    history = read_metrics(run_dir)
    if not history:
        raise UserError(f"optimized_metric: the run wrote no metrics ({Path(run_dir) / HISTORY} is missing or "
                        "empty); keep metrics on (not metrics=none or callbacks=none)")
    last = history[-1]
    if key not in last:
        logged = ", ".join(k for k in last if k.startswith("metrics/") and not k.endswith("_std"))
        raise UserError(f"optimized_metric: {key} is not among the metrics this run logged ({logged})")
    return float(last[key])


@dataclass
class Run:
    dir: Path
    overrides: list[str] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    error: str | None = None  # first line of the exception, for a failed job
    sample: Path | None = None  # the last sample grid
    name: str = ""

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    @property
    def curve_key(self) -> str | None:
        return next((k for k in CURVE_METRICS if any(k in row for row in self.history)), None)


def is_run_dir(path: Path) -> bool:
    return any((path / p).exists() for p in (HISTORY, "samples", "checkpoints", "error.txt"))


def find_runs(directory: str | Path) -> list[Run]:
    """The runs in ``directory``: a sweep's numbered job directories (0, 1, ...), or the directory itself when
    it is one run. ``UserError`` when it doesn't exist or holds neither."""
    root = Path(directory)
    if not root.is_dir():
        raise UserError(f"report: no such directory: {directory}")
    jobs = sorted((p for p in root.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    if not jobs and (is_run_dir(root) or (root / ".hydra").is_dir()):
        jobs = [root]
    if not jobs:
        raise UserError(f"report: no runs in {directory}: expected a sweep directory (multirun/<date>/<time>, "
                        "with job directories 0, 1, ...) or a run directory")
    runs = [_read_run(job) for job in jobs]
    _name_runs(runs)
    return runs


def _read_run(job: Path) -> Run:
    samples = sorted((job / "samples").glob("iter_*.png"))
    error = job / "error.txt"
    return Run(dir=job, overrides=_overrides(job), history=read_metrics(job),
               error=error_line(error.read_text(errors="replace")) if error.is_file() else None,
               sample=samples[-1] if samples else None)


def _overrides(job: Path) -> list[str]:
    path = job / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    import yaml

    try:
        overrides = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return []
    return [str(o) for o in overrides] if isinstance(overrides, list) else []


def _name_runs(runs: list[Run]) -> None:
    """Each run of a sweep is named after the overrides that tell it apart from the others (``loss=hinge,seed=2``,
    as W&B names sweep jobs); a lone run after its directory."""
    values: dict[str, set[str]] = {}
    count: dict[str, int] = {}
    for run in runs:
        for o in run.overrides:
            key, _, value = o.partition("=")
            values.setdefault(key, set()).add(value)
            count[key] = count.get(key, 0) + 1
    varying = {k for k in values if len(values[k]) > 1 or count[k] < len(runs)}
    for run in runs:
        parts = sorted(_short(o) for o in run.overrides if o.partition("=")[0] in varying)
        run.name = (",".join(parts) if len(runs) > 1 else "") or run.dir.name


def _short(override: str) -> str:
    """``lr=0.0012520653814999472`` (as Optuna suggests it) -> ``lr=0.001252``."""
    key, _, value = override.partition("=")
    if len(value) > 8 and re.fullmatch(r"-?\d+\.\d+(e-?\d+)?", value):
        return f"{key}={float(value):.4g}"
    return override


def error_line(traceback_text: str) -> str:
    """The exception line of a traceback (``UserError: data.batch_size must be ...``), module path dropped."""
    lines = traceback_text.splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    start = frames[-1] + 1 if frames else 0
    line = next((ln for ln in lines[start:] if ln.strip() and not ln[0].isspace()), None)
    if line is None:
        line = next((ln.strip() for ln in lines if ln.strip()), "failed")
    return re.sub(r"^(?:[A-Za-z_]\w*\.)+(\w+(?::|$))", r"\1", line.strip())


# --- report.md ------------------------------------------------------------------------------------------------
def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(runs: list[Run], title: str, extra: str = "") -> str:
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.final if k.startswith("metrics/") and k not in keys]
    keys.sort(key=lambda k: (CURVE_METRICS.index(k) if k in CURVE_METRICS else len(CURVE_METRICS), k))
    header = ["run", "job", "status", "iteration"] + [k.removeprefix("metrics/") for k in keys]
    rows = []
    for run in runs:
        job = run.dir.name
        if run.error is not None:
            rows.append([run.name, job, f"failed: {run.error}", ""] + [""] * len(keys))
            continue
        status = "ok" if run.history else "no metrics"
        final = run.final
        rows.append([run.name, job, status, _fmt(final.get("iteration", ""))]
                    + [_fmt(final[k]) if k in final else "" for k in keys])
    out = [f"# {title}", "", "Final metrics of each run (its last evaluation, `metrics.jsonl`).", ""]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" * len(header))
    out += ["| " + " | ".join(_cell(str(c)) for c in row) + " |" for row in rows]
    if extra:
        out += ["", extra]
    return "\n".join(out) + "\n"


def over_seeds(runs: list[Run], key: str = "seed") -> str:
    """Runs that differ only in ``seed``, summarised: one row per setting with the mean ± standard deviation
    (over seeds) of each final metric; empty when the sweep doesn't vary the seed."""
    done = [r for r in runs if r.error is None and r.history]
    if len({o for r in done for o in r.overrides if o.partition("=")[0] == key}) < 2:
        return ""
    groups: dict[str, list[Run]] = {}
    for run in done:
        setting = ",".join(p for p in run.name.split(",") if p.partition("=")[0] != key) or "all"
        groups.setdefault(setting, []).append(run)
    keys = [k for k in dict.fromkeys(k for r in done for k in r.final if k.startswith("metrics/"))
            if not k.endswith("_std")]
    keys.sort(key=lambda k: (CURVE_METRICS.index(k) if k in CURVE_METRICS else len(CURVE_METRICS), k))
    header = ["setting", "seeds", "iteration"] + [k.removeprefix("metrics/") for k in keys]
    out = ["## Over seeds", "", "Mean ± standard deviation over the seeds of each setting (failed runs left out).",
           "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting, group in groups.items():
        cells = [setting, str(len(group)), _mean_std([r.final.get("iteration") for r in group], 0)]
        cells += [_mean_std([r.final.get(k) for r in group]) for k in keys]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out)


def _mean_std(values: list, digits: int = 4) -> str:
    values = [float(v) for v in values if v is not None]
    if not values:
        return ""
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return f"{mean:.{digits}g} ± {std:.2g}" if digits else f"{mean:.0f} ± {std:.0f}"


def optuna_summary(directory: Path) -> str:
    path = directory / "optimization_results.yaml"
    if not path.is_file():
        return ""
    import yaml

    try:
        result = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return ""
    if "best_value" not in result:
        return ""
    params = ", ".join(f"{k}={v}" for k, v in (result.get("best_params") or {}).items())
    return f"Optuna: best value {_fmt(float(result['best_value']))} with {params or 'no parameters'}."


# --- report.png -----------------------------------------------------------------------------------------------
def figure(runs: list[Run], title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    curve_keys = list(dict.fromkeys(k for k in (r.curve_key for r in runs) if k))
    ncols = min(4, len(runs))
    nrows = math.ceil(len(runs) / ncols)
    curve_height = 4.2 if curve_keys else 0.0
    fig = plt.figure(figsize=(max(4.0 * ncols, 5.0 * len(curve_keys), 8.0), curve_height + 3.6 * nrows),
                     layout="constrained")
    fig.suptitle(title)
    if curve_keys:
        top, bottom = fig.subfigures(2, 1, height_ratios=[curve_height, 3.6 * nrows])
    else:
        top, bottom = None, fig
    for key, ax in zip(curve_keys, top.subplots(1, len(curve_keys), squeeze=False)[0] if top else []):
        for run in runs:
            points = [(row["iteration"], row[key]) for row in run.history if key in row]
            if run.curve_key == key and points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o", markersize=3, label=run.name)
        ax.set_xlabel("iteration")
        ax.set_ylabel(key.removeprefix("metrics/"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes = bottom.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes:
        ax.set_axis_off()
    for run, ax in zip(runs, axes):
        name = "\n".join(textwrap.wrap(re.sub(r",(?![^\[]*\])", ", ", run.name), 44))  # (not inside [a,b])
        if run.error is not None:
            ax.set_title(name, fontsize="small")
            ax.text(0.5, 0.5, "failed:\n" + "\n".join(textwrap.wrap(run.error, 44)[:4]), ha="center", va="center",
                    fontsize="small")
        elif run.sample is not None:
            with Image.open(run.sample) as image:
                ax.imshow(image.convert("RGB"))
            ax.set_title(f"{name}\n({run.sample.stem})", fontsize="small")
        else:
            ax.set_title(name, fontsize="small")
            ax.text(0.5, 0.5, "no samples", ha="center", va="center")
    fig.savefig(out, dpi=80)
    plt.close(fig)


def report(directory: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``report.png`` and ``report.md`` for the runs in ``directory`` into ``out`` (default:
    ``directory``); returns their paths."""
    root = Path(directory)
    out_dir = check_output(Path(out) if out else root, "--out", folder=True)
    runs = find_runs(directory)
    title = str(root)
    png, md = out_dir / "report.png", out_dir / "report.md"
    extra = "\n\n".join(part for part in (over_seeds(runs), optuna_summary(root)) if part)
    text = markdown(runs, title, extra)
    atomic_write(png, lambda tmp: figure(runs, title, tmp))
    atomic_write(md, lambda tmp: tmp.write_text(text))
    return png, md


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="report.py", description="Compare the runs of a sweep (or one run): "
                                     "metric curves and final sample grids (report.png), final metrics "
                                     "(report.md).")
    parser.add_argument("dir", help="a sweep directory (multirun/<date>/<time>) or a run directory")
    parser.add_argument("--out", default=None, help="where to write report.png and report.md (default: DIR)")
    args = parser.parse_args(argv)
    png, md = report(args.dir, args.out)
    print(f"wrote {png} and {md}")
