"""Email through Django's email API, so any django-anymail ESP (or SMTP) works by setting EMAIL_BACKEND."""

from __future__ import annotations

import hashlib
import smtplib
from collections.abc import Mapping
from email.utils import make_msgid
from typing import Any

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.translation import gettext_lazy as _

from channels_app.base import NotificationMethod, SendResult
from oncall.lib import http


def stable_message_id(delivery: Any) -> str:
    """The Message-ID of a delivery's email: the same on every attempt, so that a repeat (an attempt whose worker
    died after the mail server took it is sent again) is one message to mail clients and archives that deduplicate
    by Message-ID. The delivery's random callback code makes it unique to this installation; a test message, which
    has no delivery, gets a fresh one."""
    code = getattr(delivery, "callback_code", "")
    if not code:
        return make_msgid(idstring="test", domain="oncall")
    digest = hashlib.sha256(f"{delivery.dedup_key}\n{code}".encode()).hexdigest()[:32]
    return f"<delivery.{digest}@oncall>"


def _connection() -> Any:
    """The configured email backend, its timeout cut to what is left of the delivery attempt (email does not go
    through oncall.lib.http, which does this for every request). Django's SMTP backend and anymail's HTTP ones
    have a `timeout` (in seconds): SMTP's applies to each socket operation, anymail's to each request. Others are
    left as they are."""
    connection = get_connection(fail_silently=False)
    left = http.attempt_seconds_left()
    if left is None or left <= 0 or not hasattr(connection, "timeout"):
        return connection
    timeout = connection.timeout
    if timeout is None:  # Django's SMTP backend without EMAIL_TIMEOUT: it would wait forever
        connection.timeout = left
    elif isinstance(timeout, int | float) and not isinstance(timeout, bool):
        connection.timeout = min(timeout, left)
    return connection


class EmailMethod(NotificationMethod):
    key = "email"
    label = _("Email")

    slots = ("email_subject", "email_text", "email_html")
    contact = "email"

    def address_for(self, person: Any) -> str | None:
        return person.reachable_email

    def unreachable_reason(self, person: Any) -> str:
        if person.email and person.email_flagged:
            return f"email address flagged: {person.email_flagged}"
        return "no verified email contact"

    def send(
        self, *, message: Mapping[str, str], context: Mapping[str, Any], address: str, delivery: Any
    ) -> SendResult:
        """Send the rendered subject, plain text and HTML as one multipart email; the subject slot is one line.

        A refused recipient (SMTP 5xx on RCPT, or the ESP rejecting every recipient) is permanent and flags the
        address; ESP API errors are permanent for 4xx other than 429, retryable otherwise. Later bounces arrive
        by the ESP's tracking webhook (channels_app.tracking).
        """
        message_id = stable_message_id(delivery)
        mail = EmailMultiAlternatives(
            subject=message["email_subject"],
            body=message["email_text"],
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
            headers={"Message-ID": message_id},
            connection=_connection(),
        )
        mail.attach_alternative(message["email_html"], "text/html")
        try:
            mail.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            if any(code < 500 for code, _reply in exc.recipients.values()):
                # 4xx on RCPT (greylisting, a busy mailbox, a rate limit): try again later; the address is fine.
                return SendResult.retryable(f"recipient deferred by the mail server: {exc}")
            return SendResult.permanent(f"recipient refused: {exc}", flag=f"refused by the mail server: {exc}"[:300])
        except AnymailRecipientsRefused as exc:
            return SendResult.permanent(f"recipient refused: {exc}", flag=f"refused by the mail server: {exc}"[:300])
        except AnymailAPIError as exc:
            status = getattr(exc, "status_code", None)
            if status and 400 <= status < 500 and status != 429:
                return SendResult.permanent(f"email provider refused the message ({status}): {exc}")
            return SendResult.retryable(f"email provider error: {exc}")
        except (smtplib.SMTPException, OSError) as exc:
            return SendResult.retryable(f"mail server error: {type(exc).__name__}: {exc}")
        anymail_status = getattr(mail, "anymail_status", None)
        provider_id = getattr(anymail_status, "message_id", None) if anymail_status else None
        return SendResult.sent(str(provider_id or message_id))
