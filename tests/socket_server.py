"""A local stand-in of Slack's Socket Mode endpoint: a real websocket server (the ``websockets`` package) on
127.0.0.1 that speaks Slack's envelopes. On each connection it says ``hello``; ``send`` puts an envelope
(``envelope_id``, ``type``, ``payload``, ``accepts_response_payload``, ``retry_attempt``) on the newest
connection, and every acknowledgement the client sends back (``{"envelope_id": ..., "payload": ...}``) is kept
in ``acks`` with when it came. ``refresh`` sends Slack's ``disconnect`` message (Slack does so every few hours);
``drop`` cuts the newest connection's TCP stream without a closing handshake (a network failure)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.servers import wait_for


class SocketModeServer:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="socket-mode-stand-in", daemon=True)
        self.connections: list[ServerConnection] = []  # open ones, oldest first
        self.opened = 0
        self.acks: dict[str, tuple[float, dict[str, Any]]] = {}  # envelope id -> (monotonic time, the ack)
        self.sent: dict[str, float] = {}  # envelope id -> when it was sent (monotonic)
        self.paths: list[str] = []

    def start(self) -> SocketModeServer:
        self.thread.start()
        self.server: Server = asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result(10)
        port = next(iter(self.server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/link/?ticket=stand-in-ticket-0123456789&app_id=A0TEST"
        return self

    async def _serve(self) -> Server:
        return await serve(self._handler, "127.0.0.1", 0)

    async def _handler(self, ws: ServerConnection) -> None:
        self.opened += 1
        self.paths.append(ws.request.path if ws.request is not None else "")
        self.connections.append(ws)
        try:
            await ws.send(json.dumps({
                "type": "hello", "num_connections": len(self.connections),
                "debug_info": {"host": "applink-stand-in", "build_number": 1, "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A0TEST"}}))
            async for raw in ws:
                got = json.loads(raw)
                if isinstance(got, dict) and "envelope_id" in got:
                    self.acks.setdefault(str(got["envelope_id"]), (time.monotonic(), got))
        except ConnectionClosed:
            pass
        finally:
            self.connections.remove(ws)

    def _on_newest(self, message: dict[str, Any]) -> None:
        async def go() -> None:
            await self.connections[-1].send(json.dumps(message))

        asyncio.run_coroutine_threadsafe(go(), self.loop).result(5)

    def send(self, type_: str, payload: dict[str, Any], envelope_id: str | None = None,
             accepts_response_payload: bool = False, retry_attempt: int = 0) -> str:
        """An envelope on the newest connection; its id."""
        eid = envelope_id or str(uuid.uuid4())
        self.sent[eid] = time.monotonic()
        self._on_newest({"envelope_id": eid, "type": type_, "payload": payload,
                         "accepts_response_payload": accepts_response_payload, "retry_attempt": retry_attempt,
                         "retry_reason": "timeout" if retry_attempt else ""})
        return eid

    def ack(self, envelope_id: str, timeout: float = 10) -> tuple[float, dict[str, Any]]:
        """(seconds from sending to the acknowledgement, the acknowledgement)."""
        wait_for(lambda: envelope_id in self.acks, timeout, f"the acknowledgement of {envelope_id}")
        at, body = self.acks[envelope_id]
        return at - self.sent[envelope_id], body

    def refresh(self) -> None:
        self._on_newest({"type": "disconnect", "reason": "refresh_requested",
                         "debug_info": {"host": "applink-stand-in"}})

    def drop(self) -> None:
        ws = self.connections[-1]
        self.loop.call_soon_threadsafe(ws.transport.abort)

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
