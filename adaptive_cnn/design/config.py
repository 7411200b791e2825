"""The resolved settings of one design run: the common ones and each method's own.

:class:`DesignConfig` holds what every design run needs (budgets, data, device, training
budgets, cloud) and ``search``: the settings of its method, :class:`BOSettings` for the
Bayesian optimisation over whole cascades or
:class:`~adaptive_cnn.single_path.settings.SinglePathSettings`. Every setting is declared
once (:mod:`adaptive_cnn.design.settings`): the command line, the YAML loader and the
journal's identity keys come from these declarations. A config file is one flat mapping
(``method`` picks the method; a setting of the other method is an error).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adaptive_cnn.design.settings import (
    declare,
    declared,
    journal_keys,
    known_keys,
    validate,
    values_of,
)
from adaptive_cnn.errors import ArchitectureError, ConfigError
from adaptive_cnn.networks import get_family, list_networks, parse_arch
from adaptive_cnn.single_path.settings import SinglePathSettings
from energy_models.units import parse_bytes, parse_duration_s, parse_energy_mj
from selector.confidence import METRICS

MODES = ("inner", "joint")
STRATEGIES = ("bo", "bo-unaware", "random")
LINKS = ("wifi", "lte", "3g", "none")


def _bytes(value: Any) -> float:
    return float(parse_bytes(value))


@dataclass(frozen=True)
class BOSettings:
    """Settings of ``method: bo``: the Designer's Bayesian optimisation over cascades.

    Attributes:
        mode: ``inner`` solves thresholds exactly per candidate; ``joint`` makes them
            optimiser dimensions, as in the paper.
        strategy: ``bo`` (constraint-aware: candidates predicted infeasible are never
            proposed), ``bo-unaware`` or ``random``.
        trials: evaluations (candidate designs) in the search.
        initial_points: random evaluations before the Gaussian process leads.
        candidates: random candidates scored by the acquisition per step.
        proxy_epochs: training epochs per network during the search (on ``proxy_subset``).
        rerank: the best ``rerank`` feasible designs of the search (and, when > 1, the
            feasible reference cascades it started from) are trained with the final
            budget and the best of them on validation is chosen; 1 takes the search's
            best as it is.
        promote_under_s: after re-ranking, every network the search trained whose final
            training is estimated at most this many seconds (its proxy training scaled,
            :mod:`adaptive_cnn.design.time_budget`) is trained with the final budget too,
            while ``--time-limit`` allows, and joins the final combination; 0 = none.
        reference_seeds: the search's first points are the family's hand-picked cascades
            (reference networks in order of cost) that pass the screen.
        last_stage: fix the last local stage to this network (``family:arch``, or a
            reference name ``small``, ``medium``, ``large`` of that stage's family),
            trained once with ``final_epochs``; the search covers the stages before it.
    """

    METHOD = "bo"

    mode: str = declare("inner", "thresholds: inner = solved per candidate, joint = searched",
                        choices=MODES, journal=True)  # fmt: skip
    strategy: str = declare(
        "bo",
        "bo = constraint-aware Bayesian optimisation, bo-unaware, random",
        choices=STRATEGIES,
        journal=True,
    )
    trials: int = declare(20, "designs evaluated by the search", unit="N", minimum=1)
    initial_points: int = declare(
        6, "random designs before the Gaussian process leads", unit="N", minimum=1, journal=True
    )
    candidates: int = declare(
        300, "candidates scored by the acquisition per step", unit="N", minimum=1, journal=True
    )
    proxy_epochs: float = declare(
        1.0, "training epochs per network during the search", unit="EPOCHS", above=0,
        journal=True,
    )  # fmt: skip
    rerank: int = declare(
        3,
        "train the K best searched designs (and the feasible reference cascades) fully and "
        "keep the best on validation; 1 = the search's best as is",
        unit="K",
        minimum=1,
    )
    promote_under_s: float = declare(
        60.0,
        "after re-ranking, also train fully every network the search trained whose final "
        "training is estimated to take at most this long (cheap stages: seconds), so the "
        "final combination can use it; 0 = only the re-ranked designs' networks",
        unit="SECONDS",
        flag="--promote-under",
        parse=parse_duration_s,
        minimum=0,
    )
    reference_seeds: bool = declare(
        True,
        "start the search from random designs only, not from the family's hand-picked "
        "reference cascades",
        journal=True,
    )
    last_stage: str | None = declare(
        None,
        "fix the last local stage to this network (an architecture string, or "
        "small/medium/large: that family's reference) and search the stages before it; "
        "it is trained once with --final-epochs",
        unit="ARCH",
        journal=True,
    )

    def __post_init__(self) -> None:
        validate(self)

    def checked(self, config: DesignConfig) -> BOSettings:
        """These settings with ``last_stage`` resolved against the run's families."""
        if self.last_stage is None:
            return self
        if config.local_stages < 2:
            raise ConfigError("--last-stage needs --stages 2 or more (a stage to search)")
        family = config.stage_families[-1]
        name = self.last_stage.strip()
        references = get_family(family).references()
        if name in references:
            name = f"{family}:{references[name].to_str()}"
        elif ":" not in name:
            name = f"{family}:{name}"
        try:
            arch = parse_arch(name)
        except ArchitectureError as exc:
            raise ConfigError(f"--last-stage: {exc}") from None
        if arch.family != family:
            raise ConfigError(
                f"--last-stage {self.last_stage!r} is a {arch.family} network; the last "
                f"local stage is of the {family} family"
            )
        return dataclasses.replace(self, last_stage=f"{family}:{arch.to_str()}")


#: method name -> the class of its settings (the search of ``acnn design --method``)
SEARCH_SETTINGS: dict[str, type] = {"bo": BOSettings, "single-path": SinglePathSettings}


@dataclass(frozen=True)
class DesignConfig:
    """What to design, and with which method's settings (``search``).

    Attributes:
        budget_mj: device energy budget per classified image, millijoules (None with
            ``min_accuracy``: minimise energy instead).
        min_accuracy: minimise energy subject to validation accuracy >= this.
        max_bytes: bytes sent to the cloud per image, on average, at most (None: no limit).
        dataset: dataset name; ``data_dir`` its folder (None: the default place).
        local_stages: number of local networks the search puts in a cascade (1-3); the
            final combination of fully trained networks may use fewer when that is better.
        families: network family per local stage (one name applies to every stage).
        link: radio link to the cloud stage, or ``none`` for an all-local cascade.
        device: device profile name or YAML path (memory limit, idle power, links).
        predictor: energy predictor file; None profiles this machine once (quick) and
            caches the fitted predictor.
        seed: seed of the search and of training; ``split_seed`` of the dataset split.
        proxy_subset: training images per network during the search.
        final_epochs: training budget of the chosen design's networks (and baselines').
        cloud_arch, cloud_epochs: the cloud model (trained once, cached).
        cloud_latency_ms: the cloud's inference time per image (the device waits).
        metric: confidence metric of the exit policy.
        threads: torch threads for training (None: torch's default).
        search: the method's settings (:data:`SEARCH_SETTINGS`); ``method`` names it.
    """

    budget_mj: float | None = declare(
        None,
        "device energy per image with a unit: 2mJ, 500uJ, 0.002J (a bare number is mJ)",
        unit="ENERGY",
        flag="--budget",
        parse=parse_energy_mj,
        above=0,
        alias="budget",
    )
    min_accuracy: float | None = declare(
        None,
        "minimise energy subject to validation accuracy >= X (a fraction, 0-1) instead; "
        "--budget stays a hard limit",
        unit="X",
        above=0,
        maximum=1,
        journal=True,
    )
    max_bytes: float | None = declare(
        None, "mean bytes sent to the cloud per image at most (e.g. 200, 1kB)", unit="BYTES",
        parse=_bytes, journal=True,
    )  # fmt: skip
    dataset: str = declare("fashion-mnist", "dataset name (acnn datasets)", unit="NAME",
                           journal=True)  # fmt: skip
    data_dir: str | None = declare(None, "folder holding the dataset's files", unit="DIR",
                                   journal=True)  # fmt: skip
    local_stages: int = declare(
        2,
        "local networks the search puts in a cascade (the final combination of fully "
        "trained networks may use fewer)",
        unit="N", flag="--stages", minimum=1, maximum=3, journal=True,
    )  # fmt: skip
    families: tuple[str, ...] = declare(
        ("conv",),
        "network family of the local stages (repeat: one per stage)",
        unit="NAME",
        flag="--family",
        repeat=True,
        journal=True,
    )
    link: str = declare("wifi", "radio link to the cloud stage; none = all-local",
                        choices=LINKS, journal=True)  # fmt: skip
    device: str = declare("local", "device profile name or YAML (acnn devices)", unit="NAME",
                          journal=True)  # fmt: skip
    predictor: str | None = declare(
        None,
        "energy predictor file (acnn fit-energy); none = this machine's, profiled once and cached",
        unit="FILE",
    )
    seed: int = declare(0, "seed of the search and of training", unit="N", minimum=0,
                        journal=True)  # fmt: skip
    split_seed: int = declare(0, "seed of the validation split", unit="N", minimum=0,
                              journal=True)  # fmt: skip
    proxy_subset: int | None = declare(
        12000, "training images per network during the search (none = all)", unit="IMAGES",
        minimum=1, journal=True,
    )  # fmt: skip
    final_epochs: float = declare(3.0, "training epochs of the chosen design's networks",
                                  unit="EPOCHS", above=0)  # fmt: skip
    cloud_arch: str = declare("conv:bn-c32k3-c32k3p-c64k3p-c128k3p-fc256",
                              "the cloud model's architecture", unit="ARCH")  # fmt: skip
    cloud_epochs: float = declare(3.0, "the cloud model's training epochs", unit="EPOCHS",
                                  above=0)  # fmt: skip
    cloud_latency_ms: float = declare(
        5.0, "the cloud's inference time per image that the device waits", unit="MS", minimum=0
    )
    metric: str = declare("margin", "confidence metric of the exit policy",
                          choices=tuple(METRICS), journal=True)  # fmt: skip
    threads: int | None = declare(
        None, "torch threads per training (none = torch's; with --workers, cores/N)",
        unit="N", minimum=1, journal=True,
    )  # fmt: skip
    search: BOSettings | SinglePathSettings = dataclasses.field(default_factory=BOSettings)

    def __post_init__(self) -> None:
        validate(self)
        if self.budget_mj is None and self.min_accuracy is None:
            raise ConfigError("give an energy budget (--budget 2mJ) or --min-accuracy")
        if self.budget_mj is not None and not self.budget_mj > 0:
            raise ConfigError(f"the energy budget must be > 0 mJ, got {self.budget_mj}")
        if self.min_accuracy is not None and not 0 < self.min_accuracy <= 1:
            raise ConfigError(f"--min-accuracy must be in (0, 1], got {self.min_accuracy}")
        if not 1 <= self.local_stages <= 3:
            raise ConfigError(f"local stages must be 1-3, got {self.local_stages}")
        if len(self.families) not in (1, self.local_stages):
            raise ConfigError(
                f"give one family or one per local stage ({self.local_stages}), "
                f"got {len(self.families)}"
            )
        unknown = [f for f in self.families if f not in list_networks()]
        if unknown:
            raise ConfigError(
                f"unknown network family {unknown[0]!r}; known: {', '.join(list_networks())}"
            )
        if not isinstance(self.search, tuple(SEARCH_SETTINGS.values())):
            raise ConfigError(f"search settings of an unknown method: {self.search!r}")
        object.__setattr__(self, "search", self.search.checked(self))

    @property
    def method(self) -> str:
        """The design method: ``bo`` or ``single-path`` (the kind of ``search``)."""
        return self.search.METHOD

    @property
    def stage_families(self) -> tuple[str, ...]:
        """The family of each local stage."""
        if len(self.families) == 1:
            return self.families * self.local_stages
        return self.families

    @property
    def baseline_family(self) -> str:
        """The family of the single networks and big/little pairs the design is compared
        with: the last local stage's (an mlp in front of conv stages is compared with conv
        networks, the black boxes a cascade of CNNs replaces)."""
        return self.stage_families[-1]

    @property
    def has_cloud(self) -> bool:
        return self.link != "none"

    def to_dict(self) -> dict[str, Any]:
        """The flat mapping a config file holds: common settings, ``method``, then the
        method's settings."""
        common = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del common["search"]
        common["families"] = list(self.families)
        return {**common, "method": self.method, **dataclasses.asdict(self.search)}

    def changed(self, **values: Any) -> DesignConfig:
        """A copy with some settings (of either part) changed, checked like a file's."""
        return DesignConfig.from_dict({**self.to_dict(), **values})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "design settings") -> DesignConfig:
        """Build from a flat mapping (a YAML file); an unknown key, a setting of the other
        method or a value of the wrong type or range is an error naming the key."""
        method = d.get("method", "bo")
        if method not in SEARCH_SETTINGS:
            raise ConfigError(
                f"{source}: method must be one of {', '.join(SEARCH_SETTINGS)}, got {method!r}"
            )
        own = SEARCH_SETTINGS[method]
        _refuse_foreign_keys(d, own, source)
        common = dict(values_of((cls,), d, source))
        common.setdefault("families", getattr(own, "DEFAULT_FAMILIES", cls.families))
        search = own(**dict(values_of((own,), d, source)))
        return cls(**common, search=search)


def _refuse_foreign_keys(d: Mapping[str, Any], own: type, source: str) -> None:
    keys = set(d) - {"method"}
    unknown = sorted(keys - known_keys(DesignConfig) - known_keys(own))
    for other_method, other in SEARCH_SETTINGS.items():
        flags = {d.name: d.flag for d in declared(other)}
        foreign = sorted(f"{k} ({flags.get(k, k)})" for k in unknown if k in known_keys(other))
        if foreign:
            raise ConfigError(
                f"{source}: {', '.join(foreign)} are settings of --method {other_method}, "
                f"not of --method {own.METHOD}"
            )
    if unknown:
        raise ConfigError(f"{source}: unknown design settings: {', '.join(unknown)}")


#: the settings that name a search's journalled evaluations (with the budget, which is
#: compared with a tolerance): a journal written under other values is not reused
JOURNAL_KEYS = ("method", *journal_keys(DesignConfig, *SEARCH_SETTINGS.values()))
