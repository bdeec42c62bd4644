"""The self-conditioned GAN: a class-conditional GAN whose labels are k-means clusters of the training data.

Liu et al. 2020 ("Diverse Image Generation via Self-Conditioned GANs") condition both players on cluster
memberships instead of class labels, so an unlabelled data set gets what labels give a conditional GAN: a
generator that must cover every cluster, and a discriminator that judges each image against its own cluster. The
paper clusters the discriminator's features and re-clusters during training; this family clusters the data
themselves (images average-pooled to at most ``cluster_size`` px), once, when training starts (``prepare``):

- ``centroids`` and ``prior`` (each cluster's share of the data) are buffers: checkpointed, so a resumed run and
  ``generate.py`` use the clusters the run trained with;
- a real batch's labels are its images' nearest centroids (any data module, any batch size);
- samples draw their clusters in proportion to ``prior`` (stratified: ``n`` samples hold round(n x prior) of
  each), so the generated mixture matches the data's.

Everything else is ``CGAN``'s: projection discriminator, class-conditional BatchNorm, the mode-seeking
``diversity_weight``. The clusters are not the data's classes, so the family is not ``class_conditional``: no label
metrics, no ``label=`` in generate.py; grids are ``n`` samples.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.checks import is_int
from ..core.family import Batch, GANFamily
from ..data.convert import to_float
from ..data.spec import DataSpec
from ..losses import GANLoss
from .class_conditional import CGAN

log = logging.getLogger(__name__)


def kmeans(x: Tensor, k: int, iterations: int = 20, generator: torch.Generator | None = None) -> Tensor:
    """Lloyd's k-means of the rows of ``x`` [N, F] from a k-means++ start; the ``k`` centroids [k, F]. A cluster
    that empties is restarted at the point farthest from its centroid (a different one for each)."""
    n = len(x)
    if n < k:
        raise ValueError(f"{k} clusters need at least {k} examples; got {n}")
    x = x.float()
    centroids = x[torch.randint(n, (1,), generator=generator)]
    closest = torch.cdist(x, centroids).squeeze(1) ** 2
    for _ in range(1, k):  # k-means++: each next centroid drawn with probability ~ squared distance
        weights = closest if closest.sum() > 0 else torch.ones_like(closest)  # (fewer distinct points than k)
        pick = torch.multinomial(weights, 1, generator=generator)
        centroids = torch.cat([centroids, x[pick]])
        closest = torch.minimum(closest, (torch.cdist(x, x[pick]).squeeze(1)) ** 2)
    for _ in range(iterations):
        distances = torch.cdist(x, centroids)
        labels = distances.argmin(1)
        counts = torch.bincount(labels, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        spread = distances.gather(1, labels[:, None]).squeeze(1)
        for empty in (counts == 0).nonzero().flatten().tolist():
            far = spread.argmax()  # moved out of its cluster (if it leaves one behind), never picked twice
            old = labels[far]
            if counts[old] > 1:
                sums[old] -= x[far]
                counts[old] -= 1
            sums[empty], counts[empty], labels[far], spread[far] = x[far], 1, empty, -1
        new = sums / counts[:, None]
        if torch.equal(new, centroids):
            break
        centroids = new
    return centroids


class SelfConditionedGAN(CGAN):
    """``CGAN`` on ``clusters`` k-means clusters of the training data instead of class labels (unlabelled data
    welcome; the data's labels, if any, are not used).

    Args:
        clusters: the number of clusters (the generator's and the projection discriminator's labels).
        cluster_size: images are average-pooled to at most this side before clustering and assignment.
        cluster_samples: how many training examples the centroids are fitted on.
        cluster_seed: the seed of the k-means start and of the examples drawn (the same on every rank).
        The other arguments are ``CGAN``'s.
    """

    model_name = "self_conditioned"
    class_conditional = False  # the labels are clusters, not classes: no label metrics, no label= when sampling

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        loss: GANLoss,
        spec: DataSpec,
        latent_dim: int = 100,
        embed_dim: int = 32,
        conditioning: str = "projection",
        class_norm: bool = True,
        diversity_weight: float = 0.0,
        clusters: int = 10,
        cluster_size: int = 16,
        cluster_samples: int = 20000,
        cluster_seed: int = 0,
    ):
        for name, value, least in (("clusters", clusters, 1), ("cluster_size", cluster_size, 1),
                                   ("cluster_samples", cluster_samples, clusters)):
            if not is_int(value) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}; got {value!r}")
        self.cluster_size, self.cluster_samples, self.cluster_seed = cluster_size, cluster_samples, cluster_seed
        super().__init__(generator, discriminator, loss, spec, latent_dim, embed_dim, conditioning, class_norm,
                         diversity_weight, num_labels=clusters)
        features = self.features(torch.zeros(1, *self.data_shape)).shape[1]
        self.register_buffer("centroids", torch.zeros(clusters, features))
        self.register_buffer("prior", torch.full((clusters,), 1.0 / clusters))
        self.register_buffer("fitted", torch.tensor(False))

    def features(self, x: Tensor) -> Tensor:
        """What is clustered: images average-pooled to at most ``cluster_size`` px a side, flattened (points:
        themselves)."""
        if x.ndim == 4 and max(x.shape[-2:]) > self.cluster_size:
            x = F.adaptive_avg_pool2d(x.float(), self.cluster_size)
        return x.flatten(1).float()

    # --- the clusters ----------------------------------------------------------------------------------------
    def prepare(self, datamodule) -> None:
        """Fit the clusters on ``cluster_samples`` training examples (once: a fitted or restored family keeps its
        own)."""
        if bool(self.fitted):
            return
        start = time.perf_counter()
        real = datamodule.real_samples(self.cluster_samples, seed=self.cluster_seed)[self.spec.target]
        x = self.features(to_float(real))
        centroids = kmeans(x, self.num_classes, generator=torch.Generator().manual_seed(self.cluster_seed))
        self.fit_clusters(centroids, x)
        log.info("self_conditioned: %d clusters of %d examples, shares %.3f-%.3f, in %.1f s", self.num_classes,
                 len(x), self.prior.min(), self.prior.max(), time.perf_counter() - start)

    def fit_clusters(self, centroids: Tensor, x: Tensor) -> None:
        """Take ``centroids`` (in feature space) and the shares of the examples ``x`` (features) nearest each."""
        self.centroids.copy_(centroids)
        counts = torch.bincount(torch.cdist(x, centroids).argmin(1), minlength=self.num_classes)
        self.prior.copy_(counts.float() / counts.sum())
        self.fitted.fill_(True)

    def labels(self, batch: Batch) -> Tensor:
        """The clusters of a real batch: each example's nearest centroid."""
        if not bool(self.fitted):
            raise RuntimeError("self_conditioned: the clusters are not fitted (prepare(datamodule) runs at fit start)")
        x = self.features(batch[self.spec.target])
        return torch.cdist(x, self.centroids.to(x.dtype)).argmin(1)

    def label_tensor(self, n: int, labels=None, generator: torch.Generator | None = None) -> Tensor:
        """``n`` clusters in proportion to ``prior`` (largest remainders), in an order drawn with ``generator``."""
        if labels is not None:
            return super().label_tensor(n, labels)
        share = self.prior.float().cpu() * n
        counts = share.floor().long()
        counts[torch.argsort(share - counts, descending=True)[: n - int(counts.sum())]] += 1
        y = torch.repeat_interleave(torch.arange(self.num_classes), counts)
        return y[torch.randperm(n, generator=generator)]

    # --- sampling: n samples, clusters in the data's proportions ---------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator | None = None, device=None,
                      source: Batch | None = None, clusters=None) -> dict[str, Tensor]:
        """Noise ``z`` and clusters ``y`` (in the data's proportions; ``clusters``: one index for all, or one per
        sample)."""
        z = self.noise(n, generator=generator)
        return {"z": z.to(device), "y": self.label_tensor(n, clusters, generator=generator).to(device)}

    grid_inputs = GANFamily.grid_inputs  # n samples (the clusters have no names)
