"""Writing imported history (``alerts import``): which quotes the stored history already holds, and appending
many events to the event streams at once.

Imported quotes go the one way every event goes: on the event streams, in their typed wire form, so the
evaluators put them into the product states (change windows), the quote history (backtests) and the spread
legs exactly as they do live. An imported quote carries ``PriceEvent.history``: the evaluator evaluates it
silently (``alerts.evaluate.session``). Appending is one server-side script call per chunk of events rather
than one XADD each from the client: the import's speed is not bound by building commands in Python."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import cast

import redis

from alerts.store.keys import Keys
from alerts.store.streams import WIRE_FIELD

#: Events appended per script call.
APPEND_CHUNK = 2000
#: Separates the events in the one argument a script call takes: the wire form is JSON, which never holds a
#: raw line break.
SEP = b"\n"

# ARGV: the wire field, the price events (``encode_wire``) separated by SEP. The ledger set (KEYS[2]) holds the
# id (as JSON-escaped on the wire: the tag, then the id, then the product) of every quote imported: one already
# there is not appended again.
_APPEND = """
local field, events = ARGV[1], ARGV[2]
local pos, n, len = 1, 0, #events
while pos <= len do
  local e = string.find(events, "\\n", pos, true) or (len + 1)
  local event = string.sub(events, pos, e - 1)
  local id = string.match(event, '^{"type":"price","id":"(.-)","product":"') or event
  if redis.call('SADD', KEYS[2], id) == 1 then
    redis.call('XADD', KEYS[1], '*', field, event)
    n = n + 1
  end
  pos = e + 1
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


class StreamAppender:
    """Appends wire-encoded events to the event streams, in order within each stream, a chunk per script call,
    each event at most once ever: the ledger of imported quotes (``P:imported``, a set of event ids)
    remembers the id of every one appended, so an import run twice, even before any evaluator read the first, adds
    nothing. Packed as one argument per chunk: the client does not build a command per event."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.client = client
        self.keys = keys
        self.ledger = f"{keys.prefix}:imported"
        self._script = client.register_script(_APPEND)

    def append(self, shard: int, payloads: Sequence[bytes]) -> int:
        """Append price events (``encode_wire``) to the stream of ``shard``, each at most once; the number appended."""
        stream = self.keys.events(shard)
        done = 0
        for i in range(0, len(payloads), APPEND_CHUNK):
            args: list[bytes | str] = [WIRE_FIELD, SEP.join(payloads[i:i + APPEND_CHUNK])]
            done += int(cast(int, self._script(keys=[stream, self.ledger], args=args)))
        return done
