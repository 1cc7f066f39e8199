"""What the command modules share: logging, the rules directory, the demo's settings, inputs."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import BinaryIO

from alerts.errors import ConfigError
from alerts.settings import Settings


def setup_logging(verbose: bool, settings: Settings | None = None) -> None:
    """Text lines, or JSON ones with ALERTS_LOG_FORMAT=json (``workers.logs``); httpx's request lines (full
    URLs: a feed's ${VAR} in a query string, a webhook's token) are kept out."""
    from workers.logs import setup

    if settings is None:
        setup("text", verbose)
    else:
        setup(settings.log_format, verbose, settings.timezone)


def require_rules_dir(settings: Settings, demo: bool = False) -> None:
    """A service without its rule files would run and never alert: stop at once instead."""
    if settings.rules_dir.exists():
        return
    where = f"{settings.rules_dir} (ALERTS_RULES_DIR, from {Path.cwd()})"
    if demo:
        raise ConfigError(f"the demo needs the example rules, and the rules directory {where} does not exist: run it "
                          "from the project folder, or set ALERTS_RULES_DIR to its rules/ folder")
    raise ConfigError(f"the rules directory {where} does not exist: create it, or set ALERTS_RULES_DIR to the "
                      "folder of your rule files (`alerts rules check DIR` checks one)")


#: Seconds the demo's event-time stage waits for a leg that has not reported a time (ALERTS_COMPOSITE_GRACE_SECONDS
#: is 2 hours): the demo feed ends, so a spread's or all_of's last times would otherwise wait for quotes that never
#: come, and the demo would show fewer alerts than ``alerts backtest --demo`` of the same feed.
DEMO_GRACE_SECONDS = 2.0


def demo_settings(settings: Settings) -> Settings:
    """The demo's own key prefix and queue (``{prefix}-demo``): it never mixes with real data, and
    ``backtest``, ``rules explain`` and ``digest preview`` read it with ``--demo``; and its short grace
    (``DEMO_GRACE_SECONDS``), so the live demo and its backtest print the same alerts."""
    return settings.model_copy(update={"key_prefix": f"{settings.key_prefix}-demo",
                                       "queue_name": f"{settings.queue_name}-demo",
                                       "composite_grace_seconds": min(settings.composite_grace_seconds,
                                                                      DEMO_GRACE_SECONDS)})


def open_input(path: str) -> tuple[str, BinaryIO] | None:
    """A JSON Lines input, as bytes (each line is decoded on its own, so one bad line is reported and the
    rest still read): a file, or standard input for '-'. None (and a message) when it cannot be opened."""
    name = "<stdin>" if path == "-" else path
    try:
        return name, (sys.stdin.buffer if path == "-" else open(path, "rb"))
    except OSError as exc:
        print(f"{name}: cannot open: {exc.strerror}", file=sys.stderr)
        return None


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date such as 2025-02-25") from None
