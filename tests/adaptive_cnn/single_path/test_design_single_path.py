"""The single-path design method (``design`` of a single-path config) end to end on
digits."""

from __future__ import annotations

import pytest

from adaptive_cnn.design import DesignConfig, design
from adaptive_cnn.networks import parse_arch


def _config(predictor_file, **changes) -> DesignConfig:
    """A tiny single-path design on digits, settings changed by keyword (flat)."""
    return DesignConfig.from_dict(
        {
            "method": "single-path",
            "dataset": "digits",
            "predictor": predictor_file,
            "link": "none",
            "local_stages": 1,
            "search_epochs": 2,
            "warmup_epochs": 1,
            "proxy_subset": 256,
            "lambda_trials": 2,
            "final_epochs": 1,
            "threads": 1,
            **changes,
        }
    )


def _design(predictor_file, tmp_path, **changes) -> dict:
    """The summary of :func:`_config`'s design, run in ``tmp_path / "run"``."""
    config = _config(predictor_file, **changes)
    result = design(config, tmp_path / "run", baselines=False, cache_root=tmp_path / "cache")
    return result.summary


def test_single_path_design_writes_a_run_folder(predictor_file, tmp_path) -> None:
    result = _design(predictor_file, tmp_path, budget="15mJ")
    assert result["method"] == "single-path" and result["config"]["method"] == "single-path"
    assert result["energy_source"] == "estimated" and result["budget_mj"] == 15.0
    (stage,) = result["stages"]
    assert parse_arch(stage["arch"]).family == "mbconv"
    sp = result["single_path"]
    assert sp["arch"] == stage["arch"] and sp["energy_label"] == "estimated"
    assert stage["energy_mj"] == pytest.approx(sp["energy_mj"]) and sp["energy_mj"] <= 15.0
    assert 1 <= len(sp["trials"]) <= 2 and sp["warmup_epochs"] == 1
    assert sp["search_epochs"] == 1 + len(sp["trials"])  # warm-up once, then 1 epoch each
    assert sp["search_seconds"] > 0 and result["evaluations"] == 1
    assert sp["stage1_training"] == "from scratch" and sp["stage1_epochs"] == 1
    run = tmp_path / "run"
    for name in ("config.yaml", "design.yaml", "result.json", "search.csv", "stage1.pt"):
        assert (run / name).exists()


def test_the_found_network_can_be_fine_tuned_from_the_supernet(predictor_file, tmp_path) -> None:
    result = _design(predictor_file, tmp_path, budget="15mJ", finetune_epochs=0.5)
    sp = result["single_path"]
    assert sp["stage1_training"] == "fine-tuned from the supernet's weights"
    assert sp["stage1_epochs"] == 0.5 and result["config"]["finetune_epochs"] == 0.5
    assert result["stages"][0]["arch"] == sp["arch"] and 0 <= result["test_accuracy"] <= 1


def test_single_path_cascade_takes_a_reference_stage(predictor_file, tmp_path) -> None:
    result = _design(predictor_file, tmp_path, budget="40mJ", local_stages=2, search_width=0.5)
    first, second = (s["arch"] for s in result["stages"])
    assert second.startswith("mbconv:")
    assert result["stages"][1]["energy_mj"] > result["stages"][0]["energy_mj"]
    assert result["stages"][0]["energy_mj"] <= 20.0  # half the budget: another stage follows
    assert len(result["thresholds"]) == 1 and result["energy_mj"] <= 40.0


def test_the_budget_cost_form_settles_in_one_trial(predictor_file, tmp_path) -> None:
    result = _design(predictor_file, tmp_path, budget="15mJ", cost_form="budget", lambda_trials=1)
    sp = result["single_path"]
    assert result["config"]["cost_form"] == "budget"
    assert sp["search"]["cost_form"] == "budget" and sp["search"]["budget_mj"] == 15.0
    (trial,) = sp["trials"]
    assert trial["energy_mj"] <= 15.0 and trial["raw_energy_mj"] >= trial["energy_mj"]
    assert result["stages"][0]["energy_mj"] == pytest.approx(trial["energy_mj"])
