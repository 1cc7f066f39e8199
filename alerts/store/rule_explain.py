"""A rule's explanation as ``alerts rules explain`` prints it (and ``/alerts explain`` answers in Slack): its state
per product read from Redis (``alerts.rules.explain``), the silences that cover it, and whether the circuit
breaker paused it."""

from __future__ import annotations

import json
from typing import cast

import msgspec
import redis

from alerts.evaluate.eventtime import LegPoint, decode_fact, decode_point, latest
from alerts.rules.compiled import AllOfRule, RuleSet, SpreadRule
from alerts.rules.explain import explain
from alerts.settings import Settings
from alerts.store.breaker import paused_rules
from alerts.store.keys import Keys
from alerts.store.silences import SilenceStore, describe
from alerts.store.state import load_states
from alerts.store.streams import waiting_events


def _latest_leg(client: redis.Redis, keys: Keys, pkey: str) -> LegPoint | None:
    """The newest stored quote of a spread leg (by quote time; the last arrived among those of that time)."""
    raw = cast(list[bytes], client.zrevrange(keys.legs(pkey), 0, 20))
    return latest([decode_point(m) for m in raw])


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
    for r in compiled:  # a spread the event-time stage never evaluated: the legs stored (imported history)
        if isinstance(r, SpreadRule) and r.state_key not in shared:
            legs = {which: list(msgspec.structs.astuple(point)) for which, p in (("of", r.of), ("minus", r.minus))
                    if (point := _latest_leg(client, keys, p.key)) is not None}
            if legs:
                shared[r.state_key] = {"legs": legs, "unevaluated": True}
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
    waiting = waiting_events(client, keys, settings.stream_shards)
    if waiting:
        lines.append(f"  NOTE: {waiting:,} events published or imported wait on the event streams for an evaluator: "
                     "not in this explanation until the service reads them (alerts run, or alerts worker)")
    if paused:
        lines.append(f"  PAUSED by the circuit breaker after {paused['count']:g} alerts; resume with: "
                     f"alerts rules resume {rule_id}")
    return "\n".join(lines)


__all__ = ["explain_rule"]
