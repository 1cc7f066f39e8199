"""Acting on alerts from Slack: the buttons of an alert and the ``/alerts`` slash command, whatever carried the
request (HTTP, ``workers.web.http``, or Socket Mode, ``workers.web.slack_socket``). A transport verifies the request,
acknowledges it within Slack's 3 seconds, and hands the payload here; answers that come later go to the
request's ``response_url`` through ``post``.

Buttons (``alerts.notify.blocks``): Acknowledge (anyone), Snooze 1h / 1d (a silence of that rule on that
product), Silence until resolved (the rule's until-resolved silence on that product). Snoozing and silencing
need the user in ``ALERTS_SLACK_ALLOWED_USERS`` or to be the rule's owner (``owners:`` in the rule files);
anyone else is told "not allowed" (ephemeral) and nothing changes. Each action is recorded for ``alerts
history`` and shown in the message itself, updated in place.

Everything that comes from Slack is untrusted: every piece of it shown back is escaped for mrkdwn.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import redis

from alerts.durations import format_time
from alerts.notify.blocks import ACKNOWLEDGE, ACTIONS_BLOCK, SILENCE_RESOLVED, SNOOZE_1D, SNOOZE_1H, slack_escape
from alerts.rules.compiled import RuleSet
from alerts.settings import Settings
from alerts.store.keys import Keys
from alerts.store.rule_explain import explain_rule
from alerts.store.silences import SilenceError, SilenceStore, create, describe
from alerts.store.slack import ActionLog
from alerts.store.state import load_states
from alerts.units import format_price

log = logging.getLogger(__name__)

#: A POST to a response_url: (url, JSON body).
Post = Callable[[str, dict[str, Any]], None]
#: Seconds a slash command's answer is waited for before the request is acknowledged without it and the answer
#: goes to the command's response_url when ready (Slack waits 3 seconds for the acknowledgement).
COMMAND_WAIT_SECONDS = 2.0
#: What a user is told when a command failed (the log says why).
FAILED = {"response_type": "ephemeral", "text": "something went wrong; see the logs"}
#: The block the message shows what was done in.
DONE_BLOCK = "alerts_done"
#: Lines of "what was done" a message keeps (a context block holds ten elements at most).
DONE_MAX = 10
SNOOZES = {SNOOZE_1H: "1h", SNOOZE_1D: "1d"}
#: Longest user, alert, rule or product id a button may carry (ours are far shorter; Slack's user ids ~11).
MAX_ID = 200
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
COMMENT = "snoozed from Slack"
HELP = """\
/alerts price PRODUCT — the latest quotes of a product and their change
/alerts explain RULE — why a rule did or did not fire
/alerts silences — the active silences
/alerts silence RULE DURATION COMMENT — silence a rule for a while (2h, 1d); allowed users and the rule's owner
/alerts help — this"""


def mention(user_id: str) -> str:
    """``<@U123>`` for a real user id; anything else escaped (never markup)."""
    return f"<@{user_id}>" if _USER_ID.match(user_id) else slack_escape(user_id)


def ephemeral(text: str) -> dict[str, Any]:
    """An answer only the user sees, leaving the original message alone; ``text`` is escaped here."""
    return {"response_type": "ephemeral", "replace_original": False, "text": slack_escape(text)}


def response_url_ok(url: str, settings: Settings) -> bool:
    """Answers go to Slack only: https on slack.com, or the host of ALERTS_SLACK_API_URL (a stand-in in tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and (parts.hostname or "").endswith(".slack.com"):
        return True
    api = urlsplit(settings.slack_api_url)
    return parts.scheme == api.scheme and parts.netloc == api.netloc


def http_post(settings: Settings) -> Post:
    """POST JSON to a response_url (10 s timeout); a failure is logged, never raised."""

    def post(url: str, body: dict[str, Any]) -> None:
        if not response_url_ok(url, settings):
            log.warning("not answering Slack at %s: not a Slack address", urlsplit(url).netloc)
            return
        try:
            r = httpx.post(url, json=body, timeout=10)
            if r.status_code >= 300:
                log.warning("Slack's response_url answered %d", r.status_code)
        except httpx.HTTPError as exc:
            log.warning("cannot answer Slack at its response_url: %s", type(exc).__name__)

    return post


def run_logged(fn: Callable[[Any], Any], arg: Any) -> Any:
    """Run a Slack handler; a failure is logged (Slack was answered already), never raised: None then."""
    try:
        return fn(arg)
    except redis.RedisError as exc:
        log.error("a Slack request could not be done: Redis is not reachable (%s)", type(exc).__name__)
    except Exception:
        log.exception("a Slack request failed")
    return None


class SlackActions:
    def __init__(self, client: redis.Redis, settings: Settings, rules: Callable[[], RuleSet], post: Post,
                 now: Callable[[], float] = time.time):
        self.client = client
        self.settings = settings
        self.rules = rules
        self.post = post
        self.now = now
        self.keys = Keys(settings.key_prefix)

    # --- who may --------------------------------------------------------------------------------------------

    def may_silence(self, user_id: str, rule_id: str) -> bool:
        """In ALERTS_SLACK_ALLOWED_USERS, or the Slack id of the rule's owner (``owners:``)."""
        if user_id in self.settings.slack_allowed_users:
            return True
        rules = self.rules()
        owners = {rules.owners.get(r.owner) for r in rules.by_id.get(rule_id, ()) if r.owner}
        return bool(user_id) and user_id in owners

    def _when(self, ts: float) -> str:
        return format_time(ts, self.settings.timezone, seconds=False)

    # --- buttons ----------------------------------------------------------------------------------------------

    def interaction(self, payload: Mapping[str, Any]) -> None:
        """A click on a button of an alert (``block_actions``): do it, then update the message in place (or tell
        the user, ephemerally, why not). Runs after the click was acknowledged."""
        if payload.get("type") != "block_actions":
            return
        url = payload.get("response_url")
        user = payload.get("user")
        user = user if isinstance(user, dict) else {}
        user_id = str(user.get("id") or "")[:MAX_ID]
        name = str(user.get("username") or user.get("name") or user_id)[:MAX_ID]
        actions = payload.get("actions")
        for action in actions if isinstance(actions, list) else []:
            if not isinstance(action, dict) or action.get("block_id") != ACTIONS_BLOCK:
                continue
            try:
                value = json.loads(action.get("value") or "")
                alert_id, rule_id, product = str(value["a"]), str(value["r"]), value.get("p")
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("a Slack button without an alert: %.80r", action.get("value"))
                continue
            if max(len(alert_id), len(rule_id), len(str(product or ""))) > MAX_ID:
                log.warning("a Slack button with an id longer than %d characters: ignored", MAX_ID)
                continue
            answer = self._act(str(action.get("action_id")), user_id, name, alert_id, rule_id,
                               str(product) if product else None, payload.get("message"))
            if answer is not None and isinstance(url, str):
                self.post(url, answer)

    def _act(self, action_id: str, user_id: str, name: str, alert_id: str, rule_id: str, product: str | None,
             message: Any) -> dict[str, Any] | None:
        now = self.now()
        log_ = ActionLog(self.client, self.keys)
        author = f"{name} ({user_id})" if name != user_id else user_id
        on = f"{rule_id} on {product}" if product else rule_id
        if action_id == ACKNOWLEDGE:
            log_.record(alert_id, "acknowledged", author, None, now)
            done = f"*Acknowledged* by {mention(user_id)} at {self._when(now)}"
        elif action_id in SNOOZES or action_id == SILENCE_RESOLVED:
            if not self.may_silence(user_id, rule_id):
                log.info("Slack user %s is not allowed to silence %s", user_id, rule_id)
                return ephemeral(f"Not allowed: only the users in ALERTS_SLACK_ALLOWED_USERS and the owner of "
                                 f"{rule_id} may snooze or silence it. Nothing was changed.")
            given: dict[str, Any] = ({"for_": SNOOZES[action_id]} if action_id in SNOOZES
                                     else {"until_resolved": True})
            try:
                s = create(self.client, self.keys, self.rules(), author=author,
                           comment=COMMENT if action_id in SNOOZES else "silenced from Slack until resolved",
                           rule=[rule_id], product=[product] if product else [], now=now, **given)
            except SilenceError as exc:
                return ephemeral(f"Cannot silence {on}: {exc}. Nothing was changed.")
            if action_id in SNOOZES:
                what = f"snoozed {SNOOZES[action_id]}"
                done = (f"*Snoozed {SNOOZES[action_id]}* ({slack_escape(on)}) by {mention(user_id)} at "
                        f"{self._when(now)}, until {self._when(s.end)} (silence {s.id})")
            else:
                what = "silenced until resolved"
                done = (f"*Silenced until resolved* ({slack_escape(on)}) by {mention(user_id)} at "
                        f"{self._when(now)} (silence {s.id})")
            log_.record(alert_id, what, author, f"silence {s.id}", now)
        else:
            return None
        return self._updated(message, done)

    @staticmethod
    def _updated(message: Any, done: str) -> dict[str, Any]:
        """The original message with a line saying what was done (the buttons stay, for the others)."""
        if not isinstance(message, dict) or not isinstance(message.get("blocks"), list):
            return {"replace_original": False, "response_type": "in_channel", "text": done}
        kept: list[dict[str, Any]] = []
        lines: list[dict[str, Any]] = []
        for block in message["blocks"]:
            if isinstance(block, dict) and block.get("block_id") == DONE_BLOCK:
                elements = block.get("elements")
                lines = [e for e in elements if isinstance(e, dict)] if isinstance(elements, list) else []
            elif isinstance(block, dict):
                kept.append(block)
        lines = [*lines, {"type": "mrkdwn", "text": done}][-DONE_MAX:]
        done_block = {"type": "context", "block_id": DONE_BLOCK, "elements": lines}
        at = next((i for i, b in enumerate(kept) if b.get("block_id") == ACTIONS_BLOCK), len(kept))
        blocks = [*kept[:at], done_block, *kept[at:]]
        return {"replace_original": True, "text": str(message.get("text") or ""), "blocks": blocks}

    # --- /alerts ----------------------------------------------------------------------------------------------

    def command(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The answer to ``/alerts ...`` (ephemeral, escaped)."""
        text = (form.get("text") or "").strip()
        user_id = form.get("user_id") or ""
        name = form.get("user_name") or user_id
        verb, _, rest = text.partition(" ")
        verb, rest = verb.lower(), rest.strip()
        if verb in ("", "help"):
            return ephemeral(HELP)
        if verb == "price":
            return ephemeral(self._price(rest)) if rest else ephemeral("say which product: /alerts price PRODUCT")
        if verb == "explain":
            return ephemeral(self._explain(rest)) if rest else ephemeral("say which rule: /alerts explain RULE")
        if verb == "silences":
            now = self.now()
            found = sorted(SilenceStore(self.client, self.keys).active(now), key=lambda s: -s.created)
            return ephemeral("\n".join(describe(s, self.settings.timezone, now) for s in found)
                             or "no active silences")
        if verb == "silence":
            return ephemeral(self._silence(rest, user_id, name))
        return ephemeral(f"unknown command {verb!r}.\n{HELP}")

    def _price(self, name: str) -> str:
        rules = self.rules()
        product = rules.catalog.find(name)
        if product is None:
            return f"unknown product {name!r}"
        st = load_states(self.client, self.keys, [product.key]).get(product.key)
        if st is None or not st.quotes:
            return f"{product.name}: no quote yet"
        lines = [f"{product.name} ({product.unit_text})"]
        for source, q in sorted(st.quotes.items()):
            line = f"{source}: {format_price(q.price)} as of {q.as_of_date}"
            older = cast(list[tuple[bytes, float]], self.client.zrevrangebyscore(
                self.keys.history(product.key, source), f"({q.as_of!r}", "-inf", start=0, num=1, withscores=True))
            if older:
                try:
                    prev_date, prev = json.loads(older[0][0])[:2]
                    change = q.price - float(prev)
                    pct = f" ({change / float(prev) * 100:+.1f}%)" if prev else ""
                    line += f", {change:+,.10g}{pct} since {prev_date} ({format_price(float(prev))})"
                except (ValueError, TypeError, IndexError):
                    pass
            lines.append(line)
        return "\n".join(lines)

    def _explain(self, rule_id: str) -> str:
        rules = self.rules()
        if rule_id not in rules.by_id:
            return f"no enabled rule {rule_id!r}"
        return explain_rule(self.client, self.settings, rules, rule_id)

    def _silence(self, rest: str, user_id: str, name: str) -> str:
        parts = rest.split(None, 2)
        if len(parts) < 3:
            return "write: /alerts silence RULE DURATION COMMENT (a comment is required), such as " \
                   "/alerts silence prnd-450k 2h Baotou restocking"
        rule_id, duration, comment = parts
        if not self.may_silence(user_id, rule_id):
            return (f"Not allowed: only the users in ALERTS_SLACK_ALLOWED_USERS and the owner of {rule_id} may "
                    "silence it. Nothing was changed.")
        author = f"{name} ({user_id})" if name != user_id else user_id
        try:
            s = create(self.client, self.keys, self.rules(), author=author, comment=comment, rule=[rule_id],
                       for_=duration, now=self.now())
        except SilenceError as exc:
            return f"Cannot silence: {exc}. Nothing was changed."
        return f"silence {describe(s, self.settings.timezone)}"


__all__ = ["COMMAND_WAIT_SECONDS", "FAILED", "HELP", "SlackActions", "ephemeral", "http_post", "mention",
           "response_url_ok", "run_logged"]
