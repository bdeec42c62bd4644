"""Compare the runs of a sweep: `python report.py multirun/<date>/<time>` writes report.png and report.md there."""

import sys

from gan_lightning.config.entry import report_user_errors
from gan_lightning.report import main

if __name__ == "__main__":
    report_user_errors(main, sys.argv[1:])
