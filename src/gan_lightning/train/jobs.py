"""A training run as a Hydra job: sweeps go on past a failing job; Optuna reads the job's objective."""

from __future__ import annotations

import logging
import math
import shutil
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ..errors import UserError
from .fit import in_multirun, train

log = logging.getLogger(__name__)


def run_job(cfg: DictConfig) -> dict[str, Any] | float | None:
    """``train(cfg)`` as a Hydra job. In a multirun a failing job does not stop the sweep: its error is logged,
    its traceback written to ``<job dir>/error.txt``, and the next job starts (with W&B and the environment
    reset by ``train``).

    With ``optimized_metric`` set (``hparams_search=...``) the job returns that metric's value at the end of
    training, for the sweeper to optimise: read from the run's ``metrics.jsonl``, which the training processes
    wrote (under spawned DDP this process's trainer is not the one that trained). A failed job then returns the
    worst value (inf when minimising): Optuna 2 ends the whole study on NaN or on anything that isn't a number."""
    metric = cfg.get("optimized_metric")
    output_dir = Path(cfg.paths.output_dir)
    if not in_multirun():
        try:
            outcome = train(cfg)
        except UserError:
            _remove_if_only_hydra_files(output_dir)  # a rejected run leaves nothing behind
            raise
        return _objective(output_dir, metric) if metric else outcome
    try:
        outcome = train(cfg)
    except Exception as e:  # noqa: BLE001 - any failure of one job
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "error.txt").write_text(traceback.format_exc())
        log.error("job failed, the sweep goes on: %s: %s (traceback in %s)", type(e).__name__, e,
                  output_dir / "error.txt")
        return _worst_value() if metric else None
    return _objective(output_dir, metric) if metric else outcome


def _objective(output_dir: Path, metric: str) -> float:
    """The final value of ``metric`` (a ``UserError`` when the run didn't log it: the same for every trial)."""
    from ..report import final_metric

    value = final_metric(output_dir, metric)
    log.info("%s = %.6g at the end of training (the job's objective)", metric, value)
    return _worst_value() if math.isnan(value) else value


def _worst_value() -> float:
    """What a failed trial returns: the worst possible value for the sweep's direction."""
    direction = "minimize"
    try:
        from hydra.core.hydra_config import HydraConfig

        direction = HydraConfig.get().sweeper.get("direction", direction)
    except ValueError:
        pass
    return -math.inf if "max" in str(getattr(direction, "name", direction)) else math.inf


def _remove_if_only_hydra_files(output_dir: Path) -> None:
    if output_dir.is_dir() and {p.name for p in output_dir.iterdir()} <= {".hydra", "train.log"}:
        shutil.rmtree(output_dir)
