"""A plain hand-written PyTorch DCGAN loop: the yardstick for the package's overhead and its default recipe.

Same networks (gan_lightning.networks.dcgan), same algorithm as the package's default (one discriminator step on a
fresh real batch, one generator step with fresh noise, non-saturating loss on logits, Adam, generator EMA), no
Lightning, no Hydra, no logging.

    python benchmarks/plain_loop.py --minutes 5 --out docs/img/plain_loop_5min.png   # the time-to-quality yardstick
    python benchmarks/plain_loop.py --no-ema --iterations 9000 --score-at 1800 4500 --fid 10000 --json scores.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_lightning.data import TorchvisionDataModule
from gan_lightning.networks.dcgan import Discriminator, Generator


class PlainGAN:
    """The loop on given networks: ``G(z)`` against ``D(x)`` on rows of ``data`` (uint8 images, scaled to [-1, 1],
    or float rows taken as they are), z ~ N(0, I) of ``latent_dim``."""

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, data: torch.Tensor, latent_dim: int,
                 batch_size=64, lr=2e-4, betas=(0.5, 0.999), ema_decay: float | None = 0.999, device="cpu",
                 dataloader_workers: int | None = None):
        self.images, self.batch_size, self.latent_dim, self.device = data, batch_size, latent_dim, device
        self.G, self.D = G.to(device), D.to(device)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr, betas=betas)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if ema_decay else None
        self.ema_decay = ema_decay
        self.iteration = 0
        self._perm = torch.randperm(len(data))
        self._pos = 0
        self._loader = None
        if dataloader_workers is not None:  # the usual feeding: a DataLoader of per-sample reads, pinned memory
            self._loader = torch.utils.data.DataLoader(
                torch.utils.data.TensorDataset(data), batch_size=batch_size, shuffle=True, drop_last=True,
                num_workers=dataloader_workers, pin_memory=device == "cuda",
                persistent_workers=dataloader_workers > 0)
            self._batches = iter(self._loader)

    def _scaled(self, rows: torch.Tensor) -> torch.Tensor:
        rows = rows.to(self.device, non_blocking=True)
        return rows.float().div_(127.5).sub_(1) if rows.dtype == torch.uint8 else rows

    def real_batch(self) -> torch.Tensor:
        if self._loader is not None:
            batch = next(self._batches, None)
            if batch is None:
                self._batches = iter(self._loader)
                batch = next(self._batches)
            return self._scaled(batch[0])
        if self._pos + self.batch_size > len(self._perm):
            self._perm, self._pos = torch.randperm(len(self.images)), 0
        idx = self._perm[self._pos:self._pos + self.batch_size]
        self._pos += self.batch_size
        return self._scaled(self.images[idx])

    def step(self) -> None:
        real = self.real_batch()
        z = torch.randn(len(real), self.latent_dim, device=self.device)
        with torch.no_grad():
            fake = self.G(z)
        loss_d = F.softplus(-self.D(real)).mean() + F.softplus(self.D(fake)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        self.D.requires_grad_(False)
        z = torch.randn(len(real), self.latent_dim, device=self.device)
        loss_g = F.softplus(-self.D(self.G(z))).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)

        self.iteration += 1
        if self.G_ema is not None:
            beta = min(self.ema_decay, (1 + self.iteration) / (10 + self.iteration))
            with torch.no_grad():
                torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1 - beta)
                for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
                    b_ema.copy_(b)


class PlainDCGAN(PlainGAN):
    """The loop on the package's DCGAN networks (gan_lightning.networks.dcgan), seeded."""

    def __init__(self, images_u8: torch.Tensor, batch_size=64, ngf=64, ndf=64, latent_dim=100, lr=2e-4,
                 betas=(0.5, 0.999), ema_decay: float | None = 0.999, device="cpu", seed=0,
                 dataloader_workers: int | None = None):
        torch.manual_seed(seed)
        shape = tuple(images_u8.shape[1:])
        super().__init__(Generator(latent_dim, shape, ngf=ngf), Discriminator(shape, ndf=ndf), images_u8,
                         latent_dim, batch_size=batch_size, lr=lr, betas=betas, ema_decay=ema_decay, device=device,
                         dataloader_workers=dataloader_workers)


def fashion_mnist(root: str = "data") -> TorchvisionDataModule:
    dm = TorchvisionDataModule("fashion_mnist", root=root)
    dm.prepare_data()
    return dm


def domain_scores(net: torch.nn.Module, latent_dim: int, datamodule, n: int = 10000, seed: int = 0) -> dict:
    """The package's metrics in the domain feature space (the same reference, cache and formulas as
    ``evaluate.py ... features=domain``) for ``n`` samples of ``net``."""
    from gan_lightning.data.convert import to_uint8
    from gan_lightning.metrics.build import build_evaluator
    from gan_lightning.metrics.options import MetricOptions

    options = MetricOptions(features="domain", n_reference=10000, reference_split="train",
                            cache_dir="data/metric_cache")
    evaluator, _ = build_evaluator(datamodule, options)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for start in range(0, n, 500):
            evaluator.update(to_uint8(net(torch.randn(min(500, n - start), latent_dim, generator=gen))))
    return {k: float(v) for k, v in evaluator.compute().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="the time budget (unless --iterations)")
    parser.add_argument("--iterations", type=int, help="an iteration budget instead of --minutes")
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ema", action="store_true", help="the textbook loop: samples from G itself")
    parser.add_argument("--out", default="plain_loop.png")
    parser.add_argument("--fid", type=int, default=0, metavar="N",
                        help="score N samples with the domain FID of evaluate.py (features=domain) at the end")
    parser.add_argument("--score-at", type=int, nargs="+", default=[], metavar="I",
                        help="with --iterations: also score (--fid samples) and grid (<out>-<I>.png) at iteration I")
    parser.add_argument("--json", help="write the iterations, the training seconds and {iteration: scores} here")
    args = parser.parse_args()

    datamodule = fashion_mnist()
    loop = PlainDCGAN(datamodule.load_split("train")[0], batch_size=args.batch_size, ngf=args.ngf, ndf=args.ngf,
                      ema_decay=None if args.no_ema else 0.999, seed=args.seed)
    results = {}

    def report(out: Path) -> None:
        from torchvision.utils import save_image

        net = loop.G_ema if loop.G_ema is not None else loop.G  # the textbook loop samples G in train mode
        with torch.no_grad():
            samples = net(torch.randn(64, loop.latent_dim, generator=torch.Generator().manual_seed(1234)))
        out.parent.mkdir(parents=True, exist_ok=True)
        save_image(samples, out, nrow=8, normalize=True, value_range=(-1, 1))
        epochs = loop.iteration * args.batch_size / len(loop.images)
        print(f"{loop.iteration} iterations ({epochs:.2f} epochs); grid: {out}", flush=True)
        if args.fid:
            scores = domain_scores(net, loop.latent_dim, datamodule, n=args.fid)
            results[loop.iteration] = scores
            print(f"domain metrics on {args.fid} samples: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()),
                  flush=True)

    out = Path(args.out)
    training_s = 0.0
    if args.iterations:
        points = sorted(set(args.score_at) - {args.iterations})
        while loop.iteration < args.iterations:
            start = time.perf_counter()
            loop.step()
            training_s += time.perf_counter() - start
            if loop.iteration in points:
                report(out.with_name(f"{out.stem}-{loop.iteration}{out.suffix}"))
    else:
        start = time.perf_counter()
        end = start + args.minutes * 60
        while time.perf_counter() < end:
            loop.step()
        training_s = time.perf_counter() - start
    report(out)
    if args.json:
        Path(args.json).write_text(json.dumps({"iterations": loop.iteration, "training_s": training_s,
                                               "scores": results}, indent=2))


if __name__ == "__main__":
    main()
