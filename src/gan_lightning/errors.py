"""Errors the user can fix: reported as one line, never as a traceback."""


class UserError(Exception):
    """A problem with the user's input (config, data, checkpoint) and what to do about it.

    Entry points print ``error: <message>`` on stderr and exit with status 2.
    """


class TrainingDiverged(UserError):
    """A loss became NaN or infinite; training stopped before the bad step touched weights or checkpoints."""


class BadDataFile(UserError):
    """A training file could not be decoded mid-run (``data.bad_files=error``); the run saves ``last.ckpt`` at the
    batch before it, so that a resumed run continues where this one stopped."""
