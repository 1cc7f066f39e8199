"""The ``alerts`` command: the parser each command module registers into, and the one place errors become exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import redis
from redis.exceptions import InvalidResponse

from alerts.errors import AlertsError
from alerts.settings import load_settings, print_warning
from alerts.store.server import not_redis_message, redis_where
from workers.cli import delivery, ingest, ops, quotes, rules, serve, silences, sources


def _version() -> str:
    """The installed ``alerts`` distribution's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alerts")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="alerts", description="Rare-earth price and news alerts.")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    for module in (serve, ingest, quotes, rules, delivery, sources, ops, silences):
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Every command; a reader that goes away (``alerts backtest | head``) stops it quietly, as it stops
    Unix tools: no traceback, status 141 (128 + SIGPIPE)."""
    try:
        status = _main(argv)
        sys.stdout.flush()  # here, not at exit, where a broken pipe could only be reported
        return status
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush then goes nowhere
        return 141


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(warn=print_warning)  # a bad ALERTS_* value stops every command here
        return int(args.func(args, settings))
    except AlertsError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"alerts: {line}", file=sys.stderr)
        return 2
    except (redis.ConnectionError, redis.TimeoutError) as exc:  # the message names host and port, never a password
        print(f"alerts: Redis unreachable at {redis_where(settings)}: {exc}", file=sys.stderr)
        return 2
    except InvalidResponse as exc:  # ALERTS_REDIS_URL names the port of an HTTP server, say
        print(f"alerts: {not_redis_message(settings, exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
