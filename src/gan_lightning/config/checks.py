"""Config checks that run before any work: unknown choices, wrong types, impossible values, unsafe targets.

Each failure is a ``UserError`` with one line naming the key, what is wrong and what would be valid.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from ..errors import UserError
from ..importers import KINDS
from .prepare_options import BAD_FILES, FORMATS, LAYOUTS, TRANSFORMS

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


def is_int(v) -> bool:
    """An integer, not a bool (configs and constructors share these checks)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    """A real number, not a bool."""
    return isinstance(v, Real) and not isinstance(v, bool)


# model.compile: off, on (torch.compile's default mode) or a mode; "reduce-overhead" captures CUDA graphs.
COMPILE_CHOICES = (False, True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

# (key, predicate, description). Keys absent from a config are skipped.
RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("seed", is_int, "an integer"),
    ("max_iterations", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("model.latent_dim", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("model.generator.ngf", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("model.discriminator.ndf", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("model.generator.width", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("model.generator.blocks", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    ("model.adversarial_weight", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    ("model.pixel_weight", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    ("model.warmup", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    ("data.batch_size", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("data.scale", lambda v: v in (2, 3, 4, 8) and not isinstance(v, bool), "2, 3, 4 or 8"),
    ("data.crop", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("data.image_size", lambda v: v is None or (is_int(v) and v >= 8), "an integer >= 8 or null"),
    ("data.channels", lambda v: v is None or v in (1, 3), "1, 3 or null"),
    ("data.subset", lambda v: v is None or (is_int(v) and v > 0), "a positive integer or null"),
    ("data.subset_per_class", lambda v: v is None or (is_int(v) and v > 0), "a positive integer or null"),
    ("optim.n_critic", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("optim.generator.lr", lambda v: is_number(v) and v > 0, "a positive number"),
    ("optim.discriminator.lr", lambda v: is_number(v) and v > 0, "a positive number"),
    ("loss.gp_weight", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    ("loss.clip_value", lambda v: is_number(v) and v > 0, "a positive number"),
    ("module.ema_decay", lambda v: v is None or (is_number(v) and 0 <= v < 1), "a number in [0, 1) or null"),
    ("module.grad_clip", lambda v: v is None or (is_number(v) and v > 0), "a positive number or null"),
    ("module.log_every_n_iterations", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("optimized_metric", lambda v: v is None or (isinstance(v, str) and v.startswith("metrics/")),
     "null or a metric name such as metrics/fid_domain"),
    ("divergence.action", lambda v: v in ("stop", "rollback"), "stop or rollback"),
    ("divergence.max_rollbacks", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    ("model.compile", lambda v: v in COMPILE_CHOICES, "false, true or a torch.compile mode (" +
     ", ".join(str(c) for c in COMPILE_CHOICES[2:]) + ")"),
    ("model.channels_last", lambda v: isinstance(v, bool), "true or false"),
    ("data.device", lambda v: v in ("auto", "cpu"), "auto or cpu"),
    ("optim.generator.fused", lambda v: v is None or isinstance(v, bool), "true, false or null"),
    ("optim.discriminator.fused", lambda v: v is None or isinstance(v, bool), "true, false or null"),
    # conditional models and InfoGAN
    ("model.embed_dim", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("model.conditioning", lambda v: v in ("projection", "concat"), "projection or concat"),
    ("model.class_norm", lambda v: isinstance(v, bool), "true or false"),
    ("model.aux_weight", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    ("model.diversity_weight", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    ("model.categorical_dim", lambda v: is_int(v) and v > 1, "an integer >= 2"),
    ("model.continuous_dim", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    ("model.info_weight", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    ("model.continuous_weight", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    ("model.q_hidden", lambda v: is_int(v) and v > 0, "a positive integer"),
    # translation models and data
    ("model.l1_weight", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    ("model.cycle_weight", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    ("model.identity_weight", lambda v: is_number(v) and v >= 0, "a number >= 0"),
    ("model.pool_size", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    ("model.conditional", lambda v: isinstance(v, bool), "true or false"),
    ("model.generator.num_downs", lambda v: is_int(v) and v >= 2, "an integer >= 2"),
    ("model.generator.dropout", lambda v: is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    ("model.generator.upsample", lambda v: v in ("transpose", "resize"), "transpose or resize"),
    ("model.discriminator.n_layers", lambda v: v is None or (is_int(v) and v >= 1), "a positive integer or null"),
    ("data.direction", lambda v: v in ("AtoB", "BtoA"), "AtoB or BtoA"),
    ("direction", lambda v: v in ("AtoB", "BtoA"), "AtoB or BtoA"),
    # augment=diffaugment / ada (the policy's names are checked by gan_lightning.augment.Augment)
    ("augment.kind", lambda v: v in ("none", "diffaugment", "ada"), "none, diffaugment or ada"),
    ("augment.target", lambda v: is_number(v) and -1 <= v <= 1, "a number in [-1, 1]"),
    ("augment.interval", lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    ("augment.speed", lambda v: is_number(v) and v > 0, "a positive number of images"),
    ("augment.p", lambda v: is_number(v) and 0 <= v <= 1, "a probability in [0, 1]"),
    # evaluate.py
    ("cas", lambda v: isinstance(v, bool), "true or false"),
    ("cas_n", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("cas_epochs", lambda v: is_int(v) and v > 0, "a positive integer"),
    # upscale.py, translate.py
    ("tile", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("overlap", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    # import_weights.py
    ("kind", lambda v: v in KINDS, ", ".join(list(KINDS)[:-1]) + " or " + list(KINDS)[-1]),
    ("src", lambda v: isinstance(v, str) and v != "", "a file path"),
    # train.py init_from (a checkpoint whose networks start the run)
    ("init_from", lambda v: v is None or (isinstance(v, str) and v != ""), "a checkpoint path or null"),
    # generate.py
    ("ckpt", lambda v: isinstance(v, str) and v != "", "a checkpoint path"),
    ("n", lambda v: is_int(v) and v > 0, "a positive integer"),
    # synthesize.py (the format and the output: gan_lightning.synthesize.check_options)
    ("per_class", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("filter", lambda v: v is None or (is_number(v) and 0 < v < 1), "a probability threshold in (0, 1) or null"),
    # the inputs and outputs of the commands (evaluate.py's out may be null: print only)
    ("input", lambda v: isinstance(v, str) and v != "", "a path"),
    ("out", lambda v: v is None or (isinstance(v, str) and v != ""), "a path"),
    # prepare_data.py (what goes with what: config.prepare_options.check_prepare)
    ("resolution", lambda v: is_int(v) and v > 0, "a positive integer"),
    ("layout", lambda v: v in LAYOUTS, ", ".join(LAYOUTS[:-1]) + " or " + LAYOUTS[-1]),
    ("labels", lambda v: v is None or (isinstance(v, str) and v != ""),
     "auto, none, subfolders, json or the path of a labels JSON"),
    ("bad_files", lambda v: v in BAD_FILES, "skip or error"),
    ("channels", lambda v: v is None or (is_int(v) and v in (1, 3)), "1, 3 or null"),
    ("transform", lambda v: v in TRANSFORMS, " or ".join(TRANSFORMS)),
    ("max_images", lambda v: v is None or (is_int(v) and v > 0), "a positive integer or null"),
    ("any_resolution", lambda v: isinstance(v, bool), "true or false"),
    ("format", lambda v: v in FORMATS or v == "folder",
     " or ".join(FORMATS) + " (prepare_data.py); folder or zip (synthesize.py)"),
    ("num_workers", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
]


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
    if metric and not builds_object(OmegaConf.select(cfg, "callbacks.metrics", default=None)):
        raise UserError(f"optimized_metric={metric} needs metrics during training: not with metrics=none or "
                        "callbacks=none")
    if OmegaConf.select(cfg, "model.compile", default=False) and OmegaConf.select(cfg, "loss.gp_weight", default=0):
        raise UserError("model.compile can't train with a gradient penalty (torch.compile has no double backward): "
                        "set model.compile=false or use another loss")  # (a family's own R1 / path length phases
        # stay uncompiled by the family: see core.family)
    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra", None)  # Hydra's own plugins are Hydra's business
    check_targets(container)


def builds_object(node: Any) -> bool:
    """Does this config node say what to build (a mapping with a ``_target_``)? Under ``callbacks`` and ``logger``
    an entry without one is not a callback or logger: it is what a preset set for one that the group's option
    leaves out (``experiment=gaussian_ring callbacks=none`` keeps ``callbacks.samples.every_n_iterations``)."""
    return isinstance(node, (DictConfig, dict)) and "_target_" in node


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
