"""Sample from a trained generator: `python generate.py ckpt=PATH n=10000 out=samples.npz [label=K] [psi=0.7]`."""

import hydra
from omegaconf import DictConfig

from gan_lightning.config.entry import report_user_errors
from gan_lightning.config.entry import run


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
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
