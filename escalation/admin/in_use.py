"""What escalation still uses, for the admin to refuse deleting it: Django's "cannot delete" page lists these lines as
the protected objects, as it does for a schedule a level targets (LevelSchedule.schedule is PROTECT).

A team, bot or person that a level names is a plain many-to-many: deleted, the level silently reaches nobody
("Level 2 notified nobody."), for new incidents and running ones alike. A person deleted also takes their layer
memberships and overrides with them (CASCADE): a rotation group that was only them vanishes and every later group's
turn moves, so someone else is on call tonight than the schedule showed. Deactivating keeps their turns.

Deactivating is no way out for the last active members of a team that a level names: a deactivated person is skipped,
so the level reaches nobody through the team all the same. Nor is deleting a way to take someone off an incident that
is not closed: their responder row goes with them, and the incident may be left assigned to nobody.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Model, Prefetch
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from escalation.models import EscalationLevel, LayerMember, Override
from oncall.models import Progress, Responder, Team, User


def levels_naming(objs: Iterable[Model], *, field: str, advice: str) -> list[SafeString]:
    """One line per level of an escalation rule whose `field` ("people", "teams" or "bots") names one of `objs`:
    the rule and level (a link to the rule), whom it names, and `advice` (what to do instead)."""
    objs = list(objs)
    if not objs:
        return []
    model = type(objs[0])
    named = model._default_manager.filter(pk__in=[obj.pk for obj in objs]).order_by("pk")
    levels = (
        EscalationLevel.objects.filter(**{f"{field}__in": named})
        .distinct()
        .select_related("rule")
        .prefetch_related(Prefetch(field, queryset=named, to_attr="named"))
        .order_by("rule__name", "rule_id", "position", "id")
    )
    return [
        format_html(
            '<a href="{}">{}</a>: {}',
            reverse("admin:escalation_escalationrule_change", args=[level.rule_id]),
            _("Escalation rule %(rule)s, %(level)s") % {"rule": level.rule.name, "level": level},
            _("notifies %(names)s. %(advice)s") % {"names": ", ".join(map(str, level.named)), "advice": advice},
        )
        for level in levels
    ]


def teams_left_empty(people: Iterable[Model]) -> list[SafeString]:
    """One line per level naming a team whose last active members are `people`: deleted or deactivated, the level
    would reach nobody through it."""
    people = list(people)
    leaving = {person.pk for person in people}
    teams = (
        Team.objects.filter(members__in=people)
        .distinct()
        .prefetch_related(Prefetch("members", queryset=User.objects.filter(is_active=True), to_attr="active"))
    )
    emptied = [team for team in teams if team.active and all(member.pk in leaving for member in team.active)]
    return levels_naming(
        emptied,
        field="teams",
        advice=_(
            "It would have no active member left: add someone to the team first, or remove the team from the level."
        ),
    )


def incidents_responded_by(people: Iterable[Model]) -> list[SafeString]:
    """One line per incident that is not closed and has some of `people` as responders (a link to the incident), with
    what to do instead of deleting them."""
    responders = (
        Responder.objects.filter(person__in=list(people))
        .exclude(incident__progress=Progress.CLOSED)
        .select_related("incident", "person")
        .order_by("incident_id", "person__username", "person_id")
    )
    incidents: dict[int, tuple[Model, list[str]]] = {}
    for responder in responders:
        incidents.setdefault(responder.incident_id, (responder.incident, []))[1].append(str(responder.person))
    return [
        format_html(
            '<a href="{}">{}</a>: {} {}',
            reverse("admin:oncall_incident_change", args=[incident.pk]),
            _("Incident %(incident)s") % {"incident": incident},
            ngettext(
                "%(people)s is a responder and it is not closed.",
                "%(people)s are responders and it is not closed.",
                len(names),
            )
            % {"people": ", ".join(names)},
            _("Deactivate them instead, or reassign or close the incident first."),
        )
        for incident, names in incidents.values()
    ]


def schedule_places(people: Iterable[Model]) -> list[SafeString]:
    """One line per layer membership and per override of `people` in a schedule, with what to do instead."""
    people = list(people)
    advice = _(
        "Deactivate them instead: their turn stays theirs and the layers below fill in. Or remove them from the "
        "schedule first, knowing that the rotation's later turns move."
    )
    members = (
        LayerMember.objects.filter(person__in=people)
        .select_related("layer__schedule", "person")
        .order_by("layer__schedule__name", "layer__position", "group", "id")
    )
    lines = [
        format_html(
            '<a href="{}">{}</a>: {}',
            reverse("admin:escalation_layer_change", args=[member.layer_id]),
            _("Schedule %(schedule)s, layer %(layer)s")
            % {"schedule": member.layer.schedule, "layer": member.layer.name},
            _("%(person)s is in group %(group)d. %(advice)s")
            % {"person": member.person, "group": member.group, "advice": advice},
        )
        for member in members
    ]
    overrides = (
        Override.objects.filter(person__in=people)
        .select_related("schedule", "person")
        .order_by("schedule__name", "start", "id")
    )
    lines += [
        format_html(
            '<a href="{}">{}</a>: {}',
            reverse("admin:escalation_schedule_change", args=[override.schedule_id]),
            _("Schedule %(schedule)s, override") % {"schedule": override.schedule},
            _("%(person)s from %(start)s to %(end)s. %(advice)s")
            % {
                "person": override.person,
                "start": _local(override.start, override.schedule.time_zone),
                "end": _local(override.end, override.schedule.time_zone),
                "advice": advice,
            },
        )
        for override in overrides
    ]
    return lines


def _local(moment: datetime, time_zone: str) -> str:
    """`moment` in the schedule's time zone, as its admin shows times."""
    with contextlib.suppress(ZoneInfoNotFoundError, ValueError):  # a zone saved past the form's check: UTC
        moment = moment.astimezone(ZoneInfo(time_zone))
    return f"{moment:%Y-%m-%d %H:%M} ({moment.tzname()})"
