"""FedHFT on Flower: the simulation engine and real SuperLink/SuperNode processes on loopback.

The deployment test starts a SuperLink (TLS, SuperNode authentication) and SuperNodes on free
loopback ports, and stops every process it started, by pid (``deploy.Consortium.stop``).
"""

import json
import socket

import pytest
from cryptography import x509

from conftest import tiny_overrides
from fedhft_secure.config import load_config
from fedhft_secure.runtime import run
from fedhft_secure.runtime.flower.compare import max_abs_diff
from fedhft_secure.runtime.flower.deploy import make_certs, make_node_key
from fedhft_secure.runtime.flower.relay import pid_alive, recv_frame, send_frame

#: the models of two runs (masked sums with independent stochastic rounding, through the
#: randomized SVD of 2 rounds) differ by a few quantization steps (~1e-6 here); the bound
#: leaves two orders of magnitude.
QUANT_TOL = 1e-4

MASKING = {"secure.backend": '"masking"', "fed.power_iters": "0"}


def test_relay_frames_roundtrip():
    a, b = socket.socketpair()
    with a, b:
        send_frame(a, {"op": "step", "blob": b"\x00\x01" * 1000, "n": 3})
        assert recv_frame(b) == {"op": "step", "blob": b"\x00\x01" * 1000, "n": 3}
        send_frame(a, {"refused": "no"})
        assert recv_frame(b) == {"refused": "no"}


def test_certs_and_node_keys(tmp_path):
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key

    certs = make_certs(tmp_path)
    ca = x509.load_pem_x509_certificate(certs.ca.read_bytes())
    cert = x509.load_pem_x509_certificate(certs.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} >= {"127.0.0.1", "::1"}
    assert certs.key.stat().st_mode & 0o077 == 0
    priv, pub = make_node_key(tmp_path, "node0")
    key = load_ssh_private_key(priv.read_bytes(), None)
    assert key.curve.name == "secp384r1" and priv.stat().st_mode & 0o077 == 0
    assert load_ssh_public_key(pub.read_bytes()).public_numbers() == key.public_key().public_numbers()


def test_node_refuses_without_hello():
    from fedhft_secure.runtime.flower.node import NodeState, handle

    st = NodeState()
    assert "refused" in handle(1, 0, {"op": "step", "blob": b"xxxxxxxx"}, st)
    assert "refused" in handle(1, 0, {"op": "nonsense"}, st)
    assert not pid_alive(2**22 + 12345)


@pytest.mark.slow
def test_flower_simulation_equals_in_process(tmp_path):
    """fedhft-secure run --engine flower-sim: the same results.json as the in-process runner."""
    from fedhft_secure.cli import main

    sets = tiny_overrides(**{**MASKING, "fed.num_clients": "4"})
    argv = ["run", "--no-progress", *sum((["--set", s] for s in sets), [])]
    assert main([*argv, "--engine", "flower-sim", "--out", str(tmp_path / "flower")]) == 0
    local = run(load_config(None, sets), tmp_path / "local", progress=False)
    flower = json.loads((tmp_path / "flower" / "results.json").read_text())
    assert flower["config"] == local["config"] and len(flower["rounds"]) == 2
    for a, b in zip(flower["rounds"], local["rounds"]):
        assert a.keys() == b.keys()
        assert [c["id"] for c in a["clients"]] == [c["id"] for c in b["clients"]]
        assert all(c["completed"] for c in a["clients"]) and a["dropped"] == []
        # the same messages, byte for byte in size
        assert [(c["bytes_up"], c["bytes_down"]) for c in a["clients"]] == \
               [(c["bytes_up"], c["bytes_down"]) for c in b["clients"]]
    # round 0's local training starts from the same (initial) model: identical reports
    assert flower["rounds"][0]["clients"] == local["rounds"][0]["clients"]
    assert max_abs_diff(tmp_path / "flower", tmp_path / "local") < QUANT_TOL
    assert (tmp_path / "flower" / "adapters" / "cluster_0").is_dir()


@pytest.mark.slow
def test_consortium_on_loopback(tmp_path):
    """Real flower-superlink + 4 flower-supernode processes, TLS + SuperNode authentication:
    2 masking rounds through `flwr run`; an unknown key is refused; a SuperNode SIGKILLed after
    answering round 1's first pass is survived by dropout recovery; the model equals the
    in-process runner's under the same seed and the same dropout."""
    from fedhft_secure.runtime.flower.loopback import consortium_run

    rep = consortium_run(tmp_path, tiny_overrides(**{**MASKING, "fed.num_clients": "4", "data.train_size": "240"}),
                         kill=2, kill_after="1:pass:0", stage_timeout=180.0)
    assert rep["flwr_run_returncode"] == 0, (tmp_path / "flwr-run.log").read_text()[-3000:]
    assert rep["unknown_node_refused"] and rep["online_nodes"] == 4
    assert rep["rounds_completed"] == 2
    assert rep["completed"] == [[0, 1, 2, 3], [0, 1, 3]]
    assert rep["survived_node_kill"]
    assert rep["max_abs_diff_vs_inprocess"] < QUANT_TOL
    assert rep["same_local_reports"]
    # every process is gone: SuperLink, SuperNodes, their SuperExecs and the node workers
    for pidfile in (tmp_path / "consortium" / "state").glob("*/worker.pid"):
        assert not pid_alive(int(pidfile.read_text()))
