"""Configs: composing them (``compose``), checking them before any work (``checks``), the entry points' pre-checks
and one-line errors (``entry``)."""

from .checks import (ALLOWED_TARGET_PREFIXES, RULES, builds_object, check_targets, is_int, is_number, one_line,
                     validate)
from .compose import CONF_DIR, check_choice, check_overrides, compose_config, group_options

__all__ = ["ALLOWED_TARGET_PREFIXES", "CONF_DIR", "RULES", "builds_object", "check_choice", "check_overrides",
           "check_targets", "compose_config", "group_options", "is_int", "is_number", "one_line", "validate"]
