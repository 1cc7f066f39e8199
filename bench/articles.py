"""Quote extraction from market articles (``alerts ingest article``): MB/s on 1 MB of English, Chinese and HTML.

Each corpus is about 1 MB (UTF-8) of the sample articles in tests/data/articles, repeated and mixed with
adversarial paragraphs: a long sentence without punctuation full of products, amounts and dates, long runs of
digits and commas, many bare numbers, nested and unclosed HTML tags, one huge line. The ``worst_*`` cases are
1 MB of one adversarial pattern each. Timed is ``events_for`` (what the command calls): HTML stripping,
sentences, dates, amounts, quotes. Best and median of a few runs.

Run from the repository root: ``.venv/bin/python -m bench.articles [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from alerts.catalog import builtin_catalog
from alerts.ingest.articles import events_for, extract

ARTICLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "articles"
MORE = ARTICLES.parent / "articles_more"  # the larger set with traps and its expected.json
MB = 1_000_000
TZ = "Asia/Shanghai"


def _sample(prefix: str, suffix: str) -> list[str]:
    return [p.read_text("utf-8") for p in sorted(ARTICLES.glob(f"{prefix}*{suffix}"))]


def _fill(head: str, pieces: list[str], size: int = MB, sep: str = "\n\n") -> str:
    """``head`` then ``pieces`` in turn until the text is ``size`` bytes of UTF-8 (cut at a piece's end)."""
    out, n, i = [head], len(head.encode()), 0
    while n < size:
        piece = pieces[i % len(pieces)] + sep
        out.append(piece)
        n += len(piece.encode())
        i += 1
    return "".join(out)


def _body(text: str) -> str:
    """A plain-text sample without its first line (the headline): paragraphs to repeat."""
    return text.split("\n", 1)[1].strip()


_EN_LONG = " ".join(f"pr-nd oxide was {400000 + i:,} yuan/mt on march {i % 28 + 1} and terbium oxide rose 50 yuan/kg "
                    f"versus dysprosium oxide at {1600 + i} yuan/kg while analysts expect gains"
                    for i in range(400))  # about 60 KB, no sentence end
# about 60 KB without a 。
_ZH_LONG = "".join(f"{i % 12 + 1}月{i % 28 + 1}日氧化镨钕价格报{40 + i % 9}.{i % 10}万元/吨较上周上涨{i % 5 + 1}"
                   f"千元/吨氧化铽报价{7000 + i}元/公斤预计将升至{45 + i % 3}万元/吨" for i in range(800))
_DIGITS = ",".join(str(100 + i % 900) for i in range(20_000)) + " yuan/mt on March 11."  # one number of 80 KB
_NUMBERS = " ".join(f"{i:,}.{i % 97} {i % 31}% {i % 12 + 1}/{i % 28 + 1}" for i in range(3_000)) + "."
_EN_ADVERSARIAL = [_EN_LONG, _DIGITS, _NUMBERS]
_ZH_ADVERSARIAL = [_ZH_LONG, _DIGITS.replace(" yuan/mt on March 11.", "元/吨。"), _NUMBERS]
_TAGS = ("<div><p><b><i><span>" * 2_000 + "Pr-Nd oxide was 444,000 yuan/mt on March 11" + "<p><li><td><a href='x'"
         * 2_000)  # nested and unclosed tags, an unclosed attribute list at the end of the block


def corpora() -> dict[str, str]:
    """The 1 MB inputs by name: ``en_text``, ``zh_text``, ``html`` (realistic mixes) and ``worst_*``."""
    en = [_body(t) for t in _sample("en_", ".txt")]
    zh = [_body(t) for t in _sample("zh_", ".txt")]
    html = _sample("", ".html")
    bodies = [h.split("<body>", 1)[1].rsplit("</body>", 1)[0] for h in html]
    adversarial_html = ["<p>" + _EN_LONG + "</p>", "<div>" + _NUMBERS, "<table><tr><td>" + _DIGITS,
                        "<!-- an unclosed comment? no: " + "<p><b>" * 500 + " -->", _TAGS[:40_000]]
    return {
        "en_text": _fill("Rare earth weekly\nMarch 12, 2025\n\n", en * 20 + _EN_ADVERSARIAL),
        "zh_text": _fill("稀土周报\n2025年3月12日\n\n", zh * 20 + _ZH_ADVERSARIAL),
        "html": _fill('<!DOCTYPE html><html><head><title>Rare earths</title><meta name="date" content="2025-06-01">'
                      "</head><body>\n", bodies * 20 + adversarial_html, sep="\n"),
        "worst_long_sentence_en": _fill("R\nMarch 12, 2025\n\n", [_EN_LONG], sep=" "),
        "worst_long_sentence_zh": _fill("日评\n2025年6月1日\n\n", [_ZH_LONG], sep=""),
        "worst_one_line": "R " + _fill("", en, sep=" ").replace("\n", " "),
        "worst_digits": "R\n\n" + _fill("", [_DIGITS.removesuffix(" yuan/mt on March 11.")], sep=",")
                        + " yuan/mt on March 11.",
        "worst_numbers": _fill("R\n\n", [_NUMBERS], sep=" "),
        "worst_html_tags": _fill("<html><body>", [_TAGS], sep=""),
    }


def _time(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def sample_precision_recall() -> tuple[float, float, int, int, int]:
    """Precision and recall on the six sample articles, against tests/test_articles.py's EXPECTED."""
    from bench.harness import EXPECTED, rows

    catalog = builtin_catalog()
    found = correct = expected = 0
    for name, want in EXPECTED.items():
        got = rows(extract((ARTICLES / name).read_text("utf-8"), catalog, None, TZ)[0])
        found += len(got)
        correct += sum(1 for r in got if r in want)
        expected += len(want)
    return correct / found if found else 0.0, correct / expected, correct, found, expected


def bench_articles(runs: int = 3, *, verbose: bool = False) -> dict[str, float]:
    """MB/s of ``events_for`` (best run) per corpus, seconds of the slowest 1 MB (median), precision/recall on the
    six sample articles (``sample_*``) and on the larger set with traps (``more_*``)."""
    catalog = builtin_catalog()
    out: dict[str, float] = {}
    worst = 0.0
    for name, text in corpora().items():
        mb = len(text.encode()) / MB
        best, median = _time(lambda text=text: events_for(text, catalog, None, TZ), runs)  # type: ignore[misc]
        worst = max(worst, median / mb)
        out[f"{name}_mb_s"] = mb / best
        if verbose:
            _, quotes, skipped = events_for(text, catalog, None, TZ)
            print(f"{name:24} {mb:5.2f} MB  best {best:7.3f} s  median {median:7.3f} s  {mb / best:7.2f} MB/s  "
                  f"{len(quotes)} quotes, {len(skipped)} skipped", flush=True)
    out["seconds_1mb_worst"] = worst
    precision, recall, correct, found, expected = sample_precision_recall()
    out["sample_precision"], out["sample_recall"] = precision, recall
    out["sample_correct"], out["sample_found"], out["sample_expected"] = correct, found, expected
    precision, recall, correct, found, expected = more_precision_recall()
    out["more_precision"], out["more_recall"] = precision, recall
    out["more_correct"], out["more_found"], out["more_expected"] = correct, found, expected
    return out


def more_precision_recall() -> tuple[float, float, int, int, int]:
    """Precision and recall on the larger sample set with traps (tests/data/articles_more, issue 17), against its
    expected.json, counted as tests/test_article_context.py does: a quote is right when its product, price and
    day are expected, and its low and high too when it states them."""
    catalog = builtin_catalog()
    spec = json.loads((MORE / "expected.json").read_text("utf-8"))
    found = correct = expected = 0
    for name, item in spec.items():
        if name.startswith("_"):
            continue
        want = {(r[0], float(r[1]), r[2]): (r[3], r[4]) for r in item["quotes"]}
        when = date.fromisoformat(item["date"]) if item["date"] else None
        quotes = extract((MORE / name).read_text("utf-8"), catalog, when, TZ)[0]
        for q in quotes:
            k = (q.product, q.price, q.as_of.isoformat())
            correct += k in want and ((q.low is None and q.high is None) or (q.low, q.high) == want[k])
        found += len(quotes)
        expected += len(want)
    return correct / found if found else 0.0, correct / expected, correct, found, expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per corpus (best and median are kept)")
    args = parser.parse_args()
    figures = bench_articles(args.runs, verbose=True)
    for key, value in figures.items():
        print(f"{key} = {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
