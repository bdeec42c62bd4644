"""Frozen auxiliary networks (perceptual features for a content loss, a classifier): used by a loss or a family,
never trained, never saved.

``Frozen(net)`` holds ``net`` outside the module tree: it is in no ``state_dict`` (so not in checkpoints), no
``parameters()`` (so no optimizer, no gradient clipping) and no ``buffers()`` (so not in DDP's buffer broadcast or
the module's cross-rank buffer averaging), yet ``.to()``, ``.cuda()``, ``.half()`` and channels_last move it with
the module that holds it, and ``.train()`` leaves it in eval mode. ``load_frozen`` builds each weight file's
network once per process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

_LOADED: dict[tuple[str, str], nn.Module] = {}


class Frozen(nn.Module):
    """A frozen network inside a family or a loss, kept out of its state (see the module docstring). Gradients
    flow through it to its input, never into its weights."""

    def __init__(self, net: nn.Module):
        super().__init__()
        object.__setattr__(self, "_net", net.eval().requires_grad_(False))  # not registered as a submodule

    @property
    def net(self) -> nn.Module:
        return self._net

    def _apply(self, fn, recurse: bool = True):
        self._net._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True) -> Frozen:
        super().train(mode)
        self._net.eval()
        return self

    def forward(self, *args, **kwargs):
        return self._net(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"{type(self._net).__name__} (frozen, not in the state dict)"


def load_frozen(path: str | Path, build: Callable[[str], nn.Module]) -> Frozen:
    """``Frozen(build(path))``, built once per process and weight file (``build`` loads the weights)."""
    key = (str(Path(path).resolve()), f"{build.__module__}.{build.__qualname__}")
    if key not in _LOADED:
        _LOADED[key] = build(str(path))
    return Frozen(_LOADED[key])
