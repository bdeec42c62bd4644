"""The command documented before the metrics moved into ``gan_lightning.metrics``: ``python -m
gan_lightning.metrics_conditional CKPT ...`` runs ``python -m gan_lightning.metrics.conditional CKPT ...``."""

import sys

from gan_lightning.metrics.conditional import main

if __name__ == "__main__":
    main(sys.argv[1:])
