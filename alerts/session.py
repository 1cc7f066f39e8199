"""Evaluating a sequence of events in memory: the loop the live evaluator and backtests share.

A ``Session`` holds the state evaluation needs (per product, per article, news cooldowns), takes
events one by one through ``alerts.engine`` and records what changed, so the live evaluator can
write exactly that back to Redis in one transaction, and a backtest can simply throw it away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from alerts.compiled import RuleSet
from alerts.engine import LATE, NEW, evaluate_news, evaluate_price
from alerts.events import Event, NewsEvent, PriceEvent
from alerts.model import Alert, ProductState


@dataclass
class Session:
    rules: RuleSet
    #: Product states as they were before this session (read only): the evaluator's cache.
    states: Mapping[str, ProductState | None] = field(default_factory=dict)
    #: Rule ids that already alerted, by article key.
    seen: dict[str, set[str]] = field(default_factory=dict)
    #: News rule fingerprint -> time of its last alert.
    news_fired: dict[str, float] = field(default_factory=dict)

    # what this session changed
    changed: dict[str, ProductState] = field(default_factory=dict)
    prices: list[tuple[PriceEvent, bool]] = field(default_factory=list)  # quotes for the history, and if late
    news: list[NewsEvent] = field(default_factory=list)  # articles to keep in the history
    seen_added: dict[str, set[str]] = field(default_factory=dict)
    news_fired_changed: dict[str, float] = field(default_factory=dict)

    def state(self, product_key: str) -> ProductState | None:
        return self.changed[product_key] if product_key in self.changed else self.states.get(product_key)

    def apply(self, ev: Event) -> list[Alert]:
        if isinstance(ev, NewsEvent):
            return self._news(ev)
        st = self.state(ev.product_key)
        out = evaluate_price(self.rules, ev, st)
        if out.status in (NEW, LATE):
            self.prices.append((ev, out.status == LATE))
        if out.state is not st:
            self.changed[ev.product_key] = out.state
        return out.alerts

    def _news(self, ev: NewsEvent) -> list[Alert]:
        before = frozenset().union(*(self.seen.get(k, set()) for k in ev.article_keys))
        self.news.append(ev)
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

    def run(self, events: Iterable[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        for ev in events:
            alerts.extend(self.apply(ev))
        return alerts
