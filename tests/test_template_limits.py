"""``message:`` and digest ``subject:`` templates are bounded in time and memory whatever is written
(alerts.rules.template_limits): ``rules check`` refuses, naming the limit, what passes one on the sample
values; at alert time a template that passes one gives the alert its default text and is logged once for
its rule. Any template from a grammar of big numbers, operators, filters, methods and nested loops is
checked and rendered in under 100 ms and 10 MB each (the issue's bound). Ordinary templates (the docs', the
examples') render as plain Jinja renders them."""

from __future__ import annotations

import json
import logging
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from alerts.notify.digest_email import subject
from alerts.rules import template_limits as limits
from alerts.rules import templates
from alerts.rules.load import load_rules
from alerts.rules.models import MESSAGE_MAX, Digest
from alerts.rules.render import default_text
from alerts.rules.templates import FIELDS, Message, TemplateError, check_subject, render_subject
from tests.rule_docs import all_blocks, example_files
from tests.test_engine import Feed, ruleset

#: What the issue found, and more of the kind: each with the limit rules check names.
EXAMPLES = [
    ("{{ ((((10**64)**64)**64)**64) % 7 }}", limits.BITS),
    ("{{ ([product]*10000*10000)|length }}", limits.SIZE),
    ("{{ '%0100000000d' % 1 }}", limits.SIZE),
    ("{{ 'a'|center(100000000) }}", limits.SIZE),
    ("{{ 'x\\ny'|indent(100000000) }}", limits.SIZE),
    ("{{ '{:>999999999}'.format(1) }}", limits.SIZE),
    ("{{ 'ab'.ljust(999999999) }}", limits.SIZE),
    ("{{ ('x' * 9000).replace('', 'yy') }}", limits.SIZE),
    ("{{ ','.join((product * 900)|list) }}", limits.SIZE),
    ("{{ (product * 900)|list|join(', ') }}", limits.SIZE),
    ("{{ 'a\\tb'.expandtabs(99999) }}", limits.SIZE),
    ("{{ product|wordwrap(1, wrapstring='-' * 5000) }}", limits.SIZE),
    ("{% set s = 'x' * 6000 %}{{ s ~ s }}", limits.SIZE),
    ("{% set s %}{% for c in 'x' * 3000 %}{{ 'y' * 100 }}{% endfor %}{% endset %}{{ s|length }}", limits.SIZE),
    ("{{ 1e308|int }}", limits.BITS),
    ("{{ price|round(-99999999) }}", limits.SIZE),
    ("{% set s = 'x' * 5000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}", limits.STEPS),
    ("{% macro m(n) %}{% if n|length < 30 %}{{ m(n ~ 'x') }}{{ m(n ~ 'y') }}{% endif %}{% endmacro %}{{ m('') }}",
     limits.STEPS),
    ("{% for a in product * 900 %}{{ loop.cycle('a', 'b') }}{% for b in product %}{% endfor %}{% endfor %}",
     limits.STEPS),
]
IDS = [t[:40] for t, _ in EXAMPLES]


def _limit_named(text: str, limit: str) -> bool:
    """Steps and time: a runaway loop is stopped by whichever comes first on this machine."""
    said = {limit, limits.TIME} if limit == limits.STEPS else {limit}
    return any(f"template exceeds the {name}" in text for name in said)


def _message_rule(template: str, news_rule: bool = False) -> str:
    condition = "news: {any: [licen*]}" if news_rule else "price: {product: Dy oxide, above: 1700}"
    return f"rules:\n  - id: t\n    {condition}\n    notify: [console]\n    message: {json.dumps(template)}\n"


@pytest.mark.parametrize("template,limit", EXAMPLES, ids=IDS)
def test_rules_check_refuses_a_template_past_a_limit(tmp_path: Path, template: str, limit: str) -> None:
    (tmp_path / "r.yaml").write_text(_message_rule(template))
    out = [str(p) for p in load_rules(tmp_path).problems]
    assert len(out) == 1 and out[0].startswith(f"{tmp_path / 'r.yaml'}:5: t: message: template exceeds the "), out
    assert _limit_named(out[0], limit), out


@pytest.mark.parametrize("template,limit", EXAMPLES, ids=IDS)
def test_at_alert_time_a_template_past_a_limit_gives_the_default_text_and_one_log_line(
        tmp_path: Path, template: str, limit: str, caplog: pytest.LogCaptureFixture) -> None:
    """The limit is passed only on some values (a price over 460,000): rules check accepts it. (The ``with``
    scopes a ``set`` inside the ``if``, which the check of field names would take for a field.)"""
    guarded = "{% if price > 460000 %}{% with %}" + template + "{% endwith %}{% endif %}at {{ price|thousands }}"
    rs = ruleset(tmp_path, "rules:\n  - id: t\n    price: {product: Pr-Nd oxide, above: 450000}\n"
                           f"    notify: [console]\n    message: {json.dumps(guarded)}\n")
    f = Feed(rs)
    (quiet,) = f.quote(455_000, "2025-02-24")
    assert quiet.text == "at 455,000"
    with caplog.at_level(logging.WARNING, logger="alerts.rules.templates"):
        for before, day, price in (("2025-02-25", "2025-02-26", 470_000), ("2025-02-27", "2025-02-28", 480_000)):
            assert f.quote(440_000, before) == []  # re-armed (a quote of another day: the same day's is a correction)
            (a,) = f.quote(price, day)
            assert a.text == default_text(a, rs.by_id["t"][0])
            assert a.text == f"Pr-Nd oxide {price:,} CNY/t on {day}, above 450,000 CNY/t; previous 440,000 on {before}"
    said = [r.getMessage() for r in caplog.records if r.name == "alerts.rules.templates"]
    assert len(said) == 1 and said[0].startswith("rule t: its message template exceeds the "), said
    assert _limit_named(said[0], limit), said
    assert sys.gettrace() is None  # the render's tracer is gone


def test_a_value_dependent_repeat_passes_the_check_and_falls_back_on_big_values(tmp_path: Path) -> None:
    rs = ruleset(tmp_path, "rules:\n  - id: big\n    price: {product: Pr-Nd oxide, above: 1}\n"
                           "    notify: [console]\n    message: \"{{ '=' * (price // 1000)|int }}\"\n")
    (rule,) = rs.by_id["big"]
    assert rule.message is not None
    assert rule.message.render({"price": 452_000.0}) == "=" * 452
    assert rule.message.render({"price": 20_000_000.0}, default=lambda: "default") == "default"


@pytest.mark.parametrize("template,limit", EXAMPLES, ids=IDS)
def test_a_digest_subject_past_a_limit_is_refused_and_falls_back(template: str, limit: str,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    written = template.replace("product", "name").replace("headline", "name").replace("price", "count")
    with pytest.raises(TemplateError) as refused:
        check_subject(written)
    assert str(refused.value).startswith("subject: template exceeds the ") and _limit_named(str(refused.value), limit)
    guarded = "{% if count > 100 %}{% with %}" + written + "{% endwith %}{% endif %}{{ count }} for {{ name }}"
    check_subject(guarded)
    default = "digest {{ name }}: {{ count }} alerts"
    fields = {"count": 3, "name": "desk", "date": "2025-02-25"}
    assert render_subject(guarded, default, fields, "UTC") == "3 for desk"
    with caplog.at_level(logging.WARNING, logger="alerts.rules.templates"):
        assert render_subject(guarded, default, {**fields, "count": 101}, "UTC") == "digest desk: 101 alerts"
    assert any("its subject template failed" in r.getMessage() for r in caplog.records)


def test_the_digest_email_has_the_default_subject_when_its_template_passes_a_limit() -> None:
    d = Digest(name="desk", schedule="0 8 * * 1-5", to=["desk@example.com"],
               subject="{% if count > 100 %}{{ 'x' * 10 ** 8 }}{% endif %}{{ count }} for {{ name }}")
    now = datetime(2025, 2, 25, 8, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert subject(d, 3, now) == "3 for desk"
    assert subject(d, 101, now) == "Rare earths digest desk: 101 alerts"


def test_the_tracer_in_place_before_a_render_is_put_back() -> None:
    seen: list[str] = []

    def tracer(frame: Any, event: str, arg: Any) -> None:
        seen.append(event)

    ok = Message("{% for c in product %}{{ c }}{% endfor %}", "UTC")
    runaway = Message("{% if 'BOOM' in headline %}{% for a in 'x' * 5000 %}{% for b in 'x' * 5000 %}"
                      "{% endfor %}{% endfor %}{% endif %}", "UTC")
    sys.settrace(tracer)
    try:
        assert ok.render({"product": "Tb"}) == "Tb"
        assert sys.gettrace() is tracer
        assert runaway.render({"headline": "BOOM"}, default="d") == "d"
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)
    assert seen  # it traced the test's own calls around the renders


def test_long_output_is_cut_not_refused() -> None:
    m = Message("{% for c in 'x' * 300 %}{{ product }} {% endfor %}", "UTC")
    text = m.render({"product": "Pr-Nd oxide"})
    assert len(text) == templates.MAX_LENGTH and text.endswith("…")


# --- ordinary templates render as plain Jinja renders them


def _doc_templates() -> list[str]:
    found = []
    texts = [b.text for b in all_blocks()] + [p.read_text("utf-8") for p in example_files()]
    for text in texts:
        data = yaml.safe_load(text) or {}
        found += [r["message"] for r in data.get("rules") or [] if isinstance(r, dict) and "message" in r]
        found += [d["subject"] for d in data.get("digests") or [] if isinstance(d, dict) and "subject" in d]
    return found


ORDINARY = [*_doc_templates(),
            "{{ product }} at {{ price|thousands }} {{ unit }} ({{ labels.desk }}, {{ owner }})",
            "{% if previous %}was {{ previous|thousands }} on {{ previous_as_of }}{% else %}first quote{% endif %}",
            "{{ product|upper }} {{ '%.1f' % change_pct }}% {{ '{:>12}'.format(price) }}",
            "{{ (price / 1000)|round(1) }}k {{ (price - threshold) // 100 }} {{ -change }} {{ labels|length }}",
            "{% for k, v in labels|dictsort %}{{ k }}={{ v }}{{ ', ' if not loop.last }}{% endfor %}",
            "{{ headline|truncate(30) }} {{ url }} {{ description|wordwrap(20) }} {{ as_of|day }} {{ 2 ** 10 }}",
            "{% set s = product ~ ' / ' ~ unit %}{{ s|replace('/', 'per') }} {{ [product, unit]|join(', ') }}",
            "{% macro q(p) %}{{ p|thousands }}{% endmacro %}{{ q(price) }} vs {{ q(threshold) }}"]
VALUES: list[dict[str, Any]] = [
    {**dict.fromkeys(FIELDS), **templates._SAMPLE, "labels": {"desk": "light", "book": "heavy"}},
    {**dict.fromkeys(FIELDS), "rule": "n", "status": "firing", "headline": "Export licences granted for magnets " * 5,
     "url": "https://example.com/a", "description": "news about licences " * 10, "as_of": "2025-05-29",
     "labels": {"desk": "light"}, "product": "Tb oxide", "price": 7_000.5, "unit": "CNY/kg", "threshold": 6_500,
     "change_pct": -3.25, "owner": "li.wei", "count": 12, "name": "desk-daily", "date": "2025-02-25"},
]


def _plain(tz: str) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.filters.update(thousands=templates._thousands, pct=templates._pct,
                       day=lambda value: templates._day(value, ZoneInfo(tz)))
    return env


def test_the_docs_have_templates_to_compare() -> None:
    assert len(_doc_templates()) >= 3


@pytest.mark.parametrize("source", ORDINARY, ids=[s[:40] for s in ORDINARY])
def test_ordinary_templates_render_as_plain_jinja_does(source: str) -> None:
    tz = "Asia/Shanghai"
    bounded = templates.environment(tz).from_string(source)
    for values in VALUES:
        try:
            expected: str | type[Exception] = _plain(tz).from_string(source).render(values)
        except Exception as exc:
            expected = type(exc)
        try:
            got: str | type[Exception] = limits.render(bounded, values)
        except Exception as exc:
            got = type(exc)
        assert got == expected, (source, values["rule"])


# --- any template: bounded in time and memory


SIZES = ["0", "1", "3", "64", "255", "9999", "10001", "123456", "100000000", "10 ** 12", "-99999999"]
NUMBERS = ["2", "7", "10", "99", "65536", "12345678901234567890", "9" * 77, "7" * 90, "1e308", "0.5", "-3"]
TEXTS = ["''", "'x'", "'ab\\n'", "'\\t'", "'%s%s'", "'%0999999d'", "'%*d'", "'{}'", "'{:>99999}'", "'{0}{0}{0}'",
         "'-' * 500", "'<a>'"]
FIELD_NAMES = ["product", "price", "headline", "labels", "change_pct", "unit", "previous", "description"]
BINARY = ["**", "*", "%", "~", "+", "-", "//", "/"]
FILTERS = ["center({n})", "indent({n})", "wordwrap({n}, wrapstring={s})", "truncate({n})", "format({e})",
           "join({s})", "replace({s}, {s})", "batch({n})|list", "slice({n})|list", "list", "string", "length",
           "upper", "tojson({n})", "pprint", "round({n})", "int", "sum", "unique|list", "sort", "reverse|list",
           "map('center', {n})|list", "urlize", "pct({n})", "thousands", "striptags", "first", "dictsort",
           "select('gt', {n})|list", "default({e})", "xmlattr", "wordcount", "title"]
METHODS = ["center({n})", "ljust({n})", "zfill({n})", "expandtabs({n})", "replace({s}, {s})", "join({e})",
           "split()", "format({e}, {e})", "split({s})", "count({s})", "translate({{120: {s}}})", "encode()",
           "to_bytes({n}, 'big')", "bit_length()", "as_integer_ratio()", "items()", "splitlines()"]


@st.composite
def expressions(draw: st.DrawFn, depth: int, names: tuple[str, ...]) -> str:
    atoms = [*SIZES, *NUMBERS, *TEXTS, *FIELD_NAMES, *names, "[product, price]", "(1, 2, 3)", "{'a': product}"]
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(atoms))

    def sub() -> str:
        return draw(expressions(depth - 1, names))

    def fill(pattern: str) -> str:
        return pattern.format(n=draw(st.sampled_from(SIZES)), s=draw(st.sampled_from(TEXTS)), e=sub())

    kind = draw(st.sampled_from(["binary"] * 3 + ["filter"] * 3 + ["method"] * 2 + ["list", "call", "range"]))
    if kind == "binary":
        return f"({sub()} {draw(st.sampled_from(BINARY))} {sub()})"
    if kind == "filter":
        return f"({sub()})|{fill(draw(st.sampled_from(FILTERS)))}"
    if kind == "method":
        return f"({sub()}).{fill(draw(st.sampled_from(METHODS)))}"
    if kind == "list":
        return f"[{sub()}, {sub()}]"
    if kind == "range":
        return f"range({draw(st.sampled_from(SIZES))})"
    return f"'{{:>{draw(st.sampled_from(SIZES))}}}'.format({sub()})"


@st.composite
def bodies(draw: st.DrawFn, depth: int, names: tuple[str, ...] = ()) -> str:
    out = []
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["out", "out", "text", "for", "for", "set", "setblock", "if", "macro"]))
        if kind == "out" or depth <= 0:
            out.append("{{ " + draw(expressions(2, names)) + " }}")
        elif kind == "text":
            out.append(draw(st.sampled_from(["x", " - ", "\n"])))
        elif kind == "for":
            name = f"v{depth}{i}"
            over = draw(expressions(1, names))
            out.append(f"{{% for {name} in {over} %}}{draw(bodies(depth - 1, (*names, name)))}{{% endfor %}}")
        elif kind == "set":
            name = f"s{depth}{i}"
            out.append(f"{{% set {name} = {draw(expressions(2, names))} %}}")
            names = (*names, name)
        elif kind == "setblock":
            name = f"b{depth}{i}"
            out.append(f"{{% set {name} %}}{draw(bodies(depth - 1, names))}{{% endset %}}{{{{ {name}|length }}}}")
        elif kind == "if":
            out.append(f"{{% if {draw(expressions(1, names))} %}}{draw(bodies(depth - 1, names))}{{% endif %}}")
        else:
            name = f"m{depth}{i}"
            calls = draw(st.sampled_from(["", f"{{{{ {name}(a) }}}}", f"{{{{ {name}(a) }}}}{{{{ {name}(a ~ a) }}}}"]))
            out.append(f"{{% macro {name}(a) %}}{draw(bodies(depth - 1, (*names, 'a')))}{calls}{{% endmacro %}}"
                       f"{{{{ {name}({draw(expressions(1, names))}) }}}}")
    return "".join(out)


#: An alert's values as large as the event and rule limits let them be.
BIG_VALUES: dict[str, Any] = {
    **dict.fromkeys(FIELDS), **templates._SAMPLE, "headline": "licence granted to magnet makers " * 30,
    "description": "d" * 500, "labels": {f"label{i}": "v" * 200 for i in range(20)},
    "url": "https://e.com/" + "a" * 2000,
}


def _measured(work: Callable[[], object]) -> tuple[float, int]:
    """Seconds (the better of two runs when the first is over the bound, so that the machine being busy
    with other tests does not fail it: a template that really takes that long does so twice) and the
    tracemalloc peak in bytes of one more run."""
    seconds = 0.0
    for _ in range(2):
        start = time.perf_counter()
        work()
        seconds = time.perf_counter() - start
        if seconds < 0.1:
            break
    tracemalloc.start()
    try:
        work()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return seconds, peak


def _check(source: str) -> Message | None:
    try:
        return Message(source, "UTC")
    except TemplateError:
        return None


def _render(source: str) -> None:
    try:
        template = templates.environment("UTC").from_string(source)  # rejected or not: the render is bounded
    except Exception:
        return
    try:
        limits.render(template, BIG_VALUES)
    except Exception:  # noqa: S110 - a limit, or a template error on these values: either is an answer
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(bodies(3))
def test_any_template_is_checked_and_rendered_in_under_100_ms_and_10_mb(source: str) -> None:
    if len(source) > MESSAGE_MAX:
        source = source[:MESSAGE_MAX]  # what a rule file can hold; a cut template may not compile, which is fine
    seconds, peak = _measured(lambda: _check(source))
    assert seconds < 0.1 and peak < 10_000_000, ("check", seconds, peak, source)
    seconds, peak = _measured(lambda: _render(source))
    assert seconds < 0.1 and peak < 10_000_000, ("render", seconds, peak, source)
    message = _check(source)
    if message is not None:  # never raises a limit into its caller
        try:
            text = message.render(dict(BIG_VALUES), default="default text")
        except Exception as exc:
            assert not isinstance(exc, limits.LimitExceeded), source
        else:
            assert len(text) <= templates.MAX_LENGTH
    assert sys.gettrace() is None
