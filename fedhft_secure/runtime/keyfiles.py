"""CKKS consortium key files: one secret file per member, one public file for the server.

Secret files are created owner-only (0o600) with O_EXCL (never overwriting,
never readable by others for an instant) and their contents are never logged
or printed. Reading a secret file that group or others can read is refused.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ..exceptions import ConfigError
from ..secure.ckks.keys import PublicBundle, SecretBundle, generate_keys
from ..secure.ckks.params import CkksParams

__all__ = ["keygen", "read_secret", "read_public", "write_secret", "SECRET_NAME", "PUBLIC_NAME"]

SECRET_NAME = "member_{i}.ckks-secret"
PUBLIC_NAME = "server.ckks-public"


def write_secret(path: Path, bundle: SecretBundle) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        data = bundle.to_bytes()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def keygen(members: int, out_dir: Path, params: CkksParams) -> dict[str, object]:
    """Write the key files; return a summary (paths, parameters, key id) that holds no secret."""
    if members < 1:
        raise ConfigError("--members", f"{members}", "at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / SECRET_NAME.format(i=i) for i in range(members)] + [out_dir / PUBLIC_NAME]
    if any(p.exists() for p in paths):
        raise ConfigError("--out", f"{out_dir} already holds key files", "an empty or new folder")
    bundle = generate_keys(params)
    for p in paths[:-1]:
        write_secret(p, bundle)
    paths[-1].write_bytes(bundle.public().to_bytes())
    return {"members": [str(p) for p in paths[:-1]], "public": str(paths[-1]),
            "key_id": bundle.key_id.hex(), "params": params.to_dict(),
            "security_bits": params.security_bits}


def read_secret(path: Path) -> SecretBundle:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(str(path), f"secret key file has mode {oct(mode)}", "0o600 (owner only)")
    return SecretBundle.from_bytes(path.read_bytes())


def read_public(path: Path) -> PublicBundle:
    return PublicBundle.from_bytes(path.read_bytes())


def describe(summary: dict[str, object]) -> str:
    return json.dumps(summary, indent=1)
