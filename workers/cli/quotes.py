"""``alerts quotes latest``: each product's latest quote per vendor and how fresh it is (``alerts.store.freshness``);
``alerts quotes held``, ``release`` and ``drop``: the quarantine of the quote sanity check (``alerts.store.quotes``)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import Any

from alerts.durations import format_duration, format_time
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.quotes import held_quotes, resolve
from alerts.store.server import redis_for
from alerts.units import format_price


def cmd_latest(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.rules.load import load_rules
    from alerts.store.freshness import vendor_quotes
    from alerts.store.state import load_states
    from workers.cli.status import STALE_DEFAULT_BUSINESS_DAYS

    rules = load_rules(settings.rules_dir, timezone=settings.timezone)
    keys = Keys(settings.key_prefix)
    wanted = sorted(rules.catalog.products)
    if args.product:
        product = rules.catalog.find(args.product)
        if product is None:
            print(f"unknown product {args.product!r}", file=sys.stderr)
            return 2
        wanted = [product.key]
    with redis_for(settings) as client:
        quotes = vendor_quotes(load_states(client, keys, wanted), rules, time.time(), STALE_DEFAULT_BUSINESS_DAYS)
    if args.format == "json":
        print(json.dumps([q.to_json() for q in quotes], ensure_ascii=False))
        return 0
    if not quotes:
        print("no quote stored yet")
        return 0
    for q in quotes:
        age = format_duration(q.age_seconds)
        print(f"{q.product}  {q.source}  {format_price(q.price)} {q.unit}  {q.as_of}  {age} old"
              + ("  STALE" if q.stale else ""))
    return 0


def cmd_held(args: argparse.Namespace, settings: Settings) -> int:
    with redis_for(settings) as client:
        held = held_quotes(client, Keys(settings.key_prefix))
    if args.format == "json":
        print(json.dumps([h.as_dict() for h in held], ensure_ascii=False))
        return 0
    if not held:
        print("no quote is held")
        return 0
    for h in held:
        e = h.event
        print(f"{h.id}  {e.product} {format_price(e.price)} {e.unit} on {e.as_of_date} ({e.source}); held "
              f"{format_time(h.held_at, settings.timezone)} from {h.via} {h.where}\n    {h.reason}")
    print(f"{len(held)} quotes held: `alerts quotes release ID` publishes one as it is, `alerts quotes drop ID` "
          "discards it")
    return 0


def _resolve(args: argparse.Namespace, settings: Settings, action: str) -> int:
    with redis_for(settings) as client:
        keys = Keys(settings.key_prefix)
        ids = [h.id for h in held_quotes(client, keys)] if args.all else list(args.ids)
        if not ids:
            print("no quote is held" if args.all else f"name the quotes to {action} (IDs, or --all)",
                  file=sys.stderr)
            return 0 if args.all else 2
        try:
            who = getpass.getuser()
        except (KeyError, OSError):
            who = ""
        results = resolve(client, keys, ids, action, settings.stream_shards, by=who)
    missing = 0
    for hid, what in results:
        ok = what.startswith(("released", "dropped"))
        missing += not ok
        print(f"{hid}: {what}", file=sys.stdout if ok else sys.stderr)
    return 1 if missing else 0


def register(sub: Any) -> None:
    """``quotes held``, ``quotes release`` and ``quotes drop``."""
    q = sub.add_parser("quotes", help="latest quotes per vendor; the quotes the sanity check held: list, release, "
                       "drop",
                       description="`alerts quotes latest` shows each product's latest quote per vendor and whether it "
                       "is fresh. Quotes that failed the quote sanity check (README \"Quote sanity\") are held "
                       "in a quarantine instead of being used: list them, release one (publish it unchecked, as "
                       "it was sent: a real break) or drop it (a wrong number). Exit status: 0 done, 1 an ID is "
                       "not held, 2 no ID given or Redis cannot be reached.")
    qsub = q.add_subparsers(dest="quotes_command", required=True)
    latest = qsub.add_parser("latest", help="each product's latest quote per vendor, its age, and whether it is "
                             "stale (its stale-feed rule, else 3 business days)")
    latest.add_argument("--product", help="one product (any name or alias)")
    latest.add_argument("--format", choices=("text", "json"), default="text")
    latest.set_defaults(func=cmd_latest)
    held = qsub.add_parser("held", help="list the held quotes, oldest first, with what each looks like")
    held.add_argument("--format", choices=("text", "json"), default="text")
    held.set_defaults(func=cmd_held)
    for action, text in (("release", "publish held quotes as they were sent, without the check"),
                         ("drop", "discard held quotes")):
        p = qsub.add_parser(action, help=text)
        p.add_argument("ids", nargs="*", metavar="ID", help="held ids (h-...), as `alerts quotes held` lists them")
        p.add_argument("--all", action="store_true", help="every held quote")
        p.set_defaults(func=lambda a, s, act=action: _resolve(a, s, act))
