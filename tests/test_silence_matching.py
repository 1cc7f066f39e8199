"""Silence matching (``alerts.silence.model``), pure: for random matchers and alerts it equals a
straightforward reading of the rule (every kind given matches; within a kind, any of its values), and
``decide`` ends until-resolved silences on a resolved alert or a later firing."""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from alerts.model import Alert
from alerts.silence.model import Matchers, Silence, decide

RULES = st.sampled_from(["r1", "r2", "r3"])
PRODUCTS = st.sampled_from(["Pr-Nd oxide", "Dy oxide", "Tb oxide"])
LABELS = st.tuples(st.sampled_from(["desk", "region"]), st.sampled_from(["cn", "eu"]))
TARGETS = st.sampled_from(["slack:#desk", "slack:#ops", "console", "email:a@b.example"])
SEVERITIES = st.sampled_from(["info", "warning", "critical"])


def alert(rule: str, product: str | None, labels: dict[str, str], severity: str, at: float = 100.0,
          status: str = "firing") -> Alert:
    return Alert(id="a1", rule_id=rule, kind="price", condition="above", severity=severity, targets=("console",),
                 description="", event_id="e1", source="smm", at=at, product=product, labels=labels or None,
                 status=status)  # type: ignore[arg-type]


matchers = st.builds(Matchers, rule=st.lists(RULES, max_size=2).map(tuple),
                     product=st.lists(PRODUCTS, max_size=2).map(tuple),
                     label=st.lists(LABELS, max_size=2).map(tuple), target=st.lists(TARGETS, max_size=2).map(tuple),
                     severity=st.lists(SEVERITIES, max_size=2).map(tuple))
alerts = st.builds(alert, RULES, st.one_of(st.none(), PRODUCTS),
                   st.dictionaries(st.sampled_from(["desk", "region"]), st.sampled_from(["cn", "eu"]), max_size=2),
                   SEVERITIES)


def reference(m: Matchers, a: Alert, target: str) -> bool:
    checks = []
    if m.rule:
        checks.append(any(a.rule_id == r for r in m.rule))
    if m.product:
        checks.append(any(a.product == p for p in m.product))
    if m.label:
        checks.append(any((a.labels or {}).get(k) == v for k, v in m.label))
    if m.target:
        checks.append(any(target.split("?")[0] == t for t in m.target))
    if m.severity:
        checks.append(any(a.severity == s for s in m.severity))
    return all(checks)


@given(matchers, alerts, TARGETS, st.booleans())
def test_matching_equals_the_reference(m: Matchers, a: Alert, target: str, quiet: bool) -> None:
    t = target + ("?quiet=22:00-07:00" if quiet else "")
    assert m.matches(a, t) == reference(m, a, t)
    s = Silence("s1", m, "ann", "why", created=0.0, ends=1000.0)
    assert (decide([s], a, t, now=10.0).silenced_by == "s1") == reference(m, a, t)
    assert decide([s], a, t, now=1000.0).silenced_by is None  # ended
    notice = msgspec.structs.replace(a, kind="notice", status="paused")
    assert decide([s], notice, t, now=10.0).silenced_by is None  # the circuit breaker's notice is always told


@given(matchers)
def test_the_matchers_survive_their_record(m: Matchers) -> None:
    assert Matchers.from_dict(m.to_dict()) == m


def test_until_resolved_ends_on_a_resolved_alert_or_a_later_firing() -> None:
    s = Silence("s1", Matchers(rule=("r1",)), "ann", "why", created=100.0, ends=None, until_resolved=True)
    earlier = alert("r1", "Dy oxide", {}, "info", at=50.0)
    assert decide([s], earlier, "console", 200.0).silenced_by == "s1"
    later = decide([s], alert("r1", "Dy oxide", {}, "info", at=150.0), "console", 200.0)
    assert later.silenced_by is None and [i for i, _ in later.ends] == ["s1"]
    resolved = decide([s], alert("r1", "Dy oxide", {}, "info", at=50.0, status="resolved"), "console", 200.0)
    assert resolved.silenced_by == "s1" and [i for i, _ in resolved.ends] == ["s1"]
    told = Silence("s2", Matchers(rule=("r1",)), "ann", "why", created=100.0, ends=None, until_resolved=True,
                   notify_resolved=True)
    resolved = decide([told], alert("r1", "Dy oxide", {}, "info", at=50.0, status="resolved"), "console", 200.0)
    assert resolved.silenced_by is None and [i for i, _ in resolved.ends] == ["s2"]


def test_an_alert_that_ended_a_silence_is_treated_alike_on_its_other_targets() -> None:
    s = Silence("s1", Matchers(rule=("r1",)), "ann", "why", created=100.0, ends=None, until_resolved=True)
    notice = alert("r1", "Dy oxide", {}, "info", at=50.0, status="resolved")
    first = decide([s], notice, "slack:#desk", 200.0)
    assert first.silenced_by == "s1" and [i for i, _ in first.ends] == ["s1"]
    ended = s.expired(200.0, "resolved", first.ends[0][1], notice.id)
    second = decide([ended], notice, "console", 201.0)
    assert second.silenced_by == "s1" and second.ends == ()  # silenced there too, and not ended twice
    other = msgspec.structs.replace(alert("r1", "Dy oxide", {}, "info", at=50.0), id="a2")
    assert decide([ended], other, "console", 201.0).silenced_by is None  # any other alert: the silence is over
