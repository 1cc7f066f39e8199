"""The service's one HTTP face: a Starlette app on uvicorn, served by the ``http`` role.

``POST /events`` takes a JSON object, a JSON array of objects, or JSON Lines, and publishes what is
valid through the one publishing path (``alerts.store.publish``: the same validation, streams, dedup
and currency conversion as ``alerts publish``). The body is split into items and each is held to the limits of a
line of ``alerts publish``, with the same reasons (``alerts.events.batch``), one item at a time in a worker
thread: the event loop goes on answering while a large body is read. Answers: 202 ``{"accepted": N}``; 400
``{"accepted": N, "refused": R, "errors": [{"item": I, "error": "..."}], "more_errors": M}`` when some items are
refused (the valid ones are still published; items are numbered from 1, lines of JSON Lines by line; the first
``alerts.events.batch.MAX_PROBLEMS`` are listed, ``more_errors`` counts the others when there are any); 401
without the bearer token ``ALERTS_INGEST_TOKEN`` (compared in constant time); 408 when the headers or the body
come slower than ``workers.web.deadlines`` allows; 413 above ``ALERTS_INGEST_MAX_BYTES``; 503 when Redis cannot
be reached, or ``{"error": "not replicated"}`` when fewer replicas than ``ALERTS_REDIS_MIN_REPLICAS``
acknowledged the events in time: nothing is accepted, the whole body is to be sent again (an event evaluated
before is not evaluated again); 503 ``{"error": ..., "cause": "redis out of memory", "stored": N,
"stored_items": [[first, last], ...], "refused_items": [...]}`` when Redis refused the writes at ``maxmemory``:
the items in the stored ranges were stored, the others were not (send those again). With no token set, the app
serves only on a loopback address.

``POST /slack/interactions`` (button clicks) and ``POST /slack/commands`` (``/alerts``) take only requests
signed with ``ALERTS_SLACK_SIGNING_SECRET`` (slack_sdk's SignatureVerifier: HMAC-SHA256 of ``v0:{timestamp}:{body}``,
the timestamp within 5 minutes, compared in constant time), each signature once (a replay is refused: seen
signatures are kept in Redis until their timestamp is out of the window); anything else is 401 and changes
nothing. A click is acknowledged at once (200, empty) and handled after the answer is sent; a command is
answered directly when its answer is ready within ``slack_actions.COMMAND_WAIT_SECONDS``, else acknowledged
and answered through its ``response_url``. The handlers are ``workers.web.slack_actions`` (transport-free; Socket
Mode, ``workers.web.slack_socket``, runs them too). Without the signing secret both answer 503, saying so.

``GET /metrics`` (Prometheus' text format, the whole cluster's counts read from Redis: ``workers.web.metrics``),
``GET /healthz`` (200 while the process serves) and ``GET /readyz`` (200 with JSON when Redis takes a write,
with the roles live processes run, else 503 saying why: unreachable, or refusing writes at ``maxmemory``) need
no token, like any Prometheus target; none of them shows a secret.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import redis
import uvicorn
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerts.catalog import Catalog
from alerts.errors import ConfigError, NotReplicatedError, RedisOutOfMemory
from alerts.events.batch import Problems, body_items
from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_rules
from alerts.settings import Settings
from alerts.store.heartbeats import processes
from alerts.store.keys import Keys
from alerts.store.memory import OOM_REPLY, describe, write_refused
from alerts.store.publish import Publisher, PublishReport
from alerts.store.slack import first_use
from workers.web import slack_actions
from workers.web.deadlines import BODY_TIMEOUT, HEADER_TIMEOUT, deadline_protocol
from workers.web.metrics import registry, render
from workers.web.slack_actions import FAILED, SlackActions, http_post, run_logged

log = logging.getLogger(__name__)

#: Largest body a Slack endpoint takes (Slack's payloads are a few kB).
SLACK_MAX_BYTES = 256 * 1024


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings) -> None:
    """No token, no listening beyond this machine: raises ConfigError naming both settings."""
    if settings.ingest_token is None and not is_loopback(settings.http_host):
        raise ConfigError(f"ALERTS_HTTP_HOST is {settings.http_host} but ALERTS_INGEST_TOKEN is not set: the HTTP app "
                          "serves another host only with a token (set one, or serve on 127.0.0.1)")


def make_app(client: redis.Redis, settings: Settings, catalog: Callable[[], Catalog],
             rules: Callable[[], RuleSet] | None = None) -> Starlette:
    """``rules``: the rule set active now (the Slack handlers read it); default: the rule files, loaded once."""
    token = settings.ingest_token.get_secret_value().encode() if settings.ingest_token is not None else None
    limit = settings.ingest_max_bytes

    # one publisher for the app (its shard-count check runs once); each request converts with its own
    # rates and validates against the catalog of the rule set active then
    pub = Publisher.from_settings(client, settings, catalog(), via="http")
    keys = Keys(settings.key_prefix)
    metrics = registry(client, keys, settings.stream_shards)

    def publish(body: bytes, report: PublishReport) -> None:
        """Validate and publish a body's items one at a time (a worker thread: never on the event loop)."""
        pub.catalog = catalog()
        pub.publish_objects(body_items(body, report.errors), report)

    async def events(request: Request) -> Response:
        if token is not None:
            given = request.headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token):
                return JSONResponse({"error": "a bearer token is required (ALERTS_INGEST_TOKEN)"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _too_large(limit)
        received = bytearray()
        try:
            async for chunk in request.stream():
                received.extend(chunk)
                if len(received) > limit:
                    return _too_large(limit)
        except ClientDisconnect:  # gone, or cut off by the read deadline (answered 408 there)
            return Response(status_code=408)
        body = bytes(received)
        del received
        problems = Problems()
        report = PublishReport(errors=problems)
        try:
            await asyncio.to_thread(publish, body, report)
        except NotReplicatedError as exc:  # written perhaps, but not durable: the feed sends it all again
            return JSONResponse({"error": "not replicated", "detail": str(exc)}, status_code=503,
                                headers={"Retry-After": "1"})
        except (RedisOutOfMemory, redis.exceptions.OutOfMemoryError) as exc:  # full: what was stored stays stored
            partial = getattr(exc, "report", None)
            done = partial if isinstance(partial, PublishReport) else report
            why = str(exc) if isinstance(exc, RedisOutOfMemory) else f"Redis is out of memory ({OOM_REPLY!r})"
            return JSONResponse({"error": why, "cause": "redis out of memory", "stored": done.published,
                                 "stored_items": [list(r) for r in done.stored],
                                 "refused_items": [list(r) for r in done.refused]},
                                status_code=503, headers={"Retry-After": "5"})
        except redis.RedisError as exc:  # a failover, say: nothing is accepted, the feed sends it all again
            return JSONResponse({"error": f"Redis is not reachable ({type(exc).__name__}); send again"},
                                status_code=503, headers={"Retry-After": "1"})
        if not problems:
            return JSONResponse({"accepted": report.published}, status_code=202)
        answer: dict[str, Any] = {"accepted": report.published, "refused": len(problems),
                                  "errors": [{"item": n, "error": why} for n, why in sorted(problems)]}
        if problems.more:
            answer["more_errors"] = problems.more
        if report.held:  # quotes the sanity check held (among the errors, each with its held id)
            answer["held"] = report.held
        return JSONResponse(answer, status_code=400)

    async def scrape(request: Request) -> Response:
        try:
            body = await asyncio.to_thread(render, metrics)
        except redis.RedisError as exc:
            return JSONResponse({"error": f"Redis is not reachable ({type(exc).__name__})"}, status_code=503)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready, body = await asyncio.to_thread(readiness, client, keys)
        return JSONResponse(body, status_code=200 if ready else 503)

    slack_routes = _slack_routes(client, settings, keys, rules)
    return Starlette(routes=[*slack_routes, Route("/events", events, methods=["POST"]),
                             Route("/metrics", scrape, methods=["GET"]),
                             Route("/healthz", healthz, methods=["GET"]),
                             Route("/readyz", readyz, methods=["GET"])])


def _slack_routes(client: redis.Redis, settings: Settings, keys: Keys,
                  rules: Callable[[], RuleSet] | None) -> list[Route]:
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret is not None else ""
    if not secret.strip():
        log.info("Slack buttons and /alerts are off: ALERTS_SLACK_SIGNING_SECRET is not set (POST /slack/* answer "
                 "503)")

        async def off(request: Request) -> Response:
            return JSONResponse({"error": "Slack is not set up here: ALERTS_SLACK_SIGNING_SECRET is not set"},
                                status_code=503)

        return [Route("/slack/interactions", off, methods=["POST"]), Route("/slack/commands", off, methods=["POST"])]
    verifier = SignatureVerifier(secret)
    if rules is None:
        loaded: list[RuleSet] = []

        def rules() -> RuleSet:
            if not loaded:
                loaded.append(load_rules(settings.rules_dir, timezone=settings.timezone))
            return loaded[0]

    post = http_post(settings)
    handlers = SlackActions(client, settings, rules, post)

    async def verified(request: Request) -> bytes | Response:
        """The raw body of a request Slack signed and that was not seen before, else the answer refusing it."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > SLACK_MAX_BYTES:
            return _too_large(SLACK_MAX_BYTES)
        try:
            body = await request.body()
        except ClientDisconnect:  # gone, or cut off by the read deadline (answered 408 there)
            return Response(status_code=408)
        if len(body) > SLACK_MAX_BYTES:
            return _too_large(SLACK_MAX_BYTES)
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if not (timestamp.isdigit() and len(timestamp) < 12 and verifier.is_valid(body, timestamp, signature)):
            return JSONResponse({"error": "not signed by Slack (X-Slack-Signature, X-Slack-Request-Timestamp "
                                 "within 5 minutes)"}, status_code=401)
        try:
            fresh = await asyncio.to_thread(first_use, client, keys, signature, int(timestamp))
        except redis.RedisError as exc:
            return JSONResponse({"error": f"Redis is not reachable ({type(exc).__name__})"}, status_code=503)
        if not fresh:
            return JSONResponse({"error": "this request was seen before (a replay)"}, status_code=401)
        return body

    async def interactions(request: Request) -> Response:
        got = await verified(request)
        if isinstance(got, Response):
            return got
        try:
            payload = json.loads(parse_qs(got.decode())["payload"][0])
        except (KeyError, IndexError, ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "no payload"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "no payload"}, status_code=400)
        # acknowledged now; the work (Redis, Slack's response_url) runs once the answer is sent
        return Response(status_code=200, background=BackgroundTask(run_logged, handlers.interaction, payload))

    async def commands(request: Request) -> Response:
        got = await verified(request)
        if isinstance(got, Response):
            return got
        try:
            form = {k: v[0] for k, v in parse_qs(got.decode()).items()}
        except UnicodeDecodeError:
            return JSONResponse({"error": "not a form"}, status_code=400)
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(None, run_logged, handlers.command, form)
        done, _ = await asyncio.wait({work}, timeout=slack_actions.COMMAND_WAIT_SECONDS)
        if done:
            answer = work.result()
            return JSONResponse(answer if answer is not None else FAILED)
        url = form.get("response_url")

        def later(f: asyncio.Future[Any]) -> None:
            answer = f.result() if not f.cancelled() else None
            if answer is not None and url:
                threading.Thread(target=post, args=(url, answer), daemon=True).start()

        work.add_done_callback(later)
        return Response(status_code=200)

    return [Route("/slack/interactions", interactions, methods=["POST"]),
            Route("/slack/commands", commands, methods=["POST"])]


def readiness(client: redis.Redis, keys: Keys) -> tuple[bool, dict[str, Any]]:
    """Ready when Redis takes a write (``P:probe``, which expires in 10 s: a Redis at ``maxmemory`` that refuses
    writes is not ready); the answer says why not (the exception's type, or used/maxmemory, never the URL), and
    which roles live processes run (their heartbeats: role -> how many processes), for the operator to read."""
    try:
        if write_refused(client, keys.probe):
            return False, {"ready": False, "redis": "out of memory",
                           "why": f"{describe(client)}: it refuses writes, so events cannot be published"}
        alive = [p for p in processes(client, keys) if p.alive]
    except redis.RedisError as exc:
        return False, {"ready": False, "redis": "unreachable", "why": f"Redis is not reachable ({type(exc).__name__})"}
    roles: dict[str, int] = {}
    for proc in alive:
        for role in proc.roles:
            roles[role] = roles.get(role, 0) + 1
    return True, {"ready": True, "redis": "ok", "roles_alive": dict(sorted(roles.items()))}


def _too_large(limit: int) -> Response:
    return JSONResponse({"error": f"the body is larger than {limit:,} bytes (ALERTS_INGEST_MAX_BYTES)"},
                        status_code=413)


class HttpServer:
    """uvicorn serving the app in a thread of the service; ``start`` binds first, so a port that is taken
    is one clear error."""

    def __init__(self, app: Any, settings: Settings, *, header_timeout: float = HEADER_TIMEOUT,
                 body_timeout: float = BODY_TIMEOUT):
        self.settings = settings
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on accepted sockets of that protocol, and
        # without it each answer on a kept-alive connection waits for the client's delayed ACK (40 ms)
        family = socket.AF_INET6 if ":" in settings.http_host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((settings.http_host, settings.http_port))
        except OSError as exc:
            self.sock.close()
            raise ConfigError(f"cannot serve HTTP on {settings.http_host}:{settings.http_port} "
                              f"(ALERTS_HTTP_HOST, ALERTS_HTTP_PORT): {exc.strerror}") from None
        self.sock.listen(2048)  # listening from now: a second server on this port cannot bind it
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                http=deadline_protocol(header_timeout, body_timeout))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="http",
                                       daemon=True)

    def start(self) -> HttpServer:
        self.thread.start()
        log.info("serving HTTP on %s:%d", self.settings.http_host, self.port)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
