"""Train a GAN: `python train.py model=dcgan data=fashion_mnist loss=wgan_gp` (see README.md)."""

import hydra
from omegaconf import DictConfig

from gan_lightning.config.entry import report_user_errors
from gan_lightning.config.entry import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig):
    from gan_lightning.train.jobs import run_job  # torch and Lightning load after the config checks

    return report_user_errors(run_job, cfg)  # a sweeper (hparams_search=...) reads the job's objective from here


if __name__ == "__main__":
    run(main, "train")
