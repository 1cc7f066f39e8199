"""What evaluation produces and keeps: alerts and per-product state. Plain data, JSON round-trippable."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


def alert_id(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()[:24]


@dataclass(slots=True)
class Alert:
    """One firing (or resolution) of a rule. Treated as a value once built; not frozen only because
    frozen dataclasses are slow to construct, and alerts are built on the hot path."""

    id: str
    rule_id: str
    kind: str  # "price" or "news"
    condition: str  # above | below | crosses_above | crosses_below | abs_above | news
    severity: str
    targets: tuple[str, ...]
    description: str
    event_id: str
    source: str
    at: float  # event time, epoch seconds: the quote's as_of or the article's published_at
    text: str = ""  # the message: the rule's template, or a default that explains what fired
    status: str = "firing"  # firing | resolved
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

    def to_dict(self) -> dict[str, Any]:
        # by hand, not dataclasses.asdict (which deep-copies): this is on the hot path
        d = {name: getattr(self, name) for name in _ALERT_FIELDS}
        d["targets"] = list(self.targets)
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Alert:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["targets"] = tuple(kw.get("targets", ()))
        return cls(**kw)


_ALERT_FIELDS = tuple(f.name for f in fields(Alert))


@dataclass(frozen=True, slots=True)
class QuoteState:
    """The newest quote of one product from one source, and the rules that have seen it."""

    price: float
    as_of: float
    as_of_date: str
    event_id: str
    token: str = ""  # ProductIndex.token when this quote was evaluated
    seen: frozenset[str] = frozenset()  # rule fingerprints that evaluated this quote
    pending: frozenset[str] = frozenset()  # above/below rules held back by cooldown: still armed
    same_time_ids: frozenset[str] = frozenset()  # ids of every quote evaluated with this same as_of

    def to_dict(self) -> dict[str, Any]:
        return {"price": self.price, "as_of": self.as_of, "as_of_date": self.as_of_date, "event_id": self.event_id,
                "token": self.token, "seen": sorted(self.seen), "pending": sorted(self.pending),
                "same_time_ids": sorted(self.same_time_ids)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuoteState:
        return cls(float(d["price"]), float(d["as_of"]), d["as_of_date"], d["event_id"], d.get("token", ""),
                   frozenset(d.get("seen", ())), frozenset(d.get("pending", ())),
                   frozenset(d.get("same_time_ids", (d["event_id"],))))


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


@dataclass(frozen=True, slots=True)
class ProductState:
    """Everything evaluation remembers about one product."""

    quotes: Mapping[str, QuoteState] = field(default_factory=dict)  # by source
    last_fired: Mapping[str, float] = field(default_factory=dict)  # rule fingerprint -> event time (cooldown)
    rules: Mapping[str, RuleState] = field(default_factory=dict)  # "fingerprint|source" -> state
    history: Mapping[str, History] = field(default_factory=dict)  # by source, kept as long as a window needs
