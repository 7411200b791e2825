"""What every design run works with: its data, device, predictor, costs and cache.

:func:`open_run` loads them for a :class:`~adaptive_cnn.design.config.DesignConfig`;
every method (the BO :class:`~adaptive_cnn.design.designer.Designer`, the single-path
search), the baselines and the run-folder writer take the :class:`RunContext` it returns.
Messages go through ``say`` and progress bars through ``progress``, both the caller's:
the CLI passes a printer and its progress line; a library user gets ``logging``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from adaptive_cnn.data.types import DatasetSplits
from adaptive_cnn.design.config import DesignConfig
from adaptive_cnn.design.costs import CostModel, default_predictor
from adaptive_cnn.training import TrainConfig, TrainingCache, TrainResult, train
from energy_models.devices import DeviceProfile
from energy_models.predictor import EnergyPredictor

LOG = logging.getLogger("acnn")


class ProgressBar(Protocol):
    """What a progress factory returns: ``update(done, total, message)``, ``close()``."""

    def update(self, done: int, total: int, message: str = "") -> None: ...

    def close(self) -> None: ...


#: ``progress(label)`` makes a bar (the CLI's :class:`ProgressLine` is one)
ProgressFactory = Callable[[str], ProgressBar]


@dataclass
class RunContext:
    """The loaded parts of one design run.

    Attributes:
        config: the resolved settings.
        dataset: the splits (validation drives the search; test is evaluated once).
        device: the device profile.
        predictor: the layer-wise energy predictor; ``predictor_path`` its file.
        costs: predicted stage costs and the a-priori screen for the run's link.
        cache: the training cache (None: train without caching).
        run_dir: the run folder.
        say: hears one line of news at a time.
        progress: makes progress bars for long steps (None: no bars).
    """

    config: DesignConfig
    dataset: DatasetSplits
    device: DeviceProfile
    predictor: EnergyPredictor
    predictor_path: Path | None
    costs: CostModel
    cache: TrainingCache | None
    run_dir: Path
    say: Callable[[str], Any] = LOG.info
    progress: ProgressFactory | None = None
    _cloud: TrainResult | None = field(default=None, repr=False)

    def local_costs(self) -> CostModel:
        """The same costs without a cloud stage (the all-local baselines')."""
        c = self.costs
        return CostModel(
            c.predictor, c.device, "none", c.input_shape, c.num_classes, c.cloud_latency_ms
        )

    def final_config(self) -> TrainConfig:
        """The training budget of the chosen design's networks and the baselines'."""
        return TrainConfig(epochs=self.config.final_epochs)

    def train_final(self, arch: str) -> TrainResult:
        """``arch`` trained with the final budget (from the cache when it was before)."""
        return self.train(arch, self.final_config())

    def train(self, arch: str, budget: TrainConfig, **options: Any) -> TrainResult:
        """``arch`` trained with ``budget`` under the run's seed, threads and cache."""
        c = self.config
        return train(
            arch, self.dataset, budget, c.seed, threads=c.threads, cache=self.cache, **options
        )

    def cloud_result(self) -> TrainResult:
        """The cloud model (trained once with ``cloud_epochs``, then cached)."""
        if self._cloud is None:
            self._cloud = self.train(
                self.config.cloud_arch, TrainConfig(epochs=self.config.cloud_epochs)
            )
        return self._cloud

    def cloud_probs(self, split: str) -> np.ndarray:
        """The cloud model's probabilities on ``split`` (val or test)."""
        result = self.cloud_result()
        return result.val_probs if split == "val" else result.test_probs


def open_run(
    config: DesignConfig,
    run_dir: str | Path,
    *,
    cache_root: str | Path | None = None,
    say: Callable[[str], Any] | None = None,
    progress: ProgressFactory | None = None,
    dataset: DatasetSplits | None = None,
) -> RunContext:
    """Load what a design run of ``config`` works with; nothing is searched or trained
    (except that a machine without a predictor for the device is profiled once, quick).

    Args:
        config: the resolved settings.
        run_dir: the run folder (created by the methods when they write to it).
        cache_root: the training cache folder (default :func:`default_cache_dir`).
        say: hears one line of news at a time (default: the ``acnn`` logger).
        progress: makes progress bars for long steps (default: none).
        dataset: the splits when the caller has them loaded already (they must be
            ``config.dataset`` split by ``config.split_seed``).
    """
    from adaptive_cnn.data import load_dataset
    from adaptive_cnn.training import default_cache_dir
    from energy_models.devices import load_device

    say = say or LOG.info
    root = Path(cache_root) if cache_root is not None else default_cache_dir()
    if dataset is None:
        dataset = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.split_seed)
    device = load_device(config.device)
    path = Path(config.predictor or default_predictor(device, root, say, progress))
    predictor = EnergyPredictor.load(path)
    costs = CostModel(
        predictor,
        device,
        config.link,
        dataset.input_shape,
        dataset.num_classes,
        config.cloud_latency_ms,
    )
    return RunContext(
        config, dataset, device, predictor, path, costs, TrainingCache(root), Path(run_dir),
        say, progress,
    )  # fmt: skip
