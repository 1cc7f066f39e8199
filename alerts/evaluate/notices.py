"""Evaluating a vendor's notice (``alerts.events.wire.NoticeEvent``): the ``vendor_notice`` rules it matches, and
its default routing. Pure: (rules, notice, what already alerted on it) -> alerts.

- A ``vendor_notice`` rule fires once per notice that matches its filters (products, kinds, vendors), to its own
  targets, with its ``message:`` and ``cooldown:`` as any rule.
- The default routing needs no rule: a notice on a product goes to the owners of the rules that watch it, meaning
  the ``notify:`` targets of every enabled rule that reads the quotes of one of the notice's products (a price
  condition on it, a stale-feed rule, a spread leg, a price part of an all_of; not news rules), and, when such a
  rule names its vendors (``source:``, ``sources:``, ``consensus:``, a divergence's), only notices of one of them.
  Those targets are merged (each once, in rule order) into ONE alert of the rule id ``DEFAULT_RULE_ID``, so every
  target gets one message per notice however many of its rules watch the products; a target a ``vendor_notice``
  rule already told about this notice is left out of it. A notice no rule watches goes nowhere by default.
- The same notice published again (same id) fires nothing again (the evaluator remembers the rules that alerted
  on it, as it does for an article).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from alerts.evaluate.engine import cooling, with_text
from alerts.events.notice import KIND_WORDS
from alerts.events.wire import NoticeEvent
from alerts.model import Alert, alert_id
from alerts.rules.compiled import CompiledRule, RuleSet

#: The rule id of the default routing's alerts (no rule file can define it: a rule id has no colon).
DEFAULT_RULE_ID = "default:vendor_notice"
#: Kinds of notice whose default alert is a warning (the series a rule reads changes or ends); the others: info.
WARNING_KINDS = frozenset({"discontinued", "methodology"})
#: Characters of a notice's text an alert's headline carries (the whole text is in the stored notice).
HEADLINE_TEXT = 500


@dataclass(frozen=True, slots=True)
class NoticeOutcome:
    alerts: list[Alert]
    fired_rules: frozenset[str]  # rule ids (and DEFAULT_RULE_ID) that alerted on this notice, before and now
    last_fired: dict[str, float] = field(default_factory=dict)  # vendor_notice rule fp -> time (cooldown, explain)


def headline(ev: NoticeEvent) -> str:
    """One line: the vendor, what kind of notice, the products, when it takes effect, the start of its text."""
    names = ", ".join(ev.products[:5]) + (f" and {len(ev.products) - 5} more" if len(ev.products) > 5 else "")
    text = ev.text if len(ev.text) <= HEADLINE_TEXT else ev.text[:HEADLINE_TEXT - 1] + "…"
    return f"{ev.source}: {KIND_WORDS.get(ev.kind, ev.kind)}: {names} (effective {ev.effective_date}): {text}"


def rule_vendors(rule: CompiledRule) -> frozenset[str] | None:
    """The vendors (casefolded) a rule's quotes come from, or None when any vendor's quotes count: read from its
    compiled price conditions (or itself) when they name them (``source:`` -> ``source``; ``sources:``,
    ``consensus:`` and a divergence's vendors -> ``vendors``)."""
    vendors: set[str] = set()
    for part in rule.price_parts or (rule,):
        one = getattr(part, "source", None)
        many = getattr(part, "vendors", None)
        names = [one] if isinstance(one, str) and one else list(many) if isinstance(many, tuple | list) else []
        names = [n for n in names if isinstance(n, str) and n]
        if not names:
            return None
        vendors.update(n.casefold() for n in names)
    return frozenset(vendors) if vendors else None


def watched_products(rule: CompiledRule) -> frozenset[str]:
    """The keys of the products whose quotes a rule reads (none for news and vendor_notice rules)."""
    return frozenset({p.key for p in rule.state_products} | {p.product.key for p in rule.price_parts})


_WATCHERS: dict[int, tuple[RuleSet, dict[str, list[CompiledRule]]]] = {}


def watchers_by_product(rules: RuleSet) -> dict[str, list[CompiledRule]]:
    """Product key -> the rules that read its quotes, in rule order (built once per rule set: notices are rare)."""
    cached = _WATCHERS.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    out: dict[str, list[CompiledRule]] = {}
    for compiled in rules.by_id.values():
        for rule in compiled:
            for key in sorted(watched_products(rule)):
                if not out.get(key) or out[key][-1] is not rule:
                    out.setdefault(key, []).append(rule)
    _WATCHERS.clear()  # one rule set at a time: a reload replaces it
    _WATCHERS[id(rules)] = (rules, out)
    return out


def watching(rules: RuleSet, product_keys: Iterable[str], vendor: str) -> list[CompiledRule]:
    """The rules that watch any of these products from ``vendor`` (each rule id once, in rule order)."""
    by_product = watchers_by_product(rules)
    folded = vendor.casefold()
    seen: dict[str, CompiledRule] = {}
    for key in product_keys:
        for rule in by_product.get(key, ()):
            if rule.id in seen:
                continue
            vendors = rule_vendors(rule)
            if vendors is None or folded in vendors:
                seen[rule.id] = rule
    return list(seen.values())


def _alert(ev: NoticeEvent, rule_id: str, severity: str, targets: tuple[str, ...], description: str,
           owner: str | None = None, labels: dict[str, str] | None = None) -> Alert:
    return Alert(id=alert_id(rule_id, ev.article_keys[0]), rule_id=rule_id, kind="vendor_notice",
                 condition=ev.kind, severity=severity, targets=targets, description=description, event_id=ev.id,
                 source=ev.source, at=ev.published_at, headline=headline(ev), url=ev.url, owner=owner,
                 labels=labels, product=ev.products[0] if len(ev.products) == 1 else None)


def evaluate_notice(rules: RuleSet, ev: NoticeEvent, fired_before: frozenset[str],
                    last_fired: Mapping[str, float] | None = None) -> NoticeOutcome:
    """``fired_before``: the rule ids that already alerted on this notice (it was published before)."""
    alerts: list[Alert] = []
    fired = set(fired_before)
    cooldowns = dict(last_fired or {})
    told: set[str] = set()
    for rule in rules.vendor_notices:
        if rule.id in fired or not rule.active_at(ev.published_at) or \
                not rule.matches(ev.kind, ev.source, ev.product_keys):
            continue
        if cooling(rule.cooldown, cooldowns.get(rule.fp), ev.published_at):
            continue
        fired.add(rule.id)
        cooldowns[rule.fp] = ev.published_at
        told.update(rule.target_names)
        alerts.append(with_text(_alert(ev, rule.id, rule.severity, rule.target_names, rule.description,
                                       rule.owner, rule.labels_dict), rule))
    if DEFAULT_RULE_ID not in fired:
        owners = [r for r in watching(rules, ev.product_keys, ev.source) if r.active_at(ev.published_at)]
        targets = tuple(t for t in dict.fromkeys(t for r in owners for t in r.target_names) if t not in told)
        if targets:
            ids = [r.id for r in owners]
            shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
            a = _alert(ev, DEFAULT_RULE_ID, "warning" if ev.kind in WARNING_KINDS else "info", targets,
                       f"a vendor notice on products these rules watch: {shown}")
            a.text = a.headline or ""
            alerts.append(a)
        fired.add(DEFAULT_RULE_ID)  # routed once: published again, it is not routed again (whatever the rules)
    return NoticeOutcome(alerts, frozenset(fired), cooldowns)
