"""Composing configs outside a Hydra job, and the config groups' choices (checked before Hydra starts)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from omegaconf import DictConfig

from ..errors import UserError
from .checks import one_line

CONF_DIR = Path(os.environ.get("GAN_LIGHTNING_CONF") or Path(__file__).resolve().parents[3] / "conf")
"""The config tree: the checkout's ``conf/`` (or ``$GAN_LIGHTNING_CONF``)."""


def compose_config(overrides: list[str], output_dir: str | Path, config_name: str = "train",
                   cwd: str | Path | None = None) -> DictConfig:
    """The config ``train.py`` would build for ``overrides``, outside a Hydra job (tests, benchmarks, notebooks):
    ``${hydra:...}`` interpolations resolve as in a real run, with outputs in ``output_dir``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.runtime.cwd = str(cwd or CONF_DIR.parent)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    """The choices of a config group. Experiments may sit in folders (``experiment=fashion_mnist/best``); a
    folder in another group is a group of its own (``model/backbone``). A file whose name starts with ``_`` is
    not a choice but what choices share (``data/_torchvision``: the torchvision sets' options, without a name)."""
    root = conf_dir / group
    files = root.rglob("*.yaml") if group == "experiment" else root.glob("*.yaml")
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in files if not p.name.startswith("_"))


def check_choice(group: str, choice: str | None, conf_dir: Path = CONF_DIR) -> None:
    options = group_options(group, conf_dir)
    if choice is not None and choice not in options:
        raise UserError(f"unknown {group} '{choice}'; valid options: {', '.join(options)}")


def check_overrides(overrides: Iterable[str], conf_dir: Path = CONF_DIR) -> None:
    """Check every group choice named on the command line (sweeps included) before Hydra runs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as e:
        raise UserError(one_line(str(e))) from None
    for o in parsed:
        group = o.key_or_group
        if o.is_delete() or group.startswith("hydra") or not (conf_dir / group).is_dir() or o.is_interval_sweep():
            continue  # (an interval, Optuna's continuous range, is not a list of choices)
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        for value in values:
            check_choice(group, None if value == "null" else value, conf_dir)
