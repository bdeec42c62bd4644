"""Super-resolution results: bicubic, SRResNet and SRGAN on Fashion-MNIST at the same budget, and SRGAN's
perception-distortion trade-off over its adversarial weight.

    python benchmarks/sr_results.py --scale 4 --minutes 3 --seeds 0 1 2 --weights 1e-2 3e-2 --out runs/sr-x4

Each run is `train.py model=srresnet|srgan data=fashion_sr data.scale=S trainer.max_time=M seed=K` (or
`max_iterations=N` with --iterations), then
`evaluate.py` on its last checkpoint (n held-out test pairs): PSNR/SSIM/L1 (border cropped by the scale),
fid_domain of the outputs against the training images, the share of outputs that keep their class, and the same
for bicubic upsampling. Writes <out>/results.json, prints a Markdown table, and plots PSNR against fid_domain
for the adversarial weights (<out>/tradeoff.png).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runs import evaluate, mean_sd, train

KEYS = ("psnr", "ssim", "fid_domain", "class_kept")


def train_and_score(name: str, model: str, overrides: list[str], seed: int, a: argparse.Namespace) -> dict:
    run_dir = Path(a.out) / f"{name}-s{seed}"
    scores = run_dir / "evaluate.json"
    if not scores.exists():
        if a.iterations:
            budget = [f"max_iterations={a.iterations}"]
        else:
            seconds = round(a.minutes * 60)
            budget = ["max_iterations=1000000", f"trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}"]
        train_s = train(run_dir, [f"model={model}", "data=fashion_sr", f"data.scale={a.scale}", f"seed={seed}",
                                  *budget, *overrides])
        evaluate(run_dir / "checkpoints/last.ckpt", scores, n=a.n, train_s=train_s)
    data = json.loads(scores.read_text())
    m = data["metrics"]
    return {"model": {k: m[k] for k in KEYS}, "bicubic": {k: m[f"baseline_{k}"] for k in KEYS},
            "train_s": data["train_s"], "iteration": data["checkpoint"]["iteration"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=3.0, help="wall-clock budget of each run")
    parser.add_argument("--iterations", type=int, default=None, help="a budget in iterations instead")
    parser.add_argument("--warmup", type=int, default=1000, help="SRGAN's pixel-loss iterations before its D starts")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--weights", type=float, nargs="*", default=[1e-2, 3e-2],
                        help="further SRGAN adversarial weights for the trade-off plot (seed: the first)")
    parser.add_argument("--n", type=int, default=2000, help="held-out pairs scored")
    parser.add_argument("--out", default="runs/sr")
    a = parser.parse_args()
    Path(a.out).mkdir(parents=True, exist_ok=True)

    srgan = ["model.adversarial_weight=1e-3", f"model.warmup={a.warmup}"]
    rows = {"bicubic": [], "srresnet": [], "srgan": []}
    for seed in a.seeds:
        res = train_and_score("srresnet", "srresnet", [], seed, a)
        rows["srresnet"].append(res)
        rows["bicubic"].append({"model": res["bicubic"], "train_s": 0.0, "iteration": 0})
        rows["srgan"].append(train_and_score("srgan", "srgan", srgan, seed, a))
    trade = {0.0: rows["srresnet"][0], 1e-3: rows["srgan"][0]}
    for w in a.weights:
        trade[w] = train_and_score(f"srgan-w{w:g}", "srgan", [f"model.adversarial_weight={w}",
                                                              f"model.warmup={a.warmup}"], a.seeds[0], a)

    budget = f"{a.iterations} iterations" if a.iterations else f"{a.minutes:g} minutes"
    print(f"x{a.scale}, {budget} a run, seeds {a.seeds}, {a.n} held-out test pairs")
    print("| method | PSNR dB | SSIM | fid_domain | class kept | iterations |")
    print("|---|---|---|---|---|---|")
    for name, results in rows.items():
        cells = [mean_sd([r["model"][k] for r in results]) for k in KEYS]
        print(f"| {name} | {' | '.join(cells)} | {mean_sd([r['iteration'] for r in results])} |")
    print("\n| adversarial weight (seed %d) | PSNR dB | SSIM | fid_domain | class kept |" % a.seeds[0])
    print("|---|---|---|---|---|")
    for w, r in sorted(trade.items()):
        print(f"| {w:g} | " + " | ".join(f"{r['model'][k]:.3g}" for k in KEYS) + " |")
    (Path(a.out) / "results.json").write_text(json.dumps({"args": vars(a), "rows": rows,
                                                          "tradeoff": {str(k): v for k, v in trade.items()}},
                                                         indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    points = sorted(trade.items())
    ax.plot([r["model"]["fid_domain"] for _, r in points], [r["model"]["psnr"] for _, r in points], "o-")
    for w, r in points:
        ax.annotate(f"{w:g}", (r["model"]["fid_domain"], r["model"]["psnr"]), textcoords="offset points",
                    xytext=(4, 4))
    bic = rows["bicubic"][0]["model"]
    ax.plot([bic["fid_domain"]], [bic["psnr"]], "s", label="bicubic")
    ax.set_xscale("log")
    ax.set_xlabel("fid_domain, log scale (lower: closer to real images)")
    ax.set_ylabel("PSNR dB (higher: closer to the target)")
    ax.set_title(f"x{a.scale}: adversarial weight (0 = SRResNet)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(Path(a.out) / "tradeoff.png", dpi=120)


if __name__ == "__main__":
    main()
