"""Does a synthetic dataset help a classifier that has few labels? `python augmentation_gain.py synthetic=DIR
[seeds=[0,1,2]]`: the real subset alone, with 0.5x, 1x and 3x synthetic images added, and synthetic only, each
tested on the real test split (gan_lightning.metrics.augmentation)."""

import json

import hydra
from omegaconf import DictConfig, OmegaConf

from gan_lightning.config.entry import report_user_errors, run


@hydra.main(version_base="1.3", config_path="conf", config_name="augmentation_gain")
def main(cfg: DictConfig) -> None:
    from gan_lightning.metrics.augmentation import measure, table  # torch loads after the config checks
    from gan_lightning.outputs import atomic_write

    synthetic = OmegaConf.to_container(cfg.synthetic) if OmegaConf.is_list(cfg.synthetic) else [cfg.synthetic]
    result = report_user_errors(measure, [str(s) for s in synthetic], seeds=list(cfg.seeds), steps=cfg.steps,
                                ratios=[float(r) for r in cfg.ratios], data_dir=cfg.paths.data_dir,
                                test=cfg.test, log=print)
    print(table(result["summary"], result["neighbours"]))
    if cfg.out:
        atomic_write(cfg.out, lambda tmp: tmp.write_text(json.dumps(result, indent=2)))
        print(f"wrote {cfg.out}")


if __name__ == "__main__":
    run(main, "augmentation_gain")
