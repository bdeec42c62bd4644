"""StyleGAN2-ADA's network pickles (``network-snapshot-*.pkl``, ``ffhq.pkl``, ``afhqcat.pkl``, ``metfaces.pkl``) as
the package's StyleGAN2: ``G`` -> the generator, ``G_ema`` -> its EMA, ``D`` -> the discriminator.

The pickle is read by ``safe_pickle`` (nothing from it runs). The networks' layout is read from the tensors' names
and shapes (widths, depths, label size), the learning-rate multipliers, activations and minibatch-stddev settings
from the records' attributes, ``channel_base``/``channel_max`` from their init arguments when these reproduce the
widths. The package's networks are StyleGAN2-ADA's default architectures ('skip' generator, 'resnet'
discriminator, [1, 3, 3, 1] filters, leaky ReLU): anything else is refused with one line, as is a size the package
does not build. Every tensor finds its place: the renamed state is checked, key by key and shape by shape, against
the package's networks built (on the meta device) from the overrides returned with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import UserError
from ..networks import stylegan2 as sg2
from . import Imported
from .safe_pickle import NOT_A_NETWORK_PICKLE, NotAPickle, Record, load

PREFIXES = {"G": "family.generator.", "G_ema": "generator_ema.", "D": "family.discriminator."}
"""Where each network of the pickle goes in ``GANModule.state_dict()``."""

DATA_CONFIG = "spec_only"
"""The data config whose options (``data.shape``, ``data.num_classes``) declare the images the networks make
without reading any: the networks are built before the user's data is known (the folder data list their files
for the number of classes)."""

DROPPED = object()  # a rename rule's target for tensors checked and not kept


@dataclass(frozen=True)
class GeneratorLayout:
    z_dim: int
    c_dim: int
    w_dim: int
    resolution: int
    img_channels: int
    widths: dict[int, int]
    mapping_layers: int
    mapping_lr_mul: float
    w_avg_decay: float


@dataclass(frozen=True)
class DiscriminatorLayout:
    c_dim: int
    resolution: int
    img_channels: int
    widths: dict[int, int]
    mbstd_group: int
    mbstd_channels: int
    mapping_layers: int
    mapping_lr_mul: float


class Unsupported(UserError):
    """A network the package's StyleGAN2 does not build."""


def read_stylegan2(src: Path) -> Imported:
    """``G``, ``G_ema`` and ``D`` of a StyleGAN2-ADA network pickle in the package's layout, with the overrides
    that build networks of their size; a ``UserError`` of one line for anything else."""
    src = Path(src)
    data = load(src)
    nets = _networks(data, src)
    try:
        states = {name: record.state_dict() for name, record in nets.items()}
        g = _generator_layout(nets["G"], states["G"])
        if _generator_layout(nets["G_ema"], states["G_ema"]) != g:
            raise Unsupported("G and G_ema have different layouts")
        d = _discriminator_layout(nets["D"], states["D"])
        _check_pair(g, d)
        state = {}
        for name, layout in (("G", g), ("G_ema", g), ("D", d)):
            renamed = _rename(states[name], _generator_rules(g) if name != "D" else _discriminator_rules(d), name)
            _check_fits(renamed, layout, name)
            state.update({PREFIXES[name] + k: v for k, v in renamed.items()})
    except NotAPickle as e:
        raise UserError(f"{src}: {NOT_A_NETWORK_PICKLE} ({e})") from None
    except (KeyError, IndexError) as e:  # a tensor the layout's reading needs is absent, or has too few dimensions
        raise UserError(f"{src}: {NOT_A_NETWORK_PICKLE} (a tensor is missing or misshapen: {e})") from None
    except UserError as e:
        raise type(e)(f"{src}: {e}") from None
    classes = f", {g.c_dim} classes" if g.c_dim else ""
    return Imported(state=state, overrides=_overrides(g, d, nets),
                    source=f"StyleGAN2-ADA network pickle ({src.name}: G, G_ema and D at {g.resolution} px, "
                           f"{g.img_channels} channels{classes})",
                    notes=_notes(nets, data, g))


# --- the pickle's networks --------------------------------------------------------------------------------------------
def _networks(data, src: Path) -> dict[str, Record]:
    """``G``, ``G_ema`` and ``D`` of the pickle, or the one line saying what the file holds instead."""
    if not isinstance(data, dict):
        raise UserError(f"{src}: {NOT_A_NETWORK_PICKLE} (it holds a {type(data).__name__}, not a dict of networks)")
    missing = [k for k in PREFIXES if k not in data]
    if missing:
        keys = ", ".join(sorted(map(str, data))[:6]) or "nothing"
        raise UserError(f"{src}: {NOT_A_NETWORK_PICKLE} (no {', '.join(missing)}; its keys: {keys})")
    expected = {"G": "Generator", "G_ema": "Generator", "D": "Discriminator"}
    for key, class_name in expected.items():
        record = data[key]
        found = record.class_name if isinstance(record, Record) else type(record).__name__
        if found != class_name:
            raise UserError(f"{src}: {NOT_A_NETWORK_PICKLE} (its {key} is a {found}, not StyleGAN2-ADA's "
                            f"{class_name})")
    return {key: data[key] for key in expected}


def _record(root: Record, path: str) -> Record | None:
    """The sub-record at ``path`` (``mapping.fc0``), or None."""
    node = root
    for part in path.split("."):
        node = node.children().get(part) if isinstance(node, Record) else None
    return node if isinstance(node, Record) else None


def _attr(root: Record, path: str, name: str, default=None):
    record = _record(root, path) if path else root
    return record.state.get(name, default) if record is not None else default


def _check_activations(root: Record, paths: dict[str, str], net: str) -> None:
    """Each record at ``paths`` (path -> expected activation) uses that activation (where it records one)."""
    for path, expected in paths.items():
        found = _attr(root, path, "activation", expected)
        if found != expected:
            raise Unsupported(f"{net}.{path} uses the activation {found!r}; the package's StyleGAN2 uses {expected!r}")


def _numbered(state: dict[str, Tensor], pattern: str) -> list[int]:
    """The sorted distinct integers captured by ``pattern``'s first group over the keys."""
    return sorted({int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k))})


def _check_resolutions(resolutions: list[int], net: str) -> int:
    """The top resolution of consecutive blocks 4 (or 8), ..., R; the package builds powers of two >= 8."""
    if not resolutions:
        raise NotAPickle(f"{net} has no blocks")
    top = resolutions[-1]
    if top < 8:
        raise Unsupported(f"{net} works at {top} px; the package's StyleGAN2 builds powers of two >= 8 px")
    expected = [2**i for i in range(int(math.log2(resolutions[0])), int(math.log2(top)) + 1)]
    if resolutions != expected:
        raise NotAPickle(f"{net}'s blocks are at {resolutions} px, not at consecutive powers of two")
    return top


def _mapping(root: Record, state: dict[str, Tensor], net: str) -> tuple[int, int, int, int, float]:
    """(z_dim, c_dim, w_dim, layers, lr_mul) of the mapping network ``mapping`` in ``state``."""
    layers = _numbered(state, r"mapping\.fc(\d+)\.weight")
    if layers != list(range(len(layers))):
        raise NotAPickle(f"{net}'s mapping layers are numbered {layers}")
    embed = state.get("mapping.embed.weight")
    c_dim = int(embed.shape[1]) if embed is not None else 0
    embed_features = int(embed.shape[0]) if embed is not None else 0
    if layers:
        first, last = state["mapping.fc0.weight"], state[f"mapping.fc{layers[-1]}.weight"]
        w_dim, z_dim = int(last.shape[0]), int(first.shape[1]) - embed_features
    else:
        w_dim, z_dim = embed_features, 0
    lr_mul = float(_attr(root, "mapping.fc0", "bias_gain", 0.01)) if layers else 0.01
    _check_activations(root, {**{f"mapping.fc{i}": "lrelu" for i in layers},
                              **({"mapping.embed": "linear"} if embed is not None else {})}, net)
    return z_dim, c_dim, w_dim, len(layers), lr_mul


def _generator_layout(record: Record, state: dict[str, Tensor]) -> GeneratorLayout:
    net = "G"
    z_dim, c_dim, w_dim, layers, lr_mul = _mapping(record, state, net)
    if z_dim < 1 or layers < 1:
        raise Unsupported(f"G's mapping network has z of {z_dim} and {layers} layers; the package's needs both >= 1")
    resolutions = _numbered(state, r"synthesis\.b(\d+)\..*")
    top = _check_resolutions(resolutions, net)
    if any(".skip." in k for k in state):
        raise Unsupported("G's synthesis network is 'resnet'; the package's generator is 'skip' (StyleGAN2-ADA's)")
    if any(f"synthesis.b{res}.torgb.weight" not in state for res in resolutions):
        raise Unsupported("G's synthesis network is 'orig' (toRGB at the last block only); the package's generator "
                          "is 'skip' (StyleGAN2-ADA's)")
    widths = {res: int(state[f"synthesis.b{res}.conv1.weight"].shape[0]) for res in resolutions}
    for res in resolutions:
        _check_activations(record, {f"synthesis.b{res}.conv{i}": "lrelu" for i in (0, 1) if res > 4 or i}, net)
    beta = _attr(record, "mapping", "w_avg_beta", 0.995)
    if not isinstance(beta, float) or not 0 <= beta < 1:
        raise Unsupported(f"G's mapping network tracks no mean w (w_avg_beta={beta!r}); the package's does")
    return GeneratorLayout(z_dim, c_dim, w_dim, top, int(state[f"synthesis.b{top}.torgb.weight"].shape[0]), widths,
                           layers, lr_mul, beta)


def _discriminator_layout(record: Record, state: dict[str, Tensor]) -> DiscriminatorLayout:
    net = "D"
    resolutions = _numbered(state, r"b(\d+)\..*")
    top = _check_resolutions(resolutions, net)
    blocks = [res for res in resolutions if res > 4]
    if any(f"b{res}.skip.weight" not in state for res in blocks):
        raise Unsupported("D is 'orig' (no residual skips: StyleGAN2-ADA's cfg=cifar); the package's discriminator "
                          "is 'resnet'")
    if {res for res in resolutions if f"b{res}.fromrgb.weight" in state} != {top}:
        raise Unsupported("D is 'skip' (fromRGB at every block); the package's discriminator is 'resnet'")
    widths = {res: int(state[f"b{res}.conv0.weight"].shape[0]) for res in blocks}
    widths[4] = int(state["b4.conv.weight"].shape[0])
    mbstd_channels = int(_attr(record, "b4.mbstd", "num_channels", 0) or 0) if _record(record, "b4.mbstd") else 0
    group = _attr(record, "b4.mbstd", "group_size")
    if mbstd_channels < 1:
        raise Unsupported("D has no minibatch standard deviation layer; the package's discriminator has one")
    if not isinstance(group, int) or group < 1:
        raise Unsupported(f"D's minibatch standard deviation group is {group!r} (the whole batch); the package's "
                          "needs a group size")
    layer_paths = {f"b{res}.{layer}": "lrelu" for res in blocks for layer in ("conv0", "conv1")}
    _check_activations(record, {**layer_paths, f"b{top}.fromrgb": "lrelu", "b4.conv": "lrelu", "b4.fc": "lrelu",
                                "b4.out": "linear"}, net)
    c_dim = layers = 0
    lr_mul = 0.01
    if "mapping.embed.weight" in state:
        z_dim, c_dim, cmap_dim, layers, lr_mul = _mapping(record, state, net)
        if z_dim or cmap_dim != widths[4]:
            raise Unsupported(f"D maps its label to {cmap_dim} features (cmap_dim); the package's discriminator maps "
                              f"it to its 4x4 width, {widths[4]} (StyleGAN2-ADA's default)")
    return DiscriminatorLayout(c_dim, top, int(state[f"b{top}.fromrgb.weight"].shape[1]), widths, group,
                               mbstd_channels, layers, lr_mul)


def _check_pair(g: GeneratorLayout, d: DiscriminatorLayout) -> None:
    """G and D fit one data shape, and one the package builds."""
    if (g.resolution, g.img_channels, g.c_dim) != (d.resolution, d.img_channels, d.c_dim):
        raise NotAPickle(f"G makes {g.img_channels} x {g.resolution} px images with {g.c_dim} classes, D reads "
                         f"{d.img_channels} x {d.resolution} px with {d.c_dim}")
    if g.img_channels not in (1, 3):
        raise Unsupported(f"the networks have {g.img_channels} image channels; the package's image data have 1 or 3")


# --- renaming ---------------------------------------------------------------------------------------------------------
Rule = tuple[str, Callable[[re.Match], object]]


def _generator_rules(g: GeneratorLayout) -> list[Rule]:
    """The authors' generator keys -> the package's (``synthesis.b{res}`` is block log2(res) - 2)."""
    def block(m: re.Match) -> int:
        return int(math.log2(int(m.group(1)))) - 2

    layer = r"(weight|bias|noise_strength|noise_const|affine\.weight|affine\.bias)"
    return [
        (r"mapping\.embed\.(weight|bias)", lambda m: f"mapping.embed.{m.group(1)}"),
        (r"mapping\.fc(\d+)\.(weight|bias)", lambda m: f"mapping.net.{m.group(1)}.{m.group(2)}"),
        (r"mapping\.w_avg", lambda m: "mapping.w_avg"),
        (r"synthesis\.b(\d+)\.const", lambda m: f"synthesis.blocks.{block(m)}.const"),
        (rf"synthesis\.b(\d+)\.(conv0|conv1|torgb)\.{layer}",
         lambda m: f"synthesis.blocks.{block(m)}.{m.group(2)}.{m.group(3)}"),
        # The resampling filters are buffers the package makes itself (fir_kernel, not in its state): checked.
        (r"synthesis\.b(\d+)\.(?:(?:conv0|conv1)\.)?resample_filter", lambda m: DROPPED),
    ]


def _discriminator_rules(d: DiscriminatorLayout) -> list[Rule]:
    """The authors' discriminator keys -> the package's (``b{res}`` at res < top is block log2(top / res))."""
    def block(m: re.Match) -> int:
        return int(math.log2(d.resolution // int(m.group(1))))

    return [
        (rf"b{d.resolution}\.fromrgb\.(weight|bias)", lambda m: f"fromrgb.{m.group(1)}"),
        (r"b(\d+)\.(conv0|conv1|skip)\.(weight|bias)", lambda m: f"blocks.{block(m)}.{m.group(2)}.{m.group(3)}"),
        (r"b4\.(conv|fc|out)\.(weight|bias)", lambda m: f"{m.group(1)}.{m.group(2)}"),
        (r"mapping\.embed\.(weight|bias)", lambda m: f"mapping.embed.{m.group(1)}"),
        (r"mapping\.fc(\d+)\.(weight|bias)", lambda m: f"mapping.net.{m.group(1)}.{m.group(2)}"),
        (r"b(\d+)\.(?:(?:fromrgb|conv0|conv1|skip|conv)\.)?resample_filter", lambda m: DROPPED),
    ]


def _rename(state: dict[str, Tensor], rules: list[Rule], net: str) -> dict[str, Tensor]:
    """``state`` under the package's names: every key matches one rule; dropped keys (the resampling filters) must
    hold the package's [1, 3, 3, 1] filter."""
    out: dict[str, Tensor] = {}
    fir = sg2.fir_kernel()
    for key, tensor in state.items():
        target = next((fn(m) for pattern, fn in rules if (m := re.fullmatch(pattern, key))), None)
        if target is None:
            raise Unsupported(f"{net}.{key} has no place in the package's StyleGAN2")
        if target is DROPPED:
            if tensor.shape != fir.shape or not torch.allclose(tensor.float(), fir, rtol=1e-6, atol=1e-8):
                raise Unsupported(f"{net}.{key} is not the [1, 3, 3, 1] filter the package resamples with")
            continue
        out[str(target)] = tensor
    return out


def _check_fits(state: dict[str, Tensor], layout: GeneratorLayout | DiscriminatorLayout, net: str) -> None:
    """``state`` holds every tensor of the package's network for ``layout``, each of its shape, and nothing else."""
    try:
        with torch.device("meta"):
            module = _build(layout)
    except ValueError as e:
        raise Unsupported(f"{net}: {e}") from None
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has {extra[0]} besides"
        raise Unsupported(f"{net} {what} the package's network of its layout")
    for key, shape in expected.items():
        if tuple(state[key].shape) != shape:
            raise Unsupported(f"{net}: {key} is {list(state[key].shape)} where the package's network of its layout "
                              f"has {list(shape)}")


def _build(layout: GeneratorLayout | DiscriminatorLayout):
    """The package's network for ``layout`` (as the family builds it from the overrides of ``_overrides``)."""
    classes = layout.c_dim or None
    if isinstance(layout, GeneratorLayout):
        return sg2.Generator(layout.z_dim, layout.resolution, layout.img_channels, classes, w_dim=layout.w_dim,
                             mapping_layers=layout.mapping_layers, mapping_lr_mul=layout.mapping_lr_mul,
                             channels=layout.widths, w_avg_decay=layout.w_avg_decay)
    return sg2.Discriminator(layout.resolution, layout.img_channels, classes, channels=layout.widths,
                             mbstd_group=layout.mbstd_group, mbstd_channels=layout.mbstd_channels,
                             mapping_layers=layout.mapping_layers, mapping_lr_mul=layout.mapping_lr_mul)


# --- overrides and notes ----------------------------------------------------------------------------------------------
def _width_overrides(prefix: str, widths: dict[int, int], kwargs: dict) -> list[str]:
    """``channel_base``/``channel_max`` where the network's own (or StyleGAN2-ADA's defaults) give its widths, else
    the widths themselves."""
    base, top = kwargs.get("channel_base", 32768), kwargs.get("channel_max", 512)
    if isinstance(base, int) and isinstance(top, int) and base > 0 and top > 0 \
            and all(min(base // res, top) == w for res, w in widths.items()):
        return [f"{prefix}.channel_base={base}", f"{prefix}.channel_max={top}", f"{prefix}.channels=null"]
    explicit = ",".join(f"{res}:{w}" for res, w in sorted(widths.items()))
    return [f"{prefix}.channels={{{explicit}}}"]


def _overrides(g: GeneratorLayout, d: DiscriminatorLayout, nets: dict[str, Record]) -> list[str]:
    synthesis_kwargs = nets["G"].init_kwargs.get("synthesis_kwargs")
    return [
        "model=stylegan2",
        f"model.latent_dim={g.z_dim}",
        f"model.conditional={'true' if g.c_dim else 'false'}",
        f"model.resolution={g.resolution}",
        f"model.generator.w_dim={g.w_dim}",
        f"model.generator.mapping_layers={g.mapping_layers}",
        f"model.generator.mapping_lr_mul={g.mapping_lr_mul!r}",
        f"model.generator.w_avg_decay={g.w_avg_decay!r}",
        *_width_overrides("model.generator", g.widths, synthesis_kwargs if isinstance(synthesis_kwargs, dict) else {}),
        *_width_overrides("model.discriminator", d.widths, nets["D"].init_kwargs),
        f"model.discriminator.mbstd_group={d.mbstd_group}",
        f"model.discriminator.mbstd_channels={d.mbstd_channels}",
        *([f"model.discriminator.mapping_layers={d.mapping_layers}",
           f"model.discriminator.mapping_lr_mul={d.mapping_lr_mul!r}"] if d.c_dim else []),
        *_data_overrides(g),
    ]


def _data_overrides(g: GeneratorLayout) -> list[str]:
    """A data config that declares the images (and the number of classes) without reading any."""
    return [f"data={DATA_CONFIG}", f"data.shape=[{g.img_channels},{g.resolution},{g.resolution}]",
            f"data.num_classes={g.c_dim or 'null'}"]


def _notes(nets: dict[str, Record], data: dict, g: GeneratorLayout) -> list[str]:
    """What differs from the authors' runtime, and what the pickle holds that is not imported."""
    notes = []
    blocks = [_record(nets["G"], f"synthesis.b{res}") for res in g.widths]
    fp16 = sum(1 for b in blocks if b is not None and b.state.get("use_fp16") is True)
    clamp = _attr(nets["G"], f"synthesis.b{g.resolution}.conv1", "conv_clamp")
    if fp16 or clamp is not None:
        notes.append(f"the authors' networks ran {fp16} resolutions in float16 and clamped activations at +-{clamp}; "
                     "the package's run in float32 without a clamp")
    pipe = data.get("augment_pipe")
    if isinstance(pipe, Record):
        p = (pipe.state.get("_buffers") or {}).get("p")
        at = f" (its p was {float(p):.3f})" if isinstance(p, Tensor) and p.numel() == 1 else ""
        notes.append(f"the pickle's augmentation pipeline is not imported{at}: fine-tune with augment=ada")
    return notes
