"""The layer rule of DESIGN.md §5, checked by import-linter; and nothing below runtime does I/O."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contract_holds():
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), "--config", str(ROOT / ".importlinter")], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "KEPT" in proc.stdout


PURE = ["algorithm", "secure", "fl", "privacy"]
FORBIDDEN_CALLS = {"print", "open", "input"}
#: The one exception, and why: TenSEAL's SEAL binding saves and loads ciphertexts through file
#: paths only, so seal_io round-trips them through a private temporary directory (0700) that is
#: deleted before the call returns; only ciphertexts pass through it, never a key.
ALLOWED_OPEN = {"secure/ckks/seal_io.py"}
FORBIDDEN_MODULES = {"socket", "logging", "time", "random", "subprocess"}


def test_pure_layers_do_no_io():
    for pkg in PURE:
        for path in (ROOT / "fedhft_secure" / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    if node.func.id == "open" and path.relative_to(ROOT / "fedhft_secure").as_posix() in ALLOWED_OPEN:
                        continue
                    assert node.func.id not in FORBIDDEN_CALLS, f"{path}: {node.func.id}()"
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    for n in names:
                        assert n.split(".")[0] not in FORBIDDEN_MODULES, f"{path}: imports {n}"
