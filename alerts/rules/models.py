"""The rule file format as pydantic models. Unknown keys are errors, never silently ignored.

These models check the shape of what a trader wrote. Whether a product exists, a unit converts or
a digest is defined is decided when a whole directory is compiled (``alerts.rules.compile``).

Validated with the context ``{"lenient": True}`` (``LENIENT``), the checks that span several keys
(exactly one condition, exactly one threshold, ...) are skipped: the loader uses that to check the
rest of a rule that already has a problem, so ``rules check`` reports every problem at once. A
lenient model may lack its condition or threshold: ``kind`` is then "".
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Amount = int | float | str
ID_PATTERN = r"^[a-z0-9_-]+$"
PRICE_CONDITIONS = ("above", "below", "crosses_above", "crosses_below", "change_pct", "change")
THRESHOLD_KINDS = PRICE_CONDITIONS[:4]


#: Validation context that skips the checks spanning several keys (see the module's docstring).
LENIENT = {"lenient": True}


def lenient(info: ValidationInfo) -> bool:
    return bool(isinstance(info.context, dict) and info.context.get("lenient"))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Change(Strict):
    """A move over a window: the new quote against the last quote at or before (as_of - over)."""

    over: str | int = Field(description="the window, such as 30d or 7d")
    above: Amount | None = None
    below: Amount | None = None
    abs_above: Amount | None = None

    @model_validator(mode="after")
    def _exactly_one(self, info: ValidationInfo) -> Change:
        if lenient(info):
            return self
        given = [k for k in ("above", "below", "abs_above") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of above, below, abs_above"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self

    @property
    def kind(self) -> str:
        return next((k for k in ("above", "below", "abs_above") if getattr(self, k) is not None), "")


class PriceCondition(Strict):
    product: str | None = Field(default=None, min_length=1)
    products: list[str] | None = Field(default=None, min_length=1)
    above: Amount | None = None
    below: Amount | None = None
    crosses_above: Amount | None = None
    crosses_below: Amount | None = None
    change_pct: Change | None = Field(default=None, description="percent move: {over: 30d, above: 5}")
    change: Change | None = Field(default=None, description="move in price units: {over: 7d, above: \"20,000 CNY/t\"}")

    @model_validator(mode="after")
    def _exactly_one(self, info: ValidationInfo) -> PriceCondition:
        if lenient(info):
            return self
        given = [k for k in PRICE_CONDITIONS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of " + ", ".join(PRICE_CONDITIONS)
                + (f" (got {', '.join(given)})" if given else "")
            )
        if (self.product is None) == (self.products is None):
            raise ValueError("give exactly one of product: or products:")
        return self

    @property
    def kind(self) -> str:
        return next((k for k in PRICE_CONDITIONS if getattr(self, k) is not None), "")

    @property
    def product_names(self) -> list[str]:
        return [self.product] if self.product is not None else list(self.products or [])


def _phrases(v: list[str]) -> list[str]:
    for p in v:
        if not p.strip().strip("*").strip():
            raise ValueError(f"phrase {p!r} has no words")
    return v


class NewsCondition(Strict):
    any: list[str] = Field(default=[], description="at least one of these phrases appears")
    all: list[str] = Field(default=[], description="every one of these phrases appears")
    none: list[str] = Field(default=[], description="none of these phrases appears")
    regex: str | list[str] | None = Field(default=None, description="RE2 regular expression(s); any must match")
    products: list[str] = Field(default=[], description="the article names one of these products (any alias)")
    sources: list[str] = Field(default=[], description="only articles from these sources")

    _check = field_validator("any", "all", "none")(_phrases)

    @model_validator(mode="after")
    def _something(self, info: ValidationInfo) -> NewsCondition:
        if lenient(info):
            return self
        if not (self.any or self.all or self.regex or self.products):
            raise ValueError("give at least one of any:, all:, regex: or products:")
        return self

    @property
    def regexes(self) -> list[str]:
        return [self.regex] if isinstance(self.regex, str) else list(self.regex or [])


class SpreadCondition(Strict):
    """The difference of two products' latest quotes, ``of`` minus ``minus``, in the unit of ``of``."""

    of: str = Field(min_length=1)
    minus: str = Field(min_length=1)
    above: Amount | None = None
    below: Amount | None = None
    crosses_above: Amount | None = None
    crosses_below: Amount | None = None

    @model_validator(mode="after")
    def _exactly_one(self, info: ValidationInfo) -> SpreadCondition:
        if lenient(info):
            return self
        given = [k for k in THRESHOLD_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of " + ", ".join(THRESHOLD_KINDS)
                             + (f" (got {', '.join(given)})" if given else ""))
        return self

    @property
    def kind(self) -> str:
        return next((k for k in THRESHOLD_KINDS if getattr(self, k) is not None), "")


class StaleCondition(Strict):
    """A feed that stopped: no quote of ``product`` for ``after`` (``3 business days``, ``2d``, ``36h``)."""

    product: str = Field(min_length=1)
    after: str | int


class Part(Strict):
    """One condition of an ``all_of``."""

    price: PriceCondition | None = None
    news: NewsCondition | None = None

    @model_validator(mode="after")
    def _one(self, info: ValidationInfo) -> Part:
        if lenient(info):
            return self
        if (self.price is None) == (self.news is None):
            raise ValueError("each all_of entry is one price: or one news: condition")
        return self


CONDITIONS = ("price", "news", "spread", "stale", "all_of")
#: Keys of a rule that no check spanning several keys reads.
FREE_KEYS = frozenset({"id", "description", "enabled", "notify", "cooldown", "severity", "expires", "owner",
                       "labels", "message"})


class Rule(Strict):
    id: str = Field(pattern=ID_PATTERN, max_length=100)
    description: str = ""
    enabled: bool = True
    price: PriceCondition | None = None
    news: NewsCondition | None = None
    spread: SpreadCondition | None = None
    stale: StaleCondition | None = None
    all_of: list[Part] | None = Field(default=None, min_length=2, description="every condition true within `within`")
    within: str | int | None = Field(default=None, description="window of all_of, such as 3d")
    notify: list[str] = Field(min_length=1)
    cooldown: str | int | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    rearm: Amount | None = Field(default=None, description="hysteresis: re-arm only once the value is back here")
    confirm: int = Field(default=1, ge=1, le=100, description="consecutive quotes the condition must hold")
    resolve: bool = Field(default=False, description="send a follow-up when the condition stops holding")
    expires: date | None = Field(default=None, description="the rule stops firing after this day")
    owner: str | None = None
    labels: dict[str, str] = {}
    message: str | None = Field(default=None, description="Jinja2 template of the notification text")

    @model_validator(mode="after")
    def _one_condition(self, info: ValidationInfo) -> Rule:
        if lenient(info):
            return self
        given = [k for k in CONDITIONS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a rule needs exactly one condition: " + ", ".join(f"{k}:" for k in CONDITIONS)
                             + (f" (got {', '.join(given)})" if given else ""))
        if given[0] not in ("price", "spread"):
            for key in ("rearm", "resolve"):
                if getattr(self, key) not in (None, False):
                    raise ValueError(f"{key}: applies to price and spread rules only")
            if self.confirm != 1:
                raise ValueError("confirm: applies to price and spread rules only")
        if (self.all_of is None) != (self.within is None):
            raise ValueError("all_of: and within: go together")
        return self

    @property
    def condition(self) -> str:
        return next((k for k in CONDITIONS if getattr(self, k) is not None), "")


class Digest(Strict):
    name: str = Field(pattern=ID_PATTERN)
    schedule: str
    timezone: str | None = None
    to: list[str] = Field(min_length=1)
    subject: str | None = None
    send_empty: bool = False


class Webhook(Strict):
    name: str = Field(pattern=ID_PATTERN)
    url: str = Field(pattern=r"^https?://", description="where the JSON POST goes")
    secret: str = Field(min_length=1, description="HMAC-SHA256 key; ${ENV_VAR} reads it from the environment")
    headers: dict[str, str] = {}


class ProductDef(Strict):
    name: str = Field(min_length=1)
    unit: str
    aliases: list[str] = []


class Owner(Strict):
    """Who a rule's ``owner:`` names, and their Slack user id: they may snooze and silence its alerts from
    Slack."""

    name: str = Field(min_length=1, description="as rules write it in owner:")
    slack: str = Field(pattern=r"^[UW][A-Z0-9]{2,}$", description="Slack user id, such as U0123ABCD")


TOP_LEVEL_KEYS = ("rules", "digests", "products", "holidays", "webhooks", "owners")
