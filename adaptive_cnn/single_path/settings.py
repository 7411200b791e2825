"""Settings of ``method: single-path`` (declared once, like every design setting)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from adaptive_cnn.design.settings import declare, validate
from adaptive_cnn.errors import ConfigError
from adaptive_cnn.networks.mbconv import WIDTHS
from adaptive_cnn.single_path.search import COST_FORMS

if TYPE_CHECKING:
    from adaptive_cnn.design.config import DesignConfig

FAMILY = "mbconv"  # the only family the superkernel covers


@dataclass(frozen=True)
class SinglePathSettings:
    """Stage 1 found by the superkernel search of :mod:`adaptive_cnn.single_path`, later
    stages the family's reference networks, thresholds solved by ``selector``.

    Attributes:
        search_epochs: supernet training epochs per search, warm-up included (on the
            run's ``proxy_subset`` training images).
        warmup_epochs: leading epochs in which only the weights train.
        lambda_trials: searches of the automatic lambda at most.
        initial_lambda: the first search's energy weight lambda.
        cost_form: the energy term of the search's loss, ``log`` (lambda x ln E) or
            ``budget`` (lambda x max(0, ln(E / stage-1 budget)); the found network is then
            fitted into the budget by dropping its weakest choices).
        stage1_share: share of the budget the stage-1 network may cost (None: all of it
            for a lone local network, half when later stages follow).
        search_width: width multiplier of the supernet (None: the widest whose cheapest
            network costs at most half the stage-1 budget).
        finetune_epochs: start the found network from the supernet's weights and train it
            this many epochs, instead of ``final_epochs`` from scratch (None: from scratch).
    """

    METHOD = "single-path"
    DEFAULT_FAMILIES = (FAMILY,)

    search_epochs: float = declare(
        4.0, "supernet training epochs per search, warm-up included, on --proxy-subset images",
        unit="EPOCHS", above=0,
    )  # fmt: skip
    warmup_epochs: float = declare(
        1.0, "leading epochs in which only the weights train, thresholds frozen",
        unit="EPOCHS", minimum=0,
    )  # fmt: skip
    lambda_trials: int = declare(4, "searches of the automatic energy weight lambda, at most",
                                 unit="N", minimum=1)  # fmt: skip
    initial_lambda: float = declare(0.5, "lambda of the first search, the energy term's weight",
                                    unit="X", above=0)  # fmt: skip
    cost_form: str = declare(
        "log",
        "energy term of the search loss: log = lambda x ln(energy in mJ); budget = lambda x "
        "max(0, ln(energy / stage-1 budget)), after which the found network is fitted into "
        "the budget by dropping its weakest choices, so one lambda trial can do",
        choices=COST_FORMS,
    )
    stage1_share: float | None = declare(
        None,
        "share (0-1] of --budget the first network may cost (none = 1 for a lone local "
        "network, 0.5 when other stages follow)",
        unit="X",
        above=0,
        maximum=1,
        label="stage-1 share",
    )
    search_width: float | None = declare(
        None,
        "width multiplier of the supernet (none = the widest whose cheapest network costs "
        "at most half the stage-1 budget)",
        unit="W",
        choices=WIDTHS,
    )
    finetune_epochs: float | None = declare(
        None,
        "start the found network from the supernet's weights and train it E epochs instead "
        "of --final-epochs from scratch (none = from scratch)",
        unit="EPOCHS",
        above=0,
        label="fine-tune epochs",
    )

    def __post_init__(self) -> None:
        validate(self)
        if not self.warmup_epochs < self.search_epochs:
            raise ConfigError(
                f"warm-up epochs must be fewer than search epochs, got {self.warmup_epochs} "
                f"and {self.search_epochs}"
            )

    def checked(self, config: DesignConfig) -> SinglePathSettings:
        """These settings, refused where the run's other settings rule them out."""
        if config.stage_families[0] != FAMILY:
            raise ConfigError(
                f"--method single-path searches the {FAMILY} family, but stage 1 is "
                f"{config.stage_families[0]!r}: use --family {FAMILY}"
            )
        if config.budget_mj is None:
            raise ConfigError("--method single-path needs an energy budget (--budget 2mJ)")
        return self

    def stage1_budget_mj(self, config: DesignConfig) -> float:
        """The budget of the stage-1 network alone (see ``stage1_share``)."""
        alone = config.local_stages == 1 and not config.has_cloud
        share = self.stage1_share if self.stage1_share is not None else (1.0 if alone else 0.5)
        return config.budget_mj * share
