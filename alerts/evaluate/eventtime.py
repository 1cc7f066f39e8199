"""Conditions that combine products (spreads) or prices and news (``all_of``), evaluated in event time.

The evaluators of the product shards see each product's quotes in order but not the products in a
common order: a shard may run ahead of another. So they do not evaluate these rules; they record
their inputs, and a single stage advances each rule in event time:

- a **leg point** for every quote of a product that is a spread leg (``LegPoint``);
- a **part fact** whenever a part of an ``all_of`` held: a quote met its price condition (judged on
  the product's own quotes, in order) or an article matched its news condition (``PartFact``);
- the **watermark** of every product and of the news: the latest event time committed.

A rule advances to its **horizon**: the lowest watermark of its legs (every leg has reported up to
there, because each product's quotes come in date order), or further, up to any point that has
waited longer than the grace (``ALERTS_COMPOSITE_GRACE_SECONDS``): then it is evaluated with what is
known. A spread is evaluated once per distinct time T at which a leg quoted, with each leg's latest
quote at or before T; an ``all_of`` takes its part facts in time order. A point that arrives behind
the horizon (after the grace) is not evaluated at its own time; a leg point still becomes the
leg's latest quote for the times after it. So is a vendor's correction (a second point of one source at one
time, ``alerts.evaluate.corrections``): a time is evaluated with each source's first point at it, whenever the
correction came, so that live and backtests agree.

Everything here is pure; ``alerts.store.composite`` reads and writes the inputs and states, and a
backtest runs the same functions over its own inputs with no horizon (``math.inf``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import msgspec
from msgspec.structs import replace

from alerts.durations import format_duration
from alerts.evaluate.engine import cooling, crossed, step_value
from alerts.events.wire import fx_series
from alerts.model import Alert, AlertStatus, RuleState, alert_id
from alerts.rules.compiled import AllOfRule, PriceRule, RuleSet, SpreadRule
from alerts.rules.render import render
from alerts.units import format_price

_T = TypeVar("_T")

#: The state of one spread or all_of rule, as JSON (``P:shared:{state key}``).
State = dict[str, Any]


class LegPoint(msgspec.Struct, frozen=True, array_like=True):
    """A quote of a spread leg. Points of one product sort by (t, seq): seq is its arrival position
    among that product's quotes (``arrival``), the same live and in a backtest."""

    t: float  # the quote time, epoch seconds
    seq: str
    price: float  # in the product's quote unit
    date: str  # the quote's local date
    source: str
    event_id: str
    arrived: float = 0.0  # wall clock when it was committed (the grace); 0 in backtests


class PartFact(msgspec.Struct, frozen=True, array_like=True):
    """Part ``part`` of an all_of rule held at ``t``, and what made it hold."""

    t: float
    seq: str
    part: int
    what: str  # how the alert describes it
    event_id: str
    source: str
    arrived: float = 0.0
    product: str | None = None
    price: float | None = None
    unit: str | None = None
    as_of: str | None = None
    headline: str | None = None
    url: str | None = None


_POINT = msgspec.json.Encoder()
_POINTS = msgspec.json.Decoder(LegPoint)
_FACTS = msgspec.json.Decoder(PartFact)


def encode_input(item: LegPoint | PartFact) -> bytes:
    return _POINT.encode(item)


def decode_point(raw: bytes | str) -> LegPoint:
    return _POINTS.decode(raw)


def decode_fact(raw: bytes | str) -> PartFact:
    return _FACTS.decode(raw)


def arrival(seq: str, position: int = 0) -> str:
    """A sortable arrival position: a stream entry id ``ms-n``, zero-padded, or a backtest's ``position``."""
    ms, _, n = seq.partition("-")
    if ms.isdigit():
        return f"{int(ms):013d}-{int(n or 0):010d}"
    return f"{0:013d}-{position:010d}"


def horizon(watermarks: Iterable[float | None], waiting: Iterable[tuple[float, float]], now: float,
            grace: float) -> float:
    """How far a rule may advance: the lowest watermark of its legs (None: never seen), or the time of
    any point it waits for (``(t, arrived)``) that arrived more than ``grace`` seconds before ``now``."""
    h = min((-math.inf if w is None else w for w in watermarks), default=-math.inf)
    for t, arrived in waiting:
        if t > h and arrived <= now - grace:
            h = t
    return h


def _cooling(rule: SpreadRule | AllOfRule, state: State, t: float) -> bool:
    return cooling(rule.cooldown, state.get("fired_at"), t)


def _base(rule: SpreadRule | AllOfRule, **kw: Any) -> Alert:
    return Alert(rule_id=rule.id, severity=rule.severity, targets=rule.target_names,
                 description=rule.description, owner=rule.owner, labels=rule.labels_dict, **kw)


def _text(a: Alert, text: str, rule: SpreadRule | AllOfRule) -> Alert:
    return replace(a, text=render(replace(a, text=text), rule) if rule.message else text)


def _leg(point: LegPoint) -> list[Any]:
    return [point.t, point.seq, point.price, point.date, point.source, point.event_id]


def start(cursor: float, legs: dict[str, LegPoint | None] | None = None) -> State:
    """The state of a rule seen for the first time: evaluated from after ``cursor``, with the legs'
    latest quotes at or before it."""
    return {"cursor": cursor, "legs": {k: _leg(p) for k, p in (legs or {}).items() if p is not None}}


def advance_spread(rule: SpreadRule, state: State, of_points: Iterable[LegPoint], minus_points: Iterable[LegPoint],
                   until: float) -> tuple[list[Alert], State]:
    """Evaluate ``rule`` at every time after the state's cursor and up to ``until`` at which a leg quoted.
    A point at or before the cursor (it came after the grace) only becomes its leg's latest quote.
    Returns the alerts and the new state (cursor moved to ``until`` when finite)."""
    st = dict(state)
    if st.get("fp") != rule.fp:  # new or edited rule: keep the legs and the cursor, start armed
        st = {"fp": rule.fp, "cursor": st.get("cursor", -math.inf), "legs": st.get("legs", {})}
    cursor = st["cursor"]
    legs: dict[str, list[Any]] = dict(st["legs"])
    of_list, minus_list = list(of_points), list(minus_points)
    for which, points in (("of", of_list), ("minus", minus_list)):
        behind = latest([p for p in points if p.t <= cursor])  # arrived after the stage passed its time
        current = legs.get(which)
        if behind is not None and (current is None or (current[0], current[1]) < (behind.t, behind.seq)):
            legs[which] = _leg(behind)
    todo = sorted([(p.t, p.seq, "of", p) for p in of_list if cursor < p.t <= until]
                  + [(p.t, p.seq, "minus", p) for p in minus_list if cursor < p.t <= until],
                  key=lambda x: (x[0], x[1], x[2]))
    corrections: dict[float, list[tuple[str, LegPoint]]] = {}
    if todo:
        firsts, later = split_corrections(todo, lambda x: (x[2], x[3].source, x[0]))
        if later:
            todo = firsts
            for _, _, which, p in later:
                corrections.setdefault(p.t, []).append((which, p))
    alerts: list[Alert] = []
    run = _SpreadRun(rule, st)
    of, minus = legs.get("of"), legs.get("minus")
    i = 0
    while i < len(todo):
        t = todo[i][0]
        moved: LegPoint | None = None
        while i < len(todo) and todo[i][0] == t:
            _, _, which, p = todo[i]
            current = of if which == "of" else minus
            if current is None or (current[0], current[1]) <= (p.t, p.seq):
                if which == "of":
                    of = _leg(p)
                else:
                    minus = _leg(p)
            if moved is None or which == "of":
                moved = p
            i += 1
        if moved is not None and of is not None and minus is not None:
            run.at(t, of, minus, moved, alerts)
        for which, p in corrections.get(t, ()):  # a correction counts from after its time
            if which == "of":
                of = _leg(p)
            else:
                minus = _leg(p)
    run.save(st)
    st["legs"] = {k: v for k, v in (("of", of), ("minus", minus)) if v is not None}
    st["cursor"] = until if math.isfinite(until) else max(cursor, todo[-1][0] if todo else cursor)
    return alerts, st


class _SpreadRun:
    """A spread's arming state while it advances, kept in locals and saved once at the end."""

    def __init__(self, rule: SpreadRule, st: State):
        self.rule = rule
        self.last: float | None = st.get("last")
        self.rs = RuleState.from_list(st["rs"]) if "rs" in st else RuleState()
        self.fired_at: float | None = st.get("fired_at")
        self.crosses = rule.kind.startswith("crosses")

    def save(self, st: State) -> None:
        if self.last is not None:
            st["last"] = self.last
        if not self.crosses:
            st["rs"] = self.rs.to_list()
        if self.fired_at is not None:
            st["fired_at"] = self.fired_at

    def at(self, t: float, of: list[Any], minus: list[Any], moved: LegPoint, out: list[Alert]) -> None:
        rule = self.rule
        value = of[2] - minus[2] * rule.factor
        previous, self.last = self.last, value
        may_fire = rule.active_at(t) and not cooling(rule.cooldown, self.fired_at, t)
        events: list[AlertStatus]
        if self.crosses:
            events = ["firing"] if may_fire and crossed(rule.kind, rule.threshold, previous, value) else []
        else:
            self.rs, events = step_value(rule.kind, rule.threshold, rule.rearm, rule.confirm, rule.resolve, self.rs,
                                         value, may_fire)
        for status in events:
            if status == "firing":
                self.fired_at = t
            out.append(_spread_alert(rule, status, value, previous, of, minus, t, moved))


def _spread_alert(rule: SpreadRule, status: AlertStatus, value: float, previous: float | None, of: list[Any],
                  minus: list[Any], t: float, moved: LegPoint) -> Alert:
    a = _base(rule, id=alert_id(rule.id, "spread", of[5], minus[5], status), kind="spread", condition=rule.kind,
              event_id=moved.event_id, source=moved.source, at=t, status=status, product=rule.of.name,
              unit=rule.of.unit_text, price=value, previous=previous, threshold=rule.threshold, as_of=moved.date)
    words = "no longer " if status == "resolved" else ""
    text = (f"{rule.of.name} minus {rule.minus.name}: {format_price(value)} {rule.of.unit} on {moved.date}, "
            f"{words}{rule.condition_text} ({rule.of.name} {format_price(of[2])} on {of[3]}, "
            f"{rule.minus.name} {format_price(minus[2])} on {minus[3]})")
    return _text(a, text, rule)


def advance_all_of(rule: AllOfRule, state: State, facts: Iterable[PartFact], until: float) -> tuple[list[Alert], State]:
    """Take the part facts after the state's cursor and up to ``until``, in time order."""
    st = dict(state)
    if st.get("fp") != rule.fp:
        st = {"fp": rule.fp, "cursor": st.get("cursor", -math.inf)}
    cursor = st["cursor"]
    todo = sorted((f for f in facts if cursor < f.t <= until), key=lambda f: (f.t, f.part, f.seq))
    alerts: list[Alert] = []
    for f in todo:
        alerts.extend(_part_held(rule, st, f))
    st["cursor"] = until if math.isfinite(until) else max(cursor, todo[-1].t if todo else cursor)
    return alerts, st


def _part_held(rule: AllOfRule, st: State, f: PartFact) -> list[Alert]:
    at: dict[str, list[Any]] = dict(st.get("at", {}))
    key = str(f.part)
    if key in at and at[key][0] >= f.t:
        return []
    at[key] = [f.t, f.what]
    st["at"] = at
    if len(at) < len(rule.parts):
        return []
    times = [v[0] for v in at.values()]
    fired_at = st.get("fired_at")
    if max(times) - min(times) > rule.within or (fired_at is not None and fired_at >= min(times)):
        return []
    if not rule.active_at(f.t) or _cooling(rule, st, f.t):
        return []
    st["fired_at"] = max(times)
    parts = "; ".join(at[str(i)][1] for i in range(len(rule.parts)))
    a = _base(rule, id=alert_id(rule.id, "all_of", *sorted(times)), kind="all_of", condition="all_of",
              event_id=f.event_id, source=f.source, at=f.t, product=f.product, price=f.price, unit=f.unit,
              as_of=f.as_of, headline=f.headline, url=f.url)
    return [_text(a, f"all of, within {format_duration(rule.within)}: {parts}", rule)]


def split_corrections(items: list[_T], key: Callable[[_T], object]) -> tuple[list[_T], list[_T]]:
    """Items in arrival order within each time: the first of each ``key`` (a source's point at one time: what is
    evaluated at that time) and the later ones (that source's corrections of it), each list in the given order."""
    seen: set[object] = set()
    firsts: list[_T] = []
    later: list[_T] = []
    for item in items:
        k = key(item)
        if k in seen:
            later.append(item)
        else:
            seen.add(k)
            firsts.append(item)
    return firsts, later


def latest(points: Sequence[LegPoint]) -> LegPoint | None:
    """The newest of some points of one leg, by (t, seq)."""
    return max(points, key=lambda p: (p.t, p.seq), default=None)


def composite_rules(rules: RuleSet) -> tuple[list[SpreadRule], list[AllOfRule]]:
    """The spreads and all_of rules of a rule set, in rule id order."""
    spreads = [r for rid in sorted(rules.by_id) for r in rules.by_id[rid] if isinstance(r, SpreadRule)]
    all_ofs = [r for rid in sorted(rules.by_id) for r in rules.by_id[rid] if isinstance(r, AllOfRule)]
    return spreads, all_ofs


def compose(rules: RuleSet, legs: Iterable[tuple[str, LegPoint]], facts: Iterable[tuple[str, PartFact]],
            until: float = math.inf, *, max_age: float) -> list[Alert]:
    """Every spread and all_of of ``rules`` over these inputs from the start, up to ``until``, in event
    time: what a backtest reports (live, ``alerts.store.composite`` advances each rule as data comes).
    ``max_age``: seconds a rate stays usable (ALERTS_FX_MAX_AGE_DAYS), as the live stage takes it."""
    points: dict[str, list[LegPoint]] = {}
    for product_key, point in legs:
        points.setdefault(product_key, []).append(point)
    by_rule: dict[str, list[PartFact]] = {}
    for state_key, fact in facts:
        by_rule.setdefault(state_key, []).append(fact)
    spreads, all_ofs = composite_rules(rules)
    alerts: list[Alert] = []
    for spread in spreads:
        alerts.extend(advance_spread(spread, start(-math.inf), points.get(spread.of.key, []),
                                     points.get(spread.minus.key, []), until)[0])
    for rule in all_ofs:
        alerts.extend(advance_all_of(rule, start(-math.inf), by_rule.get(rule.state_key, []), until)[0])
    for fx_rule in fx_rules(rules):
        pair, inverse = fx_series_of(fx_rule)
        alerts.extend(advance_fx(fx_rule, start(-math.inf), points.get(fx_rule.product.key, []),
                                 points.get(pair, []), points.get(inverse, []), until, max_age)[0])
    return sorted(alerts, key=lambda a: a.at)


def fx_rules(rules: RuleSet) -> list[PriceRule]:
    """The price rules whose threshold is in another currency than their product's, in rule id order."""
    return [r for rid in sorted(rules.by_id) for r in rules.by_id[rid] if isinstance(r, PriceRule) and r.fx]


def fx_series_of(rule: PriceRule) -> tuple[str, str]:
    """The two rate series that can convert for ``rule``: its pair and the inverse pair."""
    assert rule.fx is not None
    return fx_series(rule.fx.pair), fx_series(rule.fx.inverse)


def advance_fx(rule: PriceRule, state: State, quotes: Iterable[LegPoint], rates: Iterable[LegPoint],
               inverse_rates: Iterable[LegPoint], until: float, max_age: float) -> tuple[list[Alert], State]:
    """Compare each quote of the product after the cursor and up to ``until`` with the threshold, converted
    at the latest rate at or before the quote (``rates`` of the rule's pair, ``inverse_rates`` of the
    inverse pair). With no rate, or one more than ``max_age`` seconds older than the quote, the quote is
    not compared: the rule does not fire (``explain`` says why)."""
    assert rule.fx is not None
    st = dict(state)
    if st.get("fp") != rule.fp:
        st = {"fp": rule.fp, "cursor": st.get("cursor", -math.inf), "rate": st.get("rate")}
    cursor = st["cursor"]
    candidates = [(p, False) for p in rates] + [(p, True) for p in inverse_rates]
    known = st.get("rate")  # [t, seq, rate, date, source, event_id, inverse]
    timeline = sorted(candidates, key=lambda c: (c[0].t, c[0].seq))
    todo = sorted((p for p in quotes if cursor < p.t <= until
                   and (rule.source is None or p.source.casefold() == rule.source)), key=lambda p: (p.t, p.seq))
    todo = split_corrections(todo, lambda p: (p.source, p.t))[0]  # a correction is compared with nothing
    alerts: list[Alert] = []
    rs = RuleState.from_list(st["rs"]) if "rs" in st else RuleState()
    last: float | None = st.get("last")
    fired_at: float | None = st.get("fired_at")
    j = 0
    for i, q in enumerate(todo):
        if i + 1 < len(todo) and todo[i + 1].t == q.t:
            continue  # several quotes at one time: the last one counts
        while j < len(timeline) and timeline[j][0].t <= q.t:
            p, inverse = timeline[j]
            if known is None or (known[0], known[1]) <= (p.t, p.seq):
                known = [*_leg(p), inverse]
            j += 1
        if known is None or q.t - known[0] > max_age:
            st["skipped"] = [q.t, "no rate" if known is None else "rate too old"]
            continue
        rate = 1 / known[2] if known[6] else known[2]  # threshold currency in product currency
        value = q.price * rule.fx.mass_factor / rate
        cooling = bool(rule.cooldown) and fired_at is not None and q.t - fired_at < rule.cooldown
        may_fire = rule.active_at(q.t) and not cooling
        previous, last = last, value
        events: list[AlertStatus]
        if rule.kind.startswith("crosses"):
            events = ["firing"] if may_fire and crossed(rule.kind, rule.threshold, previous, value) else []
        else:
            rs, events = step_value(rule.kind, rule.threshold, rule.rearm, rule.confirm, rule.resolve, rs, value,
                                    may_fire)
        for status in events:
            if status == "firing":
                fired_at = q.t
            alerts.append(_fx_alert(rule, status, q, value, previous, known))
    st.update({"rate": known, "cursor": until if math.isfinite(until) else max(cursor, todo[-1].t if todo else cursor)})
    if last is not None:
        st["last"] = last
    if not rule.kind.startswith("crosses"):
        st["rs"] = rs.to_list()
    if fired_at is not None:
        st["fired_at"] = fired_at
    return alerts, st


def _fx_alert(rule: PriceRule, status: AlertStatus, q: LegPoint, value: float, previous: float | None,
              rate: list[Any]) -> Alert:
    assert rule.fx is not None
    pair = rule.fx.inverse if rate[6] else rule.fx.pair
    a = Alert(id=alert_id(rule.id, rule.product.key, q.source, q.event_id, status), rule_id=rule.id, kind="price",
              condition=rule.kind, severity=rule.severity, targets=rule.target_names, description=rule.description,
              event_id=q.event_id, source=q.source, at=q.t, status=status, product=rule.product.name,
              unit=str(rule.fx.unit), price=value, previous=previous, threshold=rule.threshold, measure="price",
              as_of=q.date, owner=rule.owner, labels=rule.labels_dict)
    words = "no longer " if status == "resolved" else ""
    text = (f"{rule.product.name} {format_price(q.price)} {rule.product.unit} on {q.date} = "
            f"{format_price(round(value, 2))} {rule.fx.unit} at {pair} {rate[2]:g} ({rate[3]}), "
            f"{words}{rule.condition_text}")
    return replace(a, text=render(replace(a, text=text), rule) if rule.message else text)
