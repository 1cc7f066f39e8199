"""The rule file format as pydantic models. Unknown keys are errors, never silently ignored.

These models check the shape of what a trader wrote. Whether a product exists, a unit converts or
a digest is defined is decided when a whole directory is compiled (``alerts.rules.compile``).

Validated with the context ``{"lenient": True}`` (``LENIENT``), the checks that span several keys
(exactly one condition, exactly one threshold, ...) are skipped: the loader uses that to check the
rest of a rule that already has a problem, so ``rules check`` reports every problem at once. A
lenient model may lack its condition or threshold: ``kind`` is then "".

Everything a trader writes is bounded (``LIMITS``, rules/README.md "Limits"): every string has a
``max_length``, every list and mapping a most number of items, so one rule cannot make every alert
it sends megabytes long. The limits are pydantic constraints, so rules/schema.json states them too
(``alerts.rules.schema``); ``alerts.rules.limits`` words their errors.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

#: Most characters of each kind of text, and most items of each kind of list or mapping, a rule file
#: may give (rules/README.md, "Limits", lists them; tests/test_rule_limits.py tests every bound).
ID_MAX = 100  # rule ids, digest and webhook names
NAME_MAX = 100  # product names and aliases, owners, news sources
DESCRIPTION_MAX = 500
LABELS_MAX, LABEL_KEY_MAX, LABEL_VALUE_MAX = 20, 50, 200
TARGETS_MAX, TARGET_MAX = 20, 300
MESSAGE_MAX = 2_000  # the template's source text (what it renders is cut by alerts.rules.templates)
VALUE_MAX = 50  # an amount or a duration written as text: "450,000 CNY/t", "3 business days"
PRODUCTS_MAX = 50  # products: of a price or news condition, aliases: of a product
PHRASES_MAX, PHRASE_MAX = 100, 200  # each of a news condition's any:, all:, none:
REGEXES_MAX, REGEX_MAX = 20, 1_000
SOURCES_MAX = 50
PARTS_MAX = 10  # of an all_of
UNIT_MAX = 32
SCHEDULE_MAX, TIMEZONE_MAX, SUBJECT_MAX = 100, 64, 500
RECIPIENTS_MAX, ADDRESS_MAX = 50, 254
URL_MAX, SECRET_MAX = 2_048, 1_000
HEADERS_MAX, HEADER_NAME_MAX, HEADER_VALUE_MAX = 20, 100, 1_000
SLACK_ID_MAX = 32
#: Most entries of each top-level list in one rule file.
TOP_LEVEL_MAX = {"rules": 10_000, "digests": 100, "products": 1_000, "holidays": 1_000, "webhooks": 100,
                 "owners": 1_000, "watchlists": 1_000}
#: Products one watchlist may list.
WATCHLIST_MAX = 1_000
#: Largest rule file, in bytes (read no further: a larger file is refused whole).
FILE_MAX_BYTES = 8 * 1024 * 1024

ID_PATTERN = r"^[a-z0-9_-]+$"
LABEL_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
#: An HTTP header name (RFC 9110 token) and a value without control characters (no CR or LF).
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
HEADER_VALUE_PATTERN = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"

Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
Phrase = Annotated[str, Field(max_length=PHRASE_MAX)]
Pattern = Annotated[str, Field(max_length=REGEX_MAX)]
Value = Annotated[str, Field(max_length=VALUE_MAX)]
Amount = int | float | Value
Duration = Value | int
PRICE_CONDITIONS = ("above", "below", "crosses_above", "crosses_below", "change_pct", "change")
#: How a price condition picks among vendors (rules/README.md, "Several vendors"); none: every source apart.
SOURCE_CHOICES = ("source", "sources", "consensus")
THRESHOLD_KINDS = PRICE_CONDITIONS[:4]


#: Validation context that skips the checks spanning several keys (see the module's docstring).
LENIENT = {"lenient": True}


def lenient(info: ValidationInfo) -> bool:
    return bool(isinstance(info.context, dict) and info.context.get("lenient"))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Change(Strict):
    """A move over a window: the new quote against the last quote at or before (as_of - over)."""

    over: Duration = Field(description="the window, such as 30d or 7d")
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
    product: Name | None = None
    products: Annotated[list[Name], Field(min_length=1, max_length=PRODUCTS_MAX)] | Name | None = Field(
        default=None, description='products or watchlists ("@heavy"): one rule per product, each with its own state')
    above: Amount | None = None
    below: Amount | None = None
    crosses_above: Amount | None = None
    crosses_below: Amount | None = None
    change_pct: Change | None = Field(default=None, description="percent move: {over: 30d, above: 5}")
    change: Change | None = Field(default=None, description="move in price units: {over: 7d, above: \"20,000 CNY/t\"}")
    source: Name | None = Field(default=None, description="only this vendor's quotes (any case), such as smm")
    sources: list[Name] | None = Field(
        default=None, min_length=2, max_length=SOURCES_MAX,
        description="a preference list: the first vendor whose latest quote is fresh, else the next")
    consensus: list[Name] | None = Field(
        default=None, min_length=2, max_length=SOURCES_MAX,
        description="the median of these vendors' latest fresh quotes")

    @model_validator(mode="after")
    def _exactly_one(self, info: ValidationInfo) -> PriceCondition:
        if lenient(info):
            return self
        choices = [k for k in SOURCE_CHOICES if getattr(self, k) is not None]
        if len(choices) > 1:
            raise ValueError(f"give at most one of {', '.join(SOURCE_CHOICES)} (got {', '.join(choices)})")
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
        if self.product is not None:
            return [self.product]
        return [self.products] if isinstance(self.products, str) else list(self.products or [])

    @property
    def source_choice(self) -> str:
        """Which vendors it reads: "" (every source, each its own series), source, sources or consensus."""
        return next((k for k in SOURCE_CHOICES if getattr(self, k) is not None), "")


class DivergenceCondition(Strict):
    """Two or more vendors' quotes of one product for the same day differ by more than ``above``: a percentage
    (``2%``: the highest above the lowest) or an amount (``"20,000 CNY/t"``)."""

    product: Name
    sources: list[Name] = Field(min_length=2, max_length=SOURCES_MAX, description="the vendors compared")
    above: Amount = Field(description='a percentage ("2%") or an amount in price units ("20,000 CNY/t")')


def _phrases(v: list[str]) -> list[str]:
    for p in v:
        if not p.strip().strip("*").strip():
            raise ValueError(f"phrase {p!r} has no words")
    return v


class NewsCondition(Strict):
    any: list[Phrase] = Field(default=[], max_length=PHRASES_MAX, description="at least one of these phrases appears")
    all: list[Phrase] = Field(default=[], max_length=PHRASES_MAX, description="every one of these phrases appears")
    none: list[Phrase] = Field(default=[], max_length=PHRASES_MAX, description="none of these phrases appears")
    regex: Pattern | Annotated[list[Pattern], Field(max_length=REGEXES_MAX)] | None = Field(
        default=None, description="RE2 regular expression(s); any must match")
    products: Annotated[list[Name], Field(max_length=PRODUCTS_MAX)] | Name = Field(
        default=[], description='the article names one of these products (any alias), or of a watchlist ("@heavy")')
    sources: list[Name] = Field(default=[], max_length=SOURCES_MAX, description="only articles from these sources")

    _check = field_validator("any", "all", "none")(_phrases)

    @model_validator(mode="after")
    def _something(self, info: ValidationInfo) -> NewsCondition:
        if lenient(info):
            return self
        if not (self.any or self.all or self.regex or self.products):
            raise ValueError("give at least one of any:, all:, regex: or products:")
        return self

    @property
    def product_names(self) -> list[str]:
        return [self.products] if isinstance(self.products, str) else list(self.products)

    @property
    def regexes(self) -> list[str]:
        return [self.regex] if isinstance(self.regex, str) else list(self.regex or [])


class SpreadCondition(Strict):
    """The difference of two products' latest quotes, ``of`` minus ``minus``, in the unit of ``of``."""

    of: Name
    minus: Name
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

    product: Name
    after: Duration


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


#: The kinds of vendor notice a ``vendor_notice:`` rule may pick (``alerts.events.schema.NoticeKind``).
NOTICE_KINDS = ("methodology", "launch", "discontinued", "schedule", "other")


class VendorNoticeCondition(Strict):
    """A vendor's notice (``{"type": "notice"}``) on products you watch; every filter is optional (none: every
    notice)."""

    products: list[Name] = Field(default=[], max_length=PRODUCTS_MAX,
                                 description="the notice names one of these products (any name or alias)")
    kinds: list[Literal["methodology", "launch", "discontinued", "schedule", "other"]] = Field(
        default=[], max_length=len(NOTICE_KINDS), description="only notices of these kinds")
    sources: list[Name] = Field(default=[], max_length=SOURCES_MAX, description="only notices from these vendors")


CONDITIONS: tuple[str, ...] = ("price", "news", "spread", "stale", "all_of", "vendor_notice")
CONDITIONS = (*CONDITIONS, "divergence")  # vendors that disagree (alerts.evaluate.divergence)
#: Keys of a rule that no check spanning several keys reads.
FREE_KEYS = frozenset({"id", "description", "enabled", "notify", "cooldown", "severity", "expires", "owner",
                       "labels", "message"})


class Rule(Strict):
    id: str = Field(pattern=ID_PATTERN, max_length=ID_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    enabled: bool = True
    price: PriceCondition | None = None
    news: NewsCondition | None = None
    spread: SpreadCondition | None = None
    divergence: DivergenceCondition | None = Field(
        default=None, description="vendors' quotes of one product for the same day differ by more than above")
    stale: StaleCondition | None = None
    all_of: list[Part] | None = Field(default=None, min_length=2, max_length=PARTS_MAX,
                                      description="every condition true within `within`")
    within: Duration | None = Field(default=None, description="window of all_of, such as 3d")
    vendor_notice: VendorNoticeCondition | None = Field(
        default=None, description="a vendor's notice (methodology change, launch, discontinuation, publication "
        "time) on these products")
    notify: list[Annotated[str, Field(max_length=TARGET_MAX)]] = Field(min_length=1, max_length=TARGETS_MAX)
    cooldown: Duration | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    rearm: Amount | None = Field(default=None, description="hysteresis: re-arm only once the value is back here")
    confirm: int = Field(default=1, ge=1, le=100, description="consecutive quotes the condition must hold")
    resolve: bool = Field(default=False, description="send a follow-up when the condition stops holding")
    expires: date | None = Field(default=None, description="the rule stops firing after this day")
    owner: Name | None = None
    labels: dict[Annotated[str, Field(max_length=LABEL_KEY_MAX, pattern=LABEL_KEY_PATTERN)],
                 Annotated[str, Field(max_length=LABEL_VALUE_MAX)]] = Field(default={}, max_length=LABELS_MAX)
    message: str | None = Field(default=None, max_length=MESSAGE_MAX,
                                description="Jinja2 template of the notification text")

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
    name: str = Field(pattern=ID_PATTERN, max_length=ID_MAX)
    schedule: str = Field(max_length=SCHEDULE_MAX)
    timezone: str | None = Field(default=None, max_length=TIMEZONE_MAX)
    to: list[Annotated[str, Field(max_length=ADDRESS_MAX)]] = Field(min_length=1, max_length=RECIPIENTS_MAX)
    subject: str | None = Field(default=None, max_length=SUBJECT_MAX)
    send_empty: bool = False


class Webhook(Strict):
    name: str = Field(pattern=ID_PATTERN, max_length=ID_MAX)
    url: str = Field(pattern=r"^https?://", max_length=URL_MAX, description="where the JSON POST goes")
    secret: str = Field(min_length=1, max_length=SECRET_MAX,
                        description="HMAC-SHA256 key; ${ALERTS_RULES_VAR_NAME} reads it from the environment "
                        "(names the operator allows: ALERTS_RULES_VAR_*, ALERTS_RULES_ALLOWED_VARS)")
    headers: dict[Annotated[str, Field(max_length=HEADER_NAME_MAX, pattern=HEADER_NAME_PATTERN)],
                  Annotated[str, Field(max_length=HEADER_VALUE_MAX, pattern=HEADER_VALUE_PATTERN)]] = Field(
        default={}, max_length=HEADERS_MAX, description="extra headers of the POST")


class ProductDef(Strict):
    name: Name
    unit: str = Field(max_length=UNIT_MAX)
    aliases: list[Name] = Field(default=[], max_length=PRODUCTS_MAX)
    groups: list[Annotated[str, Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]] = Field(
        default=[], max_length=LABELS_MAX, description="catalog groups it joins (heavy, light, oxides, metals, or "
        "new ones): rules name a group as a watchlist, @heavy")


class Watchlist(Strict):
    """A named list of products, one per trader or book: rules name it ``"@NAME"`` wherever they take products
    (``products: "@my-book"``), and cover every product in it, products added later included."""

    name: Annotated[str, Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]
    products: list[Name] = Field(min_length=1, max_length=WATCHLIST_MAX, description="products or other "
                                 "watchlists (@NAME), by any name or alias")
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class Owner(Strict):
    """Who a rule's ``owner:`` names, and their Slack user id: they may snooze and silence its alerts from
    Slack."""

    name: Name = Field(description="as rules write it in owner:")
    slack: str = Field(pattern=r"^[UW][A-Z0-9]{2,}$", max_length=SLACK_ID_MAX,
                       description="Slack user id, such as U0123ABCD")


class RuleFile(Strict):
    """An alerts rule file (rules/README.md): rules, digests, products, holidays, webhooks and owners, all
    optional."""

    # The shape of a whole file, for rules/schema.json (alerts.rules.schema). The loader validates a file key by
    # key and entry by entry (alerts.rules.load), so that one bad entry leaves the others working.

    model_config = ConfigDict(title="alerts rule file")
    rules: list[Rule] = Field(default=[], max_length=TOP_LEVEL_MAX["rules"])
    digests: list[Digest] = Field(default=[], max_length=TOP_LEVEL_MAX["digests"])
    products: list[ProductDef] = Field(default=[], max_length=TOP_LEVEL_MAX["products"])
    holidays: list[date] = Field(default=[], max_length=TOP_LEVEL_MAX["holidays"],
                                 description="days without quotes: stale rules' business days skip them")
    webhooks: list[Webhook] = Field(default=[], max_length=TOP_LEVEL_MAX["webhooks"])
    owners: list[Owner] = Field(default=[], max_length=TOP_LEVEL_MAX["owners"])
    watchlists: list[Watchlist] = Field(default=[], max_length=TOP_LEVEL_MAX["watchlists"])


TOP_LEVEL_KEYS = tuple(RuleFile.model_fields)
