"""A rule's explanation as ``alerts rules explain`` prints it (and ``/alerts explain`` answers in Slack): its state
per product read from Redis (``alerts.rules.explain``), the silences that cover it, and whether the circuit
breaker paused it."""

from __future__ import annotations

import json
from typing import cast

import redis

from alerts.evaluate.eventtime import decode_fact
from alerts.rules.compiled import AllOfRule, RuleSet
from alerts.rules.explain import explain
from alerts.settings import Settings
from alerts.store.breaker import paused_rules
from alerts.store.keys import Keys
from alerts.store.silences import SilenceStore, describe
from alerts.store.state import load_states


def explain_rule(client: redis.Redis, settings: Settings, rules: RuleSet, rule_id: str) -> str:
    """The explanation of an enabled rule of ``rules`` (KeyError when there is none)."""
    compiled = rules.by_id[rule_id]
    keys = Keys(settings.key_prefix)
    products = {p.key for r in compiled for p in r.state_products}
    shared_keys = {k for r in compiled for k in r.shared_keys}
    states = load_states(client, keys, products)
    raw = cast(dict[bytes, bytes], client.hgetall(keys.news_fired))
    fired = {k.decode(): float(v) for k, v in raw.items()}
    paused = paused_rules(client, keys).get(rule_id)
    shared = {k: json.loads(v) for k in shared_keys if (v := client.get(keys.shared(k)))}
    marks = {k.decode(): float(v) for k, v in cast(dict[bytes, bytes], client.hgetall(keys.watermarks)).items()}
    pending = {r.state_key: [(f.part, f.t, f.what) for f in map(decode_fact, cast(
        list[bytes], client.zrange(keys.parts(r.state_key), 0, -1)))] for r in compiled if isinstance(r, AllOfRule)}
    silences = SilenceStore(client, keys).active()
    lines = [explain(compiled, states, fired, settings.timezone, shared, marks, pending)]
    first = compiled[0]
    alerting_on = [p.name if (p := r.alert_product) is not None else None for r in compiled]
    covering = [s for s in silences if s.matchers.covers(first.id, alerting_on, first.labels_dict or {},
                                                         first.severity, first.target_names)]
    for s in covering:
        lines.append(f"  SILENCED by {describe(s, settings.timezone)}")
    if paused:
        lines.append(f"  PAUSED by the circuit breaker after {paused['count']:g} alerts; resume with: "
                     f"alerts rules resume {rule_id}")
    return "\n".join(lines)


__all__ = ["explain_rule"]
