"""``alerts sources check [FILE]`` and ``alerts poll --once [NAME...]``: the feed sources from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from alerts.errors import ConfigError
from alerts.events import Event, NewsEvent, NoticeEvent, PriceEvent, local_date
from alerts.ingest.poll import PollResult
from alerts.ingest.sources import SourceSet, load_sources
from alerts.settings import Settings
from alerts.store.server import redis_for


def _load(path: str | None, settings: Settings) -> SourceSet:
    return load_sources(path or settings.sources_file, os.environ)


def cmd_sources_check(args: argparse.Namespace, settings: Settings) -> int:
    sources = _load(args.file, settings)
    for p in sources.problems:
        print(p, file=sys.stderr if p.severity == "error" else sys.stdout)
    errors = len(sources.errors)
    disabled = f", {len(sources.disabled)} disabled" if sources.disabled else ""
    print(f"{sources.path}: {len(sources.sources)} sources ok{disabled}"
          + (f", {errors} problem{'s' if errors != 1 else ''}" if errors else ""))
    return 1 if errors else 0


def _event_line(ev: Event, tz: str) -> str:
    if isinstance(ev, PriceEvent):
        band = f" (low {ev.low:,.10g}, high {ev.high:,.10g})" if ev.low is not None and ev.high is not None else ""
        return f"price {ev.product} {ev.price:,.10g} {ev.unit}{band} as of {ev.as_of_date}  [{ev.id}]"
    if isinstance(ev, NewsEvent):
        return f"news {local_date(ev.published_at, tz)} {ev.headline}  [{ev.id}]"
    if isinstance(ev, NoticeEvent):
        return (f"notice {ev.source} {ev.kind} {', '.join(ev.products)} effective {ev.effective_date} "
                f"(published {local_date(ev.published_at, tz)})  [{ev.id}]")
    return f"fx {ev.pair} {ev.rate:,.10g} as of {ev.as_of_date}  [{ev.id}]"


def _as_json(r: PollResult) -> dict[str, Any]:
    import msgspec

    return {"source": r.name, "not_modified": r.not_modified, "published": len(r.published),
            "already": r.already, "error": r.error, "seconds": round(r.seconds, 3),
            "events": [msgspec.to_builtins(ev) for ev in r.published],
            "rejected": [{"where": w, "reason": why} for w, why in r.rejected]}


def cmd_poll(args: argparse.Namespace, settings: Settings) -> int:
    from workers.roles.poller import make_publisher, poll_now

    if not args.once:
        print("alerts poll: give --once (poll now and print what was published); the service polls by itself "
              "(`alerts run`, or `alerts worker --role poll`)", file=sys.stderr)
        return 2
    sources = _load(None, settings)
    if not sources.sources and sources.problems and sources.problems[0].line == 0:
        raise ConfigError(str(sources.problems[0]))
    wanted = list(args.names) or [s.name for s in sources.sources]
    chosen = []
    for name in wanted:
        src = sources.get(name)
        if src is None:
            bad = [p for p in sources.problems if p.rule_id == name]
            why = ("it has problems: " + "; ".join(str(p) for p in bad)) if bad else (
                "it is disabled (enabled: false)" if name in sources.disabled else
                f"the sources are: {', '.join(s.name for s in sources.sources) or 'none'}")
            raise ConfigError(f"no source {name!r} to poll in {sources.path}: {why}")
        chosen.append(src)
    failed = False
    results = []
    with redis_for(settings) as client:
        publisher = make_publisher(client, settings)
        for src in chosen:
            r = poll_now(client, settings, src, publisher)
            results.append(r)
            failed = failed or r.error is not None or bool(r.rejected)
            if args.format == "json":
                continue
            for ev in r.published:
                print(f"{src.name}: {_event_line(ev, settings.timezone)}")
            for where, why in r.rejected:
                print(f"{src.name}: {where}: {why}", file=sys.stderr)
            if r.error is not None:
                print(f"{src.name}: failed: {r.error}", file=sys.stderr)
            elif r.not_modified:
                print(f"{src.name}: not modified since the last poll (HTTP 304): nothing published")
            else:
                print(f"{src.name}: published {len(r.published)} events, {r.already} already published"
                      + (f", {len(r.rejected)} items refused" if r.rejected else ""))
    if args.format == "json":
        print(json.dumps([_as_json(r) for r in results], ensure_ascii=False, indent=2))
    return 1 if failed else 0


def register(sub: Any) -> None:
    src = sub.add_parser("sources", help="the feed sources (ALERTS_SOURCES_FILE)")
    ssub = src.add_subparsers(dest="sources_command", required=True)
    chk = ssub.add_parser("check", help="report every problem of the sources file as FILE:LINE: NAME: message",
                          description="Check a sources file (default ALERTS_SOURCES_FILE, ./sources.yaml): "
                          "every problem as FILE:LINE: NAME: message, ${VAR}s not set in the environment "
                          "included. Exit status 1 when there is one.")
    chk.add_argument("file", nargs="?", help="the sources file (default: ALERTS_SOURCES_FILE)")
    chk.set_defaults(func=cmd_sources_check)
    pl = sub.add_parser("poll", help="poll sources now and print what was published",
                        description="Poll the named sources (default: every one) now, as the service would: "
                        "conditional requests, only new events published. Prints each event published and "
                        "each item refused (FILE:LINE style, by item or CSV line). Exit status 1 when a poll "
                        "failed or an item was refused.")
    pl.add_argument("names", nargs="*", metavar="NAME", help="a source's name (default: every source)")
    pl.add_argument("--once", action="store_true", help="poll once now (required)")
    pl.add_argument("--format", choices=("text", "json"), default="text")
    pl.set_defaults(func=cmd_poll)
