"""A labelled dataset from a class-conditional generator: `python synthesize.py ckpt=PATH per_class=K out=DIR
[filter=0.9] [format=zip]` (gan_lightning.synthesize)."""

import hydra
from omegaconf import DictConfig

from gan_lightning.config.entry import report_user_errors, run


@hydra.main(version_base="1.3", config_path="conf", config_name="synthesize")
def main(cfg: DictConfig) -> None:
    from gan_lightning.synthesize import synthesize  # torch loads after the config checks

    result = report_user_errors(
        synthesize, cfg.ckpt, per_class=cfg.per_class, out=cfg.out, seed=cfg.seed, psi=cfg.psi, filter=cfg.filter,
        format=cfg.format, batch_size=cfg.batch_size, use_ema=cfg.use_ema, device=cfg.device,
        data_dir=cfg.paths.data_dir, filter_steps=cfg.filter_steps, log=print,
    )
    kept = "" if result["accepted_share"] is None else f", {result['accepted_share']:.0%} of the draws passed the filter"
    print(f"wrote {sum(result['counts'].values())} images ({len(result['counts'])} classes x "
          f"{next(iter(result['counts'].values()))}) from iteration {result['iteration']} to {result['out']}{kept}")


if __name__ == "__main__":
    run(main, "synthesize")
