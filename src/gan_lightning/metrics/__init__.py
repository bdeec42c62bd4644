"""GAN metrics: FID, KID, IS, precision/recall and class coverage, during training and from checkpoints.

Every number says how it was made: the feature space (Inception-v3 or the project's domain classifier, with the
weights' sha256), the resize, the reference split and size, the sample count and seed, the library versions.
See docs/metrics.md.
"""

from .callback import BestCheckpoint, MetricsCallback
from .core import Evaluator, FeatureBank
from .reference import Reference, reference_for
from .setup import build_evaluator
from .spaces import FeatureSpace, resolve_spaces

__all__ = ["BestCheckpoint", "Evaluator", "FeatureBank", "FeatureSpace", "MetricsCallback", "Reference",
           "build_evaluator", "reference_for", "resolve_spaces"]
