"""A person's contacts: binding and verifying a phone number and an email address, and flagging them when a
provider says they cannot be reached.

A code is made here and handed back to the caller, who sends it (channels_app.verification: the core does not
talk to providers). Only a keyed hash of the code is stored. A person's contact changes to the new number or
address only when the right code is entered, so a verified contact keeps working until its replacement is.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _

from oncall.errors import ApplicationError, Conflict, RateLimited
from oncall.lib.locks import transaction_lock
from oncall.models import Contact, User, VerificationCode

CODE_DIGITS = 6
WINDOW = timedelta(hours=1)
Status = VerificationCode.Status


def phone_normalize(value: str) -> str:
    """`value` as an E.164 number (+14155550100); raise ApplicationError when it is not a possible number."""
    text = (value or "").strip()
    try:
        number = phonenumbers.parse(text, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        if text and not text.startswith("+") and not settings.PHONE_DEFAULT_REGION:
            message = _("Write the number with its country code, e.g. +14155550100.")
        else:
            message = _("%(value)s is not a valid phone number.") % {"value": text[:30]}
        raise ApplicationError(message, field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_normalize(value: str) -> str:
    text = (value or "").strip()
    try:
        validate_email(text)
    except ValidationError:
        raise ApplicationError(_("%(value)s is not an email address.") % {"value": text[:100]}, field="email") from None
    local, _at, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def _code_hash(*, person_id: int, contact: str, target: str, code: str) -> str:
    # Keyed with SECRET_KEY and bound to the person and the target: a leaked table does not give the codes away
    # (six digits are too few to stand a plain hash), and a code is good for nothing else.
    return salted_hmac(
        "oncall.contacts.verification", f"{person_id}:{contact}:{target}:{code}", algorithm="sha256"
    ).hexdigest()


def _taken_by_other(*, person: User, contact: str, target: str) -> bool:
    others = User.objects.exclude(pk=person.pk)
    if contact == Contact.PHONE:
        return others.filter(phone=target).exists()
    return others.filter(email__iexact=target).exists()


def _check_rate(*, person: User, contact: str, target: str, now: datetime) -> None:
    since = now - WINDOW
    limits = (
        (
            VerificationCode.objects.filter(person=person, created_at__gt=since),
            settings.VERIFICATION_PER_PERSON_PER_HOUR,
            _("You asked for %(n)d codes in the last hour; wait before asking again."),
        ),
        (
            VerificationCode.objects.filter(contact=contact, target=target, created_at__gt=since),
            settings.VERIFICATION_PER_TARGET_PER_HOUR,
            _("%(n)d codes were sent to this number or address in the last hour; wait before asking again."),
        ),
    )
    for rows, limit, message in limits:
        times = list(rows.order_by("created_at").values_list("created_at", flat=True)[:limit])
        if len(times) >= limit:
            retry_after = (times[0] + WINDOW - now).total_seconds()
            raise RateLimited(message % {"n": limit}, retry_after=int(retry_after) + 1, field=contact)


@transaction.atomic
def contact_code_create(*, person: User, contact: str, target: str, now: datetime) -> tuple[VerificationCode, str]:
    """Make a code that proves `person` receives at `target` (a phone number or an email address).

    Returns the code row and the code itself, which the caller sends and which is stored nowhere. Refuses a
    target another person uses (Conflict) and too many codes per person or per target within an hour
    (RateLimited, with when to try again). A newer code replaces the pending one.
    """
    if contact == Contact.PHONE:
        target = phone_normalize(target)
    elif contact == Contact.EMAIL:
        target = email_normalize(target or person.email)
    else:
        raise ApplicationError(_("Unknown kind of contact."), field="contact")
    # Lock the person's row and the target: two concurrent requests, from one person or from several asking for
    # the same number, must not both pass the rate check.
    User.objects.select_for_update().filter(pk=person.pk).first()
    transaction_lock(f"verification-target:{contact}:{target}")
    if _taken_by_other(person=person, contact=contact, target=target):
        raise Conflict(_("%(target)s belongs to another person.") % {"target": target}, field=contact)
    _check_rate(person=person, contact=contact, target=target, now=now)
    VerificationCode.objects.filter(person=person, contact=contact, status=Status.PENDING).update(
        status=Status.REPLACED
    )
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    row = VerificationCode.objects.create(
        person=person,
        contact=contact,
        target=target,
        code_hash=_code_hash(person_id=person.pk, contact=contact, target=target, code=code),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.VERIFICATION_CODE_TTL_SECONDS),
    )
    return row, code


def contact_code_unsent(*, code: VerificationCode) -> None:
    """The code could not be sent: it cannot be used (it still counts against the rate limits)."""
    VerificationCode.objects.filter(pk=code.pk, status=Status.PENDING).update(status=Status.UNSENT)


def contact_verify(*, person: User, contact: str, code: str, now: datetime) -> User:
    """Check `code` against the person's pending code for `contact`; when right, the contact is theirs and verified.

    A wrong code counts; after VERIFICATION_MAX_ATTEMPTS wrong codes the code is spent and a new one is needed.
    An expired code is refused. Verifying clears a flag the contact had.
    """
    code = "".join((code or "").split())
    refusal: ApplicationError | None = None
    with transaction.atomic():
        row = (
            VerificationCode.objects.select_for_update()
            .filter(person=person, contact=contact, status=Status.PENDING)
            .order_by("-created_at", "-id")
            .first()
        )
        if row is None:
            refusal = ApplicationError(_("No code is waiting to be entered; ask for a new one."), field="code")
        elif row.expires_at <= now:
            row.status = Status.EXPIRED
            row.save(update_fields=["status"])
            refusal = ApplicationError(_("The code has expired; ask for a new one."), field="code")
        elif not constant_time_compare(
            _code_hash(person_id=person.pk, contact=contact, target=row.target, code=code), row.code_hash
        ):
            row.attempts += 1
            left = settings.VERIFICATION_MAX_ATTEMPTS - row.attempts
            if left <= 0:
                row.status = Status.SPENT
                refusal = ApplicationError(_("Too many wrong codes; ask for a new one."), field="code")
            else:
                refusal = ApplicationError(_("That code is wrong; %(n)d attempt(s) left.") % {"n": left}, field="code")
            row.save(update_fields=["attempts", "status"])
    # Raised outside the transaction: the counted attempt must be kept.
    if refusal is not None:
        raise refusal
    try:
        with transaction.atomic():
            VerificationCode.objects.filter(pk=row.pk).update(status=Status.VERIFIED, used_at=now)
            person = User.objects.select_for_update().get(pk=person.pk)
            if contact == Contact.PHONE:
                person.phone, person.phone_verified_at, person.phone_flagged = row.target, now, ""
                person.save(update_fields=["phone", "phone_verified_at", "phone_flagged"])
            else:
                person.email, person.email_verified_at, person.email_flagged = row.target, now, ""
                person.save(update_fields=["email", "email_verified_at", "email_flagged"])
    except IntegrityError:
        raise Conflict(_("%(target)s now belongs to another person.") % {"target": row.target}, field=contact) from None
    return person


def contact_phone_remove(*, person: User) -> User:
    """Forget the person's phone number: no more calls or SMS until they bind one again."""
    person.phone, person.phone_verified_at, person.phone_flagged = "", None, ""
    person.save(update_fields=["phone", "phone_verified_at", "phone_flagged"])
    VerificationCode.objects.filter(person=person, contact=Contact.PHONE, status=Status.PENDING).update(
        status=Status.REPLACED
    )
    return person


def contact_mark_verified(*, person: User, contact: str, now: datetime) -> User:
    """Staff vouch for a contact (the admin records who did it): verified now, any flag cleared."""
    if contact == Contact.PHONE:
        if not person.phone:
            raise ApplicationError(_("%(person)s has no phone number.") % {"person": person.display_name})
        person.phone_verified_at, person.phone_flagged = now, ""
        person.save(update_fields=["phone_verified_at", "phone_flagged"])
    else:
        if not person.email:
            raise ApplicationError(_("%(person)s has no email address.") % {"person": person.display_name})
        person.email_verified_at, person.email_flagged = now, ""
        person.save(update_fields=["email_verified_at", "email_flagged"])
    return person


def contact_flag(*, person_id: int, contact: str, address: str, reason: str) -> bool:
    """A provider said `address` cannot be reached for good: stop notifying the person there until they verify it
    again. Nothing happens if the person's contact has changed since (the error was about an old one).

    Returns whether the contact was flagged now.
    """
    reason = (reason or _("refused by the provider"))[:300]
    people = User.objects.filter(pk=person_id)
    if contact == Contact.PHONE:
        return bool(people.filter(phone=address, phone_flagged="").update(phone_flagged=reason))
    return bool(people.filter(email__iexact=address, email_flagged="").update(email_flagged=reason))


def contacts_state(*, person: User, now: datetime) -> dict:
    """The person's contacts as they see them: value, verified or not, flag, and a code waiting to be entered."""
    pending = {
        row.contact: row
        for row in VerificationCode.objects.filter(person=person, status=Status.PENDING, expires_at__gt=now).order_by(
            "created_at", "id"
        )
    }

    def one(contact: str, value: str, verified_at, flagged: str) -> dict:
        code = pending.get(contact)
        return {
            "value": value,
            "verified": bool(value and verified_at),
            "verified_at": verified_at,
            "flagged": flagged,
            "reachable": bool(value and verified_at and not flagged),
            "pending": {"target": code.target, "expires_at": code.expires_at} if code else None,
        }

    return {
        "phone": one(Contact.PHONE, person.phone, person.phone_verified_at, person.phone_flagged),
        "email": one(Contact.EMAIL, person.email, person.email_verified_at, person.email_flagged),
    }
