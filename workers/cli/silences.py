"""``alerts silence add|list|expire``: silences from the command line (``alerts.store.silences`` does the work)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from typing import Any

from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.server import redis_for
from alerts.store.silences import SilenceError, SilenceStore, create, describe, to_json


def default_author() -> str:
    """The OS user ($USER, else the login name)."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except OSError:
        return ""


def _refuse(exc: SilenceError) -> int:
    print(f"alerts: {exc}", file=sys.stderr)
    return 2


def cmd_silence_add(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules(settings.rules_dir, timezone=settings.timezone)
    with redis_for(settings) as client:
        try:
            s = create(client, Keys(settings.key_prefix), rules, author=args.author or default_author(),
                       comment=args.comment or "", rule=args.rule or (), product=args.product or (),
                       label=args.label or (), target=args.target or (), severity=args.severity or (),
                       for_=args.for_, until=args.until, until_resolved=args.until_resolved,
                       notify_resolved=args.notify_resolved)
        except SilenceError as exc:
            return _refuse(exc)
    print(f"silence {describe(s, settings.timezone)}")
    return 0


def cmd_silence_list(args: argparse.Namespace, settings: Settings) -> int:
    now = time.time()
    with redis_for(settings) as client:
        store = SilenceStore(client, Keys(settings.key_prefix))
        found = store.all() if args.all else sorted(store.active(now), key=lambda s: -s.created)
    if args.format == "json":
        print(json.dumps([to_json(s, now) for s in found], ensure_ascii=False, indent=2))
        return 0
    if not found:
        print("no silences" if args.all else "no active silences")
    for s in found:
        print(describe(s, settings.timezone, now))
    return 0


def cmd_silence_expire(args: argparse.Namespace, settings: Settings) -> int:
    author = args.author or default_author()
    with redis_for(settings) as client:
        try:
            s = SilenceStore(client, Keys(settings.key_prefix)).expire(args.id, author, "expired by hand")
        except SilenceError as exc:
            return _refuse(exc)
    print(f"silence {s.id} expired by {author}; alerts it matched are delivered again from now on (nothing "
          "silenced is sent afterwards)")
    return 0


def register(sub: Any) -> None:
    si = sub.add_parser("silence", help="silence alerts for a while: add, list, expire",
                        formatter_class=argparse.RawDescriptionHelpFormatter, description="""\
Silences stop deliveries of matching alerts for a while. The alerts are still evaluated and
kept (alerts history shows their deliveries as silenced, with the silence id); silenced
deliveries are dropped, never sent later. Permanent muting stays in the rule files
(enabled: false).

Exit status: 0 done, 2 refused (one line saying why), a setting is wrong or Redis cannot be
reached.""")
    ssub = si.add_subparsers(dest="silence_command", required=True)
    add = ssub.add_parser("add", help="silence the alerts that match, for a time or until the rule re-arms",
                          formatter_class=argparse.RawDescriptionHelpFormatter, description="""\
Matchers combine: every kind given must match (--rule X --product Y: rule X on product Y);
a kind given several times matches any of its values (--rule X --rule Z: rule X or Z).
At least one matcher and a comment are required, and one of --for, --until,
--until-resolved.

--until-resolved (with --rule naming price or spread rules) lasts until the rule re-arms:
a resolved alert of the rule ends it (that notice is silenced unless --notify-resolved),
so does the rule firing again on a later quote (that alert is delivered), and so does the
scheduler's check, every 30 seconds, finding the rule's condition held on no product the
silence covers.

Exit status: 0 added, 2 refused (one line saying why).""")
    add.add_argument("--rule", action="append", metavar="ID", help="a rule id from the rule files (repeat: any)")
    add.add_argument("--product", action="append", metavar="P", help="a product, any name or alias (repeat: any)")
    add.add_argument("--label", action="append", metavar="K=V", help="a rule label (repeat: any)")
    add.add_argument("--target", action="append", metavar="T", help="a target such as slack:#desk (repeat: any)")
    add.add_argument("--severity", action="append", metavar="S", help="a severity such as info (repeat: any)")
    add.add_argument("--for", dest="for_", metavar="DURATION", help="how long: 2h, 1d, 1h30m")
    add.add_argument("--until", metavar="TIME", help="until a date or time (ALERTS_TIMEZONE): 2026-03-11T09:00")
    add.add_argument("--until-resolved", action="store_true", help="until the rule re-arms (price, spread rules)")
    add.add_argument("--comment", help="why (required): shown to the desk and kept in the audit trail")
    add.add_argument("--author", help="who (default: the OS user, $USER)")
    add.add_argument("--notify-resolved", action="store_true", help="still deliver resolved notices")
    add.set_defaults(func=cmd_silence_add)
    ls = ssub.add_parser("list", help="the active silences (--all: ended ones too, with who ended them and why)",
                         description="The active silences, newest first; --all adds the ended ones (kept "
                         "ALERTS_ALERT_RETENTION_DAYS) with when, by whom and why they ended. Exit status: 0.")
    ls.add_argument("--all", action="store_true", help="ended silences too")
    ls.add_argument("--format", choices=("text", "json"), default="text", help="text, or json for programs")
    ls.set_defaults(func=cmd_silence_list)
    ex = ssub.add_parser("expire", help="end a silence now", description="End an active silence now, recording "
                         "who ended it. Nothing it silenced is sent afterwards. Exit status: 0 expired, 2 no such "
                         "active silence.")
    ex.add_argument("id", help="the silence's id (alerts silence list)")
    ex.add_argument("--author", help="who (default: the OS user, $USER)")
    ex.set_defaults(func=cmd_silence_expire)


__all__ = ["default_author", "register"]
