"""StyleGAN2 networks (Karras et al. 2020, "Analyzing and improving the image quality of StyleGAN") in pure PyTorch.

- Equalised learning rate: every weight is stored N(0, 1) (divided by its layer's learning-rate multiplier) and
  scaled at run time by ``lr_mul / sqrt(fan_in)``, so that Adam's per-parameter step moves every layer at the same
  relative speed; the mapping network's multiplier is 0.01.
- Mapping network: pixel-normalised z (beside a pixel-normalised class embedding for a conditional model) through
  ``mapping_layers`` leaky-ReLU layers to w; a running mean of w (``w_avg``, decay 0.995 per training forward, as
  StyleGAN2-ADA) is the centre of the truncation trick ``w_avg + psi (w - w_avg)``.
- Synthesis network, 'skip' architecture: a learned 4x4 constant, then per resolution two modulated 3x3
  convolutions (the first upsamples) with per-pixel noise of learned strength, and a toRGB layer whose output is
  added to the upsampled image of the resolution below.
- Modulated convolution with demodulation, non-fused as StyleGAN2-ADA trains it: the styles scale the input
  activations, one convolution with the shared weight runs on the whole batch, and the demodulation coefficients
  ``1 / sqrt(sum (s w)^2 + 1e-8)`` scale its outputs (unit-variance outputs for unit-variance inputs).
- Discriminator, 'resnet' architecture: fromRGB at the top resolution, residual blocks that halve the size (skip
  and body scaled by sqrt(1/2)), then minibatch standard deviation, a 3x3 convolution, a dense layer and the output
  layer. A conditional discriminator projects its output on the label mapped as StyleGAN2-ADA maps it: a mapping
  network without z (a label embedding, then ``mapping_layers`` layers at lr multiplier 0.01).
- Resampling with the [1, 3, 3, 1] FIR filter (``upsample2d`` / ``downsample2d``), zero padding at the border, as
  the references do.

Widths: ``channels(res) = min(channel_base // res, channel_max)``, or an explicit ``channels`` mapping
``{resolution: width}``. The references' custom CUDA ops (upfirdn2d, bias_act, the fused modulated convolution)
are replaced by their plain torch equivalents. The parameters and buffers are StyleGAN2-ADA's under other names:
``gan_lightning.importers.stylegan2_ada`` reads its network pickles into these networks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)
SQRT_HALF = math.sqrt(0.5)
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)


# --- resampling --------------------------------------------------------------------------------------------------
def fir_kernel(taps=FIR_TAPS) -> Tensor:
    """The separable 2-D filter ``outer(taps, taps)``, normalised to sum 1 (a constant image stays constant)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    k = torch.outer(f, f)
    return k / k.sum()


def _depthwise(kernel: Tensor, channels: int, gain: float, dtype: torch.dtype) -> Tensor:
    return (kernel * gain).to(dtype)[None, None].repeat(channels, 1, 1, 1)


def fir_filter(x: Tensor, kernel: Tensor, pad: tuple[int, int], gain: float = 1.0, stride: int = 1) -> Tensor:
    """Each channel of ``x`` convolved with the (symmetric) ``kernel`` after zero-padding ``pad`` = (before,
    after) on both axes, times ``gain``; every ``stride``-th output kept."""
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    return F.conv2d(x, _depthwise(kernel, x.shape[1], gain, x.dtype), stride=stride, groups=x.shape[1])


def upsample2d(x: Tensor, kernel: Tensor) -> Tensor:
    """2x upsampling: zeros inserted between the pixels, then the FIR filter with gain 4 (one transposed
    depthwise convolution); H x W -> 2H x 2W."""
    weight = _depthwise(kernel, x.shape[1], 4.0, x.dtype)
    return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=x.shape[1])


def downsample2d(x: Tensor, kernel: Tensor) -> Tensor:
    """2x downsampling: the FIR filter, then every other pixel; H x W -> H/2 x W/2 (H, W even)."""
    return fir_filter(x, kernel, (1, 1), stride=2)


# --- equalised learning rate ---------------------------------------------------------------------------------------
class EqualLinear(nn.Module):
    """A dense layer with equalised learning rate: ``weight`` is stored N(0, 1) / ``lr_mul`` and used times
    ``lr_mul / sqrt(in_features)``; ``bias`` is used times ``lr_mul`` (stored so that it starts at ``bias_init``).
    ``activation``: leaky ReLU (0.2) times sqrt(2), which keeps the signal's second moment."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        if lr_mul <= 0:
            raise ValueError(f"lr_mul must be > 0; got {lr_mul}")
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        x = F.linear(x, self.weight * self.weight_gain, bias)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activation else x

    def extra_repr(self) -> str:
        out, inp = self.weight.shape
        return f"{inp}, {out}, lr_mul={self.lr_mul}, activation={self.activation}"


class EqualConv2d(nn.Module):
    """A convolution with equalised learning rate (weights N(0, 1) used times ``1 / sqrt(fan_in)``), 'same'
    padding, an optional FIR 2x downsampling before a strided convolution (``down``), leaky ReLU times sqrt(2)
    (``activation``), and the output times ``gain`` (the residual blocks' sqrt(1/2))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: bool = True, down: bool = False, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.activation, self.down, self.gain = activation, down, gain
        if down:
            self.register_buffer("kernel", fir_kernel(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight * self.weight_gain
        k = self.weight.shape[-1]
        if not self.down:
            x = F.conv2d(x, w, self.bias, padding=k // 2)
        elif k == 1:
            x = F.conv2d(downsample2d(x, self.kernel), w, self.bias)
        else:  # the convolution's 'same' padding plus the filter's: H -> H + 1 (k = 3) -> H / 2 after the stride
            p = k // 2 + 1
            x = F.conv2d(fir_filter(x, self.kernel, (p, p)), w, self.bias, stride=2)
        if self.activation:
            x = F.leaky_relu(x, 0.2) * SQRT2
        return x * self.gain if self.gain != 1.0 else x


# --- the generator -------------------------------------------------------------------------------------------------
def normalize_2nd_moment(x: Tensor, eps: float = 1e-8) -> Tensor:
    """Pixel norm of a vector: ``x / sqrt(mean(x^2) + eps)`` per sample."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z (and a class label) -> w, broadcast to the ``num_ws`` style inputs of the synthesis network.

    Tracks ``w_avg``, the running mean of w over training forwards (``w_avg_decay`` per forward, unless
    ``update_w_avg=False``); ``psi`` truncates w towards it.

    StyleGAN2-ADA's ``MappingNetwork``, which its conditional discriminator reuses for the label alone:
    ``latent_dim=0`` (no z), ``num_ws=None`` (one vector, not broadcast) and ``w_avg_decay=None`` (no ``w_avg``).
    ``layers=0`` leaves the normalised input."""

    def __init__(self, latent_dim: int, w_dim: int, num_ws: int | None, layers: int = 8,
                 num_classes: int | None = None, lr_mul: float = 0.01, w_avg_decay: float | None = 0.995):
        super().__init__()
        if not isinstance(layers, int) or isinstance(layers, bool) or layers < 0:
            raise ValueError(f"mapping layers must be an integer >= 0; got {layers!r}")
        if w_avg_decay is not None and not 0 <= w_avg_decay < 1:
            raise ValueError(f"w_avg_decay must be in [0, 1); got {w_avg_decay}")
        if not latent_dim and not num_classes:
            raise ValueError("a mapping network needs z (latent_dim > 0), a label (num_classes), or both")
        self.latent_dim, self.num_ws, self.w_avg_decay, self.num_classes = latent_dim, num_ws, w_avg_decay, num_classes
        # A class label enters as a learned embedding (a dense layer on its one-hot code, as StyleGAN2-ADA).
        self.embed = EqualLinear(num_classes, w_dim) if num_classes else None
        widths = [latent_dim + (w_dim if num_classes else 0)] + [w_dim] * layers
        self.net = nn.Sequential(*(EqualLinear(a, b, lr_mul=lr_mul, activation=True)
                                   for a, b in zip(widths, widths[1:])))
        if w_avg_decay is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor | None, y: Tensor | None = None, psi: float | Tensor | None = None,
                update_w_avg: bool = True) -> Tensor:
        """ws: (N, num_ws, w_dim), or (N, w_dim) without ``num_ws``. ``psi`` (a number or one per sample):
        truncation towards ``w_avg``."""
        x = normalize_2nd_moment(z) if self.latent_dim else None
        if self.embed is not None:
            if y is None:
                raise ValueError("this mapping network is class-conditional: pass the labels y")
            one_hot = F.one_hot(y.long(), self.num_classes).to(self.embed.weight.dtype if x is None else x.dtype)
            c = normalize_2nd_moment(self.embed(one_hot))
            x = c if x is None else torch.cat([x, c.to(x.dtype)], dim=1)
        w = self.net(x)
        if self.w_avg_decay is not None and self.training and update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_decay))
        if psi is not None:
            if self.w_avg_decay is None:
                raise ValueError("psi: this mapping network tracks no mean w to truncate towards")
            psi = torch.as_tensor(psi, dtype=w.dtype, device=w.device).reshape(-1, 1)
            w = self.w_avg.to(w.dtype).lerp(w, psi)
        return w if self.num_ws is None else w.unsqueeze(1).repeat(1, self.num_ws, 1)


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True, up: bool = False,
                     kernel: Tensor | None = None) -> Tensor:
    """The modulated convolution of StyleGAN2, non-fused (as StyleGAN2-ADA trains): ``x`` scaled per sample and
    input channel by ``styles`` (N, C_in), one convolution with ``weight`` (C_out, C_in, k, k) for the whole batch,
    then (``demodulate``) each output channel scaled by ``1 / sqrt(sum_{i,k} (styles_i weight_oik)^2 + 1e-8)``.
    ``up``: a stride-2 transposed convolution then the FIR filter (gain 4): H x W -> 2H x 2W."""
    n = x.shape[0]
    x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
    if up:
        x = F.conv_transpose2d(x, weight.transpose(0, 1).to(x.dtype), stride=2)  # 2H + 1
        x = fir_filter(x, kernel, (1, 1), gain=4.0)  # 2H
    else:
        x = F.conv2d(x, weight.to(x.dtype), padding=weight.shape[-1] // 2)
    if demodulate:  # sum over i and k of (s_i w_oik)^2 = s^2 . (sum_k w_oik^2)
        dcoefs = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()
        x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    return x


class SynthesisLayer(nn.Module):
    """A modulated 3x3 convolution (``up``: upsampling 2x first), per-pixel noise times a learned strength
    (starting at 0), bias and leaky ReLU times sqrt(2). Noise: ``random`` (training), ``const`` (a fixed map kept
    in the state, the default in eval mode, so that samples depend on their inputs only) or ``none``."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False,
                 kernel_size: int = 3):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.up, self.resolution = up, resolution
        if up:
            self.register_buffer("kernel", fir_kernel(), persistent=False)

    def forward(self, x: Tensor, w: Tensor, noise_mode: str = "random") -> Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), up=self.up, kernel=getattr(self, "kernel", None))
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength.to(x.dtype)
        elif noise_mode == "const":
            x = x + (self.noise_const * self.noise_strength).to(x.dtype)
        return F.leaky_relu(x + self.bias.to(x.dtype).reshape(1, -1, 1, 1), 0.2) * SQRT2


class ToRGB(nn.Module):
    """A modulated 1x1 convolution to the image channels, without demodulation (its styles carry the equalised-lr
    gain instead), plus a bias."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(img_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        return x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: the 4x4 constant and one convolution (first block), or an
    upsampling convolution and a convolution; then toRGB, added to the upsampled image so far. Takes
    ``num_conv + 1`` ws (its toRGB shares its w with the next block's first convolution)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int):
        super().__init__()
        self.first = resolution == 4
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True)
            self.register_buffer("kernel", fir_kernel(), persistent=False)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGB(out_channels, img_channels, w_dim)
        self.num_conv = 1 if self.first else 2

    def forward(self, x: Tensor | None, img: Tensor | None, ws: Tensor, noise_mode: str) -> tuple[Tensor, Tensor]:
        if self.first:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1).to(ws.dtype)
            x = self.conv1(x, ws[:, 0], noise_mode)
        else:
            x = self.conv1(self.conv0(x, ws[:, 0], noise_mode), ws[:, 1], noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample2d(img, self.kernel).to(y.dtype) + y
        return x, img


def channel_widths(resolutions: list[int], channel_base: int, channel_max: int,
                   channels: Mapping | None = None) -> dict[int, int]:
    """Width per resolution: ``channels[res]`` where given, else ``min(channel_base // res, channel_max)``."""
    given = {int(k): v for k, v in (channels or {}).items()}
    widths = {res: given.get(res, min(int(channel_base) // res, int(channel_max))) for res in resolutions}
    bad = {res: w for res, w in widths.items() if not isinstance(w, int) or isinstance(w, bool) or w < 1}
    if bad:
        raise ValueError(f"channel widths must be positive integers; got {bad} (channel_base={channel_base}, "
                         f"channel_max={channel_max}, channels={dict(given) or None})")
    return widths


def check_resolution(resolution: int) -> int:
    if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution < 8 \
            or resolution & (resolution - 1):
        raise ValueError(f"the StyleGAN2 resolution must be a power of two >= 8; got {resolution!r}")
    return resolution


class SynthesisNetwork(nn.Module):
    """ws -> image at ``resolution``: blocks at 4, 8, ..., resolution; ``num_ws`` = 2 log2(resolution) - 2."""

    def __init__(self, w_dim: int, resolution: int, img_channels: int, widths: dict[int, int]):
        super().__init__()
        resolutions = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
        self.blocks = nn.ModuleList(
            SynthesisBlock(widths[res // 2] if res > 4 else 0, widths[res], w_dim, res, img_channels)
            for res in resolutions)
        self.num_ws = sum(b.num_conv for b in self.blocks) + 1

    def forward(self, ws: Tensor, noise_mode: str | None = None) -> Tensor:
        mode = noise_mode or ("random" if self.training else "const")
        if mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be random, const or none; got {mode!r}")
        x = img = None
        i = 0
        for block in self.blocks:
            x, img = block(x, img, ws[:, i : i + block.num_conv + 1], mode)
            i += block.num_conv
        return img


class Generator(nn.Module):
    """The StyleGAN2 generator: ``mapping`` (z, y -> ws) and ``synthesis`` (ws -> image at ``resolution``).

    Args:
        latent_dim: size of z.
        resolution: output size, a power of two >= 8.
        img_channels: image channels.
        num_classes: a class-conditional generator (a class embedding beside z) when set.
        w_dim: size of w (and of the mapping network's hidden layers).
        mapping_layers: depth of the mapping network (the paper: 8; StyleGAN2-ADA's small-image 'cifar': 2).
        mapping_lr_mul: the mapping network's learning-rate multiplier (0.01).
        channel_base, channel_max, channels: widths per resolution (``channel_widths``).
        w_avg_decay: decay of the tracked mean of w (0.995 per training forward).

    No output non-linearity (the paper's): images are compared with the data's [-1, 1] values as they are.
    """

    def __init__(self, latent_dim: int, resolution: int, img_channels: int, num_classes: int | None = None,
                 w_dim: int = 512, mapping_layers: int = 8, mapping_lr_mul: float = 0.01, channel_base: int = 32768,
                 channel_max: int = 512, channels: Mapping | None = None, w_avg_decay: float = 0.995):
        super().__init__()
        resolution = check_resolution(resolution)
        if not isinstance(mapping_layers, int) or isinstance(mapping_layers, bool) or mapping_layers < 1:
            raise ValueError(f"mapping_layers must be an integer >= 1 (the paper: 8; the small-image preset: 2); "
                             f"got {mapping_layers!r}")
        widths = channel_widths([2**i for i in range(2, int(math.log2(resolution)) + 1)], channel_base,
                                channel_max, channels)
        self.latent_dim, self.resolution, self.w_dim = latent_dim, resolution, w_dim
        self.synthesis = SynthesisNetwork(w_dim, resolution, img_channels, widths)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(latent_dim, w_dim, self.num_ws, mapping_layers, num_classes, mapping_lr_mul,
                                      w_avg_decay)

    def styles(self, z: Tensor, y: Tensor | None = None, psi: float | Tensor | None = None,
               mix_z: Tensor | None = None, cutoff: int | Tensor | None = None) -> Tensor:
        """ws for z; with ``mix_z`` (style mixing), the ws from ``cutoff`` (one for the batch, or one per sample)
        on are those of ``mix_z`` (whose mapping does not update ``w_avg``)."""
        ws = self.mapping(z, y, psi=psi)
        if mix_z is None or cutoff is None:
            return ws
        other = self.mapping(mix_z, y, psi=psi, update_w_avg=False)
        later = torch.arange(ws.shape[1], device=ws.device) >= torch.as_tensor(cutoff, device=ws.device).view(-1, 1)
        return torch.where(later[..., None], other, ws)

    def forward(self, z: Tensor, y: Tensor | None = None, psi: float | Tensor | None = None,
                mix_z: Tensor | None = None, cutoff: int | Tensor | None = None,
                noise_mode: str | None = None) -> Tensor:
        return self.synthesis(self.styles(z, y, psi, mix_z, cutoff), noise_mode)


# --- the discriminator ---------------------------------------------------------------------------------------------
def minibatch_stddev(x: Tensor, group_size: int, num_channels: int = 1) -> Tensor:
    """``x`` with ``num_channels`` more feature maps: the standard deviation of each feature over groups of
    ``group_size`` samples (samples i, i + N/G, ...), averaged over features and pixels (Karras et al. 2018). A
    batch that ``group_size`` does not divide uses its largest divisor below it."""
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
    y = x.float().reshape(g, -1, num_channels, c // num_channels, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt().mean(dim=(2, 3, 4))  # (N/G, F)
    y = y.reshape(-1, num_channels, 1, 1).repeat(g, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


class DiscriminatorBlock(nn.Module):
    """A residual block: two 3x3 convolutions (the second downsamples 2x) beside a 1x1 downsampling skip, both
    scaled by sqrt(1/2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3, down=True, gain=SQRT_HALF)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False, activation=False, down=True,
                                gain=SQRT_HALF)

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.conv1(self.conv0(x))


class Discriminator(nn.Module):
    """The StyleGAN2 residual discriminator: one logit per image.

    Images smaller than ``resolution`` (Fashion-MNIST's 28 px in a 32-px model) are centre-padded with
    ``pad_value`` (-1, the background of images in [-1, 1]) before the first layer, so the data keeps its size.

    Args:
        resolution: input size, a power of two >= 8.
        img_channels: image channels.
        num_classes: a class-conditional discriminator when set (StyleGAN2-ADA's): the output layer gives a vector
            of the 4x4 width (``cmap_dim``), and the score is its projection on the mapped label,
            ``<out(x), mapping(y)> / sqrt(cmap_dim)``.
        channel_base, channel_max, channels: widths per resolution (``channel_widths``).
        mbstd_group: minibatch standard deviation group size (4; StyleGAN2-ADA's 'cifar': 32).
        mbstd_channels: its number of feature maps.
        mapping_layers: a conditional discriminator's label mapping: its layers after the embedding
            (StyleGAN2-ADA: 8 in every configuration; 0: the normalised embedding alone).
        mapping_lr_mul: their learning-rate multiplier (0.01).
        norm: only ``none``: the network has no normalisation layers.
    """

    def __init__(self, resolution: int, img_channels: int, num_classes: int | None = None,
                 channel_base: int = 32768, channel_max: int = 512, channels: Mapping | None = None,
                 mbstd_group: int = 4, mbstd_channels: int = 1, mapping_layers: int = 8,
                 mapping_lr_mul: float = 0.01, pad_value: float = -1.0, norm: str = "none"):
        super().__init__()
        if norm != "none":
            raise ValueError(f"the StyleGAN2 discriminator has no normalisation layers (norm={norm!r}, which "
                             "loss=wgan_gp asks for): train it with its own R1 penalty (loss=non_saturating)")
        if not isinstance(mbstd_group, int) or mbstd_group < 1:
            raise ValueError(f"mbstd_group must be an integer >= 1; got {mbstd_group!r}")
        resolution = check_resolution(resolution)
        resolutions = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
        widths = channel_widths(resolutions, channel_base, channel_max, channels)
        if not isinstance(mbstd_channels, int) or isinstance(mbstd_channels, bool) or mbstd_channels < 1 \
                or widths[4] % mbstd_channels:
            raise ValueError(f"mbstd_channels must be a positive integer that divides the 4x4 width {widths[4]}; "
                             f"got {mbstd_channels!r}")
        if not isinstance(mapping_layers, int) or isinstance(mapping_layers, bool) or mapping_layers < 0:
            raise ValueError(f"the discriminator's mapping_layers must be an integer >= 0 (StyleGAN2-ADA: 8; 0: the "
                             f"label embedding alone); got {mapping_layers!r}")
        self.resolution, self.pad_value, self.num_classes = resolution, pad_value, num_classes
        self.mbstd_group, self.mbstd_channels = mbstd_group, mbstd_channels
        self.fromrgb = EqualConv2d(img_channels, widths[resolution], 1)
        self.blocks = nn.Sequential(*(DiscriminatorBlock(widths[res], widths[res // 2])
                                      for res in reversed(resolutions[1:])))
        c4 = widths[4]
        self.conv = EqualConv2d(c4 + mbstd_channels, c4, 3)
        self.fc = EqualLinear(c4 * 16, c4, activation=True)
        self.cmap_dim = c4 if num_classes else 1
        self.out = EqualLinear(c4, self.cmap_dim)
        # StyleGAN2-ADA's MappingNetwork(z_dim=0, c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None)
        self.mapping = MappingNetwork(0, self.cmap_dim, None, mapping_layers, num_classes, mapping_lr_mul,
                                      None) if num_classes else None

    def pad(self, x: Tensor) -> Tensor:
        """``x`` centre-padded with ``pad_value`` to ``resolution`` (unchanged at that size)."""
        h, w = x.shape[-2:]
        if (h, w) == (self.resolution, self.resolution):
            return x
        if h > self.resolution or w > self.resolution:
            raise ValueError(f"images of {h}x{w} px are larger than the discriminator's {self.resolution} px")
        top, left = (self.resolution - h) // 2, (self.resolution - w) // 2
        return F.pad(x, [left, self.resolution - w - left, top, self.resolution - h - top], value=self.pad_value)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        x = self.blocks(self.fromrgb(self.pad(x)))
        x = self.conv(minibatch_stddev(x, self.mbstd_group, self.mbstd_channels))
        out = self.out(self.fc(x.flatten(1)))
        if self.mapping is None:
            return out.view(-1)
        if y is None:
            raise ValueError("this discriminator is class-conditional: pass the labels y")
        cmap = self.mapping(None, y)
        return (out * cmap.to(out.dtype)).sum(dim=1) * (1 / math.sqrt(self.cmap_dim))
