"""GAN metrics: FID, KID, IS, precision/recall and class coverage, during training and from checkpoints; paired
metrics (PSNR, SSIM, L1) for families that generate from a source with a target; label and code accuracy for
class-conditional and latent-code families; mode coverage for 2-D mixtures.

Every number says how it was made: the feature space (Inception-v3 or the project's domain classifier, with the
weights' sha256), the resize, the reference split and size, the sample count and seed, the library versions.
See docs/metrics.md. (Nothing is imported here, so that ``gan_lightning.metrics.mixtures`` and the other leaves
load without the callback and its Lightning imports.)
"""
