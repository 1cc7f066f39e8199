"""The Redis key layout: every key this service writes, and the constants that go with them.

Keys (``P`` is ``ALERTS_KEY_PREFIX``)::

    P:events:{shard}         stream of events; consumer group "evaluators"
    P:lease:{shard}          which evaluator owns the shard (token, expires)
    P:commits:{shard}        number of batches committed on the shard (detects lost writes)
    P:config                 hash: settings every process must agree on (stream_shards)
    P:evaluators             sorted set of live evaluators by heartbeat time
    P:state:{product}        hash: "q:{source}" -> newest quote state; "fired" -> cooldown times
    P:history:{product}:{source}  sorted set of every quote, by quote time (late ones included)
    P:seen:{article}         set of news rule ids that alerted on an article (by id and by url)
    P:shared:{key}           JSON state of a spread or all_of rule: cursor (event time), legs, arming
    P:legs:{product}         sorted set of the quotes of a spread leg, by quote time (event-time stage input)
    P:parts:{key}            sorted set of the times an all_of part held, by event time (stage input)
    P:watermarks             hash: leg product or "news" -> latest event time committed
    P:firstseen              hash: spread or all_of key -> the event time of its first input
    P:lease:composite        which evaluator runs the event-time stage (token, expires)
    P:newshistory            sorted set of every article evaluated, by published time (for backtests)
    P:newsfired              hash: news and vendor_notice rule fingerprint -> time of its last alert (cooldown)
    P:notices                sorted set of every vendor notice evaluated, by published time (status, backtests;
                             the newest 10,000 kept: ``alerts.store.notices``)
    P:alerts                 stream of alerts, up to 100 per entry (the outbox for dispatch and the history);
                             consumer group "dispatch" (the dispatchers; ``alerts status`` reads the same one)
    P:enqueued:{alert}       marker: the alert's deliveries were handed to rq
    P:delivered:{alert}:{target}  marker: delivered to that target
    P:breaker:{minute}       hash: rule id -> alerts sent in that minute (circuit breaker)
    P:paused                 hash: rule id -> when and why the circuit breaker paused it
    P:outbox:digest:{name}   list of alerts waiting for their digest
    P:digest:{name}:state    JSON: the last slot sent, when, and the prices it showed
    P:digest:{name}:lock     the one sender of a digest at a time (SET NX)
    P:failed                 hash: failed deliveries, for `alerts failed`
    P:pace:{target}          token bucket pacing messages to one channel
    P:sending:{alert}:{target}  short lock while one worker sends a message
    P:attempt:{alert}:{target}  when a send began; left behind by a worker that died while sending
    P:slackchannel:{name}    the id of a Slack channel known by name (from Slack's answers)
    P:alerts:dead            stream of alert entries that could not be dispatched, with the reason
    P:invalid                stream of events an evaluator could not accept, with the reason
    P:silences               hash: silence id -> the silence as JSON (ended ones too, the audit trail)
    P:silences:ends          sorted set of silence ids by when each stops being active (+inf: until re-armed)
    P:probe                  the write probe of ``alerts status`` on a Redis with maxmemory (expires in 10 s)
    P:held                   hash: quotes the sanity check held (``alerts.store.quotes``, ``alerts quotes held``)
    P:held:log               list: the last quotes released or dropped from the quarantine (the audit trail)
    P:corrections            sorted set: quotes a vendor corrected, both prices and when each arrived, by arrival
                             (``alerts.store.corrections``; ``alerts history`` shows them)
    P:slackmsg:{alert}:{target}  JSON: the Slack message an alert was posted as (channel id, ts, the alert), for the
                             follow-up of a correction (a reply in its thread, the original updated)
"""

from __future__ import annotations

from dataclasses import dataclass

#: The consumer group of the event streams (workers.roles.evaluator).
EVALUATOR_GROUP = "evaluators"
#: The consumer group of the alert stream (workers.roles.dispatch); every reader of its backlog (``alerts status``,
#: the metrics) imports this one name.
DISPATCH_GROUP = "dispatch"
#: Seconds a news article is remembered for de-duplication.
SEEN_TTL = 180 * 86400
#: Seconds an enqueued/delivered marker is kept.
MARKER_TTL = 30 * 86400
#: Entries kept in the invalid-event stream (approximate).
INVALID_MAXLEN = 10_000


@dataclass(frozen=True)
class Keys:
    prefix: str = "alerts"

    def events(self, shard: int) -> str:
        return f"{self.prefix}:events:{shard}"

    def lease(self, shard: int) -> str:
        return f"{self.prefix}:lease:{shard}"

    def commits(self, shard: int) -> str:
        return f"{self.prefix}:commits:{shard}"

    @property
    def config(self) -> str:
        return f"{self.prefix}:config"

    @property
    def evaluators(self) -> str:
        return f"{self.prefix}:evaluators"

    def state(self, pkey: str) -> str:
        return f"{self.prefix}:state:{pkey}"

    def history(self, pkey: str, source: str) -> str:
        return f"{self.prefix}:history:{pkey}:{source}"

    def seen(self, article_key: str) -> str:
        return f"{self.prefix}:seen:{article_key}"

    def shared(self, fp: str) -> str:
        return f"{self.prefix}:shared:{fp}"

    def legs(self, pkey: str) -> str:
        return f"{self.prefix}:legs:{pkey}"

    def parts(self, state_key: str) -> str:
        return f"{self.prefix}:parts:{state_key}"

    @property
    def watermarks(self) -> str:
        return f"{self.prefix}:watermarks"

    @property
    def first_seen(self) -> str:
        return f"{self.prefix}:firstseen"

    @property
    def composite_lease(self) -> str:
        return f"{self.prefix}:lease:composite"

    @property
    def news_history(self) -> str:
        return f"{self.prefix}:newshistory"

    @property
    def news_fired(self) -> str:
        return f"{self.prefix}:newsfired"

    @property
    def notices(self) -> str:
        return f"{self.prefix}:notices"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}:alerts"

    def enqueued(self, alert_id: str) -> str:
        return f"{self.prefix}:enqueued:{alert_id}"

    def delivered(self, alert_id: str, target: str) -> str:
        return f"{self.prefix}:delivered:{alert_id}:{target}"

    def breaker(self, minute: str) -> str:
        return f"{self.prefix}:breaker:{minute}"

    @property
    def paused(self) -> str:
        return f"{self.prefix}:paused"

    def outbox(self, kind: str, name: str) -> str:
        return f"{self.prefix}:outbox:{kind}:{name}"

    def digest_state(self, name: str) -> str:
        return f"{self.prefix}:digest:{name}:state"

    def digest_lock(self, name: str) -> str:
        return f"{self.prefix}:digest:{name}:lock"

    @property
    def failed(self) -> str:
        return f"{self.prefix}:failed"

    def pace(self, target: str) -> str:
        return f"{self.prefix}:pace:{target}"

    def attempt(self, alert_id: str, target: str) -> str:
        return f"{self.prefix}:attempt:{alert_id}:{target}"

    def slack_channel(self, name: str) -> str:
        return f"{self.prefix}:slackchannel:{name}"

    def sending(self, alert_id: str, target: str) -> str:
        return f"{self.prefix}:sending:{alert_id}:{target}"

    @property
    def dead_alerts(self) -> str:
        return f"{self.prefix}:alerts:dead"

    @property
    def invalid(self) -> str:
        return f"{self.prefix}:invalid"

    @property
    def silences(self) -> str:
        return f"{self.prefix}:silences"

    @property
    def silence_ends(self) -> str:
        return f"{self.prefix}:silences:ends"

    @property
    def held(self) -> str:
        return f"{self.prefix}:held"

    @property
    def held_log(self) -> str:
        return f"{self.prefix}:held:log"

    @property
    def corrections(self) -> str:
        return f"{self.prefix}:corrections"

    def slack_message(self, alert_id: str, target: str) -> str:
        return f"{self.prefix}:slackmsg:{alert_id}:{target}"

    @property
    def probe(self) -> str:
        return f"{self.prefix}:probe"
