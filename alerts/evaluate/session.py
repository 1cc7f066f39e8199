"""Evaluating a sequence of events in memory: the loop the live evaluator and backtests share.

A ``Session`` holds the state evaluation needs (per product, per article, news cooldowns), takes
events one by one through ``alerts.evaluate.engine`` and records what changed, so the live evaluator can
write exactly that back to Redis in one transaction, and a backtest can simply throw it away.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from alerts.evaluate.composite import describe_news_part, describe_price_part, price_part_holds
from alerts.evaluate.corrections import Correction
from alerts.evaluate.divergence import compose_vendors
from alerts.evaluate.engine import DUPLICATE, LATE, NEW, evaluate_news, evaluate_price
from alerts.evaluate.eventtime import LegPoint, PartFact, arrival, compose
from alerts.evaluate.notices import evaluate_notice
from alerts.evaluate.vendors import vendor_mark
from alerts.events.wire import Event, FxEvent, NewsEvent, NoticeEvent, PriceEvent
from alerts.model import Alert, ProductState
from alerts.rules.compiled import RuleSet

#: Outcomes that give event-time rules nothing: a quote seen before, one older than its vendor's newest.
_NO_LEG = frozenset((DUPLICATE, LATE))
#: The watermark key of the news (the others are product keys).
NEWS = "news"
#: The arrival stamped on the spread legs of imported history: never waited for past the grace, so such a
#: leg is the leg's latest quote for the times after it but does not push a spread's horizon by itself.
HISTORY_ARRIVED = 1e15


@dataclass
class Session:
    rules: RuleSet
    #: Product states as they were before this session (read only): the evaluator's cache.
    states: Mapping[str, ProductState | None] = field(default_factory=dict)
    #: Rule ids that already alerted, by article key.
    seen: dict[str, set[str]] = field(default_factory=dict)
    #: News rule fingerprint -> time of its last alert.
    news_fired: dict[str, float] = field(default_factory=dict)
    #: Wall clock stamped on the inputs of the event-time stage (live: when the batch is committed).
    arrived: float = 0.0
    #: Seconds an exchange rate stays usable after its time (ALERTS_FX_MAX_AGE_DAYS): given by every caller.
    fx_max_age: float = field(kw_only=True)

    # what this session changed
    changed: dict[str, ProductState] = field(default_factory=dict)
    # quotes and articles for the history, with whether a quote was late and the arrival position
    prices: list[tuple[PriceEvent, bool, str]] = field(default_factory=list)
    news: list[tuple[NewsEvent, str]] = field(default_factory=list)
    notices: list[tuple[NoticeEvent, str]] = field(default_factory=list)  # vendor notices, for P:notices
    corrections: list[Correction] = field(default_factory=list)  # quotes corrected (``alerts.evaluate.corrections``)
    seen_added: dict[str, set[str]] = field(default_factory=dict)
    news_fired_changed: dict[str, float] = field(default_factory=dict)
    # inputs of spreads and all_of, evaluated in event time (``alerts.evaluate.eventtime``): live they
    # are written to Redis for the event-time stage; a backtest composes them at the end (``compose``)
    legs: list[tuple[str, LegPoint]] = field(default_factory=list)  # (product key, quote of a spread leg)
    facts: list[tuple[str, PartFact]] = field(default_factory=list)  # (all_of state key, part that held)
    first_seen: dict[str, float] = field(default_factory=dict)  # spread state key -> earliest leg quote time
    watermarks: dict[str, float] = field(default_factory=dict)  # leg product key or NEWS -> latest event time
    count: int = 0  # events applied: arrival positions when the caller gives none

    def state(self, product_key: str) -> ProductState | None:
        return self.changed[product_key] if product_key in self.changed else self.states.get(product_key)

    def apply(self, ev: Event, seq: str = "") -> list[Alert]:
        """Evaluate one event; ``seq`` is its arrival position (the stream entry id), kept in the history
        so a replay sees events in the order the live evaluation did. Spreads and all_of only record
        their inputs here."""
        self.count += 1
        if not isinstance(ev, PriceEvent):  # one check on the hot path: quotes are most events
            if isinstance(ev, NewsEvent):
                return self._news(ev, seq)
            if isinstance(ev, FxEvent):
                return self._fx(ev, seq)
            return self._notice(ev, seq)
        alerts = self._price(ev, seq)
        return [] if ev.history else alerts  # imported history: state and history, no alert

    def _price(self, ev: PriceEvent, seq: str) -> list[Alert]:
        st = self.state(ev.product_key)
        out = evaluate_price(self.rules, ev, st, seq)
        if out.status != DUPLICATE:
            self.prices.append((ev, out.status == LATE, seq))
            if out.correction is not None:
                self.corrections.append(out.correction)
        if out.state is not st:
            self.changed[ev.product_key] = out.state
        idx = self.rules.by_product.get(ev.product_key)
        if out.status in _NO_LEG or idx is None or not (idx.spreads or idx.parts or idx.fx or idx.vendors):
            return out.alerts  # a late quote (a correction of an older day, say) is no news to event-time rules
        order = arrival(seq, self.count)
        if not ev.history:  # imported history moves no watermark: the stage does not advance over it
            self._saw(ev.product_key, ev.as_of)
            if idx.vendors:  # rules that read several vendors wait for each of theirs
                self._saw(vendor_mark(ev.product_key, ev.source), ev.as_of)
                source = ev.source.casefold()
                for vendor_rule in idx.vendors:
                    if source in vendor_rule.vendors:
                        self._first(vendor_rule.state_key, ev.as_of)
        if idx.spreads or idx.fx or idx.vendors:
            self.legs.append((ev.product_key, LegPoint(ev.as_of, order, ev.price, ev.as_of_date, ev.source, ev.id,
                                                       HISTORY_ARRIVED if ev.history else self.arrived)))
        if (idx.spreads or idx.fx) and not ev.history:
            for spread in idx.spreads:
                self._first(spread.state_key, ev.as_of)
            for fx_rule in idx.fx:
                self._first(fx_rule.state_key, ev.as_of)
        if out.status != NEW or ev.history:  # imported history is no part of an all_of
            return out.alerts
        before = st.quotes.get(ev.source) if st is not None else None
        history = out.state.history.get(ev.source, ())
        for rule, i, part in idx.parts:
            if part.source is not None and part.source != ev.source.casefold():
                continue  # ``source:`` another vendor's
            if price_part_holds(part, ev, history, before):
                self._fact(rule.state_key, PartFact(
                    ev.as_of, order, i, describe_price_part(part, ev), ev.id, ev.source, self.arrived,
                    product=ev.product, price=ev.price, unit=ev.unit, as_of=ev.as_of_date))
        return out.alerts

    def _saw(self, key: str, t: float) -> None:
        if t > self.watermarks.get(key, -math.inf):
            self.watermarks[key] = t

    def _first(self, state_key: str, t: float) -> None:
        if t < self.first_seen.get(state_key, math.inf):
            self.first_seen[state_key] = t

    def _fact(self, state_key: str, fact: PartFact) -> None:
        self.facts.append((state_key, fact))

    def _fx(self, ev: FxEvent, seq: str) -> list[Alert]:
        """An exchange rate is a series in event time like a spread leg (``fx:BASE/QUOTE``): kept for the
        rules whose thresholds are in another currency than their product's, and for converting quotes."""
        self.legs.append((ev.series, LegPoint(ev.as_of, arrival(seq, self.count), ev.rate, ev.as_of_date, ev.source,
                                              ev.id, self.arrived)))
        self._saw(ev.series, ev.as_of)
        return []

    def _news(self, ev: NewsEvent, seq: str) -> list[Alert]:
        before = frozenset().union(*(self.seen.get(k, set()) for k in ev.article_keys))
        self.news.append((ev, seq))
        if self.rules.news_parts:
            self._saw(NEWS, ev.published_at)
            text = f"{ev.headline}\n{ev.body}"
            order = arrival(seq, self.count)
            for rule, i, part in self.rules.news_parts:
                if part.matches(text, ev.source):
                    self._fact(rule.state_key, PartFact(
                        ev.published_at, order, i, describe_news_part(ev, self.rules.timezone), ev.id, ev.source,
                        self.arrived, headline=ev.headline, url=ev.url))
        out = evaluate_news(self.rules, ev, before, self.news_fired)
        for fp, t in out.last_fired.items():
            if self.news_fired.get(fp) != t:
                self.news_fired_changed[fp] = t
        self.news_fired = out.last_fired
        new = out.fired_rules - before
        for k in ev.article_keys:
            self.seen.setdefault(k, set()).update(out.fired_rules)
            if new:
                self.seen_added.setdefault(k, set()).update(out.fired_rules)
        return out.alerts

    def _notice(self, ev: NoticeEvent, seq: str) -> list[Alert]:
        """A vendor notice: its vendor_notice rules and default routing (``alerts.evaluate.notices``), once per
        notice id; kept for ``alerts status`` and backtests."""
        before = frozenset().union(*(self.seen.get(k, set()) for k in ev.article_keys))
        self.notices.append((ev, seq))
        out = evaluate_notice(self.rules, ev, before, self.news_fired)
        for fp, t in out.last_fired.items():
            if self.news_fired.get(fp) != t:
                self.news_fired_changed[fp] = t
        self.news_fired = out.last_fired
        if out.fired_rules - before:
            for k in ev.article_keys:
                self.seen.setdefault(k, set()).update(out.fired_rules)
                self.seen_added.setdefault(k, set()).update(out.fired_rules)
        return out.alerts

    def compose(self) -> list[Alert]:
        """Evaluate the spreads and all_of rules over every input recorded, in event time, with no horizon
        (a backtest, a rule test: everything has arrived)."""
        return sorted([*compose(self.rules, self.legs, self.facts, max_age=self.fx_max_age),
                       *compose_vendors(self.rules, self.legs)], key=lambda a: a.at)

    def run(self, events: Iterable[Event]) -> list[Alert]:
        """Every alert of these events, in event time (stable: alerts of one time keep their order)."""
        alerts: list[Alert] = []
        for ev in events:
            alerts.extend(self.apply(ev))
        return sorted([*alerts, *self.compose()], key=lambda a: a.at)
