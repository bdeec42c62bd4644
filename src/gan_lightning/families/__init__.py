"""The GAN families, one a file: ``gan`` (FCGAN, DCGAN), ``class_conditional`` (CGAN, ACGAN), ``infogan``."""
