"""The typed events: a quote (``PriceEvent``), an article (``NewsEvent``), an exchange rate (``FxEvent``) and a
vendor's notice about its price series (``NoticeEvent``),
validated and converted once at the edge, and their wire form on the event stream (``encode_wire``), which
evaluators decode without validating again (``decode_wire``, msgspec). Also the content hash of the ids of events
that carry none (``digest``)."""

from __future__ import annotations

import hashlib

import msgspec

from alerts.errors import EventError


class PriceEvent(msgspec.Struct, frozen=True, tag="price", tag_field="type"):
    """A quote, validated and converted: the product by catalog name and key, the price in the product's
    quote unit, the quote time in epoch seconds and as a local date."""

    id: str
    product: str  # catalog name
    product_key: str
    price: float  # in the product's quote unit
    unit: str  # the product's quote unit
    as_of: float  # epoch seconds
    as_of_date: str  # ISO date in the service timezone
    source: str
    low: float | None = None
    high: float | None = None
    #: Imported history (``alerts import``): evaluated into state and history, but it fires no alert.
    history: bool = False


class NewsEvent(msgspec.Struct, frozen=True, tag="news", tag_field="type"):
    id: str
    headline: str
    body: str
    url: str | None
    published_at: float
    source: str
    tags: tuple[str, ...] = ()

    @property
    def article_keys(self) -> tuple[str, ...]:
        """Keys under which this article is remembered: its id and its url, when it has them."""
        keys = [f"id:{self.id}"]
        if self.url:
            keys.append("url:" + digest(self.url.strip()))
        return tuple(keys)


class FxEvent(msgspec.Struct, frozen=True, tag="fx", tag_field="type"):
    """An exchange rate: 1 ``base`` = ``rate`` ``quote`` (``USD/CNY`` 7.10: one US dollar is 7.10 yuan)."""

    id: str
    pair: str  # "BASE/QUOTE", canonical currency codes: USD/CNY
    rate: float
    as_of: float  # epoch seconds
    as_of_date: str  # ISO date in the service timezone
    source: str

    @property
    def series(self) -> str:
        """The key of this pair's rates in event time (beside product keys): ``fx:USD/CNY``."""
        return fx_series(self.pair)


class NoticeEvent(msgspec.Struct, frozen=True, tag="notice", tag_field="type"):
    """A vendor's notice about its price series (``alerts.events.notice``): a methodology change, a launch, a
    discontinuation, a change of publication time. ``source`` is the vendor; ``products`` are catalog names."""

    id: str
    source: str
    kind: str  # methodology | launch | discontinued | schedule | other
    products: tuple[str, ...]  # catalog names, in the order given
    product_keys: tuple[str, ...]
    effective: float  # epoch seconds: when the change takes effect (may be after published_at)
    effective_date: str  # ISO date in the service timezone
    text: str
    url: str | None
    published_at: float  # epoch seconds: when the vendor announced it (its event time)

    @property
    def article_keys(self) -> tuple[str, ...]:
        """The key under which the rules that alerted on this notice are remembered (once per notice)."""
        return (f"notice:{self.id}",)


def fx_series(pair: str) -> str:
    return f"fx:{pair}"


Event = PriceEvent | NewsEvent | FxEvent | NoticeEvent


def event_time(ev: Event) -> float:
    """When an event happened: a quote's or a rate's as_of, an article's or a notice's publication time (epoch
    seconds)."""
    return ev.published_at if isinstance(ev, NewsEvent | NoticeEvent) else ev.as_of


def digest(*parts: object) -> str:
    """A short stable hash of an event's content: the id of an event published without one."""
    return hashlib.sha1("\x1f".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()[:20]


_WIRE_ENCODER = msgspec.json.Encoder()
_WIRE_DECODER = msgspec.json.Decoder(PriceEvent | NewsEvent | FxEvent | NoticeEvent)


def encode_wire(event: Event) -> bytes:
    """The event as it goes on the event stream: its typed form, already validated and converted, so
    the evaluator decodes it without validating it again (``decode_wire``)."""
    return _WIRE_ENCODER.encode(event)


def decode_wire(raw: bytes | str) -> Event:
    """An event from ``encode_wire``. Raises EventError when the bytes are not one."""
    try:
        event: Event = _WIRE_DECODER.decode(raw)
        return event
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise EventError(f"not an event on the wire: {exc}") from None
