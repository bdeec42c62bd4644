"""Train a GAN: `python train.py model=dcgan data=fashion_mnist loss=wgan_gp` (see README.md)."""

import hydra
from omegaconf import DictConfig

from gan_lightning.cli import report_user_errors
from gan_lightning.entry import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    from gan_lightning.training import run_job  # torch and Lightning load after the config checks

    report_user_errors(run_job, cfg)


if __name__ == "__main__":
    run(main, "train")
