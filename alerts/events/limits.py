"""What one event may hold (README "Limits"): the size of a line, its nesting, the length of each field, how far
ahead of now an event may be dated and how old a rate may convert a quote. A line or field beyond them is refused
with its reason; nothing is truncated."""

from __future__ import annotations

from alerts.settings import Settings

#: Bytes of one JSON Lines line (without its line break), checked before it is decoded.
MAX_LINE_BYTES = 2 * 1024 * 1024
#: Nesting of arrays and objects in one line; an event needs 2 (the object and its tags).
MAX_DEPTH = 16
#: Characters of each text field, after surrounding white space is stripped.
MAX_ID = 200
MAX_SOURCE = 100
MAX_PRODUCT = 100
MAX_UNIT = 32
MAX_PAIR = 32
MAX_TIME = 64
MAX_HEADLINE = 1_000
MAX_BODY = 200_000
MAX_URL = 2_048
MAX_TAGS = 50
MAX_TAG = 100
#: A vendor notice (``{"type": "notice"}``): its text, and how many products it may name.
MAX_NOTICE_TEXT = 20_000
MAX_NOTICE_PRODUCTS = 50
#: The defaults of ``ALERTS_MAX_FUTURE_DAYS`` (a quote or article dated further ahead of now is refused) and
#: ``ALERTS_FX_MAX_AGE_DAYS`` (a quote in another currency is converted with a rate at most this much older), for
#: callers without settings (the Python API, tests). Read from ``Settings``, their one home: every command and
#: role passes its settings' values, so a backtest and the live service judge alike.
DEFAULT_MAX_FUTURE_DAYS: float = Settings.model_fields["max_future_days"].default
DEFAULT_FX_MAX_AGE_DAYS: float = Settings.model_fields["fx_max_age_days"].default

#: Every limit by what it limits, for the README table and the tests.
LIMITS: dict[str, int] = {
    "line (bytes)": MAX_LINE_BYTES, "nesting depth": MAX_DEPTH, "id": MAX_ID, "source": MAX_SOURCE,
    "product": MAX_PRODUCT, "unit": MAX_UNIT, "pair": MAX_PAIR, "as_of, published_at": MAX_TIME,
    "headline": MAX_HEADLINE, "body": MAX_BODY, "url": MAX_URL, "tags (count)": MAX_TAGS, "each tag": MAX_TAG,
    "text (notice)": MAX_NOTICE_TEXT, "products (notice, count)": MAX_NOTICE_PRODUCTS,
}
