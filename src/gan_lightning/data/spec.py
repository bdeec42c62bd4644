"""What a data module's batches hold, declared once: the families are built from it, the loaders carry its keys,
and sampling, grids and metrics read from it which key is generated and which one a generator reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class DataSpec:
    """The batch layout of a data module.

    Args:
        shapes: per-example shape of every batch key (``()`` for labels): ``{"x": (1, 28, 28), "y": ()}`` for
            labelled images, ``{"a": ..., "b": ...}`` for translation pairs, ``{"lr": ..., "hr": ...}`` for
            super-resolution.
        target: the key that generated samples imitate: the generator's output shape, the FID reference.
        source: the key a generator translates from (``None``: it draws from noise alone).
        num_classes / class_names: the labels in ``"y"`` (``None``: unlabelled).
        value_range: the range of the image values, (-1, 1); ``None`` for unbounded data (2-D points).
        paired: ``False`` when the keys come from independently shuffled collections (unpaired translation), so
            that ``source`` and ``target`` of one batch row are unrelated.
    """

    shapes: Mapping[str, tuple[int, ...]]
    target: str = "x"
    source: str | None = None
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    paired: bool = True
    value_range: tuple[float, float] | None = (-1.0, 1.0)

    def __post_init__(self):
        object.__setattr__(self, "shapes", {k: tuple(int(d) for d in v) for k, v in self.shapes.items()})
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(self.class_names))
        for key in (self.target, self.source):
            if key is not None and key not in self.shapes:
                raise ValueError(f"data spec: {key!r} is not one of the batch keys {sorted(self.shapes)}")

    @property
    def shape(self) -> tuple[int, ...]:
        """The target's per-example shape (what the generator makes)."""
        return self.shapes[self.target]

    @property
    def bounded(self) -> bool:
        """The target's values lie in a known range (the generator ends in tanh)."""
        return self.value_range is not None

    @property
    def image_keys(self) -> tuple[str, ...]:
        """The keys holding C x H x W images (channels_last and device placement apply to these)."""
        return tuple(k for k, s in self.shapes.items() if len(s) == 3)

    @property
    def points(self) -> bool:
        return len(self.shape) == 1

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a checkpoint (with the pre-spec keys ``shape``, ``num_classes``, ``class_names`` and
        ``bounded`` that older readers use)."""
        d = asdict(self)
        d["shapes"] = {k: list(v) for k, v in self.shapes.items()}
        d["class_names"] = list(self.class_names) if self.class_names else None
        d["value_range"] = list(self.value_range) if self.value_range else None
        return {"shape": list(self.shape), "num_classes": self.num_classes, "class_names": d["class_names"],
                "bounded": self.bounded, "spec": d}

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> DataSpec:
        """The spec stored by ``to_dict``, or the one implied by a checkpoint written before specs existed
        (``{"shape", "num_classes", "class_names", "bounded"}``: images or points in ``x``, labels in ``y``)."""
        if isinstance(stored.get("spec"), Mapping):
            d = dict(stored["spec"])
            if d.get("value_range") is not None:
                d["value_range"] = tuple(d["value_range"])
            return cls(**d)
        shapes = {"x": tuple(stored["shape"])}
        if stored.get("num_classes"):
            shapes["y"] = ()
        return cls(shapes, num_classes=stored.get("num_classes"), class_names=stored.get("class_names"),
                   value_range=(-1.0, 1.0) if stored.get("bounded", True) else None)
