"""The GAN losses on keras.ops (one definition for TensorFlow and JAX). Each returns the SUM of
per-example losses divided by the GLOBAL batch, so summing over replicas gives the mean and
results do not change with the replica count."""

from __future__ import annotations

from typing import Any


def d_loss(kind: str, real_logits: Any, fake_logits: Any, real_labels: Any,
           global_batch: int) -> Any:
    from keras import ops

    if kind == "hinge":
        per = ops.relu(1.0 - real_logits) + ops.relu(1.0 + fake_logits)
    else:  # non-saturating: BCE, real labels possibly smoothed
        per = (ops.binary_crossentropy(real_labels, real_logits, from_logits=True)
               + ops.binary_crossentropy(ops.zeros_like(fake_logits), fake_logits,
                                         from_logits=True))
    return ops.sum(ops.cast(per, "float32")) / global_batch


def g_loss(kind: str, fake_logits: Any, global_batch: int) -> Any:
    from keras import ops

    if kind == "hinge":
        per = -fake_logits
    else:
        per = ops.binary_crossentropy(ops.ones_like(fake_logits), fake_logits, from_logits=True)
    return ops.sum(ops.cast(per, "float32")) / global_batch
