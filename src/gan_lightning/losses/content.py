"""Content losses for super-resolution: distances between features of a frozen network (Ledig et al. 2017).

``content=vgg19``: torchvision's VGG19 up to ``layer`` (``relu2_2``, the paper's VGG22, by default: at 28 px the
paper's VGG54 would be a 1x1 map), weights read from a local file (``weights=PATH``, e.g. torchvision's
``vgg19-dcbb9e9d.pth``; no download is tried here). Images in [-1, 1] are mapped to [0, 1], normalised with the
ImageNet mean and std, grey images repeated to three channels; the loss is the mean squared feature difference.
The network is ``Frozen``: it is never trained and never saved in a checkpoint (it moves with the family).

``content=none``: no content term (pixel loss plus the adversarial term: the offline default).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from ..networks.frozen import Frozen, load_frozen

log = logging.getLogger(__name__)

CONTENT = ("none", "vgg19")
# torchvision vgg19().features indices: the ReLU after conv1_2, conv2_2, conv3_4, conv4_4, conv5_4.
VGG19_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _vgg19(path: str) -> nn.Module:
    """torchvision's VGG19 ``features`` with the weights of ``path`` (a whole VGG19 state dict, or one of its
    first layers); ``missing_layers`` lists the indices the file has no weights for."""
    from torchvision.models.vgg import cfgs, make_layers

    net = make_layers(cfgs["E"])  # VGG19's convolutional part (its classifier is never used here)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a missing, truncated or non-torch file
        raise UserError(f"model.content.weights={path}: cannot read it as torch weights ({err.__class__.__name__}): "
                        "give torchvision's VGG19 weights file (vgg19-dcbb9e9d.pth)") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else {}
    features = {k[len("features."):]: v for k, v in state.items() if isinstance(k, str) and k.startswith("features.")}
    try:
        if not features:
            raise RuntimeError("no features.* weights in it")
        missing, _ = net.load_state_dict(features, strict=False)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1].strip()
        raise UserError(f"model.content.weights={path}: not torchvision VGG19 weights ({first}): give "
                        "torchvision's VGG19 weights file (vgg19-dcbb9e9d.pth)") from None
    net.missing_layers = sorted({int(k.split(".")[0]) for k in missing})
    return net


class VGGContent(nn.Module):
    """Mean squared distance between VGG19 features of two image batches (in [-1, 1])."""

    def __init__(self, weights: str, layer: str = "relu2_2"):
        super().__init__()
        if layer not in VGG19_LAYERS:
            raise UserError(f"model.content.layer={layer}: use one of {', '.join(VGG19_LAYERS)}")
        if not weights or not Path(weights).is_file():
            raise UserError(f"model.content.weights={weights}: no such file; content=vgg19 needs torchvision's VGG19 "
                            "weights (vgg19-dcbb9e9d.pth) on disk, or use model.content.kind=none")
        self.layer, self.weights = layer, str(weights)
        features = load_frozen(weights, _vgg19).net
        last = VGG19_LAYERS[layer]
        if any(i <= last for i in features.missing_layers):
            raise UserError(f"model.content.weights={weights}: has no weights for VGG19 up to {layer}: give "
                            "torchvision's VGG19 weights file (vgg19-dcbb9e9d.pth)")
        self.net = Frozen(features[: last + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, x: Tensor) -> Tensor:
        x = (x.float() + 1) / 2
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net((x - self.mean) / self.std)

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        with torch.no_grad():
            wanted = self.features(target)
        return F.mse_loss(self.features(output), wanted)

    def describe(self) -> str:
        return f"vgg19 {self.layer} features (weights {self.weights})"


def build_content(kind: str = "none", weights: str | None = None, layer: str = "relu2_2") -> VGGContent | None:
    """The content loss named by ``kind`` (``none`` -> None)."""
    if kind not in CONTENT:
        raise UserError(f"model.content.kind={kind}: use one of {', '.join(CONTENT)}")
    return None if kind == "none" else VGGContent(weights, layer)
