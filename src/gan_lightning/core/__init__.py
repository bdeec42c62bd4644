"""The seam: ``family`` (what a GAN family declares) and ``module`` (the LightningModule that runs any family)."""
