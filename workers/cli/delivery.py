"""``alerts failed [retry]`` and ``alerts digest send|preview``: deliveries that failed for good, and digests
by hand."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from alerts.durations import format_time
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.server import redis_for
from workers.cli.common import demo_settings


def cmd_failed(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.store import failures
    from alerts.store.keys import Keys
    from workers.deliver import DELIVER, job_options
    from workers.roles.dispatch import make_queue

    keys = Keys(settings.key_prefix)
    with redis_for(settings) as client:
        if args.action is None:
            rows = failures.listing(client, keys)
            for f in rows:
                a = f["alert"]
                when = format_time(f["at"], settings.timezone)  # README "Times"
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
                **job_options(settings, description=f"deliver {taken['alert'].get('rule_id')} to {taken['target']} "
                              "(alerts failed retry)", meta={"failure_id": fid, "retries": n}))
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


def register(sub: Any) -> None:
    """``failed`` and ``digest``."""
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
