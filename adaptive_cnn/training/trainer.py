"""Deterministic CPU training of one network, through the content-addressed cache."""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

import adaptive_cnn
from adaptive_cnn.data.types import DatasetSplits, ImageSet, Preprocessing
from adaptive_cnn.errors import ConfigError
from adaptive_cnn.networks import arch_cost, create_network, parse_arch
from adaptive_cnn.training.cache import TrainingCache, cache_key
from adaptive_cnn.training.config import TrainConfig
from adaptive_cnn.training.result import TrainResult

EVAL_BATCH = 1024
# NHWC is what oneDNN's CPU convolutions run fastest: measured here 1.1-1.8x the training
# throughput of NCHW for the reference nets (benchmarks/train_throughput.py). Set
# explicitly, because numpy strides of a 1-channel array can silently select either.
MEMORY_FORMAT = torch.channels_last


@dataclass(frozen=True)
class TrainProgress:
    """A progress report, sent every few optimiser steps and at the end of each epoch."""

    step: int
    total_steps: int
    epoch: float
    loss: float
    images_per_s: float


ProgressFn = Callable[[TrainProgress], None]


# Modules of the networks package that only one family's networks depend on; editing
# one family (say, adding a layer option to mbconv) leaves the others' cached training valid.
FAMILY_SOURCES = {
    "conv": ("plain_conv.py",),
    "mbconv": ("mbconv.py", "mbconv_blocks.py"),
    "mlp": ("mlp.py",),
}


@lru_cache(maxsize=None)
def code_version(family: str | None = None) -> str:
    """Package version plus a hash of the sources that decide what training produces.

    Args:
        family: hash only the shared sources and this family's own modules (see
            :data:`FAMILY_SOURCES`); None or a family not listed there hashes them all.
    """
    root = Path(adaptive_cnn.__file__).parent
    networks = sorted((root / "networks").glob("*.py"))
    if family in FAMILY_SOURCES:
        others = {f for name, files in FAMILY_SOURCES.items() if name != family for f in files}
        networks = [path for path in networks if path.name not in others]
    sources = networks + [Path(__file__)]
    sources += sorted((root.parent / "energy_models").glob("ops.py"))
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.name.encode() + path.read_bytes())
    return f"{adaptive_cnn.__version__}+{digest.hexdigest()[:12]}"


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run with ``threads`` intra-op threads (None: keep torch's) and restore afterwards."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def train(
    arch: str | object,
    dataset: DatasetSplits,
    config: TrainConfig = TrainConfig(),
    seed: int = 0,
    *,
    threads: int | None = None,
    cache: TrainingCache | None = None,
    progress: ProgressFn | None = None,
    init_state: Mapping[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``arch`` on ``dataset`` (or fetch it from ``cache``) and evaluate it.

    The result is bitwise reproducible for the same (arch, dataset split, config, seed,
    threads, code version) on the same CPU type; these together form the cache key, so a
    second request trains nothing.

    Args:
        arch: architecture string (``"c16k3p-c32k3p-fc64"``) or a registry Arch object.
        dataset: the splits; training uses ``train``, probabilities are computed on
            ``val`` and ``test``.
        config: epochs/subset budget and optimiser settings.
        seed: seeds weight initialisation, the training subset and the batch order.
        threads: torch intra-op threads for this call (None: torch's current setting).
        cache: where to look for and store the result; None trains unconditionally.
        progress: called with :class:`TrainProgress` while training.
        init_state: start from these weights (a full ``state_dict`` of the network, e.g.
            inherited from a supernet) instead of a seeded initialisation: fine-tuning.
            Its digest joins the cache key.

    Returns:
        The trained network's weights, held-out probabilities, accuracies and cost.
    """
    arch_obj = parse_arch(arch) if isinstance(arch, str) else arch
    with torch_threads(threads) as used_threads:
        identity = _identity(arch_obj, dataset, config, seed, used_threads)
        if init_state is not None:  # only then: every from-scratch key stays as it was
            identity["init_state"] = state_digest(init_state)
        key = cache_key(identity)
        cached = cache.load(key) if cache is not None else None
        if cached is not None:
            return cached
        result = _train_uncached(
            arch_obj, dataset, config, seed, used_threads, key, progress, init_state
        )
    if cache is not None:
        cache.store(result)
    return result


def _identity(arch, dataset: DatasetSplits, config: TrainConfig, seed: int, threads: int):
    return {
        "arch": str(arch),
        "family": arch.family,
        "dataset": dataset.name,
        "dataset_fingerprint": dataset.fingerprint,
        "config": config.to_dict(),
        "seed": seed,
        "threads": threads,
        "code_version": code_version(arch.family),
        "torch": torch.__version__,
    }


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and values."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _train_uncached(
    arch, dataset, config, seed, threads, key, progress, init_state=None
) -> TrainResult:
    torch.manual_seed(seed)
    model = create_network(arch, dataset.input_shape, dataset.num_classes)
    if init_state is not None:
        try:
            model.load_state_dict(init_state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ConfigError(f"the initial weights do not fit {arch}: {first}") from None
    model = model.to(memory_format=MEMORY_FORMAT)
    train_set = _training_subset(dataset.train, config.subset, seed)
    started = time.perf_counter()
    loss = _fit(model, train_set, dataset.preprocessing, config, seed, progress)
    train_seconds = time.perf_counter() - started
    val_probs = predict_probs(model, dataset.val.images, dataset.preprocessing)
    test_probs = predict_probs(model, dataset.test.images, dataset.preprocessing)
    cost = arch_cost(arch, dataset.input_shape, dataset.num_classes)
    return TrainResult(
        arch=str(arch),
        family=arch.family,
        dataset=dataset.name,
        dataset_fingerprint=dataset.fingerprint,
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        preprocessing=dataset.preprocessing,
        config=config,
        seed=seed,
        threads=threads,
        state_dict={k: v.detach().contiguous().clone() for k, v in model.state_dict().items()},
        val_probs=val_probs,
        test_probs=test_probs,
        val_accuracy=accuracy(val_probs, dataset.val.labels),
        test_accuracy=accuracy(test_probs, dataset.test.labels),
        final_train_loss=loss,
        params=cost.params,
        macs=cost.macs,
        train_seconds=train_seconds,
        cache_hit=False,
        cache_key=key,
    )


def _training_subset(train_set: ImageSet, subset: int | None, seed: int) -> ImageSet:
    if subset is None or subset >= len(train_set):
        return train_set
    order = np.random.default_rng(seed).permutation(len(train_set))[:subset]
    order.sort()
    return ImageSet(train_set.images[order], train_set.labels[order])


def _fit(model: nn.Module, data: ImageSet, prep: Preprocessing, config, seed, progress) -> float:
    images = torch.from_numpy(np.ascontiguousarray(data.images))
    labels = torch.from_numpy(data.labels.astype(np.int64))
    normalise = _normaliser(prep)
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    total_steps = max(1, round(config.epochs * steps_per_epoch))
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, _warmup_cosine(total_steps, config.warmup_fraction)
    )
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    report = _Reporter(progress, total_steps, steps_per_epoch, config.batch_size)
    for step, batch in enumerate(_batches(len(data), config.batch_size, total_steps, generator)):
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(model(normalise(images[batch])), labels[batch])
        loss.backward()
        optimiser.step()
        schedule.step()
        report(step + 1, loss.item())
    model.eval()
    return report.smoothed_loss


def _batches(n: int, batch_size: int, total_steps: int, generator: torch.Generator):
    """Yield ``total_steps`` index batches: reshuffled epochs, the last one possibly partial."""
    step = 0
    while step < total_steps:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            if step == total_steps:
                return
            yield order[start : start + batch_size]
            step += 1


def _warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _normaliser(prep: Preprocessing) -> Callable[[torch.Tensor], torch.Tensor]:
    scale = torch.tensor(1.0 / prep.pixel_max, dtype=torch.float32)
    mean = torch.tensor(prep.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(prep.std, dtype=torch.float32).view(1, -1, 1, 1)

    def normalise(x: torch.Tensor) -> torch.Tensor:
        x = (x.to(torch.float32) * scale - mean) / std
        return x.contiguous(memory_format=MEMORY_FORMAT)

    return normalise


class _Reporter:
    """Smooths the loss and calls ``progress`` about 20 times per epoch and at the end."""

    def __init__(self, progress, total_steps: int, steps_per_epoch: int, batch_size: int):
        self.progress, self.total_steps = progress, total_steps
        self.steps_per_epoch, self.batch_size = steps_per_epoch, batch_size
        self.every = max(1, steps_per_epoch // 20)
        self.smoothed_loss = float("nan")
        self.started = time.perf_counter()

    def __call__(self, step: int, loss: float) -> None:
        if math.isnan(self.smoothed_loss):
            self.smoothed_loss = loss
        self.smoothed_loss = 0.95 * self.smoothed_loss + 0.05 * loss
        if self.progress is None or (step % self.every and step != self.total_steps):
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        self.progress(
            TrainProgress(
                step=step,
                total_steps=self.total_steps,
                epoch=step / self.steps_per_epoch,
                loss=self.smoothed_loss,
                images_per_s=step * self.batch_size / elapsed,
            )
        )


@torch.no_grad()
def predict_probs(model: nn.Module, images: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Class probabilities, float32 of shape (N, K), for native-scale images (N, C, H, W).

    ``model`` is put in eval mode and channels-last memory format in place.
    """
    model = model.to(memory_format=MEMORY_FORMAT).eval()
    normalise = _normaliser(prep)
    tensor = torch.from_numpy(np.ascontiguousarray(images))
    chunks = [
        torch.softmax(model(normalise(tensor[i : i + EVAL_BATCH])), dim=1)
        for i in range(0, len(tensor), EVAL_BATCH)
    ]
    if not chunks:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(chunks).numpy().astype(np.float32, copy=False)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in [0, 1] of probabilities (N, K) against int labels (N,)."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(np.argmax(probs, axis=1) == labels))
