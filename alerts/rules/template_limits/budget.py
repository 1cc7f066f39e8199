"""The budget of one render and the sizes of values: the limits themselves, ``LimitExceeded``, the step
and clock counting trace function, and the measure of a value (``size``). See ``alerts.rules.template_limits``."""

from __future__ import annotations

import time
import types
from collections.abc import ItemsView, Iterable, KeysView, ValuesView
from contextvars import ContextVar
from typing import Any, NoReturn

from alerts.errors import RuleError

MAX_BITS = 256
#: Characters of a string, or elements (counted deep) of a list, tuple or dict, a template may build.
MAX_SIZE = 10_000
#: Characters and elements one render may build in all.
MAX_BUILT = 100_000
#: Python calls and template lines one render may run.
MAX_STEPS = 10_000
#: Wall-clock time one render may take.
MAX_SECONDS = 0.05

BITS = f"{MAX_BITS}-bit integer limit"
SIZE = f"{MAX_SIZE:,}-character size limit"
BUILT = f"{MAX_BUILT:,}-character limit on what one render builds"
STEPS = f"{MAX_STEPS:,}-step limit"
TIME = f"{MAX_SECONDS * 1000:.0f} ms time limit"


class LimitExceeded(RuleError):
    """A template went past one of the limits; ``limit`` names it (``BITS``, ``SIZE``, ...)."""

    def __init__(self, limit: str, detail: str = ""):
        self.limit = limit
        super().__init__(f"template exceeds the {limit}" + (f" ({detail})" if detail else ""))


class Budget:
    """One render's steps, what it has built, its deadline and the first limit it hit.

    The trace function counts every event but raises only in a template's own frame (and the hooks, through
    ``enter``, only in theirs): an exception raised in some other frame that runs meanwhile (a garbage
    collector callback, a finalizer) would be swallowed there and switch the tracer off."""

    __slots__ = ("built", "deadline", "hit", "mark", "steps", "trace")

    def __init__(self) -> None:
        self.steps = 0
        self.mark = 32  # the step count at which to look at the limits and the clock next
        self.built = 0
        self.hit: LimitExceeded | None = None
        self.deadline = time.perf_counter() + MAX_SECONDS
        self.trace = self._trace  # one bound method, handed back for every template frame

    def _trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        self.steps += 1
        if frame.f_code.co_filename != "<template>":
            return None
        if self.steps >= self.mark:
            self.check()
        return self.trace

    def check(self) -> None:
        """Raises LimitExceeded once the steps or the time are up, or a limit was hit before."""
        self.mark = self.steps + 32
        if self.hit is not None:
            raise self.hit
        if self.steps > MAX_STEPS:
            refuse(STEPS)
        if time.perf_counter() > self.deadline:
            refuse(TIME)


current: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def refuse(limit: str, detail: str = "") -> NoReturn:
    exc = LimitExceeded(limit, detail)
    budget = current.get()
    if budget is not None and budget.hit is None:
        budget.hit = exc
        budget.mark = 0
    raise exc


def enter() -> None:
    """At the start of each hook: raises when the render's steps or time are up or a limit was hit."""
    budget = current.get()
    if budget is not None and budget.steps >= budget.mark:
        budget.check()


_CONTAINERS = (list, tuple, dict, set, frozenset, KeysView, ValuesView, ItemsView)


def size(value: Any, limit: int = MAX_SIZE) -> int:
    """Characters of text; for a container its length plus its items' sizes; about the digits of a number.
    Stops counting past ``limit``. Raises LimitExceeded for an integer over MAX_BITS."""
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str | bytes | bytearray):
            total += len(v)
        elif isinstance(v, int):
            bits = v.bit_length()
            if bits > MAX_BITS:
                refuse(BITS, f"a {bits}-bit integer")
            total += bits // 3 + 1
        elif isinstance(v, float | complex):
            total += 24
        elif isinstance(v, _CONTAINERS):
            total += len(v)
            if total > limit:
                return total
            if isinstance(v, dict):
                stack.extend(v.keys())
                stack.extend(v.values())
            else:
                stack.extend(v)
        else:
            total += 1
        if total > limit:
            return total
    return total


def shape(value: Any) -> tuple[int, int]:
    """Elements and nesting depth of a (size-checked) value."""
    elements, depth, stack = 0, 0, [(value, 0)]
    while stack and elements <= MAX_SIZE:
        v, d = stack.pop()
        depth = max(depth, d)
        if isinstance(v, _CONTAINERS):
            elements += len(v)
            stack.extend((item, d + 1) for item in ([*v.keys(), *v.values()] if isinstance(v, dict) else v))
    return elements, depth


def built(value: Any) -> Any:
    """``value``, after checking its size and counting it against the render's budget."""
    n = size(value)
    if n > MAX_SIZE:
        refuse(SIZE, f"a {type(value).__name__} larger than that")
    budget = current.get()
    if budget is not None:
        budget.built += n
        if budget.built > MAX_BUILT:
            refuse(BUILT)
    return value


def allow(estimate: int, what: str) -> None:
    if estimate > MAX_SIZE:
        refuse(SIZE, f"{what} would build up to {estimate:,}")


def _arg_size(value: Any) -> int:
    return abs(value) if isinstance(value, int) else size(value)


def product_rule(receiver: Any, args: Iterable[Any], what: str) -> None:
    """The rule for a callable not known here: its receiver's size times its arguments' sizes."""
    allow((size(receiver) + 1) * (1 + sum(_arg_size(v) for v in args)), what)


def int_sizes(args: Iterable[Any], what: str) -> None:
    """Integer arguments that are sizes (widths, counts, lengths) are at most MAX_SIZE."""
    for v in args:
        if isinstance(v, int) and abs(v) > MAX_SIZE:
            refuse(SIZE, f"{what} with {v}")
