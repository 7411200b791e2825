"""ONNX Runtime sessions: every session acnn makes carries acnn's session options."""

import torch
from torch import nn

from energy_models.runtimes import ORT_SESSION_CONFIG, onnx_bytes, ort_options, ort_session


def test_sessions_take_the_declared_options():
    data = onnx_bytes(nn.Linear(4, 2).eval(), (torch.zeros(1, 4),))
    options = ort_session(data, threads=2).get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.inter_op_num_threads == 1
    for key, value in ORT_SESSION_CONFIG.items():
        assert options.get_session_config_entry(key) == value


def test_spinning_is_off():
    """Stages of a cascade take turns: an idle session must not spin on the cores."""
    assert ort_options(1).get_session_config_entry("session.intra_op.allow_spinning") == "0"
