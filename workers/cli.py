"""The ``alerts`` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import BinaryIO, cast

import redis

from alerts.errors import AlertsError, ConfigError, NotReplicatedError
from alerts.events import parse_lines, read_lines
from alerts.rules.checks import PriceStats, warnings
from alerts.rules.load import TEST_SUFFIXES, in_file_order, load_catalog, load_rules
from alerts.settings import Settings, load_settings, print_warning
from alerts.store.publish import Publisher, PublishReport
from alerts.store.server import redis_for
from workers.cli_ops import add_ops_commands
from workers.cli_silences import add_silence_commands
from workers.cli_sources import add_source_commands

#: Seconds between two events of the demo feed, so alerts appear one after another.
DEMO_PACE = 0.3


def _setup_logging(verbose: bool, settings: Settings | None = None) -> None:
    """Text lines, or JSON ones with ALERTS_LOG_FORMAT=json (``workers.logs``); httpx's request lines (full
    URLs: a feed's ${VAR} in a query string, a webhook's token) are kept out."""
    from workers.logs import setup

    setup(settings.log_format if settings is not None else "text", verbose)


def _require_rules_dir(settings: Settings, demo: bool = False) -> None:
    """A service without its rule files would run and never alert: stop at once instead."""
    if settings.rules_dir.exists():
        return
    where = f"{settings.rules_dir} (ALERTS_RULES_DIR, from {Path.cwd()})"
    if demo:
        raise ConfigError(f"the demo needs the example rules, and the rules directory {where} does not exist: run it "
                          "from the project folder, or set ALERTS_RULES_DIR to its rules/ folder")
    raise ConfigError(f"the rules directory {where} does not exist: create it, or set ALERTS_RULES_DIR to the "
                      "folder of your rule files (`alerts rules check DIR` checks one)")


def demo_settings(settings: Settings) -> Settings:
    """The demo's own key prefix and queue (``{prefix}-demo``): it never mixes with real data, and
    ``backtest``, ``rules explain`` and ``digest preview`` read it with ``--demo``."""
    return settings.model_copy(update={"key_prefix": f"{settings.key_prefix}-demo",
                                       "queue_name": f"{settings.queue_name}-demo"})


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from workers.service import run_roles, serve

    _require_rules_dir(settings, demo=args.demo)
    _setup_logging(args.verbose, settings)
    after = None
    if args.demo:
        settings = demo_settings(settings)
    with redis_for(settings) as client:
        if args.demo:
            for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
                client.delete(key)
            after = lambda: _publish_demo(client, settings)  # noqa: E731
        serve(client, settings, run_roles(settings), after_start=after)
    return 0


def _publish_demo(client: object, settings: Settings) -> None:
    import json

    log = logging.getLogger("alerts.demo")
    catalog = load_catalog(settings.rules_dir)
    pub = Publisher(client, catalog, settings.timezone, settings.stream_shards, settings.key_prefix)  # type: ignore[arg-type]
    lines = resources.files("alerts").joinpath("data/demo_feed.jsonl").read_text("utf-8").splitlines()
    time.sleep(1.0)
    log.info("demo: publishing %d sample events (early-2025 quotes and news)", len(lines))
    for n, line in enumerate(lines, 1):
        if line.strip():
            report = pub.publish_objects([(n, json.loads(line))])
            for ln, reason in report.errors:
                log.error("demo feed line %d: %s", ln, reason)
            time.sleep(DEMO_PACE)
    log.info("demo: feed published; Ctrl-C to stop")


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.service import WORKER_ROLES, serve

    _require_rules_dir(settings)
    _setup_logging(args.verbose, settings)
    roles = set(args.role or WORKER_ROLES)
    if args.no_dispatch:  # older spellings of --role
        roles -= {"dispatch", "deliver", "schedule"}
    if args.no_evaluate:
        roles.discard("evaluate")
    if not roles:
        print("alerts worker: no role left to run", file=sys.stderr)
        return 2
    if args.role and "poll" in args.role and not settings.sources_file.exists():
        raise ConfigError(f"--role poll: the sources file {settings.sources_file} (ALERTS_SOURCES_FILE, from "
                          f"{Path.cwd()}) does not exist")
    with redis_for(settings) as client:
        serve(client, settings, roles)
    return 0


def _open_input(path: str) -> tuple[str, BinaryIO] | None:
    """A JSON Lines input, as bytes (each line is decoded on its own, so one bad line is reported and the
    rest still read): a file, or standard input for '-'. None (and a message) when it cannot be opened."""
    name = "<stdin>" if path == "-" else path
    try:
        return name, (sys.stdin.buffer if path == "-" else open(path, "rb"))
    except OSError as exc:
        print(f"{name}: cannot open: {exc.strerror}", file=sys.stderr)
        return None


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.rules_dir.exists():
        print_warning(f"the rules directory {settings.rules_dir} (ALERTS_RULES_DIR) does not exist: only the "
                      "built-in products are known")
    catalog = load_catalog(settings.rules_dir)  # the products only: no rule is compiled to publish
    opened = _open_input(args.file)
    if opened is None:
        return 2
    name, fh = opened
    with fh, redis_for(settings) as client:
        pub = Publisher(client, catalog, settings.timezone, settings.stream_shards, settings.key_prefix,
                        max_future_days=settings.max_future_days, fx_max_age_days=settings.fx_max_age_days,
                        min_replicas=settings.redis_min_replicas, wait_timeout_ms=settings.redis_wait_timeout_ms)
        unreplicated = None
        try:
            report = pub.publish_file(fh)
        except NotReplicatedError as exc:
            report, unreplicated = cast(PublishReport, exc.report), exc
    for line, reason in report.errors:
        print(f"{name}:{line}: {reason}", file=sys.stderr)
    print(f"published {report.published} events" + (f", {len(report.errors)} invalid lines" if report.errors else ""))
    if unreplicated is not None:
        print(f"alerts: {unreplicated}", file=sys.stderr)
        return 3
    return 0 if report.ok else 1


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """``alerts import FILE.csv``: price history from a CSV file (``alerts.ingest.csv_import``)."""
    import os

    from alerts.ingest.csv_import import CsvError, Progress, import_file, parse_map

    name = args.file
    try:
        mapping = parse_map(args.map)
    except CsvError as exc:
        print(exc.reason, file=sys.stderr)
        return 2
    catalog = load_catalog(settings.rules_dir)
    try:
        fh = open(name, encoding="utf-8-sig", newline="")
        size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        print(f"{name}: cannot open: {exc.strerror}", file=sys.stderr)
        return 2
    with fh, redis_for(settings) as client:
        pub = Publisher(client, catalog, settings.timezone, settings.stream_shards, settings.key_prefix,
                        max_future_days=settings.max_future_days, fx_max_age_days=settings.fx_max_age_days)
        try:
            report = import_file(fh, client, catalog, settings.timezone, settings.stream_shards, pub.keys,
                                 rates=pub.rates(), mapping=mapping, source=args.source,
                                 max_future_days=settings.max_future_days, fx_max_age_days=settings.fx_max_age_days,
                                 live=args.live, progress=Progress(size))
        except CsvError as exc:
            print(f"{name}:{exc.line}: {exc.reason}", file=sys.stderr)
            return 2
        except UnicodeDecodeError as exc:
            print(f"{name}: not UTF-8 text: {exc.reason} at byte {exc.start} of a block", file=sys.stderr)
            return 2
    for line, reason in report.errors:
        print(f"{name}:{line}: {reason}", file=sys.stderr)
    if report.late:
        print(f"{name}:{report.out_of_order}: this quote is older than one before it (same product and source): "
              f"{report.late:,} quotes were sent after newer ones of theirs and are stored as late quotes; sort the "
              "file by date (oldest first) to import them in order", file=sys.stderr)
    rate = report.rows / report.seconds if report.seconds > 0 else 0.0
    what = "quotes published live" if args.live else "quotes imported as history"
    print(f"{report.rows:,} rows: {report.imported:,} {what}, {report.already:,} already stored, "
          f"{len(report.errors):,} bad rows ({report.seconds:.2f} s, {rate:,.0f} rows/s)")
    return 0 if report.ok else 1


def cmd_ingest_article(args: argparse.Namespace, settings: Settings) -> int:
    """An article (file or URL) -> its news event and the quotes it states; --dry-run publishes nothing."""
    from urllib.parse import urlsplit

    from alerts.ingest.articles import events_for, iter_events
    from alerts.ingest.web import FetchError, fetch_text

    catalog = load_catalog(settings.rules_dir)
    url = args.file if args.file.startswith(("http://", "https://")) else None
    try:
        text = fetch_text(url) if url else Path(args.file).read_text("utf-8", errors="replace")
    except FetchError as exc:
        print(f"alerts: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{args.file}: cannot open: {exc.strerror}", file=sys.stderr)
        return 2
    source = args.source or (urlsplit(url).hostname or "article" if url else "article")
    news, quotes, skipped = events_for(text, catalog, args.date, settings.timezone, source=source, url=url)
    if "body" not in news:
        print(f"{args.file}: the article's text is longer than an event's body may be: published without it",
              file=sys.stderr)
    if args.format == "json":
        print(json.dumps({"quotes": [{"product": q.product, "price": q.event()["price"], "unit": q.unit,
                                      "as_of": q.as_of.isoformat(), "sentence": q.sentence} for q in quotes],
                          "skipped": [{"sentence": k.sentence, "why": k.why} for k in skipped]}, ensure_ascii=False))
    elif args.dry_run:
        for q in quotes:
            rng = f" (low {q.low:,g}, high {q.high:,g})" if q.low is not None and q.high is not None else ""
            print(f"quote: {q.product} {q.price:,g} {q.unit}{rng} as of {q.as_of}\n    {q.sentence}")
        for k in skipped:
            print(f"skipped: {k.why}\n    {k.sentence}")
    if args.dry_run:
        if args.format != "json":
            print(f"{len(quotes)} quotes, {len(skipped)} sentences skipped; nothing published (--dry-run)")
        return 0
    with redis_for(settings) as client:
        pub = Publisher(client, catalog, settings.timezone, settings.stream_shards, settings.key_prefix,
                        max_future_days=settings.max_future_days, fx_max_age_days=settings.fx_max_age_days)
        report = pub.publish(*iter_events(news, quotes))
    for n, reason in report.errors:
        print(f"{args.file}: {'article' if n == 1 else f'quote {n - 1}'}: {reason}", file=sys.stderr)
    out = sys.stderr if args.format == "json" else sys.stdout
    print(f"published {report.published} events (the article and {len(quotes)} quotes), {len(skipped)} sentences "
          "skipped" + (f", {len(report.errors)} refused" if report.errors else ""), file=out)
    return 0 if report.ok else 1


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
    text, ok = report([run_file(p, settings.timezone) for p in paths], settings.timezone)
    print(text)
    return 0 if ok else 1


def cmd_rules_explain(args: argparse.Namespace, settings: Settings) -> int:
    from workers.rule_explain import explain_rule

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


def cmd_failed(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.store import failures
    from alerts.store.keys import Keys
    from workers.deliver import DELIVER, ON_FAILURE, retry_policy
    from workers.dispatch import make_queue

    keys = Keys(settings.key_prefix)
    with redis_for(settings) as client:
        if args.action is None:
            rows = failures.listing(client, keys)
            for f in rows:
                a = f["alert"]
                when = datetime.fromtimestamp(f["at"]).strftime("%Y-%m-%d %H:%M:%S")
                kind = "refused" if f["permanent"] else "gave up"
                if f.get("retries"):
                    kind += f" (after {f['retries']} retries by hand)"
                print(f"{f['id']}  {when}  {f['target']}  {a.get('rule_id')}  {kind}: {f['reason']}")
            print(f"{len(rows)} failed deliveries", file=sys.stderr)
            return 0
        ids = [f["id"] for f in failures.listing(client, keys)] if args.all else args.ids
        if not ids:
            print("give failure ids (from `alerts failed`) or --all", file=sys.stderr)
            return 2
        missing = 0
        for fid in ids:
            taken = failures.take(client, keys, fid)
            if taken is None:
                print(f"{fid}: no such failed delivery", file=sys.stderr)
                missing += 1
                continue
            n = int(taken.get("retries", 0)) + 1  # the failure keeps its id; a new failure of it is recorded under it
            make_queue(client, settings, taken["target"]).enqueue(
                DELIVER, taken["alert"], taken["target"], job_id=f"{fid}-retry{n}",
                meta={"failure_id": fid, "retries": n}, retry=retry_policy(settings),
                on_failure=ON_FAILURE, result_ttl=settings.delivery_result_ttl_seconds,
                failure_ttl=int(settings.alert_retention_days * 86400))
            print(f"{fid}: queued again ({n}) for {taken['target']}")
    return 1 if missing else 0


def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.notify.digest import compose, send_digest
    from alerts.store.digests import DigestStore
    from alerts.store.keys import Keys

    if args.demo:
        settings = demo_settings(settings)
    rules = load_rules(settings.rules_dir, timezone=settings.timezone)
    if args.name not in rules.digests:
        print(f"no digest {args.name!r} in {settings.rules_dir}", file=sys.stderr)
        return 1
    with redis_for(settings) as client:
        store = DigestStore(client, Keys(settings.key_prefix))
        if args.action == "preview":
            msg, _count, _ = compose(store, settings, rules, rules.digests[args.name], time.time())
            body = msg.get_body(("plain",))
            print(f"Subject: {msg['Subject']}\nTo: {msg['To']}\n")
            print(body.get_content() if body is not None else "")
            return 0
        result = send_digest(store, settings, rules, args.name, None)
    print(f"{args.name}: {result}")
    return 1 if result.startswith("not sent") else 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date such as 2025-02-25") from None


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.evaluate.backtest import run_backtest, write_json, write_text
    from alerts.store.history import stored_events
    from alerts.store.keys import Keys

    if args.demo:
        settings = demo_settings(settings)
    rules = load_rules(Path(args.rules) if args.rules else settings.rules_dir, timezone=settings.timezone)
    for p in rules.problems:
        print(p, file=sys.stderr)
    if args.events:
        opened = _open_input(args.events)
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
    else:
        with redis_for(settings) as client:
            events = stored_events(client, Keys(settings.key_prefix), rules.catalog, settings.timezone)
    result = run_backtest(rules, events, args.start, args.end)
    if args.format == "json":
        write_json(result, sys.stdout)
    else:
        write_text(result, sys.stdout, settings.timezone)
    return 0


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
    run = sub.add_parser("run", help="the whole service in one foreground process")
    run.add_argument("--demo", action="store_true", help="also publish a built-in sample feed")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=cmd_run)
    w = sub.add_parser("worker", help="a worker process: every role, or those given with --role",
                       description="Run worker roles: evaluate (events -> alerts), dispatch (alerts -> delivery "
                       "jobs), deliver (run delivery jobs), schedule (periodic jobs: retries, stale feeds, "
                       "digests, trimming), poll (the feeds of ALERTS_SOURCES_FILE), http (the HTTP app: POST "
                       "/events, /metrics, the Slack endpoints), slack (Slack Socket Mode: buttons and /alerts "
                       "without a public URL; needs ALERTS_SLACK_APP_TOKEN). Default: all but http and slack.")
    w.add_argument("--role", action="append",
                   choices=("evaluate", "dispatch", "deliver", "schedule", "poll", "http", "slack"),
                   help="a role to run; repeat for several (default: all but http and slack)")
    w.add_argument("--no-dispatch", action="store_true", help=argparse.SUPPRESS)  # = --role evaluate
    w.add_argument("--no-evaluate", action="store_true", help=argparse.SUPPRESS)  # every role but evaluate
    w.add_argument("-v", "--verbose", action="store_true")
    w.set_defaults(func=cmd_worker)
    pub = sub.add_parser("publish", help="publish events from a JSON Lines file ('-' for stdin)",
                         formatter_class=argparse.RawDescriptionHelpFormatter, description="""\
Publish price, news and fx events, one JSON object per line, to the running service's
event streams (README: "alerts publish"). Every valid line is published; each invalid one
is printed on stderr as FILE:LINE: reason, in line order. Prints "published N events"
(and how many lines were invalid) on stdout.

Exit status: 0 every line published, 1 some lines invalid (the others published),
2 the file cannot be opened, a setting is wrong or Redis cannot be reached, 3 not replicated:
fewer replicas than ALERTS_REDIS_MIN_REPLICAS acknowledged the events in time (publish the
file again: an event evaluated before is not evaluated again).""")
    pub.add_argument("file", help="a JSON Lines file, or '-' for standard input")
    pub.set_defaults(func=cmd_publish)
    imp = sub.add_parser("import", help="import price history from a CSV file (no live alert unless --live)")
    imp.add_argument("file")
    imp.add_argument("--source", help="the source of rows without one (default: manual)")
    imp.add_argument("--map", metavar="COL=HEADER,...",
                     help="header names of the columns: product=,price=,unit=,as_of=,low=,high=,source=,id=")
    imp.add_argument("--live", action="store_true", help="publish the rows as live events: rules fire on them")
    imp.set_defaults(func=cmd_import)
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
    dg = sub.add_parser("digest", help="send a digest now, or preview it without sending or consuming anything",
                        formatter_class=argparse.RawDescriptionHelpFormatter, description="""\
preview: print the email the digest would send now (Subject, To, then the plain-text body:
the alerts queued since the last digest, grouped by product and rule, and the latest
prices with their change since the last digest), without sending it or taking anything
off its queue.
send: send it now through the ALERTS_SMTP_* relay, as its schedule would, and print the
outcome ("sent with N alerts", "nothing to send", "not sent: reason").

Exit status: 0 previewed or sent, 1 no such digest or not sent, 2 a setting is wrong or
Redis cannot be reached.""")
    dg.add_argument("action", choices=("send", "preview"), help="send it now, or preview it")
    dg.add_argument("name", help="the digest's name, as in the rule files' digests:")
    dg.add_argument("--demo", action="store_true", help="the digest `alerts run --demo` queued (its own key prefix)")
    dg.set_defaults(func=cmd_digest)
    fl = sub.add_parser("failed", help="deliveries that failed for good; `retry ID...` or `retry --all` queues them "
                        "for delivery again")
    fl.add_argument("action", nargs="?", choices=("retry",))
    fl.add_argument("ids", nargs="*")
    fl.add_argument("--all", action="store_true", help="with retry: every failed delivery")
    fl.set_defaults(func=cmd_failed)
    ing = sub.add_parser("ingest", help="read data in from outside")
    isub = ing.add_subparsers(dest="ingest_command", required=True)
    art = isub.add_parser("article", help="publish a market article (file or URL) and the price quotes it states")
    art.add_argument("file", help="a text or HTML file, or an http(s) URL")
    art.add_argument("--date", type=_date, help="the article's date: the year of its dates (default: its own)")
    art.add_argument("--dry-run", action="store_true", help="print the quotes and skipped sentences; publish nothing")
    art.add_argument("--format", choices=("text", "json"), default="text")
    art.add_argument("--source", help="the events' source (default: the URL's host, else 'article')")
    art.set_defaults(func=cmd_ingest_article)
    add_source_commands(sub)
    add_ops_commands(sub)
    add_silence_commands(sub)
    bt = sub.add_parser("backtest", help="replay history through the rules without sending anything")
    bt.add_argument("--rules", help="rules directory or file (default ALERTS_RULES_DIR)")
    bt.add_argument("--from", dest="start", type=_date, help="first day to report alerts for")
    bt.add_argument("--to", dest="end", type=_date, help="last day to replay")
    bt.add_argument("--events", help="a JSON Lines file ('-' for stdin) instead of the stored history")
    bt.add_argument("--format", choices=("text", "json"), default="text")
    bt.add_argument("--demo", action="store_true",
                    help="the history `alerts run --demo` stored (its own key prefix); ignored with --events")
    bt.set_defaults(func=cmd_backtest)
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


def _redis_where(settings: Settings) -> str:
    """Where the configured Redis is, for a message: host:port and the setting, never a password."""
    if settings.redis_sentinels:
        return f"the primary {settings.redis_master_name!r} of {','.join(settings.redis_sentinels)} " \
               "(ALERTS_REDIS_SENTINELS)"
    if settings.redis_url is None:
        return f"the private redis-server of {settings.data_dir} (ALERTS_DATA_DIR)"
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(settings.redis_url.get_secret_value())
        host = f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else parts.path
    except ValueError:
        host = "?"
    return f"{host} (ALERTS_REDIS_URL)"


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
        print(f"alerts: Redis unreachable at {_redis_where(settings)}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
