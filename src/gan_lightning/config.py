"""Config checks that run before any work: unknown choices, wrong types, impossible values, unsafe targets.

Each failure is a ``UserError`` with one line naming the key, what is wrong and what would be valid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from numbers import Real
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from .errors import UserError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

# Modules a config's `_target_` may name. A config (or a checkpoint carrying one) naming anything else, such as
# os.system, is refused before it is instantiated.
ALLOWED_TARGET_PREFIXES = (
    "gan_lightning.",
    "torch.",
    "torchvision.",
    "pytorch_lightning.",
    "lightning.",
    "torchmetrics.",
    "torch_fidelity.",
)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


# model.compile: off, on (torch.compile's default mode) or a mode; "reduce-overhead" captures CUDA graphs.
COMPILE_CHOICES = (False, True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

# (key, predicate, description). Keys absent from a config are skipped.
RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("seed", _int, "an integer"),
    ("max_iterations", lambda v: _int(v) and v > 0, "a positive integer"),
    ("model.latent_dim", lambda v: _int(v) and v > 0, "a positive integer"),
    ("model.generator.ngf", lambda v: _int(v) and v > 0, "a positive integer"),
    ("model.discriminator.ndf", lambda v: _int(v) and v > 0, "a positive integer"),
    ("data.batch_size", lambda v: _int(v) and v > 0, "a positive integer"),
    ("data.image_size", lambda v: v is None or (_int(v) and v >= 8), "an integer >= 8 or null"),
    ("data.channels", lambda v: v is None or v in (1, 3), "1, 3 or null"),
    ("data.subset", lambda v: v is None or (_int(v) and v > 0), "a positive integer or null"),
    ("optim.n_critic", lambda v: _int(v) and v > 0, "a positive integer"),
    ("optim.generator.lr", lambda v: _num(v) and v > 0, "a positive number"),
    ("optim.discriminator.lr", lambda v: _num(v) and v > 0, "a positive number"),
    ("loss.gp_weight", lambda v: _num(v) and v >= 0, "a number >= 0"),
    ("loss.clip_value", lambda v: _num(v) and v > 0, "a positive number"),
    ("module.ema_decay", lambda v: v is None or (_num(v) and 0 <= v < 1), "a number in [0, 1) or null"),
    ("module.grad_clip", lambda v: v is None or (_num(v) and v > 0), "a positive number or null"),
    ("module.log_every_n_iterations", lambda v: _int(v) and v > 0, "a positive integer"),
    ("optimized_metric", lambda v: v is None or (isinstance(v, str) and v.startswith("metrics/")),
     "null or a metric name such as metrics/fid_domain"),
    ("divergence.action", lambda v: v in ("stop", "rollback"), "stop or rollback"),
    ("divergence.max_rollbacks", lambda v: _int(v) and v >= 0, "an integer >= 0"),
    ("model.compile", lambda v: v in COMPILE_CHOICES, "false, true or a torch.compile mode (" +
     ", ".join(str(c) for c in COMPILE_CHOICES[2:]) + ")"),
    ("model.channels_last", lambda v: isinstance(v, bool), "true or false"),
    ("data.device", lambda v: v in ("auto", "cpu"), "auto or cpu"),
    ("optim.generator.fused", lambda v: v is None or isinstance(v, bool), "true, false or null"),
    ("optim.discriminator.fused", lambda v: v is None or isinstance(v, bool), "true, false or null"),
    # conditional models and InfoGAN
    ("model.embed_dim", lambda v: _int(v) and v > 0, "a positive integer"),
    ("model.conditioning", lambda v: v in ("projection", "concat"), "projection or concat"),
    ("model.class_norm", lambda v: isinstance(v, bool), "true or false"),
    ("model.aux_weight", lambda v: _num(v) and v >= 0, "a number >= 0"),
    ("model.diversity_weight", lambda v: _num(v) and v >= 0, "a number >= 0"),
    ("model.categorical_dim", lambda v: _int(v) and v > 1, "an integer >= 2"),
    ("model.continuous_dim", lambda v: _int(v) and v >= 0, "an integer >= 0"),
    ("model.info_weight", lambda v: _num(v) and v >= 0, "a number >= 0"),
    ("model.continuous_weight", lambda v: _num(v) and v >= 0, "a number >= 0"),
    ("model.q_hidden", lambda v: _int(v) and v > 0, "a positive integer"),
    # generate.py
    ("ckpt", lambda v: isinstance(v, str) and v != "", "a checkpoint path"),
    ("n", lambda v: _int(v) and v > 0, "a positive integer"),
]


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
    folder in another group is a group of its own (``model/backbone``)."""
    root = conf_dir / group
    files = root.rglob("*.yaml") if group == "experiment" else root.glob("*.yaml")
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in files)


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


def validate(cfg: DictConfig) -> None:
    """Raise ``UserError`` on the first value that breaks a rule or a ``_target_`` outside the allowed modules."""
    for key, ok, description in RULES:
        parent_key, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        if not isinstance(parent, DictConfig) or leaf not in parent.keys():  # (`in` hides ??? values)
            continue
        if OmegaConf.is_missing(parent, leaf):
            raise UserError(f"{key} is required: add {key}=... to the command line")
        try:
            value = parent[leaf]
        except Exception as e:  # a broken interpolation
            raise UserError(f"{key}: {one_line(str(e))}") from None
        if isinstance(value, (DictConfig, ListConfig)) or not ok(value):
            raise UserError(f"{key} must be {description}; got {value!r}")
    metric = cfg.get("optimized_metric")
    if metric and not OmegaConf.select(cfg, "callbacks.metrics", default=None):
        raise UserError(f"optimized_metric={metric} needs metrics during training: not with metrics=none or "
                        "callbacks=none")
    if OmegaConf.select(cfg, "model.compile", default=False) and OmegaConf.select(cfg, "loss.gp_weight", default=0):
        raise UserError("model.compile can't train with a gradient penalty (torch.compile has no double backward): "
                        "set model.compile=false or use another loss")
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)  # Hydra's own plugins are Hydra's business
    check_targets(container)


def check_targets(cfg: Any, path: str = "") -> None:
    """Refuse any ``_target_`` outside ``ALLOWED_TARGET_PREFIXES`` (configs and checkpoints alike)."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        cfg = OmegaConf.to_container(cfg, resolve=False)
    if isinstance(cfg, dict):
        items = cfg.items()
    elif isinstance(cfg, (list, tuple)):
        items = enumerate(cfg)
    else:
        return
    for key, value in items:
        where = f"{path}.{key}" if path else str(key)
        if key == "_target_":
            if not isinstance(value, str) or not value.startswith(ALLOWED_TARGET_PREFIXES):
                raise UserError(
                    f"{where}: refusing to instantiate {value!r}; targets must be in "
                    f"{', '.join(p.rstrip('.') for p in ALLOWED_TARGET_PREFIXES)}"
                )
        else:
            check_targets(value, where)


def one_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return "; ".join(lines[:3]) if lines else message
