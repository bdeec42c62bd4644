"""What the entry points share: user errors as one line on stderr and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .errors import UserError


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
