"""Socket Mode: the second transport of the Slack buttons and ``/alerts`` (``workers.web.slack_actions``), for desks
without a public URL. The ``slack`` role opens a websocket to Slack with slack_sdk's ``SocketModeClient`` (its
builtin one: no other package), authenticated by ``ALERTS_SLACK_APP_TOKEN`` (``apps.connections.open`` hands out
the websocket's address); Slack sends each click and each command as an envelope on it and wants it acknowledged
(``{"envelope_id": ...}``) within 3 seconds.

- A click (``interactive``) is acknowledged at once, then handled: the same handler as over HTTP, the message
  updated through its ``response_url``.
- A command (``slash_commands``) is answered in its acknowledgement when the answer is ready within
  ``COMMAND_WAIT_SECONDS``; else acknowledged without it and answered through its ``response_url``.
- Anything else (events the app may be subscribed to) is acknowledged and left alone.
- Each envelope is handled once across processes (``alerts.store.slack.first_envelope``): Slack sends an envelope
  not acknowledged in time again, perhaps on another of the app's connections (Slack takes up to 10 per app).
- Reconnecting is the client's: on Slack's ``disconnect`` message (it refreshes connections every few hours), on a
  closed socket, or when pings go unanswered, it asks for a new address and connects again. The first
  connection is tried until it works, the wait doubling up to ``CONNECT_RETRY_MAX_SECONDS``, with one log line.

No request is signed here: the socket itself, opened with the app token, is the authentication. The token and the
address's ticket never reach a log line (``Redacting``), and slack_sdk's debug dumps are never written.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import redis
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from alerts.errors import ConfigError
from alerts.rules.compiled import RuleSet
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.slack import first_envelope
from workers.web import slack_actions
from workers.web.slack_actions import FAILED, Post, SlackActions, http_post, run_logged

log = logging.getLogger(__name__)

#: Seconds between the client's pings; a connection without a pong for four of them is replaced.
PING_SECONDS = 5.0
#: Longest wait between two tries of the first connection (seconds).
CONNECT_RETRY_MAX_SECONDS = 60.0
#: Seconds within which slack_sdk's same warning or error is not logged again.
REPEAT_SECONDS = 600.0
#: Threads answering slash commands (a command waits for its answer at most COMMAND_WAIT_SECONDS).
COMMAND_THREADS = 4

NEEDS_APP_KEY = ("the slack role (Socket Mode) needs ALERTS_SLACK_APP_TOKEN, the Slack app-level token "
                 "(xapp-...) with the connections:write scope")
_SECRETS = re.compile(r"xapp-[\w-]+|xox[a-z]-[\w-]+|(ticket=)[^&\s'\"]+")


class Redacting(logging.Filter):
    """Slack's lines on this logger: tokens and the websocket ticket blanked, tracebacks cut to one line (a
    connection that drops is an event of the day, not a crash), and a warning or error said again within
    ``REPEAT_SECONDS`` dropped (while Slack is unreachable the client tries every few seconds)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.clock = clock
        self.said: dict[str, float] = {}
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text = f"{text} ({type(exc).__name__}: {exc})"
            record.exc_info = None
            record.exc_text = None
        record.msg = _SECRETS.sub(lambda m: f"{m.group(1)}***" if m.group(1) else "***", text)
        record.args = None
        if record.levelno < logging.WARNING:
            return True
        now = self.clock()
        with self.lock:
            if now - self.said.get(record.msg, -REPEAT_SECONDS) < REPEAT_SECONDS:
                return False
            self.said = {m: t for m, t in self.said.items() if now - t < REPEAT_SECONDS}
            self.said[record.msg] = now
        return True


def _sdk_logger() -> logging.Logger:
    sdk = logging.getLogger(f"{__name__}.sdk")
    sdk.setLevel(logging.INFO)  # slack_sdk's DEBUG lines dump headers and payloads: never written
    if not any(isinstance(f, Redacting) for f in sdk.filters):
        sdk.addFilter(Redacting())
    return sdk


class SocketMode:
    """The ``slack`` role: ``run(stop)`` keeps a Socket Mode connection and hands its envelopes to the handlers."""

    def __init__(self, client: redis.Redis, settings: Settings, rules: Callable[[], RuleSet],
                 post: Post | None = None, ping_seconds: float = PING_SECONDS):
        if settings.slack_app_token is None:
            raise ConfigError(NEEDS_APP_KEY)
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.post = post or http_post(settings)
        self.handlers = SlackActions(client, settings, rules, self.post)
        self.ping_seconds = ping_seconds
        self.token: SecretStr = settings.slack_app_token
        self.sm: SocketModeClient | None = None
        self.problem: str | None = None  # why the first connection is not made yet
        self.handled = 0
        self._count = threading.Lock()

    def doing(self) -> str:
        """For the heartbeat (``alerts status``)."""
        if self.sm is not None and self.sm.is_connected():
            return f"Socket Mode connected; {self.handled} requests handled"
        return f"Socket Mode connecting ({self.problem})" if self.problem else "Socket Mode connecting"

    def run(self, stop: threading.Event) -> None:
        sdk = _sdk_logger()
        web = WebClient(base_url=self.settings.slack_api_url, timeout=10, logger=sdk)
        sm = SocketModeClient(app_token=self.token.get_secret_value(), web_client=web,
                              logger=sdk, auto_reconnect_enabled=True, ping_interval=self.ping_seconds)
        sm.socket_mode_request_listeners.append(self._on_request)
        commands = ThreadPoolExecutor(COMMAND_THREADS, thread_name_prefix="slack-command")
        self.commands = commands
        self.sm = sm
        try:
            self._connect(sm, stop)
            stop.wait()
        finally:
            _close(sm)
            commands.shutdown(wait=False, cancel_futures=True)

    def _connect(self, sm: SocketModeClient, stop: threading.Event) -> None:
        wait = 1.0
        while not stop.is_set():
            try:
                sm.connect()
            except Exception as exc:  # Slack unreachable, a refused token, a failed handshake: all said once
                why = _why(exc)
                if why != self.problem:
                    log.error("cannot open the Slack Socket Mode connection: %s; trying again every %g s at most",
                              why, CONNECT_RETRY_MAX_SECONDS)
                self.problem = why
                sm.wss_uri = None  # a new address next time (each is good for one connection)
                stop.wait(wait)
                wait = min(wait * 2, CONNECT_RETRY_MAX_SECONDS)
                continue
            if self.problem:
                log.warning("Slack Socket Mode connection open after: %s", self.problem)
            else:
                log.info("Slack Socket Mode connection open")
            self.problem = None
            return

    # --- envelopes ----------------------------------------------------------------------------------------------

    def _one_more(self) -> None:
        with self._count:
            self.handled += 1

    def _fresh(self, envelope_id: str) -> bool:
        try:
            return first_envelope(self.client, self.keys, envelope_id)
        except redis.RedisError:
            return True  # the handler says Redis is not reachable

    def _on_request(self, sm: Any, req: SocketModeRequest) -> None:
        """Called by the client's worker threads, one per envelope."""
        if req.type == "slash_commands":
            self._command(sm, req)
            return
        sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        if req.type == "interactive" and self._fresh(req.envelope_id):
            self._one_more()
            run_logged(self.handlers.interaction, req.payload)

    def _command(self, sm: Any, req: SocketModeRequest) -> None:
        if not self._fresh(req.envelope_id):
            sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        self._one_more()
        form = {str(k): str(v) for k, v in req.payload.items() if isinstance(v, str | int | float)}
        work = self.commands.submit(run_logged, self.handlers.command, form)
        try:
            answer = work.result(timeout=slack_actions.COMMAND_WAIT_SECONDS)
        except FutureTimeout:
            sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            url = form.get("response_url")

            def later(f: Future[Any]) -> None:
                got = f.result() if not f.cancelled() else None
                if got is not None and url:
                    self.post(url, got)

            work.add_done_callback(later)
            return
        sm.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id,
                                                        payload=answer if answer is not None else FAILED))


def _close(sm: SocketModeClient) -> None:
    """Close the client without waiting out its read: the builtin connection reads with a 3-second timeout
    holding the lock its close needs; shutting the socket down (reconnecting turned off first) ends that read."""
    sm.auto_reconnect_enabled = False
    sm.current_session_state.terminated = True
    sock = getattr(sm.current_session, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    sm.close()


def _why(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        error = exc.response.get("error") if exc.response is not None else None
        if error in ("invalid_auth", "not_authed", "not_allowed_token_type", "account_inactive", "token_revoked"):
            return f"Slack refused ALERTS_SLACK_APP_TOKEN ({error})"
        return f"Slack answered {error or exc.response.status_code}"
    return f"{type(exc).__name__}: {_SECRETS.sub('***', str(exc))}"[:300]


__all__ = ["CONNECT_RETRY_MAX_SECONDS", "NEEDS_APP_KEY", "PING_SECONDS", "Redacting", "SocketMode"]
