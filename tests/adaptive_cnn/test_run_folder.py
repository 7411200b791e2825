"""The run folder: what acnn design writes reads back, and every defect is a named error."""

from __future__ import annotations

import json
import math
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from adaptive_cnn.cli.main import main
from adaptive_cnn.errors import AcnnError, RunFolderError
from adaptive_cnn.networks import create_network
from adaptive_cnn.run_folder import (
    FORMAT_VERSION,
    HISTORICAL_RUNTIME,
    load_run,
    read_summary,
    write_run,
    write_weights,
)
from rpc import errors as rpc_errors


@pytest.fixture
def copy_run(runtime_run_dir, tmp_path):
    """A private copy of the digits run folder (two local stages and a cloud)."""
    target = tmp_path / "run"
    shutil.copytree(runtime_run_dir, target)
    return target


def rewrite(run_dir: Path, change) -> None:
    summary = json.loads((run_dir / "result.json").read_text())
    change(summary)
    (run_dir / "result.json").write_text(json.dumps(summary))


def test_acnn_design_writes_the_current_format(runtime_run_dir):
    run = load_run(runtime_run_dir)
    assert run.summary["format_version"] == FORMAT_VERSION
    assert [s.name for s in run.stages] == ["stage1", "stage2", "cloud"]
    assert [s.weights.name for s in run.stages] == ["stage1.pt", "stage2.pt", "cloud.pt"]
    assert run.cloud_stage.remote and run.input.shape == (1, 8, 8)
    for name in ("design.yaml", "search.csv", "pareto.csv", "baselines.csv"):
        assert (runtime_run_dir / name).is_file()


def test_what_write_run_writes_load_run_reads(runtime_run_dir, tmp_path):
    run = load_run(runtime_run_dir)
    out = tmp_path / "again"
    out.mkdir()
    states = [torch.load(s.weights, weights_only=True) for s in run.stages]
    written = write_weights(out, states[:-1], states[-1])
    assert [p.name for p in written] == ["stage1.pt", "stage2.pt", "cloud.pt"]
    shutil.copytree(runtime_run_dir / "frontier", out / "frontier")  # the frontier's networks
    rows = [{"index": 0, "energy_mj": 1.5}]
    summary = {k: v for k, v in run.summary.items() if k != "format_version"}
    write_run(out, summary, search_rows=rows, pareto_rows=rows, baseline_rows=[])
    again = load_run(out)
    assert again.stages == tuple(
        type(s)(s.name, s.arch, s.where, out / s.weights.name, s.energy_mj, s.payload_bytes)
        for s in run.stages
    )
    assert (again.policy, again.input, again.link) == (run.policy, run.input, run.link)
    assert read_summary(out)[1] == run.summary  # design.yaml and result.json agree
    assert (out / "search.csv").read_text().splitlines() == ["index,energy_mj", "0,1.5"]
    assert (out / "baselines.csv").read_text() == ""
    assert not list(out.glob(".*partial"))


def test_write_run_refuses_a_summary_it_could_not_read(copy_run):
    summary = load_run(copy_run).summary | {"stages": []}
    with pytest.raises(RunFolderError, match="result.json: stages must be local stages first"):
        write_run(copy_run / "x", summary, search_rows=[], pareto_rows=[], baseline_rows=[])


def test_the_error_is_one_class_for_the_whole_project():
    assert rpc_errors.RunFolderError is RunFolderError and issubclass(RunFolderError, AcnnError)


def test_a_folder_without_a_summary_has_not_finished(tmp_path):
    with pytest.raises(RunFolderError, match="no result.json: the design has not finished"):
        load_run(tmp_path)


def test_a_truncated_result_json_is_named(copy_run):
    text = (copy_run / "result.json").read_text()
    (copy_run / "result.json").write_text(text[: len(text) // 2])
    with pytest.raises(RunFolderError, match=r"run/result.json is not valid JSON \("):
        load_run(copy_run)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["stages"][0].update(arch=3), r"stages\[0\].arch must be a non-empty string"),
        (lambda s: s["stages"][1].update(arch="conv:zz9"), r"stages\[1\].arch is not an arch"),
        (lambda s: s["stages"][0].pop("weights"), r"stages\[0\].weights is missing"),
        (lambda s: s["stages"][0].update(energy_mj="1"), r"energy_mj must be a number, got '1'"),
        (lambda s: s["stages"][2].update(payload_bytes=math.nan), "payload_bytes must be finite"),
        (lambda s: s["input"].update(shape=[1, 8]), r"input.shape must be \[C, H, W\]"),
        (lambda s: s["input"].update(num_classes=True), "input.num_classes must be a whole"),
        (lambda s: s["input"]["class_names"].pop(), "has 9 names for 10 classes"),
        (lambda s: s["input"]["preprocessing"].update(std=[0.0]), r"std\[0\] must be > 0"),
        (lambda s: s.pop("input"), "result.json: input is missing"),
        (lambda s: s["policy"].update(thresholds=["a", 0]), r"thresholds\[0\] must be a number"),
        (lambda s: s["policy"].update(thresholds=[0.1]), "drives 2 stages, the design has 3"),
        (lambda s: s["policy"].update(metric="luck"), "unknown confidence metric 'luck'"),
        (lambda s: s.update(stages={"arch": "x"}), "stages must be a list"),
        (lambda s: s.update(link=None), "link must be a non-empty string, got None"),
        (lambda s: s["config"].update(cloud_latency_ms=math.inf), "cloud_latency_ms must be fin"),
        (lambda s: s.update(format_version=FORMAT_VERSION + 1), "this acnn reads format 1"),
        (lambda s: s["pricing"].update(runtime="tflite"), "pricing.runtime is 'tflite'; use"),
        (lambda s: s["pricing"].update(threads=0), "pricing.threads must be a whole number"),
        (lambda s: s.update(pricing="torch"), "pricing must be a mapping, got 'torch'"),
        (lambda s: s["pricing"]["predictor"].update(file=[1]), "predictor.file must be a plain"),
    ],
)
def test_wrong_types_and_missing_keys_name_the_file_and_the_key(copy_run, change, message):
    rewrite(copy_run, change)
    with pytest.raises(RunFolderError, match=message) as caught:
        load_run(copy_run)
    assert str(caught.value).startswith(f"{copy_run / 'result.json'}: ")
    assert "\n" not in str(caught.value)


def test_an_infinite_threshold_is_a_stage_nobody_exits_at(copy_run):
    rewrite(copy_run, lambda s: s["policy"].update(thresholds=[math.inf, math.inf]))
    assert load_run(copy_run).policy.thresholds == (math.inf, math.inf)


def test_the_designer_records_what_it_priced_for_and_with_which_predictor(
    runtime_run_dir, design_predictor
):
    from energy_models.predictor import EnergyPredictor

    predictor = EnergyPredictor.load(design_predictor)
    run = load_run(runtime_run_dir)
    assert (run.runtime, run.threads) == (predictor.runtime, predictor.threads)
    assert run.pricing.recorded and run.pricing.describe() == "onnxruntime, 1 thread(s)"
    identity = run.pricing.predictor
    assert identity["file"] == str(design_predictor) and identity["kind"] == "layer-wise"
    assert (identity["torch_version"], identity["created"]) == ("test", "today")
    assert run.summary["pricing"]["runtime"] == "onnxruntime"


def test_a_folder_from_before_pricing_was_recorded_reads_as_priced_for_torch(copy_run):
    rewrite(copy_run, lambda s: s.pop("pricing"))
    run = load_run(copy_run)
    assert (run.runtime, run.threads, run.pricing.recorded) == (HISTORICAL_RUNTIME, None, False)
    assert HISTORICAL_RUNTIME == "torch" and "not recorded" in run.pricing.describe()


def test_the_pricing_label_appears_exactly_when_the_runtimes_differ(runtime_run_dir):
    pricing = load_run(runtime_run_dir).pricing
    assert pricing.label("onnxruntime") == ""
    assert pricing.label("torch") == "priced for onnxruntime, run in torch"


def test_a_summary_without_a_version_is_read_as_the_first_format(copy_run):
    rewrite(copy_run, lambda s: s.pop("format_version"))
    assert load_run(copy_run).stages[0].name == "stage1"


@pytest.mark.parametrize("weights", ["../../etc/passwd", "/etc/passwd", "..", "."])
def test_weights_outside_the_folder_are_refused(copy_run, weights):
    rewrite(copy_run, lambda s: s["stages"][0].update(weights=weights))
    with pytest.raises(RunFolderError, match=r"stages\[0\].weights .* lies outside the run fol"):
        load_run(copy_run)


def test_a_symlink_out_of_the_folder_is_refused(copy_run, tmp_path):
    outside = tmp_path / "elsewhere.pt"
    shutil.copy(copy_run / "stage1.pt", outside)
    (copy_run / "stage1.pt").unlink()
    (copy_run / "stage1.pt").symlink_to(outside)
    with pytest.raises(RunFolderError, match="'stage1.pt' lies outside the run folder"):
        load_run(copy_run)


def test_missing_weights_are_named(copy_run):
    (copy_run / "stage2.pt").unlink()
    with pytest.raises(RunFolderError, match=r"stages\[1\].weights 'stage2.pt': the file .* miss"):
        load_run(copy_run)


class _Payload:
    """Unpickling this would create ``marker``: a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_foreign_pickle_is_refused_without_running_it(copy_run, tmp_path):
    marker = tmp_path / "the-pickle-ran"
    payload = pickle.dumps({"weight": _Payload(marker)})
    (copy_run / "stage1.pt").write_bytes(payload)
    run = load_run(copy_run)
    with pytest.raises(RunFolderError, match=r"stage1.pt: not a state dict .*weights_only") as e:
        run.load_network(run.stage("stage1"))
    assert not marker.exists()
    assert "\n" not in str(e.value)
    pickle.loads(payload)  # the payload is live: loading it the unsafe way does run it
    assert marker.exists()


def test_a_text_file_as_weights_is_named(copy_run):
    (copy_run / "cloud.pt").write_text("these are not weights\n")
    run = load_run(copy_run)
    with pytest.raises(RunFolderError, match=r"cloud.pt: not a state dict of tensors"):
        run.load_network(run.cloud_stage)


def test_weights_of_another_network_do_not_fit(copy_run):
    torch.save({"w": [1, 2]}, copy_run / "stage1.pt")
    run = load_run(copy_run)
    with pytest.raises(RunFolderError, match="stage1.pt: holds a dict, not a state dict"):
        run.load_network(run.stage("stage1"))
    state = torch.load(copy_run / "stage2.pt", weights_only=True)
    name = next(iter(state))
    state[name] = torch.full_like(state[name], math.nan)
    torch.save(state, copy_run / "stage2.pt")
    with pytest.raises(RunFolderError, match=f"stage2.pt: {name} holds NaN or infinite values"):
        run.load_network(run.stage("stage2"))
    other = create_network("conv:c4k3-fc8", run.input.shape, run.input.num_classes)
    torch.save(other.state_dict(), copy_run / "stage1.pt")
    with pytest.raises(RunFolderError, match=r"stage1.pt: does not fit conv:.* of stage1 \(Err"):
        run.load_network(run.stage("stage1"))


def test_design_yaml_is_read_safely(copy_run, tmp_path):
    (copy_run / "result.json").unlink()
    assert load_run(copy_run).stages[0].name == "stage1"  # the YAML copy of the summary
    marker = tmp_path / "the-yaml-ran"
    (copy_run / "design.yaml").write_text(
        f"stages: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path"
        f" ['{marker}']]\n"
    )
    with pytest.raises(RunFolderError, match=r"run/design.yaml is not plain YAML \(could not"):
        load_run(copy_run)
    assert not marker.exists()


def test_the_cli_reports_a_bad_folder_in_one_line(copy_run, capsys):
    rewrite(copy_run, lambda s: s["stages"][0].update(weights="../../etc/passwd"))
    for command in (["export", "--format", "onnx"], ["report"], ["serve"], ["classify", "x"]):
        assert main([command[0], str(copy_run), *command[1:]]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("acnn: error: ")
        assert "result.json: stages[0].weights '../../etc/passwd' lies outside" in err[0]


def test_a_device_profile_given_as_a_file_is_loaded_again_from_it(copy_run, tmp_path):
    """A design made with ``--device my.yaml`` records the profile's name (``my``), which
    names no shipped profile: the run folder keeps the path, so check-energy finds it."""
    from energy_models.devices import load_device

    profile = tmp_path / "my-laptop.yaml"
    profile.write_text(
        "runtime: torch\nthreads: 1\nmemory_limit: 1GiB\n"
        "power: {source: declared, idle_w: 1, active_w: 5}\n"
    )

    def to_file(summary):
        summary["device"] = "my-laptop"
        summary["config"]["device"] = str(profile)

    rewrite(copy_run, to_file)
    run = load_run(copy_run)
    assert run.device == str(profile)
    assert load_device(run.device).power.active_w == 5
