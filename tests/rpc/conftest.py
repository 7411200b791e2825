"""Fixtures of the runtime tests: the design run folder, in-process servers, TLS files.

Every server binds 127.0.0.1 on a free port and is stopped by the fixture that started it;
every call carries a deadline, so no test can hang on the network.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from adaptive_cnn.data import load_dataset
from adaptive_cnn.run_folder import load_run
from rpc.server import ServerConfig, make_server


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The CPU is shared: one thread, and tiny networks run no slower on it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def run(runtime_run_dir):
    return load_run(runtime_run_dir)


@pytest.fixture(scope="session")
def digits_test():
    """(images uint8 (N, 1, 8, 8), labels) of the digits test split the design never saw."""
    data = load_dataset("digits", seed=0)
    return data.test.images, data.test.labels


@pytest.fixture
def run_with_thresholds(runtime_run_dir, tmp_path):
    """Copy of the run folder whose exit policy has the given thresholds."""

    def make(*thresholds: float):
        target = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(runtime_run_dir, target)
        summary = json.loads((target / "result.json").read_text())
        summary["policy"]["thresholds"] = list(thresholds)
        (target / "result.json").write_text(json.dumps(summary))
        return load_run(target)

    return make


@pytest.fixture
def serve():
    """Starts in-process servers (127.0.0.1, port 0); drains them all at teardown."""
    servers = []

    def start(run, models=None, **settings):
        config = ServerConfig(host="127.0.0.1", port=0, **settings)
        server = make_server(run, config, models).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.drain(grace_s=1.0)


def write_tls_files(folder: Path) -> dict[str, Path]:
    """A test CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject, key, issuer, issuer_key, ca=False, san=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    def pem_key(key):
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = cert("acnn test CA", ca_key, "acnn test CA", ca_key, ca=True)
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    server = cert("localhost", server_key, "acnn test CA", ca_key, san=san)
    client = cert("acnn device", client_key, "acnn test CA", ca_key)
    files = {
        "ca": ca.public_bytes(serialization.Encoding.PEM),
        "server_cert": server.public_bytes(serialization.Encoding.PEM),
        "server_key": pem_key(server_key),
        "client_cert": client.public_bytes(serialization.Encoding.PEM),
        "client_key": pem_key(client_key),
    }
    paths = {}
    for key, data in files.items():
        paths[key] = folder / f"{key}.pem"
        paths[key].write_bytes(data)
    return paths


def torch_probs(run, stage: str, images: np.ndarray) -> np.ndarray:
    """Reference probabilities: the stage's network in plain torch, the trainer's way."""
    from adaptive_cnn.training import predict_probs

    return predict_probs(run.load_network(run.stage(stage)), images, run.input.preprocessing)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    return write_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def reference_probs():
    return torch_probs
