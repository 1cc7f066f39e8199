"""No module of ours grows past 500 lines (README "Layout"): one idea a module, split along its seams before
it is hard to read."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 500


def test_no_module_over_500_lines() -> None:
    long = []
    for folder in ("alerts", "workers", "tests", "bench", "deploy"):
        for path in (REPO / folder).rglob("*.py"):
            n = len(path.read_text("utf-8").splitlines())
            if n > MAX_LINES:
                long.append(f"{path.relative_to(REPO)}: {n} lines")
    assert long == []
