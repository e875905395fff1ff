"""Template set services: check, copy, reset and preview what a set's messages say."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from channels_app.messages import message_context
from channels_app.models import TemplateSet
from channels_app.templating import EVENTS, SLOTS, Rendered, Slot, Unit, check_body, render_slot, sample_context
from channels_app.templating.limits import sms_segments
from oncall.models import Incident

# What a body is checked against on save: every event, for an incident with labels and one without.
CHECK_VARIANTS = ("full", "bare")


def template_bodies_check(bodies: Mapping[str, str]) -> dict[str, str]:
    """For each non-empty body that cannot be rendered, why (with the line): {slot: error}."""
    contexts = [sample_context(event, variant) for variant in CHECK_VARIANTS for event in EVENTS]
    errors = {}
    for name, body in bodies.items():
        if body and body.strip():
            error = check_body(name, body, contexts)
            if error:
                errors[name] = error
    return errors


def _copy_name(name: str) -> str:
    stem = _("Copy of %(name)s") % {"name": name}
    limit = TemplateSet._meta.get_field("name").max_length
    candidate, n = stem[:limit], 2
    while TemplateSet.objects.filter(name=candidate).exists():
        suffix = f" ({n})"
        candidate, n = stem[: limit - len(suffix)] + suffix, n + 1
    return candidate


@transaction.atomic
def template_set_copy(*, template_set: TemplateSet) -> TemplateSet:
    """A new, editable set with the same bodies, description and team (a copy of the default set is empty:
    every slot uses the default until edited)."""
    return TemplateSet.objects.create(
        name=_copy_name(template_set.name),
        description=template_set.description,
        team=template_set.team,
        bodies=dict(template_set.bodies),
    )


def template_set_reset(*, template_set: TemplateSet, slots: list[str] | None = None) -> TemplateSet:
    """Return `slots` (all when None) of a set to the platform's defaults."""
    if slots is None:
        template_set.bodies = {}
    else:
        template_set.bodies = {name: body for name, body in template_set.bodies.items() if name not in slots}
    template_set.save(update_fields=["bodies", "updated_at"])
    return template_set


@dataclass(frozen=True)
class PreviewRow:
    slot: Slot
    rendered: Rendered
    size: str  # how big the text is, counted as the slot's service counts it


def _size(slot: Slot, text: str) -> str:
    if slot.unit == Unit.SMS:
        count = sms_segments(text)
        return _("%(chars)d characters, %(segments)d segment(s) %(encoding)s") % {
            "chars": len(text),
            "segments": count.segments,
            "encoding": count.encoding,
        }
    if slot.unit == Unit.BYTES:
        return _("%(n)d bytes") % {"n": len(text.encode("utf-8"))}
    return _("%(n)d characters") % {"n": len(text)}


def template_set_preview(
    *, template_set: TemplateSet, event: str, now: datetime, incident: Incident | None = None, variant: str = "full"
) -> list[PreviewRow]:
    """Every slot of `template_set` rendered as it would be sent, for a real incident or a sample one."""
    context: dict[str, Any]
    if incident is not None:
        context = message_context(incident=incident, event=event, now=now)
    else:
        context = sample_context(event, variant, time_zone=settings.TIME_ZONE)
    rows = []
    for name, slot in SLOTS.items():
        rendered = render_slot(name, bodies=template_set.bodies, context=context)
        rows.append(PreviewRow(slot=slot, rendered=rendered, size=_size(slot, rendered.text)))
    return rows
