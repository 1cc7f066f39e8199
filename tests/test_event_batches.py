"""A batch (an HTTP body: one object, an array of objects, or JSON Lines) is split into items, each held to the
limits of a line of ``alerts publish`` (``alerts.events.batch``); problems are bounded to the first few and a count."""

import json

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from alerts.events.batch import Problems, _array_items, body_items
from alerts.events.json_in import deeper_than
from alerts.events.limits import MAX_DEPTH, MAX_LINE_BYTES
from tests.test_events import ANY_LINE

# --- a batch: an HTTP body's items, each held to the limits of a line; problems bounded -----------------------------

#: Texts full of what a scan of an array must not split at: brackets, commas, quotes and escapes inside strings.
TRICKY_TEXT = st.text(alphabet=st.sampled_from(list('ab,[]{}":\\ \n\té\U0001f600')), max_size=8)
ARRAY_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False, allow_infinity=False)
    | TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY_TEXT, inner, max_size=4),
    max_leaves=25,
)
SPACE = st.text(alphabet=st.sampled_from(" \t\r\n"), max_size=3)


@examples(max_examples=500, deadline=None)
@given(st.lists(ARRAY_VALUES, max_size=12), st.lists(SPACE, min_size=4, max_size=4), st.integers(2, 5))
def test_an_arrays_items_are_the_same_split_by_the_scan_as_decoded_at_once(
        values: list[object], spaces: list[str], max_depth: int) -> None:
    """A JSON array body gives its items in order, each refused when it nests deeper than ``max_depth``, whether it
    is decoded at once (a small body) or split at its top-level commas by the scan (a large one)."""
    a, b, c, d = spaces
    body = (a + "[" + b + (c + "," + d).join(json.dumps(v, ensure_ascii=False) for v in values) + a + "]" + b).encode()
    expected_items = [(n, v) for n, v in enumerate(values, 1)
                      if not (isinstance(v, dict | list) and deeper_than(v, max_depth))]
    expected_errors = [(n, f"nested more than {max_depth} levels deep") for n, v in enumerate(values, 1)
                       if isinstance(v, dict | list) and deeper_than(v, max_depth)]
    at_once: list[tuple[int, str]] = []
    assert list(body_items(body, at_once, max_depth=max_depth)) == expected_items
    assert at_once == expected_errors
    scanned: list[tuple[int, str]] = []
    start = body.index(b"[") + 1
    assert list(_array_items(body, start, scanned, MAX_LINE_BYTES, max_depth)) == expected_items
    assert scanned == expected_errors


@examples(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode) | ARRAY_VALUES.map(
    lambda v: json.dumps(v).encode()) | st.lists(ANY_LINE, max_size=5).map(
    lambda lines: b"[" + b",".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"]"))
def test_any_body_gives_items_or_problems_never_an_exception(body: bytes) -> None:
    errors: list[tuple[int, str]] = []
    items = list(body_items(body, errors))
    numbers = [n for n, _ in items] + [n for n, _ in errors]
    assert len(numbers) == len(set(numbers))  # an item is decoded or refused, once
    assert not [r for _, r in errors if "Traceback" in r]
    if body.lstrip(b" \t\r\n").startswith(b"["):  # an array: the scan gives what decoding it at once gives
        scanned: list[tuple[int, str]] = []
        assert list(_array_items(body, body.index(b"[") + 1, scanned, MAX_LINE_BYTES, MAX_DEPTH)) == items
        assert scanned == errors


@pytest.mark.parametrize("body,reasons", [
    (b"[]", []), (b" [ ] ", []),
    (b"[1,]", [(2, "not valid JSON: Input data was truncated")]),
    (b"[1}", [(1, "not valid JSON: a '}' where the array's closing ']' should be")]),
    (b"[1] x", [(2, "not valid JSON: there is more after the array's closing ']'")]),
    (b'[1, "a]', [(2, "not valid JSON: the body ends inside the array (a ']' or a '\"' is missing)")]),
    (b"[1, 2", [(2, "not valid JSON: the body ends inside the array (a ']' or a '\"' is missing)")]),
    (b'[1, "\xff"]', [(2, "not UTF-8 text: invalid start byte at byte 1")]),
])
def test_a_broken_array_names_the_item_at_fault(body: bytes, reasons: list[tuple[int, str]]) -> None:
    for scan in (False, True):
        errors: list[tuple[int, str]] = []
        if scan:
            items = list(_array_items(body, body.index(b"[") + 1, errors, MAX_LINE_BYTES, MAX_DEPTH))
        else:
            items = list(body_items(body, errors))
        assert errors == reasons, (scan, errors)
        assert [v for _, v in items] == ([1] if body.startswith(b"[1") and body != b"[1}" else [])


def test_an_item_longer_than_a_line_may_be_is_refused_unread() -> None:
    body = b'[{"a": "' + b"x" * 200 + b'"}, 2]'
    errors: list[tuple[int, str]] = []
    assert list(body_items(body, errors, max_bytes=100)) == [(2, 2)]
    assert errors == [(1, "item longer than 100 bytes; an event must be smaller (README: Limits)")]


def test_an_object_body_or_json_lines() -> None:
    errors: list[tuple[int, str]] = []
    assert list(body_items(b'{\n  "a": 1\n}\n', errors)) == [(1, {"a": 1})]  # one object, over several lines
    assert list(body_items(b'{"a": 1}\n\n# note\n{"b": 2}\r\n[3]', errors)) == [(1, {"a": 1}), (4, {"b": 2}),
                                                                                (5, [3])]
    assert list(body_items(b'\xef\xbb\xbf{"a": 1}', errors)) == [(1, {"a": 1})]
    assert errors == []


@examples(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10**6), max_size=80), st.integers(0, 30))
def test_problems_keep_the_first_and_count_all(numbers: list[int], keep: int) -> None:
    problems = Problems(keep)
    for n in numbers:
        problems.append((n, f"reason {n}"))
    assert list(problems) == [(n, f"reason {n}") for n in numbers[:keep]]
    assert len(problems) == len(numbers) and problems.more == max(0, len(numbers) - keep)
    assert bool(problems) == bool(numbers)
    assert problems.last == (numbers[-1] if numbers else None)
