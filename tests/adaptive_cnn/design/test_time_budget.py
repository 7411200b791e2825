"""--time-limit bounds the whole design run: estimates, the search's stop, re-ranking.

The estimates scale each network's own proxy training of this run; the decisions are
tested with a frozen clock and a huge per-image factor, so they do not depend on how fast
this machine trains.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import yaml

from adaptive_cnn.design import DesignConfig, Designer, design, open_run, time_budget
from adaptive_cnn.design.final_choice import choose_final, final_reserve_s, shortlist
from adaptive_cnn.design.time_budget import Deadline, TimeEstimate, images_seen
from adaptive_cnn.errors import ConfigError
from adaptive_cnn.training import TrainConfig, train


def frozen(at: float, now: float = 0.0) -> Deadline:
    return Deadline(at, lambda: now)


def test_images_seen_counts_the_subset_times_the_epochs() -> None:
    assert images_seen(TrainConfig(epochs=1, subset=4000), 54000) == 4000
    assert images_seen(TrainConfig(epochs=2), 54000) == 108000
    assert images_seen(TrainConfig(epochs=0.5, subset=90000), 1000) == 500  # subset capped


def test_final_seconds_scale_proxy_trainings_and_skip_cached_or_unknown_networks() -> None:
    estimate = TimeEstimate.from_configs(
        {"a": 2.0, "b": 10.0, "c": 4.0},
        TrainConfig(epochs=1, subset=4000),
        TrainConfig(epochs=2),
        54000,
        is_final_trained=lambda arch: arch == "c",
    )
    scale = 27 * time_budget.FULL_OVER_PROXY_PER_IMAGE  # 108000 / 4000 images
    assert estimate.scale == pytest.approx(scale)
    assert estimate.final_seconds(["a"]) == pytest.approx(2 * scale)
    assert estimate.final_seconds(["a", "b", "a"]) == pytest.approx(12 * scale)  # distinct
    assert estimate.final_seconds(["c", "never-proxy-trained"]) == 0.0
    assert estimate.final_seconds([]) == 0.0


def test_a_deadline_says_what_still_fits() -> None:
    assert Deadline(None, lambda: 5.0).left_s() == math.inf
    assert Deadline(None, lambda: 5.0).fits(1e12)
    deadline = frozen(at=100.0, now=40.0)
    assert deadline.left_s() == 60.0
    assert deadline.fits(60.0) and not deadline.fits(60.5)
    assert frozen(at=0.0, now=1.0).fits(0.0) is False  # passed: not even nothing fits


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_config):
    """A finished 4-trial digits search (30 mJ: all reference pairs feasible), its cache."""
    root = tmp_path_factory.mktemp("timed")
    out, cache = root / "run", root / "cache"
    config = tiny_config(budget="30mJ", trials=4, rerank=3)
    design(config, out, baselines=False, time_limit_s=3600.0, cache_root=cache)
    return out, cache


def _designer(run_dir, cache, **changes) -> Designer:
    """The run's designer as `--resume` builds it, with settings changed."""
    config = DesignConfig.from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    designer = Designer(open_run(config.changed(**changes), run_dir, cache_root=cache))
    designer.resume()
    return designer


def test_the_journal_keeps_each_stage_proxy_training_time_and_a_roomy_limit_skips_nothing(
    finished_run,
) -> None:
    out, _ = finished_run
    result = json.loads((out / "result.json").read_text())
    assert result["rerank_skipped"] == []
    for line in (out / "journal.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert len(record["train_seconds"]) == len(record["stages"]) == 2
        assert all(s > 0 for s in record["train_seconds"])


def test_the_result_table_names_the_designs_the_time_limit_skipped(finished_run) -> None:
    from adaptive_cnn.cli.design_command import format_result

    out, _ = finished_run
    summary = json.loads((out / "result.json").read_text())
    assert "not re-ranked" not in format_result(summary, out)
    skipped = {"index": 3, "stages": ["conv:a", "conv:b"], "estimated_seconds": 600.0}
    summary["rerank_skipped"] = [skipped]
    text = format_result(summary, out)
    assert "not re-ranked (--time-limit): conv:a -> conv:b, about 10.0 min" in text


def test_re_ranking_trains_only_what_fits_and_else_the_quickest(finished_run, monkeypatch):
    out, cache = finished_run
    monkeypatch.setattr(time_budget, "FULL_OVER_PROXY_PER_IMAGE", 1e9)  # any training: too long
    # 2 final epochs: no shortlisted network is trained at that budget yet
    designer = _designer(out, cache, final_epochs=2.0)
    candidates = shortlist(designer)
    assert len(candidates) >= 3
    # the second candidate's networks trained beforehand: it alone needs no time
    for arch in candidates[1].stages:
        train(arch, designer.dataset, designer.final_config(), designer.config.seed,
              threads=designer.config.threads, cache=designer.cache)  # fmt: skip
    said: list[str] = []
    choice = choose_final(designer, said.append, frozen(at=0.0))
    assert [c.evaluation.index for c in choice.ranked] == [candidates[1].index]
    # the design: that one, or a cascade of its networks and the references if better
    assert choice.best.loss <= choice.ranked[0].loss
    skipped = [c.evaluation.index for c in choice.skipped]
    assert skipped == [c.index for c in candidates if c.index != candidates[1].index]
    assert all(c.estimated_seconds > 1e6 for c in choice.skipped)
    assert sum("skipped" in line and "--time-limit" in line for line in said) == len(skipped)
    # nothing fits at 3 epochs: the design is the candidate quickest to train
    designer = _designer(out, cache, final_epochs=3.0)
    estimate = designer.time_estimate()  # before the choice trains anything at 3 epochs
    quickest = min(candidates, key=lambda c: (estimate.final_seconds(c.stages), c.index))
    choice = choose_final(designer, said.append, frozen(at=0.0))
    assert [c.evaluation.index for c in choice.ranked] == [quickest.index]
    assert len(choice.skipped) == len(candidates) - 1
    assert any(x.startswith("no re-ranked design fits --time-limit; training the quickest")
               for x in said)  # fmt: skip
    assert said[-1].startswith("combined ")  # the quickest's networks and the references


def test_the_search_stops_when_the_final_training_would_no_longer_fit(
    finished_run, tmp_path, monkeypatch
) -> None:
    out, cache = finished_run

    def fresh(name: str) -> Designer:  # a new run folder on the finished run's settings
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text((out / "config.yaml").read_text())
        # 5 epochs: a budget no other test trains at, so no final training is cached
        return _designer(tmp_path / name, cache, final_epochs=5.0)

    # with an hour left the whole search runs (proxy trainings of digits: well under 1 s)
    designer = fresh("roomy")
    designer.run(frozen(at=3600.0), reserve_s=lambda: final_reserve_s(designer))
    assert len(designer.evaluations) == 4
    # when the best design's final training would not fit, only the first evaluation runs
    monkeypatch.setattr(time_budget, "FULL_OVER_PROXY_PER_IMAGE", 1e9)
    designer = fresh("tight")
    designer.run(frozen(at=3600.0), reserve_s=lambda: final_reserve_s(designer))
    assert len(designer.evaluations) == 1
    assert final_reserve_s(designer) > 3600


def test_the_single_path_method_refuses_a_time_limit(design_predictor, tmp_path) -> None:
    config = DesignConfig.from_dict(
        {
            "method": "single-path",
            "dataset": "digits",
            "predictor": design_predictor,
            "link": "none",
            "threads": 1,
            "budget": "1mJ",
        }
    )
    with pytest.raises(ConfigError, match="--time-limit bounds --method bo") as raised:
        design(config, tmp_path / "run", time_limit_s=300.0, cache_root=tmp_path / "cache")
    assert len(str(raised.value).splitlines()) == 1


def test_a_proxy_subset_as_large_as_the_split_is_the_final_training(finished_run) -> None:
    run_dir, cache = finished_run
    whole = _designer(run_dir, cache, proxy_subset=10**6, proxy_epochs=1.0)
    assert whole.proxy_config().subset is None
    assert whole.proxy_config() == dataclasses.replace(whole.final_config(), epochs=1.0)
    n = len(whole.dataset.train)
    assert _designer(run_dir, cache, proxy_subset=n - 1).proxy_config().subset == n - 1


@pytest.fixture(scope="module")
def random_run(tmp_path_factory, tiny_config):
    """A finished 4-trial digits search from random designs only, one design re-ranked: the
    search trained networks that neither that design nor the references hold."""
    root = tmp_path_factory.mktemp("random")
    out, cache = root / "run", root / "cache"
    config = tiny_config(budget="30mJ", trials=4, rerank=1, reference_seeds=False)
    design(config, out, baselines=False, cache_root=cache)
    return out, cache


def test_cheap_searched_networks_are_trained_fully_and_combined(random_run) -> None:
    """--promote-under: every network the search trained joins the combination when the
    limit admits them all; with 0 only the re-ranked design's and the references do."""
    from adaptive_cnn.design.baselines import baseline_archs

    out, cache = random_run
    designer = _designer(out, cache, promote_under_s=1e9)
    searched = {a for e in designer.evaluations for a in e.stages}
    said: list[str] = []
    choice = choose_final(designer, said.append)
    assert searched <= set(choice.combination.networks)
    assert any(line.startswith("training ") and "--promote-under" in line for line in said)
    designer = _designer(out, cache, promote_under_s=0.0)
    choice = choose_final(designer, said.append)
    ranked = {a for c in choice.ranked for a in c.stages}
    references = set(baseline_archs(designer.config.baseline_family))
    assert set(choice.combination.networks) == ranked | references
    # which networks qualify reads the journal's proxy seconds, not the cache: the same
    # limit promotes the same networks whether their final trainings are cached or not
    limit = sorted(designer.time_estimate().proxy_seconds.values())[1]
    scale = designer.time_estimate().scale
    first = choose_final(_designer(out, cache, promote_under_s=limit * scale), said.append)
    again = choose_final(_designer(out, cache, promote_under_s=limit * scale), said.append)
    assert first.combination.networks == again.combination.networks
    assert len(first.combination.networks) < len(set(searched | references))


def test_promotion_stops_at_the_time_limit(random_run) -> None:
    from adaptive_cnn.design.baselines import baseline_archs

    out, cache = random_run
    designer = _designer(out, cache, final_epochs=4.0, promote_under_s=1e9)  # none cached
    said: list[str] = []
    choice = choose_final(designer, said.append, frozen(at=0.0))  # no time left at all
    assert any(line.startswith("stopped after 0 of ") for line in said)
    ranked = {a for c in choice.ranked for a in c.stages}
    references = set(baseline_archs(designer.config.baseline_family))
    assert set(choice.combination.networks) == ranked | references and not choice.promoted
    assert choice.best.loss <= choice.ranked[0].loss
