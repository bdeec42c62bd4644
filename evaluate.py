"""Score a trained generator: `python evaluate.py ckpt=PATH n=10000 out=metrics.json` (see docs/metrics.md)."""

import hydra
from omegaconf import DictConfig, OmegaConf

from gan_lightning.config.entry import report_user_errors
from gan_lightning.config.entry import run


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from gan_lightning.metrics.evaluation import evaluate, format_table  # torch loads after the config checks

    data = OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") else None
    result = report_user_errors(
        evaluate, cfg.ckpt, n=cfg.n, out=cfg.out, data=data, data_dir=cfg.paths.data_dir, seed=cfg.seed,
        batch_size=cfg.batch_size, device=cfg.device, use_ema=cfg.use_ema, features=cfg.features,
        n_reference=cfg.n_reference, reference_split=cfg.reference_split, inception_weights=cfg.inception_weights,
        domain_weights=cfg.domain_weights, cache_dir=cfg.cache_dir, kid_subsets=cfg.kid_subsets,
        cas=cfg.cas, cas_n=cfg.cas_n, cas_epochs=cfg.cas_epochs, panel=cfg.panel,
    )
    print(format_table(result))
    if cfg.out:
        print(f"wrote {cfg.out}")


if __name__ == "__main__":
    run(main, "evaluate")
