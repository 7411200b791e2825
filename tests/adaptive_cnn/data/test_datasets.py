"""Tests of the dataset loaders (adaptive_cnn.data) on small files written in each format."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from adaptive_cnn.data import (
    DEFAULT_DATASET,
    carve,
    fingerprint,
    list_datasets,
    load_dataset,
    preprocessing_stats,
    read_idx,
    write_idx,
)
from adaptive_cnn.data.cifar import load_pickle
from adaptive_cnn.data.idx import is_gzip, read_idx_header
from adaptive_cnn.data.splits import STD_FLOOR, carve_indices
from adaptive_cnn.data.types import ImageSet
from adaptive_cnn.errors import ConfigError, DatasetFormatError, DatasetNotFoundError

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


# ---------------------------------------------------------------- helpers


def _tagged_images(n: int, c: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Random uint8 images whose first two pixels encode their index (to trace splits)."""
    images = rng.integers(0, 256, size=(n, c, h, w), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256
    images[:, 0, 0, 1] = np.arange(n) // 256
    return images


def _tags(images: np.ndarray) -> np.ndarray:
    return images[:, 0, 0, 0].astype(np.int64) + 256 * images[:, 0, 0, 1].astype(np.int64)


def _balanced_labels(n: int, num_classes: int = 10) -> np.ndarray:
    return (np.arange(n) % num_classes).astype(np.uint8)


def write_mnist_folder(folder: Path, n_train: int = 200, n_test: int = 50, gz: bool = True):
    """Write the four MNIST-format IDX files; return (train_images, train_labels, test...)."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": _tagged_images(n_train, 1, 28, 28, rng)[:, 0],
        "train_labels": _balanced_labels(n_train),
        "test_images": _tagged_images(n_test, 1, 28, 28, rng)[:, 0],
        "test_labels": _balanced_labels(n_test),
    }
    for role, array in arrays.items():
        name = IDX_NAMES[role] + (".gz" if gz else "")
        write_idx(folder / name, array, gzip=gz)
    return arrays


def write_cifar_folder(parent: Path, per_batch: int = 20, protocol: int = 2) -> dict:
    """Write a fake cifar-10-batches-py folder with CIFAR's bytes-keyed dicts."""
    folder = parent / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
            b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"img{i}.png".encode() for i in range(per_batch)],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=protocol)
        batches[name] = batch
    meta = {
        b"num_cases_per_batch": per_batch,
        b"label_names": [
            n.encode() for n in "plane car bird cat deer dog frog horse ship truck".split()
        ],
        b"num_vis": 3072,
    }
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=protocol)
    return batches


def _save_image(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


# ---------------------------------------------------------------- IDX format


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path: Path, gz: bool, dtype: type) -> None:
    array = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / "a", array, gzip=gz)
    back = read_idx(tmp_path / "a")
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 5)
    np.testing.assert_array_equal(back, array)
    assert back.flags.c_contiguous and back.flags.writeable


def test_idx_layout_matches_spec(tmp_path: Path) -> None:
    # Hand-written bytes: magic 00 00 08 02, dims 2 and 3 big-endian, then 6 values.
    raw = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    (tmp_path / "hand").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "hand"), [[1, 2, 3], [4, 5, 6]])
    write_idx(tmp_path / "written", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8))
    assert (tmp_path / "written").read_bytes() == raw


def test_idx_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "compressed-but-plain-name", array, gzip=True)
    write_idx(tmp_path / "plain-but-named.gz", array, gzip=False)
    assert is_gzip(tmp_path / "compressed-but-plain-name")
    assert not is_gzip(tmp_path / "plain-but-named.gz")
    for name in ("compressed-but-plain-name", "plain-but-named.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)


def test_idx_header_only(tmp_path: Path) -> None:
    write_idx(tmp_path / "x.gz", np.zeros((7, 4, 5), dtype=np.uint8), gzip=True)
    dtype, shape = read_idx_header(tmp_path / "x.gz")
    assert dtype == np.uint8 and shape == (7, 4, 5)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (bytes([1, 0, 8, 1, 0, 0, 0, 2, 5, 6]), "not an IDX file"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 2, 5, 6]), "unknown dtype code 0x42"),
        (bytes([0, 0, 8, 0, 5, 6]), "0 dimensions"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 2, 5, 6]), "truncated in its dimensions"),
        (bytes([0, 0]), "truncated in its header"),
    ],
)
def test_idx_bad_header(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(DatasetFormatError, match=fragment) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_or_oversized_data(tmp_path: Path, gz: bool) -> None:
    header = bytes([0, 0, 8, 2, 0, 0, 0, 10, 0, 0, 0, 10])
    opener = gzip.open if gz else open
    with opener(tmp_path / "short", "wb") as f:
        f.write(header + bytes(99))
    with opener(tmp_path / "long", "wb") as f:
        f.write(header + bytes(101))
    with pytest.raises(DatasetFormatError, match="truncated.*100 data bytes.*99"):
        read_idx(tmp_path / "short")
    with pytest.raises(DatasetFormatError, match="bytes after"):
        read_idx(tmp_path / "long")


def test_idx_corrupt_gzip_stream(tmp_path: Path) -> None:
    write_idx(tmp_path / "x.gz", np.arange(5000, dtype=np.int32), gzip=True)
    data = (tmp_path / "x.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError, match="cut.gz"):
        read_idx(tmp_path / "cut.gz")


# ---------------------------------------------------------------- MNIST-format datasets


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_loader_on_written_files(tmp_path: Path, gz: bool) -> None:
    arrays = write_mnist_folder(tmp_path / "fm", n_train=200, n_test=50, gz=gz)
    s = load_dataset("fashion-mnist", data_dir=tmp_path / "fm", seed=3, val_fraction=0.1)
    assert (len(s.train), len(s.val), len(s.test)) == (180, 20, 50)
    assert s.input_shape == (1, 28, 28) and s.num_classes == 10
    assert s.class_names[0] == "T-shirt/top" and s.class_names[9] == "Ankle boot"
    for part in (s.train, s.val, s.test):
        assert part.images.dtype == np.uint8 and part.labels.dtype == np.int64
        assert part.images.flags.c_contiguous
    # The official test set is kept whole and in order.
    np.testing.assert_array_equal(s.test.images[:, 0], arrays["test_images"])
    # Train and val partition the official training set, with each image's own label.
    tags = np.concatenate([_tags(s.train.images), _tags(s.val.images)])
    assert sorted(tags) == list(range(200))
    np.testing.assert_array_equal(
        s.train.images[:, 0], arrays["train_images"][_tags(s.train.images)]
    )
    np.testing.assert_array_equal(s.val.labels, arrays["train_labels"][_tags(s.val.images)])
    assert s.source == str(tmp_path / "fm") and s.split_seed == 3


def test_fashion_mnist_dir_from_environment(tmp_path: Path, monkeypatch) -> None:
    write_mnist_folder(tmp_path / "env", n_train=40, n_test=10)
    monkeypatch.setenv("ACNN_FASHION_MNIST_DIR", str(tmp_path / "env"))
    s = load_dataset("fashion-mnist", val_fraction=4)
    assert (len(s.train), len(s.val), len(s.test)) == (36, 4, 10)


def test_mnist_uses_digit_names(tmp_path: Path) -> None:
    write_mnist_folder(tmp_path / "m", n_train=40, n_test=10, gz=False)
    s = load_dataset("mnist", data_dir=tmp_path / "m")
    assert s.class_names == tuple("0123456789")


def test_missing_folder_says_how_to_get_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ACNN_FASHION_MNIST_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", data_dir=tmp_path / "nowhere")
    message = str(info.value)
    assert "apt-get install -y dataset-fashion-mnist" in message
    assert "--data-dir" in message and str(tmp_path / "nowhere") in message
    assert "\n" not in message


def test_missing_one_file_is_named(tmp_path: Path) -> None:
    write_mnist_folder(tmp_path / "fm", n_train=20, n_test=10)
    (tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\]"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "fm")


def test_label_count_mismatch(tmp_path: Path) -> None:
    write_mnist_folder(tmp_path / "fm", n_train=20, n_test=10)
    write_idx(tmp_path / "fm" / "train-labels-idx1-ubyte.gz", _balanced_labels(19), gzip=True)
    with pytest.raises(DatasetFormatError, match="19 labels but .* 20 images"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "fm")


def test_corrupt_idx_in_dataset_is_named(tmp_path: Path) -> None:
    write_mnist_folder(tmp_path / "fm", n_train=20, n_test=10)
    path = tmp_path / "fm" / "t10k-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28]) + bytes(100))
    with pytest.raises(DatasetFormatError, match="t10k-images-idx3-ubyte.gz is truncated"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "fm")


# ---------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL])
@pytest.mark.parametrize("point_at", ["parent", "folder"])
def test_cifar10_loader(tmp_path: Path, protocol: int, point_at: str) -> None:
    batches = write_cifar_folder(tmp_path, per_batch=20, protocol=protocol)
    data_dir = tmp_path if point_at == "parent" else tmp_path / "cifar-10-batches-py"
    s = load_dataset("cifar10", data_dir=data_dir, val_fraction=0.1, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (90, 10, 20)
    assert s.input_shape == (3, 32, 32) and s.class_names[0] == "plane"
    # CIFAR rows are 1024 red, then 1024 green, then 1024 blue values, row-major.
    test = batches["test_batch"]
    np.testing.assert_array_equal(s.test.images[:, 1].reshape(20, -1), test[b"data"][:, 1024:2048])
    np.testing.assert_array_equal(s.test.labels, test[b"labels"])
    all_train = np.concatenate([batches[f"data_batch_{i}"][b"data"] for i in range(1, 6)])
    got = np.concatenate([s.train.images, s.val.images]).reshape(100, -1)
    assert sorted(map(bytes, got)) == sorted(map(bytes, all_train))


def test_cifar_numpy1_global_names(tmp_path: Path) -> None:
    # The published CIFAR files name numpy.core.multiarray._reconstruct (numpy 1.x).
    batch = {b"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072), b"labels": [1, 0]}
    data = pickle.dumps(batch, protocol=2)
    for new in (b"numpy._core.multiarray", b"numpy.core.multiarray"):
        data = data.replace(b"c" + new + b"\n", b"cnumpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\n_reconstruct" in data
    (tmp_path / "b").write_bytes(data)
    loaded = load_pickle(tmp_path / "b")
    np.testing.assert_array_equal(loaded[b"data"], batch[b"data"])


class _RunsCommand:
    """Pickles as a call to os.system, as a malicious file would."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _crafted_global_pickle(module: str, name: str, arg: str) -> bytes:
    """Protocol-0 pickle calling ``module.name(arg)``, written by hand."""
    return f"c{module}\n{name}\n(S'{arg}'\ntR.".encode()


@pytest.mark.parametrize("how", ["reduce", "os.system", "builtins.eval"])
def test_cifar_forbidden_global_is_not_executed(tmp_path: Path, how: str) -> None:
    write_cifar_folder(tmp_path, per_batch=4)
    marker = tmp_path / "pwned"
    command = f"touch {marker}"
    target = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    if how == "reduce":
        target.write_bytes(pickle.dumps({b"data": _RunsCommand(command), b"labels": []}))
    elif how == "os.system":
        target.write_bytes(_crafted_global_pickle("os", "system", command))
    else:
        code = f'__import__("os").system("{command}")'
        target.write_bytes(_crafted_global_pickle("builtins", "eval", code))
    with pytest.raises(DatasetFormatError, match="refused") as info:
        load_dataset("cifar10", data_dir=tmp_path)
    assert "data_batch_3" in str(info.value)
    assert not marker.exists()


def test_cifar_garbage_pickle(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"\x80\x02not a pickle at all")
    with pytest.raises(DatasetFormatError, match="junk"):
        load_pickle(tmp_path / "junk")


def test_cifar_wrong_data_shape(tmp_path: Path) -> None:
    write_cifar_folder(tmp_path, per_batch=4)
    bad = {b"data": np.zeros((4, 100), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(bad))
    with pytest.raises(DatasetFormatError, match="test_batch"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar_needs_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10")
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load_dataset("cifar10", data_dir=tmp_path)


# ---------------------------------------------------------------- image folders


def _gray(value: int, size: tuple[int, int] = (6, 5)) -> np.ndarray:
    return np.full(size, value, dtype=np.uint8)


def test_imagefolder_grayscale_png_and_jpeg(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    for i in range(10):
        _save_image(root / "cat" / f"{i}.png", _gray(10 + i))
        _save_image(root / "dog" / f"{i}.JPG", _gray(200))
    (root / "dog" / "notes.txt").write_text("ignored")
    s = load_dataset("imagefolder", data_dir=root, test_fraction=0.2, val_fraction=0.25)
    assert s.class_names == ("cat", "dog")
    assert s.input_shape == (1, 6, 5)
    assert (len(s.train), len(s.val), len(s.test)) == (12, 4, 4)
    everything = np.concatenate([s.train.images, s.val.images, s.test.images])
    labels = np.concatenate([s.train.labels, s.val.labels, s.test.labels])
    # PNG is lossless: every cat image comes back exactly once with label 0.
    assert sorted(int(v) for v in everything[labels == 0][:, 0, 0, 0]) == list(range(10, 20))
    assert np.all(np.abs(everything[labels == 1].astype(int) - 200) <= 2)  # JPEG is lossy
    for part in (s.train, s.val, s.test):
        assert np.bincount(part.labels, minlength=2).tolist() == [len(part) // 2] * 2


def test_imagefolder_official_splits_and_rgb(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 2] = 255, 7
    for split, n in (("train", 6), ("test", 2)):
        for i in range(n):
            _save_image(root / split / "a" / f"{i}.png", _gray(i, (4, 4)))
            _save_image(root / split / "b" / f"{i}.png", rgb)
    s = load_dataset("imagefolder", data_dir=root, val_fraction=2)
    assert s.input_shape == (3, 4, 4)
    assert (len(s.train), len(s.val), len(s.test)) == (10, 2, 4)
    blue = s.test.images[s.test.labels == 1][:, 2]
    assert np.all(blue == 7)
    gray = s.test.images[s.test.labels == 0]
    assert np.all(gray[:, 0] == gray[:, 1]) and np.all(gray[:, 1] == gray[:, 2])


def test_imagefolder_sizes_differ(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    for i in range(5):
        _save_image(root / "a" / f"{i}.png", _gray(0, (8, 8)))
        _save_image(root / "b" / f"{i}.png", _gray(0, (8, 12)))
    with pytest.raises(ConfigError, match="--image-size"):
        load_dataset("imagefolder", data_dir=root)
    s = load_dataset("imagefolder", data_dir=root, image_size=(5, 7))
    assert s.input_shape == (1, 5, 7)


def test_imagefolder_unreadable_image_is_named(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    for i in range(4):
        _save_image(root / "a" / f"{i}.png", _gray(0))
        _save_image(root / "b" / f"{i}.png", _gray(1))
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DatasetFormatError, match="broken.png"):
        load_dataset("imagefolder", data_dir=root)


def test_imagefolder_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--data-dir"):
        load_dataset("imagefolder")
    with pytest.raises(DatasetNotFoundError, match="not a folder"):
        load_dataset("imagefolder", data_dir=tmp_path / "missing")


# ---------------------------------------------------------------- digits


def test_digits() -> None:
    s = load_dataset("digits", seed=0, test_fraction=0.2, val_fraction=0.1)
    assert len(s.train) + len(s.val) + len(s.test) == 1797
    assert len(s.test) == round(0.2 * 1797) and len(s.val) == round(0.1 * (1797 - len(s.test)))
    assert s.input_shape == (1, 8, 8) and s.class_names == tuple("0123456789")
    assert s.preprocessing.pixel_max == 16
    assert s.train.images.dtype == np.uint8 and int(s.train.images.max()) == 16


# ---------------------------------------------------------------- splits


def test_same_seed_same_split_different_seed_different_val() -> None:
    a = load_dataset("digits", seed=5)
    b = load_dataset("digits", seed=5)
    c = load_dataset("digits", seed=6)
    assert a.fingerprint == b.fingerprint
    for x, y in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        np.testing.assert_array_equal(x.images, y.images)
        np.testing.assert_array_equal(x.labels, y.labels)
    assert c.fingerprint != a.fingerprint
    assert not np.array_equal(a.val.images, c.val.images)


def test_fingerprint_depends_on_data_and_parameters() -> None:
    images = np.zeros((4, 1, 2, 2), dtype=np.uint8)
    labels = np.array([0, 1, 0, 1], dtype=np.int64)
    base = fingerprint({"train": ImageSet(images, labels)}, {"seed": 0})
    changed = images.copy()
    changed[3, 0, 1, 1] = 1
    assert fingerprint({"train": ImageSet(changed, labels)}, {"seed": 0}) != base
    assert fingerprint({"train": ImageSet(images, labels)}, {"seed": 1}) != base
    reshaped = ImageSet(images.reshape(4, 1, 4, 1), labels)
    assert fingerprint({"train": reshaped}, {"seed": 0}) != base
    assert len(base) == 64 and int(base, 16) >= 0


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**32 - 1),
)
def test_carve_is_a_stratified_partition(sizes: list[int], fraction: float, seed: int) -> None:
    labels = np.repeat(np.arange(len(sizes)), sizes)
    np.random.default_rng(0).shuffle(labels)
    n = len(labels)
    if n < 2:
        return
    rest, carved = carve_indices(labels, fraction, seed)
    assert np.intersect1d(rest, carved).size == 0
    assert sorted(np.concatenate([rest, carved])) == list(range(n))
    assert len(carved) == min(max(round(fraction * n), 1), n - 1)
    # Largest-remainder apportionment: each class gets floor or ceil of its exact share.
    share = np.array(sizes) * len(carved) / n
    got = np.bincount(labels[carved], minlength=len(sizes))
    assert np.all(got >= np.floor(share) - 1e-9) and np.all(got <= np.ceil(share) + 1e-9)


def test_carve_exact_stratified_counts() -> None:
    labels = np.repeat([0, 1, 2], [500, 300, 200]).astype(np.int64)
    images = np.arange(1000, dtype=np.uint8).reshape(1000, 1, 1, 1)
    rest, carved = carve(images, labels, 0.1, seed=0)
    assert np.bincount(carved.labels).tolist() == [50, 30, 20]
    assert np.bincount(rest.labels).tolist() == [450, 270, 180]
    rest_c, carved_c = carve(images, labels, 100, seed=0)
    np.testing.assert_array_equal(carved_c.labels, carved.labels)


@pytest.mark.parametrize("bad", [0, 0.0, 1.0, 1.5, -1, True, "0.1", 1000])
def test_carve_rejects_bad_fraction(bad) -> None:
    labels = np.zeros(1000, dtype=np.int64)
    with pytest.raises(ConfigError, match="val_fraction"):
        carve_indices(labels, bad, seed=0, name="val_fraction")


def test_load_rejects_bad_fraction_before_reading() -> None:
    with pytest.raises(ConfigError, match="test_fraction"):
        load_dataset("digits", test_fraction=1.2)


def test_preprocessing_stats_closed_form() -> None:
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, size=(5000, 3, 4, 3), dtype=np.uint8)  # > one chunk
    images[:, 1] //= 4  # give channels different statistics
    pre = preprocessing_stats(images, 255)
    expected_mean = images.astype(np.float64).mean(axis=(0, 2, 3)) / 255
    expected_std = images.astype(np.float64).std(axis=(0, 2, 3)) / 255
    np.testing.assert_allclose(pre.mean, expected_mean, rtol=1e-12)
    np.testing.assert_allclose(pre.std, expected_std, rtol=1e-9)
    assert pre.pixel_max == 255


def test_preprocessing_std_floor_and_fit_on_train_only() -> None:
    constant = np.full((10, 1, 2, 2), 8, dtype=np.uint8)
    pre = preprocessing_stats(constant, 16)
    assert pre.mean == (0.5,) and pre.std == (STD_FLOOR,)
    s = load_dataset("digits", seed=1)
    train = s.train.images.astype(np.float64) / 16
    assert s.preprocessing.mean[0] == pytest.approx(train.mean(), rel=1e-12)
    assert s.preprocessing.std[0] == pytest.approx(train.std(), rel=1e-9)


# ---------------------------------------------------------------- registry


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(ConfigError) as info:
        load_dataset("imagenet")
    for name in ("fashion-mnist", "mnist", "cifar10", "imagefolder", "digits"):
        assert name in str(info.value)


def test_fixed_size_dataset_rejects_image_size() -> None:
    with pytest.raises(ConfigError, match="--image-size"):
        load_dataset("digits", image_size=(16, 16))


def test_digits_rejects_data_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--data-dir"):
        load_dataset("digits", data_dir=tmp_path)


def test_list_datasets_reads_headers_only(tmp_path: Path, monkeypatch) -> None:
    write_mnist_folder(tmp_path / "fm", n_train=30, n_test=12)
    write_cifar_folder(tmp_path / "c", per_batch=6)
    for i in range(3):
        _save_image(tmp_path / "imgs" / "x" / f"{i}.png", _gray(0, (9, 7)))

    def no_pixels(*args, **kwargs):
        raise AssertionError("list_datasets must not read pixel data")

    monkeypatch.setattr("adaptive_cnn.data.mnist.read_idx", no_pixels)
    dirs = {
        "fashion-mnist": tmp_path / "fm",
        "mnist": tmp_path / "absent",
        "cifar10": tmp_path / "c",
        "imagefolder": tmp_path / "imgs",
    }
    status = {s.name: s for s in list_datasets(dirs)}
    assert DEFAULT_DATASET == "fashion-mnist" and set(status) == set(dirs) | {"digits"}
    fm = status["fashion-mnist"]
    assert fm.available and (fm.num_train, fm.num_test) == (30, 12)
    assert fm.input_shape == (1, 28, 28) and fm.num_classes == 10
    assert not status["mnist"].available and "--data-dir" in status["mnist"].how_to_get
    assert status["mnist"].location == str(tmp_path / "absent")
    c = status["cifar10"]
    assert c.available and (c.num_train, c.num_test, c.num_classes) == (30, 6, 10)
    im = status["imagefolder"]
    assert im.available and (im.num_train, im.num_test, im.input_shape) == (3, None, (1, 9, 7))
    d = status["digits"]
    assert d.available and (d.num_train, d.input_shape, d.num_classes) == (1797, (1, 8, 8), 10)


def test_list_datasets_reports_corrupt_header(tmp_path: Path) -> None:
    write_mnist_folder(tmp_path / "fm", n_train=20, n_test=10)
    (tmp_path / "fm" / "train-images-idx3-ubyte.gz").write_bytes(b"\x01\x02\x03\x04")
    (fm,) = [
        s for s in list_datasets({"fashion-mnist": tmp_path / "fm"}) if s.name == "fashion-mnist"
    ]
    assert not fm.available and "train-images-idx3-ubyte.gz" in fm.how_to_get


def test_list_datasets_without_folders() -> None:
    status = {s.name: s for s in list_datasets()}
    assert not status["cifar10"].available and not status["imagefolder"].available
    assert "--data-dir" in status["imagefolder"].location
    with pytest.raises(ConfigError, match="unknown dataset"):
        list_datasets({"nope": Path("/tmp")})


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason=f"{REAL_FASHION} is not installed")
def test_real_fashion_mnist(monkeypatch) -> None:
    monkeypatch.delenv("ACNN_FASHION_MNIST_DIR", raising=False)
    s = load_dataset("fashion-mnist", val_fraction=0.1, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (54000, 6000, 10000)
    assert s.input_shape == (1, 28, 28) and s.num_classes == 10
    assert np.bincount(s.val.labels).tolist() == [600] * 10
    # Published Fashion-MNIST statistics: mean ~0.286, std ~0.353 (train set).
    assert s.preprocessing.mean[0] == pytest.approx(0.286, abs=0.002)
    assert s.preprocessing.std[0] == pytest.approx(0.353, abs=0.002)
