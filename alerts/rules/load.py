"""Load a rules directory into a compiled, indexed ``RuleSet``, collecting every problem on the way.

Loading never stops at the first mistake: each file, product, digest and rule is checked on its
own, a rule with a problem is still checked as far as it can be, problems are collected as
``Problem(path, line, rule_id, message)`` (sorted by file and line), and everything valid is
kept. ``alerts rules check`` prints the problems; the service runs the valid rules and reports the
rest. This module finds and parses the files and loads products, digests, holidays and webhooks;
compiling and indexing the rules is ``alerts.rules.compile``. ``load_catalog`` reads only the
products, for processes that need the catalog and no rule.

A rule file is at most ``FILE_MAX_BYTES`` (read no further) and each top-level list at most
``TOP_LEVEL_MAX`` entries. A webhook's ``secret: ${NAME}`` reads the environment variable NAME only
when the operator allows it: NAME starts with ``ALERTS_RULES_VAR_`` or is listed in
``ALERTS_RULES_ALLOWED_VARS`` (``alerts.settings.rule_var_allowed``; no other ``ALERTS_*`` name ever),
else a trader could have a service secret (``${ALERTS_INGEST_TOKEN}``) signed with and sent to a URL
of theirs, and guess it offline.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable, Sequence
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import SecretStr

from alerts.catalog import Catalog, Product, builtin_catalog
from alerts.errors import ConfigError, Problem
from alerts.rules.compile import compile_rule
from alerts.rules.compiled import CompiledRule, RuleSet, WebhookConfig
from alerts.rules.index import index_rules
from alerts.rules.limits import shown
from alerts.rules.models import FILE_MAX_BYTES, TOP_LEVEL_KEYS, TOP_LEVEL_MAX, Digest, Owner, ProductDef, Webhook
from alerts.rules.templates import TemplateError, check_subject
from alerts.rules.validation import ParsedFile, label, validate
from alerts.rules.watchlists import load_watchlists
from alerts.rules.yaml_lines import YamlError, line_of, load_document
from alerts.settings import RULES_VAR_PREFIX, rule_var_allowed, rules_allowed_vars
from alerts.units import parse_unit

#: Rule test files (``alerts rules test``) live beside the rules and are not rule files.
TEST_SUFFIXES = (".test.yaml", ".test.yml")


def rule_files(rules_dir: Path) -> list[Path]:
    """The rule files under ``rules_dir`` (or the file itself), sorted; hidden folders and files and
    rule test files are left out."""
    if rules_dir.is_file():
        return [rules_dir]
    files = [p for p in rules_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()
             and not p.name.endswith(TEST_SUFFIXES)]
    return sorted(p for p in files if not any(part.startswith(".") for part in p.relative_to(rules_dir).parts))


def load_rules(rules_dir: Path | str | Sequence[Path | str], catalog: Catalog | None = None,
               timezone: str = "Asia/Shanghai", allowed_vars: Collection[str] | None = None) -> RuleSet:
    """Load and compile every rule file under ``rules_dir`` (a directory, a file, or a list of them).
    Never raises for a trader's mistake: problems are collected in ``RuleSet.problems``.
    ``allowed_vars``: the environment variables besides ``ALERTS_RULES_VAR_*`` that webhooks' secrets may
    name; by default this process's ALERTS_RULES_ALLOWED_VARS (none when it is not valid: every command
    refuses to start then)."""
    rs = RuleSet(catalog=(catalog or builtin_catalog()).copy(), timezone=timezone)
    if allowed_vars is None:
        try:
            allowed_vars = rules_allowed_vars()
        except ConfigError:
            allowed_vars = ()
    allowed = frozenset(allowed_vars)
    files = _find_files(rules_dir, rs.problems)
    rs.files.extend(str(f) for f in files)
    parsed = _parse_files(files, rs.problems)
    for p in parsed:
        _load_products(p, rs.catalog, rs.problems)
    for p in parsed:
        _load_digests(p, rs)
        _load_holidays(p, rs)
        _load_webhooks(p, rs, allowed)
        _load_owners(p, rs)
    load_watchlists(parsed, rs)
    first_seen: dict[str, tuple[str, int]] = {}
    compiled: list[CompiledRule] = []
    for p in parsed:
        for i, item in enumerate(p.data.get("rules") or []):
            compiled.extend(compile_rule(p, i, item, rs, first_seen))
    index_rules(rs, compiled)
    rs.problems[:] = in_file_order(rs.problems, rs.files)
    return rs


def in_file_order(problems: Iterable[Problem], files: Sequence[str]) -> list[Problem]:
    """``problems`` sorted by file (in the order of ``files``; others first) and line; problems on
    one line keep their order."""
    order = {f: n for n, f in enumerate(files)}
    return sorted(problems, key=lambda p: (order.get(p.path, -1), p.line))


def load_catalog(rules_dir: Path | str | Sequence[Path | str], catalog: Catalog | None = None) -> Catalog:
    """The catalog ``load_rules`` would build (``catalog``, by default the built-in one, extended by
    the ``products:`` lists of the rule files), without compiling any rule. Never raises for a
    trader's mistake: a product that does not load is left out (``alerts rules check`` reports it)."""
    out = (catalog or builtin_catalog()).copy()
    ignored: list[Problem] = []
    for p in _parse_files(_find_files(rules_dir, ignored), ignored):
        _load_products(p, out, ignored)
    return out


def _find_files(rules_dir: Path | str | Sequence[Path | str], problems: list[Problem]) -> list[Path]:
    roots = [Path(rules_dir)] if isinstance(rules_dir, str | Path) else [Path(r) for r in rules_dir]
    files: list[Path] = []
    for root in roots:
        if not root.exists():
            problems.append(Problem(str(root), 0, None, "rules directory does not exist"))
        else:
            files.extend(f for f in rule_files(root) if f not in files)
    return files


def _parse_files(files: Iterable[Path], problems: list[Problem]) -> list[ParsedFile]:
    return [p for p in (_parse_file(f, problems) for f in files) if p is not None]


def _parse_file(f: Path, problems: list[Problem]) -> ParsedFile | None:
    path = str(f)
    try:
        with f.open("rb") as fh:
            raw = fh.read(FILE_MAX_BYTES + 1)  # no further: a larger file is refused whole
        if len(raw) > FILE_MAX_BYTES:
            size = max(f.stat().st_size, len(raw))
            problems.append(Problem(path, 1, None, f"the file is too large: at most {FILE_MAX_BYTES:,} bytes (got "
                                    f"{size:,}); split it into several rule files"))
            return None
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(path, 0, None, f"cannot read file: {exc}"))
        return None
    try:
        doc = load_document(text)
    except YamlError as exc:
        problems.append(Problem(path, exc.line, None, str(exc)))
        return None
    data, lines = doc.value, doc.lines
    # numbers cut at their commas inside { } are reported by the rule they are in (compile_rule)
    for sp in doc.splits:
        if not (len(sp.path) > 2 and sp.path[0] == "rules" and isinstance(data, dict)
                and isinstance(data.get("rules"), list)):
            problems.append(Problem(path, sp.line, None, sp.message(label(sp.path))))
    if data is None:
        return ParsedFile(path, {}, lines)
    if not isinstance(data, dict):
        problems.append(Problem(path, 1, None, "a rule file is a mapping with keys rules:, digests:, products:"))
        return None
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problems.append(Problem(path, line_of(lines, (key,)), None,
                                    f"unknown top-level key {shown(key)}; expected one of {', '.join(TOP_LEVEL_KEYS)}"))
    for key in TOP_LEVEL_KEYS:
        if data.get(key) is not None and not isinstance(data[key], list):
            problems.append(Problem(path, line_of(lines, (key,)), None, f"{key}: must be a list"))
            data[key] = []
        elif len(data.get(key) or ()) > TOP_LEVEL_MAX[key]:
            problems.append(Problem(path, line_of(lines, (key,)), None,
                                    f"{key}: at most {TOP_LEVEL_MAX[key]:,} items in one file "
                                    f"(got {len(data[key]):,}); split it into several rule files"))
            data[key] = []
    return ParsedFile(path, data, lines, doc.splits)


def _load_products(p: ParsedFile, catalog: Catalog, problems: list[Problem]) -> None:
    for i, item in enumerate(p.data.get("products") or []):
        d = validate(ProductDef, item, p, ("products", i), None, problems)
        if d is None:
            continue
        line = line_of(p.lines, ("products", i))
        try:
            catalog.add(Product(d.name, parse_unit(d.unit), tuple(d.aliases), groups=tuple(d.groups)))
        except ValueError as exc:
            problems.append(Problem(p.path, line, None, f"products: {exc}"))


_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
#: Headers a webhook definition may not set: the signature scheme owns them.
RESERVED_HEADERS = frozenset({"content-type", "x-alerts-timestamp", "x-alerts-signature"})


def _load_webhooks(p: ParsedFile, rs: RuleSet, allowed: Collection[str]) -> None:
    for i, item in enumerate(p.data.get("webhooks") or []):
        w = validate(Webhook, item, p, ("webhooks", i), None, rs.problems)
        if w is None:
            continue
        line = line_of(p.lines, ("webhooks", i))
        secret = w.secret
        ref = _ENV_REF.match(secret)
        if ref:
            name, at = ref.group(1), line_of(p.lines, ("webhooks", i, "secret"))
            if not rule_var_allowed(name, allowed):  # its value is never read, let alone shown
                rs.problems.append(Problem(p.path, at, None, f"webhooks: {w.name}: ${{{name}}} is not allowed in rule "
                                           f"files: name it {RULES_VAR_PREFIX}... or list it in "
                                           "ALERTS_RULES_ALLOWED_VARS"))
                continue
            value = os.environ.get(name)
            if not value:
                rs.problems.append(Problem(p.path, at, None,
                                           f"webhooks: {w.name}: environment variable {name} is not set"))
                continue
            secret = value
        bad = sorted(h for h in w.headers if h.lower() in RESERVED_HEADERS)
        if bad:
            rs.problems.append(Problem(p.path, line_of(p.lines, ("webhooks", i, "headers")), None,
                                       f"webhooks: {w.name}: header {bad[0]!r} is set by the signature scheme"))
            continue
        if w.name in rs.webhooks:
            rs.problems.append(Problem(p.path, line, None, f"webhook {w.name!r} is defined twice"))
            continue
        rs.webhooks[w.name] = WebhookConfig(w.name, w.url, SecretStr(secret), tuple(sorted(w.headers.items())))


def _load_owners(p: ParsedFile, rs: RuleSet) -> None:
    """``owners:``: rule owners' Slack user ids (they may snooze and silence their rules' alerts from Slack)."""
    for i, item in enumerate(p.data.get("owners") or []):
        o = validate(Owner, item, p, ("owners", i), None, rs.problems)
        if o is None:
            continue
        known = rs.owners.get(o.name)
        if known is not None and known != o.slack:
            rs.problems.append(Problem(p.path, line_of(p.lines, ("owners", i)), None,
                                       f"owners: {o.name!r} is given two Slack ids ({known}, {o.slack})"))
            continue
        rs.owners[o.name] = o.slack


def _load_holidays(p: ParsedFile, rs: RuleSet) -> None:
    days = set(rs.holidays)
    for i, item in enumerate(p.data.get("holidays") or []):
        try:
            days.add(item if isinstance(item, date) else date.fromisoformat(str(item)))
        except ValueError:
            rs.problems.append(Problem(p.path, line_of(p.lines, ("holidays", i)), None,
                                       f"holidays: {shown(item)} is not a date such as 2025-10-01"))
    rs.holidays = frozenset(days)


def _load_digests(p: ParsedFile, rs: RuleSet) -> None:
    for i, item in enumerate(p.data.get("digests") or []):
        d = validate(Digest, item, p, ("digests", i), None, rs.problems)
        if d is None:
            continue
        where = ("digests", i)
        if not croniter.is_valid(d.schedule):
            rs.problems.append(Problem(p.path, line_of(p.lines, (*where, "schedule")), None,
                                       f"digests: {d.name}: schedule {d.schedule!r} is not a cron expression "
                                       "such as '0 8 * * 1-5'"))
            continue
        if d.subject is not None:
            try:
                check_subject(d.subject)
            except TemplateError as exc:
                rs.problems.append(Problem(p.path, line_of(p.lines, (*where, "subject")), None,
                                           f"digests: {d.name}: {str(exc).replace('message: ', 'subject: ')}"))
                continue
        if d.timezone is not None:
            try:
                ZoneInfo(d.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                rs.problems.append(Problem(p.path, line_of(p.lines, (*where, "timezone")), None,
                                           f"digests: {d.name}: unknown time zone {d.timezone!r}"))
                continue
        if d.name in rs.digests:
            rs.problems.append(Problem(p.path, line_of(p.lines, ("digests", i)), None,
                                       f"digest {d.name!r} is defined twice"))
            continue
        rs.digests[d.name] = d
