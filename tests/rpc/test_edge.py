"""The on-device cascade: exits by the design's policy, the cloud, fallbacks, accounting."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from energy_models.devices import load_device
from rpc.client import CloudClient, RetryPolicy
from rpc.edge import EdgeClassifier
from selector import confidence

INF = math.inf


def classify(run, images, cloud=None, **kw):
    classifier = EdgeClassifier(run, cloud, **kw)
    try:
        return classifier.classify(images)
    finally:
        classifier.close()


def hand_offload_energy_mj(link, idle_w, cloud_latency_ms, sent, received):
    """Huang et al.'s uplink model written out: transfer x (beta + alpha t_u) + tail + wait."""
    transfer_ms = sent * 8 / (link.uplink_mbps * 1e3)
    radio_w = link.base_power_w + link.power_per_mbps_w * link.uplink_mbps
    wait_ms = link.rtt_ms + cloud_latency_ms + received * 8 / (link.downlink_mbps * 1e3)
    return transfer_ms * radio_w + link.tail_share * link.tail_energy_mj + idle_w * wait_ms


def test_threshold_zero_exits_everything_at_stage1(
    run_with_thresholds, digits_test, reference_probs
):
    run = run_with_thresholds(0.0, 0.0)
    images = digits_test[0][:12].astype(np.float32)
    answers, summary = classify(run, images)
    expected = reference_probs(run, "stage1", images)
    assert [a.index for a in answers] == list(range(12))
    assert [a.label for a in answers] == list(expected.argmax(1))
    assert all(a.stage == "stage1" and a.bytes_sent == 0 and not a.degraded for a in answers)
    for a in answers:
        assert a.energy_mj == pytest.approx(run.stages[0].energy_mj)
        assert a.confidence == pytest.approx(expected[a.index].max(), abs=1e-5)
    assert summary.offload_rate == 0 and summary.exits == {"stage1": 12}
    assert summary.energy_mj_per_image == pytest.approx(run.stages[0].energy_mj)


def test_exits_follow_the_policy_image_by_image(run_with_thresholds, digits_test, reference_probs):
    base = run_with_thresholds(0.0, 0.0)
    images = digits_test[0][:30].astype(np.float32)
    p1 = reference_probs(base, "stage1", images)
    p2 = reference_probs(base, "stage2", images)
    c1 = confidence(p1, "margin")
    t1 = float(np.median(c1))  # about half exit at stage 1
    run = run_with_thresholds(t1, 0.0)  # the rest exit at stage 2 (threshold 0)
    assert run.policy.metric == "margin"
    answers, _ = classify(run, images, batch_size=7)  # batches cut across exits
    assert [a.index for a in answers] == list(range(30))
    for i, a in enumerate(answers):
        if abs(c1[i] - t1) < 1e-5:
            continue  # float noise between torch paths decides ties; skip them
        wanted = "stage1" if c1[i] >= t1 else "stage2"
        assert a.stage == wanted
        probs = p1 if wanted == "stage1" else p2
        assert a.label == int(probs[i].argmax())
        e = run.stages[0].energy_mj + (run.stages[1].energy_mj if wanted == "stage2" else 0)
        assert a.energy_mj == pytest.approx(e)
    assert {a.stage for a in answers} == {"stage1", "stage2"}


def test_low_confidence_images_go_to_the_cloud(
    run_with_thresholds, serve, digits_test, reference_probs
):
    run = run_with_thresholds(INF, INF)  # no local stage is ever confident enough
    server = serve(run, models=("cloud",))
    images = digits_test[0][:6].astype(np.float32)
    answers, summary = classify(run, images, CloudClient(server.address, deadline_s=5))
    expected = reference_probs(run, "cloud", images)
    device = load_device(run.device)
    link = device.link("wifi")
    local = run.stages[0].energy_mj + run.stages[1].energy_mj
    for a in answers:
        assert (a.stage, a.degraded) == ("cloud", False)
        assert a.label == int(expected[a.index].argmax())
        assert a.bytes_sent >= 64  # at least the 8x8 uint8 pixels
        # the response size is not in the answer: bound the energy by 0 and 1 KiB received
        low = hand_offload_energy_mj(
            link, device.power.idle_w, run.cloud_latency_ms, a.bytes_sent, 0
        )
        high = hand_offload_energy_mj(
            link, device.power.idle_w, run.cloud_latency_ms, a.bytes_sent, 1024
        )
        assert low <= a.radio_energy_mj <= high
        assert a.energy_mj == pytest.approx(local + a.radio_energy_mj)
        assert a.energy_estimated
    assert summary.offload_rate == 1.0 and summary.degraded == 0


def test_an_unreachable_cloud_degrades_to_the_best_local_answer(
    run_with_thresholds, digits_test, reference_probs
):
    from rpc.mlserver_peer import free_port

    run = run_with_thresholds(INF, INF)
    images = digits_test[0][:5].astype(np.float32)
    waits = []
    cloud = CloudClient(
        f"127.0.0.1:{free_port()}",  # nobody listens here
        deadline_s=2,
        retry=RetryPolicy(attempts=3, backoff_s=0.01, breaker_failures=0),
        sleep=waits.append,
    )
    answers, summary = classify(run, images, cloud, concurrency=1)
    p1, p2 = reference_probs(run, "stage1", images), reference_probs(run, "stage2", images)
    c1, c2 = confidence(p1, "margin"), confidence(p2, "margin")
    assert waits == [0.01, 0.02] * 5  # exponential backoff between the 3 attempts, per image
    for i, a in enumerate(answers):
        best = (p2, "stage2") if c2[i] >= c1[i] else (p1, "stage1")
        assert a.degraded and a.error.startswith("UNAVAILABLE")
        assert (a.stage, a.label) == (best[1], int(best[0][i].argmax()))
    assert summary.degraded == 5


def test_an_open_circuit_answers_at_once_without_sending(run_with_thresholds, digits_test):
    from rpc.mlserver_peer import free_port

    run = run_with_thresholds(INF, INF)
    images = digits_test[0][:8].astype(np.float32)
    cloud = CloudClient(
        f"127.0.0.1:{free_port()}",
        retry=RetryPolicy(attempts=1, breaker_failures=2, breaker_cooldown_s=60),
    )
    answers, _ = classify(run, images, cloud, concurrency=1)
    opened = ["circuit open" in a.error for a in answers]
    assert all(a.degraded for a in answers)
    assert opened == [False] * 2 + [True] * 6  # down after 2 failures
    # nobody listens: not even the first two attempts put a byte on the wire
    assert all(a.bytes_sent == 0 and a.radio_energy_mj == 0 for a in answers)


def test_a_slow_cloud_hits_the_deadline_and_falls_back(run_with_thresholds, serve, digits_test):
    run = run_with_thresholds(INF, INF)
    server = serve(run, models=("cloud",))
    batcher = server.repository.models["cloud"].batcher
    gate, real = threading.Event(), batcher.fn
    batcher.fn = lambda x: (gate.wait(10), real(x))[1]
    cloud = CloudClient(server.address, deadline_s=0.2, retry=RetryPolicy(attempts=1))
    try:
        answers, summary = classify(run, digits_test[0][:2].astype(np.float32), cloud)
    finally:
        gate.set()
    assert all(a.degraded and a.error.startswith("DEADLINE_EXCEEDED") for a in answers)
    assert all(a.stage in ("stage1", "stage2") for a in answers)


def test_onnx_runtime_stages_make_the_same_choices(run_with_thresholds, digits_test):
    pytest.importorskip("onnxruntime")
    run = run_with_thresholds(0.2, 0.0)
    images = digits_test[0][:40].astype(np.float32)
    by_torchscript, _ = classify(run, images, runtime="torchscript")
    by_onnx, _ = classify(run, images, runtime="onnxruntime")
    same = [
        (a.stage, a.label) == (b.stage, b.label)
        for a, b in zip(by_torchscript, by_onnx, strict=True)
    ]
    assert sum(same) >= 39  # a float tie at the threshold may go either way
    for a, b in zip(by_torchscript, by_onnx, strict=True):
        if a.stage == b.stage:
            assert a.confidence == pytest.approx(b.confidence, abs=1e-5)


@pytest.mark.parametrize("thresholds", [(0.0, 0.0), ("median", 0.0), ("median", INF)])
def test_batch_of_one_answers_like_the_vectorised_path(
    run_with_thresholds, digits_test, reference_probs, thresholds
):
    images = digits_test[0][:24].astype(np.float32)
    p1 = reference_probs(run_with_thresholds(0.0, 0.0), "stage1", images)
    median = float(np.median(confidence(p1, "margin")))
    run = run_with_thresholds(*(median if t == "median" else t for t in thresholds))
    one, one_summary = classify(run, images, batch_size=1)  # no cloud: forwarded -> degraded
    many, many_summary = classify(run, images, batch_size=24)
    keep = ("index", "label", "class_name", "stage", "degraded", "energy_mj", "bytes_sent")
    c1 = confidence(p1, "margin")
    for a, b in zip(one, many, strict=True):
        if abs(c1[a.index] - median) < 1e-5:
            continue  # float noise between batch sizes decides ties; skip them
        assert {k: getattr(a, k) for k in keep} == {k: getattr(b, k) for k in keep}
        assert a.confidence == pytest.approx(b.confidence, abs=1e-5)
    assert one_summary.exits == many_summary.exits
