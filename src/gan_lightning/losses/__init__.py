"""Losses: the adversarial objectives (``adversarial``) and input-gradient penalties (``penalties``).

Re-exported here under the names configs and checkpoints use: ``gan_lightning.losses.NonSaturating`` etc.
"""

from .adversarial import LOSSES, GANLoss, Hinge, LeastSquares, Minimax, NonSaturating, Wasserstein, WassersteinGP
from .penalties import gradient_penalty

__all__ = ["LOSSES", "GANLoss", "Hinge", "LeastSquares", "Minimax", "NonSaturating", "Wasserstein",
           "WassersteinGP", "gradient_penalty"]
