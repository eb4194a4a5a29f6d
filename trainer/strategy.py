"""tf.distribute strategy by what the machine has: TPU -> multi-worker -> mirrored -> default.

- ``--tpu ADDRESS|local``: TPUStrategy (a Cloud TPU VM is ``local``; a TPU node its grpc address).
- ``TF_CONFIG`` naming more than one task: MultiWorkerMirroredStrategy. Only the chief (task
  ``chief``, or ``worker`` 0 when there is no chief) writes the run folder; the other workers
  write to a temporary folder (the keras-io multi-worker guide's rule).
- more than one GPU: MirroredStrategy; otherwise the default (one device) strategy.
The JAX backend has none of these: it trains on one device (docs/training.md).
``is_chief`` and ``describe`` read only the environment, without importing TensorFlow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any


def cluster(env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    raw = (os.environ if env is None else env).get("TF_CONFIG")
    if not raw:
        return None
    try:
        conf = json.loads(raw)
        tasks = sum(len(v) for v in conf.get("cluster", {}).values())
        task = conf["task"]
        return {"tasks": tasks, "type": task["type"], "index": int(task["index"]),
                "has_chief": bool(conf["cluster"].get("chief"))}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("TF_CONFIG is not valid JSON with cluster and task "
                         "(see the keras-io multi-worker guide); fix or unset it") from None


def is_chief(env: Mapping[str, str] | None = None) -> bool:
    info = cluster(env)
    if info is None or info["tasks"] <= 1:
        return True
    if info["has_chief"]:
        return bool(info["type"] == "chief")
    return bool(info["type"] == "worker" and info["index"] == 0)


def choose(tpu: str | None = None) -> Any:
    """The strategy to build models and run steps under (TensorFlow backend only)."""
    import tensorflow as tf

    if tpu:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu="" if tpu == "local" else tpu)
        if tpu != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    info = cluster()
    if info is not None and info["tasks"] > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def describe(strategy: Any) -> str:
    import tensorflow as tf

    kinds = (("TPUStrategy", tf.distribute.TPUStrategy),
             ("MultiWorkerMirroredStrategy", tf.distribute.MultiWorkerMirroredStrategy),
             ("MirroredStrategy", tf.distribute.MirroredStrategy))
    name = next((n for n, cls in kinds if isinstance(strategy, cls)), "default strategy")
    return f"{name} with {strategy.num_replicas_in_sync} replica(s)"
