"""Known-answer vectors from protocols/vectors/ (see its README for provenance)."""

import json
from pathlib import Path

import pytest
import torch

from fedhft_secure.algorithm.lowrank import client_product, plan_layer
from fedhft_secure.fl.messages import PassReply, decode, encode
from fedhft_secure.secure.api import Contribution, Expected, SessionInfo
from fedhft_secure.secure.plaintext import PlaintextSum

VECTORS = Path(__file__).resolve().parents[1] / "protocols" / "vectors"


def load(family):
    files = sorted((VECTORS / family).glob("*.json"))
    assert files, f"no vectors in {family}"
    return [pytest.param(json.loads(f.read_text()), id=f.stem) for f in files]


def plaintext_sum(contributions, weights, expected, K):
    """One pass through the plaintext SecureSum sessions, as the round drives them."""
    backend = PlaintextSum()
    info = SessionInfo(round=0, epoch=0, cohort=tuple(sorted(contributions)), clusters=K, passes=1,
                       weights={i: tuple(w) for i, w in weights.items()})
    server = backend.server_session(info)
    server.begin_pass(1, slot=0, expected=expected)
    for i, c in contributions.items():
        server.add_payload(i, backend.client_session(i, 0).payload(c, slot=0, weights=weights[i], expected=expected))
    server.end_inputs()
    return server.sums()


@pytest.mark.parametrize("vec", load("passplan"))
def test_passplan_vectors(vec):
    """Run the plan over the plaintext SecureSum, pass by pass, for every cluster."""
    K = len(vec["expected"])
    clients = [{k: torch.tensor(c[k], dtype=torch.float32) for k in ("B", "A")} | {"mask": torch.tensor(c["mask"])}
               for c in vec["clients"]]
    for j in range(K):
        # one cluster at a time: the others' weights set to 0 (those clients skip them)
        weights = {i: [p[k] if k == j else 0.0 for k in range(K)] for i, p in enumerate(vec["probs"])}
        G = None if vec["G"][j] is None else torch.tensor(vec["G"][j])
        plan = plan_layer(out=vec["out"], inp=vec["in"], q=vec["q"], niter=vec["niter"], G=G)
        counts = {i: Contribution(shared={"counts": c["mask"].float()}) for i, c in enumerate(clients)}
        plan.counts = plaintext_sum(counts, weights, Expected(shared={"counts": (vec["out"],)}, per_cluster={}),
                                    K)[j]["counts"]
        for p in range(plan.num_passes):
            req = plan.request(p, vec["omega_seed"])
            if req is None:
                continue
            op, X = req
            shape = (vec["out"] if op.value == "L" else vec["in"], X.shape[1])
            contribs = {i: Contribution(per_cluster={j: {"v": client_product(op, c["B"], c["A"], X)}})
                        for i, c in enumerate(clients)}
            plan.absorb(plaintext_sum(contribs, weights, Expected(shared={}, per_cluster={"v": shape}), K)[j]["v"])
        B, A = plan.factors(vec["r"])
        want = torch.tensor(vec["expected"][j]["delta"])
        tol = vec["tolerance"]["relative_frobenius"]
        assert (B @ A - want).norm() <= tol * want.norm()
        torch.testing.assert_close(plan.result[1][: vec["r"]], torch.tensor(vec["expected"][j]["singular_values"]),
                                   rtol=tol, atol=tol)


@pytest.mark.parametrize("vec", load("wire"))
def test_wire_vectors(vec):
    blob = bytes.fromhex(vec["hex"])
    msg = decode(blob, PassReply, round=vec["round"], pass_idx=vec["pass_idx"], sender=vec["sender"])
    for name, f in vec["frames"].items():
        field, _, key = name.partition("/")
        t = getattr(msg, field)[key]
        assert str(t.dtype) == f"torch.{f['dtype']}" and list(t.shape) == f["shape"]
        assert t.flatten().tolist() == f["values"]
    assert encode(msg) == blob
