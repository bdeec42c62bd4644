"""Weights after a fixed number of iterations, for every model x loss: the record that a refactoring of the
training seam must reproduce (``tests/test_seam_regression.py`` compares a fresh run against it).

    python benchmarks/seam_checksums.py --out tests/data/seam_checksums.json   # record
    python benchmarks/seam_checksums.py --check tests/data/seam_checksums.json # compare (exact sha256 + sums)

Each run is the tiny test configuration (256 Fashion-MNIST images, widths 8, batch 16) trained for
``--iterations`` generator iterations on the CPU with seed 42 through ``gan_lightning``'s own ``train()``.
Per tensor of the final state dict (networks and EMA) it records the sum and the sum of absolute values, and
per run the sha256 of all tensors' bytes (bit-exact on one machine; the sums allow for another CPU's rounding).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ("fcgan", "dcgan", "cgan", "acgan", "infogan")
LOSSES = ("minimax", "non_saturating", "lsgan", "hinge", "wgan", "wgan_gp")


def run(model: str, loss: str, iterations: int, data_root: Path, out_dir: Path) -> dict:
    from tests.conftest import TINY  # the test suite's tiny networks

    from gan_lightning.config import compose_config
    from gan_lightning.train.fit import train

    overrides = ["trainer=cpu", "logger=none", "callbacks=none", f"model={model}", f"loss={loss}",
                 f"max_iterations={iterations}", "data.batch_size=16", f"data.root={data_root}", "data.subset=256",
                 "trainer.enable_model_summary=false", "+trainer.enable_progress_bar=false",
                 "+callbacks.checkpoint._target_=gan_lightning.callbacks.IterationCheckpoint",
                 f"+callbacks.checkpoint.dirpath={out_dir}/checkpoints", "+callbacks.checkpoint.save_last=true",
                 "+callbacks.checkpoint.save_top_k=0", *TINY[model]]
    cfg = compose_config(overrides, out_dir, cwd=ROOT)
    train(cfg)
    state = torch.load(out_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    digest = hashlib.sha256()
    tensors = {}
    for key in sorted(state):
        value = state[key]
        digest.update(key.encode())
        digest.update(value.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
        if value.is_floating_point():
            tensors[key] = [float(value.double().sum()), float(value.double().abs().sum())]
    return {"sha256": digest.hexdigest(), "tensors": tensors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--check", type=Path)
    parser.add_argument("--iterations", type=int, default=4)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model in MODELS:
            for loss in LOSSES:
                results[f"{model}/{loss}"] = run(model, loss, args.iterations, Path(tmp) / "data",
                                                 Path(tmp) / f"{model}-{loss}")
    record = {"iterations": args.iterations, "torch": torch.__version__, "runs": results}
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {len(results)} runs to {args.out}")
    if args.check:
        stored = json.loads(args.check.read_text())["runs"]
        same = [k for k in results if stored.get(k, {}).get("sha256") == results[k]["sha256"]]
        print(f"{len(same)} of {len(results)} runs bit-identical to {args.check}")
        for k in results:
            if k not in same:
                print("  differs:", k)
        return 0 if len(same) == len(results) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
