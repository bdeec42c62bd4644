"""``python import_weights.py kind=... src=... out=...``: an import written as a package checkpoint.

The reader's overrides (plus the user's) compose train.yaml; the module is built as training builds it (the same
``build_module``, so the checkpoint's config is a training run's), every imported tensor is loaded into its place
(``train.checkpoints.load_networks``: none left over, none of another shape), and the checkpoint is written as the
trainer's (a ``gan_lightning`` section and a ``state_dict``) at iteration 0, marked ``imported`` so that
``ckpt_path=`` refuses to resume from it (there is no optimizer state) and points to ``init_from=``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from . import check_kind, check_new_output, read

SPEC_ONLY = "gan_lightning.data.spec_only.SpecOnlyDataModule"


def build_module_for(overrides: Sequence[str], output_dir: Path):
    """The ``GANModule`` train.py would build for ``overrides``, without data: the folder data build their spec
    without reading files, so a data config whose ``path`` is unset (or ``data=spec_only``) is used for its
    shapes alone, and not recorded (the checkpoint's data are then those its reader gives:
    ``evaluate.py data=... data.path=DIR``)."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from ..config.checks import one_line, validate
    from ..config.compose import compose_config
    from ..train.build import build_module, instantiate_or_user_error

    try:
        cfg = compose_config(list(overrides), output_dir)
    except (HydraException, OmegaConfBaseException) as e:
        raise UserError(f"overrides: {one_line(str(e))}") from None
    validate(cfg)
    unset = "path" in cfg.data.keys() and OmegaConf.is_missing(cfg.data, "path")  # (`in` alone hides ???)
    if unset:
        cfg.data.path = None
    module = build_module(cfg, instantiate_or_user_error(cfg.data))
    if unset or cfg.data.get("_target_") == SPEC_ONLY:
        # no data to record: evaluate.py asks for data=..., as for a checkpoint that stored none
        module.config["data"].pop("cfg", None)
    return module


def import_weights(kind: str, src: str, out: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read ``src`` as ``kind``, build the networks it fits, load it and write the checkpoint ``out`` (never
    overwritten; nothing is written on any error). Returns what was done, for the command's report."""
    import pytorch_lightning as pl

    from ..outputs import atomic_write, check_output
    from ..train.checkpoints import load_networks

    check_kind(kind)
    if not all(isinstance(o, str) for o in overrides):
        raise UserError(f"overrides must be a list of train.py overrides (key=value); got {list(overrides)!r}")
    out_path = check_new_output(out)
    check_output(out_path, "out")
    imported = read(kind, Path(src).expanduser())
    overrides = [*imported.overrides, *overrides]
    module = build_module_for(overrides, out_path.parent)
    result = load_networks(module, imported.state, f"src: {Path(src).name}", strict=True)
    record = {"kind": kind, "source": imported.source, "overrides": overrides, "at_init": result["at_init"]}
    checkpoint = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": pl.__version__,
        "state_dict": module.state_dict(),
        "gan_lightning": {"iteration": 0, "d_steps": 0, "config": module.config, "rng": {}, "per_rank": {},
                          "wandb_run_id": None, "imported": record},
    }
    try:
        atomic_write(out_path, lambda tmp: torch.save(checkpoint, tmp), overwrite=False)
    except FileExistsError:  # (it appeared while the import ran)
        raise UserError(f"out: {out_path} exists: choose another path (an import never overwrites)") from None
    return {"out": str(out_path), **record, "loaded": result["loaded"], "notes": imported.notes + result["notes"]}


def summary(result: dict[str, Any]) -> str:
    """The command's report: what went where, what stayed at initialisation, and how to train from it."""
    lines = [f"imported {result['source']} into {result['out']}"]
    if result["at_init"]:
        lines.append(f"  not in the file, left at initialisation: {', '.join(result['at_init'])}")
    lines += [f"  {note}" for note in result["notes"]]
    train = [o for o in result["overrides"] if o != "data=spec_only" and not o.startswith(("data.shape=",
                                                                                             "data.num_classes="))]
    if len(train) < len(result["overrides"]):  # (no data to name: the user's own)
        train.append("data=<your data>")
    elif not any(o.startswith("data.path=") for o in train):
        train.append("data.path=<your data>")
    lines.append(f"  fine-tune: python train.py {' '.join(train)} init_from={result['out']}")
    return "\n".join(lines)
