"""The metric options, defined and checked once for the training callback, ``evaluate.py`` and the cost tool."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import UserError
from .core import KID_SUBSETS
from .spaces import FEATURE_CHOICES

SPLITS = ("train", "test")
REFERENCE_SPLITS = ("auto",) + SPLITS


@dataclass(frozen=True)
class MetricOptions:
    """How the reference and the feature spaces are chosen (everything but the generated samples).

    Args:
        features: ``auto`` (Inception where its weights are present + the domain classifier), ``inception``,
            ``domain``.
        n_reference: real images in the reference (a fixed random subset of the split); ``None``: the whole split.
        reference_split: ``train``, ``test`` or ``auto``: the family's ``reference_split`` (``test`` for the
            translation models, whose FID compares outputs with the held-out targets), else ``train``.
        inception_weights / domain_weights: weight files (``None``: torch hub's cache / the package's weights).
        panel: also score with the domain classifier's panel members (the files ``<stem>_<tag>.pt`` beside its
            weights: ``fashion_mnist_b.pt``, ...): ``fid_domain_b``, ``class_kept_panel_min``, ...; false: the
            domain classifier alone (the names of before the panel, nothing else).
        cache_dir: where reference statistics are cached, keyed by data and weights hashes.
        kid_subsets: KID is the mean over this many subsets.
    """

    features: str = "auto"
    n_reference: int | None = 10000
    reference_split: str = "auto"
    inception_weights: str | None = None
    domain_weights: str | None = None
    panel: bool = True
    cache_dir: str | None = None
    kid_subsets: int = KID_SUBSETS

    def check(self, prefix: str = "") -> MetricOptions:
        """A ``UserError`` naming the option (``prefix`` + name: ``metrics.n_reference``) on a bad value."""
        if self.features not in FEATURE_CHOICES:
            raise UserError(f"{prefix}features: unknown feature space {self.features!r}; valid: "
                            f"{', '.join(FEATURE_CHOICES)}")
        if self.reference_split not in REFERENCE_SPLITS:
            raise UserError(f"{prefix}reference_split must be one of {', '.join(REFERENCE_SPLITS)}; got "
                            f"{self.reference_split!r}")
        if self.n_reference is not None and self.n_reference < 2:
            raise UserError(f"{prefix}n_reference must be at least 2 or null (the whole split); got "
                            f"{self.n_reference}")
        if not isinstance(self.panel, bool):
            raise UserError(f"{prefix}panel must be true or false; got {self.panel!r}")
        if self.kid_subsets is None or self.kid_subsets < 1:
            raise UserError(f"{prefix}kid_subsets must be positive; got {self.kid_subsets}")
        return self

    def for_family(self, family) -> MetricOptions:
        """These options with ``reference_split=auto`` resolved for ``family``."""
        if self.reference_split != "auto":
            return self
        return replace(self, reference_split=getattr(family, "reference_split", "train"))

    def as_dict(self) -> dict:
        return asdict(self)
