"""One exception tree: every exception class the package defines is an ``AlertsError`` (so a caller can tell
ours from a library's), and the tree drawn in ``alerts/errors.py`` names each of them; every module logs under
its own ``__name__``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import alerts
import alerts.errors
import workers
from alerts.errors import AlertsError

REPO = Path(__file__).resolve().parents[1]


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in (alerts, workers):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if info.name.endswith("__main__"):
                continue
            module = importlib.import_module(info.name)
            for name, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                    found[f"{cls.__module__}.{name}"] = cls
    return found


def test_every_exception_is_in_the_one_tree() -> None:
    classes = _exception_classes()
    assert len(classes) > 15  # the walk found the package's classes
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, AlertsError))
    assert outside == [], f"outside AlertsError: {outside}"


def test_the_drawn_tree_names_every_class() -> None:
    drawn = set(re.findall(r"[├└]── (\w+)", alerts.errors.__doc__ or ""))
    defined = {cls.__name__ for cls in _exception_classes().values()} - {"AlertsError"}
    assert defined == drawn


def test_loggers_are_named_by_module() -> None:
    named = []
    for path in [*(REPO / "alerts").rglob("*.py"), *(REPO / "workers").rglob("*.py")]:
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if re.search(r"getLogger\(\s*['\"]", line):
                named.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert named == []
