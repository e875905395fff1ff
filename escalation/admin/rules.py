"""Admin of escalation rules with their levels (people, teams, schedules, methods, bots), and running escalations."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from channels_app.registry import method_choices
from escalation.models import EscalationLevel, EscalationRule, EscalationState, LevelSchedule, Role, Schedule, Timer
from oncall.admin_autocomplete import CheckedAutocomplete
from oncall.admin_json import EmptyJSONBoxes


class MethodsField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs) -> None:
        kwargs.pop("encoder", None)
        kwargs.pop("decoder", None)
        kwargs.pop("max_length", None)
        super().__init__(choices=method_choices, required=False, **kwargs)


def schedule_target_choices() -> list[tuple[str, str]]:
    """ "<schedule id>:<role>" for every schedule and role, plus ":"-ended "anyone on call" for each schedule."""
    choices = []
    for schedule in Schedule.objects.order_by("name"):
        choices.append((f"{schedule.pk}:", _("%(schedule)s: anyone on call") % {"schedule": schedule.name}))
        for role, label in Role.choices:
            choices.append(
                (f"{schedule.pk}:{role}", _("%(schedule)s: %(role)s") % {"schedule": schedule, "role": label})
            )
    return choices


class EscalationLevelForm(forms.ModelForm):
    critical_methods = MethodsField(label=_("Methods for Critical"))
    warning_methods = MethodsField(label=_("Methods for Warning"))
    info_methods = MethodsField(label=_("Methods for Info"))
    schedule_targets = forms.MultipleChoiceField(
        label=_("Schedules"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Whoever is on call (in the role) when the level runs; someone reached twice is notified once."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["schedule_targets"].choices = schedule_target_choices()
        if self.instance.pk:
            self.initial["schedule_targets"] = [
                f"{target.schedule_id}:{target.role}" for target in self.instance.schedule_targets.all()
            ]

    def clean(self) -> dict:
        cleaned = super().clean()
        targets = ("people", "teams", "schedule_targets", "emails", "bots")
        # A level that reaches nobody still takes the incident: it is assigned, and no one is ever told.
        if not any(cleaned.get(name) for name in targets) and not any(name in self.errors for name in targets):
            raise forms.ValidationError(
                _("This level reaches nobody: choose people, teams, schedules, email addresses or bots."),
                code="no_targets",
            )
        return cleaned

    def _save_m2m(self) -> None:
        super()._save_m2m()
        wanted = set()
        for value in self.cleaned_data.get("schedule_targets", []):
            schedule_id, _sep, role = value.partition(":")
            wanted.add((int(schedule_id), role))
        existing = {(t.schedule_id, t.role): t for t in self.instance.schedule_targets.all()}
        for key, target in existing.items():
            if key not in wanted:
                target.delete()
        LevelSchedule.objects.bulk_create(
            [
                LevelSchedule(level=self.instance, schedule_id=schedule_id, role=role)
                for schedule_id, role in sorted(wanted - set(existing))
            ]
        )

    class Meta:
        model = EscalationLevel
        fields = (
            "position",
            "people",
            "teams",
            "schedule_targets",
            "emails",
            "bots",
            "follow_preferences",
            "critical_methods",
            "warning_methods",
            "info_methods",
            "escalate_after_minutes",
            "force_escalate",
            "repeat_times",
            "repeat_every_minutes",
        )


class EscalationLevelInline(EmptyJSONBoxes, CheckedAutocomplete, admin.StackedInline):
    model = EscalationLevel
    form = EscalationLevelForm
    extra = 0
    min_num = 1
    autocomplete_fields = ("people", "teams", "bots")
    ordering = ("position", "id")


@admin.register(EscalationRule)
class EscalationRuleAdmin(EmptyJSONBoxes, CheckedAutocomplete, admin.ModelAdmin):
    list_display = ("name", "channel", "priority", "enabled", "level_count", "conditions", "updated_at")
    list_filter = ("enabled", "channel")
    search_fields = ("name", "description", "channel__name")
    autocomplete_fields = ("channel",)
    list_editable = ("priority", "enabled")
    readonly_fields = ("created_at", "updated_at")
    inlines = [EscalationLevelInline]
    fieldsets = (
        (None, {"fields": ("channel", "name", "description", "priority", "enabled")}),
        (_("When it applies"), {"fields": ("time_windows", "filters")}),
        (_("Timing and messages"), {"fields": ("delay_seconds", "template_set")}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description=_("levels"))
    def level_count(self, obj: EscalationRule) -> int:
        return obj.levels.count()

    @admin.display(description=_("applies"))
    def conditions(self, obj: EscalationRule) -> str:
        parts = []
        if obj.time_windows:
            parts.append(_("in %(n)d time window(s)") % {"n": len(obj.time_windows)})
        if obj.filters:
            parts.append(_("to filtered incidents"))
        return ", ".join(parts) or _("always")


class TimerInline(admin.TabularInline):
    model = Timer
    extra = 0
    can_delete = False
    fields = ("kind", "level", "round", "due_at", "done_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EscalationState)
class EscalationStateAdmin(admin.ModelAdmin):
    list_display = ("incident", "rule", "status", "run", "level_display", "round", "level_started_at", "updated_at")
    list_filter = ("status",)
    search_fields = ("=incident__id", "rule__name")
    list_select_related = ("incident", "rule")
    readonly_fields = (
        "incident",
        "rule",
        "snapshot",
        "status",
        "run",
        "token",
        "level",
        "round",
        "started_at",
    )
    inlines = [TimerInline]

    @admin.display(description=_("level"), ordering="level")
    def level_display(self, obj: EscalationState) -> int:
        return obj.level + 1

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Without its state a running escalation stops where it is, with no word in the timeline: its next level
        # is never paged. The state goes only with its incident.
        return False


@admin.register(Timer)
class TimerAdmin(admin.ModelAdmin):
    list_display = ("id", "state", "kind", "level", "round", "due_at", "lease_until", "done_at")
    list_filter = ("kind",)
    search_fields = ("=state__incident__id",)
    readonly_fields = (
        "state",
        "kind",
        "token",
        "level",
        "round",
        "due_at",
        "lease_until",
        "done_at",
        "created_at",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # A pending timer is the escalation's next step: without it the escalation stays running and never pages
        # its next level (or repeat). Timers go only with their incident.
        return False
