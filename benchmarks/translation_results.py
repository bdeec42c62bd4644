"""Image-to-image translation results: Pix2Pix beside the same U-Net trained on L1 alone (edges -> clothing), and
CycleGAN beside the identity map and the same networks without the cycle loss (sandal <-> sneaker), on
Fashion-MNIST at the presets' iteration budgets (each about 10 minutes on 2 CPU cores).

    python benchmarks/translation_results.py --seeds 0 1 2 --jobs 2 --out runs/translation

Each run is `train.py model=<preset> seed=K [overrides]` at the preset's `max_iterations` (or --iterations), then
`evaluate.py` on its last checkpoint: for Pix2Pix every one of the 10,000 test pairs (L1, PSNR, SSIM, FID of the
outputs against the test targets in the domain classifier's space, the share of outputs classified as the input's
class); for CycleGAN the 1,000 test images of each class (the share of translations classified as the target
class, foreground IoU with the input, cycle L1 plain and after uint8 quantisation + noise, FID against the target
class's test images, both ways) and the same for the identity map (`baseline_*`). ``--jobs 2`` runs two trainings
side by side with one thread each (iteration budgets make the results independent of the machine's load; the
seconds are not). Writes <out>/results.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runs import evaluate, table, train

MINUTES = {"minutes": lambda r: r["train_s"] / 60}

RUNS = {  # name: (model, overrides)
    "pix2pix": ("pix2pix", []),
    "pix2pix_l1": ("pix2pix_l1", []),
    "cyclegan": ("cyclegan", []),
    "cyclegan_no_cycle": ("cyclegan", ["model.cycle_weight=0"]),  # Zhu et al.'s "GAN alone" (no identity term either)
    # the hard cases (docs/results.md): a discriminator that sees the whole 28-px image (34-px field), a lighter cycle
    "cyclegan_d34": ("cyclegan", ["model.discriminator.n_layers=2"]),
    "cyclegan_cycle5": ("cyclegan", ["model.cycle_weight=5"]),
    "cyclegan_d34_id1": ("cyclegan", ["model.discriminator.n_layers=2", "model.identity_weight=1.0"]),
    "cyclegan_d34_cycle15": ("cyclegan", ["model.discriminator.n_layers=2", "model.cycle_weight=15"]),
    # the whole-shoe field with a wider generator (ngf 32) or twice the schedule (the rate decays over its half)
    "cyclegan_d34_ngf32": ("cyclegan", ["model.discriminator.n_layers=2", "model.generator.ngf=32"]),
    "cyclegan_d34_long": ("cyclegan", ["model.discriminator.n_layers=2", "max_iterations=5000"]),
}
PIX2PIX_KEYS = ("l1", "psnr", "ssim", "fid_domain", "class_kept")
CYCLEGAN_KEYS = ("target_share_ab", "iou_ab", "fid_domain", "cycle_l1_a", "cycle_l1_a_quantised",
                 "target_share_ba", "iou_ba", "fid_domain_ba", "cycle_l1_b", "cycle_l1_b_quantised")


def train_and_score(name: str, seed: int, a: argparse.Namespace) -> dict:
    model, overrides = RUNS[name]
    run_dir = Path(a.out) / f"{name}-s{seed}"
    scores = run_dir / "evaluate.json"
    threads = 1 if a.jobs > 1 else None
    if not scores.exists():
        budget = [f"max_iterations={a.iterations}"] if a.iterations else []
        train_s = train(run_dir, [f"model={model}", f"seed={seed}", *budget, *overrides], threads)
        evaluate(run_dir / "checkpoints/last.ckpt", scores, threads=threads, train_s=train_s)
    data = json.loads(scores.read_text())
    return {"metrics": data["metrics"], "train_s": data["train_s"], "iteration": data["checkpoint"]["iteration"],
            "n": data["protocol"]["generated"]["n"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--iterations", type=int, default=None, help="instead of each preset's max_iterations")
    parser.add_argument("--jobs", type=int, default=1, help="trainings side by side (one thread each when > 1)")
    parser.add_argument("--out", default="runs/translation")
    a = parser.parse_args()
    Path(a.out).mkdir(parents=True, exist_ok=True)
    jobs = [(name, seed) for seed in a.seeds for name in a.runs]
    with ThreadPoolExecutor(a.jobs) as pool:
        done = list(pool.map(lambda job: (job, train_and_score(*job, a)), jobs))
    rows: dict[str, list[dict]] = {name: [] for name in a.runs}
    for (name, _), result in done:
        rows[name].append(result)
    print(f"seeds {a.seeds}; {'the presets' if not a.iterations else a.iterations} iterations a run")
    p2p = {k: v for k, v in rows.items() if k.startswith("pix2pix")}
    if p2p:
        table("edges -> clothing (10,000 test pairs)", PIX2PIX_KEYS, p2p, MINUTES)
    cyc = {k: v for k, v in rows.items() if k.startswith("cyclegan")}
    if cyc:
        first = next(iter(cyc.values()))
        identity = [{"metrics": {k: r["metrics"].get(f"baseline_{k}") for k in CYCLEGAN_KEYS
                                 if f"baseline_{k}" in r["metrics"]}, "train_s": 0.0, "iteration": 0} for r in first]
        table("sandal <-> sneaker (1,000 test images a class)", CYCLEGAN_KEYS, {"identity": identity[:1], **cyc},
              MINUTES)
    (Path(a.out) / "results.json").write_text(json.dumps({"args": vars(a), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
