"""A stage as a runnable thing: every runtime answers what the trainer's own path computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adaptive_cnn.data import load_dataset
from adaptive_cnn.run_folder import load_run
from adaptive_cnn.stage import StageModel, example_input, load_stage_model, stage_runner
from adaptive_cnn.training import predict_probs
from energy_models.errors import EnergyModelError
from energy_models.runtimes import available_runtimes


@pytest.fixture(scope="module")
def run(runtime_run_dir):
    return load_run(runtime_run_dir)


@pytest.fixture(scope="module")
def images():
    """33 digits test images (a batch size no runner was traced with), native 0..16 scale."""
    return load_dataset("digits", seed=0).test.images[:33].astype(np.float32)


@pytest.mark.parametrize("optimise", [False, True])
@pytest.mark.parametrize("runtime", available_runtimes())
def test_every_runtime_answers_what_the_trainer_computes(run, images, runtime, optimise):
    for stage in run.stages:
        # the second implementation: Preprocessing.apply in numpy, the network, softmax
        expected = predict_probs(run.load_network(stage), images, run.input.preprocessing)
        got = stage_runner(run, stage, runtime, optimise=optimise)(images)
        assert got.shape == (33, run.input.num_classes) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_a_stage_is_found_by_name_and_its_model_holds_the_preprocessing(run):
    model = load_stage_model(run, "cloud")
    assert isinstance(model, StageModel) and not model.training
    pre = run.input.preprocessing
    assert model.scale.item() == pytest.approx(1 / pre.pixel_max)
    assert model.mean.flatten().tolist() == pytest.approx(list(pre.mean))


def test_the_example_input_is_deterministic_and_in_the_native_scale(run):
    x = example_input(run, batch=4)
    assert x.shape == (4, *run.input.shape)
    assert torch.equal(x, example_input(run, batch=4))
    assert 0 <= x.min() and x.max() <= run.input.preprocessing.pixel_max


def test_the_old_runtime_names_are_refused_with_the_new_ones(run):
    for old in ("eager", "onnx"):
        with pytest.raises(EnergyModelError, match="choose one of torch, torchscript, onnxrun"):
            stage_runner(run, "stage1", old)
