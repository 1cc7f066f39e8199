# ruff: noqa: RUF001  (Chinese punctuation is what this module reads)
"""The text of a market article: HTML stripped (stdlib ``html.parser``), headline, paragraphs, sentences, and
the dates written in it (English and Chinese), resolved against the article's date. Used by ``articles``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser

# --------------------------------------------------------------------------------------------- text


_BLOCK_TAGS = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
                         "section", "article", "header", "footer", "title", "blockquote", "pre", "hr", "dd", "dt"})
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head"})


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self.published: str | None = None
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "meta":
            a = dict(attrs)
            if (a.get("property") or a.get("name") or "").lower() in ("article:published_time", "date", "pubdate"):
                self.published = self.published or a.get("content")
        elif tag == "time" and self.published is None:
            self.published = dict(attrs).get("datetime")
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP_TAGS and self._skip:
            self._skip -= 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skip:
            self.parts.append(data)


def looks_like_html(text: str) -> bool:
    head = text[:2000].lower()
    return "<html" in head or "<!doctype html" in head or bool(re.search(r"<(p|div|body|h1|article)[\s>]", head))


@dataclass(frozen=True)
class Article:
    headline: str
    text: str  # paragraphs separated by blank lines; the headline is the first
    published: str | None = None  # a date the page states in its markup (HTML), if any


def read_article(raw: str) -> Article:
    """Plain text as it is; HTML with its tags stripped (scripts and styles dropped), sentences kept.
    The headline is the HTML <title> (else the first block), or the first line of plain text."""
    if looks_like_html(raw):
        p = _TextParser()
        p.feed(raw)
        p.close()
        blocks = [" ".join(b.split()) for b in re.split(r"\n\s*\n", "".join(p.parts))]
        blocks = [b for b in blocks if b]
        title = " ".join("".join(p.title).split())
        if title and blocks and blocks[0] == title:  # the <h1> repeats the <title>
            blocks = blocks[1:]
        if not title and blocks:
            title, blocks = blocks[0], blocks[1:]
        return Article(title, "\n\n".join([title, *blocks]) if title else "", p.published)
    lines = raw.replace("\r\n", "\n").replace("\r", "\n").strip().split("\n")
    title = " ".join(lines[0].split())
    blocks = ["\n".join(" ".join(line.split()) for line in b.split("\n") if line.strip())
              for b in re.split(r"\n\s*\n", "\n".join(lines[1:]))]
    return Article(title, "\n\n".join([title, *[b for b in blocks if b]]) if title else "")


# A semicolon is not a sentence end: the clause after it inherits its sentence's product and date.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^a-z0-9,])|(?<=[。！？])")
_STOP_END = re.compile(r"[.!?。！？…]$")
_CONTINUE_END = re.compile(r"[,，、:：;；(（\[/&+\-–—]$")
#: The last word of a line that cannot end a sentence: the line is wrapped prose ("... was assessed at").
_FUNCTION_END = re.compile(r"(?<![A-Za-z])(?:and|or|but|nor|the|a|an|of|on|at|to|from|in|by|for|with|was|were|is|"
                           r"are|be|been|as|than|between|per|about|around|near|while|its|their|into|over|under|"
                           r"versus|vs|against|after|before|since|until|amid|said)$")
_UNIT_END = re.compile(r"(?<![A-Za-z])(?:mt|t|kg|tonnes?|tons?|kilos?|kilograms?)$")
_UNIT_START = re.compile(r"万|千|元|美元|%|/")
#: In a paragraph that ends with a full stop, a line at least this long that ends in a word is wrapped prose
#: even before a capital ("Analysts forecast / Pr-Nd oxide ..."); shorter lines, and the lines of a paragraph
#: without a final stop (a list), are list lines, headings and table rows: each a sentence.
_WRAP_WIDTH = 70


def _continues(line: str, following: str, prose: bool) -> bool:
    """Whether ``following`` continues the sentence of ``line`` (prose wrapped at a line break) rather than
    starting one: a line is a sentence unless it ends inside one. ``prose``: the paragraph ends with a full
    stop (wrapped sentences), rather than being a list of lines without one."""
    if _STOP_END.search(line):
        return False
    first = following[0]
    if _CONTINUE_END.search(line) or ("a" <= first <= "z") or _FUNCTION_END.search(line):
        return True
    if line[-1].isdigit() and _UNIT_START.match(following):
        return True
    return (prose and len(line) >= _WRAP_WIDTH and "a" <= line[-1].lower() <= "z" and not _UNIT_END.search(line)
            and first.isascii() and first.isalnum())


def sentence_lines(paragraph: str) -> list[tuple[str, bool]]:
    """The sentences of a paragraph, each with whether it is a whole line by itself (a heading, a list line or a
    table row can be). A line is a sentence: lines are joined only where prose is wrapped (``_continues``)."""
    lines: list[str] = []
    prose = bool(_STOP_END.search(paragraph))
    for line in paragraph.split("\n"):
        if not line:
            continue
        if lines and _continues(lines[-1], line, prose):
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
    out: list[tuple[str, bool]] = []
    for line in lines:
        parts = [s.strip() for s in _SENTENCE_END.split(line) if s.strip()]
        out.extend((part, len(parts) == 1) for part in parts)
    return out


def sentences(paragraph: str) -> list[str]:
    return [s for s, _ in sentence_lines(paragraph)]


# -------------------------------------------------------------------------------------------- dates

_MONTHS = {m: i for i, names in enumerate([
    ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
    ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
    ("dec", "december")], 1) for m in names}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE = re.compile(  # the lookahead of first characters lets the engine skip most positions: 3x faster
    rf"(?=[0-9今jfmasondtJFMASONDT])(?:(?P<iso>(?P<iy>20\d\d)[-/.](?P<im>\d{{1,2}})[-/.](?P<id>\d{{1,2}}))(?!\d)"
    rf"|(?P<cn>(?:(?P<cy>20\d\d)\s*年\s*)?(?P<cm>\d{{1,2}})\s*月\s*(?P<cd>\d{{1,2}})\s*[日号])"
    rf"|(?P<md>\b(?P<mm>{_MONTH_RE})\.?\s+(?P<mdd>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<my>20\d\d)\b)?)"
    rf"|(?P<dm>\b(?P<dmd>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<dmm>{_MONTH_RE})\b\.?(?:,?\s+(?P<dmy>20\d\d)\b)?)"
    rf"|(?P<today>\btoday\b|今日|今天))")


@dataclass(frozen=True)
class DateMention:
    start: int
    end: int
    year: int | None
    month: int
    day: int
    today: bool = False


def date_mentions(s: str) -> list[DateMention]:
    out = []
    for m in _DATE.finditer(s):
        if m.group("today"):
            out.append(DateMention(m.start(), m.end(), None, 0, 0, True))
            continue
        if m.group("iso"):
            y, mo, d = int(m.group("iy")), int(m.group("im")), int(m.group("id"))
        elif m.group("cn"):
            y = int(m.group("cy")) if m.group("cy") else None  # type: ignore[assignment]
            mo, d = int(m.group("cm")), int(m.group("cd"))
        elif m.group("md"):
            y = int(m.group("my")) if m.group("my") else None  # type: ignore[assignment]
            mo, d = _MONTHS[m.group("mm").lower()], int(m.group("mdd"))
        else:
            y = int(m.group("dmy")) if m.group("dmy") else None  # type: ignore[assignment]
            mo, d = _MONTHS[m.group("dmm").lower()], int(m.group("dmd"))
        out.append(DateMention(m.start(), m.end(), y, mo, d))
    return out


def article_date_of(article: Article) -> date | None:
    """The article's own date: one in its markup, else the first full date (with a year) in its first lines."""
    if article.published:
        try:
            return date.fromisoformat(article.published[:10])
        except ValueError:
            pass
    head = "\n".join(article.text.split("\n\n")[:4])[:600]
    for d in date_mentions(lower_in_place(head)):
        if d.year is not None:
            try:
                return date(d.year, d.month, d.day)
            except ValueError:
                continue
    return None


def resolve_date(d: DateMention, article_date: date | None, today: date) -> tuple[date | None, str]:
    if d.today:
        return (article_date, "") if article_date else (None, "'today' in an article without a date (give --date)")
    year = d.year
    if year is None:
        if article_date is None:
            return None, "a date without a year in an article without a date (give --date)"
        year = article_date.year - (1 if d.month > article_date.month else 0)
    try:
        when = date(year, d.month, d.day)
    except ValueError:
        return None, f"no such date: {year}-{d.month:02d}-{d.day:02d}"
    limit = article_date or today
    if when > limit:
        return None, f"dated {when} after the article's date {limit} (a forecast?)"
    return when, ""


def lower_in_place(s: str) -> str:
    """``s`` in lower case, each character in its place: every pattern here is written in lower case and
    matched without IGNORECASE (faster), and positions in the lowered text are positions in ``s``."""
    low = s.lower()
    return low if len(low) == len(s) else s.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
