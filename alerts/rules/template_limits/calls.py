"""What a call, a method or a filter could build, estimated from its arguments before it runs (see
``alerts.rules.template_limits``): the widths and fields of a format string, the tables of str, number and
container methods and of Jinja's filters, and ``bounded_filter``, which wraps a filter."""

from __future__ import annotations

import re
import string
import types
from collections.abc import Callable, Mapping, Sized
from functools import wraps
from typing import Any

from jinja2.runtime import BlockReference, LoopContext, Macro, TemplateReference

from alerts.rules.template_limits.budget import (
    allow,
    built,
    enter,
    int_sizes,
    product_rule,
    shape,
    size,
)

# --- formatting: the widths and the number of fields of a format string

_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.?)", re.S)
_DIGITS = re.compile(r"\d+")
_FIELD = 320  # the longest a number formats to without a width (a float with %f)


def percent_size(fmt: str | bytes, args: Any) -> int:
    text = fmt if isinstance(fmt, str) else fmt.decode("latin-1")
    fields = widths = 0
    star = False
    for m in _PERCENT.finditer(text):
        if m.group(3) == "%":
            continue
        fields += 1
        for group in m.group(1), m.group(2):
            if group == "*":
                star = True
            elif group:
                widths += int(group)
    values = list(args.values()) if isinstance(args, Mapping) else list(args) if isinstance(args, tuple) else [args]
    if star:
        widths += sum(abs(v) for v in values if isinstance(v, int))
    return len(text) + widths + fields * max([_FIELD, *(size(v) for v in values)])


def _format_size(fmt: str, values: list[Any]) -> int:
    fields = widths = 0
    nested = False
    specs = [fmt]
    while specs:
        for _literal, field, spec, _conversion in string.Formatter().parse(specs.pop()):
            if field is None:
                continue
            fields += 1
            if spec:
                widths += sum(int(d) for d in _DIGITS.findall(spec))
                if "{" in spec:
                    nested = True
                    specs.append(spec)
    if nested:
        widths += sum(abs(v) for v in values if isinstance(v, int))
    return len(fmt) + widths + fields * max([_FIELD, *(size(v) for v in values)])


# --- methods of text and numbers reachable in the sandbox

_Estimate = Callable[..., int | None]


def _replace_size(s: Any, old: Any, new: Any, count: Any = -1) -> int:
    n: int = s.count(old)
    if isinstance(count, int) and count >= 0:
        n = min(n, count)
    return len(s) + n * max(0, len(new) - len(old))


def _join_size(sep: Any, items: Any) -> int:
    return len(sep) * len(items) + size(items)


def _translate_size(s: Any, table: Any, *_delete: Any) -> int:
    values = table.values() if isinstance(table, Mapping) else table if isinstance(table, list | tuple) else ()
    return len(s) * max([1, *(size(v) for v in values)])


_TEXT_ESTIMATES: dict[str, _Estimate] = {
    "replace": _replace_size,
    "join": _join_size,
    "translate": _translate_size,
    "expandtabs": lambda s, tabsize=8: len(s) + s.count("\t" if isinstance(s, str) else b"\t") * max(tabsize, 0),
}
#: Methods whose result is at most a few times their inputs (or a width, at most MAX_SIZE).
_TEXT_LINEAR = frozenset({
    "capitalize", "casefold", "center", "count", "decode", "encode", "endswith", "find", "fromhex",
    "hex", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
    "isnumeric", "isprintable", "isspace", "istitle", "isupper", "ljust", "lower", "lstrip", "maketrans",
    "partition", "removeprefix", "removesuffix", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip",
    "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill",
    "escape", "unescape", "striptags",  # Markup's
})
_NUMBER_LINEAR = frozenset({
    "as_integer_ratio", "bit_count", "bit_length", "conjugate", "from_bytes", "fromhex", "hex", "is_integer",
    "to_bytes",
})
_CONTAINER_LINEAR = frozenset({"copy", "count", "fromkeys", "get", "index", "items", "keys", "values"})
#: Jinja's own callables run template code: its steps and buffers bound them.
_TEMPLATE_CODE = (Macro, LoopContext, BlockReference, TemplateReference)
_HIDDEN_KWARGS = frozenset({"caller", "_loop_vars", "_block_vars"})


def check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse a call that could build too much; returns the arguments (a join's items made a list)."""
    owner = getattr(obj, "__self__", None)
    if isinstance(obj, _TEMPLATE_CODE) or isinstance(owner, _TEMPLATE_CODE):
        return args
    kw = {k: v for k, v in kwargs.items() if k not in _HIDDEN_KWARGS}
    given = [*args, *kw.values()]
    name = getattr(obj, "__name__", "")
    what = f"{name or type(obj).__name__}()"
    if isinstance(obj, types.FunctionType) and name in ("format", "format_map"):  # the sandbox's str.format
        text = getattr(getattr(obj, "__wrapped__", None), "__self__", None)
        if isinstance(text, str):
            if name == "format_map" and args and isinstance(args[0], Mapping):
                given = list(args[0].values())
            allow(_format_size(text, given), what)
            return args
    if not isinstance(obj, types.BuiltinMethodType | types.MethodType):
        product_rule(None, given, what)
    elif isinstance(owner, str | bytes | bytearray):
        int_sizes(given, what)
        if name == "join" and args and not isinstance(args[0], Sized):
            args = (list(args[0]), *args[1:])
        estimate = _TEXT_ESTIMATES.get(name)
        if estimate is not None:
            allow(estimate(owner, *args, **kw) or 0, what)
        elif name not in _TEXT_LINEAR:
            product_rule(owner, given, what)
    elif isinstance(owner, int | float | complex | type):  # a number's, or str.maketrans, int.from_bytes...
        int_sizes(given, what)
        if name not in _NUMBER_LINEAR and name not in _TEXT_LINEAR and name not in _CONTAINER_LINEAR:
            product_rule(owner, given, what)
    elif not (isinstance(owner, list | tuple | dict) and name in _CONTAINER_LINEAR):
        product_rule(owner, given, what)
    return args


# --- filters


def _indent(_f: Any, s: Any, width: Any = 4, first: bool = False, blank: bool = False) -> int:
    text = str(s)
    w = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    return len(text) + (text.count("\n") + 1) * max(w, 0)


def _wordwrap(f: Any, env: Any, s: Any, width: int = 79, break_long_words: bool = True,
              wrapstring: Any = None, break_on_hyphens: bool = True) -> int | None:
    if wrapstring is None or len(str(wrapstring)) <= 1:
        return None
    lines: str = f(env, s, width, break_long_words, "\n", break_on_hyphens)  # a dry run: as long as s, about
    return len(lines) + lines.count("\n") * len(str(wrapstring))


def _join(_f: Any, _ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> int:
    return len(str(d)) * len(value) + size(value)


def _replace(_f: Any, _ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> int:
    return _replace_size(str(s), str(old), str(new), -1 if count is None else count)


def _urlize(_f: Any, _ctx: Any, value: Any, trim_url_limit: Any = None, nofollow: bool = False,
            target: Any = None, rel: Any = None, extra_schemes: Any = None) -> int:
    text = str(value)
    return 3 * len(text) + len(text.split()) * (len(str(target or "")) + len(str(rel or "")) + 100)


def _tojson(_f: Any, _ctx: Any, value: Any, indent: Any = None) -> int | None:
    if not isinstance(indent, int) or not indent:
        return None
    elements, depth = shape(value)
    return elements * abs(indent) * (depth + 1)


def _pprint(_f: Any, value: Any) -> int:
    elements, depth = shape(value)
    return elements * (depth + 1)


def _sum(_f: Any, _env: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> int | None:
    if isinstance(start, int | float):
        return None
    return (len(iterable) + 1) * (size(iterable) + size(start))


_FILTER_ESTIMATES: dict[str, _Estimate] = {
    "format": lambda _f, value, *args, **kwargs: percent_size(str(value), kwargs or args),
    "indent": _indent, "join": _join, "pprint": _pprint, "replace": _replace, "sum": _sum, "tojson": _tojson,
    "urlize": _urlize, "wordwrap": _wordwrap,
}
#: Filters whose result is at most a few times their inputs, or a width or count at most MAX_SIZE.
_FILTER_LINEAR = frozenset({
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
    "filesizeformat", "first", "float", "forceescape", "groupby", "int", "items", "last", "length", "list",
    "lower", "map", "max", "min", "random", "reject", "rejectattr", "reverse", "round", "safe", "select",
    "selectattr", "slice", "sort", "string", "striptags", "title", "trim", "truncate", "unique", "upper",
    "urlencode", "wordcount", "xmlattr", "thousands", "pct", "day",
})
#: Filters whose further arguments are values, not sizes (``default(1000000)``, ``select('gt', 500000)``).
_VALUE_ARGS = frozenset({
    "attr", "d", "default", "dictsort", "float", "format", "groupby", "int", "join", "map", "max", "min",
    "reject", "rejectattr", "select", "selectattr", "sort", "sum", "unique",
})
_MATERIALIZE = frozenset({"join", "sum"})


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its arguments checked before it runs and its result after."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    estimate = _FILTER_ESTIMATES.get(name)
    known = estimate is not None or name in _FILTER_LINEAR
    sizes = name not in _VALUE_ARGS

    @wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        enter()
        if sizes:
            int_sizes([*args[skip + 1:], *kwargs.values()], name)
        if name in _MATERIALIZE and len(args) > skip and not isinstance(args[skip], Sized):
            args = (*args[:skip], list(args[skip]), *args[skip + 1:])
        if estimate is not None:
            allow(estimate(func, *args, **kwargs) or 0, name)
        elif not known:
            product_rule(args[skip] if len(args) > skip else None, [*args[skip + 1:], *kwargs.values()], name)
        return built(func(*args, **kwargs))

    return bounded
