"""Peers the benchmarks compare against, re-implemented here from their published sources
(each module cites what it follows and lists where it differs), so that anyone who clones the
repository reproduces the ratios: ``keras_dcgan`` (the keras.io DCGAN example, TensorFlow) and
``torch_dcgan`` (the PyTorch examples DCGAN; needs torch, imported only when built)."""
