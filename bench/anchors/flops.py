"""Forward FLOPs (2 x multiply-adds) per image of convolution and dense layers, counted from
their shapes; the training-step totals built on them are derived in docs/training.md."""

from __future__ import annotations

from typing import Any


def conv_flops(out_hw: int, cout: int, cin: int, kernel: int) -> float:
    """A convolution: every output pixel x kernel window x input channels x output channels."""
    return 2.0 * out_hw * out_hw * cout * kernel * kernel * cin


def deconv_flops(in_hw: int, cin: int, cout: int, kernel: int) -> float:
    """A transposed convolution: every input pixel scatters a kernel window to every output
    channel."""
    return 2.0 * in_hw * in_hw * cin * kernel * kernel * cout


def layer_flops(model: Any) -> list[float]:
    """Forward FLOPs per image of each Dense, Conv2D and Conv2DTranspose layer of a built Keras
    model, in order; other layers (batch norm, activations, dropout, the loss) are not
    counted."""
    from keras import layers

    out = []
    for layer in model.layers:
        k = layer.kernel_size[0] if hasattr(layer, "kernel_size") else 0
        if isinstance(layer, layers.Conv2DTranspose):
            _, h, w, cin = layer.input.shape
            out.append(2.0 * h * w * cin * layer.kernel_size[1] * k * layer.filters)
        elif isinstance(layer, layers.Conv2D):
            _, h, w, cout = layer.output.shape
            out.append(2.0 * h * w * cout * layer.kernel_size[1] * k * layer.input.shape[-1])
        elif isinstance(layer, layers.Dense):
            out.append(2.0 * layer.input.shape[-1] * layer.units)
    return out
