"""The event-time stage: spreads and all_of rules advanced in event time (``alerts.evaluate.eventtime``).

One stage runs at a time, whatever the number of evaluator processes: it holds ``P:lease:composite``
(taken over by another evaluator process when its holder stops renewing). Each step reads the
watermarks, each rule's state and the inputs after its cursor, advances every rule to its horizon,
and commits the new states and the alerts (through the circuit breaker, onto the alert stream) in one
transaction fenced by the lease. A stage killed before the commit changes nothing: the next owner
starts from the same states and inputs and finds the same alerts, with the same ids.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

import redis

from alerts.evaluate.divergence import advance_vendor_rule
from alerts.evaluate.eventtime import (
    State,
    advance_all_of,
    advance_fx,
    advance_spread,
    composite_rules,
    fx_rules,
    fx_series_of,
    horizon,
    start,
)
from alerts.evaluate.session import NEWS
from alerts.evaluate.vendors import LOOKBACK, vendor_mark, vendor_rules
from alerts.model import Alert
from alerts.rules.compiled import DivergenceRule, NewsRule, PriceRule, RuleSet, SpreadRule
from alerts.settings import Settings
from alerts.store.breaker import apply_breaker
from alerts.store.composite import commit_stage, read_inputs, read_stage, trim_legs
from alerts.store.keys import Keys
from alerts.store.locks import release, renew
from alerts.store.metrics import Recorder
from alerts.store.streams import consumer_name
from workers.roles.loop import run_steps

log = logging.getLogger(__name__)

#: Seconds between two steps of the stage.
STEP_SECONDS = 0.2
#: Steps between two trims of the legs' points no rule needs any more.
TRIM_EVERY_STEPS = 300


class Composer:
    def __init__(self, client: redis.Redis, settings: Settings, rules: Callable[[], RuleSet], name: str | None = None):
        self.client = client
        self.settings = settings
        self.current_rules = rules
        self.keys = Keys(settings.key_prefix)
        self.name = name or consumer_name("composer")
        self.token = self.name.encode()
        self.steps = 0
        self.metrics = Recorder(self.keys)  # alerts per rule and breaker pauses of the stage
        #: whether this process holds the stage's lease (as of its last renewal)
        self.holding = False

    def hold_lease(self) -> bool:
        ttl_ms = int(self.settings.lease_seconds * 1000)
        self.holding = renew(self.client, self.keys.composite_lease, self.token, ttl_ms, take_if_free=True)
        return self.holding

    def step(self, now: float | None = None) -> list[Alert]:
        """Advance every spread and all_of rule as far as its inputs allow. ``now``: the wall clock the
        grace is measured against. Returns the alerts committed (none when another process holds the stage)."""
        if not self.hold_lease():
            return []
        now = time.time() if now is None else now
        grace = self.settings.composite_grace_seconds
        rules = self.current_rules()
        spreads, all_ofs = composite_rules(rules)
        fxs = fx_rules(rules)
        vendors = vendor_rules(rules)
        if not spreads and not all_ofs and not fxs and not vendors:
            return []
        read = read_stage(self.client, self.keys, [r.state_key for r in spreads] + [r.state_key for r in all_ofs]
                          + [r.state_key for r in fxs] + [r.state_key for r in vendors])
        states: dict[str, State] = {}
        # A spread run for the first time starts at the time of its first leg quote seen while it existed,
        # with each leg's latest quote before that (the legs' points are shared with other rules and
        # older than the rule). An all_of starts at its first part fact: they are written for it alone.
        fresh: dict[str, float] = {}
        for state_key in [r.state_key for r in (*spreads, *fxs, *vendors)]:  # fx and vendor rules: as a spread
            st = read.states.get(state_key)
            if st is None:
                born = read.first_seen.get(state_key)
                if born is None:
                    continue  # no quote yet
                fresh[state_key] = born
                st = start(math.nextafter(born, -math.inf))
            states[state_key] = st
        for rule in all_ofs:
            states[rule.state_key] = read.states.get(rule.state_key) or start(-math.inf)
        births = [(pk, fresh[r.state_key]) for r in spreads if r.state_key in fresh for pk in (r.of.key, r.minus.key)]
        legs_after: dict[str, float] = {}
        for spread in spreads:  # each leg from its latest quote known to the rule (later ones may be late), that
            st = states.get(spread.state_key)  # quote's time included: a vendor's correction of it has the same time
            if st is not None:
                for which, pk in (("of", spread.of.key), ("minus", spread.minus.key)):
                    leg = st.get("legs", {}).get(which)
                    after = min(st["cursor"], math.nextafter(leg[0], -math.inf)) if leg else st["cursor"]
                    legs_after[pk] = min(legs_after.get(pk, math.inf), after)
        for fx_rule in fxs:  # the product's quotes after the cursor; the rates from the one it knows
            st = states.get(fx_rule.state_key)
            if st is not None:
                pk = fx_rule.product.key
                legs_after[pk] = min(legs_after.get(pk, math.inf), st["cursor"])
                rate = st.get("rate")
                for series in fx_series_of(fx_rule):
                    after = min(st["cursor"], rate[0]) if rate else -math.inf
                    legs_after[series] = min(legs_after.get(series, math.inf), after)
        for vendor_rule in vendors:  # the product's points from a while before the cursor: each vendor's latest
            st = states.get(vendor_rule.state_key)
            if st is not None:
                pk = vendor_rule.product.key
                legs_after[pk] = min(legs_after.get(pk, math.inf), st["cursor"] - LOOKBACK)
        parts_after = {r.state_key: states[r.state_key]["cursor"] for r in all_ofs if r.state_key in states}
        points, facts, before = read_inputs(self.client, self.keys, legs_after, parts_after, births)
        alerts: list[Alert] = []
        changed: dict[str, State] = {}
        processed: dict[str, float] = {}
        for spread in spreads:
            st = states.get(spread.state_key)
            if st is None:
                continue
            born = fresh.get(spread.state_key)
            if born is not None:  # starts with each leg's latest quote before its first input
                st = start(st["cursor"], {"of": before.get((spread.of.key, born)),
                                          "minus": before.get((spread.minus.key, born))})
            cursor = st["cursor"]
            of, minus = points.get(spread.of.key, []), points.get(spread.minus.key, [])
            until = horizon([read.watermarks.get(spread.of.key), read.watermarks.get(spread.minus.key)],
                            [(p.t, p.arrived) for p in (*of, *minus) if p.t > cursor], now, grace)
            fired, new = advance_spread(spread, st, of, minus, max(until, cursor))
            alerts.extend(fired)
            if new != read.states.get(spread.state_key):
                changed[spread.state_key] = new
        for rule in all_ofs:
            st = states.get(rule.state_key)
            if st is None:
                continue
            legs = {p.product.key for p in rule.parts if isinstance(p, PriceRule)}
            if any(isinstance(p, NewsRule) for p in rule.parts):
                legs.add(NEWS)
            cursor = st["cursor"]
            todo = [f for f in facts.get(rule.state_key, []) if f.t > cursor]
            until = horizon([read.watermarks.get(k) for k in sorted(legs)], [(f.t, f.arrived) for f in todo], now,
                            grace)
            if until <= cursor:
                continue
            fired, new = advance_all_of(rule, st, todo, until)
            alerts.extend(fired)
            changed[rule.state_key] = new
            processed[rule.state_key] = new["cursor"]
        max_age = self.settings.fx_max_age_days * 86400
        for fx_rule in fxs:
            st = states.get(fx_rule.state_key)
            if st is None:
                continue
            pair, inverse = fx_series_of(fx_rule)
            cursor = st["cursor"]
            quotes = points.get(fx_rule.product.key, [])
            rates_mark = max((read.watermarks.get(pair, -math.inf), read.watermarks.get(inverse, -math.inf)))
            until = horizon([read.watermarks.get(fx_rule.product.key), rates_mark],
                            [(p.t, p.arrived) for p in quotes if p.t > cursor], now, grace)
            fired, new = advance_fx(fx_rule, st, quotes, points.get(pair, []), points.get(inverse, []),
                                    max(until, cursor), max_age)
            alerts.extend(fired)
            if new != read.states.get(fx_rule.state_key):
                changed[fx_rule.state_key] = new
        for vendor_rule in vendors:
            st = states.get(vendor_rule.state_key)
            if st is None:
                continue
            cursor = st["cursor"]
            quotes = points.get(vendor_rule.product.key, [])
            marks = [read.watermarks.get(vendor_mark(vendor_rule.product.key, v)) for v in vendor_rule.vendors]
            until = horizon(marks, [(p.t, p.arrived) for p in quotes if p.t > cursor
                                    and p.source.casefold() in vendor_rule.vendors], now, grace)
            born = fresh.get(vendor_rule.state_key)
            if born is not None and until < born:
                continue  # not started until every vendor reported up to its first quote (an earlier one may come)
            fired, new = advance_vendor_rule(vendor_rule, st, quotes, max(until, cursor), rules.holidays,
                                             rules.timezone)
            alerts.extend(fired)
            if new != read.states.get(vendor_rule.state_key):
                changed[vendor_rule.state_key] = new
        if not changed:
            return []
        alerts.sort(key=lambda a: a.at)
        verdict = apply_breaker(self.client, self.keys, alerts, self.settings.breaker_max_alerts,
                                self.settings.breaker_window_seconds)
        owner = {r.id: r.state_key for r in spreads} | {r.id: r.state_key for r in all_ofs}
        by_product: dict[tuple[str, str | None], str] = {(r.id, r.product.name): r.state_key
                                                         for r in (*fxs, *vendors)}
        for a in verdict.alerts:  # what went out: an alert the circuit breaker held is not the last alert
            key = owner.get(a.rule_id) if a.kind in ("spread", "all_of") else by_product.get((a.rule_id, a.product))
            if key is not None and key in changed:
                changed[key]["last_alert"] = max(changed[key].get("last_alert", a.at), a.at)
        if not commit_stage(self.client, self.keys, self.token, changed, verdict,
                            self.settings.breaker_window_seconds, processed):
            log.warning("the event-time stage changed hands during a step; the new holder takes it from here")
            return []
        self.metrics.verdict(verdict)
        self.steps += 1
        if self.steps % TRIM_EVERY_STEPS == 0:
            self.trim({**states, **changed}, spreads, [*fxs, *vendors])
        return verdict.alerts

    def trim(self, states: dict[str, State], spreads: list[SpreadRule],
             fxs: list[PriceRule | DivergenceRule]) -> None:
        """Drop product leg points older than every rule's latest known quote of that leg (and than the cursor
        of the rules that read a product's quotes; ``LOOKBACK`` before it for those that read several vendors).
        Exchange-rate series are kept whole."""
        keep: dict[str, float] = {}
        for fx_rule in fxs:
            st = states.get(fx_rule.state_key)
            pk = fx_rule.product.key
            back = 0.0 if isinstance(fx_rule, PriceRule) and fx_rule.fx is not None else LOOKBACK
            keep[pk] = min(keep.get(pk, math.inf), st["cursor"] - back if st else -math.inf)
            # the rate series (fx:*) are never trimmed: publish converts quotes with them, backtests replay them
        for spread in spreads:
            st = states.get(spread.state_key)
            if st is None:
                continue
            for which, product in (("of", spread.of), ("minus", spread.minus)):
                leg = st.get("legs", {}).get(which)
                keep[product.key] = min(keep.get(product.key, math.inf), leg[0] if leg else -math.inf)
        trim_legs(self.client, self.keys, keep)

    def run(self, stop: threading.Event) -> None:
        log.info("event-time stage %s started", self.name)

        def tick() -> None:
            self.step()
            self.metrics.maybe_flush(self.client)
            stop.wait(STEP_SECONDS)

        run_steps(stop, f"event-time stage {self.name}", tick, lambda: None)
        try:
            release(self.client, self.keys.composite_lease, self.token)
            self.metrics.flush(self.client)
        except redis.RedisError:
            pass
