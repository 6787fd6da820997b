"""ClientApp process -> the node's worker process: one request, one reply, over a Unix socket.

Frames: 4-byte big-endian header length, JSON header, then ``blob_len`` raw bytes. Stdlib only.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["ask_worker", "send_frame", "recv_frame", "supernode_pid", "pid_alive", "SOCKET", "PIDFILE",
           "PROGRESS"]

SOCKET, PIDFILE, LOG, PROGRESS = "worker.sock", "worker.pid", "worker.log", "progress.log"
START_TIMEOUT = 300.0  # the worker imports torch and builds its partition before it listens


def send_frame(sock: socket.socket, fields: dict[str, Any]) -> None:
    blob = fields.get("blob")
    head = {k: v for k, v in fields.items() if k != "blob"}
    if blob is not None:
        head["blob_len"] = len(blob)
    raw = json.dumps(head).encode()
    sock.sendall(struct.pack(">I", len(raw)) + raw + (bytes(blob) if blob is not None else b""))


def _exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> dict[str, Any]:
    (n,) = struct.unpack(">I", _exact(sock, 4))
    head = json.loads(_exact(sock, n))
    if "blob_len" in head:
        head["blob"] = _exact(sock, int(head.pop("blob_len")))
    return head


def _proc_stat(pid: int) -> tuple[str, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2:].split()
    return rest[0], int(rest[1])  # state, ppid


def pid_alive(pid: int) -> bool:
    st = _proc_stat(pid)
    if st is not None:
        return st[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return not Path("/proc").is_dir()  # no /proc entry on Linux: gone


def supernode_pid() -> int:
    """The ``flower-supernode`` process above this ClientApp (its parent if none is found)."""
    pid = os.getppid()
    for _ in range(8):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            break
        if b"flower-supernode" in cmd:
            return pid
        st = _proc_stat(pid)
        if st is None or st[1] <= 1:
            break
        pid = st[1]
    return os.getppid()


def _connect(path: Path) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return s
    except OSError:
        s.close()
        return None


def _start_worker(d: Path) -> socket.socket:
    with open(d / "spawn.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        s = _connect(d / SOCKET)
        if s is not None:
            return s
        with open(d / LOG, "ab") as log:
            subprocess.Popen([sys.executable, "-m", "fedhft_secure.runtime.flower.worker", "--dir", str(d),
                              "--watch", str(supernode_pid())],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            s = _connect(d / SOCKET)
            if s is not None:
                return s
            time.sleep(0.2)
    raise TimeoutError(f"the node worker in {d} did not start (see {d / LOG})")


def ask_worker(state_dir: str, run_id: int, partition: int, fields: dict[str, Any],
               group: str = "") -> dict[str, Any]:
    """The worker's answer; ``DIR/progress.log`` gets one line per answered message (run, stage)."""
    d = Path(state_dir).expanduser()
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    s = _connect(d / SOCKET) or _start_worker(d)
    with s:
        send_frame(s, {**fields, "run_id": run_id, "partition": partition})
        reply = recv_frame(s)
    with open(d / PROGRESS, "a") as f:
        f.write(f"{run_id} {group} {'refused' if 'refused' in reply else 'ok'}\n")
    return reply
