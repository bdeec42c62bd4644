"""pix2pix and CycleGAN weights from the authors' code (junyanz/pytorch-CycleGAN-and-pix2pix): plain state dicts,
renamed to the package's layout (``gan_lightning.networks.translation``).

Which files: ``src`` names one file of a run. A file named ``<prefix>net_<X>.pth`` (the authors' ``save_networks``
names: ``latest_net_G.pth``, ``200_net_G_A.pth``) brings its siblings in the same folder with the same
``<prefix>``: ``net_G`` and ``net_D`` for pix2pix; ``net_G_A``, ``net_G_B``, ``net_D_A``, ``net_D_B`` for CycleGAN
(those present; the one ``src`` names must be). Any other name (a released ``horse2zebra.pth``), and CycleGAN's
single ``net_G.pth`` of the authors' test model, is one generator.

Where each goes:

- pix2pix: ``G`` (a U-Net) -> ``family.generator``; ``D`` (a PatchGAN on ``cat(a, b)``) -> ``family.discriminator``.
- CycleGAN: ``G_A`` (A -> B) -> ``family.generator.ab``; ``G_B`` (B -> A) -> ``generator.ba``; ``D_A``, which
  the authors' code trains on domain B (real B against ``G_A(A)``), -> ``discriminator.b``; ``D_B`` ->
  ``discriminator.a``. A single generator file is ``generator.ab``.

The sizes (ngf, downsamplings, residual blocks, channels, PatchGAN ndf and n_layers, the norm: batch where
BatchNorm tensors exist, else instance) are read from the tensors, and returned as the overrides of train.yaml that
build those networks, with folder data (``aligned_folder`` / ``unaligned_folder``) of the channels and the image
size they fit: building the networks reads no data (``data.path`` stays unset unless the import's ``overrides``
give it). Files are read with ``torch.load(weights_only=True)``. The only entries dropped are the InstanceNorm
running statistics that old CycleGAN checkpoints carry (their code strips them on load too).
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import UserError
from . import Imported

STALE_STATS = ("running_mean", "running_var", "num_batches_tracked")
RUN_FILE = re.compile(r"^(?P<prefix>.*net_)(?P<net>G_A|G_B|D_A|D_B|G|D)\.pth$")


# --- reading files ---------------------------------------------------------------------------------------------
def load_state_dict(path: Path, what: str = "src") -> dict[str, Tensor]:
    """A plain state dict (names -> tensors) read without executing anything; a ``UserError`` for a missing,
    truncated or foreign file, and for a gan_lightning checkpoint (which needs no import)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"{what}: no such file: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, KeyError, OSError,
            AttributeError, TypeError, IndexError) as e:
        raise UserError(f"{what}: {path} is not a readable PyTorch state dict ({type(e).__name__}); is the file "
                        "truncated, or of another kind?") from None
    if isinstance(obj, dict) and "gan_lightning" in obj:
        raise UserError(f"{what}: {path} is a gan_lightning checkpoint already: use it as it is (ckpt=..., "
                        "init_from=...)")
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, Tensor)
                                                       for k, v in obj.items()):
        raise UserError(f"{path} is not a network's state dict (a mapping of names to tensors)")
    return dict(obj)


def drop_stale_instance_norm_stats(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], int]:
    """``state`` without the running statistics of InstanceNorm layers (those of a norm with no affine ``weight``),
    which old CycleGAN checkpoints carry; the number dropped."""
    kept = {}
    for key, value in state.items():
        module, _, leaf = key.rpartition(".")
        if leaf in STALE_STATS and f"{module}.weight" not in state:
            continue
        kept[key] = value
    return kept, len(state) - len(kept)


def norm_of(state: dict[str, Tensor]) -> str:
    """``batch`` where BatchNorm tensors (an affine weight beside running statistics) exist, else ``instance``."""
    for key in state:
        module, _, leaf = key.rpartition(".")
        if leaf == "running_mean" and f"{module}.weight" in state:
            return "batch"
    return "instance"


def layout_of(state: dict[str, Tensor]) -> str:
    """Which of the authors' networks a state dict is: unet, resnet, patchgan, pixel or unknown."""
    if "model.model.0.weight" in state:
        return "unet"
    if any(".conv_block." in k for k in state) and "model.1.weight" in state:
        return "resnet"
    if "net.0.weight" in state:
        return "pixel"
    w = state.get("model.0.weight")
    if w is not None and w.dim() == 4 and tuple(w.shape[2:]) == (4, 4):
        return "patchgan"
    return "unknown"


LAYOUT_NAMES = {"unet": "a U-Net generator (pix2pix's)", "resnet": "a ResNet generator (CycleGAN's)",
                "patchgan": "a PatchGAN discriminator", "pixel": "a PixelGAN discriminator (netD=pixel)",
                "unknown": "none of the authors' networks"}


def _expect(state: dict[str, Tensor], path: Path, want: str, kind: str) -> None:
    got = layout_of(state)
    if got == want:
        return
    hint = {("pix2pix", "resnet"): ": use kind=cyclegan",
            ("cyclegan", "unet"): ": kind=cyclegan reads ResNet generators (a U-Net one: kind=pix2pix)"}.get(
        (kind, got), f"; kind={kind} reads {LAYOUT_NAMES[want]} here")
    raise UserError(f"{path.name} holds {LAYOUT_NAMES[got]}{hint}")


# --- the networks ----------------------------------------------------------------------------------------------
@dataclass
class Net:
    """One network renamed to the package's keys (relative to the network), with its sizes."""

    state: dict[str, Tensor]
    sizes: dict[str, int | str]  # the network's config values (ngf, num_downs, norm, ...)
    in_channels: int
    out_channels: int
    note: str | None = None  # what the package's network leaves out


def _by_index(state: dict[str, Tensor], prefix: str) -> dict[int, list[str]]:
    """The keys ``<prefix><i>.<rest>`` grouped by the integer ``i``."""
    groups: dict[int, list[str]] = {}
    for key in state:
        if key.startswith(prefix):
            head = key[len(prefix):].split(".", 1)[0]
            if head.isdigit():
                groups.setdefault(int(head), []).append(key)
    return groups


def _leftover(path: Path, keys: list[str], what: str) -> UserError:
    return UserError(f"{path.name}: {keys[0]} has no place in the package's {what}"
                     + (f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""))


def unet(state: dict[str, Tensor], path: Path) -> Net:
    """The authors' nested ``UnetSkipConnectionBlock`` keys -> ``UNet``'s ``downs.i`` / ``ups.j``.

    Level ``k`` (0 the outermost) is ``model.model.`` followed by ``1.model.`` once and ``3.model.`` k - 1 times
    (the submodule's place in the outermost and in the inner blocks); its down-convolution is the package's
    ``downs.k``, its up-convolution ``ups.(n - 1 - k)``."""
    levels = ["model.model."]
    while True:
        deeper = levels[-1] + ("1." if len(levels) == 1 else "3.") + "model."
        if not any(k.startswith(deeper) for k in state):
            break
        levels.append(deeper)
    n = len(levels)
    if n < 2:
        raise UserError(f"{path.name}: a U-Net without inner blocks (no model.model.1.model.*)")
    out: dict[str, Tensor] = {}
    used: set[str] = set()
    for k, prefix in enumerate(levels):
        inner = levels[k + 1] if k + 1 < n else None
        if k == 0:
            places = {0: "downs.0.0", 3: f"ups.{n - 1}.1"}
        elif k < n - 1:
            places = {1: f"downs.{k}.1", 2: f"downs.{k}.2", 5: f"ups.{n - 1 - k}.1", 6: f"ups.{n - 1 - k}.2"}
        else:
            places = {1: f"downs.{k}.1", 3: "ups.0.1", 4: "ups.0.2"}
        for key in state:
            if not key.startswith(prefix) or (inner and key.startswith(inner)):
                continue
            index, _, leaf = key[len(prefix):].partition(".")
            if index.isdigit() and int(index) in places:
                out[f"{places[int(index)]}.{leaf}"] = state[key]
                used.add(key)
    rest = [k for k in state if k not in used]
    if rest:
        raise _leftover(path, rest, "U-Net")
    first, last = state["model.model.0.weight"], state.get("model.model.3.weight")
    if last is None or first.dim() != 4 or last.dim() != 4:
        raise UserError(f"{path.name}: a U-Net without its output convolution (model.model.3.weight)")
    sizes = {"ngf": int(first.shape[0]), "num_downs": n, "norm": norm_of(state),
             # dropout has no tensors: the authors' U-Net drops out after the num_downs - 5 inner 8*ngf blocks
             # (pix2pix's default; 3 in unet_256)
             "dropout_layers": max(0, n - 5)}
    return Net(out, sizes, in_channels=int(first.shape[1]), out_channels=int(last.shape[1]))


def resnet(state: dict[str, Tensor], path: Path) -> Net:
    """The authors' ``ResnetGenerator`` keys -> ``ResnetGenerator``'s: ``model.N`` -> ``body.N`` and
    ``model.N.conv_block.M`` -> ``body.N.body.M`` (the same Sequential order; with the authors' ``use_dropout`` the
    Dropout at ``conv_block.4`` shifts the second convolution to 6: mapped back to 5)."""
    blocks = _by_index(state, "model.")
    block_ids = sorted(i for i, keys in blocks.items() if any(".conv_block." in k for k in keys))
    convs = sorted(i for i, keys in blocks.items() if i not in block_ids and f"model.{i}.weight" in state
                   and state[f"model.{i}.weight"].dim() == 4)
    conv_at = sorted(int(k.split(".")[3]) for k in state
                     if block_ids and k.startswith(f"model.{block_ids[0]}.conv_block.") and k.endswith(".weight")
                     and state[k].dim() == 4)
    shift = {(1, 5): {}, (1, 6): {6: 5, 7: 6}}.get(tuple(conv_at))
    if block_ids and shift is None:
        raise UserError(f"{path.name}: residual blocks with convolutions at conv_block.{conv_at}; the package's "
                        "have the authors' reflection-padded layout (conv_block.1 and .5)")
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) >= 5 and parts[2] == "conv_block":
            m = int(parts[3]) if parts[3].isdigit() else -1
            parts = ["body", parts[1], "body", str(shift.get(m, m)), *parts[4:]]
        elif parts[0] == "model":
            parts = ["body", *parts[1:]]
        out[".".join(parts)] = value
    if len(convs) < 2 or (len(convs) - 2) % 2:
        raise UserError(f"{path.name}: not the authors' ResNet generator ({len(convs)} convolutions outside the "
                        "residual blocks; it has 2 + 2 per downsampling)")
    first, last = state[f"model.{convs[0]}.weight"], state[f"model.{convs[-1]}.weight"]
    sizes = {"ngf": int(first.shape[0]), "blocks": len(block_ids), "downsamplings": (len(convs) - 2) // 2,
             "norm": norm_of(state)}
    note = f"{path.name}: its residual blocks' dropout (training-time noise) is left out: the package's blocks have " \
        "none" if shift else None
    return Net(out, sizes, in_channels=int(first.shape[1]), out_channels=int(last.shape[0]), note=note)


def patchgan(state: dict[str, Tensor], path: Path) -> Net:
    """The authors' ``NLayerDiscriminator`` keys -> ``PatchGAN``'s: ``model.N`` -> ``body.N`` (n_layers + 2
    convolutions)."""
    convs = sorted(i for i, keys in _by_index(state, "model.").items()
                   if f"model.{i}.weight" in state and state[f"model.{i}.weight"].dim() == 4)
    if len(convs) < 3:
        raise UserError(f"{path.name}: a PatchGAN needs at least 3 convolutions; this one has {len(convs)}")
    rest = [k for k in state if not k.startswith("model.")]
    if rest:
        raise _leftover(path, rest, "PatchGAN")
    first = state["model.0.weight"]
    sizes = {"ndf": int(first.shape[0]), "n_layers": len(convs) - 2, "norm": norm_of(state)}
    return Net({"body" + k[len("model"):]: v for k, v in state.items()}, sizes, in_channels=int(first.shape[1]),
               out_channels=1)


READERS = {"unet": unet, "resnet": resnet, "patchgan": patchgan}


def _network(path: Path, want: str, kind: str, dropped: list[int]) -> Net:
    state, n = drop_stale_instance_norm_stats(load_state_dict(path))
    _expect(state, path, want, kind)
    dropped.append(n)
    return READERS[want](state, path)


def _dropped_note(dropped: list[int]) -> list[str]:
    return [f"dropped {sum(dropped)} InstanceNorm running statistics (old checkpoints carry them; the authors' "
            "code drops them on load too)"] if sum(dropped) else []


def run_files(src: Path, names: tuple[str, ...]) -> dict[str, Path]:
    """The files of one run that ``src`` names (see the module docstring): ``{net: path}`` for those present.
    ``src`` itself must exist; a name outside the run's pattern is the generator alone (``{"G": src}``)."""
    src = Path(src).expanduser()
    if not src.is_file():
        raise UserError(f"src: no such file: {src}")
    match = RUN_FILE.match(src.name)
    if not match or match["net"] not in names:
        return {"G": src}
    prefix = match["prefix"]
    return {net: src.parent / f"{prefix}{net}.pth" for net in names if (src.parent / f"{prefix}{net}.pth").is_file()}


def _data_overrides(data: str, channels_in: int, channels_out: int, size: int, what: str) -> list[str]:
    """Folder data whose spec fits the networks: the channels and the crop (no file is read to build them)."""
    if channels_in != channels_out:
        raise UserError(f"{what} maps {channels_in} channels to {channels_out}; the package's folder data hold one "
                        "channel count for both sides")
    if channels_in not in (1, 3):
        raise UserError(f"{what} is for {channels_in}-channel images; the package's image data have 1 or 3")
    load = -(-size * 286 // 256)  # the authors' load_size : crop ratio (286 : 256)
    return [f"data={data}", f"data.channels={channels_in}", f"data.crop={size}", f"data.load_size={load}"]


def _sized(group: str, sizes: dict) -> list[str]:
    return [f"model.{group}.{k}={v}" for k, v in sizes.items()]


def read_pix2pix(src: Path) -> Imported:
    """The authors' pix2pix run: ``<prefix>net_G.pth`` (a U-Net) and, where present, ``<prefix>net_D.pth``."""
    files = run_files(src, ("G", "D"))
    if "G" not in files:
        raise UserError(f"src: no generator beside {Path(src).name} ({Path(src).name.replace('net_D', 'net_G')})")
    dropped: list[int] = []
    g = _network(files["G"], "unet", "pix2pix", dropped)
    state = {f"family.generator.{k}": v for k, v in g.state.items()}
    size = 2 ** int(g.sizes["num_downs"])
    overrides = ["model=pix2pix", *_sized("generator", g.sizes),
                 *_data_overrides("aligned_folder", g.in_channels, g.out_channels, size, f"{files['G'].name}'s U-Net")]
    d_sizes = {"ndf": 64, "n_layers": 3, "norm": g.sizes["norm"]}  # the authors' defaults, where no D comes
    if "D" in files:
        d = _network(files["D"], "patchgan", "pix2pix", dropped)
        pair, alone = g.in_channels + g.out_channels, g.out_channels
        if d.in_channels not in (pair, alone):
            raise UserError(f"{files['D'].name}: the discriminator reads {d.in_channels} channels; the generator's "
                            f"(input, output) pair has {pair}")
        overrides.append(f"model.conditional={str(d.in_channels == pair).lower()}")
        d_sizes = d.sizes
        state.update({f"family.discriminator.{k}": v for k, v in d.state.items()})
    overrides += _sized("discriminator", d_sizes)
    names = ", ".join(p.name for p in files.values())
    notes = _dropped_note(dropped)
    if g.sizes["dropout_layers"]:
        notes.append(f"dropout after {g.sizes['dropout_layers']} up-convolutions, as the authors' U-Net with "
                     f"{g.sizes['num_downs']} downsamplings (dropout has no weights to read it from)")
    roles = " and ".join({"G": "generator", "D": "discriminator"}[n] for n in files)
    return Imported(state, overrides, f"pix2pix {roles} ({names})", notes)


CYCLEGAN_PLACES = {"G": "generator.ab", "G_A": "generator.ab", "G_B": "generator.ba", "D_A": "discriminator.b",
                   "D_B": "discriminator.a"}


def read_cyclegan(src: Path) -> Imported:
    """The authors' CycleGAN run: ``<prefix>net_G_A.pth``, ``_G_B``, ``_D_A``, ``_D_B`` (those present), or one
    generator (a released ``horse2zebra.pth``, the test model's ``net_G.pth``) as ``generator.ab``."""
    files = run_files(src, ("G_A", "G_B", "D_A", "D_B"))
    gens = [n for n in files if n.startswith("G")]
    if not gens:
        raise UserError(f"src: no generator beside {Path(src).name} (its run's net_G_A.pth or net_G_B.pth)")
    dropped: list[int] = []
    nets = {name: _network(path, "resnet" if name.startswith("G") else "patchgan", "cyclegan", dropped)
            for name, path in files.items()}
    discs = [n for n in nets if n.startswith("D")]
    g = nets[gens[0]]
    c_a, c_b = (g.out_channels, g.in_channels) if gens[0] == "G_B" else (g.in_channels, g.out_channels)
    for name in gens[1:] + discs[1:]:  # one factory builds both of a pair: the same sizes
        first = gens[0] if name.startswith("G") else discs[0]
        if nets[name].sizes != nets[first].sizes:
            raise UserError(f"{files[name].name} and {files[first].name} differ in size ({nets[name].sizes} and "
                            f"{nets[first].sizes}); the package builds both of a pair alike")
    for name in gens + discs:  # the domains' channels: G_A reads A, G_B reads B; D_A judges B, D_B judges A
        want = {"G": c_a, "G_A": c_a, "G_B": c_b, "D_A": c_b, "D_B": c_a}[name]
        if nets[name].in_channels != want:
            raise UserError(f"{files[name].name} reads {nets[name].in_channels} channels; its domain has {want}")
    overrides = ["model=cyclegan", *_sized("generator", g.sizes),
                 *_data_overrides("unaligned_folder", c_a, c_b, 256, f"{files[gens[0]].name}'s generator")]
    d_sizes = nets[discs[0]].sizes if discs else {"ndf": 64, "n_layers": 3, "norm": g.sizes["norm"]}
    overrides += _sized("discriminator", d_sizes)
    state = {f"family.{CYCLEGAN_PLACES[name]}.{k}": v for name, net in nets.items() for k, v in net.state.items()}
    names = ", ".join(p.name for p in files.values())
    places = ", ".join(f"{n} -> {CYCLEGAN_PLACES[n]}" for n in files)
    notes = [f"{places} (G_A translates A -> B; D_A judges B, as in the authors' code)", *_dropped_note(dropped),
             *[net.note for net in nets.values() if net.note]]
    return Imported(state, overrides, f"CycleGAN {', '.join(files)} ({names})", notes)
