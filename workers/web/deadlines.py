"""Read deadlines for the HTTP app: a client has ``HEADER_TIMEOUT`` seconds to send a request's headers and
``BODY_TIMEOUT`` more for its body, however slowly it trickles them; past them it is answered 408 and the
connection is closed. uvicorn (0.55) has a keep-alive timeout between requests but none while one is read, so a
client sending a byte every few seconds would hold a connection, and its buffers, for ever (slow loris).

``deadline_protocol`` is uvicorn's h11 protocol with two timers: the header timer runs from the connection (on a
kept-alive connection, from the answer to the request before; uvicorn's 5 s keep-alive closes it first when nothing
comes) until h11 has the whole head, the body timer from there until the whole body is in. What the app does with
a request once it is read is not timed here."""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds a client has to send a request line and its headers.
HEADER_TIMEOUT = 10.0
#: Seconds a client has, after its headers, to send the whole body (10 MiB, ``ALERTS_INGEST_MAX_BYTES``'s default,
#: at 2 Mbit/s takes 42 s).
BODY_TIMEOUT = 60.0

_TIMEOUT_BODY = b'{"error": "the request was not received in time (slow client); send it again, faster"}'
_TIMEOUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY)


class _DeadlineProtocol(H11Protocol):
    header_timeout = HEADER_TIMEOUT
    body_timeout = BODY_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._phase: object = None  # h11.IDLE: waiting for headers; h11.SEND_BODY: for the body

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._arm(None)
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arm the timer of the phase the client is in, once per phase; none when it has sent its request."""
        state = self.conn.their_state
        phase = state if state in (h11.IDLE, h11.SEND_BODY) else None
        if phase is self._phase:
            return
        self._phase = phase
        if phase is h11.IDLE:
            self._arm(self.header_timeout)
        elif phase is h11.SEND_BODY:
            self._arm(self.body_timeout)
        else:
            self._arm(None)

    def _arm(self, seconds: float | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if seconds is not None and self.transport is not None and not self.transport.is_closing():
            self._timer = self.loop.call_later(seconds, self._expired)

    def _expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle if self._phase is h11.SEND_BODY else None
        if cycle is None or not cycle.response_started:
            self.transport.write(_TIMEOUT)
        if cycle is not None:  # the app reading the body sees the client gone (http.disconnect)
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def deadline_protocol(header_timeout: float = HEADER_TIMEOUT,
                      body_timeout: float = BODY_TIMEOUT) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with these read deadlines (``uvicorn.Config(http=...)``)."""
    return type("DeadlineProtocol", (_DeadlineProtocol,), {"header_timeout": header_timeout,
                                                           "body_timeout": body_timeout})
