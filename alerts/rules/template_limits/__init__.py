"""Limits on what a ``message:`` or digest ``subject:`` template may compute, whatever is written, so that no
template can hold a worker (and its GIL) for long or fill its memory.

Sizes, checked on every value a template builds:

- an integer has at most ``MAX_BITS`` (256) bits (up to 78 digits: any price arithmetic fits, ``(10**64)**64``
  does not);
- a string, list, tuple or dict holds at most ``MAX_SIZE`` (10,000) characters or elements, counted deep (a
  list's size is its length plus its items' sizes; a number counts about its digits);
- one render builds at most ``MAX_BUILT`` (100,000) of them in all.

How: every arithmetic operator is intercepted (``call_binop``, ``call_unop``: this also keeps Jinja from
folding them while compiling), every filter is wrapped (``bounded_filter``), every call goes through ``call``,
and a code generator routes ``~`` and the buffers of ``{% set %}`` blocks, macros and call and filter blocks
through a bounded join and a bounded list. Each checks the size of what it produced. Where a single C call
could build something huge before it returns (``x ** n``, ``'x' * n``, ``'%0999999d' % 1``,
``'{:>999999}'.format(1)``, ``replace``, ``join``, ``indent``, ``expandtabs``, ``wordwrap(wrapstring=...)``,
``tojson(indent)``), the size is estimated from the arguments first and the call refused. An integer argument
of a filter or of a str, bytes or number method is a size (a width, a count) and at most MAX_SIZE, except
where it is a value (``default``, ``format``, ``select('gt', 500000)``...). A callable not named here is
refused when its receiver's size times its arguments' sizes passes MAX_SIZE. Tests (``is divisibleby``) are
not wrapped: they return booleans and their arguments are values.

Time: a render runs under ``sys.settrace`` with a trace function that counts steps (each Python call, and
each line of a template's compiled code), at most ``MAX_STEPS`` (10,000), and looks at the clock every 32
steps, at most ``MAX_SECONDS`` (50 ms). Why this way: every pure-Python loop a template can make (for loops,
nested loops over a string, ``loop()`` recursion, macros calling macros, a filter's generator) passes through
template lines or Python calls, so it cannot escape the count; the tracer is there only while a template
renders (the previous one is put back), so rules without templates and all other code pay nothing, and a
render pays about half a microsecond a step (the message of rules/examples/advanced.yaml: about 100 steps,
40 us more than without the limits); counting steps makes the outcome the same on a loaded machine
(``rules check`` answers alike each time), the clock is the backstop. A helper subprocess with a hard timeout
would cost a process round trip per alert and a pool to look after; a counting ``range()`` alone would miss
loops over strings and recursion. A single C call is bounded by the size checks (about MAX_SIZE of work).

A render that passes a limit raises ``LimitExceeded``, which names it (``template exceeds the 256-bit integer
limit``); ``alerts.rules.templates`` makes that a ``rules check`` error, or at alert time the rule's default
text. ``LimitExceeded`` is not a ValueError or TypeError, which filters catch, and it is raised only in a
template's own frames and in the hooks, never in some other code that runs meanwhile (a garbage collector
callback would swallow it and switch the tracer off); the render records the first limit hit and raises it
again at the next step, so even a swallowed one ends the render.
"""

from alerts.rules.template_limits.budget import (
    BITS,
    BUILT,
    MAX_BITS,
    MAX_BUILT,
    MAX_SECONDS,
    MAX_SIZE,
    MAX_STEPS,
    SIZE,
    STEPS,
    TIME,
    LimitExceeded,
    size,
)
from alerts.rules.template_limits.sandbox import Sandbox, check_literals, render

__all__ = [
    "BITS", "BUILT", "MAX_BITS", "MAX_BUILT", "MAX_SECONDS", "MAX_SIZE", "MAX_STEPS", "SIZE", "STEPS", "TIME",
    "LimitExceeded", "Sandbox", "check_literals", "render", "size",
]
