"""FedHFT on Flower (Message API): the same server/client state machines, carried by Flower.

- ``server_app``: a ServerApp that drives ``fl.server`` through ``runtime.local.run`` with a
  Flower transport: every stage (RoundStart, each secure-sum stage, each pass) is one Flower
  message round; a node that does not reply in time is a dropout.
- ``client_app``: a ClientApp that hands each message's bytes to this node's ``fl.client.Client``
  (in the simulation engine: in the ClientApp's process; on a SuperNode: to the node's
  long-lived ``worker`` process, since a SuperNode starts one ClientApp process per message).
- ``sim``: ``fedhft-secure run --engine flower-sim``; ``deploy``: SuperLink/SuperNode processes.

Nothing here is imported by ``runtime.local``; this package must stay cheap to import for the
ClientApp relay (no torch at module level in ``records``/``client_app``).
"""
