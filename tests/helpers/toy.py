"""A small family that generates from data, for the seam's contract tests: it uses every schedule feature the
coming families need (a generator-only warm-up, generator-first order with its output reused by the
discriminator, lazy R1 regularisation as its own phase) on 8x8 pairs where the target is the input inverted (255 - a)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gan_lightning.core.family import Batch, Before, From, GANFamily, Phase, StepContext, StepResult
from gan_lightning.data.base import TensorDataModule
from gan_lightning.data.loader import sample_indices, select
from gan_lightning.data.spec import DataSpec
from gan_lightning.losses import GANLoss


class InvertPairs(TensorDataModule):
    """Pairs ``{"a": image, "b": 255 - image}`` of random 8x8 uint8 images; ``fixed_batch`` draws
    from a held-out set made with another seed."""

    def __init__(self, n: int = 64, size: int = 8, batch_size: int = 8, seed: int = 0, device: str = "cpu"):
        super().__init__(batch_size, seed)
        self.n, self.size, self.device = n, size, device
        self.shape = (1, size, size)

    @property
    def spec(self) -> DataSpec:
        shape = (1, self.size, self.size)
        return DataSpec({"a": shape, "b": shape}, target="b", source="a")

    def _pairs(self, n: int, seed: int) -> dict[str, Tensor]:
        a = torch.randint(0, 256, (n, 1, self.size, self.size), generator=torch.Generator().manual_seed(seed),
                          dtype=torch.uint8)
        return {"a": a, "b": 255 - a}

    def _setup(self) -> None:
        self._tensors = self._pairs(self.n, self.seed)

    def fixed_batch(self, n: int, split: str = "test", seed: int = 0) -> dict[str, Tensor]:
        held_out = self._pairs(max(n, 16), 10_000 + self.seed)
        return select(held_out, sample_indices(len(held_out["a"]), n, seed))


class InvertTranslation(GANFamily):
    """G(a) -> b against a discriminator D(x, a) on the pair, plus an L1 term to the target.

    Phases: ``warmup`` (generator only, L1, for ``warmup`` iterations), then ``G`` before ``D`` on each batch (the
    discriminator reuses the generator's output from ``ctx.scratch``), and ``Dreg``: R1 on real pairs every
    ``r1_interval`` discriminator steps with gain ``r1_interval`` (lazy)."""

    paired = True
    log_keys = ("loss_d", "loss_g", "l1")

    def __init__(self, loss: GANLoss, spec: DataSpec, width: int = 8, warmup: int = 0, r1_gamma: float = 1.0,
                 r1_interval: int = 4, l1_weight: float = 10.0):
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0; got {warmup}")
        super().__init__(loss, spec)
        self.warmup, self.r1_gamma, self.r1_interval, self.l1_weight = warmup, r1_gamma, r1_interval, l1_weight
        c = spec.shapes[spec.source][0]
        self.generator = nn.Sequential(nn.Conv2d(c, width, 3, padding=1), nn.ReLU(),
                                       nn.Conv2d(width, spec.shape[0], 3, padding=1), nn.Tanh())
        self.discriminator = PairCritic(c + spec.shape[0], width)

    def phases(self) -> list[Phase]:
        return [Phase("warmup", "generator", "pixel_step", per="iteration", active=Before(self.warmup)),
                Phase("G", "generator", "generator_step", per="iteration", active=From(self.warmup)),
                Phase("D", "discriminator", "discriminator_step", per="batch", active=From(self.warmup)),
                Phase("Dreg", "discriminator", "r1_step", per="batch", interval=self.r1_interval,
                      gain=self.r1_interval, lazy=True, active=From(self.warmup))]

    def pixel_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        l1 = (self.generator(batch["a"]) - batch["b"]).abs().mean()
        return StepResult(self.l1_weight * l1, {"l1": l1})

    def generator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        fake = self.generator(batch["a"])
        ctx.scratch["fake"] = fake.detach()
        adv = self.loss.generator_loss(self.discriminator(fake, a=batch["a"]))
        l1 = (fake - batch["b"]).abs().mean()
        return StepResult(adv + self.l1_weight * l1, {"loss_g": adv, "l1": l1})

    def discriminator_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        fake = ctx.scratch.get("fake")
        ctx.scratch["reused"] = fake is not None
        if fake is None:
            with torch.no_grad():
                fake = self.generator(batch["a"])
        return StepResult(*self.adversarial_d_step(batch["b"], fake, ctx, a=batch["a"]))

    def r1_step(self, batch: Batch, ctx: StepContext) -> StepResult:
        real = batch["b"].detach().float().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.discriminator(real, a=batch["a"]).sum(), real, create_graph=True)
        r1 = grad.pow(2).flatten(1).sum(1).mean()
        return StepResult(ctx.gain * 0.5 * self.r1_gamma * r1, {"r1": r1})

    def sample_inputs(self, n: int, generator=None, device=None, source: Batch | None = None) -> dict[str, Tensor]:
        if source is None:
            raise ValueError("InvertTranslation translates data: pass source=")
        return {k: source[k][:n].to(device) for k in ("a", "b") if k in source}

    def generate(self, inputs: dict[str, Tensor], net: nn.Module | None = None) -> Tensor:
        return (net or self.generator)(inputs["a"])

    def visuals(self, inputs: dict[str, Tensor], samples: Tensor) -> dict[str, Tensor]:
        return {"input": inputs["a"], "output": samples, **({"target": inputs["b"]} if "b" in inputs else {})}


class PairCritic(nn.Module):
    """D(x, a): a small convolutional critic of the pair, one logit per image."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(width, 1, 4))

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        return self.body(torch.cat([a.to(x.dtype), x], 1)).flatten(1).mean(1)
