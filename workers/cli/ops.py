"""``alerts status`` and ``alerts history``: what an operator looks at."""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime
from datetime import time as dtime
from typing import Any, cast
from zoneinfo import ZoneInfo

import redis

from alerts.catalog import Catalog
from alerts.durations import format_time
from alerts.evaluate.corrections import Correction
from alerts.model import Alert
from alerts.rules.load import load_catalog
from alerts.settings import Settings
from alerts.store.corrections import arrived_at, stored_corrections
from alerts.store.delivery import DeliveryStore
from alerts.store.keys import Keys
from alerts.store.server import redis_for
from alerts.store.slack import ActionLog
from alerts.store.streams import read_alerts

#: Alerts ``alerts history`` shows when not told otherwise.
DEFAULT_LIMIT = 50
#: Alert stream entries read per round trip while looking for matches, newest first.
SCAN_CHUNK = 1000


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from workers.cli.status import collect, render

    try:
        with redis_for(settings) as client:
            st = collect(client, settings)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        from workers.cli.status import Status

        st = Status()
        st.add("fail", "redis", f"unreachable: {exc}")
        st.data["redis"] = {"reachable": False}
    if args.format == "json":
        print(json.dumps(st.to_json(), ensure_ascii=False, indent=2, default=str))
    else:
        print(render(st))
    return st.exit_status


def _since(text: str, tz: str) -> float:
    try:
        day = date.fromisoformat(text)
        return datetime.combine(day, dtime(0), ZoneInfo(tz)).timestamp()
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since {text!r}: not a date (2025-03-11) or a time "
                                         "(2025-03-11T09:00)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(tz))).timestamp()


def find_alerts(client: redis.Redis, keys: Keys, catalog: Catalog, *, rule: str | None = None,
                product: str | None = None, since: float | None = None,
                limit: int = DEFAULT_LIMIT) -> list[tuple[float, Alert]]:
    """The alerts on the alert stream (kept ``ALERTS_ALERT_RETENTION_DAYS``), newest first, as (time written,
    alert): by rule id, by product (any catalog name or alias), written at or after ``since``."""
    wanted_product = None
    if product is not None:
        p = catalog.find(product)
        wanted_product = p.name if p is not None else product
    out: list[tuple[float, Alert]] = []
    end: bytes | str = "+"
    while len(out) < limit:
        chunk = cast(list[tuple[bytes, dict[bytes, bytes]]],
                     client.xrevrange(keys.alerts, max=end, min="-", count=SCAN_CHUNK))
        if not chunk:
            break
        for entry_id, fields in chunk:
            written = int(entry_id.split(b"-", 1)[0]) / 1000
            if since is not None and written < since:
                return out
            try:
                alerts = read_alerts(fields)
            except ValueError:
                continue  # set aside by the dispatcher, with the reason
            for a in reversed(alerts):
                if rule is not None and a.rule_id != rule:
                    continue
                if wanted_product is not None and a.product != wanted_product:
                    continue
                out.append((written, a))
            if len(out) >= limit:
                del out[limit:]
                break
        end = b"(" + chunk[-1][0]
    return out


def _when(ts: float, tz: str) -> str:
    return format_time(ts, tz)  # README "Times": ALERTS_TIMEZONE, with its UTC offset


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    since = _since(args.since, settings.timezone) if args.since else None
    keys = Keys(settings.key_prefix)
    with redis_for(settings) as client:
        found = find_alerts(client, keys, load_catalog(settings.rules_dir), rule=args.rule, product=args.product,
                            since=since, limit=args.limit)
        outcomes = DeliveryStore(client, keys).outcomes([a.id for _, a in found])
        actions = ActionLog(client, keys).of([a.id for _, a in found])
        corrections = stored_corrections(client, keys, since)
    rows: list[dict[str, Any]] = []
    for written, a in found:
        got = outcomes.get(a.id, {})
        deliveries = []
        for target in a.targets:
            o = got.get(target)
            deliveries.append({"target": target, "status": o["status"] if o else "queued",
                               "at": o.get("at") if o else None, "reason": o.get("reason") if o else None})
        row: dict[str, Any] = {"type": "alert", "alert_id": a.id, "rule_id": a.rule_id, "status": a.status,
                               "severity": a.severity, "product": a.product, "written_at": written, "text": a.text,
                               "deliveries": deliveries, "actions": actions.get(a.id, [])}
        if a.corrects:
            row["corrects"] = a.corrects
        rows.append(row)
    rows = _with_corrections(rows, corrections, args, load_catalog(settings.rules_dir))
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no alerts" + (" match" if args.rule or args.product or args.since else " yet"))
        return 0
    tz = settings.timezone
    for row in rows:
        if row["type"] == "correction":
            first = f", first published {_when(row['first_arrived'], tz)}" if row["first_arrived"] else ""
            late = "; a late correction (of a day before the newest quote): it fires nothing" if row["late"] else ""
            print(f"{_when(row['written_at'], tz)}  correction  {row['text']}{first}{late}")
            if row["followups"]:
                print(f"    follow-ups: {', '.join(row['followups'])}")
            continue
        head = f"{_when(row['written_at'], tz)}  {row['rule_id']}"
        if row.get("corrects"):
            head += f" (follow-up of {row['corrects']})"
        if row["status"] != "firing":
            head += f" ({row['status']})"
        print(f"{head}  {row['text']}")
        for d in row["deliveries"]:
            at = f" {_when(d['at'], tz)}" if d["at"] else ""
            why = f": {d['reason']}" if d["reason"] else ""
            if d["status"] == "silenced":  # dropped, not sent: the reason names the silence
                print(f"    {d['target']:<28} silenced ({d['reason']}){at}")
                continue
            print(f"    {d['target']:<28} {d['status']}{at}{why}")
        for act in row["actions"]:  # from Slack: acknowledged, snoozed, silenced
            detail = f" ({act['detail']})" if act.get("detail") else ""
            print(f"    {act['action']} by {act['by']} at {_when(float(act['at']), tz)}{detail}")
    return 0


def _with_corrections(rows: list[dict[str, Any]], corrections: list[tuple[float, Correction]],
                      args: argparse.Namespace, catalog: Catalog) -> list[dict[str, Any]]:
    """The alert rows and the corrections (``alerts.store.corrections``) that match the same filters, newest first,
    at most ``--limit`` in all. With ``--rule``, the corrections whose follow-ups are among the rule's alerts."""
    wanted = None
    if args.product:
        p = catalog.find(args.product)
        wanted = p.name if p is not None else args.product
    shown = {row["alert_id"] for row in rows}
    extra = []
    for arrived, c in corrections:
        if (wanted is not None and c.product != wanted) or (args.rule and not shown.intersection(c.followups)):
            continue
        extra.append({"type": "correction", "written_at": arrived, "product": c.product, "source": c.source,
                      "day": c.day, "unit": c.unit, "old_price": c.old_price, "new_price": c.new_price,
                      "old_id": c.old_id, "new_id": c.new_id, "first_arrived": arrived_at(c.old_seq, 0.0) or None,
                      "late": c.late, "followups": list(c.followups), "text": c.text()})
    if not extra:
        return rows
    return sorted([*rows, *extra], key=lambda r: -float(r["written_at"]))[:args.limit]


def register(sub: Any) -> None:
    st = sub.add_parser("status", help="is everything healthy? Redis, streams, processes, queues, sources, quotes",
                        description="Read the deployment's health from Redis, in two sections. Service health: "
                        "Redis itself (version, memory, persistence), each stream's backlog, the live and dead "
                        "service processes with what they own, rq queues, digests, feed sources' errors, rules "
                        "paused by the breaker and rule file errors. Data freshness: the latest quote per product, "
                        "stale ones marked (by the product's stale-feed rule, else after 3 business days without a "
                        "quote: weekends and the rule files' holidays not counted). Exit status: 0 healthy and "
                        "fresh; 1 the service is unhealthy (whatever the data: use it as a health check); 4 the "
                        "service is healthy but some data is stale. The JSON output carries both verdicts "
                        "(healthy, fresh) and exit_status.")
    st.add_argument("--format", choices=("text", "json"), default="text")
    st.set_defaults(func=cmd_status)
    hi = sub.add_parser("history", help="the alerts that fired, newest first, and where each delivery stands",
                        description="The alerts on the alert stream (kept ALERTS_ALERT_RETENTION_DAYS), newest "
                        "first, and for each target whether it was delivered and when, held (quiet hours, pacing, "
                        "a rate limit: until when), retrying or failed, and why; silenced (by which silence: "
                        "alerts silence); 'queued' when no worker has taken it yet; and what was done to it from "
                        "Slack (acknowledged, snoozed, silenced: by whom, when). Quotes a vendor corrected are shown "
                        "among them (both prices, when each arrived, the follow-ups they fired); in JSON each row has "
                        "a type: alert or correction.")
    hi.add_argument("--rule", help="only this rule's alerts")
    hi.add_argument("--product", help="only alerts about this product (any catalog name or alias)")
    hi.add_argument("--since", help="only alerts written at or after this date or time (service time zone)")
    hi.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"at most this many (default {DEFAULT_LIMIT})")
    hi.add_argument("--format", choices=("text", "json"), default="text")
    hi.set_defaults(func=cmd_history)


__all__ = ["find_alerts", "register"]
