"""A vendor notice from its typed fields (``alerts.events.schema.NoticeIn``): the products resolved in the catalog
(any name or alias; each once), the effective date and the publication time read as every event time is (a date
is that day in the service time zone), the publication time checked against ALERTS_MAX_FUTURE_DAYS (the
effective date may be ahead: a discontinuation is announced before it happens), and an id (the one it carries,
else a hash of its content, so the same notice published twice is one)."""

from __future__ import annotations

import time

from alerts.catalog import Catalog
from alerts.errors import EventError
from alerts.events.prices import _unknown_product as unknown_product
from alerts.events.schema import NoticeIn
from alerts.events.times import check_not_future, parse_time
from alerts.events.wire import NoticeEvent, digest

#: What each kind of notice is, in words (alert texts, ``alerts status``).
KIND_WORDS = {"methodology": "methodology change", "launch": "new price series", "discontinued":
              "series discontinued", "schedule": "publication time change", "other": "notice"}


def notice_event(n: NoticeIn, catalog: Catalog, tz: str, now: float | None,
                 max_future_days: float | None) -> NoticeEvent:
    """The rules of a notice past its fields' types and limits. Raises EventError naming the field."""
    names: list[str] = []
    keys: list[str] = []
    for i, name in enumerate(n.products):
        product = catalog.find(name)
        if product is None:
            exc = unknown_product(name, catalog)
            raise EventError(f"products[{i}]: {str(exc).removeprefix('product: ')}")
        if product.key not in keys:
            names.append(product.name)
            keys.append(product.key)
    effective, effective_date = parse_time(n.effective, tz, "effective")
    if n.published_at is None:
        published = now if now is not None else time.time()
    else:
        published, _ = parse_time(n.published_at, tz, "published_at")
        check_not_future(published, "published_at", n.published_at, tz, now, max_future_days)
    eid = n.id or "v-" + digest(n.source, n.kind, effective, *sorted(keys), n.text)
    return NoticeEvent(eid, n.source, n.kind, tuple(names), tuple(keys), effective, effective_date, n.text,
                       n.url or None, published)
