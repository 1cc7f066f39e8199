"""Backtests: replay price and news history through the rules, sending nothing.

The replay goes through ``alerts.session.Session``, the same loop the live evaluator runs, so a
backtest and a live run of the same events give the same alerts (same ids, same texts). Events
before ``--from`` are replayed too, silently, so rules start the period in the state they would
really have been in (armed or not, history for change windows); only alerts inside the period are
reported.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TextIO, cast
from zoneinfo import ZoneInfo

import redis

from alerts.catalog import Catalog
from alerts.errors import EventError
from alerts.evaluate.session import Session
from alerts.events import Event, PriceEvent, local_date, parse_event, parse_line
from alerts.model import Alert
from alerts.rules.compiled import RuleSet
from alerts.store.keys import Keys


@dataclass
class BacktestResult:
    events: int
    alerts: list[Alert]
    rules: list[str]
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, reason) of a bad events file

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(a.rule_id for a in self.alerts)
        return {rule: c.get(rule, 0) for rule in self.rules}


def read_events(lines: Iterable[str | bytes], catalog: Catalog,
                tz: str) -> tuple[list[Event], list[tuple[int, str]]]:
    """JSON Lines -> events in file order, and the (line, reason) of each line that is not one."""
    events: list[Event] = []
    errors: list[tuple[int, str]] = []
    for n, raw in enumerate(lines, 1):
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            errors.append((n, f"not UTF-8 text: {exc.reason} at byte {exc.start}"))
            continue
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            events.append(parse_line(text, catalog, tz))
        except EventError as exc:
            errors.append((n, str(exc)))
    return events, errors


def _arrival(seq: str, ts: float) -> tuple[int, int]:
    """Sort key of an arrival position ``ms-n`` (a stream entry id); the event time when unknown."""
    ms, _, n = seq.partition("-")
    return (int(ms), int(n or 0)) if ms.isdigit() else (int(ts * 1000), 0)


def stored_events(client: redis.Redis, keys: Keys, catalog: Catalog, tz: str,
                  until: float | None = None) -> list[Event]:
    """Every quote and article the live evaluators kept, in the order they arrived: quotes that came
    late come back late, and change nothing again, but still count as history for change windows."""
    out: list[tuple[tuple[int, int], Event]] = []
    prefix = keys.history("", "")[:-1]  # "P:history:"
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        pkey, source = key.decode()[len(prefix):].split(":", 1)
        product = catalog.products.get(pkey)
        if product is None:
            continue
        for member, score in _scored(client, key):
            day, price, eid, low, high, _late, seq = json.loads(member)
            out.append((_arrival(seq, score), PriceEvent(eid, product.name, pkey, price, product.unit_text, score,
                                                         day, source, low, high)))
    for member, score in _scored(client, keys.news_history):
        try:
            doc = json.loads(member)
            out.append((_arrival(doc["seq"], score), parse_event(doc["e"], catalog, tz)))
        except (EventError, ValueError, KeyError, TypeError):
            continue
    out.sort(key=lambda t: t[0])
    return [ev for _, ev in out if until is None or _time(ev) <= until]


def _scored(client: redis.Redis, key: bytes | str) -> list[tuple[bytes, float]]:
    return cast(list[tuple[bytes, float]], client.zrange(key, 0, -1, withscores=True))


def _time(ev: Event) -> float:
    return ev.as_of if isinstance(ev, PriceEvent) else ev.published_at


def run_backtest(rules: RuleSet, events: Iterable[Event], start: date | None = None,
                 end: date | None = None) -> BacktestResult:
    tz = ZoneInfo(rules.timezone)
    lo = datetime(start.year, start.month, start.day, tzinfo=tz).timestamp() if start else None
    hi = datetime(end.year, end.month, end.day, tzinfo=tz).timestamp() + 86400 if end else None
    session = Session(rules)
    alerts: list[Alert] = []
    n = 0
    for ev in events:
        t = _time(ev)
        if hi is not None and t >= hi:
            continue
        n += 1
        fired = session.apply(ev)
        if lo is None or t >= lo:
            alerts.extend(fired)
    return BacktestResult(n, alerts, sorted(rules.by_id))


def alert_day(a: Alert, tz: str) -> str:
    return a.as_of or local_date(a.at, tz)


def write_text(result: BacktestResult, out: TextIO, tz: str) -> None:
    for a in result.alerts:
        status = " RESOLVED" if a.status == "resolved" else ""
        out.write(f"{alert_day(a, tz)}  {a.rule_id}  {a.severity}{status}  {a.text}\n")
    out.write(f"\n{len(result.alerts)} alerts from {result.events} events\n")
    width = max((len(r) for r in result.rules), default=4)
    for rule, count in result.counts.items():
        out.write(f"  {rule:<{width}}  {count}\n")


def write_json(result: BacktestResult, out: TextIO) -> None:
    doc: dict[str, Any] = {"events": result.events, "alerts": [a.to_dict() for a in result.alerts],
                           "counts": result.counts}
    json.dump(doc, out, ensure_ascii=False, indent=1)
    out.write("\n")
