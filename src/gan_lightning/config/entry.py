"""What the entry points share: checks before launch, and user errors as one line on stderr with exit status 2
(a bad override, a missing file: never a traceback)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..errors import UserError
from .checks import one_line, validate
from .compose import CONF_DIR, check_overrides

_FLAGS_WITH_VALUE = {"-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir", "--experimental-rerun"}


def precheck(argv: list[str], config_name: str) -> None:
    """Compose the config the command line asks for (first value of each sweep) and validate it, so that
    unknown options, unknown keys, wrong types and impossible values fail before Hydra starts any job."""
    if any(a in _FLAGS_WITH_VALUE or a.split("=")[0] in _FLAGS_WITH_VALUE for a in argv):
        return  # a different config source: let Hydra handle it
    if any(a in ("--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc") for a in argv):
        return
    overrides = [a for a in argv if not a.startswith("-")]
    check_overrides(overrides)

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    first = []
    for o in OverridesParser.create().parse_overrides(overrides):
        if o.is_sweep_override() and not o.is_hydra_override():
            if o.is_interval_sweep():  # interval(a, b) for Optuna (hparams_search=...): check its start
                value = o.value().start
            else:
                value = next(iter(o.sweep_string_iterator()), None)
            first.append(f"{o.get_key_element()}={value}")
        else:
            first.append(o.input_line)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name, overrides=first, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as e:
        raise UserError(one_line(str(e))) from None
    finally:
        GlobalHydra.instance().clear()
    validate(cfg)
    _check_outputs(cfg, config_name, multirun=any(a in ("-m", "--multirun") for a in argv))


def _check_outputs(cfg, config_name: str, multirun: bool) -> None:
    """The places the command will write, checked before it starts: train.py's run (or sweep) directory, the
    ``out`` file of generate.py and evaluate.py, the ``out`` folder of upscale.py and translate.py, and the ``out``
    of import_weights.py and prepare_data.py, which must not exist (with the checks between prepare_data.py's
    options)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from ..outputs import check_output

    if config_name == "train":
        HydraConfig.instance().set_config(cfg)  # the run directory's name interpolates ${hydra:...}
        key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
        try:
            where = OmegaConf.select(cfg, key)
        except Exception:  # noqa: BLE001 - an interpolation only a running job can resolve: Hydra will say
            return
        check_output(where, key, folder=True)
    elif config_name == "prepare_data":
        from .prepare_options import check_prepare

        check_prepare(**{k: cfg[k] for k in ("input", "out", "resolution", "layout", "labels", "bad_files", "channels",
                                             "transform", "max_images", "any_resolution", "format", "num_workers")})
    elif config_name == "synthesize":
        from ..synthesize import check_options

        check_options(cfg.out, cfg.per_class, cfg.filter, cfg.format)
    elif cfg.get("out"):
        if config_name == "import_weights":
            from ..importers import check_new_output

            check_new_output(cfg.out)  # (an import never overwrites)
        # upscale.py, translate.py and inpaint.py write folders of images
        check_output(cfg.out, "out", folder=config_name in ("upscale", "translate", "inpaint"))


def run(main: Callable[[], None], config_name: str) -> None:
    """Pre-check ``sys.argv`` then hand over to the ``@hydra.main`` function ``main``."""
    report_user_errors(precheck, sys.argv[1:], config_name)
    main()


def report_user_errors(fn: Callable[..., Any], *args, **kwargs) -> Any:
    """Run ``fn``; a ``UserError`` (or running out of GPU memory) becomes one line on stderr and exit status 2,
    a SIGTERM that Lightning turned into an exception a clean exit with status 143."""
    try:
        return fn(*args, **kwargs)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except SystemExit as e:
        if type(e).__name__ != "SIGTERMException":  # Lightning's; not imported here to keep errors fast
            raise
        print("stopped by SIGTERM; checkpoints/last.ckpt holds the state to resume from", file=sys.stderr)
        sys.exit(143)
    except RuntimeError as e:  # torch.OutOfMemoryError is a RuntimeError
        if type(e).__name__ != "OutOfMemoryError":
            raise
        print("error: out of GPU memory: lower data.batch_size (or the model's width) and run again",
              file=sys.stderr)
        sys.exit(2)
