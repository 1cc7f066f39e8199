# ruff: noqa: RUF001, RUF002  (Chinese and typographic punctuation is what this module reads)
"""Price quotes read from market articles (English and Chinese, plain text or HTML), by rules and the catalog.

``extract(text, catalog, article_date, tz)`` returns the quotes the article states and the sentences it
skipped, each with why. Precision before recall: a price whose product, unit or date is ambiguous is
skipped, never guessed. Changes ("up 3,500 yuan/mt", "环比上涨1.2万元/吨"), tonnages, quotas, percentages
and forecasts ("expected to test 430,000", "预计下月将升至45万元/吨") are never prices.

A line is a sentence (a heading, a list line, a table row), unless prose is wrapped there
(``alerts.ingest.article_text.sentence_lines``); a semicolon does not end a sentence: the clause after it
inherits the sentence's product and date, with its own forecast and "respectively" words.

How one sentence is read:

- an *amount* is a number (or a range ``42.6-42.9``) with a currency per mass: ``yuan/mt``, ``RMB/kg``,
  ``CNY 444,000/t``, ``万元/吨`` (10,000 CNY/t), ``元/公斤``. A number without both is not a price;
- its *product* is the one catalog name or alias (Chinese included) written after the previous amount and
  before it; else the previous amount's; else, when the sentence names no product at all, the one product
  its paragraph has named so far. Two products, a bare element ("terbium", "镨钕": oxide or metal?) that
  does not fit, or "respectively"/"分别": skipped;
- it is a *change* when the last of the words before it is a change word (up, by, rose, 上涨, 环比 ...)
  rather than a price word (to, at, was, 报, 为, 至 ...), or a sign, "higher" or "lower" is next to it;
  a *forecast* when a forecast word (expected, will, may, 预计, 或将, 有望 ...) comes before it in the
  sentence or anywhere in its clause;
- its *date* is one written right after it ("on March 11", "as of March 11"), else the one date written
  after the previous amount and before it, else the previous amount's (after a semicolon: the sentence's),
  else the date of the title or heading above it (``alerts.ingest.article_context``: "SMM rare earth prices,
  December 7" dates the "X averaged ..." lines under it) when its clause states no period or day of its own;
  none when a relative day is beside it ("a week earlier", "last week", "上周"). "today"/"今日" is the article's
  date. The year is the date's own, else the article's; a month later than the article's month is of the
  year before. A date after the article's (or after today) is skipped;
- a range is kept only with its average ("42.6-42.9万元/吨，均价42.75万元/吨": 427,500, low 426,000, high
  429,000); a range alone is skipped. Quotes in USD are export (FOB) prices, another series: skipped. A
  price outside the product's typical range (after converting through ``alerts.units``) is skipped as
  a likely unit slip, and one product and day stated at two prices in an article is skipped.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from alerts.catalog import Catalog, Product, product_key
from alerts.events.limits import MAX_BODY, MAX_HEADLINE
from alerts.ingest.article_context import HEADING_MAX, PERIOD, Context, heading_context
from alerts.ingest.article_text import (
    Article,
    DateMention,
    article_date_of,
    date_mentions,
    lower_in_place,
    read_article,
    resolve_date,
    sentence_lines,
)
from alerts.ingest.article_words import (
    _AFTER_CHANGE,
    _AMOUNT,
    _BARE,
    _BARE_MONEY,
    _CLAUSE,
    _DATE_AFTER,
    _DIGIT,
    _EX_VAT,
    _FORECAST,
    _KEYWORD,
    _MONEY_CUE,
    _RELATIVE,
    _RESPECTIVELY,
    _SEMICOLON,
    _Amount,
    _amounts,
    _compatible,
    _product_regex,
)
from alerts.units import format_price

# --------------------------------------------------------------------------------------------- API


@dataclass(frozen=True)
class Quote:
    product: str
    price: float
    unit: str
    as_of: date
    sentence: str
    id: str
    source: str = "article"
    low: float | None = None
    high: float | None = None

    def event(self) -> dict[str, Any]:
        """The price event, ready for ``alerts.store.publish``."""
        ev: dict[str, Any] = {"type": "price", "product": self.product, "price": _json_number(self.price),
                              "unit": self.unit,
                              "as_of": self.as_of.isoformat(), "source": self.source, "id": self.id}
        if self.low is not None and self.high is not None:
            ev["low"], ev["high"] = _json_number(self.low), _json_number(self.high)
        return ev


def _json_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class Skipped:
    sentence: str
    why: str


@dataclass
class _Paragraph:
    products: dict[str, Product] = field(default_factory=dict)

    @property
    def topic(self) -> Product | None:
        return next(iter(self.products.values())) if len(self.products) == 1 else None


def _clean(value: float) -> float:
    r = round(value, 4)
    return float(int(r)) if r.is_integer() else r


def article_hash(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


def quote_id(article: str, sentence: str, product: str, when: date) -> str:
    return _quote_id(_sentence_hash(article, sentence), product, when)


def _sentence_hash(article: str, sentence: str) -> hashlib._Hash:
    """The hash of the part of a quote id its sentence's quotes share: a long sentence is hashed once."""
    return hashlib.sha256(f"{article}\x1f{sentence}\x1f".encode())


def _quote_id(sentence_hash: hashlib._Hash, product: str, when: date) -> str:
    h = sentence_hash.copy()
    h.update(f"{product}\x1f{when.isoformat()}".encode())
    return "art-" + h.hexdigest()[:32]


def extract(text: str, catalog: Catalog, article_date: date | None, tz: str, *,
            source: str = "article") -> tuple[list[Quote], list[Skipped]]:
    """The quotes ``text`` (plain text or HTML) states, and the sentences skipped with why. Pure: no I/O.

    ``article_date`` gives the year of dates written without one (None: the article's own date, if it
    states one); ``tz`` is the time zone of "today" when the article has no date (no quote is dated after)."""
    return _extract(read_article(text), catalog, article_date, tz, source)


def _extract(article: Article, catalog: Catalog, article_date: date | None, tz: str,
             source: str) -> tuple[list[Quote], list[Skipped]]:
    if article_date is None:
        article_date = article_date_of(article)
    today = datetime.now(ZoneInfo(tz)).date()
    pattern, by_key = _product_regex(catalog)
    ahash = article_hash(article.text)
    quotes: list[Quote] = []
    skipped: list[Skipped] = []
    context: Context | None = None  # the date a title or heading gives the lines after it
    for paragraph in article.text.split("\n\n"):
        para = _Paragraph()
        for s, whole_line in sentence_lines(paragraph):
            q, sk = _sentence(s, pattern, by_key, para, article_date, today, ahash, source, context)
            quotes.extend(q)
            skipped.extend(sk)
            if whole_line and len(s) <= HEADING_MAX and not q:
                context = heading_context(lower_in_place(s), context, article_date, today)
    return _consistent(quotes, skipped)


def _consistent(quotes: list[Quote], skipped: list[Skipped]) -> tuple[list[Quote], list[Skipped]]:
    """One product and day at one price: repeats of a quote are dropped, conflicting prices skipped."""
    prices: dict[tuple[str, date], set[float]] = {}
    for q in quotes:
        prices.setdefault((q.product, q.as_of), set()).add(q.price)
    kept: list[Quote] = []
    seen: set[tuple[str, date]] = set()
    for q in quotes:
        k = (q.product, q.as_of)
        if len(prices[k]) > 1:
            skipped.append(Skipped(q.sentence, f"{q.product} on {q.as_of} is stated at different prices in the "
                                   f"article ({', '.join(format_price(p) for p in sorted(prices[k]))})"))
        elif k not in seen:
            seen.add(k)
            kept.append(q)
    return kept, skipped


def _sentence(orig: str, pattern: re.Pattern[str], by_key: dict[str, Product], para: _Paragraph,
              article_date: date | None, today: date, ahash: str, source: str,
              context: Context | None) -> tuple[list[Quote], list[Skipped]]:
    s = lower_in_place(orig)
    if not _DIGIT.search(s) or not _MONEY_CUE.search(s):  # no amount of money: only the products it names
        for m in pattern.finditer(s):
            p = by_key.get(product_key(m.group()))
            if p is not None:
                para.products[p.key] = p
        return [], []
    mentions: list[tuple[int, int, Product]] = []
    for m in pattern.finditer(s):
        p = by_key.get(product_key(m.group()))
        if p is not None:
            mentions.append((m.start(), m.end(), p))
    bares: list[tuple[int, str]] = []
    if _BARE.search(s):  # element names outside the product names: the products blanked out, positions kept
        pieces, last = [], 0
        for st, en, _ in mentions:
            pieces += [s[last:st], " " * (en - st)]
            last = en
        pieces.append(s[last:])
        bares = [(m.start(), m.group()) for m in _BARE.finditer("".join(pieces))]
    topic = para.topic
    for _, _, p in mentions:
        para.products[p.key] = p
    dates = date_mentions(s)
    amounts = _amounts(s, dates)
    if not amounts:
        if (mentions or bares) and _BARE_MONEY.search(s):
            return [], [Skipped(orig, "a money amount without a per-tonne or per-kg unit")]
        return [], []
    prev: _Amount | None = None
    found = _Found(s, mentions, bares, dates, context)
    for a in amounts:
        lo = prev.end if prev else 0
        _read_product(a, lo, found, prev, topic)
        _read_date(a, s, lo, found, prev, article_date, today)
        _read_kind(a, s, lo, found)
        if found.respectively and found.in_clause(found.respectively, a):
            a.why_number = "'respectively': which price is which product is left to the reader"
        if a.when is not None:
            found.last_when = a.when
        prev = a
    return _quotes(orig, amounts, ahash, source)


class _Found:
    """What one sentence names, found once, each list in text order: the words between two positions are a
    slice found by bisection, and the clause break and relative day after a position are searched for from
    there only when the last search (from an earlier position: amounts are read in text order) does not tell.
    So a sentence of many amounts is read in n log n, not n²."""

    __slots__ = ("_brk", "_brk_from", "_rel", "_rel_from", "bare_starts", "bares", "context", "date_starts", "dates",
                 "forecasts", "keyword_ends", "keywords", "last_when", "mention_starts", "mentions", "respectively",
                 "s", "semicolons")

    def __init__(self, s: str, mentions: list[tuple[int, int, Product]], bares: list[tuple[int, str]],
                 dates: list[DateMention], context: Context | None = None) -> None:
        self.s = s
        self.mentions = mentions  # (start, end, product)
        self.mention_starts = [m[0] for m in mentions]
        self.bares = bares  # (start, element name)
        self.bare_starts = [b[0] for b in bares]
        self.dates = dates
        self.date_starts = [d.start for d in dates]
        #: (start, end, is a change word) of the change and price words
        self.keywords = [(m.start(), m.end(), bool(m.group("ce") or m.group("cc"))) for m in _KEYWORD.finditer(s)]
        self.keyword_ends = [k[1] for k in self.keywords]
        self.forecasts = [m.start() for m in _FORECAST.finditer(s)]
        self.semicolons = [m.start() for m in _SEMICOLON.finditer(s)]
        self.respectively = [m.start() for m in _RESPECTIVELY.finditer(s)]
        self.context = context  # the date of the heading above, if any
        self.last_when: date | None = None  # the date of the last amount read that has one
        self._brk_from, self._brk = len(s) + 1, -1
        self._rel_from, self._rel = len(s) + 1, (-1, -1)

    def products_in(self, lo: int, hi: int) -> dict[str, Product]:
        """The products named from ``lo`` to before ``hi``, by key, in text order."""
        found = self.mentions[bisect_left(self.mention_starts, lo):bisect_left(self.mention_starts, hi)]
        return {p.key: p for _, _, p in found}

    def bares_in(self, lo: int, hi: int) -> list[str]:
        return [b for _, b in self.bares[bisect_left(self.bare_starts, lo):bisect_left(self.bare_starts, hi)]]

    def dates_in(self, lo: int, hi: int) -> list[DateMention]:
        return self.dates[bisect_left(self.date_starts, lo):bisect_left(self.date_starts, hi)]

    def segment(self, a: _Amount) -> tuple[int, int]:
        """The part of the sentence between semicolons that ``a`` is in: a clause that inherits its sentence's
        product and date but has its own forecast and "respectively" words."""
        i = bisect_left(self.semicolons, a.start)
        end = self.semicolons[i] if i < len(self.semicolons) else len(self.s)
        return (self.semicolons[i - 1] + 1 if i else 0), end

    def in_clause(self, positions: list[int], a: _Amount) -> bool:
        """Whether one of ``positions`` (sorted) is in ``a``'s semicolon segment, up to the end of its clause."""
        start, end = self.segment(a)
        end = min(end, self.clause_end(a.end))
        i = bisect_left(positions, start)
        return i < len(positions) and positions[i] < end

    def semicolon_between(self, lo: int, hi: int) -> bool:
        i = bisect_left(self.semicolons, lo)
        return i < len(self.semicolons) and self.semicolons[i] < hi

    def clause_end(self, pos: int) -> int:
        """Where the first clause break at or after ``pos`` is, else the sentence's end."""
        if not (self._brk_from <= pos and (self._brk < 0 or self._brk >= pos)):
            m = _CLAUSE.search(self.s, pos)
            self._brk_from, self._brk = pos, (m.start() if m else -1)
        return self._brk if self._brk >= 0 else len(self.s)

    def relative_in(self, lo: int, hi: int) -> bool:
        """Whether a relative day ("a week earlier", "上周") is written from ``lo`` to before ``hi``."""
        if not (self._rel_from <= lo and (self._rel[0] < 0 or self._rel[0] >= lo)):
            m = _RELATIVE.search(self.s, lo)
            self._rel_from, self._rel = lo, (m.span() if m else (-1, -1))
        return 0 <= self._rel[0] and self._rel[1] <= hi


def _read_product(a: _Amount, lo: int, found: _Found, prev: _Amount | None, topic: Product | None) -> None:
    mentions = found.mentions
    here = found.products_in(lo, a.start)
    bare = found.bares_in(lo, a.start)
    if len(here) > 1:
        a.why_product = "ambiguous product: " + " and ".join(p.name for p in here.values()) + " before one price"
        return
    if here:
        product: Product | None = next(iter(here.values()))
    elif prev is not None and (prev.product or prev.why_product):
        product = prev.product
        if product is None:
            a.why_product = prev.why_product
            return
    elif not mentions and (topic is not None):
        product = topic
    elif mentions:
        a.why_product = "the product is named only after the price"
        return
    else:
        a.why_product = ("ambiguous product: " + ", ".join(repr(b) for b in bare) + " (oxide or metal?)" if bare
                         else "no product named in the sentence or its paragraph")
        return
    assert product is not None
    wrong = [b for b in bare if not _compatible(b, product)]
    if wrong:
        a.why_product = f"ambiguous product: {product.name} and {', '.join(repr(b) for b in wrong)}"
        return
    a.product = product


def _read_date(a: _Amount, s: str, lo: int, found: _Found, prev: _Amount | None,
               article_date: date | None, today: date) -> None:
    dates = found.dates
    i = bisect_left(found.date_starts, a.end)
    after = dates[i] if i < len(dates) else None
    chosen: DateMention | None = None
    if after is not None and _DATE_AFTER.fullmatch(s, a.end, after.start):
        chosen = after
        a.used_date_end = after.end
    else:
        if found.relative_in(a.end, found.clause_end(a.end)) or (  # a relative day before it, in its clause
                prev is not None and _RELATIVE.search(s, max(lo, found.segment(a)[0]), a.start)):
            a.why_date = "a relative date (a week earlier, last month, 上周 ...): which day?"
            return
        used = prev.used_date_end if prev else -1
        before = found.dates_in(max(lo, used), a.start)
        distinct = {(d.year, d.month, d.day, d.today) for d in before}
        if len(distinct) > 1:
            a.why_date = "ambiguous date: more than one date before the price"
            return
        if before:
            chosen = before[-1]
        elif prev is not None and (prev.when or prev.why_date):
            if prev.when is None and found.last_when is not None and found.semicolon_between(prev.end, a.start):
                a.when, a.why_date = found.last_when, ""  # after "; " the sentence's date, not a relative one's
                return
            a.when, a.why_date = prev.when, prev.why_date
            return
        elif prev is None and dates and all(d.start < a.start for d in dates) and len(
                {(d.year, d.month, d.day, d.today) for d in dates}) == 1:
            chosen = dates[0]
        elif found.context is not None and _takes_heading_date(s, lo, found.clause_end(a.end), found):
            a.when, a.why_date = found.context.when, found.context.why
            return
        else:
            a.why_date = "no date for the price in its sentence"
            return
    a.when, a.why_date = resolve_date(chosen, article_date, today)


def _takes_heading_date(s: str, lo: int, hi: int, found: _Found) -> bool:
    """Whether a price whose clause (``lo`` to ``hi``) states no day takes its heading's: not when the clause
    states a date it does not take, a period ("in November", "Q3 average") or a relative day ("last week")."""
    return not (found.dates_in(lo, hi) or _RELATIVE.search(s, lo, hi) or PERIOD.search(s, lo, hi))


def _read_kind(a: _Amount, s: str, lo: int, found: _Found) -> None:
    i = bisect_right(found.keyword_ends, a.start) - 1  # the last word before it (words do not overlap)
    last = found.keywords[i][2] if i >= 0 and found.keywords[i][0] >= lo else None
    after = _AFTER_CHANGE.match(s, a.end)
    if after is not None and s[after.end() - 1] in "+-" and _AMOUNT.match(s, after.end()):
        after = None  # "42.2万元/吨 +0.3万元/吨": the signed amount after it is the change, itself a price
    if last or (a.start > 0 and s[a.start - 1] in "+-−") or after is not None:
        a.kind = "change"
    if found.forecasts and found.in_clause(found.forecasts, a):  # a forecast word before it, or in its clause
        a.kind = "forecast"
    elif _EX_VAT.search(s, lo, a.start) or _EX_VAT.match(s, a.end):
        a.kind = "ex-vat"


def _quotes(s: str, amounts: list[_Amount], ahash: str, source: str) -> tuple[list[Quote], list[Skipped]]:
    quotes: list[Quote] = []
    whys: list[str] = []
    merged: set[int] = set()
    sentence_hash: hashlib._Hash | None = None
    prices = [a for a in amounts if a.kind == "price"]
    for i, a in enumerate(prices):  # a range and its average (before or after it): one quote
        if a.high is None:
            continue
        for j in (i + 1, i - 1):
            if 0 <= j < len(prices) and j not in merged:
                b = prices[j]
                if (b.high is None and b.product is a.product and b.when == a.when and b.unit == a.unit
                        and a.value <= b.value <= a.high):
                    b.high, b.low = a.high, a.value
                    merged.add(i)
                    break
    for i, a in enumerate(prices):
        if i in merged:
            continue
        why = _why_not(a)
        if why:
            whys.append(why)
            continue
        assert a.product is not None and a.when is not None
        factor = a.unit.factor_to(a.product.unit)
        low = a.low
        price = _clean(a.value * factor)
        lo_v = _clean(low * factor) if low is not None else None
        hi_v = _clean(a.high * factor) if a.high is not None and low is not None else None
        typical = a.product.typical
        if typical and not typical[0] <= price <= typical[1]:
            whys.append(f"{format_price(price)} {a.product.unit} is outside the usual range of {a.product.name} "
                        f"({format_price(typical[0])}-{format_price(typical[1])}): a unit slip?")
            continue
        sentence_hash = sentence_hash or _sentence_hash(ahash, s)
        quotes.append(Quote(a.product.name, price, str(a.product.unit), a.when, s,
                            _quote_id(sentence_hash, a.product.name, a.when), source, lo_v, hi_v))
    for a in amounts:
        if a.kind == "forecast":
            whys.append("a forecast, not a price")
        elif a.kind == "change" and not quotes:
            whys.append("a change, not a price")
        elif a.kind == "ex-vat":
            whys.append("a price without VAT: quotes here are domestic prices with VAT")
    if whys:
        return quotes, [Skipped(s, "; ".join(dict.fromkeys(whys)))]
    return quotes, []


def _why_not(a: _Amount) -> str:
    if a.why_number:
        return a.why_number
    if a.unit.currency != "CNY":
        return "a price in USD: an export (FOB) price, another series than the domestic one"
    if a.product is None:
        return a.why_product
    if a.when is None:
        return a.why_date
    if a.high is not None and a.low is None:
        return "a range without its average price"
    return ""


def events_for(text: str, catalog: Catalog, article_date: date | None, tz: str, *, source: str = "article",
               url: str | None = None) -> tuple[dict[str, Any], list[Quote], list[Skipped]]:
    """The article as a news event (headline: its title or first line, its first MAX_HEADLINE characters; body: its
    text, left out when longer than MAX_BODY: an event is never cut to fit), and its quotes."""
    article = read_article(text)
    when = article_date or article_date_of(article)
    quotes, skipped = _extract(article, catalog, when, tz, source)
    news: dict[str, Any] = {"type": "news", "headline": article.headline[:MAX_HEADLINE] or "(untitled article)",
                            "source": source, "id": "art-" + article_hash(article.text)[:32]}
    if len(article.text) <= MAX_BODY:
        news["body"] = article.text
    if url:
        news["url"] = url
    if when is not None:
        news["published_at"] = when.isoformat()
    return news, quotes, skipped


def iter_events(news: dict[str, Any], quotes: list[Quote]) -> Iterator[dict[str, Any]]:
    yield news
    for q in quotes:
        yield q.event()
