"""A person's own profile."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from oncall.errors import ApplicationError
from oncall.models import User
from oncall.models.people import validate_time_zone


def user_profile_update(
    *,
    user: User,
    first_name: str | None = None,
    last_name: str | None = None,
    time_zone: str | None = None,
    language: str | None = None,
) -> User:
    """Change a person's own name, time zone and language.

    Username and email are not changed here: the username is the login, and an email address must be verified
    before notifications use it.
    """
    if time_zone is not None:
        try:
            validate_time_zone(time_zone)
        except ValidationError:
            raise ApplicationError(
                _("%(value)s is not a known time zone (for example Europe/Berlin).") % {"value": time_zone},
                field="time_zone",
            ) from None
    if language is not None and language and language not in dict(settings.LANGUAGES):
        raise ApplicationError(
            _("%(value)s is not a language of the platform.") % {"value": language}, field="language"
        )
    changes = {
        name: value
        for name, value in (
            ("first_name", first_name),
            ("last_name", last_name),
            ("time_zone", time_zone),
            ("language", language),
        )
        if value is not None
    }
    for name, value in changes.items():
        setattr(user, name, value)
    if changes:
        user.save(update_fields=list(changes))
    return user
