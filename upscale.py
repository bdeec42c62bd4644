"""Upscale images with a super-resolution model: `python upscale.py ckpt=PATH input=IMAGE_OR_FOLDER out=FOLDER`."""

import hydra
from omegaconf import DictConfig

from gan_lightning.config.entry import report_user_errors, run


@hydra.main(version_base="1.3", config_path="conf", config_name="upscale")
def main(cfg: DictConfig) -> None:
    from gan_lightning.upscale import upscale  # torch loads after the config checks

    result = report_user_errors(upscale, cfg.ckpt, cfg.input, cfg.out, tile=cfg.tile, overlap=cfg.overlap,
                                use_ema=cfg.use_ema, device=cfg.device)
    print(f"upscaled {result['n']} image(s) x{result['scale']} into {result['out']}")


if __name__ == "__main__":
    run(main, "upscale")
