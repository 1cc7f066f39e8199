"""Fetch one web page (a market article) with httpx: a timeout always, a size limit, the charset it declares."""

from __future__ import annotations

import httpx

from alerts.errors import AlertsError

#: Bytes read at most from a page; a longer one is refused, not cut.
MAX_PAGE_BYTES = 5 * 1024 * 1024
TIMEOUT_SECONDS = 15.0


class FetchError(AlertsError):
    """An article URL that could not be read (one line: why)."""


def fetch_text(url: str, *, timeout: float = TIMEOUT_SECONDS, max_bytes: int = MAX_PAGE_BYTES) -> str:
    """The text of ``url``. Raises FetchError (status, network error, timeout, too large) with the reason."""
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5) as client, \
                client.stream("GET", url, headers={"Accept": "text/html, text/plain;q=0.9, */*;q=0.1"}) as resp:
            if resp.status_code != 200:
                raise FetchError(f"{url}: HTTP {resp.status_code}")
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(f"{url}: {int(declared):,} bytes, more than the limit of {max_bytes:,}")
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(f"{url}: more than the limit of {max_bytes:,} bytes")
                chunks.append(chunk)
            body = b"".join(chunks)
            encoding = resp.charset_encoding or "utf-8"
    except httpx.TimeoutException:
        raise FetchError(f"{url}: no answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {exc}") from None
    try:
        return body.decode(encoding, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")
