"""``alerts rules check|test|explain|resume`` and ``alerts backtest``: the trader's tools for rule files."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from alerts.errors import AlertsError
from alerts.events import parse_lines, read_lines
from alerts.rules.checks import PriceStats, warnings
from alerts.rules.compiled import RuleSet
from alerts.rules.load import TEST_SUFFIXES, in_file_order, load_rules
from alerts.settings import Settings
from alerts.store.server import redis_for
from workers.cli.common import demo_settings, open_input, parse_date


def cmd_rules_check(args: argparse.Namespace, settings: Settings) -> int:
    directory = Path(args.dir) if args.dir else settings.rules_dir
    rs = load_rules(directory, timezone=settings.timezone)
    stats, note = _history_stats(settings) if rs.by_id else ({}, "")
    checks = warnings(rs, stats, settings.fx_max_age_days * 86400, time.time())
    for p in in_file_order([*rs.problems, *checks], rs.files):
        print(p)
    if note:
        print(note, file=sys.stderr)
    n = len(rs.by_id)
    if rs.errors:
        print(f"{len(rs.errors)} problems in {len(rs.files)} files", file=sys.stderr)
        return 1
    print(f"ok: {n} rules, {len(rs.digests)} digests in {len(rs.files)} files", file=sys.stderr)
    return 0


def cmd_rules_test(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.evaluate.ruletest import report, run_file

    paths: list[Path] = []
    for f in args.files:
        p = Path(f)
        paths.extend(sorted(q for q in p.rglob("*") if q.name.endswith(TEST_SUFFIXES)) if p.is_dir() else [p])
    if not paths:
        print("no rule test files (*.test.yaml) given", file=sys.stderr)
        return 2
    text, ok = report([run_file(p, settings.timezone, fx_max_age_days=settings.fx_max_age_days) for p in paths],
                      settings.timezone)
    print(text)
    return 0 if ok else 1


def cmd_rules_explain(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.store.rule_explain import explain_rule

    if args.demo:
        settings = demo_settings(settings)
    rules = load_rules(settings.rules_dir, timezone=settings.timezone)
    if args.id not in rules.by_id:
        print(f"no enabled rule {args.id!r} in {settings.rules_dir}", file=sys.stderr)
        return 1
    with redis_for(settings) as client:
        text = explain_rule(client, settings, rules, args.id)
    print(text)
    return 0


def cmd_rules_resume(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.store.breaker import resume
    from alerts.store.keys import Keys

    with redis_for(settings) as client:
        if resume(client, Keys(settings.key_prefix), args.id, settings.breaker_window_seconds):
            print(f"{args.id}: resumed")
            return 0
    print(f"{args.id}: was not paused", file=sys.stderr)
    return 1


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.evaluate.backtest import run_backtest, write_json, write_text
    from alerts.store.history import stored_events
    from alerts.store.keys import Keys
    from alerts.store.streams import waiting_events

    if args.demo:
        settings = demo_settings(settings)
    rules = load_rules(Path(args.rules) if args.rules else settings.rules_dir, timezone=settings.timezone)
    for p in rules.problems:
        print(p, file=sys.stderr)
    if args.events:
        opened = open_input(args.events)
        if opened is None:
            return 2
        name, fh = opened
        errors: list[tuple[int, str]] = []
        with fh:  # decoded as publish decodes, limits and all; a date after the clock is refused here too;
            # a quote in another currency is converted with the fx lines before it in the file
            events = [ev for _, ev in parse_lines(read_lines(fh), rules.catalog, settings.timezone, errors,
                                                  max_future_days=settings.max_future_days,
                                                  fx_max_age_days=settings.fx_max_age_days)]
        for line, reason in errors:
            print(f"{name}:{line}: {reason}", file=sys.stderr)
    waiting = 0
    if not args.events:
        with redis_for(settings) as client:
            keys = Keys(settings.key_prefix)
            events = stored_events(client, keys, rules.catalog, settings.timezone)
            waiting = waiting_events(client, keys, settings.stream_shards)
    result = run_backtest(rules, events, args.start, args.end, fx_max_age_days=settings.fx_max_age_days)
    if args.format == "json":
        write_json(result, sys.stdout, rules.errors, waiting)
    else:
        write_text(result, sys.stdout, settings.timezone)
    return _backtest_verdict(rules, result.events, waiting)


def _backtest_verdict(rules: RuleSet, replayed: int, waiting: int) -> int:
    """The last lines of a backtest, on stderr: what it could not replay. 0: it replayed every rule on all the
    stored history; 1: some rules were refused (not run), or the events of an import or a publish have not been
    evaluated by the service yet (so they are not in the stored history the backtest replays)."""
    status = 0
    if waiting:
        what = "so the stored history is empty" if not replayed else "not in this backtest"
        print(f"alerts: {waiting:,} events published or imported (alerts import) wait on the event streams for an "
              f"evaluator, {what}: start the service (alerts run, or alerts worker --role evaluate) and let it "
              "read them, then backtest again; or backtest a file with --events FILE", file=sys.stderr)
        status = 1
    refused = rules.errors
    if refused:
        ids = sorted({p.rule_id for p in refused if p.rule_id})
        if ids:
            named = "rules refused: " + ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")
        else:
            named = "the rule files have errors"
        print(f"alerts: {named} ({len(refused)} problems, listed above); not backtested, the result leaves them "
              "out: fix them (alerts rules check) and backtest again", file=sys.stderr)
        status = 1
    return status


#: The stored data of a private redis-server (ALERTS_DATA_DIR): append-only files of Redis 6 and 7, snapshot.
_DATA_FILES = ("appendonly.aof", "appendonlydir", "dump.rdb")


_NO_HISTORY = "thresholds were compared with the catalog's typical prices"


def _history_stats(settings: Settings) -> tuple[dict[str, PriceStats], str]:
    """Price history for the check's warnings, and a note when there is none: from ALERTS_REDIS_URL;
    else from the private redis-server of ALERTS_DATA_DIR when it runs; else from a copy of its data,
    read by a throwaway redis-server (``_data_copy``): the data directory is never changed, nothing is
    left running, and no service needs to run for a unit slip to be caught."""
    from alerts.store.server import PrivateRedis

    if settings.redis_url is not None or settings.redis_sentinels:
        return _read_stats(None, settings)
    private = PrivateRedis(settings.data_dir)
    if private.running():
        return _read_stats(private.url, settings)
    if not any((settings.data_dir / name).exists() for name in _DATA_FILES):
        return {}, f"(no stored price history in {settings.data_dir}: {_NO_HISTORY})"
    try:
        with _data_copy(settings.data_dir) as url:
            return _read_stats(url, settings)
    except (AlertsError, OSError) as exc:
        return {}, f"(price history in {settings.data_dir} not read: {exc}; {_NO_HISTORY})"


def _read_stats(url: str | None, settings: Settings) -> tuple[dict[str, PriceStats], str]:
    from alerts.store.history import price_stats
    from alerts.store.keys import Keys
    from alerts.store.server import connect

    client = connect(url, settings.model_copy(update={"socket_timeout_seconds": 3.0}))
    try:
        return price_stats(client, Keys(settings.key_prefix)), ""
    except redis.RedisError as exc:
        return {}, f"(price history not read: {type(exc).__name__}; {_NO_HISTORY})"
    finally:
        client.close()


@contextlib.contextmanager
def _data_copy(data_dir: Path) -> Iterator[str]:
    """The URL of a throwaway redis-server (its own unix socket, no port) loaded from a copy of the
    private server's data in ``data_dir``; stopped and deleted with its copy at the end of the block."""
    from alerts.errors import RedisServerError
    from alerts.store.server import START_TIMEOUT, redis_server_binary

    with tempfile.TemporaryDirectory(prefix="alerts-check-") as tmp:
        work = Path(tmp)
        for name in _DATA_FILES:
            src = data_dir / name
            if src.is_dir():
                shutil.copytree(src, work / name)
            elif src.is_file():
                shutil.copy2(src, work / name)
        socket, log = work / "redis.sock", work / "redis.log"
        conf = work / "redis.conf"
        conf.write_text("\n".join([
            "port 0", f'unixsocket "{socket}"', "unixsocketperm 700", f'dir "{work}"', "daemonize no",
            f'logfile "{log}"', "appendonly yes", "appendfsync no", "aof-load-truncated yes", 'save ""', "",
        ]))
        proc = subprocess.Popen([redis_server_binary(), str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _answers(socket):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
                    raise RedisServerError("a redis-server could not load a copy of the data"
                                           + (f": {tail[0]}" if tail else ""))
                time.sleep(0.05)
            yield f"unix://{socket}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _answers(socket: Path) -> bool:
    if not socket.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket), socket_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


def register(sub: Any) -> None:
    """``rules`` (check, explain, resume, test) and ``backtest``."""
    rules = sub.add_parser("rules", help="work with rule files")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    chk = rsub.add_parser("check", help="report every problem as PATH:LINE: RULE-ID: message",
                          formatter_class=argparse.RawDescriptionHelpFormatter, description="""\
Check the rule files: every problem (errors, and warnings such as a threshold far from the
stored prices) is printed on stdout as PATH:LINE: RULE-ID: message, in file order; then a
summary on stderr ("ok: N rules, N digests in N files", or "N problems in N files").
Nothing is changed and no service needs to run.

Exit status: 0 no errors (warnings allowed), 1 errors, 2 a setting is wrong.""")
    chk.add_argument("dir", nargs="?", help="a rules folder or file (default ALERTS_RULES_DIR)")
    chk.set_defaults(func=cmd_rules_check)
    exp = rsub.add_parser("explain", help="a rule's current state per product: why it did or did not fire",
                          formatter_class=argparse.RawDescriptionHelpFormatter, description="""\
Why a rule did or did not fire, from the state the service keeps in Redis: per product
and source its last quote, whether it is armed, its last alert and cooldown, confirm
counts; for spreads and all_of, up to when it was evaluated and which leg it waits for;
whether the circuit breaker paused it; and the active silences that match its alerts
(alerts silence). Read only: nothing is changed.

Exit status: 0 shown, 1 no enabled rule with that id, 2 a setting is wrong or Redis
cannot be reached.""")
    exp.add_argument("id", help="the rule's id, as in its file")
    exp.add_argument("--demo", action="store_true", help="the state `alerts run --demo` left (its own key prefix)")
    exp.set_defaults(func=cmd_rules_explain)
    res = rsub.add_parser("resume", help="resume a rule the circuit breaker paused")
    res.add_argument("id")
    res.set_defaults(func=cmd_rules_resume)
    tst = rsub.add_parser("test", help="run rule unit tests (*.test.yaml files, or folders holding them)")
    tst.add_argument("files", nargs="+")
    tst.set_defaults(func=cmd_rules_test)
    bt = sub.add_parser("backtest", help="replay history through the rules without sending anything",
                        description="Replay the stored history (or --events FILE) through the rules; nothing is "
                        "sent. Exit status: 0 every rule replayed on all the stored history; 1 some rules were "
                        "refused (listed on stderr: not backtested, the result leaves them out), or events "
                        "published or imported have not been evaluated by the service yet (not in the stored "
                        "history); 2 a setting is wrong, a file cannot be read or Redis cannot be reached.")
    bt.add_argument("--rules", help="rules directory or file (default ALERTS_RULES_DIR)")
    bt.add_argument("--from", dest="start", type=parse_date, help="first day to report alerts for")
    bt.add_argument("--to", dest="end", type=parse_date, help="last day to replay")
    bt.add_argument("--events", help="a JSON Lines file ('-' for stdin) instead of the stored history")
    bt.add_argument("--format", choices=("text", "json"), default="text")
    bt.add_argument("--demo", action="store_true",
                    help="the history `alerts run --demo` stored (its own key prefix); ignored with --events")
    bt.set_defaults(func=cmd_backtest)
