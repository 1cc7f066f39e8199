"""Acting on alerts from Slack: how fast each transport acknowledges (Slack allows 3 seconds).

1. HTTP: signed ``POST /slack/interactions`` (an Acknowledge click) and ``POST /slack/commands``
   (``/alerts help`` and ``/alerts price``) to the HTTP app on uvicorn: time to the answer.
2. Socket Mode: the same click and commands as envelopes on a local websocket server speaking Slack's Socket
   Mode (tests/socket_server.py), the ``slack`` role's client connected to it: time from sending an envelope to
   its acknowledgement (for a command, carrying the answer).

Against a private redis-server and the Slack stand-in (tests/servers.py). Run from the repository root:
``.venv/bin/python -m bench.slack [--quick]``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import redis
from pydantic import SecretStr

from alerts.catalog import builtin_catalog
from alerts.rules.load import load_rules
from alerts.settings import Settings
from bench import workload as bench
from bench.harness import Pipeline, RedisServer, SlackServer, SocketModeServer, wait_for, write_rules
from workers.web.http import HttpServer, make_app
from workers.web.slack_socket import SocketMode

SECRET = "bench-signing-secret"  # noqa: S105 (the stand-in's, signing local requests)
RULES = """
rules:
  - id: oxides-high
    price: {product: Pr-Nd oxide, above: 450000 CNY/t}
    notify: [slack:#oxides]
"""
CLICK = {"type": "block_actions", "user": {"id": "U0BENCH", "username": "bench"},
         "actions": [{"action_id": "alerts_ack", "block_id": "alerts_actions", "type": "button",
                      "value": json.dumps({"a": "bench-alert", "r": "oxides-high", "p": "Pr-Nd oxide"})}],
         "message": {"text": "x", "blocks": []}}


def signed(url: str, body: str) -> httpx.Request:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return httpx.Request("POST", url, content=body, headers={
        "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded"})


def summary(name: str, ms: list[float]) -> str:
    return (f"{name}: p50 {bench.percentile(ms, 0.5):.1f} ms, p99 {bench.percentile(ms, 0.99):.1f} ms, "
            f"max {max(ms):.1f} ms ({len(ms)} requests)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="50 requests of each kind instead of 500")
    n = 50 if parser.parse_args().quick else 500
    server = RedisServer()
    slack = SlackServer().start()
    sockets = SocketModeServer().start()
    slack.socket_url = sockets.url
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rules_dir = Path(tmp) / "rules"
            write_rules(rules_dir, RULES)
            settings = Settings(_env_file=None,  # type: ignore[call-arg]
                                redis_url=SecretStr(server.url), rules_dir=rules_dir, data_dir=Path(tmp) / "data",
                                http_port=0, slack_api_url=slack.url, slack_signing_secret=SecretStr(SECRET),
                                slack_app_token=SecretStr(slack.app_token))
            client = redis.Redis.from_url(server.url)
            rules = load_rules(rules_dir)
            # two quotes evaluated (the price command reads their state), then the Slack transports
            Pipeline(client, settings.model_copy(update={"slack_bot_token": SecretStr(slack.token)}), rules).run(
                *({"type": "price", "product": "Pr-Nd oxide", "price": price, "unit": "CNY/t", "as_of": day,
                   "source": "bench"} for day, price in (("2025-03-07", 440_000), ("2025-03-10", 451_000))))
            results: list[str] = []
            http = HttpServer(make_app(client, settings, builtin_catalog, lambda: rules), settings).start()
            url = f"http://127.0.0.1:{http.port}"
            wait_for(lambda: httpx.get(f"{url}/healthz").status_code == 200, 10, "the HTTP app")
            with httpx.Client(timeout=10) as web:
                for name, path, body in (
                        ("HTTP click (Acknowledge)", "/slack/interactions",
                         lambda: urlencode({"payload": json.dumps(CLICK)})),
                        ("HTTP /alerts help", "/slack/commands",
                         lambda: urlencode({"command": "/alerts", "text": "help", "user_id": "U0BENCH"})),
                        ("HTTP /alerts price", "/slack/commands",
                         lambda: urlencode({"command": "/alerts", "text": "price Pr-Nd oxide",
                                            "user_id": "U0BENCH"}))):
                    ms = []
                    for i in range(n):
                        req = signed(f"{url}{path}", body() + f"&n={i}")
                        started = time.perf_counter()
                        r = web.send(req)
                        ms.append((time.perf_counter() - started) * 1000)
                        assert r.status_code == 200, r.text
                    results.append(summary(name, ms))
            http.stop()
            mode = SocketMode(client, settings, lambda: rules)
            stop = threading.Event()
            thread = threading.Thread(target=mode.run, args=(stop,), daemon=True)
            thread.start()
            wait_for(lambda: mode.sm is not None and mode.sm.is_connected() and sockets.connections, 10,
                     "the Socket Mode connection")
            for name, kind, payload in (
                    ("Socket Mode click (Acknowledge)", "interactive", CLICK),
                    ("Socket Mode /alerts help", "slash_commands", {"command": "/alerts", "text": "help",
                                                                    "user_id": "U0BENCH"}),
                    ("Socket Mode /alerts price", "slash_commands", {"command": "/alerts", "user_id": "U0BENCH",
                                                                     "text": "price Pr-Nd oxide"})):
                ms = []
                for _ in range(n):
                    eid = sockets.send(kind, payload, accepts_response_payload=kind == "slash_commands")
                    took, ack = sockets.ack(eid)
                    assert kind == "interactive" or "payload" in ack, ack
                    ms.append(took * 1000)
                results.append(summary(name, ms))
            stop.set()
            thread.join(10)
            for line in results:
                bench.say(line)
            client.close()
    finally:
        sockets.stop()
        slack.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
