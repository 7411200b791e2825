"""acnn export, acnn classify and acnn serve as a user runs them."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adaptive_cnn.cli.main import main
from adaptive_cnn.data.idx import write_idx
from energy_models.runtimes import load_torchscript, onnx_runner, run_torch
from rpc.client import CloudClient

INF = math.inf
ACNN = str(Path(sys.executable).parent / "acnn")  # the console script of this environment


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_stages_match_torch(fmt, run, tmp_path, digits_test, reference_probs, capsys):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    assert main(["export", str(run.path), "--format", fmt, "--out", str(tmp_path)]) == 0
    written = capsys.readouterr().out.split()
    manifest = json.loads((tmp_path / f"manifest-{fmt}.json").read_text())
    assert set(manifest["stages"]) == {"stage1", "stage2", "cloud"}
    assert manifest["input"]["shape"] == [-1, 1, 8, 8]
    images = digits_test[0][:33].astype(np.float32)  # a batch size never traced with
    for name, entry in manifest["stages"].items():
        path = tmp_path / entry["file"]
        assert str(path) in written
        data = path.read_bytes()
        if fmt == "torchscript":
            module = load_torchscript(data)
            probs = run_torch(module, images)
        else:
            probs = onnx_runner(data)(images)
        np.testing.assert_allclose(probs, reference_probs(run, name, images), atol=1e-5, rtol=0)


def test_export_writes_the_priced_runtime_s_files_unless_asked_otherwise(run, tmp_path, capsys):
    assert main(["export", str(run.path), "--out", str(tmp_path / "a")]) == 0
    manifest = json.loads((tmp_path / "a" / "manifest-onnx.json").read_text())
    assert (manifest["format"], manifest["runtime"]) == ("onnx", run.runtime)
    assert manifest["energy_label"] == "" and capsys.readouterr().err == ""
    assert manifest["stages"]["stage1"]["energy_mj"] == run.stages[0].energy_mj
    out = tmp_path / "b"
    assert main(["export", str(run.path), "--format", "torchscript", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest-torchscript.json").read_text())
    assert manifest["energy_label"] == "priced for onnxruntime, run in torchscript"
    assert "priced for onnxruntime, run in torchscript" in capsys.readouterr().err


def test_a_run_from_before_pricing_was_recorded_exports_torchscript(run, tmp_path, capsys):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run.path, old)
    summary = json.loads((old / "result.json").read_text())
    del summary["pricing"]
    (old / "result.json").write_text(json.dumps(summary))
    assert main(["export", str(old)]) == 0
    manifest = json.loads((old / "export" / "manifest-torchscript.json").read_text())
    assert manifest["pricing"]["recorded"] is False and manifest["pricing"]["runtime"] == "torch"
    assert manifest["energy_label"] == "priced for torch, run in torchscript"


def test_unknown_export_format_is_refused_by_the_parser(run, capsys):
    assert main(["export", str(run.path), "--format", "tflite"]) == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


def test_classify_json_reads_images_idx_and_npy(
    run_with_thresholds, serve, digits_test, tmp_path, capsys, reference_probs
):
    run = run_with_thresholds(0.0, 0.0)  # every image exits at stage 1: known answers
    images, labels = digits_test[0][:6], digits_test[1][:6]
    np.save(tmp_path / "a.npy", images[:2, 0])  # N x H x W
    write_idx(tmp_path / "b-idx3-ubyte", images[2:4, 0])
    # an 8-bit PNG: digits' native scale is 0..16, so the file holds pixel * 255 / 16
    for i in (4, 5):
        png = (images[i, 0].astype(np.float64) * 255 / 16).round().astype(np.uint8)
        Image.fromarray(png).save(tmp_path / f"c{i}.png")
    np.save(tmp_path / "labels.npy", labels)
    paths = [str(tmp_path / p) for p in ("a.npy", "b-idx3-ubyte", "c4.png", "c5.png")]
    code = main(
        ["classify", str(run.path), *paths, "--json", "--labels", str(tmp_path / "labels.npy")]
    )
    assert code == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    per_image, summary = lines[:-1], lines[-1]
    assert len(per_image) == 6 and summary["summary"] and summary["images"] == 6
    for key in ("label", "confidence", "stage", "degraded", "energy_mj", "bytes_sent"):
        assert all(key in x for x in per_image)
    expected = reference_probs(run, "stage1", images[:4].astype(np.float32)).argmax(1)
    assert [x["label"] for x in per_image[:4]] == list(expected)
    assert [x["source"] for x in per_image[:2]] == [paths[0] + "[0]", paths[0] + "[1]"]
    hits = sum(x["label"] == y for x, y in zip(per_image, labels, strict=True))
    assert summary["accuracy"] == pytest.approx(hits / 6)
    assert summary["offload_rate"] == 0 and summary["energy_estimated"]


def test_classify_with_the_cloud_prints_a_table(
    run_with_thresholds, serve, digits_test, tmp_path, capsys
):
    run = run_with_thresholds(INF, INF)
    server = serve(run, models=("cloud",))
    np.save(tmp_path / "x.npy", digits_test[0][:3])
    assert (
        main(["classify", str(run.path), str(tmp_path / "x.npy"), "--cloud", server.address]) == 0
    )
    out = capsys.readouterr().out
    assert out.count(" cloud ") == 3 and "offload rate 100%" in out and "(estimated)" in out


def test_bad_inputs_are_one_line_errors(run, tmp_path, capsys):
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3, 8, 8)))
    assert main(["classify", str(run.path), str(tmp_path / "wrong.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs N x 1 x 8 x 8" in err[0]
    (tmp_path / "junk.bin").write_bytes(b"not an idx file")
    assert main(["classify", str(run.path), str(tmp_path / "junk.bin")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["serve", str(tmp_path)]) == 2
    assert "result.json" in capsys.readouterr().err


def _start_serve(run_dir, *extra):
    process = subprocess.Popen(
        [ACNN, "serve", str(run_dir), "--port", "0", "--threads", "1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    assert "acnn serve:" in line, process.stderr.read()
    return process, line.split(" on ")[1].strip()


def test_sigterm_drains_and_exits_cleanly(run, digits_test):
    process, address = _start_serve(run.path)
    try:
        with CloudClient(address, deadline_s=10) as client:
            assert client.infer(digits_test[0][:2]).probs.shape == (2, 10)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "draining" in out and "stopped" in out


def test_server_killed_mid_run_every_image_answered_once(run_with_thresholds, digits_test):
    from rpc.client import RetryPolicy
    from rpc.edge import EdgeClassifier

    run = run_with_thresholds(INF, INF)  # every image goes to the cloud
    process, address = _start_serve(run.path, "--log-level", "debug")
    served = []
    killed = threading.Event()

    def watch():
        for line in process.stderr:
            if '"method": "ModelInfer"' in line and '"code": "OK"' in line:
                served.append(line)
                if len(served) == 5:
                    process.kill()  # our own child, by its handle: SIGKILL mid-run
                    killed.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    images = np.concatenate([digits_test[0]] * 2)[:400].astype(np.float32)
    cloud = CloudClient(address, deadline_s=2, retry=RetryPolicy(attempts=2, backoff_s=0.01))
    classifier = EdgeClassifier(run, cloud, batch_size=10, concurrency=1)
    try:
        answers, summary = classifier.classify(images)
    finally:
        classifier.close()
        if process.poll() is None:
            process.kill()
        process.wait(10)
    watcher.join(10)
    assert killed.is_set()
    assert [a.index for a in answers] == list(range(400))  # none lost, none duplicated
    cloud_answers = [a for a in answers if a.stage == "cloud"]
    # the 5th log line may precede its reply, which the kill can cut off
    assert 4 <= len(cloud_answers) <= len(served)  # no answer the server never gave
    assert summary.degraded == 400 - len(cloud_answers) > 0
    assert all(a.error for a in answers if a.degraded)
