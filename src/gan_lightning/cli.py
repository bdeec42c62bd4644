"""What the entry points share: user errors as one line on stderr and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .errors import UserError


def report_user_errors(fn: Callable[..., Any], *args, **kwargs) -> Any:
    try:
        return fn(*args, **kwargs)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
