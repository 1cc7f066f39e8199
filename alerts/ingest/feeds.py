"""One poll of a vendor feed: fetch it with httpx (a timeout always, conditional requests, a size limit) and
turn its body into event objects for the one publishing path (``alerts.events.parse_objects``).

- ``json``: the document is a list of items (or ``items: data.prices`` says where the list is; one object is one
  item). With ``map:`` or ``defaults:`` each item is a price quote: ``map`` names the item's field for a column
  (``price: avg``; ``price: quote.avg`` reaches into an object), a column not mapped is read from the field of its
  own name, ``defaults`` gives constants (``unit: CNY/t``). Without either, items are events as ``alerts publish``
  takes them (``{"type": "price" | "news" | "fx", ...}``).
- ``csv``: a header row, then one quote per row, with ``map`` and ``defaults`` as for json.
- ``rss``: RSS 2.0 or Atom, parsed by feedparser from the bytes httpx fetched (feedparser never fetches):
  each item is a news event (title; summary or content as text; link; published or updated time; the guid,
  else the link, as its id).

Redirects are followed here, by hand (at most ``MAX_REDIRECTS``): the source's own ``headers:`` (``X-Api-Key:
${VENDOR_KEY}``, ``Authorization``, whatever it names) go only to the origin (scheme, host, port) of its ``url``;
a redirect to another origin is fetched without them (httpx alone strips only Authorization and cookies).

Numbers written as text (``"444,000"``) are read as numbers in feeds; an item that is not a valid event is
reported by its position (item 3, CSV line 4) with the reason and never costs the others.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import html
import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser  # type: ignore[import-untyped]
import httpx

from alerts.errors import AlertsError
from alerts.events.limits import MAX_BODY, MAX_HEADLINE, MAX_ID
from alerts.ingest.sources import Source

#: Items one poll takes at most: a feed that sends more is refused (a vendor API gone wrong).
MAX_ITEMS = 100_000
#: Longest Retry-After a 429 or 503 may ask for (seconds); a longer one is cut to this.
MAX_RETRY_AFTER = 3600.0
#: Redirects one fetch follows at most.
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_TAG = re.compile(r"<[^>]{0,2000}>")
_SPACE = re.compile(r"\s+")
USER_AGENT = "alerts-feed-poller/1 (+https://github.com/)"


class FeedError(AlertsError):
    """A poll that failed: ``str()`` says why, with the source's url as written (never a secret).
    ``retry_after``: seconds the server asked to wait (429, 503), if it did."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Validators:
    """What the last good answer of a source said, sent back for a conditional request."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Fetched:
    not_modified: bool
    body: bytes
    content_type: str
    validators: Validators


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port): what a browser calls an origin; the scheme's default port when none is given."""
    port = url.port if url.port is not None else {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host.lower(), port


def _headers(src: Source, validators: Validators, own_origin: bool) -> dict[str, str]:
    """A request's headers: the source's own ``headers:`` (secrets) and its validators only to its own origin."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    if own_origin:
        headers.update({k: v.get_secret_value() for k, v in src.headers.items()})
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
    return headers


def fetch(client: httpx.Client, src: Source, validators: Validators) -> Fetched:
    """GET the source's url, following up to ``MAX_REDIRECTS`` redirects by hand (the source's headers only to
    its own origin). 304: ``not_modified``. Raises FeedError (status, timeout, network, too large, redirects)."""
    url = httpx.URL(src.request_url.get_secret_value())
    home = origin(url)
    where = f"GET {src.url}"
    try:
        for _ in range(MAX_REDIRECTS + 1):
            own = origin(url) == home
            with client.stream("GET", url, headers=_headers(src, validators, own), timeout=httpx.Timeout(src.timeout),
                               follow_redirects=False) as resp:
                if resp.status_code in _REDIRECTS:
                    url = _next_url(where, resp, url)
                    continue
                if not own:  # the origin only: the rest of a redirect's URL may echo a secret
                    where += src.redact(f" (redirected to {url.scheme}://{url.netloc.decode('ascii', 'replace')})")
                return _read(src, resp, validators, where)
    except httpx.TimeoutException:
        raise FeedError(f"{where}: no answer within {src.timeout:g} s (timeout:)") from None
    except httpx.HTTPError as exc:
        raise FeedError(src.redact(f"{where}: {type(exc).__name__}: {exc}")) from None
    raise FeedError(f"{where}: more than {MAX_REDIRECTS} redirects")


def _next_url(where: str, resp: httpx.Response, url: httpx.URL) -> httpx.URL:
    """Where a redirect points, resolved against the URL that answered it; FeedError when nowhere usable."""
    location = resp.headers.get("location", "").strip()
    if not location:
        raise FeedError(f"{where}: HTTP {resp.status_code} redirect without a Location")
    try:
        target = url.join(location)
    except httpx.InvalidURL:
        raise FeedError(f"{where}: HTTP {resp.status_code} redirect to an invalid URL") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise FeedError(f"{where}: HTTP {resp.status_code} redirect to something other than an http(s) URL")
    return target


def _read(src: Source, resp: httpx.Response, validators: Validators, where: str) -> Fetched:
    """The answer: 304, an error status, or the body within the source's size and time limits."""
    if resp.status_code == 304:
        return Fetched(True, b"", "", validators)
    if resp.status_code != 200:
        raise FeedError(f"{where}: HTTP {resp.status_code} {resp.reason_phrase}".rstrip(),
                        _retry_after(resp) if resp.status_code in (429, 503) else None)
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > src.max_bytes:
        raise FeedError(f"{where}: {int(declared):,} bytes, more than the limit of {src.max_bytes:,} bytes "
                        "(max_bytes:)")
    chunks: list[bytes] = []
    size = 0
    deadline = time.monotonic() + src.timeout
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > src.max_bytes:
            raise FeedError(f"{where}: more than the limit of {src.max_bytes:,} bytes (max_bytes:)")
        if time.monotonic() > deadline:
            raise FeedError(f"{where}: the body took longer than {src.timeout:g} s (timeout:)")
        chunks.append(chunk)
    got = Validators(resp.headers.get("etag"), resp.headers.get("last-modified"))
    return Fetched(False, b"".join(chunks), resp.headers.get("content-type", ""), got)


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        return max(0.0, min(parsedate_to_datetime(value).timestamp() - time.time(), MAX_RETRY_AFTER))
    except (TypeError, ValueError):
        return None


def items_of(src: Source, fetched: Fetched) -> list[tuple[str, object]]:
    """(where, event object) for each item of the body. Raises FeedError when the body is not a feed at all."""
    if src.kind == "json":
        return list(_json_items(src, fetched.body))
    if src.kind == "csv":
        return list(_csv_items(src, fetched.body))
    return list(_rss_items(src, fetched.body))


def _decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FeedError("the body is not UTF-8 text") from None


def _json_items(src: Source, body: bytes) -> Iterator[tuple[str, object]]:
    try:
        doc = json.loads(_decode_text(body))
    except (ValueError, RecursionError) as exc:
        raise FeedError(f"the body is not JSON ({str(exc)[:120]})") from None
    for i, key in enumerate(src.items):
        if not isinstance(doc, dict) or key not in doc:
            at = ".".join(src.items[:i]) or "the document"
            raise FeedError(f"items: {'.'.join(src.items)}: {at} has no key {key!r}")
        doc = doc[key]
    if isinstance(doc, dict):
        lists = [k for k, v in doc.items() if isinstance(v, list)]
        if lists and not src.items:
            raise FeedError(f"expected a list of items, not an object: say where the list is with items: "
                            f"(its lists: {', '.join(repr(k) for k in lists[:5])})")
        doc = [doc]  # one item
    if not isinstance(doc, list):
        raise FeedError(f"expected a list of items{' at ' + '.'.join(src.items) if src.items else ''}, "
                        f"not {type(doc).__name__}")
    if len(doc) > MAX_ITEMS:
        raise FeedError(f"{len(doc):,} items, more than {MAX_ITEMS:,} in one poll")
    mapped = bool(src.mapping or src.defaults)
    for i, item in enumerate(doc, 1):
        yield f"item {i}", (_quote(src, item) if mapped else item)


def _csv_items(src: Source, body: bytes) -> Iterator[tuple[str, object]]:
    reader = csv.reader(io.StringIO(_decode_text(body), newline=""))
    header: list[str] | None = None
    count = 0
    try:
        for row in reader:
            if header is None:
                if any(c.strip() for c in row):
                    header = [c.strip() for c in row]
                continue
            if not any(c.strip() for c in row):
                continue
            where = f"CSV line {reader.line_num}"
            if len(row) != len(header):
                yield where, _Bad(f"{len(row)} fields, but the header has {len(header)}")
                continue
            count += 1
            if count > MAX_ITEMS:
                raise FeedError(f"more than {MAX_ITEMS:,} rows in one poll")
            yield where, _quote(src, dict(zip(header, row, strict=True)), csv_row=True)
    except csv.Error as exc:
        raise FeedError(f"not CSV at line {reader.line_num}: {exc}") from None
    if header is None:
        raise FeedError("the body is empty (no CSV header)")


class _Bad:
    """An item that cannot be an event at all: parse_objects reports ``reason``."""

    def __init__(self, reason: str):
        self.reason = reason


def bad_reason(item: object) -> str | None:
    return item.reason if isinstance(item, _Bad) else None


def _lookup(item: dict[str, Any], path: str, folded: dict[str, str] | None) -> Any:
    if path in item:
        return item[path]
    if folded is not None:  # CSV headers: case-insensitive
        key = folded.get(path.casefold())
        return item.get(key) if key is not None else None
    value: Any = item
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _quote(src: Source, item: object, csv_row: bool = False) -> object:
    """A price event object from a feed item, by ``map`` and ``defaults``."""
    if not isinstance(item, dict):
        return _Bad(f"expected an object, not {type(item).__name__}")
    folded = {k.casefold(): k for k in item} if csv_row else None
    out: dict[str, Any] = {"type": "price"}
    for col in ("product", "price", "unit", "as_of", "low", "high", "id", "source"):
        value = _lookup(item, src.mapping.get(col, col), folded)
        if value is None or (isinstance(value, str) and not value.strip()):
            value = src.defaults.get(col)
        if value is None:
            continue
        if col in ("price", "low", "high") and isinstance(value, str):
            text = value.strip()
            value = float(text.replace(",", "")) if _NUMBER.fullmatch(text) else text
        elif col == "id" and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        out[col] = value
    out.setdefault("source", src.event_source)
    return out


def _rss_items(src: Source, body: bytes) -> Iterator[tuple[str, object]]:
    parsed = feedparser.parse(body, sanitize_html=True, resolve_relative_uris=False)
    entries = parsed.get("entries") or []
    if not entries and parsed.get("bozo") and not parsed.get("feed"):
        exc = parsed.get("bozo_exception")
        raise FeedError(f"not an RSS or Atom feed ({type(exc).__name__ if exc else 'unreadable'}: "
                        f"{str(exc)[:120] if exc else ''})".rstrip(": )") + ")")
    if not entries and not parsed.get("version"):
        raise FeedError("not an RSS or Atom feed (no channel or feed element)")
    if len(entries) > MAX_ITEMS:
        raise FeedError(f"{len(entries):,} items, more than {MAX_ITEMS:,} in one poll")
    for i, e in enumerate(entries, 1):
        yield f"item {i}", _news(src, e)


def _text(value: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", value))).strip()


def _news(src: Source, e: Any) -> object:
    title = _text(e.get("title") or "")
    link = (e.get("link") or "").strip() or None
    body = ""
    content = e.get("content") or []
    if content and isinstance(content, list):
        body = _text(" ".join(str(c.get("value") or "") for c in content))
    if not body:
        body = _text(e.get("summary") or e.get("description") or "")
    if not title:
        if not body:
            return _Bad("no title and no text")
        title = body[:200]
    ident = (e.get("id") or "").strip() or link
    if not ident:
        return _Bad("no guid/id and no link: the item cannot be told apart from the others")
    stamp = e.get("published_parsed") or e.get("updated_parsed")
    ident = f"{src.name}:{ident}"
    if len(ident) > MAX_ID:
        ident = f"{src.name}:" + hashlib.sha256(ident.encode()).hexdigest()
    out: dict[str, Any] = {"type": "news", "id": ident, "headline": title[:MAX_HEADLINE],
                           "body": body[:MAX_BODY], "source": src.event_source}
    if link:
        out["url"] = link
    if stamp:
        out["published_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(calendar.timegm(stamp)))
    if src.tags:
        out["tags"] = list(src.tags)
    return out
