"""The sandbox: Jinja2's immutable sandbox with every operator, call, filter, ``~`` and captured block
bounded, and ``render``, which runs a template under a budget (see ``alerts.rules.template_limits``)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.environment import Template
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

from alerts.rules.template_limits.budget import (
    BITS,
    BUILT,
    MAX_BITS,
    MAX_BUILT,
    MAX_SIZE,
    SIZE,
    Budget,
    LimitExceeded,
    allow,
    built,
    current,
    enter,
    refuse,
    size,
)
from alerts.rules.template_limits.calls import bounded_filter, check_call, percent_size

# --- the sandbox


def _number(n: int) -> str:
    return str(n) if n.bit_length() <= 64 else f"a {n.bit_length()}-bit number"


def _check_power(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        if (abs(left).bit_length() - 1) * right + 1 > MAX_BITS:
            refuse(BITS, f"{_number(left)} to the exponent {_number(right)}")


def _check_repeat(left: Any, right: Any) -> None:
    for seq, n in ((left, right), (right, left)):
        if isinstance(seq, str | bytes | list | tuple) and isinstance(n, int):
            allow(size(seq) * max(n, 0), f"repeating text or a list {n} times")


class _Buffer(list[str]):
    """The text a ``{% set %}`` block, a macro or a call or filter block captures: at most MAX_SIZE."""

    __slots__ = ("chars",)

    def __init__(self) -> None:
        super().__init__()
        self.chars = 0

    def append(self, piece: str) -> None:
        n = len(piece) if isinstance(piece, str) else 0
        self.chars += n
        if self.chars > MAX_SIZE:
            refuse(SIZE, "captured text")
        budget = current.get()
        if budget is not None:
            budget.built += n
            if budget.built > MAX_BUILT:
                refuse(BUILT)
        super().append(piece)

    def extend(self, pieces: Iterable[str]) -> None:
        for piece in pieces:
            self.append(piece)


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with ``~`` and block buffers bounded."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat(context, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with every operator, call, filter, ``~`` and captured block bounded."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"**", "*", "%", "+", "-", "/", "//"})
    intercepted_unops = frozenset({"-", "+"})

    def bound_filters(self) -> None:
        """Wrap every filter (call once the filters are all set)."""
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        enter()
        for v in left, right:
            if isinstance(v, int) and v.bit_length() > MAX_BITS:
                refuse(BITS, f"a {v.bit_length()}-bit integer")
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_repeat(left, right)
        elif operator == "%" and isinstance(left, str | bytes):
            allow(percent_size(left, right), "% formatting")
        return built(super().call_binop(context, operator, left, right))

    def call_unop(self, context: Context, operator: str, arg: Any) -> Any:
        enter()
        return built(super().call_unop(context, operator, arg))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        enter()
        args = check_call(obj, args, kwargs)
        return built(super().call(context, obj, *args, **kwargs))

    def bounded_concat(self, context: Context, parts: tuple[Any, ...]) -> str:
        enter()
        total = 0
        for part in parts:
            total += len(part) if isinstance(part, str) else len(str(part))
            if total > MAX_SIZE:
                refuse(SIZE, "joining text with ~")
        joined: str = (markup_join if context.eval_ctx.autoescape else str_join)(parts)
        built(joined)
        return joined

    @staticmethod
    def bounded_buffer() -> list[str]:
        return _Buffer()


def check_literals(ast: nodes.Template) -> None:
    """Raises LimitExceeded for an integer written in the template that is over MAX_BITS."""
    for const in ast.find_all(nodes.Const):
        if isinstance(const.value, int) and const.value.bit_length() > MAX_BITS:
            raise LimitExceeded(BITS, f"a {const.value.bit_length()}-bit number written in it")


def render(template: Template, values: Mapping[str, Any], max_chars: int = MAX_SIZE) -> str:
    """Render with the limits (at most ``max_chars`` of output are kept; more is not rendered). Raises
    LimitExceeded naming the limit passed; other errors of the template propagate as they are."""
    budget = Budget()
    token = current.set(budget)
    previous = sys.gettrace()
    pieces: list[str] = []
    chars = 0
    sys.settrace(budget.trace)
    try:
        stream = template.root_render_func(template.new_context(dict(values)))
        try:
            for piece in stream:
                pieces.append(piece)
                chars += len(piece)
                if chars >= max_chars:
                    break
        finally:
            stream.close()  # type: ignore[attr-defined]
    finally:
        sys.settrace(previous)
        current.reset(token)
    if budget.hit is not None:
        raise budget.hit
    return "".join(pieces)[:max_chars]
