# ruff: noqa: RUF001, RUF002  (Chinese punctuation is what this module reads)
"""The context a reader carries from line to line of a market article, for ``alerts.ingest.articles``.

A date in a title or a heading applies to the lines after it ("SMM rare earth prices, December 7", then
"Pr-Nd oxide averaged 444,000 yuan/t"; "12月7日稀土价格", then "氧化镨钕 均价44.4万元/吨"), until a later
heading gives another date, or one that dates nothing ("Weekly averages, December 1-5", "上周价格回顾",
"Pr-Nd outlook": the context is dropped). A heading is a line by itself, without a price or an end stop,
that names prices (prices, quotes, assessments, 价格, 报价, 行情 ...) with one day, or is a bare day
("December 8:", "12月8日"). A byline is not one: "Published 8 January 2025", "Date: 2025-11-20", a line
that is only a full date with its year, a title such as "稀土周报（2025年1月6日）" that names no prices.

A price takes the heading's date only when its clause states no day, period or relative day of its own:
"Pr-Nd oxide averaged 560,000 yuan/t in November", "Q3 average", "the 2025 average", "in the week to
December 5", "上周", "11月月均价" keep theirs (and are skipped, as before: which day?)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from alerts.ingest.article_text import _MONTH_RE, date_mentions, resolve_date
from alerts.ingest.article_words import _AMOUNT, _FORECAST, _RELATIVE

#: Longer lines are prose, not headings.
HEADING_MAX = 120
_STOP_END = re.compile(r"[.!?。！？…]\s*$")
_BYLINE = re.compile(r"\b(?:published|updated|posted|date|dated|issued|released|by)\b"
                     r"|发布|更新|日期|时间|来源|作者|编辑")
_HEADING_WORD = re.compile(r"\b(?:prices?|pricing|quotes?|quotations?|assessments?|assessed|closing|close|"
                           r"settlements?|spot|averages?)\b|价|行情")
#: A period or a kind of average rather than a day: a month without its day, a year, a quarter, a week.
PERIOD = re.compile(rf"\b(?:{_MONTH_RE})\b|\b20\d\d\b|\b(?:q[1-4]|h[12]|ytd|year-to-date|weekly|monthly|quarterly|"
                    r"annual|annually|yearly|week|month|quarter|year|average of)\b"
                    r"|\d{1,2}\s*月(?!\s*\d{1,2}\s*[日号])|月均|周均|年均|月度|年度|季度|本周|本月|今年|全年|半年"
                    r"|\d{4}\s*年(?!\s*\d{1,2}\s*月)")
_RANGE_AFTER = re.compile(r"\s*(?:-|–|—|~|～|至|to\b|through\b|until\b)\s*\d")
_WORDLESS = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Context:
    """The date a heading gives the lines after it; ``when`` None with ``why`` when it gives none usable
    ("a date without a year in an article without a date (give --date)")."""

    when: date | None
    why: str


def heading_context(low: str, current: Context | None, article_date: date | None, today: date) -> Context | None:
    """The context after the line ``low`` (lower case, a whole line without a price): the date it gives as a
    heading, None when it is a heading that dates nothing, else ``current`` unchanged."""
    if len(low) > HEADING_MAX or _STOP_END.search(low) or _AMOUNT.search(low):
        return current
    dates = date_mentions(low)
    pieces, last = [], 0
    for d in dates:
        pieces += [low[last:d.start], " "]
        last = d.end
    blanked = "".join([*pieces, low[last:]])
    dates_nothing = bool(_RELATIVE.search(low) or PERIOD.search(blanked) or _FORECAST.search(low))
    if not dates:
        return None if dates_nothing and _HEADING_WORD.search(low) else current
    if _BYLINE.search(blanked):
        return current
    bare = not _WORDLESS.sub("", blanked)
    if bare and all(d.year is not None for d in dates):
        return current  # "March 12, 2025" under the title: when the article was published
    days = {(d.year, d.month, d.day, d.today) for d in dates}
    if dates_nothing or len(days) != 1 or any(_RANGE_AFTER.match(low, d.end) for d in dates):
        return None
    if not (bare or _HEADING_WORD.search(blanked)):
        return current
    when, why = resolve_date(dates[0], article_date, today)
    return Context(when, why)
