# ruff: noqa: RUF001  (Chinese and typographic punctuation is what this module reads)
"""The words and numbers of market articles, for ``alerts.ingest.articles``: amounts (a number or range with a
currency per mass, ``42.6-42.9万元/吨``), the change, price and forecast words before them, and the catalog's
product names and bare elements as patterns. Only patterns and scanning; what a sentence means is decided in
``alerts.ingest.articles``."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date

from alerts.catalog import Catalog, Product, product_key
from alerts.ingest.article_text import DateMention, lower_in_place
from alerts.units import Unit

# ------------------------------------------------------------------------------------------ amounts

_NUM = r"(?<![\d.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_RANGE = rf"(?P<n1>{_NUM})(?:\s*(?:-|–|—|~|～|至)\s*(?P<n2>{_NUM}))?"
_MASS_EN = r"(?:metric\s+)?(?P<mass>mt|t|tonnes?|tons?|kg|kilograms?|kilos?)\b"
_AMOUNT = re.compile(
    rf"(?=[0-9rRcCuU$¥￥])(?:{_RANGE}\s*(?:(?P<cur>yuan|rmb|cny|usd|us\$|dollars?)\s*(?:/|per\s+|a\s+)\s*{_MASS_EN}"
    rf"|(?P<wan>万|千)?(?P<ccur>元|美元)\s*(?:/|每)\s*(?P<cmass>吨|公斤|千克|kg|t\b))"
    rf"|(?P<pcur>rmb|cny|usd|us\$|\$|¥|￥)\s*(?P<p1>{_NUM})(?:\s*(?:-|–|—|~)\s*(?P<p2>{_NUM}))?\s*"
    rf"(?:/|per\s+|a\s+)\s*(?:metric\s+)?(?P<pmass>mt|t|tonnes?|tons?|kg|kilograms?|kilos?)\b)")
# A currency amount with no mass: "444,000 yuan", "RMB 444,000", "44.4万元" (a price? of what quantity?).
_BARE_MONEY = re.compile(rf"(?:{_NUM})\s*(?:yuan|rmb|万?元)(?!\s*(?:/|per|每|a\s+t))|(?:rmb|cny|¥)\s*{_NUM}")

_CURRENCIES = {"yuan": "CNY", "rmb": "CNY", "cny": "CNY", "元": "CNY", "¥": "CNY", "￥": "CNY",
               "usd": "USD", "us$": "USD", "$": "USD", "dollar": "USD", "dollars": "USD", "美元": "USD"}
_MASSES = {"mt": "t", "t": "t", "tonne": "t", "tonnes": "t", "ton": "t", "tons": "t", "吨": "t",
           "kg": "kg", "kilogram": "kg", "kilograms": "kg", "kilo": "kg", "kilos": "kg", "公斤": "kg", "千克": "kg"}


@dataclass
class _Amount:
    start: int
    end: int
    value: float
    high: float | None  # a range: value is its low end
    unit: Unit
    product: Product | None = None
    why_product: str = ""
    when: date | None = None
    why_date: str = ""
    why_number: str = ""  # "420,000 and 425,000 yuan/mt": two numbers, one unit
    kind: str = "price"  # price | change | forecast
    used_date_end: int = -1  # the end of the date written right after it, if any
    low: float | None = None  # the low end of the range merged into this average


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _amounts(s: str, dates: list[DateMention]) -> list[_Amount]:
    out = []
    date_starts = [d.start for d in dates]
    for m in _AMOUNT.finditer(s):
        if m.group("pcur"):
            cur, mass = m.group("pcur").lower(), m.group("pmass").lower()
            lo, hi = _num(m.group("p1")), (_num(m.group("p2")) if m.group("p2") else None)
            scale = 1.0
        else:
            lo, hi = _num(m.group("n1")), (_num(m.group("n2")) if m.group("n2") else None)
            if m.group("cur"):
                cur, mass = m.group("cur").lower(), m.group("mass").lower()
                scale = 1.0
            else:
                cur, mass = m.group("ccur"), m.group("cmass").lower()
                scale = _SCALES.get(m.group("wan") or "", 1.0)
        unit = Unit(_CURRENCIES[cur], _MASSES[mass])
        a = _Amount(m.start(), m.end(), lo * scale, hi * scale if hi is not None else None, unit)
        tail = s[max(0, m.start() - 6):m.start()]
        pair = _PAIRED.search(s, max(0, m.start() - 60), m.start()) if _PAIR_CUE.search(tail) else None
        if pair is not None and _inside(dates, date_starts, pair.start("first")):
            pair = None  # "on December 31 and 410,000 yuan/mt": the day of a date
        if hi is None and pair is not None:
            if pair.group("between"):  # "between 420,000 and 425,000 yuan/mt": a range
                a.start, a.value, a.high = pair.start(), _num(pair.group("first")) * scale, a.value
            else:
                a.why_number = "two numbers before one unit: which is the price?"
        elif hi is None:  # "from 425,000 to 430,000 yuan/mt", "16.2万-16.5万元/吨": the high end of a range
            r = _RANGE_START.search(s, max(0, m.start() - 40), m.start())
            if (r is not None and not _inside(dates, date_starts, r.start("first"))
                    and not _CHANGE_BEFORE.search(s, max(0, r.start() - 24), r.start())):  # "rose 5,000 to"
                a.start, a.value, a.high = r.start(), _num(r.group("first")) * scale, a.value
        out.append(a)
    return out


def _inside(dates: list[DateMention], starts: list[int], pos: int) -> bool:
    """Whether ``pos`` is inside one of ``dates`` (sorted, not overlapping; ``starts`` their starts)."""
    i = bisect_right(starts, pos) - 1
    return i >= 0 and pos < dates[i].end


_SCALES = {"万": 10_000.0, "千": 1_000.0}
#: A bare number and a range word right before an amount: its low end ("from 425,000 to", "16.2万-").
_RANGE_START = re.compile(rf"(?:\bfrom\s+)?(?P<first>{_NUM})\s*(?:[万千]\s*)?(?:-|–|—|~|～|至|\bto\b)\s*$")
_PAIR_CUE = re.compile(r"(?:and|or|&|和|与|或|、|/)\s*$")
_PAIRED = re.compile(rf"(?P<between>\bbetween\s+|介于)?(?P<first>{_NUM})\s*(?:and|or|&|和|与|或|、|/)\s*$")


# ------------------------------------------------------------------------------------------- words

def _first(*alternations: str) -> str:
    """The first characters (both cases) of the words of regex alternations such as ``up|down|rise[sn]?``."""
    chars = {w[0] for alt in alternations for w in alt.split("|") if w}
    return re.escape("".join(sorted(chars | {c.upper() for c in chars})))


_CHANGE_EN = (r"up|down|rose|rise[sn]?|rising|fell|fall(?:en|s|ing)?|gain(?:ed|s|ing)?|lost|loss(?:es)?|"
              r"losing|drop(?:ped|s|ping)?|climb(?:ed|s)?|add(?:ed|ing|s)?|shed(?:ding)?|increase[sd]?|decrease[sd]?|"
              r"jump(?:ed|s)?|slid|slip(?:ped|s)?|declin(?:e|ed|es|ing)|by|change[sd]?|premium|discount|spread|"
              r"difference|gap|surge[sd]?|plunge[sd]?|rebound(?:ed|s)?|soar(?:ed|s)?|tumbl(?:ed|es)|dip(?:ped|s)?")
_PRICE_EN = (r"to|at|was|were|is|are|averag(?:e|ed|es|ing)|stood|quoted|assessed|reached|hit|closed|settled|from|"
             r"around|about|price[sd]?|trad(?:ed|ing)|offered|sold|bought")
_CHANGE_CN = r"上涨|下跌|上调|下调|上扬|下滑|回落|反弹|走高|走低|涨幅|跌幅|价差|差价|环比|同比|增加|减少|涨|跌|降"
#: A change word right before a number: "rose 5,000 to 440,000 yuan/mt" is a change and a price, no range.
_CHANGE_BEFORE = re.compile(rf"(?:\b(?:{_CHANGE_EN})|(?:{_CHANGE_CN}))\s*$")
_PRICE_CN = r"报价|报|为|至|到|均价|收于|达到|达|价格"
_KEYWORD = re.compile(rf"(?=[{_first(_CHANGE_EN, _PRICE_EN, _CHANGE_CN, _PRICE_CN)}])"
                      rf"(?:\b(?P<ce>{_CHANGE_EN})\b|\b(?P<pe>{_PRICE_EN})\b|(?P<pc>{_PRICE_CN})|(?P<cc>{_CHANGE_CN}))")
# Checked on the text right after an amount (its date aside): "3,500 yuan/mt higher".
_AFTER_CHANGE = re.compile(r"\s*(?:higher|lower|more|less|above|below|up|down|on the (?:day|week|month))\b"
                           r"|\s*[(（]?\s*[+-]")  # used with .match(s, pos)
_FORECAST = re.compile(r"(?=[efpolmcwsta预或有将可料估展目])"
                       r"(?:\b(?:expect\w*|forecast\w*|predict\w*|project(?:ed|ion|ions|s)|outlook|likely|"
                       r"(?<!\d\s)(?<!\d)may(?!\s*\d)|might|could|would|will|should|target\w*|estimat\w*|anticipat\w*|"
                       r"poised|set to|seen (?:at|rising|falling|reaching))\b"
                       r"|预计|预期|或将|有望|将|预测|可能|料将|估计|展望|目标)")
_DIGIT = re.compile(r"\d")
_EX_VAT = re.compile(r"\s*\(?(?:ex-vat|excluding vat|excl\. vat|without vat|net of vat|before vat|vat excluded)"
                     r"|不含税|除税")
_RELATIVE = re.compile(r"\b(?:(?:a|one|two|three|four|\d+) (?:day|week|month|quarter|year)s? "
                       r"(?:earlier|before|ago|prior)"
                       r"|(?:last|previous|prior|the previous|the prior) (?:day|session|week|month|quarter|year|"
                       r"monday|tuesday|wednesday|thursday|friday)|yesterday|earlier|a year ago|year-ago)\b"
                       r"|上周|上月|上旬|中旬|下旬|去年|前一|年初|月初|周初|昨日|昨天|此前|前期|同期|节前|节后")
_MONEY_CUE = re.compile(r"元|yuan|rmb|cny|usd|\$|¥|￥|dollar")
_RESPECTIVELY = re.compile(r"\brespectively\b|分别")
_CLAUSE = re.compile(r"[,，;；:：]")
_SEMICOLON = re.compile(r"[;；]")
_DATE_AFTER = re.compile(r"[\s,，(（]*(?:on|as of|as at|as on|at the close on|at close on|for|截至|于)?"
                         r"\s*(?:the\s+)?")  # used with .fullmatch(s, pos, endpos): no copy of the text

_BARE_EN = ("praseodymium-neodymium", "praseodymium neodymium", "pr-nd", "prnd", "ndpr", "nd-pr", "praseodymium",
            "neodymium", "dysprosium", "terbium", "lanthanum", "cerium", "gadolinium", "holmium", "didymium")
_BARE_CN = ("镨钕", "镨", "钕", "镝", "铽", "镧", "铈", "钆", "钬")
_BARE = re.compile(r"(?=[pnldtcgh镨钕镝铽镧铈钆钬])(?:(?<![a-z])(?:"
                   + "|".join(re.escape(b).replace(r"\-", "[-\\s]?").replace(r"\ ", "[-\\s]?") for b in _BARE_EN)
                   + r")(?![a-z])|" + "|".join(_BARE_CN) + ")")


def _alias_pattern(name: str) -> str:
    parts = [re.escape(p) for p in re.split(r"[\s\-_]+", lower_in_place(name.strip())) if p]
    body = r"[\s\-‐–_]*".join(parts)
    if name.isascii():
        return rf"(?<![A-Za-z0-9]){body}(?:s|es)?(?![A-Za-z0-9])"
    return body


_PRODUCT_RE: dict[tuple[str, ...], tuple[re.Pattern[str], dict[str, Product]]] = {}


def _product_regex(catalog: Catalog) -> tuple[re.Pattern[str], dict[str, Product]]:
    products = list(catalog.products.values())
    names = tuple(sorted({n for p in products for n in p.all_names}, key=lambda n: (-len(n), n)))
    cached = _PRODUCT_RE.get(names)
    if cached is not None:
        return cached
    by_key = {product_key(n): p for p in products for n in p.all_names}
    first = {n[0] for n in names}
    first |= {c.upper() for c in first} | {c.lower() for c in first}
    pattern = re.compile(f"(?=[{re.escape(''.join(sorted(first)))}])(?:" + "|".join(_alias_pattern(n) for n in names)
                         + ")")
    _PRODUCT_RE.clear()
    _PRODUCT_RE[names] = (pattern, by_key)
    return pattern, by_key


def _compatible(bare: str, product: Product) -> bool:
    b = product_key(bare)
    return any(b in product_key(n) for n in product.all_names)
