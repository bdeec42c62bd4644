"""Fill holes in images with an inpainting model:
`python inpaint.py ckpt=PATH input=IMAGE_OR_FOLDER out=FOLDER [mask=MASK_OR_FOLDER|center|free_form]`."""

import hydra
from omegaconf import DictConfig

from gan_lightning.config.entry import report_user_errors, run


@hydra.main(version_base="1.3", config_path="conf", config_name="inpaint")
def main(cfg: DictConfig) -> None:
    from gan_lightning.inpaint import inpaint  # torch loads after the config checks

    result = report_user_errors(inpaint, cfg.ckpt, cfg.input, cfg.out, mask=str(cfg.mask), seed=cfg.seed,
                                use_ema=cfg.use_ema, device=cfg.device)
    print(f"filled {result['n']} image(s) (mask: {result['mask']}) into {result['out']}")


if __name__ == "__main__":
    run(main, "inpaint")
