"""What evaluation produces and keeps: alerts (with their one wire form) and per-product state."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec


def alert_id(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()[:24]


#: What produced an alert: a price, news, spread, all_of or stale-feed rule, a circuit-breaker notice, or a vendor's
#: notice (a ``vendor_notice`` rule, or the default routing of ``alerts.evaluate.notices``), or the follow-up of an
#: alert whose quote the vendor corrected (``alerts.evaluate.corrections``).
AlertKind = Literal["price", "news", "spread", "all_of", "stale", "notice", "vendor_notice", "divergence",
                    "correction"]


@dataclass(frozen=True)
class KindTraits:
    """What the rest of the house needs to know of a kind of alert, kept in one place (``ALERT_KINDS``): whether
    its alerts are about one product (a Slack header names the product), and whether its rule re-arms (its
    condition can stop holding: "silence until resolved" applies, and its button is shown)."""

    about_a_product: bool
    rearms: bool


#: Every kind of alert and its traits; a test checks each ``AlertKind`` and each compiled rule kind is here.
ALERT_KINDS: dict[str, KindTraits] = {
    "price": KindTraits(about_a_product=True, rearms=True),
    "spread": KindTraits(about_a_product=True, rearms=True),
    "stale": KindTraits(about_a_product=True, rearms=False),
    "news": KindTraits(about_a_product=False, rearms=False),
    "all_of": KindTraits(about_a_product=False, rearms=False),
    "notice": KindTraits(about_a_product=False, rearms=False),
    "divergence": KindTraits(about_a_product=True, rearms=False),
    "vendor_notice": KindTraits(about_a_product=False, rearms=False),
    "correction": KindTraits(about_a_product=True, rearms=False),
}
#: firing; resolved (the condition stopped holding); paused (a circuit-breaker notice).
AlertStatus = Literal["firing", "resolved", "paused"]


class Alert(msgspec.Struct, omit_defaults=True):
    """One firing (or resolution) of a rule, and its wire form: the evaluator writes alerts to the alert
    stream with ``encode_alerts``, the dispatcher reads them back with ``decode_alerts`` (types checked
    there, once), rq carries ``to_wire()`` and the delivery job reads it with ``from_wire``.

    A msgspec Struct: cheaper to build than a dataclass (alerts are built on the hot path) and encoded
    and decoded without an intermediate dict. Treated as a value once built."""

    id: str
    rule_id: str
    kind: AlertKind
    condition: str  # above | below | crosses_above | crosses_below | abs_above | news | all_of | stale | paused
    severity: str
    targets: tuple[str, ...]
    description: str
    event_id: str
    source: str
    at: float  # event time, epoch seconds: the quote's as_of or the article's published_at
    text: str = ""  # the message: the rule's template, or a default that explains what fired
    status: AlertStatus = "firing"
    product: str | None = None
    unit: str | None = None
    price: float | None = None
    previous: float | None = None
    previous_as_of: str | None = None
    threshold: float | None = None
    measure: str | None = None  # price | change_pct | change
    change: float | None = None  # price move over the window
    change_pct: float | None = None
    window: str | None = None
    as_of: str | None = None  # quote date, ISO
    headline: str | None = None
    url: str | None = None
    owner: str | None = None
    labels: dict[str, str] | None = None
    #: when the event that fired it was published (its stream entry's time, epoch seconds); None in backtests
    published: float | None = None
    #: a ``correction`` follow-up: the id of the alert it follows up, the superseded price (``price`` is the
    #: corrected one), and whether the rule's condition still holds with the corrected price
    corrects: str | None = None
    superseded: float | None = None
    still_holds: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field that has a value (webhook bodies, failure records, backtest JSON)."""
        d = self.to_wire()
        d.setdefault("text", self.text)
        d.setdefault("status", self.status)
        return d

    def to_wire(self) -> dict[str, Any]:
        """The wire form as plain JSON values (rq job arguments): fields at their default are left out."""
        d: dict[str, Any] = msgspec.to_builtins(self)
        d["targets"] = list(self.targets)  # JSON's list, not the struct's tuple
        return d

    @classmethod
    def from_wire(cls, d: object) -> Alert:
        """An alert from its wire form (or ``to_dict``). Raises ValueError naming the bad field."""
        try:
            return msgspec.convert(d, cls)
        except msgspec.ValidationError as exc:
            raise ValueError(f"not an alert: {exc}") from None

    from_dict = from_wire


_ALERTS = msgspec.json.Decoder(list[Alert])
_ENCODER = msgspec.json.Encoder()


def encode_alerts(alerts: list[Alert]) -> bytes:
    """JSON of a list of alerts, as the alert stream holds them."""
    return _ENCODER.encode(alerts)


def decode_alerts(raw: bytes | str) -> list[Alert]:
    """The alerts in ``encode_alerts`` JSON. Raises ValueError naming what is wrong."""
    try:
        return _ALERTS.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValueError(f"not a list of alerts: {exc}") from None


#: The quote before a product-source's newest one, as its ``QuoteState`` keeps it (what a correction of the newest
#: is evaluated against): (price, as_of, as_of_date, event_id, token, seen, pending).
Prior = tuple[float, float, str, str, str, frozenset[str], frozenset[str]]
#: An alert a quote fired: (alert id, rule fingerprint, status).
Fired = tuple[str, str, str]


class QuoteState(msgspec.Struct, frozen=True):
    """The newest quote of one product from one source, and the rules that have seen it; and what a correction
    of it (``alerts.evaluate.corrections``) needs to evaluate the corrected price as if this one had never come:
    the quote before it, the alerts it fired, and the rule state it changed (as it was before).

    A frozen msgspec Struct: one is built per quote on the hot path, and a frozen dataclass costs about a
    microsecond more to build."""

    price: float
    as_of: float
    as_of_date: str
    event_id: str
    token: str = ""  # ProductIndex.token when this quote was evaluated
    seen: frozenset[str] = frozenset()  # rule fingerprints that evaluated this quote
    pending: frozenset[str] = frozenset()  # above/below rules held back by cooldown: still armed
    same_time_ids: frozenset[str] = frozenset()  # ids of every quote evaluated with this same as_of
    prior: Prior | None = None  # the quote before this one
    fired: tuple[Fired, ...] = ()  # the alerts this quote fired
    undo_fired: Mapping[str, float | None] | None = None  # cooldown times this quote set: rule fp -> the time before
    undo_rules: Mapping[str, RuleState] | None = None  # rule states this quote changed: key -> the state before
    seq: str = ""  # its arrival position (stream entry id), when known

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"price": self.price, "as_of": self.as_of, "as_of_date": self.as_of_date,
                             "event_id": self.event_id, "token": self.token, "seen": sorted(self.seen),
                             "pending": sorted(self.pending), "same_time_ids": sorted(self.same_time_ids)}
        if self.prior is not None:
            p = self.prior
            # the rules that saw the quote before are most often the very set that saw this one: "=" says so
            d["prior"] = [p[0], p[1], p[2], p[3], p[4], "=" if p[5] is self.seen else sorted(p[5]), sorted(p[6])]
        if self.fired:
            d["fired"] = [list(f) for f in self.fired]
        if self.undo_fired:
            d["undo_fired"] = dict(self.undo_fired)
        if self.undo_rules:
            d["undo_rules"] = {k: s.to_list() for k, s in self.undo_rules.items()}
        if self.seq:
            d["seq"] = self.seq
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuoteState:
        p = d.get("prior")
        seen = frozenset(d.get("seen", ()))
        prior: Prior | None = None if p is None else (float(p[0]), float(p[1]), str(p[2]), str(p[3]), str(p[4]),
                                                      seen if p[5] == "=" else frozenset(p[5]), frozenset(p[6]))
        undo_rules = d.get("undo_rules")
        return cls(float(d["price"]), float(d["as_of"]), d["as_of_date"], d["event_id"], d.get("token", ""),
                   seen, frozenset(d.get("pending", ())),
                   frozenset(d.get("same_time_ids", (d["event_id"],))), prior,
                   tuple((str(a), str(b), str(c)) for a, b, c in d.get("fired", ())), d.get("undo_fired"),
                   None if undo_rules is None else {k: RuleState.from_list(v) for k, v in undo_rules.items()},
                   d.get("seq", ""))


@dataclass(frozen=True, slots=True)
class RuleState:
    """State of a rule that keeps its own (rearm, confirm, resolve, changes over a window)."""

    armed: bool = True
    streak: int = 0  # consecutive quotes on which the condition held (confirm)
    firing: bool = False  # fired, not yet resolved

    def to_list(self) -> list[int]:
        return [int(self.armed), self.streak, int(self.firing)]

    @classmethod
    def from_list(cls, v: list[int]) -> RuleState:
        return cls(bool(v[0]), int(v[1]), bool(v[2]))


#: (quote time, price) pairs, oldest first.
History = tuple[tuple[float, float], ...]


class ProductState(msgspec.Struct, frozen=True):
    """Everything evaluation remembers about one product (a frozen msgspec Struct, like ``QuoteState``: one is
    built per quote)."""

    quotes: Mapping[str, QuoteState] = msgspec.field(default_factory=dict)  # by source
    last_fired: Mapping[str, float] = msgspec.field(default_factory=dict)  # rule fingerprint -> event time (cooldown)
    rules: Mapping[str, RuleState] = msgspec.field(default_factory=dict)  # "fingerprint|source" -> state
    history: Mapping[str, History] = msgspec.field(default_factory=dict)  # by source, kept as long as a window needs
