"""Super-resolution networks: the SRResNet generator and the SRGAN discriminator (Ledig et al. 2017), with the
residual-in-residual dense blocks of ESRGAN (Wang et al. 2018) as an option.

Generator: a first convolution, ``blocks`` residual blocks with a long skip around them, one (convolution,
PixelShuffle x2, PReLU) stage per factor 2 of ``scale`` (x3: one PixelShuffle x3), a last convolution. It is fully
convolutional, so it upscales inputs of any size. With ``bicubic_skip`` (the default) its output is added to the
bicubic upsampling of the input (the global skip of BasicSR's MSRResNet and of VDSR), and its last convolution
starts small, so training starts from the bicubic baseline and learns the detail it lacks. Defaults differ from
the paper where the offline tasks need it: ``kernel=3`` for the first and last convolutions (9x9 on a 7x7 input
is mostly padding) and no BatchNorm
(``norm=none``: ESRGAN's finding that BN causes artefacts; ``norm=batch`` is the paper's). Outputs are not
squashed (no tanh), as in SRResNet; they are clamped to [-1, 1] when saved or scored.

Discriminator: the paper's VGG-like stack of 3x3 convolutions, widths ``ndf, ndf, 2ndf, 2ndf, 4ndf, ...``, stride
2 on every second one while the map is larger than 2x2, LeakyReLU(0.2), BatchNorm after the first (``norm``), then
a dense layer of ``hidden`` units and one logit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .common import norm_2d


def _check_image(shape: Sequence[int], what: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"{what} needs images (C, H, W); the data has shape {tuple(shape)}")
    return tuple(int(d) for d in shape)


def upsampling_stages(scale: int) -> list[int]:
    """PixelShuffle factors whose product is ``scale``: x2 stages, or one x3."""
    if scale == 3:
        return [3]
    if scale < 2 or scale & (scale - 1):
        raise ValueError(f"the SRResNet generator upscales by 2, 3, 4 or 8; got scale {scale}")
    return [2] * int(math.log2(scale))


class ResidualBlock(nn.Module):
    """conv-(norm)-PReLU-conv-(norm) plus the input."""

    def __init__(self, width: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), norm_2d(norm, width), nn.PReLU(width),
                                  nn.Conv2d(width, width, 3, padding=1), norm_2d(norm, width))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class DenseBlock(nn.Module):
    """ESRGAN's residual dense block: five convolutions, each fed all earlier outputs, scaled residual 0.2."""

    def __init__(self, width: int, growth: int):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(width + i * growth, growth if i < 4 else width, 3, padding=1)
                                   for i in range(5))
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(features, 1))
            if i < 4:
                features.append(self.act(out))
        return x + 0.2 * out


class RRDB(nn.Module):
    """Residual-in-residual dense block (ESRGAN): three dense blocks, scaled residual 0.2, no BatchNorm."""

    def __init__(self, width: int, growth: int):
        super().__init__()
        self.body = nn.Sequential(*(DenseBlock(width, growth) for _ in range(3)))

    def forward(self, x: Tensor) -> Tensor:
        return x + 0.2 * self.body(x)


class SRResNet(nn.Module):
    """LR (C x h x w, [-1, 1]) -> HR (C x scale*h x scale*w). ``block``: ``residual`` (SRResNet) or ``rrdb``
    (ESRGAN, no BatchNorm whatever ``norm`` says)."""

    def __init__(self, out_shape: Sequence[int], scale: int, width: int = 64, blocks: int = 16, kernel: int = 3,
                 norm: str = "none", block: str = "residual", growth: int = 32, bicubic_skip: bool = True):
        super().__init__()
        channels = _check_image(out_shape, "SRResNet")[0]
        if block not in ("residual", "rrdb"):
            raise ValueError(f"model.generator.block must be 'residual' or 'rrdb'; got {block!r}")
        if kernel % 2 == 0:
            raise ValueError(f"model.generator.kernel must be odd; got {kernel}")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(channels, width, kernel, padding=kernel // 2), nn.PReLU(width))
        body = [ResidualBlock(width, norm) if block == "residual" else RRDB(width, growth) for _ in range(blocks)]
        tail_norm = norm_2d(norm if block == "residual" else "none", width)
        self.body = nn.Sequential(*body, nn.Conv2d(width, width, 3, padding=1), tail_norm)
        ups: list[nn.Module] = []
        for factor in upsampling_stages(scale):
            ups += [nn.Conv2d(width, width * factor**2, 3, padding=1), nn.PixelShuffle(factor), nn.PReLU(width)]
        self.upsample = nn.Sequential(*ups)
        self.tail = nn.Conv2d(width, channels, kernel, padding=kernel // 2)
        self.bicubic_skip = bicubic_skip
        if bicubic_skip:  # start from bicubic upsampling: the network learns the detail bicubic lacks
            with torch.no_grad():
                self.tail.weight.mul_(0.1)
                self.tail.bias.zero_()

    def forward(self, lr: Tensor) -> Tensor:
        x = self.head(lr)
        out = self.tail(self.upsample(x + self.body(x)))
        if self.bicubic_skip:
            out = out + F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return out


class SRDiscriminator(nn.Module):
    """HR image -> one logit (the SRGAN discriminator, sized to the image)."""

    def __init__(self, in_shape: Sequence[int], ndf: int = 64, layers: int = 8, hidden: int = 1024,
                 norm: str = "batch"):
        super().__init__()
        channels, h, w = _check_image(in_shape, "the SRGAN discriminator")
        convs: list[nn.Module] = []
        width_in, size = channels, (h, w)
        for i in range(layers):
            width = ndf * 2 ** (i // 2)
            stride = 2 if i % 2 == 1 and min(size) > 2 else 1
            convs += [nn.Conv2d(width_in, width, 3, stride=stride, padding=1)]
            if i > 0:
                convs.append(norm_2d(norm, width))
            convs.append(nn.LeakyReLU(0.2))
            width_in = width
            size = tuple((s + 2 - 3) // stride + 1 for s in size)
        self.features = nn.Sequential(*convs)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width_in * size[0] * size[1], hidden), nn.LeakyReLU(0.2),
                                  nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).flatten()
