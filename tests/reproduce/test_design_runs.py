"""Journal reuse rules shared by the adaptive and hyperpower experiments."""

from __future__ import annotations

import json

import pytest

from adaptive_cnn.reproduce import ReproduceError
from adaptive_cnn.reproduce import design_runs as dr

SETTINGS = dr.SearchSettings(
    dataset="digits", seeds=(0,), trials=3, initial_points=3, candidates=40, proxy_subset=300,
    proxy_epochs=1.0, final_epochs=1.0, rerank=1, threads=1,
)  # fmt: skip


def test_matching_settings_have_no_mismatch_and_trials_do_not_count():
    wanted = SETTINGS.design_config(0, "bo", "inner", 2.0).to_dict()
    assert dr.journal_mismatches({**wanted, "trials": 99, "rerank": 5}, wanted) == []
    assert dr.journal_mismatches({**wanted, "budget_mj": 2.0 * (1 + 1e-12)}, wanted) == []


def test_mismatches_name_the_setting_and_both_values():
    wanted = SETTINGS.design_config(0, "bo", "inner", 2.0).to_dict()
    saved = {**wanted, "dataset": "fashion-mnist", "budget_mj": 4.19, "strategy": "random"}
    found = dr.journal_mismatches(saved, wanted)
    assert any(m.startswith("budget_mj 4.19 (wanted 2)") for m in found)
    assert "dataset 'fashion-mnist' (wanted 'digits')" in found
    assert "strategy 'random' (wanted 'bo')" in found
    old = {k: v for k, v in wanted.items() if k != "metric"}  # older journals lack fields
    assert dr.journal_mismatches(old, wanted) == []


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
