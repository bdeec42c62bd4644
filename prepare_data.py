"""Check and pack a folder of images for training:
`python prepare_data.py input=DIR out=FILE.zip resolution=64 [layout=image|aligned|unaligned|sr] [labels=subfolders]`."""

import hydra
from omegaconf import DictConfig

from gan_lightning.config.entry import report_user_errors, run


@hydra.main(version_base="1.3", config_path="conf", config_name="prepare_data")
def main(cfg: DictConfig) -> None:
    from gan_lightning.data.prepare import prepare, summary  # torch loads after the config checks

    result = report_user_errors(prepare, cfg.input, cfg.out, cfg.resolution, layout=cfg.layout, labels=cfg.labels,
                                bad_files=cfg.bad_files, channels=cfg.channels, transform=cfg.transform,
                                max_images=cfg.max_images, any_resolution=cfg.any_resolution, format=cfg.format,
                                num_workers=cfg.num_workers)
    print(summary(result))


if __name__ == "__main__":
    run(main, "prepare_data")
