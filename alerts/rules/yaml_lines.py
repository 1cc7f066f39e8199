"""YAML with line numbers: load a document into plain Python values and remember, for every path
(``("rules", 0, "price", "above")``), the line it stands on, so errors can name the exact line."""

from __future__ import annotations

from typing import Any

import yaml

#: Where a value stands in a document: its keys and list indexes from the top.
KeyPath = tuple[str | int | float | bool, ...]


#: libyaml's parser when PyYAML was built with it (much faster on large rule sets), else pure Python.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(ValueError):
    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(message)


#: Most values one document may expand to: aliases can multiply a small file into billions of nodes.
MAX_NODES = 200_000


def load(text: str) -> tuple[Any, dict[KeyPath, int]]:
    """Parse one YAML document. Raises YamlError (with a 1-based line) on syntax errors, duplicate keys,
    values that are not what they look like (a date 2025-02-30), and documents that expand too far."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[KeyPath, int] = {}
        value = _convert(loader, node, (), lines, [0]) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlError(line, f"invalid YAML: {exc.problem or exc.context}") from None
    except RecursionError:
        raise YamlError(1, "invalid YAML: an alias refers to itself or nests too deep") from None
    finally:
        loader.dispose()
    return value, lines


def _convert(loader: Any, node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], count: list[int]) -> Any:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise YamlError(node.start_mark.line + 1, f"the document expands to more than {MAX_NODES:,} values "
                        "(aliases of aliases?)")
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise YamlError(key_node.start_mark.line + 1, f"mapping key {key!r} is not a plain value")
            if key in out:
                raise YamlError(key_node.start_mark.line + 1, f"duplicate key {key!r}")
            sub = (*path, key)
            lines[sub] = key_node.start_mark.line + 1
            out[key] = _convert(loader, value_node, sub, lines, count)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, (*path, i), lines, count) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # a scalar that looks like a date or number but is not one: 2025-02-30
        raise YamlError(node.start_mark.line + 1, f"{node.value!r} is not valid: {exc}") from None


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int:
    """The line of the longest known prefix of ``path``."""
    for n in range(len(path), -1, -1):
        line = lines.get(path[:n])
        if line is not None:
            return line
    return 1
