"""Sample from a trained generator: `python generate.py ckpt=PATH n=10000 out=samples.npz [label=K] [psi=0.7]`;
or draw a figure: `python generate.py ckpt=PATH figure=truncation|mixing|interpolation out=figure.png`."""

import hydra
from omegaconf import DictConfig

from gan_lightning.config.entry import report_user_errors
from gan_lightning.config.entry import run


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    if cfg.get("figure"):
        from gan_lightning.figures import write_figure

        result = report_user_errors(
            write_figure, cfg.ckpt, cfg.figure, cfg.out, seed=cfg.seed, rows=cfg.rows, cols=cfg.cols,
            steps=cfg.steps, cutoff=cfg.get("cutoff"), use_ema=cfg.use_ema, device=cfg.device,
        )
        print(f"wrote the {result['figure']} figure ({result['rows']} x {result['columns']} images) from iteration "
              f"{result['iteration']} to {result['out']}")
        return
    from gan_lightning.sampling import generate  # torch loads after the config checks

    result = report_user_errors(
        generate, cfg.ckpt, n=cfg.n, out=cfg.out, seed=cfg.seed, batch_size=cfg.batch_size, use_ema=cfg.use_ema,
        device=cfg.device, label=cfg.get("label"), psi=cfg.get("psi", 1.0),
    )
    of_class = "" if result["label"] is None else f" of class {result['label']}"
    truncated = "" if result["psi"] == 1.0 else f" truncated to psi={result['psi']}"
    print(f"wrote {result['n']} samples{of_class}{truncated} from iteration {result['iteration']} to {result['out']} "
          f"(grid: {result['grid']})")


if __name__ == "__main__":
    run(main, "generate")
