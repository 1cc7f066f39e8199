"""YAML with line numbers: load a document into plain Python values and remember, for every path
(``("rules", 0, "price", "above")``), the line it stands on, so errors can name the exact line.

It also catches the one YAML trap rule files fall into: inside a flow mapping (``{ }``) a comma
separates entries, so ``{above: 450,000 CNY/t}`` reads as ``above: 450`` and a key ``000 CNY/t``.
``load_document`` reports each such number as a ``SplitNumber`` (and leaves the bogus keys out);
``load`` refuses the document with a message saying to quote the value or use block style.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from alerts.errors import RuleError

#: Where a value stands in a document: its keys and list indexes from the top.
KeyPath = tuple[str | int | float | bool, ...]


#: libyaml's parser when PyYAML was built with it (much faster on large rule sets), else pure Python.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(RuleError, ValueError):
    """A rule file that is not YAML, or YAML beyond the limits; ``line`` is where."""

    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


#: Most values one document may expand to: aliases can multiply a small file into billions of nodes.
MAX_NODES = 200_000


@dataclass(frozen=True)
class SplitNumber:
    """A number with thousands separators that YAML cut at its commas inside a ``{ }`` mapping."""

    path: KeyPath  # the key that got the first digits: ("rules", 0, "price", "above")
    text: str  # what was written: "450,000 CNY/t"
    line: int
    rest: tuple[str, ...]  # the keys the other groups became, left out of the document: ("000 CNY/t",)

    @property
    def key(self) -> str:
        return str(self.path[-1]) if self.path else ""

    def message(self, label: str) -> str:
        """What happened and how to fix it; ``label`` names the key (``price.above``)."""
        lead = self.text.split(",", 1)[0]
        rest = " and ".join(repr(r) for r in self.rest)
        keys = "a key" if len(self.rest) == 1 else "keys"
        return (f"{label}: {self.text} inside {{ }} reads as {self.key}: {lead} and {keys} {rest}, because a comma "
                f"separates the entries of a {{ }} mapping: quote the value ({self.key}: \"{self.text}\") "
                "or use block style")


@dataclass
class Document:
    value: Any
    lines: dict[KeyPath, int]
    splits: list[SplitNumber]


def load(text: str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse one YAML document. Raises YamlError (with a 1-based line) on syntax errors, duplicate keys,
    values that are not what they look like (a date 2025-02-30), documents that expand too far, and
    numbers cut at their thousands separators inside a ``{ }`` mapping."""
    doc = load_document(text)
    if doc.splits:
        first = doc.splits[0]
        raise YamlError(first.line, first.message(".".join(map(str, first.path))))
    return doc.value, doc.lines


def load_document(text: str) -> Document:
    """``load``, except that numbers cut at their commas inside ``{ }`` are returned as
    ``Document.splits`` (their first digits stay in the document, the rest is left out) for the
    caller to report with a rule id."""
    loader = _Loader(text)
    splits: list[SplitNumber] = []
    try:
        node = loader.get_single_node()
        lines: dict[KeyPath, int] = {}
        value = _convert(loader, node, (), lines, [0], splits) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlError(line, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (control characters)
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else 1
        raise YamlError(line, f"invalid YAML: character {exc.character!r} is not allowed") from None
    except yaml.YAMLError as exc:
        raise YamlError(1, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise YamlError(1, "invalid YAML: an alias refers to itself or nests too deep") from None
    finally:
        loader.dispose()
    return Document(value, lines, splits)


#: The first digits of a number cut at a comma, the middle groups, the last group (decimals, unit).
_LEAD = re.compile(r"^[+-]?\d+$")
_GROUP = re.compile(r"^\d{3}$")
_LAST_GROUP = re.compile(r"^\d{3}(?:\.\d+)?(?:\s*[^\d\s,.][^,]*)?$")


def _plain(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and not node.style  # None (pure Python) or "" (libyaml)


def _split_numbers(node: yaml.MappingNode) -> dict[int, tuple[int, ...]]:
    """In a flow mapping: index of each entry whose value is the first digits of a number cut at its
    commas -> the indexes of the entries (keys without values) the other digit groups became."""
    out: dict[int, tuple[int, ...]] = {}
    pairs = node.value
    i = 0
    while i < len(pairs):
        value = pairs[i][1]
        rest: list[int] = []
        if _plain(value) and _LEAD.match(value.value):
            j = i + 1
            while j < len(pairs):
                k, v = pairs[j]
                if not (_plain(k) and _LAST_GROUP.match(k.value) and _plain(v) and v.value == ""):
                    break
                rest.append(j)
                j += 1
                if not _GROUP.match(k.value):  # decimals or a unit end the number
                    break
        if rest:
            out[i] = tuple(rest)
            i = rest[-1]
        i += 1
    return out


def _convert(loader: Any, node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], count: list[int],
             splits: list[SplitNumber]) -> Any:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise YamlError(node.start_mark.line + 1, f"the document expands to more than {MAX_NODES:,} values "
                        "(aliases of aliases?)")
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        cut = _split_numbers(node) if node.flow_style else {}
        skip = {j for rest in cut.values() for j in rest}
        for n, (key_node, value_node) in enumerate(node.value):
            if n in skip:
                continue
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise YamlError(key_node.start_mark.line + 1, f"mapping key {key!r} is not a plain value")
            if key in out:
                raise YamlError(key_node.start_mark.line + 1, f"duplicate key {key!r}")
            sub = (*path, key)
            lines[sub] = key_node.start_mark.line + 1
            out[key] = _convert(loader, value_node, sub, lines, count, splits)
            if n in cut:
                rest = tuple(node.value[j][0].value for j in cut[n])
                splits.append(SplitNumber(sub, ",".join((value_node.value, *rest)), value_node.start_mark.line + 1,
                                          rest))
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, (*path, i), lines, count, splits) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # a scalar that looks like a date or number but is not one: 2025-02-30
        raise YamlError(node.start_mark.line + 1, f"{node.value!r} is not valid: {exc}") from None


def line_of(lines: Mapping[KeyPath, int], path: KeyPath) -> int:
    """The line of the longest known prefix of ``path``."""
    for n in range(len(path), -1, -1):
        line = lines.get(path[:n])
        if line is not None:
            return line
    return 1
