"""CycleGAN (Zhu et al. 2017): unpaired translation between domains A and B with two generators, ``G: A -> B``
and ``F: B -> A``, and two discriminators, ``D_B`` (real B against G(a)) and ``D_A`` (real A against F(b)).

Generator loss (both generators at once, one optimizer, as the authors' code):
``adversarial_weight * (adv(D_B(G(a))) + adv(D_A(F(b))))
+ cycle_weight * (|F(G(a)) - a| + |G(F(b)) - b|)
+ cycle_weight * identity_weight * (|G(b) - b| + |F(a) - a|)``.
The paper's ratio adversarial : cycle : identity is 1 : 10 : 5 with a plain MSE adversarial term; the package's
least-squares generator loss carries a factor 1/2, so the preset's ``adversarial_weight=2`` restores the ratio.

The discriminators see fakes through a history of ``pool_size`` generated images each (Shrivastava et al. 2017;
the authors' ``ImagePool``): until the pool is full every fake is stored and used; then each fake is, with
probability 1/2, swapped for a random stored one. The pools are buffers, so checkpoints carry them and a resumed
run continues exactly; under DDP each process keeps its own.

Schedule: ``G`` on each iteration's last batch, then ``D`` on every batch, reusing ``G``'s fakes of that batch.
``generate`` translates A -> B (``spec.target`` is B); ``translate(x, "BtoA")`` goes the other way.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.family import Batch, GANFamily, Phase, StepContext, StepResult
from ..data.convert import to_float
from ..data.spec import DataSpec
from ..data.translation import DIRECTIONS
from ..losses import GANLoss
from .pix2pix import check_translation_spec


class ImagePool(nn.Module):
    """A history of up to ``size`` generated images (see the module docstring); ``size=0`` passes fakes through."""

    def __init__(self, size: int, shape: tuple[int, ...]):
        super().__init__()
        if size < 0:
            raise ValueError(f"pool_size must be >= 0; got {size}")
        self.size = int(size)
        self.register_buffer("images", torch.zeros(self.size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def query(self, fakes: Tensor) -> Tensor:
        if self.size == 0:
            return fakes
        out = fakes.detach().clone()
        count = int(self.count)
        for i in range(len(out)):
            if count < self.size:  # filling up: store and use the new image
                self.images[count] = out[i].to(self.images.dtype)
                count += 1
            elif torch.rand(()) < 0.5:  # use a stored image, store the new one in its place
                j = int(torch.randint(self.size, ()))
                stored = self.images[j].clone()
                self.images[j] = out[i].to(self.images.dtype)
                out[i] = stored.to(out.dtype)
        self.count.fill_(count)
        return out


class Pair(nn.Module):
    """Two networks, one per direction or domain: ``ab``/``ba`` for the generators, ``a``/``b`` for the
    discriminators. The EMA and the optimizers see them as one module."""

    def __init__(self, **nets: nn.Module):
        super().__init__()
        for name, net in nets.items():
            self.add_module(name, net)

    def forward(self, x: Tensor, direction: str = "AtoB") -> Tensor:
        return getattr(self, "ab" if direction == "AtoB" else "ba")(x)


class CycleGAN(GANFamily):
    """See the module docstring."""

    unpaired = True
    reference_split = "test"  # metrics (reference_split=auto): FID against the held-out targets
    log_keys = ("loss_d", "loss_g", "cycle")
    directions = DIRECTIONS  # translate.py: G (AtoB) and F (BtoA)
    baseline_name = "identity (the input unchanged)"

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        loss: GANLoss,
        spec: DataSpec,
        cycle_weight: float = 10.0,
        identity_weight: float = 0.5,
        adversarial_weight: float = 2.0,
        pool_size: int = 50,
    ):
        super().__init__(loss, spec)
        (c_a, size, _), (c_b, _, _) = check_translation_spec(
            spec, "cyclegan", "data=fashion_domains or data=unaligned_folder data.path=DIR")
        if min(cycle_weight, identity_weight, adversarial_weight) < 0:
            raise ValueError("model.cycle_weight, model.identity_weight and model.adversarial_weight must be >= 0")
        if identity_weight > 0 and c_a != c_b:
            raise ValueError(f"the identity loss needs domains with equal channels ({c_a} and {c_b}): set "
                             "model.identity_weight=0")
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        self.adversarial_weight = float(adversarial_weight)
        self.key_a, self.key_b = spec.source, spec.target
        self.generator = Pair(ab=generator(in_channels=c_a, out_channels=c_b),
                              ba=generator(in_channels=c_b, out_channels=c_a))
        self.discriminator = Pair(a=discriminator(in_channels=c_a, image_size=size),
                                  b=discriminator(in_channels=c_b, image_size=size))
        self.pool_a = ImagePool(pool_size, spec.shapes[self.key_a])
        self.pool_b = ImagePool(pool_size, spec.shape)

    def phases(self) -> list[Phase]:
        return [Phase("G", "generator", "generator_step", per="iteration"),
                Phase("D", "discriminator", "discriminator_step", per="batch")]

    def per_rank_buffers(self) -> dict[str, Tensor]:
        """The image pools: each DDP process keeps its own history (checkpoints store every rank's)."""
        return {name: buf for name, buf in self.named_buffers() if name.startswith("pool_")}

    # --- losses ----------------------------------------------------------------------------------------------
    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        a, b = batch[self.key_a], batch[self.key_b]
        g = self.generator
        fake_b, fake_a = g.ab(a), g.ba(b)
        ctx.scratch.update(fake_a=fake_a.detach(), fake_b=fake_b.detach())
        adv = self.loss.generator_loss(self.discriminator.b(fake_b)) + \
            self.loss.generator_loss(self.discriminator.a(fake_a))
        cycle = F.l1_loss(g.ba(fake_b).float(), a.float()) + F.l1_loss(g.ab(fake_a).float(), b.float())
        loss = self.adversarial_weight * adv + self.cycle_weight * cycle
        logs = {"loss_g": adv, "cycle": cycle}
        if self.identity_weight > 0:
            identity = F.l1_loss(g.ab(b).float(), b.float()) + F.l1_loss(g.ba(a).float(), a.float())
            loss = loss + self.cycle_weight * self.identity_weight * identity
            logs["identity"] = identity
        return StepResult(loss, logs)

    def _d_side(self, net: nn.Module, real: Tensor, fake: Tensor, ctx: StepContext) -> tuple[Tensor, Tensor, Tensor]:
        d_real, d_fake = net(real), net(fake)
        loss = self.loss.discriminator_loss(d_real, d_fake)
        reg = self.loss.regularizer(net, real, fake, grad_scale=ctx.grad_scale)
        return (loss if reg is None else loss + reg), d_real, d_fake

    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        a, b = batch[self.key_a], batch[self.key_b]
        fake_a, fake_b = ctx.scratch.get("fake_a"), ctx.scratch.get("fake_b")
        if fake_a is None:  # the iteration's earlier batches (n_critic > 1)
            with torch.no_grad():
                fake_a, fake_b = self.generator.ba(b), self.generator.ab(a)
        loss_b, real_b, scored_b = self._d_side(self.discriminator.b, b, self.pool_b.query(fake_b), ctx)
        loss_a, real_a, scored_a = self._d_side(self.discriminator.a, a, self.pool_a.query(fake_a), ctx)
        loss = loss_a + loss_b
        return StepResult(loss, {"loss_d": loss, "loss_d_a": loss_a, "loss_d_b": loss_b,
                                 "D(x)": 0.5 * (self.loss.score(real_a).mean() + self.loss.score(real_b).mean()),
                                 "D(G(z))": 0.5 * (self.loss.score(scored_a).mean() + self.loss.score(scored_b).mean())})

    # --- sampling --------------------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator | None = None, device=None,
                      source: Batch | None = None) -> dict[str, Tensor]:
        """The first ``n`` held-out images of each domain in ``source`` (rows unrelated), with their labels."""
        if source is None:
            raise ValueError("cyclegan translates data: pass source= (held-out images of both domains)")
        return {k: (to_float(v[:n]) if v.dtype != torch.int64 else v[:n]).to(device) for k, v in source.items()}

    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        """A -> B translations of ``inputs["a"]``."""
        return (net or self.generator).ab(inputs[self.key_a])

    def translate(self, x: Tensor, direction: str = "AtoB", net: nn.Module | None = None) -> Tensor:
        return (net or self.generator)(x, direction)

    def baseline(self, inputs: dict[str, Tensor]) -> Tensor:
        """The identity map: what a translation that changes nothing scores (the target share it must beat)."""
        return inputs[self.key_a].float()

    @torch.no_grad()
    def visuals(self, inputs: dict[str, Tensor], samples: Tensor) -> dict[str, Tensor]:
        """A | G(A) | F(G(A)) and B | F(B) | G(F(B)), by the training generators in eval mode."""
        g, was_training = self.generator, self.generator.training
        g.eval()
        try:
            fake_b = samples.clamp(-1, 1)
            panels = {"A": inputs[self.key_a], "G(A)": fake_b, "F(G(A))": g.ba(fake_b).float()}
            if self.key_b in inputs:
                b = inputs[self.key_b]
                fake_a = g.ba(b).float()
                panels.update({"B": b, "F(B)": fake_a, "G(F(B))": g.ab(fake_a).float()})
            return panels
        finally:
            g.train(was_training)
