"""Deployment helpers: TLS material, SuperNode keys, and real SuperLink/SuperNode processes.

``python -m fedhft_secure.runtime.flower.deploy certs DIR`` writes a CA and a server
certificate for 127.0.0.1/localhost (and any ``--host``); ``... node-key DIR NAME`` writes a
SuperNode's EC P-384 key pair (OpenSSH format, as ``flower-supernode`` and ``flwr supernode
register`` read it). ``Consortium`` starts a SuperLink with TLS and SuperNode authentication
and SuperNodes on loopback, registers their public keys (the allow list), and stops every
process it started, by pid (the tests and ``experiments/flower_loopback.py`` use it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .relay import PIDFILE, pid_alive

__all__ = ["make_certs", "make_node_key", "free_port", "write_flwr_home", "Consortium", "Certs"]

ROOT = Path(__file__).resolve().parents[3]  # the project (pyproject.toml with [tool.flwr.app])


@dataclass(frozen=True, slots=True)
class Certs:
    ca: Path
    cert: Path
    key: Path


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def make_certs(out: Path, hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost"), days: int = 365) -> Certs:
    """A CA (ca.crt, ca.key) and a SuperLink certificate (server.pem, server.key) it signed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedhft-secure consortium CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False),
                         critical=True)
          .sign(ca_key, hashes.SHA384()))
    key = ec.generate_private_key(ec.SECP384R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA384()))
    _write(out / "ca.key", _pem_key(ca_key), 0o600)
    _write(out / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    _write(out / "server.key", _pem_key(key), 0o600)
    _write(out / "server.pem", cert.public_bytes(serialization.Encoding.PEM))
    return Certs(ca=out / "ca.crt", cert=out / "server.pem", key=out / "server.key")


def make_node_key(out: Path, name: str) -> tuple[Path, Path]:
    """A SuperNode's EC P-384 key pair: NAME (private, 0600) and NAME.pub (for the allow list)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    _write(out / name, priv, 0o600)
    _write(out / f"{name}.pub", pub + b"\n")
    return out / name, out / f"{name}.pub"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_flwr_home(home: Path, name: str, address: str, ca: Path | None) -> Path:
    """A FLWR_HOME whose config.toml names one SuperLink connection (the ``flwr`` CLI reads it)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    tls = f'root-certificates = "{Path(ca).resolve()}"' if ca else "insecure = true"
    (home / "config.toml").write_text(f'[superlink]\ndefault = "{name}"\n\n[superlink.{name}]\n'
                                      f'address = "{address}"\n{tls}\n')
    return home


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def _env(home: Path | None) -> dict[str, str]:
    """Flower's own tools start further Flower tools by name: this interpreter's first on PATH."""
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "FLWR_HOME": str(home),
            "FLWR_DISABLE_UPDATE_CHECK": "1", "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1", "PYTHONWARNINGS": "ignore",
            "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.1"}  # Flower's default: 1 s per message


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), deepest last."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def _stop_pid(pid: int, sig: int = signal.SIGTERM) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


@dataclass
class Consortium:
    """A SuperLink (TLS + SuperNode authentication) and SuperNodes on loopback, in ``workdir``."""

    workdir: Path
    tls: bool = True
    node_auth: bool = True
    superlink_port: int = 0
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    keys: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    certs: Certs | None = None
    home: Path | None = None
    orphans: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.superlink_port = self.superlink_port or free_port()
        self.address = f"127.0.0.1:{self.superlink_port}"
        if self.tls:
            self.certs = make_certs(self.workdir / "certs")
        self.home = write_flwr_home(self.workdir / "flwr-home", "consortium", self.address,
                                    self.certs.ca if self.certs else None)

    # -- processes ---------------------------------------------------------------------
    def _spawn(self, name: str, cmd: list[str], cwd: Path | None = None) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=str(cwd or self.workdir), env=_env(self.home), start_new_session=True)
        self.procs[name] = p
        return p

    def flwr(self, *args: str, timeout: float = 120.0, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([_bin("flwr"), *args], cwd=str(cwd or ROOT), env=_env(self.home), capture_output=True,
                              text=True, timeout=timeout)

    def start_superlink(self, timeout: float = 60.0) -> None:
        cmd = [_bin("flower-superlink"), "--host", "127.0.0.1", "--port", str(self.superlink_port),
               "--disable-runtime-dependency-installation"]
        if self.certs:
            cmd += ["--ssl-ca-certfile", str(self.certs.ca), "--ssl-certfile", str(self.certs.cert),
                    "--ssl-keyfile", str(self.certs.key)]
        else:
            cmd += ["--insecure"]
        if self.node_auth:
            cmd += ["--enable-supernode-auth"]
        p = self._spawn("superlink", cmd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise RuntimeError(f"flower-superlink exited ({p.returncode}); see {self.workdir / 'superlink.log'}")
            r = self.flwr("supernode", "list", "consortium", timeout=30)
            if r.returncode == 0:
                return
            time.sleep(0.5)
        raise TimeoutError(f"SuperLink did not come up; see {self.workdir / 'superlink.log'}")

    def node_key(self, name: str, register: bool = True) -> tuple[Path, Path]:
        priv, pub = make_node_key(self.workdir / "keys", name)
        self.keys[name] = (priv, pub)
        if register:
            r = self.flwr("supernode", "register", str(pub), "consortium")
            if r.returncode != 0:
                raise RuntimeError(f"flwr supernode register failed: {r.stdout}\n{r.stderr}")
        return priv, pub

    def start_supernode(self, name: str, partition: int, num_partitions: int, *, register: bool = True,
                        key: Path | None = None, extra: list[str] | None = None) -> subprocess.Popen:
        state = self.workdir / "state" / name
        cmd = [_bin("flower-supernode"), "--superlink", self.address, "--host", "127.0.0.1",
               "--port", str(free_port()),
               "--node-config", f'partition-id={partition} num-partitions={num_partitions} state-dir="{state}"']
        if self.certs:
            cmd += ["--root-certificates", str(self.certs.ca)]
        else:
            cmd += ["--insecure"]
        if self.node_auth:
            priv = key or self.node_key(name, register=register)[0]
            cmd += ["--auth-supernode-private-key", str(priv)]
        return self._spawn(name, cmd + list(extra or []))

    def worker_pid(self, name: str) -> int | None:
        f = self.workdir / "state" / name / PIDFILE
        try:
            return int(f.read_text())
        except (OSError, ValueError):
            return None

    def kill(self, name: str) -> None:
        """SIGKILL one process (a SuperNode dying mid-round) and reap it."""
        p = self.procs[name]
        self.orphans += _children(p.pid)  # its SuperExec and ClientApp: stop() stops them by pid
        p.kill()
        p.wait(timeout=30)

    def run_app(self, run_config: str, *, timeout: float = 900.0) -> subprocess.CompletedProcess:
        """``flwr run . consortium --stream``: submit the app and stream its logs until it ends."""
        return self.flwr("run", str(ROOT), "consortium", "--run-config", run_config, "--stream", timeout=timeout)

    def stop(self) -> None:
        """Stop every process started here (and what they started), by pid."""
        pids: list[int] = []
        for p in self.procs.values():
            pids += _children(p.pid)
        workers = [w for w in (self.worker_pid(n) for n in self.procs) if w]
        for p in self.procs.values():
            if p.poll() is None:
                _stop_pid(p.pid)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        deadline = time.monotonic() + 10
        for pid in pids + workers + self.orphans:
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(pid):
                _stop_pid(pid, signal.SIGKILL)

    def __enter__(self) -> "Consortium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fedhft_secure.runtime.flower.deploy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("certs", help="CA + SuperLink certificate")
    c.add_argument("dir")
    c.add_argument("--host", action="append", default=[], help="extra DNS name or IP of the SuperLink")
    k = sub.add_parser("node-key", help="a SuperNode's EC key pair (NAME, NAME.pub)")
    k.add_argument("dir")
    k.add_argument("name")
    a = ap.parse_args(argv)
    if a.cmd == "certs":
        certs = make_certs(Path(a.dir), ("127.0.0.1", "::1", "localhost", *a.host))
        print(f"CA: {certs.ca}\nSuperLink certificate: {certs.cert}\nSuperLink key: {certs.key}")
    else:
        priv, pub = make_node_key(Path(a.dir), a.name)
        print(f"private key (keep on the SuperNode): {priv}\npublic key (give to the SuperLink operator): {pub}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
