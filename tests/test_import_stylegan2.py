"""Importing StyleGAN2-ADA's network pickles: files in the authors' format are built here without their code
(stand-in modules with their key names, shapes and attributes, read from stylegan2-ada-pytorch's
training/networks.py, pickled as torch_utils/persistence.py pickles them), then

- every tensor maps to the package's StyleGAN2 and none is left over;
- the imported networks compute what an independent functional forward over the authors' key dict computes
  with the same tensors (mapping, synthesis, the whole generator and discriminator, conditional too), in float64;
- a pickle that would run code is refused with one line and runs nothing; a truncated or foreign file is one line;
- the conditional discriminator has StyleGAN2-ADA's label mapping and parameter count at paper256 widths."""

from __future__ import annotations

import io
import math
import pickle
import re
import struct
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from gan_lightning.core.module import GANModule
from gan_lightning.data.spec import DataSpec
from gan_lightning.errors import UserError
from gan_lightning.importers import read
from gan_lightning.importers.safe_pickle import load
from gan_lightning.networks.stylegan2 import Discriminator, Generator
from gan_lightning.train.build import build_family

from .conftest import compose_cfg

SQRT2 = math.sqrt(2.0)
FIR = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64


# --- writing pickles in the authors' format ---------------------------------------------------------------------------
def _global(module: str, name: str):
    """A stand-in object that ``AuthorsPickler`` writes as the global ``module.name`` (never called here)."""

    def stand_in(*args):
        raise AssertionError(f"{module}.{name} is a name in a pickle, not called by the tests")

    stand_in.pickle_as = (module, name)
    return stand_in


RECONSTRUCT = _global("torch_utils.persistence", "_reconstruct_persistent_obj")
NUMPY_SCALAR = _global("numpy.core.multiarray", "scalar")  # numpy 1's spelling, as in the released pickles
NUMPY_DTYPE = _global("numpy", "dtype")


class AuthorsPickler(pickle._Pickler):
    """The pure-Python pickler, writing stand-ins (``pickle_as``) as the authors' globals."""

    def save(self, obj, save_persistent_id=True):
        target = vars(obj).get("pickle_as") if isinstance(obj, (type, types.FunctionType)) else None
        if target is None:
            return super().save(obj, save_persistent_id)
        self.write(pickle.GLOBAL + f"{target[0]}\n{target[1]}\n".encode())


class EasyDict(dict):
    pickle_as = ("dnnlib.util", "EasyDict")


class _Float64Dtype:
    def __reduce__(self):  # as numpy pickles dtype('float64')
        return NUMPY_DTYPE, ("f8", False, True), (3, "<", None, None, None, -1, -1, 0)


class NpFloat(float):
    """A numpy float64 as numpy pickles it (``weight_gain = lr / np.sqrt(fan_in)`` in the authors' layers)."""

    def __reduce__(self):
        return NUMPY_SCALAR, (_Float64Dtype(), struct.pack("<d", self))


class Persistent(nn.Module):
    """A module pickled as persistence.py's decorator pickles its classes: ``_reconstruct_persistent_obj(meta)``
    with the module's ``__dict__`` as the state and its module's source beside it."""

    def __init__(self, class_name: str, module_src: str, **init_kwargs):
        super().__init__()
        object.__setattr__(self, "_meta", (class_name, module_src))
        self._init_args, self._init_kwargs = (), EasyDict(init_kwargs)

    def __reduce__(self):
        state = dict(self.__dict__)
        class_name, module_src = state.pop("_meta")
        meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)
        return RECONSTRUCT, (meta,)


def _param(t):
    return nn.Parameter(t, requires_grad=False)  # (the snapshots' networks are requires_grad_(False))


class Authors:
    """Builds the authors' networks as ``Persistent`` records with random tensors of their shapes."""

    def __init__(self, seed: int, module_src: str = "# training/networks.py"):
        self.gen = torch.Generator().manual_seed(seed)
        self.src = module_src

    def randn(self, *shape, scale=1.0, shift=0.0):
        return torch.randn(*shape, generator=self.gen) * scale + shift

    def node(self, class_name, **kwargs):
        return Persistent(class_name, self.src, **kwargs)

    def fc(self, in_f, out_f, activation="linear", lr=1.0, bias_init=0.0):
        m = self.node("FullyConnectedLayer", in_features=in_f, out_features=out_f, activation=activation,
                      lr_multiplier=lr, bias_init=bias_init)
        m.activation, m.weight_gain, m.bias_gain = activation, NpFloat(lr / math.sqrt(in_f)), lr
        m.weight = _param(self.randn(out_f, in_f) / lr)
        m.bias = _param(self.randn(out_f, scale=0.1, shift=bias_init))  # (not at init: every bias moved)
        return m

    def conv(self, in_c, out_c, k, activation="lrelu", down=1, bias=True):
        m = self.node("Conv2dLayer", in_channels=in_c, out_channels=out_c, kernel_size=k, activation=activation,
                      down=down, bias=bias)
        m.activation, m.up, m.down, m.conv_clamp, m.padding = activation, 1, down, None, k // 2
        m.register_buffer("resample_filter", FIR.clone())
        m.weight_gain = NpFloat(1 / math.sqrt(in_c * k * k))
        m.act_gain = NpFloat(SQRT2) if activation == "lrelu" else 1
        m.weight = _param(self.randn(out_c, in_c, k, k))
        if bias:
            m.bias = _param(self.randn(out_c, scale=0.1))
        else:
            m.bias = None
        return m

    def mapping(self, z_dim, c_dim, w_dim, num_ws, layers, w_avg_beta=0.995):
        m = self.node("MappingNetwork", z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=num_ws, num_layers=layers)
        m.z_dim, m.c_dim, m.w_dim, m.num_ws, m.num_layers = z_dim, c_dim, w_dim, num_ws, layers
        m.w_avg_beta = w_avg_beta
        if c_dim:
            m.embed = self.fc(c_dim, w_dim)
        features = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * layers
        for i in range(layers):
            setattr(m, f"fc{i}", self.fc(features[i], features[i + 1], "lrelu", lr=0.01))
        if num_ws is not None and w_avg_beta is not None:
            m.register_buffer("w_avg", self.randn(w_dim))
        return m

    def synthesis_layer(self, in_c, out_c, w_dim, res, up):
        m = self.node("SynthesisLayer", in_channels=in_c, out_channels=out_c, w_dim=w_dim, resolution=res, up=up)
        m.resolution, m.up, m.use_noise, m.activation, m.conv_clamp, m.padding = res, up, True, "lrelu", 256, 1
        m.register_buffer("resample_filter", FIR.clone())
        m.act_gain = NpFloat(SQRT2)
        m.affine = self.fc(w_dim, in_c, bias_init=1)
        m.weight = _param(self.randn(out_c, in_c, 3, 3))
        m.register_buffer("noise_const", self.randn(res, res))
        m.noise_strength = _param(self.randn([], scale=0.3))
        m.bias = _param(self.randn(out_c, scale=0.1))
        return m

    def generator(self, z_dim, c_dim, w_dim, res, img_c, base, cmax, layers):
        widths = {r: min(base // r, cmax) for r in (2**i for i in range(2, int(math.log2(res)) + 1))}
        g = self.node("Generator", z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=res, img_channels=img_c,
                      mapping_kwargs=EasyDict(num_layers=layers),
                      synthesis_kwargs=EasyDict(channel_base=base, channel_max=cmax, num_fp16_res=2, conv_clamp=256))
        g.z_dim, g.c_dim, g.w_dim, g.img_resolution, g.img_channels = z_dim, c_dim, w_dim, res, img_c
        s = g.synthesis = self.node("SynthesisNetwork", w_dim=w_dim, img_resolution=res, img_channels=img_c,
                                    channel_base=base, channel_max=cmax)
        num_ws = 0
        for r, width in widths.items():
            b = self.node("SynthesisBlock", in_channels=widths.get(r // 2, 0), out_channels=width, resolution=r)
            b.register_buffer("resample_filter", FIR.clone())
            b.resolution, b.use_fp16, b.num_conv, b.num_torgb = r, r >= res // 2, 1 if r == 4 else 2, 1
            if r == 4:
                b.const = _param(self.randn(width, 4, 4))
            else:
                b.conv0 = self.synthesis_layer(widths[r // 2], width, w_dim, r, up=2)
            b.conv1 = self.synthesis_layer(width, width, w_dim, r, up=1)
            t = b.torgb = self.node("ToRGBLayer", in_channels=width, out_channels=img_c, w_dim=w_dim)
            t.conv_clamp, t.weight_gain = 256, NpFloat(1 / math.sqrt(width))
            t.affine = self.fc(w_dim, width, bias_init=1)
            t.weight = _param(self.randn(img_c, width, 1, 1))
            t.bias = _param(self.randn(img_c, scale=0.1))
            setattr(s, f"b{r}", b)
            num_ws += b.num_conv
        s.num_ws = g.num_ws = num_ws + 1
        g.mapping = self.mapping(z_dim, c_dim, w_dim, g.num_ws, layers)
        return g

    def discriminator(self, c_dim, res, img_c, base, cmax, mbstd_group, mapping_layers=8):
        widths = {r: min(base // r, cmax) for r in (2**i for i in range(2, int(math.log2(res)) + 1))}
        d = self.node("Discriminator", c_dim=c_dim, img_resolution=res, img_channels=img_c, channel_base=base,
                      channel_max=cmax, epilogue_kwargs=EasyDict(mbstd_group_size=mbstd_group))
        d.c_dim, d.img_resolution, d.block_resolutions = c_dim, res, [r for r in reversed(widths) if r > 4]
        for r in d.block_resolutions:
            b = self.node("DiscriminatorBlock", in_channels=0 if r == res else widths[r], tmp_channels=widths[r],
                          out_channels=widths[r // 2], resolution=r)
            b.register_buffer("resample_filter", FIR.clone())
            b.architecture, b.use_fp16 = "resnet", False
            if r == res:
                b.fromrgb = self.conv(img_c, widths[r], 1)
            b.conv0 = self.conv(widths[r], widths[r], 3)
            b.conv1 = self.conv(widths[r], widths[r // 2], 3, down=2)
            b.skip = self.conv(widths[r], widths[r // 2], 1, activation="linear", down=2, bias=False)
            setattr(d, f"b{r}", b)
        cmap = widths[4] if c_dim else 0
        if c_dim:
            d.mapping = self.mapping(0, c_dim, cmap, None, mapping_layers, w_avg_beta=None)
        e = d.b4 = self.node("DiscriminatorEpilogue", in_channels=widths[4], cmap_dim=cmap, resolution=4)
        e.cmap_dim = cmap
        e.mbstd = self.node("MinibatchStdLayer", group_size=mbstd_group, num_channels=1)
        e.mbstd.group_size, e.mbstd.num_channels = mbstd_group, 1
        e.conv = self.conv(widths[4] + 1, widths[4], 3)
        e.fc = self.fc(widths[4] * 16, widths[4], "lrelu")
        e.out = self.fc(widths[4], cmap or 1)
        return d


SMALL = dict(z_dim=16, w_dim=16, res=32, img_c=3, base=256, cmax=32, layers=2)  # G widths 32/32/16/8 at 4..32 px
SMALL_D = dict(res=32, img_c=3, base=512, cmax=32, mbstd_group=2)  # D widths 32/32/32/16: not G's


def networks(c_dim: int = 0, module_src: str = "# training/networks.py", seed: int = 0) -> dict:
    """The authors' snapshot dict for a small network (G and G_ema with different tensors)."""
    a = Authors(seed, module_src)
    return dict(
        training_set_kwargs=dict(class_name="training.dataset.ImageFolderDataset", path="~/datasets/x.zip",
                                 use_labels=bool(c_dim), resolution=32),
        G=a.generator(c_dim=c_dim, **SMALL), D=a.discriminator(c_dim, **SMALL_D),
        G_ema=a.generator(c_dim=c_dim, **SMALL), augment_pipe=_augment_pipe(a))


def _augment_pipe(a: Authors):
    pipe = a.node("AugmentPipe", xflip=1, rotate90=1)
    pipe.register_buffer("p", torch.tensor(0.25))
    pipe.xflip, pipe.imgfilter_bands = 1.0, [1, 1, 1, 1]
    return pipe


def write(path: Path, obj, protocol: int = 3) -> Path:
    with path.open("wb") as f:
        AuthorsPickler(f, protocol=protocol).dump(obj)
    return path


# --- an independent functional forward over the authors' key dict -----------------------------------------------------
def _fc(p, name, x, lr=1.0, act=False):
    w, b = p[f"{name}.weight"], p[f"{name}.bias"]
    y = x @ (w * (lr / math.sqrt(w.shape[1]))).t() + b * lr
    return F.leaky_relu(y, 0.2) * SQRT2 if act else y


def _norm(x):
    return x / (x.square().mean(dim=1, keepdim=True) + 1e-8).sqrt()


def ref_mapping(p, z, c, layers, prefix="mapping"):
    parts = ([_norm(z)] if z is not None else []) + ([_norm(_fc(p, f"{prefix}.embed", c))] if c is not None else [])
    x = torch.cat(parts, dim=1)
    for i in range(layers):
        x = _fc(p, f"{prefix}.fc{i}", x, lr=0.01, act=True)
    return x


def _depthwise(x, kernel):
    return F.conv2d(x, kernel.to(x).expand(x.shape[1], 1, *kernel.shape), groups=x.shape[1])


def ref_modconv(x, weight, styles, demodulate=True, up=False):
    """Fused: a weight per sample (grouped convolution). ``up``: zeros between the pixels, a full correlation with
    the flipped kernel (a stride-2 transposed convolution), then the FIR filter (pad 1, gain 4)."""
    n, (o, i, k, _) = x.shape[0], weight.shape
    w = weight[None] * styles[:, None, :, None, None]
    if demodulate:
        w = w / (w.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8).sqrt()
    x = x.reshape(1, n * i, *x.shape[2:])
    if not up:
        y = F.conv2d(x, w.reshape(n * o, i, k, k), padding=k // 2, groups=n)
    else:
        h, wd = x.shape[2:]
        u = x.new_zeros(1, n * i, 2 * h - 1, 2 * wd - 1)
        u[..., ::2, ::2] = x
        y = F.conv2d(F.pad(u, [k - 1] * 4), w.flip(3, 4).reshape(n * o, i, k, k), groups=n)
        y = _depthwise(F.pad(y, [1] * 4), FIR * 4)
    return y.reshape(n, o, *y.shape[2:])


def ref_upsample(img):
    n, c, h, w = img.shape
    u = img.new_zeros(n, c, 2 * h, 2 * w)
    u[..., ::2, ::2] = img
    return _depthwise(F.pad(u, [2, 1, 2, 1]), FIR * 4)


def ref_synthesis_layer(p, name, x, w, up=False):
    y = ref_modconv(x, p[f"{name}.weight"], _fc(p, f"{name}.affine", w), up=up)
    y = y + p[f"{name}.noise_const"] * p[f"{name}.noise_strength"]
    return F.leaky_relu(y + p[f"{name}.bias"].view(1, -1, 1, 1), 0.2) * SQRT2


def ref_block(p, res, x, img, ws):
    """One synthesis block ``b{res}`` on ws[:, 0..]: (x, img)."""
    b = f"synthesis.b{res}"
    if res == 4:
        x = ref_synthesis_layer(p, f"{b}.conv1", p[f"{b}.const"][None].repeat(ws.shape[0], 1, 1, 1), ws[:, 0])
        k = 1
    else:
        x = ref_synthesis_layer(p, f"{b}.conv1", ref_synthesis_layer(p, f"{b}.conv0", x, ws[:, 0], up=True), ws[:, 1])
        k = 2
    styles = _fc(p, f"{b}.torgb.affine", ws[:, k]) / math.sqrt(x.shape[1])
    y = ref_modconv(x, p[f"{b}.torgb.weight"], styles, demodulate=False) + p[f"{b}.torgb.bias"].view(1, -1, 1, 1)
    return x, y if img is None else ref_upsample(img) + y


def ref_generator(p, z, c, layers):
    w = ref_mapping(p, z, c, layers)
    resolutions = sorted({int(k.split(".")[1][1:]) for k in p if k.startswith("synthesis.")})
    ws = w[:, None].repeat(1, 2 * len(resolutions), 1)
    x = img = None
    for res in resolutions:
        x, img = ref_block(p, res, x, img, ws)
    return img


def _conv(p, name, x, act=True, down=False, gain=1.0):
    w = p[f"{name}.weight"]
    w = w / math.sqrt(w[0].numel())
    k = w.shape[-1]
    if down:  # the FIR filter at full resolution, the convolution, then every other pixel
        x = F.conv2d(_depthwise(F.pad(x, [k // 2 + 1] * 4), FIR), w)[..., ::2, ::2]
    else:
        x = F.conv2d(x, w, padding=k // 2)
    if f"{name}.bias" in p:
        x = x + p[f"{name}.bias"].view(1, -1, 1, 1)
    return (F.leaky_relu(x, 0.2) * SQRT2 if act else x) * gain


def ref_mbstd(x, group):
    n = x.shape[0]
    m = n // min(group, n)  # sample s is in the group of the samples s' with s' = s (mod m)
    stats = torch.stack([x[s % m :: m].var(dim=0, unbiased=False).add(1e-8).sqrt().mean() for s in range(n)])
    return torch.cat([x, stats.view(n, 1, 1, 1).expand(n, 1, *x.shape[2:])], dim=1)


def ref_discriminator(p, img, c, group, mapping_layers=8):
    resolutions = sorted({int(k.split(".")[0][1:]) for k in p if k.startswith("b")}, reverse=True)
    x = _conv(p, f"b{resolutions[0]}.fromrgb", img)
    for res in resolutions[:-1]:
        skip = _conv(p, f"b{res}.skip", x, act=False, down=True, gain=math.sqrt(0.5))
        x = skip + _conv(p, f"b{res}.conv1", _conv(p, f"b{res}.conv0", x), down=True, gain=math.sqrt(0.5))
    x = _conv(p, "b4.conv", ref_mbstd(x, group))
    x = _fc(p, "b4.out", _fc(p, "b4.fc", x.flatten(1), act=True))
    if c is None:
        return x[:, 0]
    cmap = ref_mapping(p, None, c, mapping_layers)
    return (x * cmap).sum(dim=1) / math.sqrt(cmap.shape[1])


# --- helpers ----------------------------------------------------------------------------------------------------------
def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and text
    return text


def _double(state):
    return {k: v.double() for k, v in state.items()}


def _module_for(imported, tmp_path: Path) -> GANModule:
    """The GANModule the overrides build (data spec from the data overrides), the imported state loaded."""
    model_overrides = [o for o in imported.overrides if not o.startswith("data")]
    data = dict(o.split("=", 1) for o in imported.overrides if o.startswith("data."))
    shape = [int(v) for v in data["data.shape"].strip("[]").split(",")]
    classes = None if data["data.num_classes"] == "null" else int(data["data.num_classes"])
    cfg = compose_cfg(model_overrides, tmp_path / "cfg")
    spec = DataSpec({"x": tuple(shape), **({"y": ()} if classes else {})}, num_classes=classes)
    family = build_family(OmegaConf.to_container(cfg.model, resolve=True), OmegaConf.to_container(cfg.loss), spec)
    module = GANModule(family, optimizer={}, ema_decay=0.999)
    missing, unexpected = module.load_state_dict(imported.state, strict=False)
    assert unexpected == []
    assert all(not k.startswith(tuple(("family.generator.", "generator_ema.", "family.discriminator."))) for k in
               missing), missing
    return module.eval()


# --- (a) every key maps, none is left over ----------------------------------------------------------------------------
@pytest.mark.parametrize("c_dim", [0, 3])
def test_every_tensor_of_g_g_ema_and_d_finds_its_place_and_none_is_left(tmp_path, c_dim):
    nets = networks(c_dim)
    imported = read("stylegan2", write(tmp_path / "network-snapshot-000100.pkl", nets))
    authors = {name: nets[name].state_dict() for name in ("G", "G_ema", "D")}
    filters = {name: [k for k in s if k.endswith("resample_filter")] for name, s in authors.items()}
    # every tensor but the resampling filters (the package makes its own; checked) is in the state, once
    assert len(imported.state) == sum(len(s) - len(filters[n]) for n, s in authors.items())
    module = _module_for(imported, tmp_path)
    package = {k: v for k, v in module.state_dict().items()
               if k.startswith(("family.generator.", "generator_ema.", "family.discriminator."))}
    assert set(imported.state) == set(package)
    assert all(imported.state[k].shape == package[k].shape for k in package)
    # values moved, not just shapes: the same tensor objects' values, by name
    assert torch.equal(imported.state["family.generator.mapping.net.1.weight"], authors["G"]["mapping.fc1.weight"])
    assert torch.equal(imported.state["generator_ema.synthesis.blocks.2.conv0.noise_const"],
                       authors["G_ema"]["synthesis.b16.conv0.noise_const"])
    assert torch.equal(imported.state["family.discriminator.blocks.0.skip.weight"], authors["D"]["b32.skip.weight"])
    assert ("model.conditional=true" in imported.overrides) == bool(c_dim)
    assert "model.generator.channel_base=256" in imported.overrides
    assert "model.discriminator.channel_base=512" in imported.overrides
    assert "model.discriminator.mbstd_group=2" in imported.overrides
    assert any("augmentation pipeline is not imported (its p was 0.250)" in n for n in imported.notes)


def test_a_tensor_without_a_place_or_a_different_filter_is_one_line(tmp_path):
    nets = networks()
    nets["G"].synthesis.b8.register_buffer("extra", torch.zeros(3))
    with pytest.raises(UserError) as err:
        read("stylegan2", write(tmp_path / "extra.pkl", nets))
    assert _one_line(err).endswith("G.synthesis.b8.extra has no place in the package's StyleGAN2")
    nets = networks()
    nets["D"].b16.conv1.resample_filter.fill_(1 / 16)  # a box filter
    with pytest.raises(UserError) as err:
        read("stylegan2", write(tmp_path / "box.pkl", nets))
    assert _one_line(err).endswith("D.b16.conv1.resample_filter is not the [1, 3, 3, 1] filter the package resamples "
                                   "with")


def test_widths_that_no_base_max_rule_gives_come_as_explicit_channels(tmp_path):
    nets = networks()
    for name in ("G", "G_ema"):
        nets[name]._init_kwargs["synthesis_kwargs"]["channel_base"] = 1000  # kwargs that do not give the widths
    imported = read("stylegan2", write(tmp_path / "x.pkl", nets))
    assert "model.generator.channels={4:32,8:32,16:16,32:8}" in imported.overrides
    module = _module_for(imported, tmp_path)
    assert [b.conv1.weight.shape[0] for b in module.family.generator.synthesis.blocks] == [32, 32, 16, 8]


# --- (b) the imported networks compute what the authors' tensors compute ----------------------------------------------
@pytest.mark.parametrize("c_dim", [0, 3])
def test_imported_networks_compute_what_the_authors_tensors_compute(tmp_path, c_dim):
    nets = networks(c_dim)
    module = _module_for(read("stylegan2", write(tmp_path / "n.pkl", nets)), tmp_path).double()
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(4, 16, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 2, 1, 2]) if c_dim else None
    c = F.one_hot(y, c_dim).double() if c_dim else None
    images = torch.randn(4, 3, 32, 32, generator=gen, dtype=torch.float64)
    for name, net in (("G", module.family.generator), ("G_ema", module.generator_ema)):
        p = _double(nets[name].state_dict())
        with torch.no_grad():
            w = net.mapping(z, y)
            assert w.shape == (4, net.num_ws, 16) and torch.allclose(w[:, 3], w[:, 0])
            assert torch.allclose(w[:, 0], ref_mapping(p, z, c, 2), rtol=1e-9, atol=1e-9), f"{name} mapping"
            _, block = ref_block(p, 4, None, None, w)
            first = net.synthesis.blocks[0]
            assert torch.allclose(first(None, None, w, "const")[1], block, rtol=1e-9, atol=1e-9), f"{name} 4x4 block"
            out = net(z, y, noise_mode="const")
            assert out.shape == (4, 3, 32, 32)
            assert torch.allclose(out, ref_generator(p, z, c, 2), rtol=1e-8, atol=1e-9), f"{name} image"
    d = module.family.discriminator
    with torch.no_grad():
        ref = ref_discriminator(_double(nets["D"].state_dict()), images, c, group=2)
        assert torch.allclose(d(images, y) if c_dim else d(images), ref, rtol=1e-8, atol=1e-9)
        if c_dim:  # the label matters, through the mapped projection
            assert not torch.allclose(d(images, (y + 1) % c_dim), ref, rtol=1e-3)
    assert not torch.allclose(module.family.generator(z, y), module.generator_ema(z, y)), "G and G_ema differ"


# --- (c) a pickle that would run code is refused and runs nothing -----------------------------------------------------
def test_a_persistent_objects_source_is_never_run(tmp_path, monkeypatch):
    import sys

    marker = tmp_path / "ran"
    path = write(tmp_path / "src.pkl", networks(module_src=f"open({str(marker)!r}, 'w').write('ran')"))
    imported = read("stylegan2", path)  # the file imports fine: its source is not needed, and never run
    assert imported.state and not marker.exists()
    # What an ordinary pickle.load would do with it: persistence.py imports (executes) each record's source.
    fake = types.ModuleType("torch_utils.persistence")
    fake._reconstruct_persistent_obj = lambda meta: exec(meta["module_src"], {})
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", fake)
    monkeypatch.setitem(sys.modules, "dnnlib", types.ModuleType("dnnlib"))
    monkeypatch.setitem(sys.modules, "dnnlib.util", types.SimpleNamespace(EasyDict=dict))
    monkeypatch.setitem(sys.modules, "numpy.core.multiarray", types.SimpleNamespace(scalar=lambda *a: 0.0))
    with path.open("rb") as f:
        pickle.load(f)
    assert marker.read_text() == "ran", "the test file is live: a trusting loader runs its source"


@pytest.mark.parametrize("module,name", [("os", "system"), ("builtins", "exec"), ("builtins", "eval"),
                                         ("subprocess", "Popen"), ("torch", "load"), ("builtins", "getattr")])
def test_a_global_outside_the_list_is_refused_with_one_line_naming_it(tmp_path, module, name):
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('ran')"
    payload = pickle.GLOBAL + f"{module}\n{name}\n".encode() + pickle.MARK + pickle.UNICODE + code.encode() \
        + b"\n" + pickle.TUPLE + pickle.REDUCE + pickle.STOP
    if (module, name) == ("builtins", "exec"):  # (the payload is live: an ordinary load runs it)
        pickle.loads(payload)
        assert marker.exists()
        marker.unlink()
    inner = {"G": payload}  # deep inside a valid-looking file too
    for i, data in enumerate((payload, _wrap(inner))):
        (tmp_path / f"{i}.pkl").write_bytes(data)
        with pytest.raises(UserError) as err:
            read("stylegan2", tmp_path / f"{i}.pkl")
        assert _one_line(err).startswith(f"{tmp_path / f'{i}.pkl'}: refused the global {module}.{name} (")
    assert not marker.exists()


def _wrap(entries: dict) -> bytes:
    """A protocol-3 pickle of a dict whose values are the raw pickles given (without their STOP)."""
    out = pickle.PROTO + bytes([3]) + pickle.EMPTY_DICT + pickle.MARK
    for key, raw in entries.items():
        out += pickle.BINUNICODE + struct.pack("<I", len(key)) + key.encode() + raw[:-1]
    return out + pickle.SETITEMS + pickle.STOP


def test_a_tensor_storage_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').write('ran')",)

    blob = io.BytesIO()
    torch.save(Evil(), blob, _use_new_zipfile_serialization=False)
    storage_call = pickle.GLOBAL + b"torch.storage\n_load_from_bytes\n" + pickle.MARK + pickle.BINBYTES \
        + struct.pack("<I", len(blob.getvalue())) + blob.getvalue() + pickle.TUPLE + pickle.REDUCE + pickle.STOP
    path = tmp_path / "storage.pkl"
    path.write_bytes(storage_call)
    with pytest.raises(UserError) as err:
        load(path)
    assert re.fullmatch(rf"{re.escape(str(path))}: refused the global (builtins\.)?exec inside a tensor storage "
                        r"\(loading it could run code\)", _one_line(err))
    assert not marker.exists()


# --- (d) truncated or foreign files -----------------------------------------------------------------------------------
def test_a_truncated_pickle_is_one_line(tmp_path):
    data = (write(tmp_path / "full.pkl", networks())).read_bytes()
    for cut in (1, len(data) // 10, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.pkl"
        path.write_bytes(data[:cut])
        with pytest.raises(UserError) as err:
            read("stylegan2", path)
        assert _one_line(err) == f"{path}: the pickle is truncated ({cut} bytes): download the file again"


def test_other_files_are_not_stylegan2_ada_network_pickles(tmp_path):
    cases = {
        "ckpt.pt": lambda p: torch.save({"state_dict": {"w": torch.zeros(2)}}, p),
        "dict.pkl": lambda p: p.write_bytes(pickle.dumps({"a": 1})),
        "text.pkl": lambda p: p.write_text("hello"),
    }
    expected = {
        "ckpt.pt": "not a StyleGAN2-ADA network pickle (a zip archive: a torch.save checkpoint?)",
        "dict.pkl": "not a StyleGAN2-ADA network pickle (no G, G_ema, D; its keys: a)",
        "text.pkl": "not a StyleGAN2-ADA network pickle (not a pickle:",
    }
    for name, make in cases.items():
        make(tmp_path / name)
        with pytest.raises(UserError) as err:
            read("stylegan2", tmp_path / name)
        assert _one_line(err).startswith(f"{tmp_path / name}: {expected[name]}")
    nets = networks()
    nets["D"] = nets["G"]
    with pytest.raises(UserError) as err:
        read("stylegan2", write(tmp_path / "gg.pkl", nets))
    assert _one_line(err).endswith("not a StyleGAN2-ADA network pickle (its D is a Generator, not StyleGAN2-ADA's "
                                   "Discriminator)")


def test_sizes_and_architectures_the_package_does_not_build_are_one_line_saying_which(tmp_path):
    a = Authors(0)

    def snapshot(g_res=32, d_res=32, img_c=3):
        g = dict(SMALL, res=g_res, img_c=img_c)
        return dict(G=a.generator(c_dim=0, **g), G_ema=a.generator(c_dim=0, **g),
                    D=a.discriminator(0, **dict(SMALL_D, res=d_res, img_c=img_c)))

    nets = snapshot(g_res=4, d_res=4)
    cases = [(nets, "G works at 4 px; the package's StyleGAN2 builds powers of two >= 8 px")]
    cases.append((snapshot(img_c=4), "the networks have 4 image channels; the package's image data have 1 or 3"))
    orig = snapshot()
    for res in (32, 16, 8):
        delattr(getattr(orig["D"], f"b{res}"), "skip")
    cases.append((orig, "D is 'orig' (no residual skips: StyleGAN2-ADA's cfg=cifar); the package's discriminator is "
                        "'resnet'"))
    for i, (nets, message) in enumerate(cases):
        path = write(tmp_path / f"{i}.pkl", nets)
        with pytest.raises(UserError) as err:
            read("stylegan2", path)
        assert _one_line(err) == f"{path}: {message}"


def test_the_unpickler_reads_what_torch_and_numpy_write_in_every_protocol(tmp_path):
    tensors = {"p": nn.Parameter(torch.randn(3, 4), requires_grad=False), "view": torch.arange(6.0)[2:],
               "gain": NpFloat(0.125), "hooks": OrderedDict(), "flags": {1, 2}, "kwargs": EasyDict(a=1)}
    for protocol in (2, 3, 4, 5):
        out = load(write(tmp_path / f"{protocol}.pkl", tensors, protocol))
        assert torch.equal(out["p"], tensors["p"]) and torch.equal(out["view"], torch.arange(2.0, 6.0))
        assert out["gain"] == 0.125 and out["flags"] == {1, 2} and out["kwargs"] == {"a": 1}


# --- (e) the conditional discriminator as StyleGAN2-ADA's -------------------------------------------------------------
def test_the_conditional_discriminator_has_the_ada_mapping_and_parameter_count_at_paper256(tmp_path):
    cfg = compose_cfg(["experiment=stylegan2/paper256", f"data.path={tmp_path}", "model.conditional=true"],
                      tmp_path / "cfg")
    with torch.device("meta"):
        family = build_family(OmegaConf.to_container(cfg.model, resolve=True), OmegaConf.to_container(cfg.loss),
                              DataSpec({"x": (3, 256, 256), "y": ()}, num_classes=10))
        unconditional = Discriminator(256, 3, None, 16384, 512, mbstd_group=8)
    d = family.discriminator

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(unconditional) == 24_001_089  # the (StyleGAN2-ADA's) D at 256 px
    # ADA's MappingNetwork(z_dim=0, c_dim=10, w_dim=512, num_ws=None): an embedding and 8 layers of 512 at lr 0.01
    assert len(d.mapping.net) == 8 and [layer.lr_mul for layer in d.mapping.net] == [0.01] * 8
    assert d.mapping.embed.lr_mul == 1.0 and not hasattr(d.mapping, "w_avg")
    assert count(d.mapping) == (10 * 512 + 512) + 8 * (512 * 512 + 512) == 2_106_880
    # the output layer gives cmap_dim = 512 features instead of 1 logit
    assert count(d) == 24_001_089 - (512 + 1) + (512 * 512 + 512) + 2_106_880 == 26_370_112
    with torch.device("meta"):
        assert count(Generator(512, 256, 3, w_dim=512, channel_base=16384)) == 24_767_458


def test_the_conditional_discriminator_projects_on_the_normalised_mapped_label():
    torch.manual_seed(0)
    d = Discriminator(8, 1, num_classes=4, channel_base=64, channel_max=8, mbstd_group=2, mapping_layers=0).eval()
    x, y = torch.randn(2, 1, 8, 8), torch.tensor([1, 3])
    with torch.no_grad():
        cmap = d.mapping(None, y)  # 0 layers: the normalised embedding alone
        assert cmap.shape == (2, 8) and torch.allclose(cmap.square().mean(1), torch.ones(2), atol=1e-5)
        features = d.out(d.fc(d.conv(_stddev(d, x)).flatten(1)))
        assert torch.allclose(d(x, y), (features * cmap).sum(1) / math.sqrt(8), atol=1e-6)
    with pytest.raises(ValueError, match="mapping_layers must be an integer >= 0"):
        Discriminator(8, 1, num_classes=4, channel_base=64, channel_max=8, mapping_layers=-1)


def _stddev(d, x):
    from gan_lightning.networks.stylegan2 import minibatch_stddev

    return minibatch_stddev(d.blocks(d.fromrgb(x)), d.mbstd_group, d.mbstd_channels)
