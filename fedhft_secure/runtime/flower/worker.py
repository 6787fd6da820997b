"""A SuperNode's long-lived FedHFT client process (``python -m fedhft_secure.runtime.flower.worker``).

Flower starts one ClientApp process per message; the client's state between messages (its
trained factors, secure-sum keys and shares) stays here, in memory, never in Flower's state
store. Listens on ``DIR/worker.sock`` (folder mode 0700), writes ``DIR/worker.pid``, and exits
when the watched SuperNode process is gone (or after ``--idle`` seconds without a message).
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from pathlib import Path

from .relay import PIDFILE, SOCKET, pid_alive, recv_frame, send_frame


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--watch", type=int, default=0, help="exit when this process (the SuperNode) is gone")
    ap.add_argument("--idle", type=float, default=3600.0)
    args = ap.parse_args(argv)
    d = Path(args.dir)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    import warnings

    warnings.filterwarnings("ignore")
    from .node import handle  # torch, the model: before we listen

    path = d / SOCKET
    path.unlink(missing_ok=True)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(16)
    (d / PIDFILE).write_text(str(os.getpid()))
    last = [time.monotonic()]

    def watchdog() -> None:
        while True:
            time.sleep(0.5)
            if (args.watch and not pid_alive(args.watch)) or time.monotonic() - last[0] > args.idle:
                path.unlink(missing_ok=True)
                os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                fields = recv_frame(conn)
                run_id, partition = int(fields.pop("run_id")), int(fields.pop("partition"))
                try:
                    reply = handle(run_id, partition, fields)
                except Exception as exc:  # noqa: BLE001 - a node never crashes on one message
                    reply = {"refused": f"{type(exc).__name__}: {exc}"}
                send_frame(conn, reply)
            except (OSError, ValueError):
                pass
            last[0] = time.monotonic()

    while True:
        conn, _ = srv.accept()
        last[0] = time.monotonic()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    raise SystemExit(main())
