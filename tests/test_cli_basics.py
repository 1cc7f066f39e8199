"""The `alerts` command itself: --version, a reader that goes away, the help pages."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from alerts.settings import Settings
from tests.conftest import env_for
from workers.cli.main import build_parser, main

REPO = Path(__file__).resolve().parents[1]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"alerts {version('alerts')}\n"


def run_into_a_closed_pipe(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``alerts ARGV | head -0``, without the race: the pipe's reader is gone before anything is written."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run([sys.executable, "-m", "workers.cli", *argv], env=env, stdout=w, stderr=subprocess.PIPE,
                              text=True, check=False, cwd=REPO)
    finally:
        os.close(w)


@pytest.mark.parametrize("argv", [["backtest", "--events", "EVENTS", "--format", "json"], ["backtest", "--events",
                                  "EVENTS"], ["rules", "test", str(REPO / "rules")], ["--help"], ["--version"]],
                         ids=" ".join)
def test_a_reader_that_goes_away_stops_the_command_quietly(settings: Settings, tmp_path: Path,
                                                           argv: list[str]) -> None:
    """No traceback; status 141 as a tool SIGPIPE stopped (argparse's own pages exit 0: it ignores the error)."""
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "price", "product": "Pr-Nd oxide", "price": 452000, "unit": "CNY/t", '
                      '"as_of": "2025-02-25"}\n')
    env = env_for(settings, ALERTS_RULES_DIR=str(REPO / "rules"))
    proc = run_into_a_closed_pipe([str(events) if a == "EVENTS" else a for a in argv], env)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == (0 if argv[0].startswith("--") else 141)


@pytest.mark.parametrize("argv", [["publish"], ["rules", "check"], ["rules", "explain"], ["digest"]], ids=" ".join)
def test_help_pages_say_what_the_command_does_prints_and_exits_with(argv: list[str],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    for word in argv:  # down the subcommands
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[word]
    assert parser.description and "Exit status: 0" in parser.description
    assert all(a.help for a in parser._actions), [a.dest for a in parser._actions if not a.help]
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    assert "Exit status" in capsys.readouterr().out
