"""The fields an event object may have, their JSON types and their limits (pydantic, strict: a number is never a
string or a boolean), and the one message for an object that does not fit (``explain``: every field at fault,
in words a sender can act on)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator

from alerts.events.limits import (
    MAX_BODY,
    MAX_HEADLINE,
    MAX_ID,
    MAX_NOTICE_PRODUCTS,
    MAX_NOTICE_TEXT,
    MAX_PAIR,
    MAX_PRODUCT,
    MAX_SOURCE,
    MAX_TAG,
    MAX_TAGS,
    MAX_TIME,
    MAX_UNIT,
    MAX_URL,
)
from alerts.events.words import did_you_mean, kind_of

_Product = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_PRODUCT)]
_Unit = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_UNIT)]
_Pair = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_PAIR)]
_Time = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TIME)]  # ISO text, not a number
_Source = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_SOURCE)]
_Id = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_ID)]
_Headline = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_HEADLINE)]
_Body = Annotated[str, Strict(), Field(max_length=MAX_BODY)]
_Url = Annotated[str, Strict(), Field(max_length=MAX_URL)]
_Tag = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TAG)]
_NoticeText = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_NOTICE_TEXT)]
#: The kinds of vendor notice: a methodology change, a new price series, a series discontinued, a change of
#: publication time, anything else.
NoticeKind = Literal["methodology", "launch", "discontinued", "schedule", "other"]
#: A JSON number: an integer or a float, never a boolean or a string.
_Number = Annotated[float, Strict()]


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: Literal["price"]
    product: _Product
    price: _Number
    unit: _Unit
    as_of: _Time  # a date or a datetime with offset
    source: _Source = "manual"
    id: _Id | None = None
    low: _Number | None = None
    high: _Number | None = None
    override: Annotated[bool, Strict()] = False  # a real break: skip the sanity check (README "Quote sanity")

    @field_validator("price", "low", "high")
    @classmethod
    def _finite_positive(cls, v: float | None) -> float | None:
        if v is not None and (not math.isfinite(v) or v <= 0):
            raise ValueError("must be a positive number")
        return v


class NewsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: Literal["news"]
    headline: _Headline
    body: _Body = ""
    url: _Url | None = None
    published_at: _Time | None = None
    source: _Source = "manual"
    id: _Id | None = None
    tags: list[_Tag] = Field(default=[], max_length=MAX_TAGS)


class FxIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: Literal["fx"]
    pair: _Pair
    rate: _Number
    as_of: _Time  # a date or a datetime with offset
    source: _Source = "manual"
    id: _Id | None = None

    @field_validator("rate")
    @classmethod
    def _finite_positive(cls, v: float) -> float:
        if not math.isfinite(v) or v <= 0:
            raise ValueError("must be a positive number")
        return v


class NoticeIn(BaseModel):
    """A vendor's notice about its price series (``alerts.events.notice``): the vendor is its ``source``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: Literal["notice"]
    source: _Source  # the vendor: required, a notice is about that vendor's series
    products: list[_Product] = Field(min_length=1, max_length=MAX_NOTICE_PRODUCTS)
    kind: NoticeKind
    effective: _Time  # a date or a datetime with offset; may be ahead of now (announced in advance)
    text: _NoticeText
    url: _Url | None = None
    published_at: _Time | None = None
    id: _Id | None = None


#: The fields of each type of event, for "did you mean" on an unknown one (and the types themselves).
FIELDS = {"price": tuple(PriceIn.model_fields), "news": tuple(NewsIn.model_fields), "fx": tuple(FxIn.model_fields),
          "notice": tuple(NoticeIn.model_fields)}


def explain(exc: ValidationError, kind: str) -> str:
    """Every field of an event object of type ``kind`` at fault, with why, joined by ``; ``."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        if len(loc) > 60:  # an unknown field's name is the sender's and may be long
            loc = loc[:55] + "..."
        typ, value, ctx = err["type"], err.get("input"), err.get("ctx", {})
        if typ == "extra_forbidden":
            msg = "unknown field" + did_you_mean(loc, FIELDS[kind])
        elif typ == "float_type" and isinstance(value, int) and not isinstance(value, bool):
            msg = "out of range"  # an integer beyond any float
        elif typ == "float_type":
            msg = f"must be a number, not {kind_of(value)}"
        elif typ == "string_unicode":  # a lone surrogate: Python callers can pass one, JSON cannot
            msg = "contains characters that are not Unicode text (lone surrogates)"
        elif typ == "string_type" and loc in ("as_of", "published_at", "effective"):
            msg = f'must be an ISO date or datetime in a string, such as "2025-03-11", not {kind_of(value)}'
        elif typ == "string_type":
            msg = f"must be text (a JSON string), not {kind_of(value)}"
        elif typ == "list_type":
            msg = f"must be an array of texts, not {kind_of(value)}"
        elif typ == "string_too_long" and isinstance(value, str):
            msg = f"{len(value):,} characters; the limit is {ctx['max_length']:,}"
        elif typ == "too_short" and isinstance(value, list):
            msg = "must name at least one product"
        elif typ == "too_long" and isinstance(value, list):
            msg = f"{len(value):,} items; the limit is {ctx['max_length']:,}"
        elif typ == "value_error":
            msg = err["msg"].removeprefix("Value error, ")
        else:
            msg = err["msg"]
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
