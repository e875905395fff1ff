"""Admin of on-call schedules: layers inline with their rotation, members on the layer's page, overrides inline,
the next 4 weeks as a table, calendar feeds (shown once) and shift reminders. Times are the schedule's."""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_permission_codename
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from escalation.feeds import calendar_feed_create, calendar_feed_revoke, calendar_feed_url
from escalation.models import CalendarFeed, Layer, LayerMember, Override, Schedule, ShiftReminder
from escalation.schedules import TABLE_DAYS, UNREADABLE, on_call_now, schedule_table
from oncall.admin_autocomplete import CheckedAutocomplete
from oncall.admin_json import EmptyJSONBoxes
from oncall.lib import clock, secrets
from oncall.lib.ids import id_in_range
from oncall.models.people import validate_time_zone

logger = logging.getLogger(__name__)


def _posted_time_zone(request, fallback: str) -> ZoneInfo:
    value = request.POST.get("time_zone", "") if request.method == "POST" else ""
    try:
        validate_time_zone(value)
    except forms.ValidationError:
        value = fallback
    return ZoneInfo(value or "UTC")


def _in_time_zone(tz: ZoneInfo, view, *args, **kwargs):
    """Run an admin view with `tz` as the current time zone, so the times on its form are entered and shown in the
    schedule's time zone (rendering too, which a TemplateResponse would otherwise do later)."""
    with timezone.override(tz):
        response = view(*args, **kwargs)
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
    return response


def rotation_summary(layer: Layer) -> str:
    groups: dict[int, list[str]] = {}
    for member in layer.members.all():
        groups.setdefault(member.group, []).append(f"{member.person.get_username()} ({member.get_role_display()})")
    if not groups:
        return str(_("nobody yet: add people on the layer's page"))
    return " → ".join(f"{number}: {', '.join(names)}" for number, names in sorted(groups.items()))


class LayerInline(EmptyJSONBoxes, admin.StackedInline):
    model = Layer
    extra = 0
    ordering = ("position", "id")
    show_change_link = True
    fields = (
        ("position", "name"),
        ("rotation_unit", "rotation_count"),
        ("start", "end"),
        ("restriction_kind", "restriction_windows"),
        "rotation",
    )
    readonly_fields = ("rotation",)

    @admin.display(description=_("rotation (edit people on the layer's page)"))
    def rotation(self, obj: Layer) -> str:
        return rotation_summary(obj) if obj.pk else "—"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members__person")


class OverrideInline(CheckedAutocomplete, admin.TabularInline):
    model = Override
    extra = 0
    ordering = ("-start", "id")
    autocomplete_fields = ("person",)
    fields = ("person", "role", "start", "end", "note")


@admin.register(Schedule)
class ScheduleAdmin(CheckedAutocomplete, admin.ModelAdmin):
    list_display = ("name", "team", "time_zone", "enabled", "on_call", "reminder_minutes", "feed")
    list_filter = ("enabled", "team")
    search_fields = ("name", "description")
    autocomplete_fields = ("team",)
    readonly_fields = ("feed", "created_at", "updated_at")
    inlines = [LayerInline, OverrideInline]
    actions = ["regenerate_feeds", "revoke_feeds"]
    change_form_template = "admin/escalation/schedule/change_form.html"
    fieldsets = (
        (
            None,
            {
                "fields": ("name", "team", "description", "time_zone", "enabled"),
                "description": _(
                    "Times on this page (layer starts and ends, overrides) are in the schedule's time zone."
                ),
            },
        ),
        (_("Reminders and calendar"), {"fields": ("reminder_minutes", "feed")}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description=_("on call now"))
    def on_call(self, obj: Schedule) -> str:
        try:
            with transaction.atomic():  # a savepoint: the list's other rows are still read
                slots = on_call_now(schedule=obj, now=clock.now())
        except UNREADABLE:
            # A schedule written around the forms (say, an override past year 9999) must not take the whole list
            # down: the list is where an admin finds it.
            logger.exception("Schedule %s cannot say who is on call", obj.pk)
            return str(_("cannot be read: see the server log"))
        parts = [f"{', '.join(p.display_name for p in people)} ({role})" for role, people in slots.items()]
        return "; ".join(parts) or "—"

    @admin.display(description=_("calendar feed"))
    def feed(self, obj: Schedule) -> str:
        active = CalendarFeed.objects.active().filter(schedule=obj).first() if obj.pk else None
        if active is None:
            return str(_("none (create one with the list's action)"))
        return _("active since %(at)s, URL ends with %(hint)s") % {
            "at": timezone.localtime(active.created_at).strftime("%Y-%m-%d %H:%M"),
            "hint": secrets.mask(active.token_hint),
        }

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("team")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        schedule = self.get_object(request, unquote(object_id)) if object_id else None
        tz = _posted_time_zone(request, schedule.time_zone if schedule else "UTC")
        extra_context = dict(extra_context or {})
        if schedule is not None:
            now = clock.now()
            extra_context.update(
                shift_table=schedule_table(schedule=schedule, now=now),
                shift_table_days=TABLE_DAYS,
                on_call_now=on_call_now(schedule=schedule, now=now),
                schedule_time_zone=schedule.time_zone,
            )
        return _in_time_zone(tz, super().changeform_view, request, object_id, form_url, extra_context)

    def _show_feeds(self, request, pairs, title):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "feeds": [
                {"schedule": schedule, "url": calendar_feed_url(kind=CalendarFeed.Kind.SCHEDULE, token=token)}
                for schedule, token in pairs
            ],
        }
        return TemplateResponse(request, "admin/escalation/schedule/feeds.html", context)

    @admin.action(
        description=_("Create or regenerate the calendar feed URL (the old one stops working)"), permissions=["change"]
    )
    def regenerate_feeds(self, request, queryset):
        now = clock.now()
        pairs = [(schedule, calendar_feed_create(schedule=schedule, now=now)[1]) for schedule in queryset]
        return self._show_feeds(request, pairs, _("Calendar feed URLs"))

    @admin.action(description=_("Revoke the calendar feed URL"), permissions=["change"])
    def revoke_feeds(self, request, queryset):
        now = clock.now()
        count = sum(calendar_feed_revoke(schedule=schedule, now=now) for schedule in queryset)
        self.message_user(request, _("%(n)d calendar feed(s) revoked.") % {"n": count}, messages.SUCCESS)


class LayerMemberInline(CheckedAutocomplete, admin.TabularInline):
    model = LayerMember
    extra = 1
    ordering = ("group", "id")
    autocomplete_fields = ("person",)
    fields = ("group", "person", "role")


@admin.register(Layer)
class LayerAdmin(EmptyJSONBoxes, CheckedAutocomplete, admin.ModelAdmin):
    list_display = ("name", "schedule", "position", "rotation_display", "start", "end", "restriction_kind")
    list_filter = ("schedule", "rotation_unit", "restriction_kind")
    search_fields = ("name", "schedule__name")
    list_select_related = ("schedule",)
    autocomplete_fields = ("schedule",)
    inlines = [LayerMemberInline]
    fieldsets = (
        (
            None,
            {
                "fields": ("schedule", "position", "name"),
                "description": _(
                    "Times on this page are in the schedule's time zone. Groups take turns in the order of their "
                    "numbers; people with the same group number are on call together, each in their role."
                ),
            },
        ),
        (_("Rotation"), {"fields": (("rotation_unit", "rotation_count"), ("start", "end"))}),
        (_("Restriction"), {"fields": ("restriction_kind", "restriction_windows")}),
    )

    @admin.display(description=_("rotation"))
    def rotation_display(self, obj: Layer) -> str:
        return _("every %(n)d %(unit)s") % {"n": obj.rotation_count, "unit": obj.get_rotation_unit_display()}

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        layer = self.get_object(request, unquote(object_id)) if object_id else None
        fallback = layer.schedule.time_zone if layer else "UTC"
        posted = request.POST.get("schedule") if request.method == "POST" else None
        if posted and id_in_range(posted):
            fallback = Schedule.objects.filter(pk=posted).values_list("time_zone", flat=True).first() or fallback
        return _in_time_zone(ZoneInfo(fallback), super().changeform_view, request, object_id, form_url, extra_context)


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    list_display = ("kind", "schedule", "person", "masked", "created_at", "revoked_at")
    list_filter = ("kind",)
    search_fields = ("schedule__name", "person__username", "person__email")
    list_select_related = ("schedule", "person")
    readonly_fields = ("kind", "schedule", "person", "masked", "created_at", "revoked_at")
    fields = readonly_fields
    actions = ["revoke"]

    @admin.display(description=_("URL ends with"))
    def masked(self, obj: CalendarFeed) -> str:
        return secrets.mask(obj.token_hint)

    @admin.action(description=_("Revoke (the URL stops working)"), permissions=["revoke"])
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=clock.now())
        self.message_user(request, _("%(n)d calendar feed(s) revoked.") % {"n": count}, messages.SUCCESS)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # nothing to edit: a feed is made by its owner (or a schedule's action) and only revoked

    def has_revoke_permission(self, request) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")


@admin.register(ShiftReminder)
class ShiftReminderAdmin(admin.ModelAdmin):
    list_display = ("schedule", "person", "shift_start", "due_at", "status", "attempts", "sent_at")
    list_filter = ("status", "schedule")
    search_fields = ("schedule__name", "person__username", "person__email")
    list_select_related = ("schedule", "person")
    readonly_fields = (
        "schedule",
        "person",
        "role",
        "shift_start",
        "shift_end",
        "due_at",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "address",
        "error",
        "created_at",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
