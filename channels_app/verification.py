"""Sending the codes that verify a person's phone number (by SMS) and email address (by email).

The code is made and stored (hashed) by oncall.services.contacts; it is sent here, after that has committed, and
is never logged. A code that could not be sent cannot be used.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.utils.translation import gettext as _

from channels_app.base import Outcome
from channels_app.providers.sms import sms_text_send
from oncall.errors import ApplicationError, ServiceUnavailable
from oncall.models import Contact, User, VerificationCode
from oncall.services.contacts import contact_code_create, contact_code_unsent

logger = logging.getLogger(__name__)


def _minutes() -> int:
    return max(1, settings.VERIFICATION_CODE_TTL_SECONDS // 60)


def contact_verification_send(*, person: User, contact: str, target: str, now: datetime) -> VerificationCode:
    """Make a verification code for `target` and send it there: by SMS to a phone, by email to an address.

    Raises what contact_code_create raises (invalid target, taken, rate limited), ApplicationError when the
    provider refuses the target for good, ServiceUnavailable when it cannot be reached just now.
    """
    row, code = contact_code_create(person=person, contact=contact, target=target, now=now)
    if contact == Contact.PHONE:
        body = _("Your on-call verification code is %(code)s. It expires in %(m)d minutes.") % {
            "code": code,
            "m": _minutes(),
        }
        result = sms_text_send(to=row.target, body=body)
        if result.outcome == Outcome.SENT:
            return row
        contact_code_unsent(code=row)
        if result.outcome == Outcome.RETRYABLE:
            raise ServiceUnavailable(_("The code could not be sent just now; try again in a minute."), field="phone")
        raise ApplicationError(
            _("The code could not be sent to %(target)s: %(error)s") % {"target": row.target, "error": result.error},
            field="phone",
        )
    subject = _("Your on-call verification code: %(code)s") % {"code": code}
    body = _(
        "Hello %(name)s,\n\nEnter %(code)s to confirm that on-call notifications may be sent to this address. The code "
        "expires in %(m)d minutes. If you did not ask for it, ignore this email.\n"
    ) % {"name": person.display_name, "code": code, "m": _minutes()}
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [row.target], fail_silently=False)
    except smtplib.SMTPRecipientsRefused:
        contact_code_unsent(code=row)
        raise ApplicationError(
            _("The mail server refused %(target)s.") % {"target": row.target}, field="email"
        ) from None
    except Exception as exc:
        logger.warning("Could not send a verification email: %s", type(exc).__name__)
        contact_code_unsent(code=row)
        raise ServiceUnavailable(
            _("The code could not be sent just now; try again in a minute."), field="email"
        ) from None
    return row
