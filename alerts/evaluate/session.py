"""Evaluating a sequence of events in memory: the loop the live evaluator and backtests share.

A ``Session`` holds the state evaluation needs (per product, per article, news cooldowns), takes
events one by one through ``alerts.engine`` and records what changed, so the live evaluator can
write exactly that back to Redis in one transaction, and a backtest can simply throw it away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from alerts.evaluate.composite import (
    Shared,
    describe_news_part,
    describe_price_part,
    evaluate_part,
    evaluate_spread,
    price_part_holds,
)
from alerts.evaluate.engine import LATE, NEW, evaluate_news, evaluate_price
from alerts.events import Event, NewsEvent, PriceEvent
from alerts.model import Alert, ProductState
from alerts.rules.compiled import RuleSet


@dataclass
class Session:
    rules: RuleSet
    #: Product states as they were before this session (read only): the evaluator's cache.
    states: Mapping[str, ProductState | None] = field(default_factory=dict)
    #: Rule ids that already alerted, by article key.
    seen: dict[str, set[str]] = field(default_factory=dict)
    #: News rule fingerprint -> time of its last alert.
    news_fired: dict[str, float] = field(default_factory=dict)
    #: State of spread and all_of rules, by fingerprint (``alerts.composite``).
    shared: dict[str, Shared] = field(default_factory=dict)

    # what this session changed
    changed: dict[str, ProductState] = field(default_factory=dict)
    # quotes and articles for the history, with whether a quote was late and the arrival position
    prices: list[tuple[PriceEvent, bool, str]] = field(default_factory=list)
    news: list[tuple[NewsEvent, str]] = field(default_factory=list)
    seen_added: dict[str, set[str]] = field(default_factory=dict)
    news_fired_changed: dict[str, float] = field(default_factory=dict)
    shared_changed: set[str] = field(default_factory=set)

    def state(self, product_key: str) -> ProductState | None:
        return self.changed[product_key] if product_key in self.changed else self.states.get(product_key)

    def apply(self, ev: Event, seq: str = "") -> list[Alert]:
        """Evaluate one event; ``seq`` is its arrival position (the stream entry id), kept in the history
        so a replay sees events in the order the live evaluation did."""
        if isinstance(ev, NewsEvent):
            return self._news(ev, seq)
        st = self.state(ev.product_key)
        out = evaluate_price(self.rules, ev, st)
        if out.status in (NEW, LATE):
            self.prices.append((ev, out.status == LATE, seq))
        if out.state is not st:
            self.changed[ev.product_key] = out.state
        idx = self.rules.by_product.get(ev.product_key)
        if out.status != NEW or idx is None or not (idx.spreads or idx.parts):
            return out.alerts
        alerts = list(out.alerts)
        for spread in idx.spreads:
            fired, new = evaluate_spread(spread, self.shared.get(spread.state_key), ev)
            alerts.extend(self._keep(spread.state_key, fired, new))
        before = st.quotes.get(ev.source) if st is not None else None
        history = out.state.history.get(ev.source, ())
        for rule, i, part in idx.parts:
            if price_part_holds(part, ev, history, before):
                fired, new = evaluate_part(rule, self.shared.get(rule.state_key), i, ev.as_of,
                                           describe_price_part(part, ev), ev)
                alerts.extend(self._keep(rule.state_key, fired, new))
        return alerts

    def _keep(self, fp: str, alerts: list[Alert], new: Shared | None) -> list[Alert]:
        if new is not None:
            self.shared[fp] = new
            self.shared_changed.add(fp)
        return alerts

    def _news(self, ev: NewsEvent, seq: str) -> list[Alert]:
        before = frozenset().union(*(self.seen.get(k, set()) for k in ev.article_keys))
        self.news.append((ev, seq))
        parts: list[Alert] = []
        text = f"{ev.headline}\n{ev.body}"
        for rule, i, part in self.rules.news_parts:
            if part.matches(text, ev.source):
                fired, state = evaluate_part(rule, self.shared.get(rule.state_key), i, ev.published_at,
                                             describe_news_part(ev, self.rules.timezone), ev)
                parts.extend(self._keep(rule.state_key, fired, state))
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
        return out.alerts + parts

    def run(self, events: Iterable[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        for ev in events:
            alerts.extend(self.apply(ev))
        return alerts
def shared_rules(rules: RuleSet, events: Iterable[Event]) -> set[str]:
    """Fingerprints of the spread and all_of rules these events can move."""
    fps: set[str] = set()
    if not rules.has_shared:
        return fps
    news = False
    for ev in events:
        if isinstance(ev, PriceEvent):
            idx = rules.by_product.get(ev.product_key)
            if idx is not None:
                fps.update(s.state_key for s in idx.spreads)
                fps.update(r.state_key for r, _, _ in idx.parts)
        else:
            news = True
    if news:
        fps.update(r.state_key for r, _, _ in rules.news_parts)
    return fps


