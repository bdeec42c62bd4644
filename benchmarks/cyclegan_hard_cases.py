"""Which inputs a CycleGAN fails on: every held-out image of domain A translated to B, each translation classified
by every member of the classifier panel, and the per-input result set against the input's silhouette.

    python benchmarks/cyclegan_hard_cases.py --ckpt runs/cyclegan-s0/checkpoints/last.ckpt [more.ckpt ...] \\
        --labels preset candidate --out runs/hard --grid docs/img/cyclegan_hard_cases.png

For each checkpoint (all on the same inputs: the data's `fixed_batch(n, "test", 0)`, the images `evaluate.py`
scores):
- the share of translations each member puts in the target class, the panel's minimum and the share on which all
  members say the target class (`all_target`), as `evaluate.py` reports them;
- what the members call the translations that miss (a class histogram per member);
- the same shares by quartile of three measures of the input's silhouette (foreground = grey > the data's
  `foreground_threshold`): `height`, the rows the shoe spans; `arch`, the largest gap between the shoe's lowest
  row and a column's lowest foreground pixel over the middle 60% of its width (a raised arch: a high heel);
  `fill`, the foreground's share of its bounding box (strappy shoes fill little of it); with each measure's
  Spearman correlation with the panel's lowest probability of the target class;
- the foreground IoU of input and translation (`evaluate.py`'s `iou_ab`), overall and by the same quartiles.

`--grid` writes the hardest inputs (lowest panel probability of the target under the first checkpoint): a row of
inputs, then a row of each checkpoint's translations. Writes <out>/hard_cases.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gan_lightning.metrics.domain import load_classifier, panel_weights, preprocess
from gan_lightning.metrics.evaluation import infer_data
from gan_lightning.metrics.translation import foreground_iou, translate
from gan_lightning.data.convert import to_float, to_uint8
from gan_lightning.train.checkpoints import load_module

MEASURES = ("height", "arch", "fill")


def silhouette(images: torch.Tensor, threshold: int) -> dict[str, torch.Tensor]:
    """The ``MEASURES`` of uint8 N×1×H×W images (module docstring), each a float tensor [N]."""
    mask = images[:, 0] > threshold
    n, h, w = mask.shape
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    any_row, any_col = mask.any(2), mask.any(1)
    top = torch.where(any_row, torch.arange(h), h).min(1).values
    bottom = torch.where(any_row, torch.arange(h), -1).max(1).values
    left = torch.where(any_col, torch.arange(w), w).min(1).values
    right = torch.where(any_col, torch.arange(w), -1).max(1).values
    height = (bottom - top + 1).clamp_min(0).float()
    width = (right - left + 1).clamp_min(0).float()
    lowest = torch.where(mask, rows, -1).max(1).values  # [N, W]: each column's lowest foreground row
    middle = (cols[0] >= (left + 0.2 * width).view(n, 1)) & (cols[0] <= (right - 0.2 * width).view(n, 1))
    gap = torch.where(middle & (lowest >= 0), bottom.view(n, 1) - lowest, 0)
    fill = mask.flatten(1).sum(1).float() / (height * width).clamp_min(1)
    return {"height": height, "arch": gap.max(1).values.float(), "fill": fill}


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    def ranks(v: torch.Tensor) -> torch.Tensor:
        order = v.argsort(stable=True)
        r = torch.empty_like(v, dtype=torch.float64)
        r[order] = torch.arange(len(v), dtype=torch.float64)
        for value in v.unique():  # ties share their mean rank
            tied = v == value
            r[tied] = r[tied].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / (rx.norm() * ry.norm()).clamp_min(1e-12))


@torch.no_grad()
def panel_probabilities(images: torch.Tensor) -> tuple[list[str], torch.Tensor]:
    """(member names, softmax [members, N, classes]) of the Fashion-MNIST classifier panel on uint8 images."""
    names, probs = [], []
    for path in panel_weights("fashion_mnist"):
        net, _ = load_classifier(path)
        logits = torch.cat([net(preprocess(images[i : i + 500])) for i in range(0, len(images), 500)])
        names.append(path.stem)
        probs.append(logits.softmax(1))
    return names, torch.stack(probs)


def analyse(probs: torch.Tensor, target: int, measures: dict[str, torch.Tensor], class_names: list[str],
            members: list[str], iou: torch.Tensor) -> dict:
    predicted = probs.argmax(2)  # [M, N]
    hit = predicted == target
    low = probs[:, :, target].min(0).values  # the panel's lowest probability of the target, per input
    out = {"share": {m: float(h.float().mean()) for m, h in zip(members, hit)},
           "panel_min": float(hit.float().mean(1).min()), "all_target": float(hit.all(0).float().mean()),
           "iou": float(iou.mean()),
           "missed_as": {m: {class_names[c]: int((row[~h] == c).sum()) for c in row[~h].unique().tolist()}
                         for m, row, h in zip(members, predicted, hit)},
           "by_quartile": {}, "spearman": {}}
    for name, value in measures.items():
        edges = torch.quantile(value, torch.tensor([0.25, 0.5, 0.75]))
        bucket = torch.bucketize(value, edges, right=True)
        out["by_quartile"][name] = [
            {"range": [float(value[bucket == q].min()), float(value[bucket == q].max())], "n": int((bucket == q).sum()),
             "panel_min": float(hit[:, bucket == q].float().mean(1).min()),
             "all_target": float(hit[:, bucket == q].all(0).float().mean()),
             "iou": float(iou[bucket == q].mean())}
            for q in range(4) if (bucket == q).any()]
        out["spearman"][name] = spearman(value, low)
    return out, low


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", nargs="+", required=True)
    parser.add_argument("--labels", nargs="+", default=None, help="a name per checkpoint (default: their paths)")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default="runs/hard_cases")
    parser.add_argument("--grid", default=None, help="a PNG of the hardest inputs and their translations")
    parser.add_argument("--grid-n", type=int, default=16)
    a = parser.parse_args()
    labels = a.labels or a.ckpt
    if len(labels) != len(a.ckpt):
        parser.error("--labels needs one name per --ckpt")
    torch.set_grad_enabled(False)
    modules = [load_module(c) for c in a.ckpt]
    datamodule = infer_data(modules[0].config["data"], a.data_dir)
    datamodule.setup()
    batch = datamodule.fixed_batch(a.n, "test", 0)
    x, target = to_uint8(to_float(batch["a"])), int(batch["y_b"].mode().values)
    threshold = datamodule.foreground_threshold
    measures = silhouette(x, threshold)
    results, lows, outputs = {}, [], []
    members = None
    for label, module in zip(labels, modules):
        out = to_uint8(translate(module, to_float(x), "AtoB"))
        members, probs = panel_probabilities(out)
        iou = torch.tensor([foreground_iou(x[i : i + 1], out[i : i + 1], threshold) for i in range(len(x))])
        results[label], low = analyse(probs, target, measures, datamodule.class_names, members, iou)
        lows.append(low)
        outputs.append(out)
    source = {"measures": {k: {"mean": float(v.mean()), "quartiles": torch.quantile(
        v, torch.tensor([0.25, 0.5, 0.75])).tolist()} for k, v in measures.items()},
              "domains": list(datamodule.domain_names), "n": len(x)}
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "hard_cases.json").write_text(json.dumps({"args": vars(a), "inputs": source, "runs": results},
                                                             indent=2))
    for label, r in results.items():
        print(f"\n### {label}: panel min share {r['panel_min']:.3f}, all members {r['all_target']:.3f}, "
              f"IoU {r['iou']:.3f}")
        print("| measure | quartile | range | panel min share | all members | IoU |\n|---|---|---|---|---|---|")
        for name, rows in r["by_quartile"].items():
            for q, row in enumerate(rows):
                print(f"| {name} (rho {r['spearman'][name]:+.2f}) | {q + 1} | {row['range'][0]:.2f}-"
                      f"{row['range'][1]:.2f} | {row['panel_min']:.3f} | {row['all_target']:.3f} | {row['iou']:.3f} |")
        print("missed as:", json.dumps(r["missed_as"]))
    if a.grid:
        from torchvision.utils import save_image

        hardest = lows[0].argsort()[: a.grid_n]
        rows = [x[hardest]] + [out[hardest] for out in outputs]
        grid = torch.nn.functional.interpolate(torch.cat(rows).float() / 255, scale_factor=2)  # 56 px: readable
        save_image(grid, a.grid, nrow=a.grid_n, padding=2, pad_value=0.5)
        print(f"grid: {a.grid} (rows: input, {', '.join(labels)})")


if __name__ == "__main__":
    main()
