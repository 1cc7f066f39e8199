"""Events: what a price quote, a news item and an exchange rate look like, and how a sender's JSON becomes one.

Events arrive as JSON objects. ``parse_event`` (pydantic, at the edge) validates one against the catalog,
resolves the product name or alias, converts the price into the product's quote unit (a quote in another
currency with the latest exchange rate before it: ``RateBook``, ``fx_rate``) and gives every event a stable id
(the one it carries, else a hash of its content), so the same event published twice is recognised as one. What
it returns is the typed event that goes on the stream (``encode_wire``) and that evaluators decode
(``decode_wire``, msgspec): parsed once, passed on typed.

The modules, each one idea, and what each may import (besides ``alerts.catalog``, ``alerts.units`` and
``alerts.errors``); imports point down this list, never up:

- ``batch``: a batch from one sender: an HTTP body's items (object, array, JSON Lines) each decoded as a line is,
  one at a time (``body_items``), and its problems bounded (``Problems``, ``MAX_PROBLEMS``). ``json_in``, ``limits``.
- ``json_in``: bytes and decoded JSON in (``json_lines``, ``read_lines``, ``decode_value``, ``parse_event``,
  ``parse_objects``, ``parse_lines``, ``parse_line``; the size and depth checks). May import every module below.
- ``schema``: the fields an event object may have (pydantic) and the message for one that does not fit.
  ``limits``, ``words``.
- ``prices``: a quote from typed fields (``PriceFields``, the one form ``price_event`` takes), ``price_from_fields``
  and ``PriceRows`` (CSV rows). ``sanity``, ``fx``, ``times``, ``wire``, ``limits``, ``words``.
- ``sanity``: whether a quote looks like its product's price (``judge``: scale slips, far off, jumps), the
  ``Guard`` every door hands the parsers, ``QuoteHeld``, and the magnitude limits. ``wire``.
- ``notice``: a vendor notice from typed fields (``notice_event``, ``KIND_WORDS``). ``prices``, ``schema``, ``times``,
  ``wire``.
- ``fx``: currencies, pairs, ``RateBook``, ``fx_rate``, a foreign quote's conversion factor. ``times``, ``wire``,
  ``words``.
- ``times``: ``parse_time``, ``local_date``, the future check. ``words``.
- ``wire``: the typed events and their wire form (``encode_wire``, ``decode_wire``, ``event_time``). Nothing here.
- ``words``: values put into words for the reasons (``did_you_mean``). ``limits``.
- ``limits``: the sizes and lengths an event may have (``LIMITS``). Nothing.

The names below are the package's public ones; ``from alerts.events import X`` keeps working for each of them.
The core imports no Redis, HTTP or Slack client (pyproject.toml's import contracts).
"""

from __future__ import annotations

from alerts.events.fx import RateBook, RateLookup, fx_rate, parse_currency, parse_pair
from alerts.events.json_in import json_lines, parse_event, parse_line, parse_lines, parse_objects, read_lines
from alerts.events.limits import (
    DEFAULT_FX_MAX_AGE_DAYS,
    DEFAULT_MAX_FUTURE_DAYS,
    LIMITS,
    MAX_BODY,
    MAX_DEPTH,
    MAX_HEADLINE,
    MAX_ID,
    MAX_LINE_BYTES,
    MAX_PAIR,
    MAX_PRODUCT,
    MAX_SOURCE,
    MAX_TAG,
    MAX_TAGS,
    MAX_TIME,
    MAX_UNIT,
    MAX_URL,
)
from alerts.events.prices import PriceRows, price_from_fields
from alerts.events.times import local_date, parse_time
from alerts.events.wire import (
    Event,
    FxEvent,
    NewsEvent,
    NoticeEvent,
    PriceEvent,
    decode_wire,
    encode_wire,
    event_time,
    fx_series,
)
from alerts.events.words import did_you_mean

__all__ = [
    "DEFAULT_FX_MAX_AGE_DAYS", "DEFAULT_MAX_FUTURE_DAYS", "LIMITS", "MAX_BODY", "MAX_DEPTH", "MAX_HEADLINE", "MAX_ID",
    "MAX_LINE_BYTES", "MAX_PAIR", "MAX_PRODUCT", "MAX_SOURCE", "MAX_TAG", "MAX_TAGS", "MAX_TIME", "MAX_UNIT",
    "MAX_URL", "Event", "FxEvent", "NewsEvent", "NoticeEvent", "PriceEvent", "PriceRows", "RateBook", "RateLookup",
    "decode_wire",
    "did_you_mean", "encode_wire", "event_time", "fx_rate", "fx_series", "json_lines", "local_date",
    "parse_currency", "parse_event", "parse_line", "parse_lines", "parse_objects", "parse_pair", "parse_time",
    "price_from_fields", "read_lines",
]
