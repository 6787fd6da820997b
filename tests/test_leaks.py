"""Leaks the threat models state, shown: a test fails if one silently disappears (or the statement goes stale)."""

import numpy as np

from fedhft_secure.fl.server import PassPlanServer
from fedhft_secure.runtime import run
from fedhft_secure.secure.masking.client import MaskingClient
from fedhft_secure.secure.masking.masks import flatten, layout


def test_a_plan_restart_shows_the_dropped_clients_pass_0_input(tmp_path, tiny_cfg, monkeypatch):
    """honest-but-curious-server.toml [leaks] per_cluster, "the plan restart": a client that answers pass 0 and
    then drops makes the server open pass 0 again without it; the two openings differ by its weighted input."""
    victim, opened, sent = 1, {}, {}
    absorb, payload = PassPlanServer._absorb, MaskingClient.payload

    def record_sums(self, sums):
        if self.pass_idx == 0:
            opened[self.epoch] = sums
        return absorb(self, sums)

    def record_input(self, contribution, *, slot, weights, expected):
        if self.me == victim and slot == 0 and self.epoch == 0:
            order = layout(expected)
            sent.update({j: (w * flatten(contribution.shared, contribution.per_cluster.get(j, {}), order), order)
                         for j, w in enumerate(weights) if w > 0})
        return payload(self, contribution, slot=slot, weights=weights, expected=expected)

    monkeypatch.setattr(PassPlanServer, "_absorb", record_sums)
    monkeypatch.setattr(MaskingClient, "payload", record_input)

    def fault(stage, rnd, i, blob):  # the victim's pass-0 input is in; it leaves before answering pass 1
        return None if (i == victim and stage.startswith("pass:1") and rnd == 0) else blob

    res = run(tiny_cfg(**{"fed.rounds": "1", "secure.backend": '"masking"'}), tmp_path, progress=False,
              fault=fault)
    assert [d["client"] for d in res["rounds"][0]["dropped"]] == [victim]
    assert sorted(opened) == [0, 1] and sent
    for j, (x, order) in sent.items():
        diff = flatten({k: opened[0][j][k] - opened[1][j][k] for k in opened[0][j]}, {}, order)
        assert np.abs(diff - x).max() < 1e-5 < np.abs(x).max()  # x to the fixed-point resolution
