"""GAN experiments with PyTorch Lightning and Hydra."""
