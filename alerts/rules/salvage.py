"""Check the rest of a rule that did not validate, so one ``rules check`` reports every problem.

Pydantic rejects a rule with an unknown or invalid key as a whole, so the checks that need a whole
rule (the products exist, the targets and durations read, the units convert) would only run once
that key is fixed: fix, run again, see the rest. ``repair`` builds a copy of the rule that validates
leniently (``models.LENIENT``, without the checks that span several keys):

- a misspelled key is renamed to the key it resembles (the did-you-mean of its message);
- a number YAML cut at its commas inside ``{ }`` is put back together (``yaml_lines.SplitNumber``);
- any other unknown or invalid key is left out, and a sub-condition that misses a required key too;
- a missing ``id`` or ``notify`` gets a placeholder.

The loader checks that copy as usual and reports its problems at the lines of the original (``lines``
maps every path of the copy to the line of the key it came from); nothing is compiled from it.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from alerts.rules.models import FREE_KEYS, LENIENT
from alerts.rules.yaml_lines import KeyPath, line_of

#: Placeholders for the keys a rule cannot be checked without.
PLACEHOLDERS: dict[str, Any] = {"id": "-", "notify": ["console"]}
#: Rounds of repair before giving up (each round fixes what the previous validation found).
MAX_ROUNDS = 12


def model_at(model: type[BaseModel], path: Iterable[Any]) -> type[BaseModel] | None:
    """The model that validates the mapping at ``path`` below ``model`` (list indexes skipped), or None."""
    cur: type[BaseModel] | None = model
    for el in path:
        if isinstance(el, int) and not isinstance(el, bool):
            continue
        if cur is None:
            return None
        f = cur.model_fields.get(el) if isinstance(el, str) else None
        cur = _inner_model(f.annotation) if f is not None else None
    return cur


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def suggestion(model: type[BaseModel] | None, key: object, taken: Iterable[object] = ()) -> str | None:
    """The key of ``model`` that ``key`` looks like a misspelling of, other than those ``taken``."""
    if model is None or not isinstance(key, str):
        return None
    names = [n for n in model.model_fields if n not in set(taken)]
    close = difflib.get_close_matches(key, names, n=1)
    return close[0] if close else None


def actual_path(data: Any, loc: Iterable[Any]) -> KeyPath:
    """The longest prefix of an error location that exists in ``data`` (union member tags dropped)."""
    out: list[Any] = []
    cur = data
    for el in loc:
        if isinstance(cur, dict) and isinstance(el, str | int) and el in cur:
            cur = cur[el]
        elif isinstance(cur, list) and isinstance(el, int) and not isinstance(el, bool) and 0 <= el < len(cur):
            cur = cur[el]
        else:
            break
        out.append(el)
    return tuple(out)


@dataclass
class Repaired:
    """A copy of a rule that validates leniently, and how it maps back to what was written."""

    rule: Any  # the leniently validated model
    lines: dict[KeyPath, int]  # path in the copy (from the rule) -> line in the file
    renamed: dict[KeyPath, str]  # path as written -> the key it was renamed to
    deleted: set[KeyPath]  # paths as written that were left out
    errors: list[tuple[int, ErrorDetails]]  # errors found under renamed keys, with their lines
    hidden: list[tuple[int, ErrorDetails]]  # checks spanning several keys the original never reached


@dataclass
class _Ops:
    renamed: dict[KeyPath, str] = field(default_factory=dict)
    deleted: set[KeyPath] = field(default_factory=set)
    replaced: dict[KeyPath, Any] = field(default_factory=dict)
    inserted: dict[str, Any] = field(default_factory=dict)


def _rebuild(value: Any, path: KeyPath, cpath: KeyPath, ops: _Ops, to_orig: dict[KeyPath, KeyPath]) -> Any:
    to_orig[cpath] = path
    if path in ops.replaced:
        return ops.replaced[path]
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            sub: KeyPath = (*path, k)
            if sub in ops.deleted:
                continue
            key: Any = ops.renamed.get(sub, k)
            out[key] = _rebuild(v, sub, (*cpath, key), ops, to_orig)
        if not path:
            for name, placeholder in ops.inserted.items():
                out.setdefault(name, placeholder)
        return out
    if isinstance(value, list):
        items: list[Any] = []
        for j, v in enumerate(value):
            sub = (*path, j)
            if sub not in ops.deleted:
                items.append(_rebuild(v, sub, (*cpath, len(items)), ops, to_orig))
        return items
    return value


def _op(model: type[BaseModel], copy: Any, to_orig: Mapping[KeyPath, KeyPath], err: ErrorDetails,
        ops: _Ops) -> bool:
    """Add the repair for one validation error of the copy; False when there is none to make."""
    cpath = actual_path(copy, err["loc"])
    if err["type"] == "missing":
        name = err["loc"][-1] if err["loc"] else None
        if not cpath:
            if isinstance(name, str) and name in PLACEHOLDERS and name not in ops.inserted:
                ops.inserted[name] = PLACEHOLDERS[name]
                return True
            return False
        orig = to_orig[cpath]
        if orig in ops.deleted:
            return False
        ops.deleted.add(orig)  # a sub-condition without a required key: leave it out
        return True
    if not cpath:
        return False
    orig = to_orig[cpath]
    if err["type"] == "extra_forbidden" and orig not in ops.renamed:
        parent = copy
        for el in cpath[:-1]:
            parent = parent[el]
        taken = [*parent, *(v for p, v in ops.renamed.items() if p[:-1] == orig[:-1])]
        close = suggestion(model_at(model, cpath[:-1]), cpath[-1], taken)
        if close is not None:
            ops.renamed[orig] = close
            return True
    if orig in ops.deleted:
        return False
    ops.deleted.add(orig)
    return True


def repair(model: type[BaseModel], item: dict[Any, Any], lines: Mapping[KeyPath, int], base: KeyPath,
           replaced: Mapping[KeyPath, Any]) -> Repaired | None:
    """A leniently valid copy of ``item`` (written at ``base``; ``lines`` are the file's), with the
    values of ``replaced`` (paths from ``item``) put in; None when the rule cannot be made checkable."""
    ops = _Ops(replaced=dict(replaced))
    errors: list[tuple[int, ErrorDetails]] = []
    for _ in range(MAX_ROUNDS):
        to_orig: dict[KeyPath, KeyPath] = {}
        copy = _rebuild(item, (), (), ops, to_orig)
        try:
            rule = model.model_validate(copy, context=LENIENT)
        except ValidationError as exc:
            found = exc.errors(include_url=False)
            for err in found:
                cpath = actual_path(copy, err["loc"])
                written = to_orig.get(cpath, ())
                if err["type"] != "missing" and any(written[:len(p)] == p for p in ops.renamed):
                    errors.append((line_of(lines, (*base, *written)), err))
            if not any([_op(model, copy, to_orig, err, ops) for err in found]):
                return None
            continue
        out_lines = {base[:n]: lines[base[:n]] for n in range(len(base) + 1) if base[:n] in lines}
        for cpath, orig in to_orig.items():
            out_lines[(*base, *cpath)] = line_of(lines, (*base, *orig))
        hidden = [(line_of(out_lines, (*base, *cpath)), err) for cpath, err in _hidden(model, copy, to_orig, ops)]
        return Repaired(rule, out_lines, dict(ops.renamed), set(ops.deleted), errors, hidden)
    return None


def _hidden(model: type[BaseModel], copy: Any, to_orig: Mapping[KeyPath, KeyPath],
            ops: _Ops) -> list[tuple[KeyPath, ErrorDetails]]:
    """The strict checks of the repaired copy that nothing left out can have caused: a rule whose
    ``severty: urgent`` was left out can still give two conditions. A check of a mapping is taken to
    depend on every key of it, but those of ``FREE_KEYS`` at the top of a rule."""
    try:
        model.model_validate(copy)
    except ValidationError as exc:
        out = []
        gone = [p for p in ops.deleted if not (len(p) == 1 and ops.renamed.get(p, p[0]) in FREE_KEYS)]
        for err in exc.errors(include_url=False):
            cpath = actual_path(copy, err["loc"])
            written = to_orig.get(cpath, ())
            if err["type"] == "missing" or any(p[:-1] == written for p in gone):
                continue
            out.append((cpath, err))
        return out
    return []
