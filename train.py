"""Train a GAN: `python train.py model=dcgan data=fashion_mnist loss=wgan_gp` (see README.md)."""

import hydra
from omegaconf import DictConfig

from gan_lightning.cli import report_user_errors
from gan_lightning.entry import run
from gan_lightning.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    report_user_errors(train, cfg)


if __name__ == "__main__":
    run(main, "train")
