"""Admin of the core app: people, teams, channels, integrations, incidents and their history."""

from __future__ import annotations

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from channels_app import registry
from channels_app.models import Delivery
from escalation.admin.in_use import incidents_responded_by, levels_naming, schedule_places, teams_left_empty
from escalation.models import EscalationState, Timer
from oncall.admin_autocomplete import CheckedAutocomplete
from oncall.admin_json import EmptyJSONBoxes
from oncall.errors import ApplicationError
from oncall.lib import clock, secrets
from oncall.models import (
    Alert,
    ApiToken,
    Channel,
    Contact,
    Device,
    EventBatch,
    Incident,
    IncidentEvent,
    Integration,
    NotificationPreference,
    Responder,
    RoutingRule,
    Severity,
    Team,
    TimelineEntry,
    User,
    VerificationCode,
)
from oncall.selectors import (
    channel_name_cache_clear,
    integration_key_cache_clear,
    integration_routing_preview,
    route_cache_clear,
)
from oncall.services.contacts import contact_mark_verified, phone_normalize
from oncall.services.devices import device_unlink
from oncall.services.tokens import api_token_revoke


class DeviceInlineFormSet(forms.BaseInlineFormSet):
    def delete_existing(self, obj: Device, commit: bool = True) -> None:
        # Unlinked as its owner would: the app on a lost phone is signed out too, not only its pushes stopped.
        if commit:
            device_unlink(device=obj, now=clock.now())


class DeviceInline(admin.TabularInline):
    model = Device
    formset = DeviceInlineFormSet
    extra = 0
    fields = ("platform", "name", "app_version", "token_masked", "created_at", "last_pushed_at")
    readonly_fields = fields
    can_delete = True

    @admin.display(description=_("token"))
    def token_masked(self, obj: Device) -> str:
        # A push token lets anyone who holds it (and the provider's key) push to the device: shown masked.
        return secrets.mask(obj.token_hint)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class PreferenceForm(forms.ModelForm):
    """A severity of the platform's and methods it knows, as the personal center and the API take them: anything
    else would be read as no method at all, and the person silently not paged."""

    severity = forms.ChoiceField(label=_("severity"), choices=Severity.choices)
    methods = forms.MultipleChoiceField(
        label=_("methods"), choices=(), required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = NotificationPreference
        fields = ("severity", "methods")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["methods"].choices = registry.method_choices()


class PreferenceInline(admin.TabularInline):
    model = NotificationPreference
    form = PreferenceForm
    extra = 0
    fields = ("severity", "methods")
    verbose_name_plural = _("notification preferences (severities not listed use the defaults)")


class UserAdminForm(UserChangeForm):
    def clean_phone(self) -> str:
        value = self.cleaned_data.get("phone", "")
        if not value:
            return ""
        try:
            return phone_normalize(value)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_is_active(self) -> bool:
        active = self.cleaned_data.get("is_active", True)
        # The instance still holds the saved values here: only deactivating is checked, not saving someone inactive.
        if self.instance.pk and self.instance.is_active and not active:
            emptied = teams_left_empty([self.instance])
            if emptied:
                lead = _(
                    "%(person)s is the last active member of a team that an escalation level notifies: deactivated, "
                    "they would be skipped and the level would reach nobody through the team."
                ) % {"person": self.instance}
                raise forms.ValidationError([lead, *emptied], code="team_left_empty")
        return active


def _same_phone(before: str, after: str) -> bool:
    """Whether the number saved (`before`, normally E.164 already) is `after`, the form's normalised one."""
    if before == after:
        return True
    try:
        return phone_normalize(before) == after
    except ApplicationError:
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserAdminForm
    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        "phone",
        "contacts_state",
        "time_zone",
        "is_staff",
        "is_active",
    )
    list_filter = ("is_staff", "is_superuser", "is_active", "teams")
    search_fields = ("username", "first_name", "last_name", "email", "phone")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (_("On-call"), {"fields": ("time_zone",)}),
        (
            _("Contacts"),
            {
                "fields": ("phone", "phone_verified_at", "phone_flagged", "email_verified_at", "email_flagged"),
                "description": _(
                    "Notifications use a contact only once it is verified and while it is not flagged. Changing the "
                    "phone or email here makes it unverified; use the actions in the list to mark contacts verified."
                ),
            },
        ),
    )
    readonly_fields = (
        "last_login",
        "date_joined",
        "phone_verified_at",
        "email_verified_at",
        "phone_flagged",
        "email_flagged",
    )
    inlines = [DeviceInline, PreferenceInline]
    actions = ["mark_phone_verified", "mark_email_verified"]

    @admin.display(description=_("contacts"))
    def contacts_state(self, obj: User) -> str:
        def state(value, verified_at, flagged) -> str:
            if not value:
                return _("none")
            if flagged:
                return _("flagged")
            return _("verified") if verified_at else _("unverified")

        return _("phone: %(phone)s, email: %(email)s") % {
            "phone": state(obj.phone, obj.phone_verified_at, obj.phone_flagged),
            "email": state(obj.email, obj.email_verified_at, obj.email_flagged),
        }

    def save_model(self, request, obj: User, form, change: bool) -> None:
        # A new number or address is unverified (and unflagged) until its owner enters a code or staff vouch. The
        # same one written differently (+1 415 555 0123 for +14155550123, a capital in the email) is not new: the
        # person must not stop being called, texted or emailed for it.
        if "phone" in form.changed_data and not _same_phone(form.initial.get("phone") or "", obj.phone):
            obj.phone_verified_at, obj.phone_flagged = None, ""
        if "email" in form.changed_data and (form.initial.get("email") or "").lower() != obj.email.lower():
            obj.email_verified_at, obj.email_flagged = None, ""
        super().save_model(request, obj, form, change)

    def _mark_verified(self, request, queryset, contact: str, label: str) -> None:
        done = 0
        for person in queryset:
            try:
                contact_mark_verified(person=person, contact=contact, now=clock.now())
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.WARNING)
                continue
            value = person.phone if contact == Contact.PHONE else person.email
            # The record of who vouched: the person's admin history.
            self.log_change(
                request, person, _("Marked %(label)s %(value)s verified.") % {"label": label, "value": value}
            )
            done += 1
        if done:
            self.message_user(request, _("%(n)d contact(s) marked verified.") % {"n": done}, messages.SUCCESS)

    def get_deleted_objects(self, objs, request):
        deleted_objects, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = [
            *protected,
            *levels_naming(
                objs,
                field="people",
                advice=_(
                    "Remove them from the level first, or deactivate them instead: a deactivated person is skipped, "
                    "and the timeline says so."
                ),
            ),
            *teams_left_empty(objs),
            *schedule_places(objs),
            *incidents_responded_by(objs),
        ]
        return deleted_objects, model_count, perms_needed, protected

    @admin.action(description=_("Mark their phone numbers verified"), permissions=["change"])
    def mark_phone_verified(self, request, queryset):
        self._mark_verified(request, queryset, Contact.PHONE, _("phone"))

    @admin.action(description=_("Mark their email addresses verified"), permissions=["change"])
    def mark_email_verified(self, request, queryset):
        self._mark_verified(request, queryset, Contact.EMAIL, _("email"))


@admin.register(VerificationCode)
class VerificationCodeAdmin(admin.ModelAdmin):
    list_display = ("created_at", "person", "contact", "target", "status", "attempts", "expires_at")
    list_filter = ("contact", "status")
    search_fields = ("person__username", "target")
    readonly_fields = ("person", "contact", "target", "status", "attempts", "created_at", "expires_at", "used_at")
    exclude = ("code_hash",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class TeamAdminForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ("name", "description", "members")

    def clean_members(self):
        members = self.cleaned_data["members"]
        team = self.instance
        # Only emptying is refused: a team that already had no active member may still be saved as it is.
        if team.pk and team.members.filter(is_active=True).exists() and not any(m.is_active for m in members):
            named = levels_naming(
                [team], field="teams", advice=_("Add an active member, or remove the team from the level first.")
            )
            if named:
                lead = _(
                    "This would leave the team with no active member, and the escalation levels that notify it would "
                    "reach nobody through it."
                )
                raise forms.ValidationError([lead, *named], code="team_left_empty")
        return members


@admin.register(Team)
class TeamAdmin(CheckedAutocomplete, admin.ModelAdmin):
    form = TeamAdminForm
    list_display = ("name", "description", "member_count", "created_at")
    search_fields = ("name", "description")
    autocomplete_fields = ("members",)
    readonly_fields = ("created_at",)

    @admin.display(description=_("members"))
    def member_count(self, obj: Team) -> int:
        return obj.members.count()

    def get_deleted_objects(self, objs, request):
        deleted_objects, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = [*protected, *levels_naming(objs, field="teams", advice=_("Remove the team from the level first."))]
        return deleted_objects, model_count, perms_needed, protected


@admin.register(Channel)
class ChannelAdmin(EmptyJSONBoxes, CheckedAutocomplete, admin.ModelAdmin):
    list_display = ("name", "team", "time_zone", "grouping", "close_with_alerts", "auto_resolve_minutes")
    list_filter = ("team", "close_with_alerts")
    search_fields = ("name", "description")
    autocomplete_fields = ("team",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "description", "team", "time_zone")}),
        (_("Alert grouping"), {"fields": ("group_keys", "group_window_minutes")}),
        (_("Closing"), {"fields": ("close_with_alerts", "auto_resolve_minutes")}),
        (_("History"), {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description=_("grouping"))
    def grouping(self, obj: Channel) -> str:
        return ", ".join(obj.group_keys) if obj.group_keys else _("off")

    def save_model(self, request, obj: Channel, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # Name-mapping routing looks channels up by name (cached, misses too): forget the old and the new name.
        _after_commit_too(channel_name_cache_clear, form.initial.get("name", ""), obj.name)

    def delete_model(self, request, obj: Channel) -> None:
        integration_ids = _routing_to([obj])
        super().delete_model(request, obj)
        _forget_channels([obj], integration_ids)

    def delete_queryset(self, request, queryset) -> None:
        channels = list(queryset)
        integration_ids = _routing_to(channels)
        super().delete_queryset(request, queryset)
        _forget_channels(channels, integration_ids)


def _routing_to(channels) -> set[int]:
    """Integrations whose routing rules send events to these channels."""
    return set(RoutingRule.objects.filter(channels__in=channels).values_list("integration_id", flat=True))


def _forget_channels(channels, integration_ids: set[int]) -> None:
    _after_commit_too(channel_name_cache_clear, *(channel.name for channel in channels))
    _after_commit_too(route_cache_clear, *integration_ids)


def _after_commit_too(clear, *args) -> None:
    """Clear a cache now and again once the change commits: a push that reads the old rows in between would
    otherwise cache them again for the cache's lifetime."""
    clear(*args)
    transaction.on_commit(lambda: clear(*args))


def _push_urls(request, integration: Integration, key: str) -> dict[str, str]:
    base = request.build_absolute_uri("/").rstrip("/")
    return {
        "standard": f"{base}{reverse('alert-push', args=['standard'])}?integration_key={key}",
    }


class RoutingRuleForm(forms.ModelForm):
    class Meta:
        model = RoutingRule
        fields = ("position", "name", "enabled", "filters", "mode", "channels", "name_mapping_label", "fallthrough")
        widgets = {"filters": forms.Textarea(attrs={"rows": 3, "cols": 100, "class": "vLargeTextField"})}

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("mode") == RoutingRule.Mode.CHANNELS and not cleaned.get("channels"):
            self.add_error("channels", _("Choose at least one channel to send matching events to."))
        return cleaned


class RoutingRuleInline(EmptyJSONBoxes, CheckedAutocomplete, admin.StackedInline):
    model = RoutingRule
    form = RoutingRuleForm
    extra = 0
    ordering = ("position", "id")
    autocomplete_fields = ("channels",)
    fields = (
        ("position", "name", "enabled"),
        "filters",
        ("mode", "fallthrough"),
        "channels",
        "name_mapping_label",
    )


@admin.register(Integration)
class IntegrationAdmin(CheckedAutocomplete, admin.ModelAdmin):
    list_display = ("name", "kind", "channel", "rule_count", "enabled", "masked_key", "last_event_at", "created_at")
    list_filter = ("kind", "enabled", "channel")
    search_fields = ("name",)
    autocomplete_fields = ("channel",)
    readonly_fields = ("masked_key", "last_event_at", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "kind", "enabled")}),
        (
            _("Routing"),
            {
                "fields": ("channel",),
                "description": _(
                    "Routing rules (below) are evaluated by position: every matching rule adds its channels, and "
                    "one that does not continue stops there. The default route is used only when no rule matched. "
                    "Recoveries are not routed: they close the open alerts with their key in every channel."
                ),
            },
        ),
        (_("Limits"), {"fields": ("rate_limit_per_second", "rate_limit_per_minute")}),
        (_("Key and activity"), {"fields": ("masked_key", "last_event_at", "created_at", "updated_at")}),
    )
    inlines = [RoutingRuleInline]
    actions = ["regenerate_keys"]

    @admin.display(description=_("integration key"))
    def masked_key(self, obj: Integration) -> str:
        return obj.masked_key or "—"

    @admin.display(description=_("routing rules"), ordering="rule_count")
    def rule_count(self, obj: Integration) -> int:
        return obj.rule_count

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("channel").annotate(rule_count=Count("routing_rules"))

    def get_urls(self):
        preview = path(
            "<path:object_id>/routing-preview/",
            self.admin_site.admin_view(self.routing_preview_view),
            name="oncall_integration_routing_preview",
        )
        return [preview, *super().get_urls()]

    def routing_preview_view(self, request, object_id: str):
        """Where the integration's last 20 alerts would go under its routing rules as saved now."""
        integration = self.get_object(request, unquote(object_id))
        if integration is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, integration):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": _("Routing preview: %(name)s") % {"name": integration.name},
            "opts": self.opts,
            "original": integration,
            "rows": integration_routing_preview(integration=integration),
            "rule_count": integration.rule_count,
        }
        return TemplateResponse(request, "admin/oncall/integration/routing_preview.html", context)

    def save_model(self, request, obj: Integration, form, change: bool) -> None:
        if not change:
            request._new_integration_key = obj.set_new_key()
        super().save_model(request, obj, form, change)
        integration_key_cache_clear(obj.key_hash)

    def save_related(self, request, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # The rules are saved now; the key lookup's cache holds the integration, hence its default route.
        _after_commit_too(integration_key_cache_clear, form.instance.key_hash)
        _after_commit_too(route_cache_clear, form.instance.pk)

    def response_add(self, request, obj: Integration, post_url_continue=None):
        # The key is shown on this page once and stored nowhere else: not in the session, not in a message cookie.
        key = getattr(request, "_new_integration_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        return self._show_keys(request, [(obj, key)], _("Integration created"))

    def _show_keys(self, request, pairs, title):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.model._meta,
            "keys": [
                {"integration": integration, "key": key, "urls": _push_urls(request, integration, key)}
                for integration, key in pairs
            ],
        }
        return TemplateResponse(request, "admin/oncall/integration/keys.html", context)

    @admin.action(description=_("Regenerate the integration key (the old one stops working)"), permissions=["change"])
    def regenerate_keys(self, request, queryset):
        pairs = []
        for integration in queryset:
            old_hash = integration.key_hash
            key = integration.set_new_key()
            integration.save(update_fields=["key_hash", "key_hint", "updated_at"])
            integration_key_cache_clear(old_hash, integration.key_hash)
            pairs.append((integration, key))
        if not pairs:
            self.message_user(request, _("No integration selected."), messages.WARNING)
            return None
        return self._show_keys(request, pairs, _("New integration keys"))

    def delete_model(self, request, obj: Integration) -> None:
        super().delete_model(request, obj)
        _forget_integrations([obj])

    def delete_queryset(self, request, queryset) -> None:
        integrations = list(queryset)
        super().delete_queryset(request, queryset)
        _forget_integrations(integrations)


def _forget_integrations(integrations) -> None:
    _after_commit_too(integration_key_cache_clear, *(integration.key_hash for integration in integrations))
    _after_commit_too(route_cache_clear, *(integration.pk for integration in integrations))


class AlertInline(admin.TabularInline):
    model = Alert
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "title",
        "severity",
        "status",
        "progress",
        "event_count",
        "start_time",
        "last_time",
        "integration",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ResponderInline(admin.TabularInline):
    model = Responder
    extra = 0
    readonly_fields = fields = ("person", "assigned_at", "acknowledged_at")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # reassigning goes through the incident's page or API, which pages the people it names

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class TimelineInline(admin.TabularInline):
    model = TimelineEntry
    extra = 0
    can_delete = False
    fields = ("at", "kind", "message", "actor", "source")
    readonly_fields = fields
    ordering = ("at", "id")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


_SEVERITY_COLOURS = {"Critical": "#C80000", "Warning": "#FA7D00", "Info": "#2B6CB0"}


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    list_display = (
        "number_display",
        "title",
        "severity_badge",
        "progress",
        "status",
        "channel",
        "start_time",
    )
    list_display_links = ("number_display", "title")
    list_filter = ("progress", "severity", "status", "channel")
    search_fields = ("title", "description", "=id")
    date_hierarchy = "start_time"
    list_select_related = ("channel",)
    readonly_fields = (
        "number_display",
        "severity",
        "status",
        "progress",
        "channel",
        "labels",
        "start_time",
        "last_time",
        "ack_time",
        "close_time",
        "end_time",
        "created_by",
        "closed_by",
    )
    fields = ("number_display", "title", "description", *readonly_fields[1:])
    readonly_fields = ("title", "description", *readonly_fields)
    inlines = [AlertInline, ResponderInline, TimelineInline]

    @admin.display(description=_("number"), ordering="id")
    def number_display(self, obj: Incident) -> str:
        return f"#{obj.number}" if obj.pk else "—"

    @admin.display(description=_("severity"), ordering="severity")
    def severity_badge(self, obj: Incident) -> str:
        return format_html(
            '<strong style="color:{}">{}</strong>',
            _SEVERITY_COLOURS.get(obj.severity, "inherit"),
            obj.severity,
        )

    def has_add_permission(self, request) -> bool:
        # Incidents come from alerts; manual creation goes through the incident service (API and pages).
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # Shown, not edited: saving the page wrote back the whole row as read, undoing an acknowledgement or a
        # close made meanwhile. Acting on an incident goes through its page or the API, which page and record it.
        return False

    def get_deleted_objects(self, objs, request):
        deleted_objects, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Its escalation, timers, events and deliveries cannot be deleted on their own (that would stop or double a
        # page), but an incident deleted takes them with it: they ask for no permission of their own here.
        owned = {str(model._meta.verbose_name) for model in (EscalationState, Timer, IncidentEvent, Delivery, Alert)}
        perms_needed = {name for name in perms_needed if str(name) not in owned}
        return deleted_objects, model_count, perms_needed, protected


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "severity",
        "status",
        "progress",
        "event_count",
        "integration",
        "incident",
        "last_time",
    )
    list_filter = ("progress", "severity", "status", "integration", "channel")
    search_fields = ("title", "alert_key", "description")
    list_select_related = ("integration", "incident")
    readonly_fields = (
        "integration",
        "channel",
        "incident",
        "alert_key",
        "title",
        "title_rule",
        "description",
        "severity",
        "status",
        "progress",
        "labels",
        "images",
        "event_count",
        "start_time",
        "last_time",
        "end_time",
        "close_time",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # written by ingest only: a save here would write back the row as read, over its updates

    def has_delete_permission(self, request, obj=None) -> bool:
        # An open alert deleted on its own would keep its incident open for good once its siblings recover (the
        # incident closes with its alerts); deleting the incident takes its alerts with it.
        return False


@admin.register(TimelineEntry)
class TimelineEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "incident", "kind", "message", "actor", "source")
    list_filter = ("kind", "source")
    search_fields = ("message", "=incident__id")
    list_select_related = ("incident", "actor")
    readonly_fields = ("incident", "at", "kind", "actor", "source", "message", "detail")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(IncidentEvent)
class IncidentEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "incident", "kind", "source", "actor", "dispatched_at")
    list_filter = ("kind", "source")
    search_fields = ("=incident__id",)
    list_select_related = ("incident", "actor")
    readonly_fields = ("incident", "kind", "actor", "source", "detail", "created_at", "dispatched_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # An event not dispatched yet is what starts (or restarts, or stops) the incident's escalation: deleted, that
        # never happens. Events go only with their incident.
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their owners (API, pages or `manage.py create_api_token`); the admin can revoke."""

    list_display = ("name", "user", "for_app", "hint", "created_at", "last_used_at", "revoked_at")
    list_filter = ("for_app", "revoked_at")
    search_fields = ("name", "user__username", "user__email")
    list_select_related = ("user",)
    readonly_fields = ("user", "for_app", "device", "name", "hint", "created_at", "last_used_at", "revoked_at")
    fields = readonly_fields
    actions = ["revoke"]

    @admin.display(description=_("token"))
    def hint(self, obj: ApiToken) -> str:
        return f"{obj.token_hint}…"

    @admin.action(description=_("Revoke the selected tokens"), permissions=["change"])
    def revoke(self, request, queryset):
        now = clock.now()
        for token in queryset.filter(revoked_at__isnull=True):
            api_token_revoke(token=token, now=now)
        self.message_user(request, _("Revoked."), messages.SUCCESS)

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(EventBatch)
class EventBatchAdmin(admin.ModelAdmin):
    """Pushes waiting for the worker, and those it gave up on (with their error)."""

    list_display = ("id", "integration", "received_at", "event_count", "attempts", "failed_at", "short_error")
    list_filter = ("integration", ("failed_at", admin.EmptyFieldListFilter))
    readonly_fields = ("integration", "events", "received_at", "attempts", "next_attempt_at", "failed_at", "error")
    list_select_related = ("integration",)

    @admin.display(description=_("events"))
    def event_count(self, obj: EventBatch) -> int:
        return len(obj.events)

    @admin.display(description=_("last error"))
    def short_error(self, obj: EventBatch) -> str:
        return obj.error[:80]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# Sign-in lockouts (oncall.signin): django-axes' own admin, on the platform's site (AXES_ENABLE_ADMIN is off so axes
# does not register its other, unused, logs). Deleting a row lifts that account's lock for that address.
admin.site.register(AccessAttempt, AccessAttemptAdmin)
