"""The resolved settings of one ``acnn design`` run (a frozen dataclass, YAML-able)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adaptive_cnn.errors import ArchitectureError, ConfigError
from adaptive_cnn.networks import get_family, parse_arch
from adaptive_cnn.networks.mbconv import WIDTHS as SEARCH_WIDTHS
from adaptive_cnn.single_path.search import COST_FORMS

MODES = ("inner", "joint")
STRATEGIES = ("bo", "bo-unaware", "random")
METHODS = ("bo", "single-path")
SINGLE_PATH_FAMILY = "mbconv"


@dataclass(frozen=True)
class DesignConfig:
    """What to design and how hard to search.

    Attributes:
        budget_mj: device energy budget per classified image, millijoules (None with
            ``min_accuracy``: minimise energy instead).
        min_accuracy: switch to minimising energy subject to validation accuracy >= this.
        max_bytes: bytes sent to the cloud per image, on average, at most (None: no limit).
        dataset: dataset name; ``data_dir`` its folder (None: the default place).
        local_stages: number of local networks in the cascade (1-3).
        families: network family per local stage (one name applies to every stage).
        link: radio link to the cloud stage, or ``none`` for an all-local cascade.
        device: device profile name or YAML path (memory limit, idle power, links).
        predictor: energy predictor file; None profiles this machine once (quick) and
            caches the fitted predictor.
        mode: ``inner`` solves thresholds exactly per candidate; ``joint`` makes them
            optimiser dimensions, as in the paper.
        strategy: ``bo`` (constraint-aware: candidates predicted infeasible are never
            proposed), ``bo-unaware`` or ``random``.
        trials: evaluations (candidate designs) in the search.
        initial_points: random evaluations before the Gaussian process leads.
        candidates: random candidates scored by the acquisition per step.
        seed: seed of the search; ``split_seed`` of the dataset split.
        proxy_epochs, proxy_subset: training budget per network during the search.
        final_epochs: training budget of the chosen design's networks.
        cloud_arch: architecture of the cloud model (trained once, cached).
        cloud_epochs: its training epochs.
        cloud_latency_ms: the cloud's inference time per image (the device waits).
        metric: confidence metric of the exit policy.
        threads: torch threads for training (None: torch's default).
        reference_seeds: the search's first points are the family's hand-picked cascades
            (reference networks in order of cost) that pass the screen, then random ones.
        rerank: the best ``rerank`` feasible designs of the search (and, when > 1, the
            feasible reference cascades it started from) are trained with the final
            budget and the best of them on validation is chosen (proxy training can
            misrank networks); 1 takes the search's best as it is.
        method: ``bo`` (the Designer's Bayesian optimisation over whole cascades) or
            ``single-path`` (stage 1 found by the superkernel search of
            :mod:`adaptive_cnn.single_path`, later stages the family's reference
            networks, thresholds solved by ``selector``).
        search_epochs: single-path: supernet training epochs per search, warm-up included
            (on ``proxy_subset`` training images).
        warmup_epochs: single-path: leading epochs in which only the weights train.
        lambda_trials: single-path: searches of the automatic lambda at most.
        initial_lambda: single-path: the first search's energy weight lambda.
        cost_form: single-path: the energy term of the search's loss, ``log`` (lambda x
            ln E) or ``budget`` (lambda x max(0, ln(E / stage-1 budget)); the found network
            is then fitted into the budget by dropping its weakest choices).
        stage1_share: single-path: share of ``budget_mj`` the stage-1 network may cost
            (None: all of it for a lone local network, half when later stages follow).
        search_width: single-path: width multiplier of the supernet (None: the widest
            whose cheapest network costs at most half the stage-1 budget).
        last_stage: bo: fix the last local stage to this network (``family:arch``, or a
            reference name ``small``, ``medium``, ``large`` of that stage's family),
            trained once with ``final_epochs`` and cached; the search covers the stages
            before it. Proxy training ranks large networks low, so a search of whole
            cascades rarely keeps a strong last stage; this one is fully trained.
        finetune_epochs: single-path: start the found network from the supernet's weights
            (:mod:`adaptive_cnn.single_path.inherit`) and train it this many epochs,
            instead of ``final_epochs`` from scratch (None: from scratch).
    """

    budget_mj: float | None = None
    min_accuracy: float | None = None
    max_bytes: float | None = None
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    local_stages: int = 2
    families: tuple[str, ...] = ("conv",)
    link: str = "wifi"
    device: str = "local"
    predictor: str | None = None
    mode: str = "inner"
    strategy: str = "bo"
    trials: int = 20
    initial_points: int = 6
    candidates: int = 300
    seed: int = 0
    split_seed: int = 0
    proxy_epochs: float = 1.0
    proxy_subset: int | None = 12000
    final_epochs: float = 3.0
    cloud_arch: str = "conv:bn-c32k3-c32k3p-c64k3p-c128k3p-fc256"
    cloud_epochs: float = 3.0
    cloud_latency_ms: float = 5.0
    metric: str = "margin"
    threads: int | None = None
    reference_seeds: bool = True
    rerank: int = 3
    method: str = "bo"
    search_epochs: float = 4.0
    warmup_epochs: float = 1.0
    lambda_trials: int = 4
    initial_lambda: float = 0.5
    cost_form: str = "log"
    stage1_share: float | None = None
    search_width: float | None = None
    finetune_epochs: float | None = None
    last_stage: str | None = None

    def __post_init__(self) -> None:
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
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        if self.trials < 1 or self.initial_points < 1 or self.candidates < 1:
            raise ConfigError("trials, initial points and candidates must be >= 1")
        if self.rerank < 1:
            raise ConfigError(f"rerank must be >= 1, got {self.rerank}")
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "single-path":
            self._check_single_path()
        if self.last_stage is not None:
            self._resolve_last_stage()

    def _resolve_last_stage(self) -> None:
        if self.method != "bo":
            raise ConfigError("--last-stage fixes a stage of the BO search (--method bo)")
        if self.local_stages < 2:
            raise ConfigError("--last-stage needs --stages 2 or more (a stage to search)")
        family = self.stage_families[-1]
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
        object.__setattr__(self, "last_stage", f"{family}:{arch.to_str()}")

    def _check_single_path(self) -> None:
        if self.stage_families[0] != SINGLE_PATH_FAMILY:
            raise ConfigError(
                f"--method single-path searches the {SINGLE_PATH_FAMILY} family, but stage 1 "
                f"is {self.stage_families[0]!r}: use --family {SINGLE_PATH_FAMILY}"
            )
        if self.budget_mj is None:
            raise ConfigError("--method single-path needs an energy budget (--budget 2mJ)")
        if not self.search_epochs > 0 or not 0 <= self.warmup_epochs < self.search_epochs:
            raise ConfigError(
                f"search epochs must be > 0 and warm-up epochs in [0, search epochs), got "
                f"{self.search_epochs} and {self.warmup_epochs}"
            )
        if self.lambda_trials < 1 or not self.initial_lambda > 0:
            raise ConfigError("lambda trials must be >= 1 and the initial lambda > 0")
        if self.cost_form not in COST_FORMS:
            raise ConfigError(
                f"cost form must be one of {', '.join(COST_FORMS)}, got {self.cost_form!r}"
            )
        if self.stage1_share is not None and not 0 < self.stage1_share <= 1:
            raise ConfigError(f"stage-1 share must be in (0, 1], got {self.stage1_share}")
        if self.finetune_epochs is not None and not self.finetune_epochs > 0:
            raise ConfigError(f"fine-tune epochs must be > 0, got {self.finetune_epochs}")
        if self.search_width is not None and self.search_width not in SEARCH_WIDTHS:
            raise ConfigError(
                f"search width must be one of {', '.join(map(str, SEARCH_WIDTHS))}, "
                f"got {self.search_width}"
            )

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
    def stage1_budget_mj(self) -> float | None:
        """The budget of the stage-1 network alone (single-path; see ``stage1_share``)."""
        if self.budget_mj is None:
            return None
        alone = self.local_stages == 1 and not self.has_cloud
        share = self.stage1_share if self.stage1_share is not None else (1.0 if alone else 0.5)
        return self.budget_mj * share

    @property
    def has_cloud(self) -> bool:
        return self.link != "none"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["families"] = list(self.families)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DesignConfig:
        """Build from a mapping (a YAML file); an unknown key is an error naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown design settings: {', '.join(unknown)}")
        values = dict(d)
        if "families" in values:
            families = values["families"]
            values["families"] = (families,) if isinstance(families, str) else tuple(families)
        return cls(**values)
