"""End to end through a real redis-server, real rq jobs and slack_sdk against a local Slack server."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr
from rq.registry import FailedJobRegistry

from alerts.settings import Settings
from tests.pipeline import Pipeline, quote
from tests.servers import SlackServer, write_rules
from tests.streams import stream_entries

RULES = """
rules:
  - id: prnd-oxide-450k
    price: {product: Pr-Nd oxide, above: "450,000 CNY/t"}
    notify: [slack:#rare-earths, console]
  - id: export-licence-news
    news: {any: [export licen*], all: [rare earth*]}
    notify: [slack:C0123ABCD]
"""


@pytest.fixture
def slack_settings(settings: Settings, slack: SlackServer, rules_dir: Path) -> Settings:
    write_rules(rules_dir, RULES)
    return settings.model_copy(update={"slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url,
                                       "delivery_retry_intervals_seconds": [0, 0]})


def test_price_alert_reaches_slack_and_console(client: redis.Redis, slack_settings: Settings, slack: SlackServer,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    p = Pipeline(client, slack_settings)
    alerts = p.run(quote(447_000, "2025-02-24"), quote(451_000, "2025-02-25"), quote(452_000, "2025-02-26"))
    assert [a.rule_id for a in alerts] == ["prnd-oxide-450k"]
    assert len(slack.messages) == 1
    msg = slack.messages[0]
    assert msg["channel"] == "#rare-earths"
    for part in ("prnd-oxide-450k", "Pr-Nd oxide", "451,000 CNY/t", "2025-02-25"):
        assert part in msg["text"]
    assert "451,000 CNY/t on 2025-02-25" in capsys.readouterr().out


def test_news_alert_text_and_escaping(client: redis.Redis, slack_settings: Settings, slack: SlackServer) -> None:
    p = Pipeline(client, slack_settings)
    headline = "<!channel> export licences granted for rare earths & magnets <https://evil.test|click>"
    p.run({"type": "news", "headline": headline, "url": "https://news.test/1", "source": "smm"})
    (msg,) = slack.messages
    assert msg["channel"] == "C0123ABCD"
    assert "export-licence-news" in msg["text"]
    assert "&lt;!channel&gt; export licences granted for rare earths &amp; magnets" in msg["text"]
    assert "<!channel>" not in msg["text"] and "<https://evil.test|click>" not in msg["text"]


def test_events_published_before_any_worker_exists(client: redis.Redis, slack_settings: Settings,
                                                   slack: SlackServer) -> None:
    from alerts.rules.load import load_rules
    from alerts.store.publish import Publisher

    rules = load_rules(slack_settings.rules_dir)
    Publisher(client, rules.catalog, slack_settings.timezone, slack_settings.stream_shards).publish(
        quote(440_000, "2025-02-24"), quote(455_000, "2025-02-25"))
    assert not client.exists("alerts:alerts")  # nothing evaluated yet, no consumer group anywhere
    p = Pipeline(client, slack_settings)
    assert [a.as_of for a in p.run()] == ["2025-02-25"]
    assert len(slack.messages) == 1


def test_same_events_again_make_no_second_alert(client: redis.Redis, slack_settings: Settings,
                                                slack: SlackServer) -> None:
    p = Pipeline(client, slack_settings)
    events = [quote(440_000, "2025-02-24"), quote(455_000, "2025-02-25"),
              {"type": "news", "headline": "Export licences for rare earth magnets", "id": "n1"}]
    assert len(p.run(*events)) == 2
    assert p.run(*events) == []
    # the same article under a new id but the same url, and under the same id
    p.run({"type": "news", "headline": "Export licences for rare earth magnets", "id": "n1", "body": "updated"})
    assert len(slack.messages) == 2
    assert len(p.alert_stream()) == 2


def test_alert_dispatched_twice_is_delivered_once(client: redis.Redis, slack_settings: Settings,
                                                  slack: SlackServer) -> None:
    p = Pipeline(client, slack_settings)
    p.publish(quote(455_000, "2025-02-25"))
    p.evaluate()
    msgs = stream_entries(client, "alerts:alerts")
    p.dispatcher.enqueue(msgs)
    p.dispatcher.enqueue(msgs)  # as if a second dispatcher had claimed the same alert
    p.deliver()
    assert len(slack.messages) == 1
    # the job itself is idempotent too: re-running it delivers nothing more
    from rq.job import Job

    queue = p.dispatcher.queues["slack"]
    job_ids = [j for j in client.scan_iter("rq:job:deliver-*")]
    assert len(job_ids) == 2  # one per target (Slack and console)
    for key in job_ids:
        job = Job.fetch(key.decode().removeprefix("rq:job:"), connection=client, serializer=queue.serializer)
        queue.enqueue_job(job)
    p.deliver()
    assert len(slack.messages) == 1


def test_jobs_are_json_not_pickle(client: redis.Redis, slack_settings: Settings) -> None:
    p = Pipeline(client, slack_settings)
    p.publish(quote(455_000, "2025-02-25"))
    p.evaluate()
    p.dispatch()
    keys = list(client.scan_iter("rq:job:deliver-*"))
    assert keys
    for key in keys:
        data = json.loads(zlib.decompress(client.hget(key, "data")))  # type: ignore[arg-type]
        assert data[0] == "workers.deliver.deliver"
        assert data[2][0]["rule_id"] == "prnd-oxide-450k"


def test_retryable_slack_error_is_retried_and_delivered_once(client: redis.Redis, slack_settings: Settings,
                                                             slack: SlackServer) -> None:
    slack.script = [("500", None)]
    p = Pipeline(client, slack_settings)
    p.run(quote(455_000, "2025-02-25"))
    p.deliver()
    assert slack.requests == 2
    assert len(slack.messages) == 1


def test_permanent_slack_error_fails_at_once(client: redis.Redis, slack_settings: Settings,
                                             slack: SlackServer) -> None:
    slack.script = [("error", "channel_not_found")]
    p = Pipeline(client, slack_settings)
    p.run(quote(455_000, "2025-02-25"))
    p.deliver()
    assert slack.requests == 1 and slack.messages == []
    failed = FailedJobRegistry(f"{slack_settings.queue_name}:slack", connection=client)
    assert len(failed.get_job_ids()) == 1


def test_wrong_token_is_a_permanent_failure_and_never_logged(
        client: redis.Redis, slack_settings: Settings, slack: SlackServer,
        caplog: pytest.LogCaptureFixture) -> None:
    secret = "xoxb-wrong-secret-token"
    p = Pipeline(client, slack_settings.model_copy(update={"slack_bot_token": SecretStr(secret)}))
    p.run(quote(455_000, "2025-02-25"))
    assert slack.messages == []
    assert len(FailedJobRegistry(f"{slack_settings.queue_name}:slack", connection=client).get_job_ids()) == 1
    assert "invalid_auth" in caplog.text
    assert secret not in caplog.text
    assert secret not in repr(p.settings) and secret not in str(p.settings.model_dump())


def test_without_token_slack_goes_to_console(client: redis.Redis, settings: Settings, rules_dir: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    write_rules(rules_dir, RULES)
    p = Pipeline(client, settings)
    p.run(quote(455_000, "2025-02-25"))
    lines = capsys.readouterr().out.splitlines()
    # one line for the alert's two targets (Slack's stand-in and the console), naming both
    (line,) = [x for x in lines if "[prnd-oxide-450k]" in x]
    assert "ALERT WARNING [prnd-oxide-450k] Pr-Nd oxide 455,000 CNY/t" in line
    assert line.endswith("-> slack:#rare-earths (Slack not configured), console")


def test_digest_targets_are_kept_and_email_without_relay_goes_to_console(
        client: redis.Redis, settings: Settings, rules_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_rules(rules_dir, """
rules:
  - id: tb
    price: {product: Tb oxide, above: 6000}
    notify: [digest:desk-daily, email:desk@example.com]
digests:
  - {name: desk-daily, schedule: "0 8 * * 1-5", to: [desk@example.com]}
""")
    p = Pipeline(client, settings)
    p.run(quote(6475, "2025-02-28", product="Tb oxide", unit="CNY/kg"))
    assert client.llen("alerts:outbox:digest:desk-daily") == 1
    out = capsys.readouterr().out
    assert "[tb] terbium oxide 6,475 CNY/kg" in out and out.count("[tb]") == 1
    assert out.rstrip().endswith("-> email:desk@example.com (email not configured)")
    stored = json.loads(client.lindex("alerts:outbox:digest:desk-daily", 0))  # type: ignore[arg-type]
    assert stored["price"] == 6475 and stored["product"] == "terbium oxide"


def test_invalid_entry_on_the_stream_is_set_aside(client: redis.Redis, settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    p = Pipeline(client, settings)
    client.xadd("alerts:events:0", {"e": b'{"type":"price","product":"nope"}'})
    p.publish(quote(455_000, "2025-02-25"))
    assert len(p.evaluate()) == 1
    (entry,) = stream_entries(client, "alerts:invalid")
    # the fields are checked before the product is looked up: the missing ones are the reason
    assert entry[1][b"reason"] == b"price: Field required; unit: Field required; as_of: Field required"
    assert client.xpending("alerts:events:0", "evaluators")["pending"] == 0
