"""Writing imported history (``alerts import``): which quotes the stored history already holds, and appending
many events to the event streams at once.

Imported quotes go the one way every event goes: on the event streams, in their typed wire form, so the
evaluators put them into the product states (change windows), the quote history (backtests) and the spread
legs exactly as they do live. An imported quote carries ``PriceEvent.history``: the evaluator evaluates it
silently (``alerts.evaluate.session``). Appending is one server-side script call per chunk of events rather
than one XADD each from the client: the import's speed is not bound by building commands in Python; and the
client does not wait for a call's reply before reading the next rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

import redis
from redis.connection import Connection
from redis.exceptions import ConnectionError, TimeoutError

from alerts.store.keys import Keys
from alerts.store.streams import WIRE_FIELD

#: Events appended per script call by ``StreamAppender.append``.
APPEND_CHUNK = 2000
#: Separates the events of one stream in a script call's argument: the wire form is JSON, which never holds a
#: raw line break (a trailing one is allowed).
SEP = b"\n"

# KEYS: the ledger set, then the streams. ARGV: the wire field, then for each stream its price events
# (``encode_wire``) separated by SEP. The ledger holds the id (as JSON-escaped on the wire: the tag, then the id,
# then the product) of every quote imported: one already there is not appended again.
_APPEND = """
local field, n = ARGV[1], 0
for k = 2, #KEYS do
  local events, pos = ARGV[k], 1
  local len = #events
  while pos <= len do
    local e = string.find(events, "\\n", pos, true) or (len + 1)
    if e > pos then
      local event = string.sub(events, pos, e - 1)
      local id = string.match(event, '^{"type":"price","id":"(.-)","product":"') or event
      if redis.call('SADD', KEYS[1], id) == 1 then
        redis.call('XADD', KEYS[k], '*', field, event)
        n = n + 1
      end
    end
    pos = e + 1
  end
end
return n
"""


def stored_ids(client: redis.Redis, keys: Keys, spans: dict[tuple[str, str], tuple[float, float]]) -> set[str]:
    """The event ids the quote history holds for each (product key, source) between two quote times
    (inclusive): what an earlier import (or the live feed) already brought. One pipelined read."""
    pipe = client.pipeline(transaction=False)
    order = sorted(spans)
    for product_key, source in order:
        lo, hi = spans[(product_key, source)]
        pipe.zrangebyscore(keys.history(product_key, source), lo, hi)
    out: set[str] = set()
    for members in cast(list[list[bytes]], pipe.execute() if order else []):
        for member in members:
            try:
                out.add(str(json.loads(member)[2]))  # [date, price, event id, low, high, late, seq]
            except (ValueError, IndexError, TypeError):
                continue
    return out


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def same_quotes_elsewhere(client: redis.Redis, keys: Keys, product_key: str, source: str,
                          sample: list[tuple[float, float]]) -> list[tuple[str, int]]:
    """The other sources whose stored history holds quotes of ``product_key`` at the same time and price as
    those of ``sample`` ((quote time, price) of an import under ``source``), with how many: a file imported again
    under another source name. Sources with no match are left out; most matches first."""
    if not sample:
        return []
    prefix = keys.history(product_key, "")
    lo, hi = min(t for t, _ in sample), max(t for t, _ in sample)
    wanted = set(sample)
    found = []
    for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
        name = key.decode() if isinstance(key, bytes) else str(key)
        other = name[len(prefix):]
        if other == source:
            continue
        matches = 0
        for member, score in cast(list[tuple[bytes, float]], client.zrangebyscore(name, lo, hi, withscores=True)):
            try:
                matches += (score, float(json.loads(member)[1])) in wanted
            except (ValueError, IndexError, TypeError):
                continue
        if matches:
            found.append((other, matches))
    return sorted(found, key=lambda f: -f[1])


class StreamAppender:
    """Appends wire-encoded events to the event streams, in order within each stream, each event at most once
    ever: the ledger of imported quotes (``P:imported``, a set of event ids) remembers the id of every one
    appended, so an import run twice, even before any evaluator read the first, adds nothing.

    One script call per batch (events of several streams, each stream's packed as one argument: the client does
    not build a command per event). ``send`` does not wait for the server: the caller reads and checks the next
    rows while Redis appends these, in the same thread (no second thread waiting on the interpreter lock for its
    reply), and the next ``send`` or ``wait`` collects the count. One call is in flight at a time."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys
        self.ledger = f"{keys.prefix}:imported"
        self._conn: Connection | None = None  # the connection of the call in flight
        self._args: list[bytes | str | int] = []  # and the call

    def send(self, batches: Sequence[tuple[int, bytes]]) -> int:
        """Start appending ``(shard, its events encoded by encode_wire, each followed or separated by SEP)``;
        returns what ``wait`` returns for the call before it."""
        done = self.wait()
        batches = [(shard, events) for shard, events in batches if events]
        if not batches:
            return done
        args: list[bytes | str | int] = ["EVAL", _APPEND, 1 + len(batches), self.ledger]
        args += [self.keys.events(shard) for shard, _ in batches]
        args.append(WIRE_FIELD)
        args += [events for _, events in batches]
        self._args = args
        try:
            conn = self.client.connection_pool.get_connection()
        except (ConnectionError, TimeoutError):
            return done + self._again()
        try:
            conn.send_command(*args)
        except (ConnectionError, TimeoutError):
            conn.disconnect()
            self.client.connection_pool.release(conn)
            self._conn = None
            return done + self._again()
        except BaseException:
            self.client.connection_pool.release(conn)
            raise
        self._conn = conn
        return done

    def wait(self) -> int:
        """The number of events the call in flight appended (0 when none is): waits for its reply."""
        conn, self._conn = self._conn, None
        if conn is None:
            return 0
        try:
            return int(cast(int, conn.read_response()))
        except (ConnectionError, TimeoutError):
            conn.disconnect()
            return self._again()
        finally:
            self.client.connection_pool.release(conn)

    def _again(self) -> int:
        """The call in flight once more, when its connection failed, through the client (and its retries): the
        ledger skips what the first one appended, so nothing is appended twice (though those are not counted)."""
        return int(cast(int, self.client.execute_command(*self._args)))

    def append(self, shard: int, payloads: Sequence[bytes]) -> int:
        """Append price events (``encode_wire``) to the stream of ``shard``, each at most once; the number appended."""
        done = self.wait()
        for i in range(0, len(payloads), APPEND_CHUNK):
            done += self.send([(shard, SEP.join(payloads[i:i + APPEND_CHUNK]))])
        return done + self.wait()
