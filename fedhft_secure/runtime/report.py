"""Write DIR/epsilon_report.json and DIR/report.html from a run folder (``fedhft-secure report DIR``)."""

from __future__ import annotations

import json
from pathlib import Path

from ..exceptions import ConfigError
from ..privacy.report import epsilon_report, render_html
from .checkpoint import write_json

__all__ = ["write_reports"]


def write_reports(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    if not path.exists():
        raise ConfigError("DIR", f"{run_dir} has no results.json", "a run folder")
    results = json.loads(path.read_text())
    audit_path = run_dir / "audit.json"
    audit = json.loads(audit_path.read_text()) if audit_path.exists() else None
    report = epsilon_report(results, audit)
    write_json(run_dir / "epsilon_report.json", report)
    (run_dir / "report.html").write_text(render_html(results, report))
    return report
