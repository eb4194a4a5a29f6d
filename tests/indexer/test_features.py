"""VGG16 descriptors: shapes, determinism, Keras's preprocessing, every weights mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modescope.core.errors import ModescopeError
from modescope.indexer.features import (
    Extractor,
    FeatureSpec,
    WeightsUnavailable,
    adaptive_avg_grid,
    build_trunk,
    preprocess,
)

pytestmark = pytest.mark.slow  # Keras VGG16 in this process


def images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def extractor() -> Extractor:
    return Extractor(FeatureSpec(weights="random", seed=3, input_size=32), batch_size=4)


def test_descriptors_are_unit_vectors_of_fixed_size(extractor: Extractor) -> None:
    for size in (32, 64):  # the input is resized to the VGG input size in the graph
        out = extractor(images(6, size))
        assert set(out) == {"block1", "block5"}
        assert out["block1"].shape == (6, 1024) and out["block5"].shape == (6, 1024)
        for v in out.values():
            assert v.dtype == np.float32
            np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_results(extractor: Extractor) -> None:
    x = images(7, 32, seed=1)
    whole = extractor(x)
    one_by_one = [extractor(x[i:i + 1]) for i in range(7)]
    for layer in ("block1", "block5"):
        np.testing.assert_allclose(
            whole[layer], np.concatenate([o[layer] for o in one_by_one]), atol=1e-5)


def test_same_seed_same_features_other_seed_other_features() -> None:
    x = images(2, 32, seed=2)
    a = Extractor(FeatureSpec(weights="random", seed=5, input_size=32))(x)
    b = Extractor(FeatureSpec(weights="random", seed=5, input_size=32))(x)
    c = Extractor(FeatureSpec(weights="random", seed=6, input_size=32))(x)
    np.testing.assert_allclose(a["block5"], b["block5"], atol=1e-6)
    assert not np.allclose(a["block5"], c["block5"], atol=1e-3)


def test_preprocess_is_keras_vgg16_preprocess_input(extractor: Extractor) -> None:
    x = images(1, 8)
    out = preprocess(x)
    expected = x[..., ::-1].astype(np.float32) - np.array([103.939, 116.779, 123.68], np.float32)
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # the graph's own preprocessing layer does the same to uint8 input
    layer = extractor.model.get_layer("vgg16_preprocess")
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=1e-4)


def test_adaptive_grid_matches_numpy() -> None:
    from modescope.indexer.backend import keras_module

    ops = keras_module().ops
    x = np.random.default_rng(0).random((2, 7, 7, 3)).astype(np.float32)
    got = np.asarray(adaptive_avg_grid(ops, x, 2))
    cells = [x[:, 0:4, 0:4], x[:, 0:4, 3:7], x[:, 3:7, 0:4], x[:, 3:7, 3:7]]
    np.testing.assert_allclose(got, np.concatenate([c.mean(axis=(1, 2)) for c in cells], -1),
                               atol=1e-6)
    one = np.asarray(adaptive_avg_grid(ops, x[:, :1, :1], 4))  # smaller than the grid
    np.testing.assert_allclose(one, np.tile(x[:, 0, 0], 16), atol=1e-6)


def test_weights_file_gives_the_same_features_as_its_source(tmp_path: Path) -> None:
    trunk = build_trunk(FeatureSpec(weights="random", seed=9, input_size=32))
    path = tmp_path / "vgg16-notop.weights.h5"
    trunk.save_weights(str(path))
    x = images(3, 32, seed=4)
    from_file = Extractor(FeatureSpec(weights=str(path), input_size=32))(x)
    from_seed = Extractor(FeatureSpec(weights="random", seed=9, input_size=32))(x)
    np.testing.assert_allclose(from_file["block1"], from_seed["block1"], atol=1e-6)
    assert FeatureSpec(weights=str(path)).as_json()["weights_sha256"]


def test_bad_weights_files_fail_in_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ModescopeError, match="no such file"):
        build_trunk(FeatureSpec(weights=str(tmp_path / "missing.h5"), input_size=32))
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ModescopeError, match="does not fit VGG16"):
        build_trunk(FeatureSpec(weights=str(junk), input_size=32))


def test_imagenet_unavailable_names_both_alternatives(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With an empty Keras cache and no network, the download fails fast and says what to do."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    import keras

    monkeypatch.setattr(keras.config, "keras_home", lambda: str(tmp_path / "keras-home"),
                        raising=False)
    try:
        build_trunk(FeatureSpec(weights="imagenet", input_size=32))
    except WeightsUnavailable as exc:
        assert "--weights PATH" in str(exc) and "--weights random" in str(exc)
        assert exc.exit_code == 3
    else:
        pytest.skip("ImageNet weights were downloadable or cached: nothing to test here")


def test_spec_validation() -> None:
    with pytest.raises(ModescopeError, match="multiple of 32"):
        FeatureSpec(input_size=100)
    with pytest.raises(ModescopeError, match="unknown pooling"):
        FeatureSpec(pooling={"block1": "nope", "block5": "gap"})
    with pytest.raises(ModescopeError, match="over 2048"):
        FeatureSpec(pooling={"block1": "grid4", "block5": "grid4"})


def test_inputs_are_checked(extractor: Extractor) -> None:
    with pytest.raises(TypeError, match="uint8"):
        extractor(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        extractor(np.zeros((32, 32, 3), np.uint8))
