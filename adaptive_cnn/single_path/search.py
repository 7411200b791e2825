"""The superkernel search: train the supernet's weights and thresholds together.

After ``warmup_epochs`` in which only the weights train (thresholds frozen at 0, so every
indicator is on and every weight is trained), weights and thresholds train together on

    loss = cross-entropy + lambda * log(E)                       (cost_form "log")
    loss = cross-entropy + lambda * max(0, log(E / budget_mj))   (cost_form "budget")

where ``E`` is the supernet's differentiable expected energy (mJ, :mod:`.cost`). The
result is the architecture the final indicators select, a normal ``mbconv`` string.

Under the ``budget`` form the search hovers at the budget, so the network it ends on may
lie a little over it; that network is then fitted into the budget by dropping its weakest
choices (:mod:`.fit`), and the result records both energies and what was dropped.

The warm-up does not depend on lambda, so the automatic lambda search runs it once
(:func:`warm_up`) and starts every trial from it: a warm-started search equals a search
run from scratch with the same seed and settings, for the post-warm-up epochs only.
Everything is seeded: the same seed, data and threads give the same result.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from adaptive_cnn.data.types import DatasetSplits
from adaptive_cnn.errors import ConfigError
from adaptive_cnn.networks.mbconv import MBConvArch
from adaptive_cnn.single_path.cost import SupernetCosts
from adaptive_cnn.single_path.fit import fit_to_budget
from adaptive_cnn.single_path.inherit import inherited_state
from adaptive_cnn.single_path.superkernel import DEFAULT_TEMPERATURE
from adaptive_cnn.single_path.supernet import SinglePathSupernet
from adaptive_cnn.training import accuracy, predict_probs, torch_threads
from adaptive_cnn.training.trainer import (  # the trainer's own batching and input scaling
    MEMORY_FORMAT,
    _batches,
    _normaliser,
    _training_subset,
    _warmup_cosine,
)

COST_FORMS = ("log", "budget")


@dataclass(frozen=True)
class SearchConfig:
    """How one superkernel search trains.

    Attributes:
        epochs: passes over the (subsetted) training split, warm-up included.
        warmup_epochs: leading passes in which only the weights train.
        subset: training images (a seeded subset), or all if None.
        batch_size: images per step.
        lr: peak AdamW learning rate of the weights (warm-up then cosine).
        weight_decay: AdamW weight decay of the weights.
        threshold_lr: Adam learning rate of the thresholds (constant).
        lam: weight ``lambda`` of the energy term.
        cost_form: ``log`` (lambda * log E) or ``budget`` (lambda * max(0, log(E/budget))).
        budget_mj: the energy target of the ``budget`` form, mJ per image.
        width: width multiplier of the supernet.
        search_se: let the search choose squeeze-and-excitation per slot.
        temperature: scale of the indicators' backward sigmoid.
    """

    epochs: float = 4.0
    warmup_epochs: float = 1.0
    subset: int | None = 12000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    threshold_lr: float = 0.01
    lam: float = 0.5
    cost_form: str = "log"
    budget_mj: float | None = None
    width: float = 1.0
    search_se: bool = True
    temperature: float = DEFAULT_TEMPERATURE

    def __post_init__(self) -> None:
        if not self.epochs > 0 or not 0 <= self.warmup_epochs < self.epochs:
            raise ConfigError(
                f"search epochs must be > 0 and warm-up epochs in [0, epochs), got "
                f"{self.epochs} and {self.warmup_epochs}"
            )
        if self.cost_form not in COST_FORMS:
            raise ConfigError(f"cost form must be one of {', '.join(COST_FORMS)}")
        if self.cost_form == "budget" and not (self.budget_mj or 0) > 0:
            raise ConfigError("the budget cost form needs budget_mj > 0")
        if self.lam < 0 or not self.threshold_lr > 0 or not self.temperature > 0:
            raise ConfigError("lambda must be >= 0, threshold lr and temperature > 0")

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class SearchResult:
    """One finished search.

    Attributes:
        arch: the derived architecture, ``mbconv:...``.
        energy_mj: its predicted energy per image.
        val_accuracy: the supernet's validation accuracy at the derived choice (its shared
            weights: a proxy, not the accuracy of the network trained from scratch).
        lam: the energy weight the search used.
        epochs: training epochs of the search, warm-up included.
        seconds: wall time of the search.
        thresholds: the final thresholds, ``"slot.name" -> value``.
        history: one row per epoch (and at the end): step, epoch, loss, cross-entropy,
            expected energy and derived architecture.
        raw_energy_mj: the predicted energy of the network the search ended on, before
            fitting into the budget (equals ``energy_mj`` when nothing was dropped).
        dropped: the (slot, choice) pairs the fitting turned off, in order.
        inherited: the derived network's weights taken from the supernet (a ``state_dict``
            of the plain network, :func:`~adaptive_cnn.single_path.inherit.inherited_state`),
            to fine-tune from; not part of :meth:`to_dict`.
    """

    arch: str
    energy_mj: float
    val_accuracy: float
    lam: float
    epochs: float
    seconds: float
    thresholds: dict[str, float] = field(default_factory=dict)
    history: tuple[dict[str, Any], ...] = ()
    raw_energy_mj: float | None = None
    dropped: tuple[tuple[int, str], ...] = ()
    inherited: dict[str, torch.Tensor] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "energy_mj": self.energy_mj,
            "val_accuracy": self.val_accuracy,
            "lambda": self.lam,
            "epochs": self.epochs,
            "seconds": self.seconds,
            "thresholds": dict(self.thresholds),
            "history": list(self.history),
            "raw_energy_mj": self.raw_energy_mj,
            "dropped": [list(d) for d in self.dropped],
        }


@dataclass(frozen=True)
class WarmStart:
    """The supernet, optimiser and schedule right after the warm-up, and what it cost.

    Attributes:
        key: the settings and seed the warm-up depends on (lambda excluded).
        states: state dicts of the supernet, the weights' optimiser and its schedule.
        epochs: warm-up epochs trained.
        seconds: wall time of the warm-up.
        history: its per-epoch rows.
    """

    key: tuple
    states: dict[str, Any]
    epochs: float
    seconds: float
    history: tuple[dict[str, Any], ...] = ()


def _warm_key(config: SearchConfig, seed: int) -> tuple:
    fields = {k: v for k, v in config.to_dict().items() if k not in ("lam", "cost_form")}
    return (*sorted(fields.items()), ("seed", seed))


def energy_term(energy_mj: torch.Tensor, config: SearchConfig) -> torch.Tensor:
    """The energy part of the loss, without lambda."""
    if config.cost_form == "log":
        return torch.log(energy_mj)
    return torch.relu(torch.log(energy_mj / config.budget_mj))


def run_search(
    dataset: DatasetSplits,
    costs: SupernetCosts,
    config: SearchConfig,
    seed: int = 0,
    *,
    threads: int | None = None,
    progress: Callable[[int, int, float], Any] | None = None,
    warm: WarmStart | None = None,
) -> SearchResult:
    """Search the ``mbconv`` space of the supernet at ``config.width`` on ``dataset``.

    Args:
        dataset: training split trains, validation split scores the derived choice.
        costs: the predicted energies of the supernet's choices at ``config.width``.
        config: training budget and loss settings.
        seed: seeds the weights, the training subset and the batch order.
        threads: torch intra-op threads (None: torch's current setting).
        progress: called with (step, total_steps, expected energy in mJ) every epoch.
        warm: start after this warm-up (:func:`warm_up` with the same settings and seed);
            the result's ``epochs`` and ``seconds`` then count only this call's training.

    Raises:
        ConfigError: ``warm`` came from other settings or another seed.
    """
    if warm is not None and warm.key != _warm_key(config, seed):
        raise ConfigError("the warm start was made with other search settings or seed")
    started = time.perf_counter()
    with torch_threads(threads):
        net = _seeded_supernet(dataset, config, seed)
        history = _train(net, dataset, costs, config, seed, progress, warm)
        arch = net.derive_arch()
        raw_energy = costs.energy_mj(arch)
        dropped: tuple[tuple[int, str], ...] = ()
        if config.cost_form == "budget":
            arch, dropped = fit_to_budget(arch, _leads(net), costs.energy_mj, config.budget_mj)
            _force_choice(net, arch)
        inherited = inherited_state(net, arch)
        probs = predict_probs(net, dataset.val.images, dataset.preprocessing)
    return SearchResult(
        arch=f"mbconv:{arch.to_str()}",
        energy_mj=costs.energy_mj(arch),
        val_accuracy=accuracy(probs, dataset.val.labels),
        lam=config.lam,
        epochs=config.epochs - (warm.epochs if warm is not None else 0.0),
        seconds=time.perf_counter() - started,
        thresholds={
            f"{i}.{name}": t.item()
            for i, block in enumerate(net.blocks)
            for name, t in block.thresholds().items()
        },
        history=tuple(history),
        raw_energy_mj=raw_energy,
        dropped=dropped,
        inherited=inherited,
    )


def _leads(net: SinglePathSupernet) -> dict[tuple[int, str], float]:
    """Per (slot, free indicator), its weight group's lead over its threshold."""
    return {(i, name): lead for i, b in enumerate(net.blocks) for name, lead in b.leads().items()}


def _force_choice(net: SinglePathSupernet, arch: MBConvArch) -> None:
    """Fix every slot's indicators to ``arch``'s layer (the supernet then runs it)."""
    for block, layer in zip(net.blocks, arch.layers, strict=True):
        if layer is None:
            block.force(skip=True)
        else:
            skip = False if block.skippable else None
            block.force(layer.kernel, layer.expansion, layer.se, skip)
    if net.derive_arch() != arch:  # a slot the fitting changed was not forced
        raise AssertionError("the supernet does not select the fitted architecture")


def warm_up(
    dataset: DatasetSplits,
    costs: SupernetCosts,
    config: SearchConfig,
    seed: int = 0,
    *,
    threads: int | None = None,
) -> WarmStart:
    """Train only the warm-up of :func:`run_search` (weights only; lambda plays no part)."""
    started = time.perf_counter()
    with torch_threads(threads):
        net = _seeded_supernet(dataset, config, seed)
        kept: dict[str, Any] = {}
        history = _train(net, dataset, costs, config, seed, None, None, kept)
    return WarmStart(
        key=_warm_key(config, seed),
        states=kept,
        epochs=config.warmup_epochs,
        seconds=time.perf_counter() - started,
        history=tuple(history),
    )


def _seeded_supernet(dataset: DatasetSplits, config: SearchConfig, seed: int) -> SinglePathSupernet:
    """The supernet with seeded weights, in the trainer's memory format.

    Channels-last like the trainer's networks: the format must not be left to the input,
    whose layout is ambiguous with one channel (a subset copy of the training images runs
    the whole supernet in the slower contiguous layout: depthwise backward about 3x).
    """
    torch.manual_seed(seed)  # the initial weights
    net = SinglePathSupernet(
        dataset.input_shape, dataset.num_classes, config.width, config.search_se,
        config.temperature,
    )  # fmt: skip
    return net.to(memory_format=MEMORY_FORMAT)


def _train(
    net, dataset, costs, config, seed, progress, warm=None, keep_warm=None
) -> list[dict[str, Any]]:
    """Train the supernet; from ``warm`` if given; with ``keep_warm`` (a dict), stop after
    the warm-up and put the states there."""
    data = _training_subset(dataset.train, config.subset, seed)
    images = torch.from_numpy(data.images)
    labels = torch.from_numpy(data.labels.astype("int64"))
    normalise = _normaliser(dataset.preprocessing)
    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    total = max(1, round(config.epochs * steps_per_epoch))
    warmup = round(config.warmup_epochs * steps_per_epoch)
    weights = torch.optim.AdamW(
        net.weight_parameters(), config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(weights, _warmup_cosine(total, 0.03))
    thresholds = torch.optim.Adam(net.threshold_parameters(), config.threshold_lr)
    generator = torch.Generator().manual_seed(seed)
    loss_fn, history = nn.CrossEntropyLoss(), []
    if warm is not None:
        net.load_state_dict(warm.states["net"])
        weights.load_state_dict(warm.states["weights"])
        schedule.load_state_dict(warm.states["schedule"])
        history = list(warm.history)
    net.train()
    for step, batch in enumerate(_batches(len(data), config.batch_size, total, generator), 1):
        if warm is not None and step <= warmup:
            continue  # trained by the warm-up; the batch order is replayed, not the work
        if keep_warm is not None and step > warmup:
            break
        searching = step > warmup
        weights.zero_grad(set_to_none=True)
        thresholds.zero_grad(set_to_none=True)
        ce = loss_fn(net(normalise(images[batch])), labels[batch])
        energy = costs.expected_energy_mj(net)
        loss = ce + config.lam * energy_term(energy, config) if searching else ce
        loss.backward()
        weights.step()
        schedule.step()
        if searching:
            thresholds.step()
        if step % steps_per_epoch == 0 or step == total:
            history.append(_history_row(net, step, steps_per_epoch, loss, ce, energy))
            if progress:
                progress(step, total, energy.item())
    if keep_warm is not None:
        keep_warm.update(
            net=copy.deepcopy(net.state_dict()),
            weights=copy.deepcopy(weights.state_dict()),
            schedule=copy.deepcopy(schedule.state_dict()),
        )
    net.eval()
    return history


def _history_row(net, step, steps_per_epoch, loss, ce, energy) -> dict[str, Any]:
    return {
        "step": step,
        "epoch": round(step / steps_per_epoch, 4),
        "loss": loss.item(),
        "cross_entropy": ce.item(),
        "expected_energy_mj": energy.item(),
        "arch": f"mbconv:{net.derive_arch().to_str()}",
    }
