"""The design API on the bundled digits with a hand-made energy predictor (closed-form costs).

The predictor charges every layer a fixed time plus time per MAC at a constant power, so
predicted energies are known by hand; searches are tiny (a few trials, small proxy
budgets) and run end to end: search, journal, resume, final training, test evaluation.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from adaptive_cnn.design import (
    BOSettings,
    Candidate,
    CascadeSpace,
    DesignConfig,
    DesignError,
    design,
)
from adaptive_cnn.design.designer import constraint_violation, loss_of
from adaptive_cnn.errors import ConfigError
from adaptive_cnn.networks import get_family

POWER_W = 10.0  # the conftest design predictor's constant power


def test_config_needs_a_budget_and_rejects_unknown_settings() -> None:
    with pytest.raises(ConfigError, match="budget"):
        DesignConfig()
    with pytest.raises(ConfigError, match="unknown design settings: bogus"):
        DesignConfig.from_dict({"budget_mj": 1.0, "bogus": 1})
    with pytest.raises(ConfigError, match="one per local stage"):
        DesignConfig(budget_mj=1.0, local_stages=3, families=("conv", "mbconv"))


def test_space_decodes_stages_and_joint_thresholds() -> None:
    space = CascadeSpace(("conv", "mbconv"), thresholds=2)
    point = space.sample(np.random.default_rng(0))
    candidate = space.decode(point)
    assert candidate.stages[0].startswith("conv:") and candidate.stages[1].startswith("mbconv:")
    assert len(candidate.thresholds) == 2 and all(0 <= t <= 1 for t in candidate.thresholds)
    assert space.decode(space.canonical(point)) == candidate
    assert len(space.skopt_dimensions()) == len(point)


def test_space_encodes_stage_strings_and_lists_the_reference_cascades() -> None:
    space = CascadeSpace(("conv", "conv"), thresholds=1)
    stages = ("conv:c16k3p-fc32", "conv:bn-c32k3-c64k5p-fc128")
    assert space.decode(space.encode(stages, [0.25])) == Candidate(stages, (0.25,))
    with pytest.raises(ValueError, match="not of the conv family"):
        space.encode(("mbconv:stem8-m8k3e1-head64", stages[1]))
    refs = [space.decode(p).stages for p in space.reference_cascades()]
    small, medium, large = (f"conv:{a.to_str()}" for a in get_family("conv").references().values())
    assert refs == [(small, medium), (small, large), (medium, large)]
    assert [space.decode(p).thresholds for p in space.reference_cascades()] == [(0.5,)] * 3


def test_mixed_family_reference_cascades_pair_every_size_across_the_family_change() -> None:
    conv = [f"conv:{a.to_str()}" for a in get_family("conv").references().values()]
    mlp = [f"mlp:{a.to_str()}" for a in get_family("mlp").references().values()]
    space = CascadeSpace(("mlp", "conv"), thresholds=0, fixed=(conv[2],))
    refs = [space.decode(p).stages for p in space.reference_cascades()]
    # any mlp before the conv small or medium; none repeats the fixed conv large
    assert refs == [(m, c, conv[2]) for m in mlp for c in conv[:2]]


def test_loss_prefers_feasible_designs() -> None:
    config = DesignConfig(budget_mj=2.0)
    ok = {"accuracy": 0.9, "energy_mj": 2.0, "bytes_per_image": 0.0}
    over = {"accuracy": 0.99, "energy_mj": 3.0, "bytes_per_image": 0.0}
    assert constraint_violation(ok, config) == 0 and loss_of(ok, config) == -0.9
    assert constraint_violation(over, config) == pytest.approx(0.5)  # 3 / 2 - 1
    assert loss_of(over, config) == pytest.approx(1.5)
    assert loss_of(over, config) > loss_of(ok, config)
    energy_mode = DesignConfig(min_accuracy=0.95)
    assert loss_of(over, energy_mode) == pytest.approx(np.log(3.0))
    assert loss_of(ok, energy_mode) == pytest.approx(100.05)  # 5 points below the floor
    # below the floor, the least short ranks first, whatever its energy
    cheap_but_far = {"accuracy": 0.5, "energy_mj": 0.1, "bytes_per_image": 0.0}
    assert loss_of(cheap_but_far, energy_mode) > loss_of(ok, energy_mode)


def test_design_end_to_end_then_resume_after_a_torn_journal(tiny_config, tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    config = tiny_config()
    result = design(config, out, cache_root=cache).summary
    for key in (
        "energy_mj",
        "budget_mj",
        "test_accuracy",
        "val_accuracy",
        "offload_rate",
        "bytes_per_image",
        "stages",
        "thresholds",
        "evaluations",
        "trained_infeasible",
        "energy_source",
    ):
        assert key in result
    assert result["energy_source"] == "estimated" and result["budget_mj"] == 1.0
    assert result["val_energy_mj"] <= 1.0 * (1 + 1e-9)  # the budget binds on validation
    assert result["evaluations"] == 3 and result["trained_infeasible"] == 0
    assert result["test_accuracy"] > 0.5
    # predicted stage energy is the closed form: layers x 0.001 ms + MACs x 1e-6 ms, x 10 W
    stage = result["stages"][0]
    assert stage["energy_mj"] == pytest.approx(stage["latency_ms"] * POWER_W)
    journal = (out / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 3
    for name in ("design.yaml", "search.csv", "pareto.csv", "stage1.pt", "config.yaml"):
        assert (out / name).exists()
    assert not (out / "cloud.pt").exists()  # link none: no cloud model
    assert result["stages"][0]["weights"] == "stage1.pt"
    assert result["input"]["shape"] == [1, 8, 8] and result["input"]["num_classes"] == 10
    assert result["input"]["preprocessing"]["pixel_max"] == 16.0
    systems = {row["system"]: row for row in result["baselines"]}
    assert set(systems) == {
        "single:small",
        "single:medium",
        "single:large",
        "big/little",
        "all-local-largest",
    }  # no cloud baseline with link none
    # a single network answers every image itself: its energy is its predicted energy
    assert systems["single:small"]["offload_rate"] == 0.0
    assert systems["all-local-largest"]["energy_mj"] == systems["single:large"]["energy_mj"]
    assert (out / "baselines.csv").read_text().count("\n") == 1 + len(systems)
    # a crash while writing the third evaluation: two lines and a torn one are left
    (out / "journal.jsonl").write_text("\n".join(journal[:2]) + "\n" + journal[2][:30])
    with pytest.warns(UserWarning, match="damaged"):
        resumed = design(config, out, resume=True, cache_root=cache).summary
    assert resumed["evaluations"] == 3
    assert resumed["stages"] == result["stages"] and resumed["thresholds"] == result["thresholds"]
    records = [
        json.loads(x)
        for x in (out / "journal.jsonl").read_text().splitlines()
        if x.startswith("{") and x.endswith("}")
    ]
    assert [r["index"] for r in records] == [0, 1, 2]
    assert records[2]["stages"] == json.loads(journal[2])["stages"]  # same proposal again


def test_an_impossible_budget_is_a_one_line_design_error(tiny_config, tmp_path) -> None:
    config = tiny_config(budget="1nJ")
    with pytest.raises(DesignError, match="^no design can meet") as raised:
        design(config, tmp_path / "run", baselines=False, cache_root=tmp_path / "cache")
    assert len(str(raised.value).splitlines()) == 1


def test_min_accuracy_is_judged_after_full_training_not_at_proxy(tiny_config, tmp_path) -> None:
    # 300 images x 1 epoch leaves every cascade far below 80% on validation; fully
    # trained, the best shortlisted one gets above it. The accuracy constraint is the one
    # proxy training cannot judge, so those candidates are re-ranked instead of refused.
    out, cache = tmp_path / "run", tmp_path / "cache"
    config = tiny_config(budget="30mJ", trials=4, min_accuracy=0.8, rerank=2)
    result = design(config, out, baselines=False, cache_root=cache).summary
    journal = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert not any(r["feasible"] for r in journal)  # nothing reached 80% at proxy
    assert all(r["metrics"]["energy_mj"] <= 30 for r in journal)  # but all within budget
    assert result["val_accuracy"] >= 0.8 and result["energy_mj"] <= 30
    assert result["trained_infeasible"] == 0  # short of the floor at proxy is not counted
    assert len(result["reranked"]) >= 2
    # the least energy among the re-ranked designs that reach 80% fully trained wins,
    # unless a cascade of the fully trained networks needs less (then it is that one)
    reaching = [r for r in result["reranked"] if r["final_val_accuracy"] >= 0.8]
    cheapest = min(reaching, key=lambda r: r["energy_mj"])
    combined = result["combination"]
    assert combined["best"]["val_energy_mj"] <= cheapest["energy_mj"] + 1e-12
    assert result["val_energy_mj"] == pytest.approx(combined["best"]["val_energy_mj"])
    if result["found_by"] == "search":
        assert result["best_evaluation"] == cheapest["index"]
    else:
        assert result["best_evaluation"] is None
        assert combined["best"]["val_energy_mj"] < cheapest["energy_mj"]
    assert [s["arch"] for s in result["stages"]] == combined["best"]["stages"]
    # unreachable even fully trained: a one-line error, the journal kept for resuming
    high = config.changed(min_accuracy=0.999)
    with pytest.raises(DesignError, match="fully trained either") as raised:
        design(high, tmp_path / "high", baselines=False, cache_root=cache)
    assert len(str(raised.value).splitlines()) == 1
    assert len((tmp_path / "high" / "journal.jsonl").read_text().splitlines()) == 4


def test_joint_mode_with_a_cloud_stage_and_the_unaware_search(tiny_config, tmp_path):
    # a generous budget: this predictor charges big networks tens of mJ, and an offload
    # costs ~99 mJ (28 mJ WiFi tail + 2 W idle x 35 ms round trip and cloud time)
    config = tiny_config(
        budget="400mJ",
        link="wifi",
        mode="joint",
        strategy="bo-unaware",
        cloud_arch="conv:c8k3-fc16",
        cloud_epochs=1,
        local_stages=1,
    )
    result = design(config, tmp_path / "run", cache_root=tmp_path / "cache").summary
    assert len(result["thresholds"]) == 1  # one local stage, then the cloud
    assert result["stages"][-1]["where"] == "cloud over wifi"
    assert result["stages"][-1]["payload_bytes"] == 8 * 8  # one uint8 digit image
    # the run folder holds every stage's weights: the runtime serves the cloud model
    assert result["stages"][-1]["weights"] == "cloud.pt"
    assert (tmp_path / "run" / "cloud.pt").exists()
    assert result["bytes_per_image"] == pytest.approx(64 * result["offload_rate"])
    cloud = next(r for r in result["baselines"] if r["system"] == "all-cloud")
    assert cloud["offload_rate"] == 1.0 and cloud["bytes_per_image"] == 64
    journal = [json.loads(x) for x in (tmp_path / "run" / "journal.jsonl").read_text().split()]
    # joint mode: each evaluation used the thresholds it proposed, not solved ones
    assert all(r["thresholds"] == r["point"][-1:] for r in journal)
    assert result["trained_infeasible"] == sum(not r["feasible"] for r in journal)


def test_default_predictor_profiles_once_then_reuses_the_file(tmp_path, monkeypatch) -> None:
    import adaptive_cnn.profiling as profiling
    from adaptive_cnn.design import default_predictor
    from energy_models.devices import load_device
    from energy_models.predictor import EnergyPredictor

    device = load_device("local")
    small = profiling.SweepSize(layer_networks=1, max_layers=10, networks=12)
    monkeypatch.setattr(profiling, "ORT_QUICK_SIZE", small)  # the test's own, not the time
    monkeypatch.setattr(profiling, "QUICK_SIZE", small)
    monkeypatch.setattr(profiling, "ORT_GRID_CHANNELS", (5, 8))
    monkeypatch.setattr(profiling, "GRID_CHANNELS", (8,))
    news: list[str] = []
    path = default_predictor(device, tmp_path, news.append)
    predictor = EnergyPredictor.load(path)
    assert (predictor.device, predictor.runtime, predictor.threads) == (
        "local",
        device.runtime,
        device.threads,
    )
    assert len(news) == 1 and "profiling this machine once" in news[0]

    def no_profiling(*args, **kwargs):
        raise AssertionError("a cached predictor must not be profiled again")

    monkeypatch.setattr(profiling, "take_profile", no_profiling)
    assert default_predictor(device, tmp_path, news.append) == path and len(news) == 1


def test_search_starts_from_the_reference_cascades_and_reranks_at_full_training(
    tiny_config, tmp_path
):
    # 30 mJ: every reference network of the closed-form predictor fits (the large one
    # needs ~12.5 mJ), so all three hand-picked pairs pass the screen
    out, cache, said = tmp_path / "run", tmp_path / "cache", []
    config = tiny_config(budget="30mJ", trials=4, rerank=2)
    result = design(config, out, baselines=False, cache_root=cache, say=said.append).summary
    journal = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    small, medium, large = (f"conv:{a.to_str()}" for a in get_family("conv").references().values())
    assert [tuple(r["stages"]) for r in journal[:3]] == [
        (small, medium),
        (small, large),
        (medium, large),
    ]
    # the two best feasible designs of the search, and every other feasible reference pair,
    # were trained fully; the best of them on validation wins
    ranked = result["reranked"]
    feasible = sorted((r for r in journal if r["feasible"]), key=lambda r: (r["loss"], r["index"]))
    refs = {(small, medium), (small, large), (medium, large)}
    expected = feasible[:2] + [r for r in feasible[2:] if tuple(r["stages"]) in refs]
    assert [r["index"] for r in ranked] == [r["index"] for r in expected]
    assert len(ranked) >= 3  # all three reference pairs are feasible at 30 mJ
    winner = min(ranked, key=lambda r: r["loss"])
    assert result["best_evaluation"] == winner["index"]
    assert [s["arch"] for s in result["stages"]] == winner["stages"]
    assert result["val_accuracy"] == pytest.approx(winner["final_val_accuracy"])
    # each final training is announced, then reported with its validation figures
    finals = [x for x in said if x.startswith("final training")]
    assert len(finals) == 2 * len(ranked)
    assert finals[-1].startswith(f"final training {len(ranked)}/{len(ranked)}: val accuracy")
    # without reference seeds the first design is a random one
    plain = tiny_config(budget="30mJ", trials=1, reference_seeds=False, rerank=1)
    design(plain, tmp_path / "plain", baselines=False, cache_root=cache)
    first = json.loads((tmp_path / "plain" / "journal.jsonl").read_text().splitlines()[0])
    assert tuple(first["stages"]) != (small, medium)


def test_space_with_a_fixed_last_stage_searches_only_the_stages_before_it() -> None:
    small, medium, large = (f"conv:{a.to_str()}" for a in get_family("conv").references().values())
    space = CascadeSpace(("conv",), thresholds=0, fixed=(large,))
    point = space.sample(np.random.default_rng(0))
    assert len(point) == len(get_family("conv").dimensions())  # one searched stage
    assert space.decode(point).stages[-1] == large
    assert space.decode(space.encode(("conv:c16k3p-fc32", large))).stages[0] == "conv:c16k3p-fc32"
    with pytest.raises(ValueError, match="end with the fixed stages"):
        space.encode(("conv:c16k3p-fc32", medium))
    # the hand-picked pairs ending in the fixed network, none of it twice
    assert [space.decode(p).stages for p in space.reference_cascades()] == [
        (small, large),
        (medium, large),
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"last_stage": "large", "local_stages": 1}, "--stages 2 or more"),
        ({"last_stage": "c8k3-zz"}, "--last-stage: bad conv architecture"),
        ({"last_stage": "mbconv:stem8-m8k3e1-head64"}, "is a mbconv network"),
        ({"last_stage": "large", "method": "single-path", "families": ("mbconv",)}, "--method bo"),
    ],
)
def test_a_bad_last_stage_is_a_config_error(settings, message) -> None:
    with pytest.raises(ConfigError, match=message):
        DesignConfig.from_dict({"budget_mj": 30.0, **settings})
    large = get_family("conv").references()["large"].to_str()
    config = DesignConfig(budget_mj=30.0, search=BOSettings(last_stage="large"))
    assert config.search.last_stage == f"conv:{large}"


def test_design_with_a_fixed_last_stage_trains_it_once_at_the_final_budget(tiny_config, tmp_path):
    from adaptive_cnn.training import TrainingCache

    out, cache = tmp_path / "run", tmp_path / "cache"
    last = "conv:c16k3-c16k3p-fc32"
    config = tiny_config(budget="30mJ", trials=3, last_stage=last, rerank=1)
    result = design(config, out, baselines=False, cache_root=cache).summary
    journal = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert len(journal) == 3 and all(r["stages"][-1] == last for r in journal)
    assert all(len(r["stages"]) == 2 for r in journal)
    assert result["stages"][1]["arch"] == last and result["config"]["last_stage"] == last
    # the fixed stage was trained with the final budget (never with the proxy budget)
    trained = [m for m in TrainingCache(cache).entries() if m["arch"] == last.split(":")[1]]
    assert [m["config"]["subset"] for m in trained] == [None]
    # its search evaluations used those fully trained probabilities: a resume re-tells
    # them without training anything new
    design(config, out, resume=True, baselines=False, cache_root=cache)


def test_an_mlp_first_stage_in_front_of_conv_stages_is_compared_with_conv_baselines(
    tiny_config, tmp_path
):
    out, cache = tmp_path / "run", tmp_path / "cache"
    result = design(tiny_config(budget="30mJ", families=["mlp", "conv"]), out, cache_root=cache)
    summary = result.summary
    journal = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert all(r["stages"][0].startswith("mlp:") for r in journal)
    assert all(r["stages"][1].startswith("conv:") for r in journal)
    assert summary["stages"][0]["arch"].startswith("mlp:")
    # the single networks and big/little pairs are the last stage's family: conv
    conv = {f"conv:{a.to_str()}" for a in get_family("conv").references().values()}
    singles = [b for b in summary["baselines"] if b["system"].startswith("single:")]
    assert len(singles) == 3 and all(b["stages"] in conv for b in singles)
    assert DesignConfig(budget_mj=1.0, families=("mlp", "conv")).baseline_family == "conv"
