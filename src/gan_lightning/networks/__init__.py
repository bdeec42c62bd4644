"""Plain ``nn.Module`` networks, one family a file. They know nothing of Lightning, Hydra or losses."""
