"""Backtests: replay price, news and exchange-rate history through the rules, sending nothing.

The replay goes through ``alerts.evaluate.session.Session``, the same loop the live evaluator runs,
and spreads and all_of rules through the same event-time evaluation as the live stage
(``alerts.evaluate.eventtime``), so a backtest and a live run of the same events give the same
alerts (same ids, same texts), reported in event time. Events
before ``--from`` are replayed too, silently, so rules start the period in the state they would
really have been in (armed or not, history for change windows); only alerts inside the period are
reported.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from alerts.catalog import Catalog
from alerts.errors import EventError, Problem
from alerts.evaluate.session import Session
from alerts.events import (
    Event,
    FxEvent,
    RateBook,
    event_time,
    json_lines,
    local_date,
    parse_event,
)
from alerts.model import Alert
from alerts.rules.compiled import RuleSet


@dataclass
class BacktestResult:
    events: int
    alerts: list[Alert]
    rules: list[str]

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(a.rule_id for a in self.alerts)
        return {rule: c.get(rule, 0) for rule in self.rules}


def read_events(lines: Iterable[str | bytes], catalog: Catalog, tz: str, *,
                fx_max_age_days: float) -> tuple[list[Event], list[tuple[int, str]]]:
    """JSON Lines -> events in file order, and the (line, reason) of each line that is not one. fx lines
    are events too, and a quote in another currency than its product's is converted with the latest
    rate of the lines before it, at most ``fx_max_age_days`` older (ALERTS_FX_MAX_AGE_DAYS: as ``alerts
    publish`` converts it)."""
    events: list[Event] = []
    errors: list[tuple[int, str]] = []
    rates = RateBook()
    for n, obj in json_lines(lines, errors):
        try:
            ev = parse_event(obj, catalog, tz, rates=rates, fx_max_age_days=fx_max_age_days)
        except EventError as exc:
            errors.append((n, str(exc)))
            continue
        if isinstance(ev, FxEvent):
            rates.add(ev)
        events.append(ev)
    return events, errors


def run_backtest(rules: RuleSet, events: Iterable[Event], start: date | None = None,
                 end: date | None = None, *, fx_max_age_days: float) -> BacktestResult:
    """``fx_max_age_days``: ALERTS_FX_MAX_AGE_DAYS, as the live event-time stage takes it (a threshold in another
    currency is compared only with a rate at most that much older than the quote)."""
    tz = ZoneInfo(rules.timezone)
    lo = datetime(start.year, start.month, start.day, tzinfo=tz).timestamp() if start else None
    hi = datetime(end.year, end.month, end.day, tzinfo=tz).timestamp() + 86400 if end else None
    session = Session(rules, fx_max_age=fx_max_age_days * 86400)
    alerts: list[Alert] = []
    n = 0
    for ev in events:
        t = event_time(ev)
        if hi is not None and t >= hi:
            continue
        n += 1
        fired = session.apply(ev)
        if lo is None or t >= lo:
            alerts.extend(fired)
    alerts.extend(a for a in session.compose() if lo is None or a.at >= lo)
    return BacktestResult(n, sorted(alerts, key=lambda a: a.at), sorted(rules.by_id))


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


def write_json(result: BacktestResult, out: TextIO, refused: Sequence[Problem] = (), waiting: int = 0) -> None:
    """The result as JSON; ``refused``: the rules the loader refused (not backtested), each with its file, line and
    reason; ``waiting``: events on the streams no evaluator has committed (not in the stored history yet)."""
    doc: dict[str, Any] = {"events": result.events, "alerts": [a.to_dict() for a in result.alerts],
                           "counts": result.counts,
                           "refused": [{"file": p.path, "line": p.line, "rule": p.rule_id, "reason": p.message}
                                       for p in refused],
                           "waiting": waiting}
    json.dump(doc, out, ensure_ascii=False, indent=1)
    out.write("\n")
