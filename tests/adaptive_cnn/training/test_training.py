"""Deterministic training, accuracy on real (small) data, and the training cache."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive_cnn.errors import ConfigError
from adaptive_cnn.training import TrainConfig, TrainingCache, train
from adaptive_cnn.training import trainer as trainer_module

SMALL = "c16k3p-c32k3p-fc64"
QUICK = TrainConfig(epochs=2, batch_size=64)


@pytest.mark.slow
def test_digits_reaches_90_percent_test_accuracy(digits):
    result = train(SMALL, digits, TrainConfig(epochs=15, batch_size=32, lr=3e-3), seed=0, threads=1)
    assert result.test_accuracy > 0.90
    assert result.val_probs.shape == (len(digits.val), 10)
    assert result.test_probs.dtype == np.float32
    np.testing.assert_allclose(result.test_probs.sum(axis=1), 1.0, rtol=1e-5)
    expected = float(np.mean(result.test_probs.argmax(axis=1) == digits.test.labels))
    assert result.test_accuracy == expected


def test_same_seed_same_weights_and_probabilities(digits):
    first = train(SMALL, digits, QUICK, seed=3, threads=1)
    second = train(SMALL, digits, QUICK, seed=3, threads=1)
    np.testing.assert_array_equal(first.val_probs, second.val_probs)
    for name, tensor in first.state_dict.items():
        assert np.array_equal(tensor.numpy(), second.state_dict[name].numpy()), name
    other = train(SMALL, digits, QUICK, seed=4, threads=1)
    assert not np.array_equal(first.val_probs, other.val_probs)


def test_cache_hit_trains_nothing(digits, cache, monkeypatch):
    first = train(SMALL, digits, QUICK, seed=0, threads=1, cache=cache)
    assert not first.cache_hit

    def must_not_train(*args, **kwargs):
        raise AssertionError("a cache hit must not train")

    monkeypatch.setattr(trainer_module, "_train_uncached", must_not_train)
    again = train(SMALL, digits, QUICK, seed=0, threads=1, cache=cache)
    assert again.cache_hit
    assert again.cache_key == first.cache_key
    assert again.train_seconds == first.train_seconds
    np.testing.assert_array_equal(again.test_probs, first.test_probs)
    for name, tensor in first.state_dict.items():
        assert np.array_equal(tensor.numpy(), again.state_dict[name].numpy()), name


def test_key_covers_config_seed_and_split(digits, cache):
    base = train(SMALL, digits, QUICK, seed=0, threads=1, cache=cache)
    keys = {
        base.cache_key,
        train(
            SMALL, digits, TrainConfig(epochs=1, batch_size=64), seed=0, threads=1, cache=cache
        ).cache_key,
        train(SMALL, digits, QUICK, seed=1, threads=1, cache=cache).cache_key,
    }
    assert len(keys) == 3
    # the same budget written as an int or a float is the same training (a cache hit)
    as_floats = TrainConfig(epochs=2.0, batch_size=64.0)
    again = train(SMALL, digits, as_floats, seed=0, threads=1, cache=cache)
    assert again.cache_hit and again.cache_key == base.cache_key


def test_subset_budget_trains_on_fewer_images(digits):
    steps = []
    train(
        SMALL,
        digits,
        TrainConfig(epochs=1, subset=128, batch_size=64),
        threads=1,
        progress=lambda p: steps.append(p.total_steps),
    )
    assert steps and steps[-1] == 2  # 128 images / 64 per step


def test_fractional_epochs(digits):
    steps = []
    full = -(-len(digits.train) // 64)
    train(
        SMALL,
        digits,
        TrainConfig(epochs=0.5, batch_size=64),
        threads=1,
        progress=lambda p: steps.append(p.total_steps),
    )
    assert steps[-1] == round(0.5 * full)


def test_failed_write_leaves_no_entry(digits, cache, monkeypatch):
    from adaptive_cnn.training import cache as cache_module

    def crash(folder, result):
        (folder / "weights.pt").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(cache_module, "_write_entry", crash)
    with pytest.raises(OSError):
        train(SMALL, digits, QUICK, threads=1, cache=cache)
    monkeypatch.undo()
    result = train(SMALL, digits, QUICK, threads=1, cache=cache)
    assert not result.cache_hit  # nothing half-written was taken as an entry


def test_unreadable_entry_is_ignored_and_retrained(digits, cache):
    first = train(SMALL, digits, QUICK, threads=1, cache=cache)
    entry = cache.root / "entries" / first.cache_key[:2] / first.cache_key
    (entry / "val_probs.npy").write_bytes(b"not numpy")
    with pytest.warns(UserWarning, match="unreadable cache entry"):
        assert cache.load(first.cache_key) is None


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ConfigError, match="unknown training setting 'epoch'"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ConfigError, match="epochs must be > 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="subset"):
        TrainConfig(subset=0)
    assert TrainConfig.from_dict(TrainConfig(epochs=2.5, subset=10).to_dict()) == TrainConfig(
        epochs=2.5, subset=10
    )
    assert TrainConfig(epochs=3, subset=4000.0).to_dict() == TrainConfig(3.0, 4000).to_dict()
    assert type(TrainConfig(epochs=3).epochs) is float
    assert type(TrainConfig(subset=9.0).subset) is int
    for bad in ({"subset": 10.5}, {"batch_size": 1.5}, {"epochs": "three"}, {"lr": True}):
        with pytest.raises(ConfigError, match="must be a"):
            TrainConfig(**bad)


def test_cache_root_that_is_a_file_is_a_clear_error(digits, tmp_path):
    from adaptive_cnn.errors import CacheError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CacheError, match="cannot write the training cache"):
        train(SMALL, digits, TrainConfig(epochs=0.1), threads=1, cache=TrainingCache(blocker))


def test_each_family_keys_its_training_on_its_own_sources():
    """Editing one family's module must not invalidate another family's cached training."""
    import inspect
    from pathlib import Path

    from adaptive_cnn.networks import get_family, list_networks
    from adaptive_cnn.training import code_version
    from adaptive_cnn.training.trainer import FAMILY_SOURCES

    for name in list_networks():
        module = Path(inspect.getfile(type(get_family(name)))).name
        assert module in FAMILY_SOURCES[name]  # a new family must declare its own modules
    versions = {code_version(name) for name in FAMILY_SOURCES}
    assert len(versions) == len(FAMILY_SOURCES) and code_version() not in versions
    assert code_version("conv") == code_version("conv")


def test_fine_tuning_starts_from_the_given_weights(digits, cache):
    trained = train(SMALL, digits, QUICK, seed=0, threads=1, cache=cache)
    # a learning rate too small to move anything: the result is the initial weights' own
    still = TrainConfig(epochs=0.1, batch_size=64, lr=1e-12, weight_decay=0.0)
    tuned = train(
        SMALL, digits, still, seed=5, threads=1, cache=cache, init_state=trained.state_dict
    )
    np.testing.assert_allclose(tuned.val_probs, trained.val_probs, atol=1e-4)
    assert tuned.val_accuracy == trained.val_accuracy
    scratch = train(SMALL, digits, still, seed=5, threads=1, cache=cache)
    assert scratch.val_accuracy < trained.val_accuracy - 0.2  # untrained: near chance
    assert len({tuned.cache_key, scratch.cache_key}) == 2  # the weights are in the key
    again = train(
        SMALL, digits, still, seed=5, threads=1, cache=cache, init_state=trained.state_dict
    )
    assert again.cache_hit and again.cache_key == tuned.cache_key


def test_initial_weights_of_another_network_are_a_one_line_error(digits):
    other = train("c8k3p-fc32", digits, TrainConfig(epochs=0.1, batch_size=64), seed=0, threads=1)
    with pytest.raises(ConfigError, match="do not fit") as info:
        train(SMALL, digits, QUICK, seed=0, threads=1, init_state=other.state_dict)
    assert "\n" not in str(info.value)
