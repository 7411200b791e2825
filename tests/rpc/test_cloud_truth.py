"""acnn classify tells the truth about the cloud: bad addresses, unknown models, outages.

Servers are in-process on 127.0.0.1 (port 0); the unreachable cloud is a free port nobody
listens on, with a short deadline and one retry, so every test ends by itself in seconds.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from adaptive_cnn.cli.main import main
from rpc.client import CloudClient, CloudError, RetryPolicy, parse_target
from rpc.errors import CloudAddressError
from rpc.mlserver_peer import free_port

INF = math.inf


@pytest.fixture
def forwarded(run_with_thresholds, digits_test, tmp_path):
    """(run, path of a .npy of 6 images): thresholds that forward every image to the cloud."""
    run = run_with_thresholds(INF, INF)
    path = tmp_path / "x.npy"
    np.save(path, digits_test[0][:6, 0])
    return run, path


@pytest.fixture
def no_classify(monkeypatch):
    """Fails the test if any image is classified."""
    from rpc.edge import EdgeClassifier

    def refuse(*args, **kwargs):
        raise AssertionError("an image was classified")

    monkeypatch.setattr(EdgeClassifier, "classify", refuse)


@pytest.mark.parametrize(
    "address",
    ["not a host", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:0", "localhost:http", ":8001"],
)
def test_an_unusable_address_is_an_error_before_any_image(forwarded, address, no_classify, capsys):
    run, path = forwarded
    code = main(["classify", str(run.path), str(path), "--cloud", address])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("acnn: error: cloud address")
    assert repr(address) in err


@pytest.mark.parametrize("address", ["127.0.0.1:8001", "localhost:1", "[::1]:65535", "a-b.c:80"])
def test_host_port_addresses_parse(address):
    host, port = parse_target(address)
    assert f"{host}:{port}" == address


def test_bad_ipv6_is_refused():
    with pytest.raises(CloudAddressError):
        parse_target("[::zz]:80")


def test_a_model_the_server_lacks_is_an_error_before_any_image(
    forwarded, serve, no_classify, capsys
):
    run, path = forwarded
    server = serve(run, models=("cloud",))
    argv = ["classify", str(run.path), str(path), "--cloud", server.address]
    code = main([*argv, "--model", "nope"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"acnn: error: the cloud at {server.address} serves no model 'nope'")


def test_an_unreachable_cloud_is_degraded_warned_and_charged_nothing(forwarded, capsys):
    run, path = forwarded
    address = f"127.0.0.1:{free_port()}"  # nobody listens here
    argv = ["classify", str(run.path), str(path), "--cloud", address, "--json"]
    code = main([*argv, "--deadline-ms", "500", "--retries", "1"])
    out, err = capsys.readouterr()
    assert code == 0  # unreachable at start is not an input error
    lines = [json.loads(x) for x in out.splitlines()]
    answers, summary = lines[:-1], lines[-1]
    assert len(answers) == 6
    for a in answers:
        assert a["degraded"] and a["stage"] in ("stage1", "stage2")
        assert a["error"].startswith("UNAVAILABLE")
        assert a["bytes_sent"] == 0 and a["radio_energy_mj"] == 0
        assert a["energy_mj"] == pytest.approx(a["compute_energy_mj"])
    assert summary["degraded"] == 6 and summary["bytes_sent"] == 0
    assert summary["offload_rate"] == 0
    local = run.local_stages
    assert summary["energy_mj_per_image"] == pytest.approx(sum(s.energy_mj for s in local))
    assert err == (
        f"acnn: warning: the cloud at {address} was unreachable; 6 images answered by the "
        "most confident local stage (degraded); 0 bytes sent for them\n"
    )


def test_no_cloud_reports_offload_rate_zero(forwarded, capsys):
    run, path = forwarded
    assert main(["classify", str(run.path), str(path)]) == 0
    out, err = capsys.readouterr()
    assert "offload rate 0%;" in out and "degraded 6;" in out and "0 bytes sent" in out
    assert err == ""
    assert main(["classify", str(run.path), str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["offload_rate"] == 0 and summary["degraded"] == 6


def test_a_served_cloud_is_charged_and_not_warned(forwarded, serve, capsys):
    run, path = forwarded
    server = serve(run, models=("cloud",))
    assert main(["classify", str(run.path), str(path), "--cloud", server.address]) == 0
    out, err = capsys.readouterr()
    assert "offload rate 100%;" in out and "degraded 0;" in out and err == ""


def test_attempts_that_never_connect_send_no_bytes(digits_test):
    image = digits_test[0][:1].astype(np.float32)
    retry = RetryPolicy(attempts=3, backoff_s=0.01, breaker_failures=0)
    with CloudClient(f"127.0.0.1:{free_port()}", deadline_s=1, retry=retry) as cloud:
        assert not cloud.check_model(timeout_s=0.5)  # unreachable: no error, just False
        with pytest.raises(CloudError) as caught:
            cloud.infer(image)
    assert caught.value.attempts == 3 and caught.value.bytes_sent == 0


def test_a_refusal_by_a_server_did_send_its_bytes(run, serve, digits_test):
    server = serve(run, models=("cloud",))
    image = digits_test[0][:1].astype(np.float32)
    with CloudClient(server.address, model="nope", retry=RetryPolicy(attempts=1)) as cloud:
        with pytest.raises(CloudError) as caught:
            cloud.infer(image)
    assert caught.value.code == "NOT_FOUND" and caught.value.bytes_sent >= 64
