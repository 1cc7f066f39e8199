"""What the benchmarks run on: a synthetic market (products P00..P49 quoted in CNY/t, random walks one second
apart in event time), rules spread around each product's base price, the rule files and settings for them, and
the printing helpers. Shared by ``bench.run`` and ``bench.ops``."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from alerts.rules.compiled import RuleSet
from alerts.rules.load import load_rules
from alerts.settings import Settings

PRODUCTS = tuple(f"P{i:02d}" for i in range(50))


KINDS = ("above", "below", "crosses_above", "crosses_below")


UNIT = "CNY/t"


#: Event time of the first event; every next event is one second later.
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone(timedelta(hours=8)))


#: Largest relative price move per step of the random walk.
STEP = 0.002


#: Rules are spread this far (relative) around each product's base price.
SPREAD = 0.10


RULES_PER_FILE = 1000


def say(text: str) -> None:
    print(text, flush=True)


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}"


def base_prices(rng: random.Random) -> dict[str, float]:
    return {p: round(rng.uniform(50_000, 1_500_000), -2) for p in PRODUCTS}


def price_event(i: int, product: str, price: float) -> dict[str, Any]:
    """Event ``i``; its time is T0 + i seconds, so event times increase for every product."""
    return {"type": "price", "product": product, "price": price, "unit": UNIT,
            "as_of": (T0 + timedelta(seconds=i)).isoformat(), "source": "bench", "id": f"e{i}"}


def random_walk(n: int, bases: dict[str, float], rng: random.Random) -> list[dict[str, Any]]:
    """``n`` quotes of random products, each a step of up to +-STEP from that product's previous one."""
    prices = dict(bases)
    events = []
    for i in range(1, n + 1):
        product = rng.choice(PRODUCTS)
        prices[product] *= 1 + rng.uniform(-STEP, STEP)
        events.append(price_event(i, product, round(prices[product], 2)))
    return events


def price_rules(n: int, bases: dict[str, float], rng: random.Random, target: str) -> list[dict[str, Any]]:
    """``n`` rules spread evenly over the products, kinds at random, thresholds within +-SPREAD of base."""
    rules = []
    for i in range(n):
        product = PRODUCTS[i % len(PRODUCTS)]
        threshold = round(bases[product] * rng.uniform(1 - SPREAD, 1 + SPREAD), 1)
        rules.append({"id": f"r{i}", "price": {"product": product, rng.choice(KINDS): threshold},
                      "notify": [target]})
    return rules


def composite_rules(spreads: int, all_ofs: int, bases: dict[str, float], rng: random.Random,
                    target: str) -> list[dict[str, Any]]:
    """Spreads between two random products (thresholds within +-SPREAD of their base difference) and
    all_of rules of two price parts on two products within a day."""
    rules: list[dict[str, Any]] = []
    for i in range(spreads):
        of, minus = rng.sample(PRODUCTS, 2)
        base = bases[of] - bases[minus]
        threshold = round(base + abs(base) * rng.uniform(-SPREAD, SPREAD) + 1, 1)
        rules.append({"id": f"s{i}", "spread": {"of": of, "minus": minus, rng.choice(KINDS): threshold},
                      "notify": [target]})
    for i in range(all_ofs):
        a, b = rng.sample(PRODUCTS, 2)
        parts = [{"price": {"product": p, kind: round(bases[p] * rng.uniform(1 - SPREAD, 1 + SPREAD), 1)}}
                 for p, kind in ((a, rng.choice(("above", "below"))), (b, rng.choice(("above", "below"))))]
        rules.append({"id": f"a{i}", "all_of": parts, "within": "1d", "notify": [target]})
    return rules


def write_quotes_csv(path: Path, events: list[dict[str, Any]]) -> Path:
    """The quotes of ``events`` as a CSV file ``alerts import`` reads (``product,price,unit,as_of,source,id``)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("product,price,unit,as_of,source,id\n")
        out.writelines(f"{e['product']},{e['price']},{e['unit']},{e['as_of']},{e['source']},{e['id']}\n"
                       for e in events)
    return path


def write_rules(directory: Path, products: list[str], rules: list[dict[str, Any]]) -> RuleSet:
    """Write ``products:`` and ``rules:`` YAML files into ``directory`` and load them with the real loader."""
    directory.mkdir(parents=True)
    defs = [{"name": p, "unit": UNIT, "aliases": []} for p in products]
    (directory / "products.yaml").write_text(yaml.safe_dump({"products": defs}, sort_keys=False))
    for n, start in enumerate(range(0, len(rules), RULES_PER_FILE)):
        chunk = rules[start:start + RULES_PER_FILE]
        (directory / f"rules-{n:03d}.yaml").write_text(yaml.safe_dump({"rules": chunk}, sort_keys=False))
    rs = load_rules(directory)
    if rs.errors:
        raise SystemExit("bench: generated rules do not load:\n" + "\n".join(map(str, rs.errors[:10])))
    if len(rs.by_id) != len(rules):
        raise SystemExit(f"bench: loaded {len(rs.by_id)} of {len(rules)} generated rules")
    return rs


def bench_settings(url: str, rules_dir: Path, prefix: str, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        redis_url=SecretStr(url), rules_dir=rules_dir, key_prefix=prefix,
        stream_shards=8, batch_size=1000, block_ms=200, breaker_max_alerts=10**9, **extra,
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
