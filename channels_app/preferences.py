"""Personal notification preferences: per severity, which notification methods reach a person.

They apply when a person is notified directly (assigned when created, reassigned, added as a responder) and on
escalation levels that follow personal preferences. A severity the person never set uses the defaults below, so
a new person is reachable from the start and later improvements of the defaults reach everyone who kept them.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.utils.translation import gettext as _

from channels_app import registry
from oncall.errors import ApplicationError
from oncall.models import NotificationPreference, Severity, User

# What PagerDuty and Flashduty users expect: the loud methods for what is on fire, quieter ones below it.
DEFAULT_PREFERENCES: dict[str, tuple[str, ...]] = {
    Severity.CRITICAL: ("app", "voice", "email"),
    Severity.WARNING: ("app", "email"),
    Severity.INFO: ("email",),
}


def _known(methods) -> list[str]:
    return [key for key in dict.fromkeys(methods) if key in registry.METHODS]


def person_preferences(*, person: User) -> dict[str, list[str]]:
    """Every severity with the methods that reach `person` for it (their own choice or the default)."""
    own = dict(NotificationPreference.objects.filter(person=person).values_list("severity", "methods"))
    return {
        severity: _known(own[severity] if severity in own else DEFAULT_PREFERENCES[severity])
        for severity in Severity.values
    }


@transaction.atomic
def person_preferences_set(*, person: User, preferences: Mapping[str, object]) -> dict[str, list[str]]:
    """Set the methods of the severities named in `preferences` ({"Critical": ["app", "voice"], …}); the others
    keep theirs. An empty list means "do not notify me directly for this severity"."""
    for severity, methods in preferences.items():
        if severity not in Severity.values:
            raise ApplicationError(
                _("Unknown severity %(s)s; use %(values)s.") % {"s": severity, "values": ", ".join(Severity.values)},
                field=str(severity),
            )
        if not isinstance(methods, (list, tuple)) or not all(isinstance(m, str) for m in methods):
            raise ApplicationError(_("%(s)s: a list of method names.") % {"s": severity}, field=severity)
        unknown = [m for m in methods if m not in registry.METHODS]
        if unknown:
            raise ApplicationError(
                _("%(s)s: unknown method(s) %(names)s; known: %(known)s.")
                % {"s": severity, "names": ", ".join(unknown), "known": ", ".join(registry.METHODS)},
                field=severity,
            )
    for severity, methods in preferences.items():
        NotificationPreference.objects.update_or_create(
            person=person, severity=severity, defaults={"methods": list(dict.fromkeys(methods))}
        )
    return person_preferences(person=person)
