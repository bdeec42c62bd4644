"""Running training: ``build`` (config -> family and module), ``fit`` (one run), ``jobs`` (Hydra jobs, sweeps),
``checkpoints`` (read, resume, rebuild for sampling), ``loggers`` (W&B)."""
