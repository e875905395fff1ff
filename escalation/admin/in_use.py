"""What escalation still uses, for the admin to refuse deleting it: Django's "cannot delete" page lists these lines as
the protected objects, as it does for a schedule a level targets (LevelSchedule.schedule is PROTECT).

A team, bot or person that a level names is a plain many-to-many: deleted, the level silently reaches nobody
("Level 2 notified nobody."), for new incidents and running ones alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Model, Prefetch
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from escalation.models import EscalationLevel


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
