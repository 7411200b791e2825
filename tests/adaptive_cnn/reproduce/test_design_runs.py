"""Journal reuse rules shared by the adaptive and hyperpower experiments."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

from adaptive_cnn.design import journal
from adaptive_cnn.reproduce import ReproduceError
from adaptive_cnn.reproduce import design_runs as dr

SETTINGS = dr.SearchSettings(
    dataset="digits", seeds=(0,), trials=3, initial_points=3, candidates=40, proxy_subset=300,
    proxy_epochs=1.0, final_epochs=1.0, rerank=1, threads=1,
)  # fmt: skip


def test_matching_settings_have_no_mismatch_and_trials_do_not_count():
    wanted = SETTINGS.design_config(0, "bo", "inner", 2.0).to_dict()
    assert journal.mismatches({**wanted, "trials": 99, "rerank": 5}, wanted) == []
    assert journal.mismatches({**wanted, "budget_mj": 2.0 * (1 + 1e-12)}, wanted) == []


def test_mismatches_name_the_setting_and_both_values():
    wanted = SETTINGS.design_config(0, "bo", "inner", 2.0).to_dict()
    saved = {**wanted, "dataset": "fashion-mnist", "budget_mj": 4.19, "strategy": "random"}
    found = journal.mismatches(saved, wanted)
    assert any(m.startswith("budget_mj 4.19 (wanted 2)") for m in found)
    assert "dataset 'fashion-mnist' (wanted 'digits')" in found
    assert "strategy 'random' (wanted 'bo')" in found
    old = {k: v for k, v in wanted.items() if k != "metric"}  # older journals lack fields
    assert journal.mismatches(old, wanted) == []


def test_check_journal_refuses_another_search_and_an_unknown_one(tmp_path):
    config = SETTINGS.design_config(0, "bo", "inner", 2.0)
    run_dir = tmp_path / "seed0" / "bo"
    run_dir.mkdir(parents=True)
    dr.check_journal(run_dir, config)  # empty folder: fine
    (run_dir / "journal.jsonl").write_text("{}\n")
    with pytest.raises(ReproduceError, match="settings are unknown"):
        dr.check_journal(run_dir, config)
    (run_dir / "config.json").write_text(json.dumps({**config.to_dict(), "dataset": "mnist"}))
    with pytest.raises(ReproduceError, match="belongs to another search: dataset 'mnist'"):
        dr.check_journal(run_dir, config)


def test_saved_budget_must_agree_across_searches(tmp_path):
    assert dr.saved_budget(tmp_path, ("bo", "random")) is None
    for name, budget in (("bo", 2.0), ("random", 2.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"budget_mj": budget}))
    assert dr.saved_budget(tmp_path, ("bo", "random")) == 2.0
    (tmp_path / "random" / "config.json").write_text(json.dumps({"budget_mj": 3.0}))
    with pytest.raises(ReproduceError, match="disagree on the budget"):
        dr.saved_budget(tmp_path, ("bo", "random"))


def _iso_case(margin_rule: str):
    """A 2-stage cascade over 400 validation (and test) images whose last stage is the
    best single; stage 1's confidence is uninformative, so every image it keeps costs
    accuracy and a higher target needs more images sent on."""
    from types import SimpleNamespace

    import numpy as np

    from selector import StageCosts

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)

    def probs(accuracy: float) -> np.ndarray:
        right = rng.random(400) < accuracy
        guess = np.where(right, labels, (labels + 1) % 10)
        p = np.full((400, 10), 0.01)
        p[np.arange(400), guess] = rng.uniform(0.2, 0.9, 400)
        return p / p.sum(1, keepdims=True)

    little = SimpleNamespace(val_probs=probs(0.8), test_probs=probs(0.8))
    big = SimpleNamespace(val_probs=probs(0.95), test_probs=probs(0.95))
    split = SimpleNamespace(labels=labels)
    settings = dataclasses.replace(SETTINGS, iso_margin=margin_rule)
    bench = dr.DesignBench(settings, SimpleNamespace(val=split, test=split), None, None, ".", print)
    costs = StageCosts(
        energy_mj=np.array([1.0, 10.0]),
        latency_ms=np.zeros(2),
        payload_bytes=np.zeros(2),
        remote=np.array([False, False]),
    )
    target = float((big.val_probs.argmax(1) == labels).mean()) - 0.05
    return bench, [little, big], costs, target, big


def test_iso_margin_raises_the_validation_target_by_the_paired_standard_error():
    import numpy as np

    from selector import CascadeData, cascade_correct, paired_standard_error

    bench, results, costs, target, reference = _iso_case("paired-se")
    plain = _iso_case("none")[0].iso_system(results, costs, target, reference=reference)
    row = bench.iso_system(results, costs, target, reference=reference)
    assert plain["val_margin_points"] == 0.0 and plain["val_target_accuracy"] == target
    labels = bench.dataset.val.labels
    val = CascadeData.from_probs([r.val_probs for r in results], labels, "margin")
    expected = paired_standard_error(
        cascade_correct(val, np.asarray(plain["thresholds"])),
        reference.val_probs.argmax(1) == labels,
    )
    assert row["val_margin_points"] == pytest.approx(100 * expected) and expected > 0
    assert row["val_accuracy"] >= target + expected > plain["val_accuracy"] - 1e-12
    assert row["energy_mj"] > plain["energy_mj"]  # the margin is paid in energy
    assert row["val_target_met"]
    # without a reference there is nothing to be paired with: the target as is
    assert bench.iso_system(results, costs, target)["val_margin_points"] == 0.0


def test_stage_families_apply_per_searched_stage_and_keep_the_last_stage_family():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    dr.add_search_arguments(p, "seeds")
    args = p.parse_args(
        ["--quick", "--stage-family", "mlp", "--stage-family", "conv", "--stage-family", "conv"]
    )
    settings = dr.settings_from_args(args)
    assert settings.family == "conv" and settings.stage_families == ("mlp", "conv", "conv")
    assert settings.design_config(0, "bo", "inner", 5.0, stages=3).families == (
        "mlp",
        "conv",
        "conv",
    )
    # a 2-stage search of the same run: the first stage's family, then the last's
    assert settings.design_config(0, "bo", "inner", 5.0, stages=2).families == ("mlp", "conv")
    plain = dr.settings_from_args(p.parse_args(["--quick"]))
    assert plain.design_config(0, "bo", "inner", 5.0, stages=3).families == ("conv",)
