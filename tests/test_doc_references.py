"""Every dotted name of ours in a docstring, comment or document (``alerts.rules.templates.FIELDS``,
``workers.web.http``) names a module, or an attribute of one, that exists: a module moved or renamed leaves no
stale pointer behind."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_NAME = re.compile(r"(?<![\w/.-])((?:alerts|workers)(?:\.[A-Za-z_]\w*)+)")
#: Not module paths: file names (alerts.service, alerts.env.example), mail domains (alerts.invalid,
#: alerts.test), the words after a local variable called ``alerts`` or ``workers`` (``alerts.append(...)``),
#: the modules test_architecture injects, and two child loggers (``workers.web.slack_socket.sdk``,
#: ``alerts.store.metrics.breaker``).
_NOT_MODULES = re.compile(r"\.(py|md|ya?ml|toml|json|jsonl|service|example|env|rdb|local|invalid|test|log|txt|"
                          r"sdk|breaker)$|"
                          r"^(alerts|workers)\.(append|extend|sort|items|values|keys|get|pop)$|\.zz_")


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def _files() -> list[Path]:
    out = [p for d in ("alerts", "workers", "tests", "bench") for p in (REPO / d).rglob("*.py")]
    return out + [p for p in REPO.rglob("*.md") if ".venv" not in p.parts and ".git" not in p.parts]


def test_every_dotted_name_exists() -> None:
    stale = []
    for path in _files():
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            for m in _NAME.finditer(line):
                name = m.group(1)
                if not _NOT_MODULES.search(name) and not _resolves(name):
                    stale.append(f"{path.relative_to(REPO)}:{n}: {name}")
    assert stale == []
