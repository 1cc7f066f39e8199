"""The benchmarks reach the test suite's stand-ins through ``bench.harness`` only, and run as modules from the
repository's folder: no ``sys.path`` surgery anywhere in bench/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_no_path_surgery_and_one_door_to_tests() -> None:
    for path in (REPO / "bench").glob("*.py"):
        text = path.read_text("utf-8")
        assert "sys.path" not in text, path
        if path.name != "harness.py":
            assert "from tests" not in text and "import tests" not in text, path


@pytest.mark.parametrize("module", ["run", "ops", "slack", "articles"])
def test_each_benchmark_starts_as_a_module(module: str) -> None:
    proc = subprocess.run([sys.executable, "-m", f"bench.{module}", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout
