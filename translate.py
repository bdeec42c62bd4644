"""Translate images with a Pix2Pix or CycleGAN model:
`python translate.py ckpt=PATH input=IMAGE_OR_FOLDER out=FOLDER [direction=BtoA]`."""

import hydra
from omegaconf import DictConfig

from gan_lightning.config.entry import report_user_errors, run


@hydra.main(version_base="1.3", config_path="conf", config_name="translate")
def main(cfg: DictConfig) -> None:
    from gan_lightning.translate import translate  # torch loads after the config checks

    result = report_user_errors(translate, cfg.ckpt, cfg.input, cfg.out, direction=cfg.direction,
                                use_ema=cfg.use_ema, device=cfg.device)
    print(f"translated {result['n']} image(s) {result['direction']} into {result['out']}")


if __name__ == "__main__":
    run(main, "translate")
