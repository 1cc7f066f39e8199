"""Corrections: a vendor re-publishes a day's quote with another price.

A quote with the same product, source and quote time as the product-source's newest quote, another id and
another price is a **correction** of it (``alerts.evaluate.engine.evaluate_price``). It is evaluated
as if the quote it corrects (the superseded one) had never come: against the quote before it, with the cooldowns
and rule states as they were before it (``alerts.model.QuoteState`` keeps what that needs). Then, for each alert the
superseded quote fired:

- the rule fires again on the corrected price: no second alert, a follow-up (kind ``correction``, ``corrects``: the
  alert's id) that says the condition still holds;
- it does not: a follow-up that says the alert was based on the superseded price and no longer holds.

A rule that fires on the corrected price but had not on the superseded one fires an ordinary alert. Follow-ups go
to the targets of the rule, with the same rule id. A correction of a day older than the newest quote (a late
correction) is kept in the history (change windows use it) and recorded (``alerts history``), but fires nothing:
the state no longer holds what the alerts of that day were based on.

Everything here is pure and runs in ``alerts.evaluate.session.Session``: a backtest of the stored history gives
the same follow-ups as the live evaluation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

from alerts.events.wire import PriceEvent
from alerts.model import Alert, Fired, ProductState, QuoteState, alert_id
from alerts.rules.compiled import PriceRule
from alerts.units import format_price


@dataclass(frozen=True, slots=True)
class Correction:
    """A quote corrected: both prices, both event ids and when each arrived (arrival positions: stream entry
    ids, ``ms-n``), and the follow-ups it fired. ``late``: a correction of a day older than the newest quote."""

    product_key: str
    product: str
    source: str
    day: str
    as_of: float
    unit: str
    old_price: float | None  # None: a late correction of a quote the state no longer holds
    new_price: float
    old_id: str | None
    new_id: str
    old_seq: str
    new_seq: str
    late: bool = False
    followups: tuple[str, ...] = ()

    def text(self) -> str:
        old = f"from {format_price(self.old_price)} " if self.old_price is not None else ""
        new = f"{format_price(self.new_price)} {self.unit}"
        return f"{self.source} corrected {self.product} on {self.day} {old}to {new}"

    def to_dict(self) -> dict[str, object]:
        return {"product": self.product, "product_key": self.product_key, "source": self.source, "day": self.day,
                "as_of": self.as_of, "unit": self.unit, "old_price": self.old_price, "new_price": self.new_price,
                "old_id": self.old_id, "new_id": self.new_id, "old_seq": self.old_seq, "new_seq": self.new_seq,
                "late": self.late, "followups": list(self.followups)}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Correction:
        return msgspec.convert(dict(d), cls)


def rolled_back(st: ProductState, q: QuoteState) -> tuple[QuoteState | None, ProductState]:
    """The state as it was before the newest quote ``q`` came: the quote before it (None: ``q`` was the first), and
    the cooldowns and rule states ``q`` changed as they were (a cooldown another quote set since stays)."""
    p = q.prior
    before = None if p is None else QuoteState(p[0], p[1], p[2], p[3], p[4], p[5], p[6])
    last_fired: Mapping[str, float] = st.last_fired
    if q.undo_fired:
        restored = dict(st.last_fired)
        for fp, t in q.undo_fired.items():
            if restored.get(fp) == q.as_of:  # still the time the superseded quote set
                if t is None:
                    restored.pop(fp, None)
                else:
                    restored[fp] = t
        last_fired = restored
    rule_states = st.rules
    if q.undo_rules:
        rule_states = {**st.rules, **q.undo_rules}
    return before, ProductState(st.quotes, last_fired, rule_states, st.history)


def reconcile(superseded: tuple[Fired, ...], alerts: list[Alert], fired: list[Fired]) \
        -> tuple[list[Alert], list[Fired], set[tuple[str, str]]]:
    """What the corrected quote fires against what the superseded one fired: the new alerts that go out (those of
    rules that had not fired on the superseded quote), what the corrected quote counts as fired (an alert fired
    again keeps the original's id: a second correction follows up the same alert), and the (rule fp, status) fired
    again."""
    old = {(fp, status): aid for aid, fp, status in superseded}
    out: list[Alert] = []
    kept: list[Fired] = []
    again: set[tuple[str, str]] = set()
    for a, (aid, fp, status) in zip(alerts, fired, strict=True):
        if (fp, status) in old:  # fired again on the corrected price: the follow-up says so
            kept.append((old[(fp, status)], fp, status))
            again.add((fp, status))
        else:
            out.append(a)
            kept.append((aid, fp, status))
    return out, kept, again


def followup(rule: PriceRule, original: Alert, ev: PriceEvent, holds: bool) -> Alert:
    """The follow-up of ``original`` (worded again from the superseded quote, as it was sent), after ``ev``
    corrected its quote."""
    verdict = "the condition still holds" if holds else "the condition no longer holds"
    assert original.price is not None
    text = (f"{ev.source} corrected {ev.product} on {ev.as_of_date} from {format_price(original.price)} to "
            f"{format_price(ev.price)} {ev.unit}: the alert \"{original.text}\" was based on the superseded price; "
            f"with the corrected price {verdict}")
    return Alert(
        id=alert_id(original.id, "correction", ev.id), rule_id=rule.id, kind="correction", condition=rule.kind,
        severity=rule.severity, targets=rule.target_names, description=rule.description, event_id=ev.id,
        source=ev.source, at=ev.as_of, text=text, product=ev.product, unit=ev.unit, price=ev.price,
        previous=original.previous, previous_as_of=original.previous_as_of, threshold=rule.threshold,
        measure=rule.measure, as_of=ev.as_of_date, owner=rule.owner, labels=rule.labels_dict,
        corrects=original.id, superseded=original.price, still_holds=holds)
