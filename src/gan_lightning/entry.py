"""Hydra entry points with checks before launch: a bad override is one line on stderr, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from .cli import report_user_errors
from .config import CONF_DIR, check_overrides, one_line, validate
from .errors import UserError

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
            cfg = compose(config_name, overrides=first)
    except (HydraException, OmegaConfBaseException) as e:
        raise UserError(one_line(str(e))) from None
    finally:
        GlobalHydra.instance().clear()
    validate(cfg)


def run(main: Callable[[], None], config_name: str) -> None:
    """Pre-check ``sys.argv`` then hand over to the ``@hydra.main`` function ``main``."""
    report_user_errors(precheck, sys.argv[1:], config_name)
    main()
