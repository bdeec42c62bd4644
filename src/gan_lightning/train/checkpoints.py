"""Checkpoints: read safely (``torch.load(weights_only=True)``, only allowed config targets), rebuild a module
for sampling, decide whether a run may resume from one, and load networks' weights alone (``init_from=``,
``import_weights.py``)."""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..config.checks import check_targets
from ..core.module import GANModule
from ..errors import UserError
from .build import build_family, current_targets

log = logging.getLogger(__name__)


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict, loaded without executing code; ``UserError`` for missing, corrupt or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such checkpoint file: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, KeyError, OSError) as e:
        raise UserError(f"{path} is not a readable checkpoint ({type(e).__name__}); is the file truncated?") from None
    if not isinstance(ckpt, dict) or "gan_lightning" not in ckpt or "state_dict" not in ckpt:
        raise UserError(f"{path} is not a gan_lightning checkpoint (no gan_lightning section)")
    return ckpt


def load_module(path: str | Path) -> GANModule:
    """A ``GANModule`` (networks and EMA, no optimizers) rebuilt from a checkpoint, in eval mode on CPU."""
    ckpt = read_checkpoint(path)
    config = ckpt["gan_lightning"]["config"]
    check_targets({"model": config["model"], "loss": config["loss"]})
    family = build_family(config["model"], config["loss"], config["data"])
    module = GANModule(family, optimizer={}, ema_decay=config.get("ema_decay"), config=config)
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise UserError(f"{path}: weights do not match the model stored with them ({str(e).splitlines()[0]})") from None
    module.iteration = int(ckpt["gan_lightning"].get("iteration", 0))
    return module.eval()


def resolve_ckpt_path(ckpt_path: str | None, output_dir: Path) -> str | None:
    """``ckpt_path=last``: this run directory's ``checkpoints/last.ckpt`` if there is one, else a fresh start, so
    that re-running an interrupted command with a fixed ``hydra.run.dir`` continues it. Any other value must be a
    checkpoint file."""
    if ckpt_path == "last":
        last = output_dir / "checkpoints" / "last.ckpt"
        if last.is_file():
            log.info("resuming from %s", last)
            return str(last)
        log.info("ckpt_path=last: no checkpoint in %s yet, starting from scratch", last.parent)
        return None
    if ckpt_path and not Path(ckpt_path).is_file():
        raise UserError(f"ckpt_path: no such checkpoint file: {ckpt_path} (or use ckpt_path=last)")
    return ckpt_path


def check_init_from(init_from: str | None, ckpt_path: str | None) -> None:
    """``init_from`` starts a new run from a checkpoint's weights; ``ckpt_path`` continues a run with its own.
    Both files at once is a ``UserError``: neither can be honoured without ignoring the other. ``ckpt_path=last``
    with ``init_from`` starts from ``init_from`` until the run has a ``last.ckpt``, then resumes that (re-running
    an interrupted fine-tuning command with a fixed ``hydra.run.dir``)."""
    if init_from and ckpt_path and ckpt_path != "last":
        raise UserError(f"init_from={init_from} starts a new run from a checkpoint's weights; ckpt_path={ckpt_path} "
                        "resumes one: give one of them (or ckpt_path=last to resume this run once it has a "
                        "checkpoint)")
    if init_from and not Path(init_from).expanduser().is_file():
        raise UserError(f"init_from: no such checkpoint file: {init_from}")


def check_resumable(ckpt_path: str, config: dict) -> dict:
    """A ``UserError`` unless the checkpoint is a readable gan_lightning checkpoint of the same networks, data
    shape and optimizers as this run (anything else would fail deep inside Lightning, or silently misload).
    Returns the checkpoint's own record (iteration, config, W&B run id)."""
    state = read_checkpoint(ckpt_path)["gan_lightning"]
    if state.get("imported"):  # (no optimizer or loop state: Lightning would fail deep inside)
        raise UserError(f"ckpt_path: {ckpt_path} holds imported weights, not a training run to resume: start from "
                        f"them with init_from={ckpt_path}")
    stored = state["config"]
    keys = ("model", "optim")
    differing = _differences({k: current_targets(stored.get(k)) for k in keys}, {k: config[k] for k in keys})
    if stored["data"]["shape"] != config["data"]["shape"]:
        differing.insert(0, f"data shape {stored['data']['shape']} vs {config['data']['shape']}")
    if differing:
        raise UserError(f"ckpt_path: {ckpt_path} was trained with other settings ({'; '.join(differing[:3])}); "
                        "resume with the settings it was trained with")
    return state


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b))
                for d in _differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


# --- networks' weights alone ---------------------------------------------------------------------------------------
def network_roots(module: GANModule) -> list[str]:
    """The ``state_dict`` prefixes of the module's networks: each family network with trainable parameters (both
    of a pair apart: CycleGAN's ``family.generator.ab`` and ``.ba``) and the EMA generator. What else a module
    holds (image pools, ADA's probability, frozen feature networks) is not a network's weights."""
    from ..families.cyclegan import Pair

    roots: list[str] = []

    def add(prefix: str, net: torch.nn.Module) -> None:
        roots.extend([f"{prefix}.{name}" for name, _ in net.named_children()] if isinstance(net, Pair) else [prefix])

    for name, child in module.family.named_children():
        if any(p.requires_grad for p in child.parameters()):
            add(f"family.{name}", child)
    if module.generator_ema is not None:
        add("generator_ema", module.generator_ema)
    return roots


def network_name(root: str) -> str:
    """``family.generator.ab`` -> ``generator.ab``: a network as messages name it."""
    return root.removeprefix("family.")


def load_networks(module: GANModule, state: dict[str, torch.Tensor], what: str, strict: bool = True,
                  ours: str = "the package's") -> dict[str, list[str]]:
    """Copy the networks ``state`` holds (keyed as ``module.state_dict()``) into ``module``, each whole: a
    ``UserError`` (one line, ``what``: the file) naming the network and the first tensor that has no place or
    another shape. A network ``state`` lacks keeps its initialisation, except the EMA generator, which takes the
    generator's weights (and the generator the EMA's, where only that came). ``strict``: every tensor of
    ``state`` must find its place (an import); else tensors of networks this module lacks are ignored (a
    checkpoint of another family member, say the discriminator of a run now without one).

    Returns the networks ``loaded``, those left ``at_init``, the names of the file's networks ``ignored`` and
    ``notes`` for the user."""
    own = module.state_dict()
    roots = network_roots(module)
    loaded, at_init, notes = [], [], []
    for root in roots:
        name, prefix = network_name(root), root + "."
        mine = [k for k in own if k.startswith(prefix)]
        theirs = [k for k in state if k.startswith(prefix)]
        if not theirs:
            at_init.append(root)
            continue
        for key in theirs:
            if key not in own:
                raise UserError(f"{what}: its {name} has {key[len(prefix):]}, which {ours} {name} lacks (another "
                                "architecture or size)")
        for i, key in enumerate(mine):
            if key not in state:
                if key.endswith(".num_batches_tracked"):  # (files from before PyTorch 0.4.1 lack it; unused here)
                    continue
                raise UserError(f"{what}: its {name} lacks {key[len(prefix):]}, which {ours} {name} has (another "
                                "architecture or size)")
            a, b = tuple(state[key].shape), tuple(own[key].shape)
            if a != b:
                if i == 0 and len(a) == len(b) == 4 and a[0] == b[0] and a[1] != b[1]:
                    raise UserError(f"{what}: its {name} is for {a[1]} channels, {ours} for {b[1]}")
                raise UserError(f"{what}: its {name} has {key[len(prefix):]} of shape {list(a)}, {ours} "
                                f"{list(b)}")
        with torch.no_grad():
            for key in mine:
                if key in state:
                    own[key].copy_(state[key])
        loaded.append(root)
    for root in [r for r in roots if r.startswith("generator_ema")]:
        generator = "family.generator" + root[len("generator_ema"):]
        pair = (generator, root) if root in at_init and generator in loaded else \
            (root, generator) if generator in at_init and root in loaded else None
        if pair is None:
            continue
        source, target = pair
        with torch.no_grad():
            for key in [k for k in own if k.startswith(target + ".")]:
                own[key].copy_(own[source + key[len(target):]])
        at_init.remove(target)
        notes.append(f"{network_name(target)}: the {network_name(source)}'s weights (the file has no "
                     f"{'EMA' if target == root else 'raw generator'})")
    outside = [k for k in state if not any(k.startswith(r + ".") for r in roots)]
    if strict:  # (an import's other state, a buffer outside the networks: it too must fit, and is loaded)
        for key in [k for k in outside if k in own]:
            if tuple(state[key].shape) != tuple(own[key].shape):
                raise UserError(f"{what}: {key} has shape {list(state[key].shape)}, {ours} {list(own[key].shape)}")
            with torch.no_grad():
                own[key].copy_(state[key])
    unused = [k for k in outside if k not in own]
    ignored = sorted({".".join(k.split(".")[:2]) if k.startswith("family.") else k.split(".")[0] for k in unused})
    if unused and strict:
        raise UserError(f"{what}: {unused[0]} has no place in {ours} networks"
                        + (f" (and {len(unused) - 1} more)" if len(unused) > 1 else ""))
    return {"loaded": [network_name(r) for r in loaded], "at_init": [network_name(r) for r in at_init],
            "ignored": [network_name(r) for r in ignored], "notes": notes}


def init_from_checkpoint(module: GANModule, path: str | Path) -> dict[str, list[str]]:
    """``train.py init_from=PATH``: the networks' weights (and the EMA) of a package checkpoint, imported or
    trained, copied into a freshly built module. Optimizers, iteration, learning-rate schedule, ADA's
    probability and image pools start fresh: a new run that starts from those weights (transfer learning), not a
    resumed one. A ``UserError`` when a network the checkpoint holds does not fit this run's (naming it and the
    shapes), or when it holds none of them."""
    try:
        ckpt = read_checkpoint(Path(path).expanduser())
    except UserError as e:
        raise UserError(f"init_from: {e}") from None
    result = load_networks(module, ckpt["state_dict"], f"init_from: {path}", strict=False, ours="this run's")
    if not result["loaded"]:
        raise UserError(f"init_from: {path} holds none of this run's networks "
                        f"({', '.join(result['at_init'])}): it is a checkpoint of another model")
    log.info("init_from %s: %s from the checkpoint%s%s%s", path, ", ".join(result["loaded"]),
             "; " + "; ".join(result["notes"]) if result["notes"] else "",
             f"; {', '.join(result['at_init'])} at initialisation" if result["at_init"] else "",
             f"; not in this run: {', '.join(result['ignored'])}" if result["ignored"] else "")
    return result
