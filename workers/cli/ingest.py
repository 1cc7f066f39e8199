"""``alerts publish``, ``alerts import`` and ``alerts ingest article``: data in from files, standard input and URLs."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, cast

from alerts.errors import NotReplicatedError, RedisOutOfMemory
from alerts.events.batch import MAX_PROBLEMS, Problems
from alerts.events.json_in import json_lines, read_lines
from alerts.rules.load import load_catalog
from alerts.settings import Settings, print_warning
from alerts.store.publish import Publisher, PublishReport
from alerts.store.quotes import QuoteGuard
from alerts.store.server import redis_for
from workers.cli.common import open_input, parse_date


def cmd_publish(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.rules_dir.exists():
        print_warning(f"the rules directory {settings.rules_dir} (ALERTS_RULES_DIR) does not exist: only the "
                      "built-in products are known")
    catalog = load_catalog(settings.rules_dir)  # the products only: no rule is compiled to publish
    opened = open_input(args.file)
    if opened is None:
        return 2
    name, fh = opened
    with fh, redis_for(settings) as client:
        pub = Publisher.from_settings(client, settings, catalog, origin=name)
        refused: NotReplicatedError | RedisOutOfMemory | None = None
        problems = Problems()  # the first MAX_PROBLEMS are printed, the others counted
        report = PublishReport(errors=problems)
        try:  # publish_file's path, with the bounded problems
            pub.publish_objects(json_lines(read_lines(fh), problems), report)
        except (NotReplicatedError, RedisOutOfMemory) as exc:
            report, refused = cast(PublishReport, exc.report), exc
    for line, reason in report.errors:
        print(f"{name}:{line}: {reason}", file=sys.stderr)
    if problems.more:
        print(f"{name}: {problems.more:,} more invalid lines not shown (the first {MAX_PROBLEMS} are)", file=sys.stderr)
    invalid = len(report.errors) - report.held
    print(f"published {report.published} events" + (f", {invalid} invalid lines" if invalid else "")
          + (f", {report.held} quotes held by the sanity check (`alerts quotes held`)" if report.held else ""))
    if refused is not None:  # one line: the cause, and (out of memory) exactly which lines were stored
        print(f"alerts: {refused}", file=sys.stderr)
        return 4 if isinstance(refused, RedisOutOfMemory) else 3
    return 0 if report.ok else 1


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    """``alerts import FILE.csv``: price history from a CSV file (``alerts.ingest.csv_import``)."""

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
        pub = Publisher.from_settings(client, settings, catalog)
        try:
            report = import_file(fh, client, catalog, settings.timezone, settings.stream_shards, pub.keys,
                                 rates=pub.rates(), mapping=mapping, source=args.source,
                                 max_future_days=settings.max_future_days, fx_max_age_days=settings.fx_max_age_days,
                                 live=args.live, progress=Progress(size),
                                 guard=QuoteGuard.from_settings(client, settings, catalog, "import", name))
        except CsvError as exc:
            print(f"{name}:{exc.line}: {exc.reason}", file=sys.stderr)
            return 2
        except UnicodeDecodeError as exc:
            print(f"{name}: not UTF-8 text: {exc.reason} at byte {exc.start} of a block", file=sys.stderr)
            return 2
    for line, reason in report.errors:
        print(f"{name}:{line}: {reason}", file=sys.stderr)
    for warning in report.warnings:
        print(f"{name}: warning: {warning}", file=sys.stderr)
    if report.late:
        print(f"{name}:{report.out_of_order}: this quote is older than one before it (same product and source): "
              f"{report.late:,} quotes were sent after newer ones of theirs and are stored as late quotes; sort the "
              "file by date (oldest first) to import them in order", file=sys.stderr)
    rate = report.rows / report.seconds if report.seconds > 0 else 0.0
    what = "quotes published live" if args.live else "quotes imported as history"
    held = f", {report.held:,} held by the sanity check (`alerts quotes held`)" if report.held else ""
    print(f"{report.rows:,} rows: {report.imported:,} {what}, {report.already:,} already stored, "
          f"{len(report.errors) - report.held:,} bad rows{held} ({report.seconds:.2f} s, {rate:,.0f} rows/s)")
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
        pub = Publisher.from_settings(client, settings, catalog, origin=args.file)
        try:
            report = pub.publish(*iter_events(news, quotes))
        except (NotReplicatedError, RedisOutOfMemory) as exc:  # one line
            oom = isinstance(exc, RedisOutOfMemory)
            print(f"alerts: {exc}" + (" (line 1: the article, line N+1: its quote N)" if oom else ""),
                  file=sys.stderr)
            return 4 if oom else 3
    for n, reason in report.errors:
        print(f"{args.file}: {'article' if n == 1 else f'quote {n - 1}'}: {reason}", file=sys.stderr)
    out = sys.stderr if args.format == "json" else sys.stdout
    print(f"published {report.published} events (the article and {len(quotes)} quotes), {len(skipped)} sentences "
          "skipped" + (f", {len(report.errors)} refused" if report.errors else ""), file=out)
    return 0 if report.ok else 1


def register(sub: Any) -> None:
    """``publish``, ``import`` and ``ingest article``."""
    pub = sub.add_parser("publish", help="publish events from a JSON Lines file ('-' for stdin)",
                         formatter_class=argparse.RawDescriptionHelpFormatter, description="""\
Publish price, news and fx events, one JSON object per line, to the running service's
event streams (README: "alerts publish"). Every valid line is published; the first 20
invalid ones are printed on stderr as FILE:LINE: reason, in line order, then how many more
there were. Prints "published N events" (and how many lines were invalid) on stdout.

A quote that fails the quote sanity check (README "Quote sanity": a per-kg product written
per tonne, a 万元/吨 slip, a jump far beyond its usual moves) is held, not published: its
line says "held (ID): what it looks like"; `alerts quotes release ID` publishes it. A line
with "override": true is not checked.

Exit status: 0 every line published, 1 some lines invalid or held (the others published),
2 the file cannot be opened, a setting is wrong or Redis cannot be reached, 3 not replicated:
fewer replicas than ALERTS_REDIS_MIN_REPLICAS acknowledged the events in time (publish the
file again: an event evaluated before is not evaluated again), 4 Redis is out of memory
(maxmemory reached, writes refused): one line names used/maxmemory and exactly which lines
were stored; publishing stopped there (publish the others again once Redis has room).""")
    pub.add_argument("file", help="a JSON Lines file, or '-' for standard input")
    pub.set_defaults(func=cmd_publish)
    imp = sub.add_parser("import", help="import price history from a CSV file (no live alert unless --live)")
    imp.add_argument("file")
    imp.add_argument("--source", help="the source of rows without one (default: manual)")
    imp.add_argument("--map", metavar="COL=HEADER,...",
                     help="header names of the columns: product=,price=,unit=,as_of=,low=,high=,source=,id=,"
                          "override= (a true override cell skips the quote sanity check for its row)")
    imp.add_argument("--live", action="store_true", help="publish the rows as live events: rules fire on them")
    imp.set_defaults(func=cmd_import)
    ing = sub.add_parser("ingest", help="read data in from outside")
    isub = ing.add_subparsers(dest="ingest_command", required=True)
    art = isub.add_parser("article", help="publish a market article (file or URL) and the price quotes it states",
                          description="Publish a market article (a file or an http(s) URL) as a news event, and the "
                          "price quotes its sentences state as price events. Exit status: 0 published, 1 some "
                          "events refused (named on stderr), 2 the file or URL cannot be read, 3 not replicated "
                          "(ALERTS_REDIS_MIN_REPLICAS), 4 Redis is out of memory (one line names what was stored).")
    art.add_argument("file", help="a text or HTML file, or an http(s) URL")
    art.add_argument("--date", type=parse_date, help="the article's date: the year of its dates (default: its own)")
    art.add_argument("--dry-run", action="store_true", help="print the quotes and skipped sentences; publish nothing")
    art.add_argument("--format", choices=("text", "json"), default="text")
    art.add_argument("--source", help="the events' source (default: the URL's host, else 'article')")
    art.set_defaults(func=cmd_ingest_article)
