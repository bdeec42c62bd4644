"""Import the authors' released weights as a package checkpoint:
`python import_weights.py kind=pix2pix|cyclegan|stylegan2 src=FILE out=X.ckpt` (see README.md)."""

import hydra
from omegaconf import DictConfig, OmegaConf

from gan_lightning.config.entry import report_user_errors, run


@hydra.main(version_base="1.3", config_path="conf", config_name="import_weights")
def main(cfg: DictConfig) -> None:
    from gan_lightning.importers.checkpoint import import_weights, summary  # torch loads after the config checks

    overrides = OmegaConf.to_container(cfg.overrides, resolve=True) if cfg.overrides is not None else []
    result = report_user_errors(import_weights, cfg.kind, cfg.src, cfg.out, overrides=overrides)
    print(summary(result))


if __name__ == "__main__":
    run(main, "import_weights")
