"""InfoGAN (Chen et al. 2016): latent codes the generator must make recoverable from its images.

The generator's input is ``[z, one_hot(c), c_cont]``: noise ``z`` ~ N(0, I) (``latent_dim`` values), a categorical
code ``c`` ~ Cat(``categorical_dim``) and continuous codes ``c_cont`` ~ U(-1, 1) (``continuous_dim`` values). A Q
head on the discriminator's features predicts the codes of a fake; its cross-entropy on ``c`` plus
``continuous_weight`` x the unit-variance Gaussian negative log-likelihood of ``c_cont`` (half the squared error) is
L_I, the negative of the variational lower bound on the mutual information (up to the codes' fixed entropy).

Players: ``networks_of("discriminator")`` is ``[discriminator, q_head]``. The discriminator step minimises the
loss's objective + ``info_weight`` x L_I on its fakes, which trains the shared trunk and Q; the generator step
minimises the loss's objective + ``info_weight`` x L_I through the (frozen) trunk and Q, which trains G to make the
codes recoverable. See docs/architecture.md for why Q sits with the discriminator.

Labels are not used: InfoGAN trains on unlabelled data. With labels, ``metrics.codes`` measures how well the
categorical code matches the classes.
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
from ..networks.heads import QHead


class InfoGAN(GANFamily):
    """Args:
        generator, discriminator: backbone factories (Hydra ``_partial_``), as for ``GAN``; the generator's input
            has ``latent_dim + categorical_dim + continuous_dim`` values.
        latent_dim: the incompressible noise ``z`` (62 in the paper's MNIST model).
        categorical_dim: values of the categorical code (10); continuous_dim: continuous codes (2).
        info_weight: lambda, the weight of L_I in both players' objectives (1 in the paper).
        continuous_weight: the weight of the continuous codes' term inside L_I.
        q_hidden: width of Q's hidden layer.
    """

    has_codes = True
    augmentable = True  # (on images) D's score and Q's features are of augmented images (``_scores``)
    TRAVERSAL_RANGE = 2.0  # grids sweep continuous codes over [-2, 2], past the prior's [-1, 1] (as in the paper)

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        loss: GANLoss,
        spec: DataSpec,
        latent_dim: int = 62,
        categorical_dim: int = 10,
        continuous_dim: int = 2,
        info_weight: float = 1.0,
        continuous_weight: float = 0.1,
        q_hidden: int = 128,
    ):
        for name, value, low in (("categorical_dim", categorical_dim, 2), ("continuous_dim", continuous_dim, 0),
                                 ("q_hidden", q_hidden, 1)):
            if not is_int(value) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        for name, value in (("info_weight", info_weight), ("continuous_weight", continuous_weight)):
            if not is_number(value) or value < 0:
                raise ValueError(f"{name} must be a number >= 0; got {value!r}")
        super().__init__(loss, spec)
        self.latent_dim, self.categorical_dim, self.continuous_dim = latent_dim, categorical_dim, continuous_dim
        self.info_weight, self.continuous_weight = info_weight, continuous_weight
        self.generator = generator(latent_dim=latent_dim + categorical_dim + continuous_dim,
                                   out_shape=self.data_shape, bounded=spec.bounded)
        self.discriminator = discriminator(in_shape=self.data_shape)
        self.q_head = QHead(self.discriminator.feature_dim, categorical_dim, continuous_dim, q_hidden)

    def networks_of(self, player: str) -> list[nn.Module]:
        return {"generator": [self.generator], "discriminator": [self.discriminator, self.q_head]}[player]

    # --- codes -----------------------------------------------------------------------------------------------
    def sample_codes(self, n: int, device=None, generator: torch.Generator | None = None,
                     categorical: int | Tensor | None = None) -> dict[str, Tensor]:
        """``{"z", "c", "c_cont"}`` from the prior; ``categorical``: one code value for all, or one per sample."""
        z = self.noise(n, device, generator)
        if categorical is None:
            c = torch.randint(self.categorical_dim, (n,), device=device, generator=generator)
        elif isinstance(categorical, Tensor):
            c = categorical.to(device=device, dtype=torch.long)
        else:
            c = torch.full((n,), int(categorical), dtype=torch.long, device=device)
        if categorical is not None and (len(c) != n or (n and (c.min() < 0 or c.max() >= self.categorical_dim))):
            raise ValueError(f"categorical codes must be {n} values in [0, {self.categorical_dim})")
        c_cont = torch.rand(n, self.continuous_dim, device=device, generator=generator) * 2 - 1
        return {"z": z, "c": c, "c_cont": c_cont}

    def generator_input(self, inputs: dict[str, Tensor]) -> Tensor:
        z = inputs["z"]
        one_hot = F.one_hot(inputs["c"], self.categorical_dim).to(z.dtype)
        return torch.cat([z, one_hot, inputs["c_cont"].to(z.dtype)], dim=1)

    def info_loss(self, features: Tensor, inputs: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(L_I of Q's predictions from ``features`` against the codes in ``inputs``, Q's accuracy on ``c``)."""
        logits, means = self.q_head(features)
        loss = F.cross_entropy(logits.float(), inputs["c"])
        if self.continuous_dim:
            loss = loss + self.continuous_weight * 0.5 * (means.float() - inputs["c_cont"]).pow(2).sum(1).mean()
        return loss, (logits.argmax(1) == inputs["c"]).float().mean()

    @torch.no_grad()
    def infer_codes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Q's categorical logits and continuous means for images ``x`` (real or generated)."""
        return self.q_head(self.discriminator.features(x))

    # --- steps -----------------------------------------------------------------------------------------------
    def _scores(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """D's score and features of ``x`` augmented (``augment=``: Q then reads the codes from augmented fakes)."""
        h = self.discriminator.features(self.augment(x))
        return self.discriminator.head(h).view(-1), h

    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch[self.spec.target]
        inputs = self.sample_codes(real.shape[0], real.device)
        with torch.no_grad():
            fake = self.generator(self.generator_input(inputs))
        d_real, _ = self._scores(real)
        d_fake, h_fake = self._scores(fake)
        self.observe_reals(d_real, ctx)
        loss = self.loss.discriminator_loss(d_real, d_fake)
        info, _ = self.info_loss(h_fake, inputs)
        logs = {**self.d_logs(loss, d_real, d_fake, ctx.logging), "loss_info_d": info}
        return StepResult(self.add_regularizer(loss + self.info_weight * info, logs, real, fake, ctx), logs)

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch[self.spec.target]
        inputs = self.sample_codes(real.shape[0], real.device)
        d_fake, h_fake = self._scores(self.generator(self.generator_input(inputs)))
        loss = self.loss.generator_loss(d_fake)
        info, accuracy = self.info_loss(h_fake, inputs)
        return StepResult(loss + self.info_weight * info, {"loss_g": loss, "loss_info_g": info, "q_acc": accuracy})

    # --- sampling --------------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator | None = None, device=None,
                      source: Batch | None = None, categorical: int | Tensor | None = None) -> dict[str, Tensor]:
        return {k: v.to(device) for k, v in self.sample_codes(n, generator=generator, categorical=categorical).items()}

    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        return (net or self.generator)(self.generator_input(inputs))

    def grid_inputs(self, n: int, nrow: int = 8, generator: torch.Generator | None = None,
                    class_names: Sequence[str] | None = None, source: Batch | None = None) -> GridInputs:
        """Latent traversals from one noise vector: for each continuous code, a block of ``categorical_dim`` rows
        (categorical value 0, 1, ... top to bottom) of ``nrow`` columns sweeping that code from -2 to 2 (the
        other continuous codes at 0). Without continuous codes, the columns are different noise vectors. 2-D
        points: ``n`` draws from the prior (``n`` is not used for images)."""
        if len(self.data_shape) == 1:
            return super().grid_inputs(n, nrow, generator)
        k, m = self.categorical_dim, self.continuous_dim
        c = torch.arange(k).repeat_interleave(nrow)
        if m == 0:
            z = self.noise(nrow, generator=generator).repeat(k, 1)
            inputs = {"z": z, "c": c, "c_cont": torch.zeros(k * nrow, 0)}
            return GridInputs(inputs, nrow, f"rows: categorical code 0-{k - 1}; columns: noise vectors")
        z = self.noise(1, generator=generator).expand(k * nrow * m, -1).clone()
        sweep = torch.linspace(-self.TRAVERSAL_RANGE, self.TRAVERSAL_RANGE, nrow).repeat(k)
        c_cont = torch.zeros(m, k * nrow, m)
        for j in range(m):
            c_cont[j, :, j] = sweep
        inputs = {"z": z, "c": c.repeat(m), "c_cont": c_cont.view(m * k * nrow, m)}
        blocks = "; ".join(f"rows {j * k + 1}-{(j + 1) * k}: c_cont[{j}]" for j in range(m))
        caption = (f"latent traversals, one noise vector: each block of {k} rows is categorical code 0-{k - 1} top to "
                   f"bottom, columns sweep one continuous code from -{self.TRAVERSAL_RANGE:g} to "
                   f"{self.TRAVERSAL_RANGE:g} (the others at 0): {blocks}")
        return GridInputs(inputs, nrow, caption)
