"""What ``find_unused_parameters=True`` costs a GAN step under DDP (why the ``ddp`` configs can afford it).

One process, a gloo group of size 1 (the DDP bookkeeping runs, the all-reduce is trivial), the package's default
DCGAN networks at batch 64 on Fashion-MNIST's shape, wrapped as Lightning wraps them: one DDP module holding both
players. Each timed step is a discriminator step and a generator step, each backward touching one player. With
``find_unused_parameters=False`` DDP would stop at the first step, so the comparison is a discriminator-only step
(every parameter used) with and without the flag: the difference is the per-backward graph traversal that the
flag adds. Settings alternate in rounds so that load on the machine hits both alike.

    python benchmarks/ddp_unused.py --rounds 5 --steps 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from gan_lightning.networks.dcgan import Discriminator, Generator


class Players(nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = Generator(100, (1, 28, 28), ngf=32)
        self.discriminator = Discriminator((1, 28, 28), ndf=32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (unused: DDP is driven through the players)
        return self.discriminator(x)


def d_step(ddp: DDP, real: torch.Tensor, opt: torch.optim.Optimizer, z: torch.Tensor) -> None:
    players = ddp.module
    with torch.no_grad():
        fake = players.generator(z)
    loss = F.softplus(-ddp(real)).mean() + F.softplus(ddp(fake)).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def timed(find_unused: bool, steps: int, real: torch.Tensor, z: torch.Tensor) -> float:
    torch.manual_seed(0)
    players = Players()
    players.generator.requires_grad_(False)  # a D-only step: with the flag off every trainable parameter is used
    ddp = DDP(players, find_unused_parameters=find_unused)
    opt = torch.optim.Adam(players.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    for _ in range(3):
        d_step(ddp, real, opt, z)
    t0 = time.perf_counter()
    for _ in range(steps):
        d_step(ddp, real, opt, z)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    dist.init_process_group("gloo", rank=0, world_size=1)
    real, z = torch.randn(64, 1, 28, 28).clamp(-1, 1), torch.randn(64, 100)
    times = {False: [], True: []}
    for _ in range(args.rounds):
        for flag in (False, True):
            times[flag].append(timed(flag, args.steps, real, z))
    dist.destroy_process_group()
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(json.dumps({
        "command": "python benchmarks/ddp_unused.py " + f"--rounds {args.rounds} --steps {args.steps}",
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "ms_per_d_step_find_unused_false": round(off * 1e3, 2),
        "ms_per_d_step_find_unused_true": round(on * 1e3, 2),
        "overhead_percent": round(100 * (on - off) / off, 1),
        "rounds_ms": {str(k): [round(t * 1e3, 2) for t in v] for k, v in times.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
