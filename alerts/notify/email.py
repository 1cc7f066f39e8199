"""``email:ADDRESS``: one email per alert, sent at once, multipart text and HTML.

SMTP from the ALERTS_SMTP_* settings: STARTTLS (ALERTS_SMTP_STARTTLS, default on) or implicit TLS
(ALERTS_SMTP_SSL), and a login when ALERTS_SMTP_USERNAME is set. Event text is HTML-escaped in the
HTML part. A relay that is down or answers 4xx is retried; a refused recipient, sender or login is not.
"""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from html import escape

from alerts.errors import PermanentDeliveryError, RetryableDeliveryError, transport_category
from alerts.model import Alert
from alerts.notify.base import Unpaced
from alerts.notify.summary import summary
from alerts.settings import Settings
from alerts.targets import Target
from alerts.units import format_price

#: Seconds to wait for the mail relay.
TIMEOUT = 20
#: The Message-ID domain when the From address has none.
DEFAULT_DOMAIN = "alerts.invalid"
_SAFE = re.compile(r"[^A-Za-z0-9-]")
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def domain_of(sender: str) -> str:
    """The domain of the From address (``Alerts <alerts@desk.example>`` -> ``desk.example``), for Message-IDs."""
    local, at, domain = parseaddr(sender)[1].rpartition("@")
    return domain if at and local and _DOMAIN.match(domain) else DEFAULT_DOMAIN


def message_id(kind: str, name: str, key: str, sender: str) -> str:
    """A Message-ID that is the same each time the same mail is sent (``key``: an alert id and its target, a
    digest and its slot), so a retried send is the same message to the reader's mail system, not a new one:
    ``<alert.ALERT-ID.HASH@DOMAIN>``, ``<digest.NAME.HASH@DOMAIN>``."""
    digest = hashlib.sha256(f"{name}\x1f{key}".encode()).hexdigest()[:16]
    return f"<{kind}.{_SAFE.sub('-', name)[:64] or '-'}.{digest}@{domain_of(sender)}>"


def build(alert: Alert, to: str, sender: str, now: float | None = None) -> EmailMessage:
    """The email of ``alert`` to ``to``: ``Date`` (``now``, UTC) and a ``Message-ID`` derived from the alert id and
    the target, so a retried delivery of the alert sends the same message."""
    msg = EmailMessage()
    subject = f"[{alert.severity}] {alert.rule_id}: {alert.product or alert.headline or ''}"
    msg["Subject"] = " ".join(subject.split())[:200]  # no line breaks from event text in a header
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = formatdate(time.time() if now is None else now, localtime=False, usegmt=True)  # "GMT", not -0000
    msg["Message-ID"] = message_id("alert", alert.id, f"email:{to}", sender)
    msg.set_content(summary(alert) + "\n")
    rows = [("Rule", alert.rule_id), ("Severity", alert.severity), ("Source", alert.source)]
    if alert.price is not None and alert.unit:
        rows.insert(0, ("Price", f"{format_price(alert.price)} {alert.unit}"))
    if alert.as_of:
        rows.insert(1, ("Quote date", alert.as_of))
    table = "".join(f"<tr><th align='left'>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    link = (f"<p><a href=\"{escape(alert.url)}\">Read the source</a></p>"
            if alert.url and alert.url.startswith(("http://", "https://")) else "")
    msg.add_alternative(f"<html><body><p>{escape(alert.text or alert.headline or '')}</p>"
                        f"<table>{table}</table>{link}</body></html>", subtype="html")
    return msg


class EmailNotifier(Unpaced):
    def __init__(self, settings: Settings):
        self.settings = settings

    def send(self, alert: Alert, target: Target) -> None:
        smtp_send(self.settings, build(alert, target.value, self.settings.email_from), str(target))


def _tls(s: Settings) -> ssl.SSLContext:
    """Certificate and host name always checked; against ALERTS_SMTP_CA_FILE when set."""
    return ssl.create_default_context(cafile=str(s.smtp_ca_file) if s.smtp_ca_file else None)


def smtp_send(s: Settings, msg: EmailMessage, target: str) -> None:
    """Send one message through the configured relay; raises Retryable/PermanentDeliveryError."""
    if s.smtp_host is None:
        raise PermanentDeliveryError(target, "no mail relay configured (ALERTS_SMTP_HOST)")
    if s.smtp_username and not (s.smtp_ssl or s.smtp_starttls):
        raise PermanentDeliveryError(target, "refusing to send the SMTP password without TLS (set ALERTS_SMTP_STARTTLS "
                                     "or ALERTS_SMTP_SSL)")
    try:
        if s.smtp_ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=TIMEOUT, context=_tls(s))
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=TIMEOUT)
        try:
            if s.smtp_starttls and not s.smtp_ssl:
                smtp.starttls(context=_tls(s))
            if s.smtp_username:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_username, password)
            smtp.send_message(msg)
        finally:  # accepted is accepted: an error saying goodbye must not make it look failed (and resent)
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentDeliveryError(target, f"the mail relay refused the login ({exc.smtp_code})") from None
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        codes = [c for c, _ in exc.recipients.values()] if isinstance(exc, smtplib.SMTPRecipientsRefused) \
            else [exc.smtp_code]
        if all(400 <= c < 500 for c in codes):
            raise RetryableDeliveryError(target, f"the mail relay deferred the message {codes}",
                                         category="other") from None
        raise PermanentDeliveryError(target, f"the mail relay refused the message {codes}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise RetryableDeliveryError(target, f"cannot send through the mail relay: {type(exc).__name__}",
                                     category=transport_category(exc)) from None
