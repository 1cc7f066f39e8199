"""A batch of events from one sender: the items of an HTTP body (a JSON object, a JSON array, or JSON Lines), each
decoded as a line of ``alerts publish`` is (``json_in``: the same size and depth limits, the same reasons), one at a
time, and the problems of a batch reported bounded (``Problems``: the first ``MAX_PROBLEMS``, and how many more).

Nothing is built for a whole body at once: a large array is split at its top-level commas by a scan of its bytes
(strings skipped whole, nesting counted, never recursing), and each item is decoded, checked and let go before the
next, so the memory a body takes is its own bytes and a bounded amount more, whatever it holds (10 MiB of ``{},``
are 3.5 million items, each refused and counted, none of them kept)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import msgspec

from alerts.errors import EventError
from alerts.events.json_in import decode_value, deeper_than, json_lines
from alerts.events.limits import MAX_DEPTH, MAX_LINE_BYTES

#: Problems of one batch listed with their reasons (the HTTP answer, ``alerts publish`` on stderr); those after them
#: are counted only.
MAX_PROBLEMS = 20


class Problems(list[tuple[int, str]]):
    """The (item, reason) of a batch's refused items, in the order they come, bounded: the first ``keep`` are kept,
    the others only counted (``more``). ``len()`` is the count of all of them, so counts and truthiness stay true
    where a list of every problem was used; iterating, indexing and sorting see the kept ones. ``last`` is the item
    of the latest problem."""

    def __init__(self, keep: int = MAX_PROBLEMS):
        super().__init__()
        self.keep = keep
        self.more = 0
        self.last: int | None = None

    def append(self, problem: tuple[int, str]) -> None:
        self.last = problem[0]
        if super().__len__() < self.keep:
            super().append(problem)
        else:
            self.more += 1

    def extend(self, problems: Iterable[tuple[int, str]]) -> None:
        for problem in problems:
            self.append(problem)

    def __len__(self) -> int:
        return super().__len__() + self.more


_DECODE = msgspec.json.Decoder()
_BOM = b"\xef\xbb\xbf"
#: What an array's items may be split at, or must be skipped over whole (a string).
_STRUCTURE = re.compile(rb'[\[\]{},"]')
#: The rest of a string after its opening quote (escapes included), up to and with its closing quote.
_STRING_REST = re.compile(rb'(?:[^"\\]|\\.)*"', re.S)
_SPACE = re.compile(rb"[ \t\r\n]*")
_STRING = rb'"(?:[^"\\]++|\\.)*+"'
_FLAT = rb'(?:[^"\[\]{}]++|' + _STRING + rb')*+'
#: An array item in one match, for the common case: a value without brackets, or an object or array whose values
#: are such values or flat objects and arrays (an event and its tags); the byte after it must be ',' or ']'.
_ITEM = re.compile(rb'[ \t\r\n]*+(?:\{(?:[^"\[\]{}]++|' + _STRING + rb'|\[' + _FLAT + rb'\]|\{' + _FLAT + rb'\})*+\}'
                   rb'|\[(?:[^"\[\]{}]++|' + _STRING + rb'|\[' + _FLAT + rb'\]|\{' + _FLAT + rb'\})*+\]'
                   rb'|(?:[^"\[\]{},]++|' + _STRING + rb')*+)[ \t\r\n]*+')
#: Bodies up to this many values (a comma, a '[' or a '{' each) within the line limit are decoded at once.
_AT_ONCE = 32_768


def body_items(body: bytes, errors: list[tuple[int, str]], *, max_bytes: int = MAX_LINE_BYTES,
               max_depth: int = MAX_DEPTH) -> Iterator[tuple[int, object]]:
    """The decoded items of a body with their numbers: a JSON array's items (1..N), a JSON object (item 1; a body
    of several lines that is not one object is JSON Lines), else JSON Lines by line. Each item is held to the
    limits of a line of ``alerts publish`` (``max_bytes``, ``max_depth``) and refused with the same reasons; every
    refusal goes to ``errors`` as (item, reason) and the items after it are still read."""
    if body.startswith(_BOM):
        body = body[len(_BOM):]
    start = _SPACE.match(body).end()  # type: ignore[union-attr]  # matches the empty string anywhere
    first = body[start:start + 1]
    if first == b"[":
        if len(body) <= max_bytes and body.count(b",") + body.count(b"[") + body.count(b"{") <= _AT_ONCE:
            try:
                doc = _DECODE.decode(body)
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
                pass  # the scan finds the item at fault
            else:
                if isinstance(doc, list):
                    yield from _checked(doc, errors, max_depth)
                    return
        yield from _array_items(body, start + 1, errors, max_bytes, max_depth)
        return
    if first == b"{" and len(body) <= max_bytes:
        try:
            doc = _DECODE.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
            pass  # JSON Lines that start with an object, or one object that is not JSON: read by line
        else:
            if isinstance(doc, dict):
                yield from _checked([doc], errors, max_depth)
                return
    yield from json_lines(_lines(body), errors, max_bytes=max_bytes, max_depth=max_depth)


def _checked(items: list[object], errors: list[tuple[int, str]], max_depth: int) -> Iterator[tuple[int, object]]:
    """Items decoded at once, held to the depth limit as ``json_in`` holds a line."""
    for n, item in enumerate(items, 1):
        if isinstance(item, dict | list) and deeper_than(item, max_depth):
            errors.append((n, f"nested more than {max_depth} levels deep"))
        else:
            yield n, item


def _lines(body: bytes) -> Iterator[bytes]:
    """The lines of a body, each with its line break, one at a time (as ``read_lines`` reads a file)."""
    start, size = 0, len(body)
    while start < size:
        end = body.find(b"\n", start)
        if end < 0:
            yield body[start:]
            return
        yield body[start:end + 1]
        start = end + 1


def _array_items(body: bytes, pos: int, errors: list[tuple[int, str]], max_bytes: int,
                 max_depth: int) -> Iterator[tuple[int, object]]:
    """The items of the JSON array that opens just before ``pos``, split at its top-level commas and each decoded
    alone (``decode_value``); too long or too deep an item is refused before it is decoded."""
    n, size = 0, len(body)
    flat = max_depth >= 2  # what _ITEM matches nests 2 levels at most
    while True:
        m = _ITEM.match(body, pos) if flat else None
        end = m.end() if m is not None else pos
        if m is not None and end < size and body[end] in b",]":
            depth, delimiter = 2, body[end]
        else:
            found = _item_end(body, pos)
            if found is None:
                errors.append((n + 1, "not valid JSON: the body ends inside the array (a ']' or a '\"' is missing)"))
                return
            end, depth, delimiter = found
        if delimiter == 0x7D:
            errors.append((n + 1, "not valid JSON: a '}' where the array's closing ']' should be"))
            return
        last = delimiter == 0x5D
        if not (last and n == 0 and not body[pos:end].strip()):  # [] and [ ] hold no item
            n += 1
            if end - pos > max_bytes:
                errors.append((n, f"item longer than {max_bytes:,} bytes; an event must be smaller (README: Limits)"))
            elif depth > max_depth:
                errors.append((n, f"nested more than {max_depth} levels deep"))
            else:
                try:
                    yield n, decode_value(body[pos:end].strip(), max_depth)  # as a line is: offsets from its start
                except EventError as exc:
                    errors.append((n, str(exc)))
        pos = end + 1
        if last:
            if _SPACE.match(body, pos).end() != size:  # type: ignore[union-attr]
                errors.append((n + 1, "not valid JSON: there is more after the array's closing ']'"))
            return


def _item_end(body: bytes, pos: int) -> tuple[int, int, int] | None:
    """Where the array item starting at ``pos`` ends, by a scan of its brackets and strings (any nesting, no
    recursion): (the position of the ',' or ']' after it, how deep the item nests, that byte); the byte is '}' when
    one closes the array; None when the body ends first."""
    depth, deepest = 0, 0
    search, string_rest = _STRUCTURE.search, _STRING_REST.match
    while True:
        m = search(body, pos)
        if m is None:
            return None
        at, pos = m.start(), m.end()
        c = body[at]
        if c == 0x22:  # a string: skipped whole, whatever brackets and commas it holds
            rest = string_rest(body, pos)
            if rest is None:
                return None
            pos = rest.end()
        elif c == 0x5B or c == 0x7B:  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif c == 0x2C:
            if depth == 0:
                return at, deepest, c
        elif depth == 0:  # ] or } closing the array
            return at, deepest, c
        else:
            depth -= 1
