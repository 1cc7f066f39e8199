"""The import rules of the layout hold: the contracts under [tool.importlinter] in pyproject.toml
pass on the code base, and each of them fails when the import it forbids appears."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("alerts", "workers")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` of this interpreter's import-linter, run in ``cwd`` (it reads ``cwd``'s
    pyproject.toml and finds the packages there first)."""
    command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()",
               "--no-cache", "--no-logo"]
    env = {**os.environ, "COLUMNS": "200"}  # long module chains stay on one line
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_import_contracts_are_kept() -> None:
    proc = lint_imports(REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _skeleton(root: Path) -> None:
    """The repository's modules, empty, and its pyproject.toml: every contract is kept on it."""
    for package in PACKAGES:
        for source in (REPO / package).rglob("*.py"):
            target = root / source.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("")
    (root / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text("utf-8"), "utf-8")


#: One forbidden import (or more) per contract: module -> its code, and what lint-imports must say.
VIOLATIONS = {
    "workers/zz_cycle_a.py": ("import workers.zz_cycle_b\n", "No cycles are allowed in workers."),
    "workers/zz_cycle_b.py": ("import workers.zz_cycle_a\n", "- .zz_cycle_"),
    "alerts/zz_loose.py": ("", "- alerts.zz_loose"),
    "workers/roles/zz_web.py": ("import workers.web.http\n", "workers.roles.zz_web -> workers.web.http (l.1)"),
    "workers/web/zz_cli.py": ("import workers.cli.main\n", "workers.web.zz_cli -> workers.cli.main (l.1)"),
    "alerts/model.py": ("import workers.cli\n", "alerts.model -> workers.cli (l.1)"),
    "alerts/units.py": ("import alerts.rules.models\n", "alerts.units -> alerts.rules.models (l.1)"),
    "alerts/settings.py": ("import httpx\n", "alerts.settings -> httpx (l.1)"),
    "alerts/rules/zz_redis.py": ("import redis\n", "alerts.rules.zz_redis -> redis (l.1)"),
    "alerts/evaluate/zz_store.py": ("import alerts.store.keys\n",
                                    "alerts.evaluate.zz_store -> alerts.store.keys (l.1)"),
    "alerts/notify/zz_evaluate.py": ("import alerts.evaluate.engine\n",
                                     "alerts.notify.zz_evaluate -> alerts.evaluate.engine (l.1)"),
    "alerts/notify/zz_redis.py": ("import redis\n", "alerts.notify.zz_redis -> redis (l.1)"),
    "alerts/store/zz_rq.py": ("import rq\n", "alerts.store.zz_rq -> rq (l.1)"),
}


def test_every_contract_catches_its_violation(tmp_path: Path) -> None:
    _skeleton(tmp_path)
    clean = lint_imports(tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    for name, (code, _) in VIOLATIONS.items():
        (tmp_path / name).write_text(code)
    proc = lint_imports(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["tool"]["importlinter"]["contracts"]
    assert f"Contracts: 0 kept, {len(contracts)} broken." in out, out
    for _, expected in VIOLATIONS.values():
        assert expected in out, f"{expected!r} not reported:\n{out}"
