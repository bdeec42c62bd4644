"""Class-conditional GAN families: CGAN and ACGAN.

Both condition the generator on a class label through a learned embedding beside the noise
(``networks.heads.ConditionalGenerator``) and train on labelled batches ``{"x", "y"}``. Fakes in a step are
drawn for the labels of that step's real batch, so real and fake share one label distribution (the data's) and
the gradient penalty's interpolates lie between a real and a fake image of the same class.

- ``CGAN``: the discriminator sees the label too: projection (Miyato & Koyama 2018, the default) or
  concatenation (``conditioning: concat``).
- ``ACGAN`` (Odena et al. 2017): an unconditional real/fake head plus an auxiliary classifier on the same
  features; the discriminator adds ``aux_weight`` x the classifier's cross-entropy on the real batch (and, with
  ``classify_fakes``, on the fakes too, as in the paper), the generator ``aux_weight`` x its cross-entropy on the
  fakes.

Both players use the loss's real/fake objective unchanged, so every loss in conf/loss/ composes with them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config.checks import is_int, is_number
from ..core.family import Batch, GANFamily, GridInputs, StepContext, StepResult
from ..data.spec import DataSpec
from ..losses import GANLoss
from ..networks.heads import AuxiliaryClassifierDiscriminator, ConditionalGenerator, conditional_discriminator


def require_labels(model: str, num_classes: int | None) -> int:
    """``num_classes``, or the ``ValueError`` that ``build_family`` reports as one line when the data has none."""
    if num_classes is None or num_classes < 1:
        raise ValueError(
            f"{model} is class-conditional but this data has no labels: train it on labelled data "
            "(data=fashion_mnist, mnist, cifar10 or gaussian_mixture; a folder with data.labels=subfolders or a "
            "dataset.json), or use an unconditional model (model=dcgan, fcgan or infogan) for these images"
        )
    return int(num_classes)


class ConditionalFamily(GANFamily):
    """What CGAN and ACGAN share: the conditional generator, labels in and out, one grid row per class."""

    class_conditional = True
    augmentable = True  # (on images) D scores every real and fake through ``d`` / ``augment``
    model_name = "conditional"

    def __init__(self, generator: Callable[..., nn.Module], loss: GANLoss, spec: DataSpec, latent_dim: int,
                 embed_dim: int, class_norm: bool = False, diversity_weight: float = 0.0,
                 num_labels: int | None = None):
        # num_labels: the generator's labels when they are not the data's classes (SelfConditionedGAN's clusters)
        num_classes = num_labels or require_labels(self.model_name, spec.num_classes)
        if not is_int(embed_dim) or embed_dim < 1:
            raise ValueError(f"embed_dim must be a positive integer; got {embed_dim!r}")
        if not is_number(diversity_weight) or diversity_weight < 0:
            raise ValueError(f"diversity_weight must be a number >= 0; got {diversity_weight!r}")
        self.diversity_weight = float(diversity_weight)
        super().__init__(loss, spec)
        self.num_classes = num_classes
        self.latent_dim = latent_dim
        backbone = generator(latent_dim=latent_dim + embed_dim, out_shape=self.data_shape, bounded=spec.bounded)
        self.generator = ConditionalGenerator(backbone, num_classes, embed_dim, class_norm=bool(class_norm))

    def labels(self, batch: Batch) -> Tensor:
        y = batch.get("y")
        if y is None:
            raise RuntimeError(f"{self.model_name}: a training batch has no labels ('y') although the data declares "
                               f"{self.num_classes} classes")
        return y

    def fakes(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Fresh fakes for the labels of ``batch``, and those labels."""
        y = self.labels(batch)
        return self.generator(self.noise(len(y), y.device), y), y

    def generator_fakes(self, batch: Batch, logs: dict) -> tuple[Tensor, Tensor, Tensor]:
        """The generator step's fakes and labels, and its diversity term: with ``diversity_weight`` > 0 the
        mode-seeking regulariser of Mao et al. 2019, ``weight / (mean |G(z1, y) - G(z2, y)| / mean |z1 - z2|)``
        on two noise draws for the same labels (it grows when the generator ignores the noise); else 0."""
        y = self.labels(batch)
        z = self.noise(len(y), y.device)
        if not self.diversity_weight:
            return self.generator(z, y), y, z.new_zeros(())
        z2 = self.noise(len(y), y.device)
        both = self.generator(torch.cat([z, z2]), torch.cat([y, y]))  # one pass: BatchNorm sees one batch
        fake, fake2 = both.chunk(2)
        ratio = (fake - fake2).abs().flatten(1).mean(1) / (z - z2).abs().mean(1)
        term = self.diversity_weight / (ratio.float().mean() + 1e-5)
        logs["diversity"] = ratio.mean().detach()
        return fake, y, term

    # --- sampling --------------------------------------------------------------------------------------------
    def label_tensor(self, n: int, labels: int | Tensor | Sequence[int] | None = None) -> Tensor:
        """``n`` labels: balanced (0, 1, ..., K-1, 0, 1, ...) for None, all ``labels`` for an int, else as given."""
        k = self.num_classes
        if labels is None:
            return torch.arange(n) % k
        if isinstance(labels, (Tensor, Sequence)):
            y = torch.as_tensor(labels, dtype=torch.long).flatten().cpu()
            if len(y) != n:
                raise ValueError(f"{len(y)} labels for {n} samples")
        else:
            y = torch.full((n,), int(labels), dtype=torch.long)
        if len(y) and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"labels must be class indices in [0, {k}); got {y.unique().tolist()}")
        return y

    def sample_inputs(self, n: int, generator: torch.Generator | None = None, device=None,
                      source: Batch | None = None,
                      labels: int | Tensor | Sequence[int] | None = None) -> dict[str, Tensor]:
        """Noise ``z`` and labels ``y`` (balanced over the classes unless ``labels`` says otherwise: one class
        index for all, or one per sample). The noise is the same whatever the labels."""
        z = self.noise(n, generator=generator)
        return {"z": z.to(device), "y": self.label_tensor(n, labels).to(device)}

    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        return (net or self.generator)(inputs["z"], inputs["y"])

    def grid_inputs(self, n: int, nrow: int = 8, generator: torch.Generator | None = None,
                    class_names: Sequence[str] | None = None, source: Batch | None = None) -> GridInputs:
        """Images: one row of ``nrow`` samples per class, the same noise down each column (``n`` is not used).
        2-D points: ``n`` samples, classes balanced (a scatter plot has no rows)."""
        if len(self.data_shape) == 1:
            return GridInputs(self.sample_inputs(n, generator=generator), nrow)
        k = self.num_classes
        z = self.noise(nrow, generator=generator).repeat(k, 1)
        y = torch.arange(k).repeat_interleave(nrow)
        names = list(class_names) if class_names and len(class_names) == k else [str(i) for i in range(k)]
        rows = ", ".join(f"{i}: {name}" for i, name in enumerate(names))
        return GridInputs({"z": z, "y": y}, nrow, f"one row per class ({rows}); one noise vector per column")


class CGAN(ConditionalFamily):
    """Conditional GAN: ``G(z, y)`` against ``D(x, y)``.

    Args:
        generator, discriminator: backbone factories (Hydra ``_partial_``), as for ``GAN``; the generator's input
            is widened by ``embed_dim`` for the label embedding.
        conditioning: ``projection`` (D(x, y) = psi(phi(x)) + embed(y) . phi(x)) or ``concat`` (the label as an
            extra input plane / vector).
        embed_dim: size of the generator's label embedding (and of ``concat``'s label vector on flat data).
        class_norm: the generator's BatchNorm layers become class-conditional (``ClassBatchNorm``).
    """

    model_name = "cgan"

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        loss: GANLoss,
        spec: DataSpec,
        latent_dim: int = 100,
        embed_dim: int = 32,
        conditioning: str = "projection",
        class_norm: bool = False,
        diversity_weight: float = 0.0,
        num_labels: int | None = None,
    ):
        super().__init__(generator, loss, spec, latent_dim, embed_dim, class_norm, diversity_weight, num_labels)
        self.conditioning = conditioning
        self.discriminator = conditional_discriminator(conditioning, discriminator, self.data_shape,
                                                       self.num_classes, embed_dim)

    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch[self.spec.target]
        with torch.no_grad():
            fake, y = self.fakes(batch)
        # The penalty's interpolates are scored with the labels both ends share.
        return StepResult(*self.adversarial_d_step(real, fake, ctx, y=y))

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        logs: dict = {}
        fake, y, diversity = self.generator_fakes(batch, logs)
        loss = self.loss.generator_loss(self.d(fake, y=y))
        logs["loss_g"] = loss
        return StepResult(loss + diversity, logs)


class ACGAN(ConditionalFamily):
    """Auxiliary classifier GAN: ``G(z, y)`` against ``D(x) -> (real/fake logit, class logits)``.

    The discriminator minimises the loss's real/fake objective + ``aux_weight`` x CE on the real batch; the
    generator its real/fake objective + ``aux_weight`` x CE on its fakes. ``classify_fakes=True`` adds the CE on
    fakes to the discriminator's objective as well, as in Odena et al.; it is off by default because the
    classifier then also learns whatever label-to-image map the generator happens to use, and the generator
    need not learn the data's: with it, the default preset on Fashion-MNIST reached 100% classifier accuracy on
    fakes from the first iterations and 35% label accuracy (domain classifier) after 5000 iterations, with the
    classes permuted. Logged: the cross-entropies (``loss_cls_d``, ``loss_cls_g``) and the classifier's accuracy
    on the real batch (``acc_real``) and on the generator's fakes (``acc_fake``).
    """

    model_name = "acgan"

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        loss: GANLoss,
        spec: DataSpec,
        latent_dim: int = 100,
        embed_dim: int = 32,
        aux_weight: float = 1.0,
        classify_fakes: bool = False,
        class_norm: bool = False,
        diversity_weight: float = 0.0,
    ):
        if not is_number(aux_weight) or aux_weight < 0:
            raise ValueError(f"aux_weight must be a number >= 0; got {aux_weight!r}")
        super().__init__(generator, loss, spec, latent_dim, embed_dim, class_norm, diversity_weight)
        self.aux_weight, self.classify_fakes = aux_weight, bool(classify_fakes)
        self.discriminator = AuxiliaryClassifierDiscriminator(discriminator(in_shape=self.data_shape),
                                                              self.num_classes)

    @staticmethod
    def _accuracy(logits: Tensor, y: Tensor) -> Tensor:
        return (logits.argmax(1) == y).float().mean()

    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch[self.spec.target]
        with torch.no_grad():
            fake, y = self.fakes(batch)
        d_real, cls_real = self.discriminator.scores(self.augment(real))
        d_fake, cls_fake = self.discriminator.scores(self.augment(fake))
        self.observe_reals(d_real, ctx)
        loss = self.loss.discriminator_loss(d_real, d_fake)
        cls_loss = F.cross_entropy(cls_real.float(), y)
        if self.classify_fakes:
            cls_loss = cls_loss + F.cross_entropy(cls_fake.float(), y)
        logs = {**self.d_logs(loss, d_real, d_fake, ctx.logging), "loss_cls_d": cls_loss}
        if ctx.logging:
            logs["acc_real"] = self._accuracy(cls_real, y)
        total = self.add_regularizer(loss + self.aux_weight * cls_loss, logs, real, fake, ctx)
        return StepResult(total, logs)

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        logs: dict = {}
        fake, y, diversity = self.generator_fakes(batch, logs)
        d_fake, cls_fake = self.discriminator.scores(self.augment(fake))
        loss = self.loss.generator_loss(d_fake)
        cls_loss = F.cross_entropy(cls_fake.float(), y)
        logs.update({"loss_g": loss, "loss_cls_g": cls_loss, "acc_fake": self._accuracy(cls_fake, y)})
        return StepResult(loss + self.aux_weight * cls_loss + diversity, logs)
