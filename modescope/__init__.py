"""modescope: curate a GAN's training images and inspect its modes."""
__version__ = "0.1.0"
