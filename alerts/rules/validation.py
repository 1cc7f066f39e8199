"""A rule file's YAML values validated against the models (``alerts.rules.models``), each pydantic error
turned into one ``Problem`` with the file, the line of its key and the rule id, worded for a trader
(``alerts.rules.limits``; unknown keys with a did-you-mean). Used by the rule compiler and the sources file."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from alerts.errors import Problem
from alerts.rules.limits import describe, shown, strip_tags, without_union_noise
from alerts.rules.models import (
    Change,
    Digest,
    NewsCondition,
    Part,
    PriceCondition,
    ProductDef,
    Rule,
    SpreadCondition,
    StaleCondition,
)
from alerts.rules.salvage import model_at, suggestion
from alerts.rules.yaml_lines import KeyPath, SplitNumber, line_of

_KNOWN_KEYS = sorted({name for m in (Rule, PriceCondition, NewsCondition, Change, Digest, ProductDef,
                                     SpreadCondition, StaleCondition, Part)
                      for name in m.model_fields})


@dataclass
class ParsedFile:
    """One rule file as plain YAML values, with the line of every key path (``yaml_lines.load``)."""

    path: str
    data: dict[str, Any]
    lines: dict[KeyPath, int]
    #: numbers YAML cut at their commas inside { } (``yaml_lines.SplitNumber``), reported by the loader
    splits: list[SplitNumber] = field(default_factory=list)


def label(path: Iterable[Any]) -> str:
    """A key path as messages name it: ``all_of.0.price.above``."""
    return ".".join(map(str, path))


def error_text(err: ErrorDetails, model: type[BaseModel] | None) -> tuple[KeyPath, str]:
    """Where a validation error of ``model`` is (union member tags dropped), and what it says."""
    loc = strip_tags(err["loc"])
    if err["type"] == "extra_forbidden":
        msg = f"unknown key {shown(loc[-1])}" if loc else "unknown key"
        owner = model_at(model, loc[:-1]) if model is not None and loc else None
        if owner is not None:  # the keys of the mapping it is in
            close = suggestion(owner, loc[-1])
        else:
            close = next(iter(difflib.get_close_matches(str(loc[-1]), _KNOWN_KEYS, n=1)), None) if loc else None
        if close:
            msg += f" (did you mean {close!r}?)"
    elif err["type"] == "missing":
        msg = f"missing required key {loc[-1]!r}" if loc else "missing required key"
    else:
        msg = describe(loc, err)  # limits, mapping keys: alerts.rules.limits
    return loc, msg


def _pydantic_problems(errors: Iterable[ErrorDetails], path: str, lines: Mapping[KeyPath, int], base: KeyPath,
                       rule_id: str | None, model: type[BaseModel] | None = None) -> list[Problem]:
    out = []
    for err in without_union_noise(list(errors)):
        loc, msg = error_text(err, model)
        out.append(Problem(path, line_of(lines, base + loc), rule_id, msg))
    # several union members give one error each for the same key; keep the first per line and text
    return list(dict.fromkeys(out))


def validate(model: type[BaseModel], item: Any, p: ParsedFile, base: KeyPath, rid: str | None,
             problems: list[Problem]) -> Any:
    """``item`` validated as ``model``, or None with the problems (and their lines) appended."""
    if not isinstance(item, dict):
        problems.append(Problem(p.path, line_of(p.lines, base), rid, "expected a mapping"))
        return None
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        cut = [sp.path for sp in p.splits]  # a number cut at its commas is reported as such (SplitNumber)
        errors = [e for e in exc.errors(include_url=False)
                  if not any((*base, *e["loc"])[:len(c)] == c for c in cut)]
        problems.extend(_pydantic_problems(errors, p.path, p.lines, base, rid, model))
        return None
