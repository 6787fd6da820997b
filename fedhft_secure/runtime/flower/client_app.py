"""The ClientApp: hands each Flower message's bytes to this node's FedHFT client.

In Flower's simulation engine the client lives in this process (``node.STATE``). A SuperNode
starts one ClientApp process per message, so there the node config names a ``state-dir``
and the bytes go to the node's long-lived ``worker`` process (a Unix socket in that folder,
mode 0700, started on first use and stopped when the SuperNode stops). Either way the same
``fl.client.Client.handle`` answers. This module imports no torch: a relay starts fast.
"""

from __future__ import annotations

from typing import Any

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from .records import pack, unpack

__all__ = ["app"]

app = ClientApp()


def _answer(msg: Message, context: Context) -> Message:
    fields = unpack(msg.content)
    partition = int(context.node_config["partition-id"])
    state_dir = context.node_config.get("state-dir")
    reply: dict[str, Any]
    if state_dir:
        from .relay import ask_worker

        reply = ask_worker(str(state_dir), context.run_id, partition, fields, msg.metadata.group_id)
    else:
        from .node import handle

        reply = handle(context.run_id, partition, fields)
    return Message(pack(reply), reply_to=msg)


@app.query()
def query(msg: Message, context: Context) -> Message:
    return _answer(msg, context)
