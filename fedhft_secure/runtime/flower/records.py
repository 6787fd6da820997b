"""How FedHFT bytes ride in Flower messages (no torch here: the ClientApp relay imports this).

Every message carries one ConfigRecord under ``fedhft``:

- server -> node: ``op`` = ``hello`` (with ``config``: the run config as JSON) or ``step``
  (with ``blob``: one FedHFT wire message, bytes);
- node -> server: ``blob`` (the reply bytes) or ``refused`` (why the client refused: no reply
  for the state machine), after RoundStart also ``report``/``events`` (JSON) and ``may-train``;
  a hello reply carries ``client`` (the node's partition id) and ``level``.
"""

from __future__ import annotations

from typing import Any

from flwr.app import ConfigRecord, RecordDict

KEY = "fedhft"
HELLO, STEP = "hello", "step"


def pack(fields: dict[str, Any]) -> RecordDict:
    return RecordDict({KEY: ConfigRecord({k: v for k, v in fields.items() if v is not None})})


def unpack(content: RecordDict) -> dict[str, Any]:
    rec = content.get(KEY) if hasattr(content, "get") else None
    if rec is None:
        raise ValueError(f"message has no {KEY!r} record")
    return dict(rec)
