"""Vendor notices in Redis (``P:notices``): every notice an evaluator committed, for backtests (replayed with the
other events) and for ``alerts status`` (the series a vendor discontinued that rules still read).

``P:notices`` is a sorted set of ``{"seq": arrival position, "n": the notice's wire form}`` (JSON) by publication
time. Notices are rare (a vendor sends a few a year per series): the newest ``NOTICES_KEPT`` are kept, whatever
their age, so a discontinuation announced years ago is still known (trimmed in the commit that adds one)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import msgspec
import redis

from alerts.evaluate.notices import watching
from alerts.events.wire import NoticeEvent
from alerts.rules.compiled import CompiledRule, RuleSet
from alerts.store.keys import Keys

#: Notices kept in ``P:notices`` (the newest by publication time).
NOTICES_KEPT = 10_000


class _Stored(msgspec.Struct, frozen=True):
    seq: str
    n: NoticeEvent


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_Stored)


def notice_member(ev: NoticeEvent, seq: str = "") -> bytes:
    return _ENCODER.encode(_Stored(seq, ev))


def stage_notices(pipe: Any, keys: Keys, notices: Iterable[tuple[NoticeEvent, str]]) -> None:
    """Add the notices of a batch to ``pipe`` (the batch's transaction) and trim to ``NOTICES_KEPT``."""
    members = {notice_member(ev, seq): ev.published_at for ev, seq in notices}
    if members:
        pipe.zadd(keys.notices, members)
        pipe.zremrangebyrank(keys.notices, 0, -(NOTICES_KEPT + 1))


def stored_notices(client: redis.Redis, keys: Keys) -> list[tuple[NoticeEvent, str]]:
    """Every stored notice with its arrival position, by publication time; a notice published twice (same id)
    once, as it first arrived; a member that is not a notice is skipped."""
    out: dict[str, tuple[NoticeEvent, str]] = {}
    for member in cast(list[bytes], client.zrange(keys.notices, 0, -1)):
        try:
            rec = _DECODER.decode(member)
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue
        first = out.get(rec.n.id)
        if first is None or (rec.seq and rec.seq < first[1]):
            out[rec.n.id] = (rec.n, rec.seq)
    return sorted(out.values(), key=lambda p: p[0].published_at)


@dataclass(frozen=True)
class Discontinued:
    """A vendor's series that ended (its notice's effective date passed) and the rules that still read it."""

    product: str  # catalog name
    source: str  # the vendor
    effective_date: str
    notice_id: str
    rules: tuple[str, ...]

    def message(self) -> str:
        shown = ", ".join(self.rules[:10]) + (f" and {len(self.rules) - 10} more" if len(self.rules) > 10 else "")
        return (f"{self.product} from {self.source}: discontinued since {self.effective_date} (notice "
                f"{self.notice_id}), still read by {shown}; point them at another vendor or product")

    def to_json(self) -> dict[str, Any]:
        return {"product": self.product, "source": self.source, "effective_date": self.effective_date,
                "notice": self.notice_id, "rules": list(self.rules)}


def discontinued_in_use(notices: Iterable[NoticeEvent], rules: RuleSet, now: float) -> list[Discontinued]:
    """The (product, vendor) series discontinued by a notice whose effective time is at or before ``now`` and not
    launched again by a later ``launch`` notice of the same vendor, that enabled rules still read (the rules
    that watch the product, less those that name another vendor: ``alerts.evaluate.notices.watching``)."""
    ended: dict[tuple[str, str], NoticeEvent] = {}
    relaunched: dict[tuple[str, str], float] = {}
    for ev in sorted(notices, key=lambda n: n.effective):
        for key in ev.product_keys:
            series = (key, ev.source.casefold())
            if ev.kind == "discontinued" and ev.effective <= now:
                ended[series] = ev
            elif ev.kind == "launch" and ev.effective <= now:
                relaunched[series] = ev.effective
    out = []
    for (key, vendor), ev in sorted(ended.items()):
        if relaunched.get((key, vendor), -1.0) > ev.effective:
            continue
        product = rules.catalog.products.get(key)
        if product is None:
            continue
        readers: list[CompiledRule] = watching(rules, (key,), ev.source)
        if readers:
            out.append(Discontinued(product.name, ev.source, ev.effective_date, ev.id,
                                    tuple(r.id for r in readers)))
    return out


__all__ = ["NOTICES_KEPT", "Discontinued", "discontinued_in_use", "notice_member", "stage_notices",
           "stored_notices"]
