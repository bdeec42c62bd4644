"""Image-to-image translation networks: the U-Net generator and PatchGAN discriminator of Pix2Pix (Isola et al.
2017) and the ResNet generator of CycleGAN (Zhu et al. 2017), laid out as in their authors' code.

- ``UNet``: ``num_downs`` stride-2 4x4 convolutions (widths ``ngf * 2**i`` capped at ``8 * ngf``; no norm on the
  first and on the innermost one, whose map is 1x1, where a norm would fail or do nothing), the mirror-image
  transposed convolutions with skip connections between layers ``i`` and ``n - i`` (each up-convolution but the
  innermost reads ``cat(skip, up)``, the authors' order), dropout (the paper's only noise) after the
  ``dropout_layers`` up-convolutions that follow the innermost one, tanh out. As in the authors' code, no
  convolution has a bias under batch norm (a bias there is cancelled by the norm), even the outermost and innermost
  down-convolutions that no norm follows; the output convolution has one. With the authors' settings (8
  downsamplings, ngf 64, batch norm, 3 dropout layers) the parameters are theirs (54,413,955) and their weights load
  by a rename (``import_weights.py kind=pix2pix``). An input whose sides are not
  multiples of ``2**num_downs`` is padded (with -1, the background, or by reflection) and the output cropped back:
  28 px Fashion-MNIST runs as 32 px with ``num_downs=5``. Dropout is a training-time noise here: in eval mode the
  outputs are deterministic (the authors' code keeps it on at test time unless ``--eval``).
- ``PatchGAN``: ``n_layers`` stride-2 4x4 convolutions, one stride-1, a 1-channel 4x4 convolution: one logit per
  overlapping patch. Its receptive field is ``patch_field(n_layers)``: 16, 34, 70 px for 1, 2, 3 layers;
  ``n_layers=None`` picks the smallest whose field covers about a quarter of the image (70 of 256 px, the paper's
  choice; 16 of 28 px). Conditional on the input (Pix2Pix): ``forward(x, a=input)`` sees ``cat(a, x)``.
- ``ResnetGenerator``: c7s1-ngf, ``downsamplings`` stride-2 convolutions, ``blocks`` residual blocks, as many
  transposed convolutions, c7s1-out, tanh; reflection padding; instance norm. Sides that are not multiples of
  ``2**downsamplings`` are reflection-padded and the output cropped back (28 px needs none with 2).

Weights start as N(0, 0.02), norm scales as N(1, 0.02) (the authors' ``init_weights('normal')``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import check_norm

UPSAMPLING = ("transpose", "resize")
PADDING = ("constant", "reflect")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The authors' norms: BatchNorm, or InstanceNorm without affine parameters (CycleGAN's)."""
    return {"batch": lambda: nn.BatchNorm2d(channels), "instance": lambda: nn.InstanceNorm2d(channels),
            "layer": lambda: nn.GroupNorm(1, channels), "none": nn.Identity}[check_norm(norm)]()


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def _up(cin: int, cout: int, how: str, bias: bool = True) -> nn.Module:
    """x2 upsampling: a 4x4 transposed convolution (the paper's) or nearest resize + 3x3 convolution (no
    checkerboard artefacts)."""
    if how not in UPSAMPLING:
        raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}; got {how!r}")
    if how == "transpose":
        return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=bias)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1, bias=bias))


class UNet(nn.Module):
    """The Pix2Pix generator (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, num_downs: int = 8, norm: str = "batch",
                 dropout: float = 0.5, dropout_layers: int = 3, upsample: str = "transpose", pad: str = "constant"):
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"the U-Net needs num_downs >= 2; got {num_downs}")
        if pad not in PADDING:
            raise ValueError(f"pad must be one of {', '.join(PADDING)}; got {pad!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}")
        self.num_downs, self.pad = num_downs, pad
        widths = [ngf * min(2**i, 8) for i in range(num_downs)]
        bias = norm != "batch"  # the authors' use_bias: no bias under batch norm
        self.downs = nn.ModuleList()
        for i, w in enumerate(widths):
            cin = in_channels if i == 0 else widths[i - 1]
            layers = [] if i == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(cin, w, 4, stride=2, padding=1, bias=bias))
            if 0 < i < num_downs - 1:
                layers.append(norm_layer(norm, w))
            self.downs.append(nn.Sequential(*layers))
        self.ups = nn.ModuleList()
        for j in range(num_downs):  # j = 0: the innermost up-convolution; the last one makes the output
            i = num_downs - 1 - j  # the down layer it mirrors
            cin = widths[i] if j == 0 else 2 * widths[i]
            last = i == 0
            layers = [nn.ReLU(), _up(cin, out_channels if last else widths[i - 1], upsample, bias=bias or last)]
            if last:
                layers.append(nn.Tanh())
            else:
                layers.append(norm_layer(norm, widths[i - 1]))
                if 1 <= j <= dropout_layers and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.ups.append(nn.Sequential(*layers))
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m = 2**self.num_downs
        ph, pw = -h % m, -w % m
        if ph or pw:  # pad to a multiple of 2**num_downs, centred; cropped back below
            pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
            x = F.pad(x, pads, value=-1.0) if self.pad == "constant" else F.pad(x, pads, mode="reflect")
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the innermost output feeds the first up-convolution directly
        for j, up in enumerate(self.ups):
            x = up(x if j == 0 else torch.cat([skips.pop().to(x.dtype), x], 1))
        if ph or pw:
            x = x[..., ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w]
        return x


def patch_field(n_layers: int) -> int:
    """The receptive field in pixels of ``PatchGAN(n_layers)``: 16, 34, 70, 142 for 1, 2, 3, 4."""
    field = 4  # the last (stride 1) convolution, read backwards
    for stride in [1] + [2] * n_layers:
        field = (field - 1) * stride + 4
    return field


def auto_layers(size: int) -> int:
    """The smallest ``n_layers`` whose field covers about a quarter of an image of side ``size`` (70 of 256
    px, as the paper; 16 of 28)."""
    n = 1
    while patch_field(n) < 0.27 * size and n < 5:
        n += 1
    return n


class PatchGAN(nn.Module):
    """One logit per overlapping image patch (see the module docstring). ``in_channels`` counts the input's
    channels too when the discriminator is conditional (``forward(x, a=...)``)."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int | None = 3, norm: str = "batch",
                 image_size: int | None = None):
        super().__init__()
        if n_layers is None:
            if image_size is None:
                raise ValueError("PatchGAN: n_layers=null needs the image size")
            n_layers = auto_layers(image_size)
        if n_layers < 1:
            raise ValueError(f"PatchGAN needs n_layers >= 1; got {n_layers}")
        self.n_layers, self.field = n_layers, patch_field(n_layers)
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=bias), norm_layer(norm, out),
                       nn.LeakyReLU(0.2)]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor, a: Tensor | None = None) -> Tensor:
        return self.body(x if a is None else torch.cat([a.to(x.dtype), x], 1))


class ResnetBlock(nn.Module):
    def __init__(self, width: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), norm_layer(norm, width),
                                  nn.ReLU(), nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3),
                                  norm_layer(norm, width))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """The CycleGAN generator (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, blocks: int = 9, downsamplings: int = 2,
                 norm: str = "instance", upsample: str = "transpose"):
        super().__init__()
        if blocks < 0 or downsamplings < 0:
            raise ValueError(f"blocks and downsamplings must be >= 0; got {blocks}, {downsamplings}")
        self.multiple = 2**downsamplings
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7, bias=bias),
                                   norm_layer(norm, ngf), nn.ReLU()]
        width = ngf
        for _ in range(downsamplings):
            layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=bias), norm_layer(norm, 2 * width),
                       nn.ReLU()]
            width *= 2
        layers += [ResnetBlock(width, norm) for _ in range(blocks)]
        for _ in range(downsamplings):
            up = (nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)
                  if upsample == "transpose" else _up(width, width // 2, upsample))
            layers += [up, norm_layer(norm, width // 2), nn.ReLU()]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        if not (ph or pw):
            return self.body(x)
        # Other sizes (translate.py on a user's image): reflection-padded to a multiple, cropped back.
        y = self.body(F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="reflect"))
        return y[..., ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w]
