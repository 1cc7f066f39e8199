"""A silence, and how alerts are matched against silences.

A silence has matchers of five kinds (rule id, product, label ``k=v``, target, severity). An alert and one
of its targets match a silence when every kind the silence gives matches, and a kind given several values
matches when any of them does (``--rule a --rule b --product X``: rule a or b, and product X). A silence
without a single matcher would silence everything: it is refused.

A silence is active from its creation until its end (``ends``), or until it is expired by hand or by its
rule re-arming (``until_resolved``: no end time). ``decide`` says what the delivery job does with one
delivery: deliver it, drop it as silenced (naming the silence), and which until-resolved silences the alert
ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from alerts.model import Alert

#: The matcher kinds, in the order they are shown.
KINDS = ("rule", "product", "label", "target", "severity")


def target_key(target: str) -> str:
    """A target without its options (``slack:#desk?quiet=22:00-07:00`` -> ``slack:#desk``): what a target
    matcher compares."""
    return target.partition("?")[0].strip()


@dataclass(frozen=True)
class Matchers:
    """Each kind: the values any of which matches; empty: the kind is not constrained."""

    rule: tuple[str, ...] = ()
    product: tuple[str, ...] = ()  # catalog names (resolved from any alias when the silence is made)
    label: tuple[tuple[str, str], ...] = ()  # (key, value)
    target: tuple[str, ...] = ()  # without options (``target_key``)
    severity: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.rule or self.product or self.label or self.target or self.severity)

    def matches(self, alert: Alert, target: str) -> bool:
        """Every kind given matches; within a kind, any of its values."""
        if self.rule and alert.rule_id not in self.rule:
            return False
        if self.product and alert.product not in self.product:
            return False
        if self.label:
            labels = alert.labels or {}
            if not any(labels.get(k) == v for k, v in self.label):
                return False
        if self.target and target_key(target) not in self.target:
            return False
        return not self.severity or alert.severity in self.severity

    def covers(self, rule_id: str, products: Iterable[str | None], labels: Mapping[str, str], severity: str,
               targets: Iterable[str]) -> bool:
        """Whether some alert of a rule (its id, the products it alerts on, labels, severity, targets) to some
        of its targets matches: what ``alerts rules explain`` shows."""
        if self.rule and rule_id not in self.rule:
            return False
        if self.product and not set(self.product) & set(products):
            return False
        if self.label and not any(labels.get(k) == v for k, v in self.label):
            return False
        if self.severity and severity not in self.severity:
            return False
        return not self.target or bool(set(self.target) & {target_key(t) for t in targets})

    def to_dict(self) -> dict[str, list[str]]:
        d: dict[str, list[str]] = {}
        for kind in KINDS:
            values = getattr(self, kind)
            if values:
                d[kind] = [f"{k}={v}" for k, v in values] if kind == "label" else list(values)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Iterable[str]]) -> Matchers:
        labels = tuple((k, v) for k, _, v in (text.partition("=") for text in d.get("label", ())))
        return cls(rule=tuple(d.get("rule", ())), product=tuple(d.get("product", ())), label=labels,
                   target=tuple(d.get("target", ())), severity=tuple(d.get("severity", ())))

    def text(self) -> str:
        """``rule=a|b product=Pr-Nd oxide``: every kind given, its values joined by ``|`` (any of them)."""
        return " ".join(f"{kind}={'|'.join(values)}" for kind, values in self.to_dict().items())


@dataclass(frozen=True)
class Silence:
    """One silence and its audit trail. Times are epoch seconds."""

    id: str
    matchers: Matchers
    author: str
    comment: str
    created: float
    ends: float | None  # None: until the rule re-arms (``until_resolved``)
    until_resolved: bool = False
    notify_resolved: bool = False  # resolved notices still delivered
    expired_at: float | None = None  # expired before its end: by hand, or by its rule re-arming
    expired_by: str | None = None  # who (an author), or "resolved"
    expired_why: str | None = None
    seen_up_to: float | None = None  # until-resolved: event time of the newest quote its rules had seen when made
    ended_by_alert: str | None = None  # the alert that ended an until-resolved silence: its other deliveries too
    extra: Mapping[str, Any] = field(default_factory=dict)  # fields a later version wrote, kept as they are

    @property
    def end(self) -> float:
        """When it stops (stopped) being active: its expiry, its end, or never (+inf) while until-resolved."""
        if self.expired_at is not None:
            return self.expired_at if self.ends is None else min(self.expired_at, self.ends)
        return self.ends if self.ends is not None else math.inf

    def active(self, now: float) -> bool:
        return self.created <= now < self.end

    def matches(self, alert: Alert, target: str) -> bool:
        return self.matchers.matches(alert, target)

    def expired(self, at: float, by: str, why: str, alert_id: str | None = None) -> Silence:
        return replace(self, expired_at=at, expired_by=by, expired_why=why, ended_by_alert=alert_id)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {**self.extra, "id": self.id, "matchers": self.matchers.to_dict(), "author": self.author,
                             "comment": self.comment, "created": self.created, "ends": self.ends,
                             "until_resolved": self.until_resolved, "notify_resolved": self.notify_resolved}
        if self.expired_at is not None:
            d.update(expired_at=self.expired_at, expired_by=self.expired_by, expired_why=self.expired_why)
        if self.ended_by_alert is not None:
            d["ended_by_alert"] = self.ended_by_alert
        if self.seen_up_to is not None:
            d["seen_up_to"] = self.seen_up_to
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Silence:
        """Raises ValueError (or KeyError, TypeError) on a record that is not a silence."""
        known = {"id", "matchers", "author", "comment", "created", "ends", "until_resolved", "notify_resolved",
                 "expired_at", "expired_by", "expired_why", "ended_by_alert", "seen_up_to"}
        ends = d.get("ends")
        expired_at = d.get("expired_at")
        return cls(id=str(d["id"]), matchers=Matchers.from_dict(d["matchers"]), author=str(d["author"]),
                   comment=str(d["comment"]), created=float(d["created"]),
                   ends=float(ends) if ends is not None else None, until_resolved=bool(d.get("until_resolved")),
                   notify_resolved=bool(d.get("notify_resolved")),
                   expired_at=float(expired_at) if expired_at is not None else None,
                   expired_by=d.get("expired_by"), expired_why=d.get("expired_why"),
                   ended_by_alert=d.get("ended_by_alert"),
                   seen_up_to=float(d["seen_up_to"]) if d.get("seen_up_to") is not None else None,
                   extra={k: v for k, v in d.items() if k not in known})


@dataclass(frozen=True)
class Decision:
    """What the delivery job does with one delivery."""

    silenced_by: str | None  # the id of a silence that drops it, or None: deliver
    ends: tuple[tuple[str, str], ...] = ()  # until-resolved silences this alert ends: (id, why)


def decide(silences: Iterable[Silence], alert: Alert, target: str, now: float) -> Decision:
    """The silences active at ``now`` that match ``alert`` and ``target`` (and those this same alert ended: its
    other targets are treated alike):

    - a silence with ``notify_resolved`` lets a resolved notice through;
    - an until-resolved silence ends on a resolved alert it matches (the rule's condition stopped holding;
      the notice itself is dropped unless ``notify_resolved``), and on a firing alert for a quote newer than
      any its rules had seen when it was made (``seen_up_to``; else its creation time): the rule re-armed and
      fired again, and that alert is delivered;
    - any other matching active silence drops the delivery (the first by id is named);
    - a circuit-breaker notice (status "paused") is never silenced.
    """
    silenced: list[str] = []
    ends: list[tuple[str, str]] = []
    if alert.status == "paused":  # the circuit breaker paused a rule: told even while its alerts are silenced
        return Decision(None)
    for s in sorted(silences, key=lambda s: s.id):
        this = s.ended_by_alert is not None and s.ended_by_alert == alert.id
        if not (s.active(now) or this) or not s.matches(alert, target):
            continue
        if s.until_resolved:
            if alert.status == "resolved":
                if not this:
                    ends.append((s.id, f"a resolved alert of {alert.rule_id} ({alert.id})"))
            elif alert.status == "firing" and alert.at > (s.seen_up_to if s.seen_up_to is not None else s.created):
                if not this:
                    ends.append((s.id, f"{alert.rule_id} re-armed and fired again ({alert.id})"))
                continue
        if alert.status == "resolved" and s.notify_resolved:
            continue
        silenced.append(s.id)
    return Decision(silenced[0] if silenced else None, tuple(ends))
