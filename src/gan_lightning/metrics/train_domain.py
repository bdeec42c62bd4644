"""Train the domain classifier used for the ``*_domain`` metrics and class coverage.

    python -m gan_lightning.metrics.train_domain --data fashion_mnist            # about 5 minutes on 2 CPU cores
    python -m gan_lightning.metrics.train_domain --data mnist --root DIR         # MNIST in torchvision's layout

Trains on the train split, reports accuracy on the test split, and writes ``<out>/<data>.pt`` (float16 state
dict, a few hundred KB) and ``<out>/<data>.json`` (test accuracy, sha256 of the .pt, recipe). ``--out`` defaults
to the package's ``metrics/weights`` folder, where the metrics look first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import UserError
from .domain import ARCHITECTURES, DATASETS, WEIGHTS_DIR, load_classifier, preprocess


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random per-image translation by up to ``max_shift`` pixels (zero padding), for N×1×H×W."""
    n, _, h, w = x.shape
    padded = F.pad(x[:, 0], (max_shift,) * 4, value=-1.0)
    oy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    ox = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (oy[:, None] + torch.arange(h))[:, :, None]
    cols = (ox[:, None] + torch.arange(w))[:, None, :]
    return padded[torch.arange(n)[:, None, None], rows, cols].unsqueeze(1)


@torch.no_grad()
def accuracy(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        correct += (net(preprocess(images[i : i + batch_size])).argmax(1) == labels[i : i + batch_size]).sum().item()
    return correct / len(images)


def train_classifier(train_x: torch.Tensor, train_y: torch.Tensor, num_classes: int, epochs: int = 8,
                     batch_size: int = 128, lr: float = 2e-3, seed: int = 0, log=print,
                     arch: str = "cnn") -> torch.nn.Module:
    """Adam with a one-cycle schedule, label smoothing 0.05, random shifts of up to 2 pixels."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = ARCHITECTURES[arch](num_classes=num_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    steps_per_epoch = len(train_x) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    x_all = preprocess(train_x)
    for epoch in range(epochs):
        net.train()
        t0, total = time.time(), 0.0
        perm = torch.randperm(len(x_all), generator=gen)
        for step in range(steps_per_epoch):
            idx = perm[step * batch_size : (step + 1) * batch_size]
            x = _shift(x_all[idx], 2, gen)
            loss = F.cross_entropy(net(x), train_y[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(f"epoch {epoch + 1}/{epochs}: loss {total / steps_per_epoch:.4f} ({time.time() - t0:.0f} s)")
    return net.eval()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m gan_lightning.metrics.train_domain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=DATASETS, default="fashion_mnist")
    parser.add_argument("--root", default="data", help="data folder (torchvision layout; default ./data)")
    parser.add_argument("--out", default=str(WEIGHTS_DIR), help="folder for <data>.pt and <data>.json")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="cnn",
                        help="cnn: DomainClassifier (the shipped classifier); pool: PoolClassifier (a panel member)")
    parser.add_argument("--name", default=None, help="file stem of the weights (default: the dataset's name)")
    args = parser.parse_args(argv)

    from ..data import TorchvisionDataModule

    dm = TorchvisionDataModule(args.data, root=args.root, download=True)
    dm.prepare_data()
    train_x, train_y = dm.load_split("train")
    test_x, test_y = dm.load_split("test")
    print(f"{args.data}: {len(train_x)} training, {len(test_x)} test images", flush=True)

    t0 = time.time()
    net = train_classifier(train_x, train_y, dm.num_classes, epochs=args.epochs, batch_size=args.batch_size,
                           lr=args.lr, seed=args.seed, log=lambda m: print(m, flush=True), arch=args.arch)
    train_s = time.time() - t0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{args.name or args.data}.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}, weights)
    # Accuracy of the weights as shipped (float16, loaded back as float32), not of the in-memory float32 net.
    shipped, sha = load_classifier(weights)
    test_acc = accuracy(shipped, test_x, test_y)
    info = {
        "dataset": args.data,
        "test_accuracy": round(test_acc, 4),
        "test_images": len(test_x),
        "sha256": sha,
        "bytes": weights.stat().st_size,
        "parameters": sum(p.numel() for p in net.parameters()),
        "architecture": {"cnn": "gan_lightning.metrics.domain.DomainClassifier (conv32/2-conv64-pool-conv64-pool-"
                                 "fc128-fc); features: 128-d penultimate (after ReLU)",
                         "pool": "gan_lightning.metrics.domain.PoolClassifier (conv24-conv24/2-conv48-conv48/2-conv96-"
                                 "global average pool-fc); features: 96-d pooled"}[args.arch],
        "recipe": {"epochs": args.epochs, "batch_size": args.batch_size, "optimizer": "AdamW wd 5e-4, one-cycle",
                   "lr": args.lr, "label_smoothing": 0.05, "augmentation": "random shift <= 2 px", "seed": args.seed},
        "train_data_sha256": hashlib.sha256(train_x.numpy().tobytes()).hexdigest(),
        "train_seconds": math.ceil(train_s),
        "torch": torch.__version__,
        "command": "python -m gan_lightning.metrics.train_domain " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    weights.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"test accuracy {test_acc:.4f}; wrote {weights} ({info['bytes'] // 1024} KB, sha256 {sha[:16]}...)")
    return info


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
