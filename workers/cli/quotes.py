"""``alerts quotes held``, ``release`` and ``drop``: the quarantine of the quote sanity check
(``alerts.store.quotes``)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from alerts.durations import format_time
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.quotes import held_quotes, resolve
from alerts.store.server import redis_for
from alerts.units import format_price


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
    q = sub.add_parser("quotes", help="the quotes the sanity check held: list, release, drop",
                       description="Quotes that failed the quote sanity check (README \"Quote sanity\") are held "
                       "in a quarantine instead of being used: list them, release one (publish it unchecked, as "
                       "it was sent: a real break) or drop it (a wrong number). Exit status: 0 done, 1 an ID is "
                       "not held, 2 no ID given or Redis cannot be reached.")
    qsub = q.add_subparsers(dest="quotes_command", required=True)
    held = qsub.add_parser("held", help="list the held quotes, oldest first, with what each looks like")
    held.add_argument("--format", choices=("text", "json"), default="text")
    held.set_defaults(func=cmd_held)
    for action, text in (("release", "publish held quotes as they were sent, without the check"),
                         ("drop", "discard held quotes")):
        p = qsub.add_parser(action, help=text)
        p.add_argument("ids", nargs="*", metavar="ID", help="held ids (h-...), as `alerts quotes held` lists them")
        p.add_argument("--all", action="store_true", help="every held quote")
        p.set_defaults(func=lambda a, s, act=action: _resolve(a, s, act))
