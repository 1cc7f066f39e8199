"""The digest email: everything routed to ``digest:NAME`` since the last successful send, grouped by
product and rule, a table of the latest price of every product mentioned with its change since the
previous digest, links to the news, and a 30-day chart per product inline. Multipart: plain text,
and HTML with the charts as related images; every piece of event text is HTML-escaped."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from alerts.durations import format_time
from alerts.notify.email import message_id
from alerts.notify.sparkline import sparkline
from alerts.rules.models import Digest
from alerts.rules.templates import render_subject
from alerts.units import format_price


@dataclass(frozen=True)
class PriceLine:
    product: str
    price: float
    unit: str
    as_of: str
    previous: float | None  # the price the previous digest showed

    @property
    def change_pct(self) -> float | None:
        return None if not self.previous else (self.price / self.previous - 1) * 100


def subject(d: Digest, count: int, now: datetime) -> str:
    default = "Rare earths digest {{ name }}: {{ count }} alerts"
    text = render_subject(d.subject or default, default, {"count": count, "name": d.name,
                                                          "date": now.date().isoformat()},
                          now.tzinfo.key if isinstance(now.tzinfo, ZoneInfo) else "UTC")
    return " ".join(text.split())[:200]


def group(alerts: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[Mapping[str, Any]]]]:
    """product (or "News") -> rule id -> alerts, in arrival order."""
    out: dict[str, dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for a in alerts:
        out[a.get("product") or "News"][a["rule_id"]].append(a)
    return {k: dict(v) for k, v in out.items()}


#: The change column of a product the previous digest did not show.
NO_EARLIER_PRICE = "no earlier digest price to compare with"


def build(d: Digest, alerts: Sequence[Mapping[str, Any]], prices: Sequence[PriceLine],
          charts: Mapping[str, Sequence[tuple[float, float]]], now: datetime, sender: str,
          last_sent: datetime | None = None, slot: str | None = None) -> EmailMessage:
    """``last_sent``: when the previous digest went out (None: never), in the digest's time zone. ``slot``: the
    scheduled time it is sent for; its ``Message-ID`` is derived from the digest and the slot, so a send tried
    again for the same slot is the same message (sent by hand, without a slot: from ``now``)."""
    msg = EmailMessage()
    msg["Subject"] = subject(d, len(alerts), now)
    msg["From"] = sender
    msg["To"] = ", ".join(d.to)
    msg["Date"] = formatdate(now.timestamp(), localtime=False, usegmt=True)  # UTC ("-0000" would say unknown)
    msg["Message-ID"] = message_id("digest", d.name, slot or f"now {now.timestamp()!r}", sender)
    grouped = group(alerts)
    since = f"sent {format_time(last_sent, seconds=False)}" if last_sent is not None else "never sent"
    text = [f"{len(alerts)} alerts since the last digest ({since})", ""]
    html = [f"<html><body><p>{len(alerts)} alerts since the last digest ({escape(since)})</p>"]
    for product, rules in grouped.items():
        text.append(product)
        html.append(f"<h3>{escape(product)}</h3><ul>")
        for rule, items in rules.items():
            for a in items:
                line = a.get("text") or a.get("headline") or ""
                text.append(f"  [{rule}] {line}" + (f" {a['url']}" if a.get("url") else ""))
                link = (f" <a href=\"{escape(a['url'])}\">source</a>"
                        if str(a.get("url", "")).startswith(("http://", "https://")) else "")
                html.append(f"<li><b>{escape(rule)}</b>: {escape(line)}{link}</li>")
        html.append("</ul>")
        text.append("")
    images: list[tuple[str, bytes]] = []
    if prices:
        text.append("Latest prices")
        html.append("<h3>Latest prices</h3><table><tr><th align='left'>Product</th><th>Price</th><th>Date</th>"
                    "<th>Since the last digest</th><th>30 days</th></tr>")
        for p in prices:
            change = NO_EARLIER_PRICE if p.change_pct is None else f"{p.change_pct:+.1f}%"
            text.append(f"  {p.product}: {format_price(p.price)} {p.unit} on {p.as_of} ({change})")
            cid = make_msgid(domain="alerts.local")
            images.append((cid, sparkline(charts.get(p.product, []))))
            html.append(f"<tr><td>{escape(p.product)}</td><td>{format_price(p.price)} {escape(p.unit)}</td>"
                        f"<td>{escape(p.as_of)}</td><td>{change}</td>"
                        f"<td><img src=\"cid:{cid[1:-1]}\" alt=\"30 days of {escape(p.product)}\"></td></tr>")
        html.append("</table>")
    html.append("</body></html>")
    msg.set_content("\n".join(text) + "\n")
    msg.add_alternative("".join(html), subtype="html")
    html_part = msg.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    for cid, png in images:
        html_part.add_related(png, maintype="image", subtype="png", cid=cid)
    return msg
