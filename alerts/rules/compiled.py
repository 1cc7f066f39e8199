"""Rules as evaluation uses them: compiled, unit-converted and indexed. Built by ``alerts.rules.load.load_rules``."""

from __future__ import annotations

import bisect
import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, ClassVar

from pydantic import SecretStr

from alerts.catalog import Catalog, Product
from alerts.durations import format_duration
from alerts.errors import Problem
from alerts.model import ALERT_KINDS, AlertKind
from alerts.rules.models import Digest
from alerts.rules.templates import Message
from alerts.targets import Target
from alerts.units import Unit, format_price


def fingerprint(*parts: object) -> str:
    """A short stable hash of what decides a rule's firing (its ``fp``: state is kept under it), or of an index."""
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()[:12]


@dataclass(frozen=True, eq=False)
class RuleBase:
    id: str
    fp: str  # fingerprint of what decides firing; state is kept under it
    cooldown: float  # seconds, 0 for none
    severity: str
    targets: tuple[Target, ...]
    description: str
    path: str
    line: int
    expires: float | None = None  # epoch seconds: fires nothing for events after this
    owner: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    message: Message | None = None

    def active_at(self, ts: float) -> bool:
        return self.expires is None or ts <= self.expires

    # --- what each kind says of itself, so that explain, checks, silences and blocks ask the rule, not its class

    #: The kind of its alerts (``alerts.model.ALERT_KINDS`` holds the traits of each).
    kind_name: ClassVar[AlertKind]

    @property
    def rearms(self) -> bool:
        """Its condition can stop holding: "silence until resolved" applies."""
        return ALERT_KINDS[self.kind_name].rearms

    @property
    def alert_product(self) -> Product | None:
        """The product its alerts are about (a spread's: its first leg); None for news and all_of."""
        return None

    @property
    def state_products(self) -> tuple[Product, ...]:
        """The products whose per-product state (quotes, rule states) it is evaluated from."""
        return ()

    @property
    def shared_keys(self) -> tuple[str, ...]:
        """The keys of its state kept apart from the products' (``alerts.store.keys.Keys.shared``)."""
        return ()

    @property
    def price_parts(self) -> tuple[PriceRule, ...]:
        """Its conditions on one product's price (itself, or an all_of's price parts)."""
        return ()

    @cached_property
    def target_names(self) -> tuple[str, ...]:
        return tuple(str(t) for t in self.targets)

    @cached_property
    def labels_dict(self) -> dict[str, str] | None:
        return dict(self.labels) or None


@dataclass(frozen=True)
class FxThreshold:
    """A price threshold in another currency than its product's: compared at each quote with the quote
    converted at the latest exchange rate at or before it (``alerts.evaluate.eventtime.advance_fx``)."""

    unit: Unit  # the threshold's unit, such as USD/kg
    quoted: Unit  # the product's quote unit, such as CNY/t
    mass_factor: float  # a price in ``quoted`` times this is in the product's currency per ``unit.mass``

    @property
    def pair(self) -> str:
        """The rate that converts: 1 threshold currency = rate product currency (USD/CNY)."""
        return f"{self.unit.currency}/{self.quoted.currency}"

    @property
    def inverse(self) -> str:
        return f"{self.quoted.currency}/{self.unit.currency}"


class _OnOneProduct:
    """A rule on one product's quotes: its alerts are about it, and its state is that product's."""

    product: Product

    @property
    def alert_product(self) -> Product:
        return self.product

    @property
    def state_products(self) -> tuple[Product, ...]:
        return (self.product,)


@dataclass(frozen=True, eq=False)
class PriceRule(_OnOneProduct, RuleBase):
    product: Product = None  # type: ignore[assignment]
    measure: str = "price"  # price | change_pct | change
    kind: str = "above"  # above | below | crosses_above | crosses_below | abs_above
    threshold: float = 0.0  # in the product's quote unit (percent for change_pct)
    window: float = 0.0  # seconds, for change and change_pct
    rearm: float | None = None  # hysteresis level; None: the threshold itself
    confirm: int = 1
    resolve: bool = False
    fx: FxThreshold | None = None  # a threshold (and rearm) in another currency: evaluated in event time
    state_key: str = ""  # with fx or vendors: where its state is kept (P:shared), stable across edits
    source: str | None = None  # ``source: smm``: only that vendor's quotes (casefolded)
    vendors: tuple[str, ...] = ()  # ``sources:``/``consensus:`` (casefolded, in order): evaluated in event time
    combine: str = ""  # with vendors: "first" (the first fresh one, ``sources:``) or "median" (``consensus:``)
    kind_name: ClassVar[AlertKind] = "price"

    @property
    def event_time(self) -> bool:
        """Evaluated by the event-time stage (its threshold needs an exchange rate, or it reads several vendors)."""
        return self.fx is not None or bool(self.vendors)

    @property
    def shared_keys(self) -> tuple[str, ...]:
        return (self.state_key,) if self.event_time else ()

    @property
    def price_parts(self) -> tuple[PriceRule, ...]:
        return (self,)

    @property
    def stateful(self) -> bool:
        """Needs its own state per source; otherwise its state follows from the last price (the fast path)."""
        return self.measure != "price" or self.rearm is not None or self.confirm > 1 or self.resolve

    @property
    def threshold_unit(self) -> Unit:
        return self.fx.unit if self.fx is not None else self.product.unit

    def value_text(self, value: float) -> str:
        if self.measure == "change_pct":
            return f"{value:+.1f}%" if self.kind != "abs_above" else f"{abs(value):.1f}%"
        return f"{format_price(value)} {self.threshold_unit}"

    @cached_property
    def condition_text(self) -> str:
        words = {"above": "above", "below": "below", "crosses_above": "crossed above",
                 "crosses_below": "crossed below", "abs_above": "moved more than"}[self.kind]
        if self.measure == "price":
            return f"{words} {format_price(self.threshold)} {self.threshold_unit}"
        amount = f"{format_price(self.threshold)}%" if self.measure == "change_pct" else \
            f"{format_price(self.threshold)} {self.product.unit}"
        return f"change over {format_duration(self.window)} {words} {amount}"


@dataclass(frozen=True, eq=False)
class NewsRule(RuleBase):
    any_re: re.Pattern[str] | None = None
    all_res: tuple[re.Pattern[str], ...] = ()
    none_re: re.Pattern[str] | None = None
    regexes: tuple[Any, ...] = ()  # RE2 patterns: any must match
    products_re: re.Pattern[str] | None = None  # any name or alias of the listed products
    sources: frozenset[str] = frozenset()  # casefolded; empty: any source
    kind_name: ClassVar[AlertKind] = "news"

    def matches(self, text: str, source: str = "") -> bool:
        if self.sources and source.casefold() not in self.sources:
            return False
        if self.any_re is not None and self.any_re.search(text) is None:
            return False
        if any(p.search(text) is None for p in self.all_res):
            return False
        if self.none_re is not None and self.none_re.search(text) is not None:
            return False
        if self.regexes and not any(p.search(text) for p in self.regexes):
            return False
        return self.products_re is None or self.products_re.search(text) is not None


@dataclass(frozen=True, eq=False)
class SpreadRule(RuleBase):
    """``of`` minus ``minus`` (converted into the unit of ``of``), evaluated when either leg moves."""

    of: Product = None  # type: ignore[assignment]
    minus: Product = None  # type: ignore[assignment]
    state_key: str = ""  # the legs outlive threshold edits: keyed by id and products, not fingerprint
    factor: float = 1.0  # multiply a ``minus`` price by this to get it in the unit of ``of``
    kind: str = "above"
    threshold: float = 0.0
    rearm: float | None = None
    confirm: int = 1
    resolve: bool = False
    kind_name: ClassVar[AlertKind] = "spread"

    @property
    def alert_product(self) -> Product:
        return self.of

    @property
    def state_products(self) -> tuple[Product, ...]:
        return (self.of, self.minus)

    @property
    def shared_keys(self) -> tuple[str, ...]:
        return (self.state_key,)

    @cached_property
    def condition_text(self) -> str:
        words = {"above": "above", "below": "below", "crosses_above": "crossed above",
                 "crosses_below": "crossed below"}[self.kind]
        return f"{words} {format_price(self.threshold)} {self.of.unit}"


@dataclass(frozen=True, eq=False)
class StaleRule(_OnOneProduct, RuleBase):
    """No quote of ``product`` for ``business_days`` business days, or for ``duration`` seconds."""

    product: Product = None  # type: ignore[assignment]
    business_days: int | None = None
    duration: float | None = None
    kind_name: ClassVar[AlertKind] = "stale"

    @property
    def shared_keys(self) -> tuple[str, ...]:
        return (self.fp,)

    @property
    def after_text(self) -> str:
        if self.business_days is not None:
            return f"{self.business_days} business day{'s' if self.business_days != 1 else ''}"
        return format_duration(self.duration or 0)


@dataclass(frozen=True, eq=False)
class AllOfRule(RuleBase):
    """Every part true within ``within`` seconds of the others."""

    parts: tuple[PriceRule | NewsRule, ...] = ()
    within: float = 0.0
    kind_name: ClassVar[AlertKind] = "all_of"

    @property
    def state_key(self) -> str:
        return self.fp

    @property
    def shared_keys(self) -> tuple[str, ...]:
        return (self.state_key,)

    @property
    def price_parts(self) -> tuple[PriceRule, ...]:
        return tuple(p for p in self.parts if isinstance(p, PriceRule))


@dataclass(frozen=True, eq=False)
class VendorNoticeRule(RuleBase):
    """A vendor's notice (``alerts.events.wire.NoticeEvent``) naming one of ``products`` (any, when empty), of one
    of ``kinds`` (any, when empty), from one of ``sources`` (casefolded; any, when empty)."""

    products: tuple[Product, ...] = ()
    kinds: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    kind_name: ClassVar[AlertKind] = "vendor_notice"

    def matches(self, kind: str, source: str, product_keys: tuple[str, ...]) -> bool:
        if self.kinds and kind not in self.kinds:
            return False
        if self.sources and source.casefold() not in self.sources:
            return False
        return not self.products or any(p.key in product_keys for p in self.products)


@dataclass(frozen=True, eq=False)
class DivergenceRule(_OnOneProduct, RuleBase):
    """``vendors``' quotes of ``product`` for the same day differ by more than ``threshold``: percent (the highest
    above the lowest) or an amount in the product's quote unit. Evaluated in event time
    (``alerts.evaluate.divergence``), at most once per product and day."""

    product: Product = None  # type: ignore[assignment]
    vendors: tuple[str, ...] = ()  # casefolded, as written
    percent: bool = True
    threshold: float = 0.0
    state_key: str = ""
    kind_name: ClassVar[AlertKind] = "divergence"

    @property
    def shared_keys(self) -> tuple[str, ...]:
        return (self.state_key,)

    @cached_property
    def condition_text(self) -> str:
        amount = f"{format_price(self.threshold)}%" if self.percent else \
            f"{format_price(self.threshold)} {self.product.unit}"
        return f"{', '.join(self.vendors)} differ by more than {amount} on the same day"


CompiledRule = PriceRule | NewsRule | SpreadRule | StaleRule | AllOfRule | VendorNoticeRule | DivergenceRule


@dataclass(frozen=True)
class WebhookConfig:
    name: str
    url: str
    secret: SecretStr  # resolved (${ENV_VAR}); never printed
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class ThresholdIndex:
    """Fast-path rules of one condition kind on one product, sorted by threshold."""

    thresholds: list[float] = field(default_factory=list)
    rules: list[PriceRule] = field(default_factory=list)

    def between(self, lo: float, hi: float, lo_inclusive: bool, hi_inclusive: bool) -> list[PriceRule]:
        """Rules with lo < X < hi, each end included when asked."""
        t = self.thresholds
        i = bisect.bisect_left(t, lo) if lo_inclusive else bisect.bisect_right(t, lo)
        j = bisect.bisect_right(t, hi) if hi_inclusive else bisect.bisect_left(t, hi)
        return self.rules[i:j] if i < j else []


@dataclass
class ProductIndex:
    by_kind: dict[str, ThresholdIndex] = field(default_factory=dict)  # fast-path rules
    stateful: list[PriceRule] = field(default_factory=list)  # evaluated one by one on every quote
    by_fp: dict[str, PriceRule] = field(default_factory=dict)  # every rule on the product
    token: str = ""  # changes whenever the set of fingerprints changes
    max_window: float = 0.0  # longest change window: how much quote history to keep
    spreads: list[SpreadRule] = field(default_factory=list)  # spreads with this product as a leg
    parts: list[tuple[AllOfRule, int, PriceRule]] = field(default_factory=list)  # all_of price parts on it
    fx: list[PriceRule] = field(default_factory=list)  # thresholds in another currency (event time)
    #: rules that read several vendors of it (``sources:``, ``consensus:``, ``divergence:``): event time
    vendors: list[PriceRule | DivergenceRule] = field(default_factory=list)

    def kind(self, kind: str) -> ThresholdIndex | None:
        return self.by_kind.get(kind)


@dataclass
class RuleSet:
    catalog: Catalog
    timezone: str = "Asia/Shanghai"
    by_product: dict[str, ProductIndex] = field(default_factory=dict)  # product key -> its price rules, indexed
    news: tuple[NewsRule, ...] = ()
    news_parts: tuple[tuple[AllOfRule, int, NewsRule], ...] = ()  # all_of news parts
    stale: tuple[StaleRule, ...] = ()
    vendor_notices: tuple[VendorNoticeRule, ...] = ()
    holidays: frozenset[date] = frozenset()
    by_id: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)  # one per product
    digests: dict[str, Digest] = field(default_factory=dict)
    webhooks: dict[str, WebhookConfig] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # owner name -> Slack user id (``owners:``)
    #: watchlist name -> its products (``watchlists:``, and the catalog's groups), for ``"@NAME"`` in rules
    watchlists: dict[str, tuple[Product, ...]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]
