"""A masking session driven in memory, stage by stage, for attacks and fuzzing (no model, no network).

``MaskingRun`` keeps every message that crossed, so an attack can use
exactly what the server (or a coalition) held, and a fuzzer can replay and
mutate real messages of any stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..exceptions import RemoteProtocolError
from ..secure.api import Contribution, Expected, SessionInfo
from ..secure.masking import MaskingSum

__all__ = ["MaskingRun", "SERVER_STAGES", "CLIENT_STAGES"]

#: stage -> (server session stage that takes the reply)
SERVER_STAGES = ("setup", "directory", "forward", "check", "unmask")
CLIENT_STAGES = ("setup", "directory", "forward", "check", "unmask")


@dataclass
class MaskingRun:
    vectors: dict[int, np.ndarray]
    backend: MaskingSum
    round: int = 3
    to_client: dict[str, dict[int, bytes]] = field(default_factory=dict)  # stage -> client -> server's message
    from_client: dict[str, dict[int, bytes]] = field(default_factory=dict)  # stage -> client -> reply
    #: a server that deviates: (stage, client, the honest message) -> the message it sends instead
    tamper: Callable[[str, int, bytes], bytes] | None = None

    def __post_init__(self) -> None:
        ids = sorted(self.vectors)
        d = len(next(iter(self.vectors.values())))
        self.expected = Expected(shared={"v": (d,)}, per_cluster={})
        self.info = SessionInfo(round=self.round, epoch=0, cohort=tuple(ids), clusters=1, passes=1,
                                weights={i: (1.0,) for i in ids})
        self.server = self.backend.server_session(self.info)
        self.clients = {i: self.backend.client_session(i, self.round) for i in ids}

    def _exchange(self, msgs: dict[int, bytes], stage: str,
                  hook: Callable[[str, "MaskingRun"], None] | None) -> None:
        if self.tamper is not None:
            msgs = {i: self.tamper(stage, i, blob) for i, blob in msgs.items()}
        self.to_client[stage] = dict(msgs)
        if hook:
            hook(stage, self)  # e.g. snapshot the server before it sees this stage's replies
        replies = {}
        for i, blob in msgs.items():
            try:
                replies[i] = self.clients[i].handle(blob)
            except RemoteProtocolError:
                continue
        self.from_client[stage] = replies
        for i, blob in replies.items():
            try:
                self.server.receive(i, blob)
            except RemoteProtocolError:
                pass

    def run(self, *, until: str | None = None, hook: Callable[[str, "MaskingRun"], None] | None = None):
        """Key set-up, one pass, unmask; stop before ``until``'s messages are answered when given."""
        for stage in ("setup", "directory", "forward"):
            msgs = self.server.next_messages()
            if stage == until:
                self.to_client[stage] = dict(msgs)
                return None
            self._exchange(msgs, stage, hook)
        self.server.next_messages()
        self.server.begin_pass(1, slot=0, expected=self.expected)
        for i in sorted(self.server.alive):
            c = Contribution(shared={"v": torch.from_numpy(self.vectors[i])})
            self.server.add_payload(i, self.clients[i].payload(c, slot=0, weights=[1.0], expected=self.expected))
        self.server.end_inputs()
        while msgs := self.server.next_messages():
            stage = self.server.stage
            if stage == until:
                self.to_client[stage] = dict(msgs)
                return None
            self._exchange(msgs, stage, hook)
        return self.server.sums()
