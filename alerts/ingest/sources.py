"""The operators' sources file (``ALERTS_SOURCES_FILE``, default ``./sources.yaml``): the vendor feeds the
pollers fetch. Parsed once into ``Source`` values; every problem is reported as ``FILE:LINE: NAME: message``
(``alerts sources check``), all of them in one run, and the valid sources still run.

    sources:
      - name: vendor-prices
        kind: json            # json | csv | rss   (rss covers RSS 2.0 and Atom)
        url: https://vendor.example/api/prices
        every: 15m
        headers: {Authorization: "Bearer ${VENDOR_TOKEN}"}   # ${VAR} from the environment, never logged
        map: {product: name, price: avg, unit: unit, as_of: date, low: low, high: high}

``${VAR}`` in ``url`` and ``headers`` is read from the environment when the file is loaded; a variable that
is not set is a problem of that source. The values stay out of reprs, logs and errors: a source is shown by its
name and its url as written (``Source.redact`` masks a value that would slip into a message).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, StrictInt, StrictStr, field_validator

from alerts.durations import parse_duration
from alerts.errors import Problem
from alerts.rules.validation import ParsedFile, validate
from alerts.rules.yaml_lines import YamlError, line_of, load_document

#: Columns a json or csv source maps (``map:``) or gives a constant for (``defaults:``).
COLUMNS = ("product", "price", "unit", "as_of", "source", "low", "high", "id")
#: Least time between two polls of one source (seconds).
MIN_EVERY = 1.0
#: Longest ``every:`` (seconds): a source is polled at least monthly.
MAX_EVERY = 30 * 86400.0
#: Time allowed for one fetch when the source does not say (``timeout:``; seconds).
DEFAULT_TIMEOUT = 10.0
#: Longest ``timeout:`` (seconds).
MAX_TIMEOUT = 120.0
#: Largest body read when the source does not say (``max_bytes:``): a larger one is refused, not cut.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: Largest ``max_bytes:`` a source may set.
MAX_MAX_BYTES = 200 * 1024 * 1024
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_Name = Annotated[StrictStr, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class SourceDef(BaseModel):
    """One entry of ``sources:`` as written."""

    model_config = ConfigDict(extra="forbid")

    name: _Name
    kind: Literal["json", "csv", "rss"]
    url: Annotated[StrictStr, Field(min_length=1, max_length=2000)]
    every: StrictStr | StrictInt
    headers: dict[StrictStr, StrictStr] = {}
    map: dict[StrictStr, StrictStr] = {}
    #: constants for columns the feed does not carry: ``{unit: CNY/t}``
    defaults: dict[StrictStr, StrictStr | StrictInt | float] = {}
    #: json: where the list of items is in the document (``data.prices``); default: the document itself
    items: StrictStr | None = None
    #: the events' ``source``; default: the source's name
    source: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    timeout: StrictStr | StrictInt | float | None = None
    max_bytes: Annotated[StrictInt, Field(gt=0, le=MAX_MAX_BYTES)] = DEFAULT_MAX_BYTES
    #: rss: tags every news event of this feed carries
    tags: list[Annotated[StrictStr, Field(min_length=1, max_length=64)]] = []
    enabled: StrictBool = True

    @field_validator("every")
    @classmethod
    def _every(cls, v: str | int) -> str | int:
        seconds = parse_duration(v, MAX_EVERY, f"a source is polled at least every {MAX_EVERY / 86400:g} days")
        if seconds < MIN_EVERY:
            raise ValueError(f"must be at least {MIN_EVERY:g}s")
        return v

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str | int | float | None) -> str | int | float | None:
        if v is not None:
            seconds = parse_duration(v, MAX_TIMEOUT, f"at most {MAX_TIMEOUT:g}s")
            if not 0 < seconds <= MAX_TIMEOUT:
                raise ValueError(f"must be more than 0 and at most {MAX_TIMEOUT:g}s")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://[^\s/]+", v):
            raise ValueError("must be an http:// or https:// URL")
        return v


@dataclass(frozen=True)
class Source:
    """A source ready to poll. ``url`` is as written (shown in messages); the request uses ``request_url``
    and ``headers`` with the environment's values, which never appear in a repr."""

    name: str
    kind: str
    url: str
    every: float
    timeout: float
    max_bytes: int
    mapping: Mapping[str, str]
    defaults: Mapping[str, str | int | float]
    items: tuple[str, ...]
    event_source: str
    tags: tuple[str, ...]
    path: str
    line: int
    request_url: SecretStr = field(repr=False)
    headers: Mapping[str, SecretStr] = field(repr=False, default_factory=dict)
    secrets: tuple[str, ...] = field(repr=False, default=())

    def redact(self, text: str) -> str:
        """``text`` with every value read from the environment masked."""
        for value in self.secrets:
            if value:
                text = text.replace(value, "***")
        return text


@dataclass
class SourceSet:
    path: str
    sources: list[Source] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: names of sources switched off with ``enabled: false``
    disabled: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def get(self, name: str) -> Source | None:
        return next((s for s in self.sources if s.name == name), None)


def _expand(text: str, env: Mapping[str, str], missing: list[str], secrets: list[str]) -> str:
    def sub(m: re.Match[str]) -> str:
        value = env.get(m.group(1))
        if value is None:
            missing.append(m.group(1))
            return ""
        secrets.append(value)
        return value

    return _VAR.sub(sub, text)


def load_sources(path: Path | str, env: Mapping[str, str]) -> SourceSet:
    """The sources of the file at ``path``; every problem in ``problems`` (a missing file is one)."""
    path = Path(path)
    out = SourceSet(str(path))
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        out.problems.append(Problem(str(path), 0, None, "no such file (ALERTS_SOURCES_FILE names the sources file)"))
        return out
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(Problem(str(path), 0, None, f"cannot read file: {exc}"))
        return out
    return parse_sources(text, str(path), env)


def parse_sources(text: str, path: str, env: Mapping[str, str]) -> SourceSet:
    out = SourceSet(path)
    problems = out.problems
    try:
        doc = load_document(text)
    except YamlError as exc:
        problems.append(Problem(path, exc.line, None, str(exc)))
        return out
    for sp in doc.splits:
        problems.append(Problem(path, sp.line, None, sp.message(".".join(map(str, sp.path)))))
    data, lines = doc.value, doc.lines
    if data is None:
        return out
    if not isinstance(data, dict):
        problems.append(Problem(path, 1, None, "a sources file is a mapping with the key sources:"))
        return out
    for key in data:
        if key != "sources":
            problems.append(Problem(path, line_of(lines, (key,)), None, f"unknown top-level key {key!r}; "
                                                                        "expected sources:"))
    items = data.get("sources")
    if items is None:
        return out
    if not isinstance(items, list):
        problems.append(Problem(path, line_of(lines, ("sources",)), None, "sources: must be a list"))
        return out
    parsed = ParsedFile(path, data, lines, doc.splits)
    names: dict[str, int] = {}
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else None
        before = len(problems)
        d: SourceDef | None = validate(SourceDef, item, parsed, ("sources", i), name, problems)
        if d is None:
            _check_variables(item, path, lines, ("sources", i), name, env, problems)
            continue
        line = line_of(lines, ("sources", i))
        if d.name in names:
            problems.append(Problem(path, line_of(lines, ("sources", i, "name")), d.name,
                                    f"name: {d.name!r} is used twice (first on line {names[d.name]})"))
            continue
        names[d.name] = line
        src = _source(d, path, line, lines, ("sources", i), env, problems)
        if src is None or any(p.severity == "error" for p in problems[before:]):
            continue
        if d.enabled:
            out.sources.append(src)
        else:
            out.disabled.append(d.name)
    return out


def _check_variables(item: Any, path: str, lines: dict[Any, int], base: tuple[str | int, ...], name: str | None,
                     env: Mapping[str, str], problems: list[Problem]) -> None:
    """The ${VAR}s of a source that did not validate: reported with its other problems, in one run."""
    if not isinstance(item, dict):
        return
    places: list[tuple[tuple[str, ...], object]] = [(("url",), item.get("url"))]
    headers = item.get("headers")
    if isinstance(headers, dict):
        places += [(("headers", str(k)), v) for k, v in headers.items()]
    for key, value in places:
        if isinstance(value, str):
            for var in dict.fromkeys(_VAR.findall(value)):
                if var not in env:
                    problems.append(Problem(path, line_of(lines, base + key), name,
                                            f"{'.'.join(key)}: ${{{var}}} is not set in the environment"))


def _source(d: SourceDef, path: str, line: int, lines: dict[Any, int], base: tuple[str | int, ...],
            env: Mapping[str, str], problems: list[Problem]) -> Source | None:
    def problem(key: tuple[str | int, ...], message: str) -> None:
        problems.append(Problem(path, line_of(lines, base + key), d.name, message))

    for col, where in (*((c, "map") for c in d.map), *((c, "defaults") for c in d.defaults)):
        if col not in COLUMNS:
            close = [c for c in COLUMNS if c.startswith(col[:2])]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problem((where, col), f"{where}: unknown column {col!r}{hint}; the columns are {', '.join(COLUMNS)}")
    if d.kind == "rss":
        for key in ("map", "defaults", "items"):
            if getattr(d, key):
                problem((key,), f"{key}: only for json and csv sources; an rss source gives news events")
    else:
        if d.tags:
            problem(("tags",), "tags: only for rss sources (price quotes carry no tags)")
        if d.kind == "csv" and d.items is not None:
            problem(("items",), "items: only for json sources (a CSV file is a list of rows)")
    missing: list[str] = []
    secrets: list[str] = []
    url = _expand(d.url, env, missing, secrets)
    for name in dict.fromkeys(missing):
        problem(("url",), f"url: ${{{name}}} is not set in the environment")
    headers: dict[str, SecretStr] = {}
    for key, value in d.headers.items():
        missing = []
        headers[key] = SecretStr(_expand(value, env, missing, secrets))
        for name in dict.fromkeys(missing):
            problem(("headers", key), f"headers.{key}: ${{{name}}} is not set in the environment")
    if any(p.rule_id == d.name and p.severity == "error" for p in problems):
        return None
    return Source(
        name=d.name, kind=d.kind, url=d.url, every=parse_duration(d.every),
        timeout=parse_duration(d.timeout) if d.timeout is not None else DEFAULT_TIMEOUT,
        max_bytes=d.max_bytes, mapping=dict(d.map), defaults=dict(d.defaults),
        items=tuple(p for p in d.items.split(".") if p) if d.items else (),
        event_source=d.source or d.name, tags=tuple(d.tags), path=path, line=line,
        request_url=SecretStr(url), headers=headers, secrets=tuple(sorted(set(secrets), key=len, reverse=True)))
