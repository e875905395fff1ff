"""Admin of template sets: edit each slot, check it against samples, preview, copy and reset."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import ProtectedError
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from channels_app.models import TemplateSet
from channels_app.template_sets import (
    template_bodies_check,
    template_set_copy,
    template_set_preview,
    template_set_reset,
)
from channels_app.templating import EVENTS, SLOTS, Slot
from channels_app.templating.render import default_source
from channels_app.templating.sample import VARIANTS
from channels_app.templating.sandbox import MAX_SOURCE_CHARS
from oncall.admin_autocomplete import CheckedAutocomplete
from oncall.lib import clock
from oncall.lib.ids import id_in_range
from oncall.models import Incident

MARKUP_HELP = {
    "text": _("Plain text."),
    "html": _("HTML: every {{ value }} is HTML-escaped."),
    "mrkdwn": _("Slack mrkdwn: & < > in values are escaped."),
    "markdown": _("Markdown: markdown characters, < > and a leading @ in values are neutralised."),
    "lark_md": _("Feishu lark_md: markdown characters, < > and a leading @ in values become entities."),
    "json": _("JSON: every {{ value }} is written as a JSON value (strings get their quotes)."),
}


def _body_help(slot: Slot) -> str:
    return format_html(
        '{} {} <details><summary>{}</summary><pre class="template-default">{}</pre></details>',
        MARKUP_HELP[slot.markup],
        _("Limit: %(limit)s; longer text is cut with a marker. Empty: the default.") % {"limit": slot.limit_display()},
        _("Show the default"),
        default_source(slot.name),
    )


class TemplateSetFormBase(forms.ModelForm):
    """Name, description and team, plus one body and one "reset" box per template slot (declared below)."""

    class Meta:
        model = TemplateSet
        fields = ("name", "description", "team")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in SLOTS:
            if self.instance.is_default:
                # The default set is the platform's own files: shown, not edited (copy it to change it).
                self.fields[f"body_{name}"].disabled = True
                self.fields[f"body_{name}"].initial = default_source(name)
                del self.fields[f"reset_{name}"]
            elif self.instance.pk:
                self.initial.setdefault(f"body_{name}", self.instance.bodies.get(name, ""))

    def clean(self):
        cleaned = super().clean()
        bodies = {}
        if not self.instance.is_default:
            for name in SLOTS:
                body = (cleaned.get(f"body_{name}") or "").replace("\r\n", "\n")
                if body.strip() and not cleaned.get(f"reset_{name}"):
                    bodies[name] = body
            for name, error in template_bodies_check(bodies).items():
                self.add_error(f"body_{name}", error)
        self.bodies = bodies
        return cleaned

    def save(self, commit: bool = True):
        if not self.instance.is_default:
            self.instance.bodies = self.bodies
        return super().save(commit)


def _slot_fields() -> dict[str, forms.Field]:
    fields: dict[str, forms.Field] = {}
    for name, slot in SLOTS.items():
        fields[f"body_{name}"] = forms.CharField(
            label=slot.label,
            required=False,
            strip=False,
            max_length=MAX_SOURCE_CHARS,
            help_text=_body_help(slot),
            widget=forms.Textarea(attrs={"rows": 8, "class": "vLargeTextField template-body", "spellcheck": "false"}),
        )
        fields[f"reset_{name}"] = forms.BooleanField(label=_("Reset to default"), required=False)
    return fields


TemplateSetForm = type("TemplateSetForm", (TemplateSetFormBase,), _slot_fields())


@admin.register(TemplateSet)
class TemplateSetAdmin(CheckedAutocomplete, admin.ModelAdmin):
    form = TemplateSetForm
    list_display = ("name", "team", "is_default", "custom_slots", "updated_at")
    list_filter = ("is_default", "team")
    search_fields = ("name", "description")
    autocomplete_fields = ("team",)
    actions = ["copy_sets", "reset_sets"]
    change_form_template = "admin/channels_app/templateset/change_form.html"

    def get_fieldsets(self, request, obj=None):
        fieldsets = [(None, {"fields": ("name", "description", "team")})]
        for name, slot in SLOTS.items():
            fields = (f"body_{name}",) if obj is not None and obj.is_default else (f"body_{name}", f"reset_{name}")
            fieldsets.append((slot.label, {"fields": fields, "classes": ("template-slot",)}))
        return fieldsets

    @admin.display(description=_("customised slots"))
    def custom_slots(self, obj: TemplateSet) -> str:
        names = [str(SLOTS[name].label) for name in SLOTS if obj.bodies.get(name)]
        return ", ".join(names) or "—"

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_default:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset.filter(is_default=False))

    def delete_model(self, request, obj: TemplateSet) -> None:
        try:
            super().delete_model(request, obj)
        except ProtectedError as exc:
            raise PermissionDenied(exc.args[0]) from exc

    @admin.action(description=_("Copy the selected template sets"), permissions=["add"])
    def copy_sets(self, request, queryset) -> None:
        copies = [template_set_copy(template_set=template_set) for template_set in queryset]
        self.message_user(
            request, _("Created %(names)s.") % {"names": ", ".join(copy.name for copy in copies)}, messages.SUCCESS
        )

    @admin.action(description=_("Reset the selected template sets to the defaults"), permissions=["change"])
    def reset_sets(self, request, queryset) -> None:
        reset = [template_set_reset(template_set=template_set) for template_set in queryset.filter(is_default=False)]
        self.message_user(
            request, _("%(n)d template set(s) now use the defaults everywhere.") % {"n": len(reset)}, messages.SUCCESS
        )

    def get_urls(self):
        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="channels_app_templateset_preview",
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request, object_id: str):
        """Every slot of the set rendered side by side, for a real incident (?incident=<id>) or a sample one."""
        template_set = self.get_object(request, unquote(object_id))
        if template_set is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, template_set):
            raise PermissionDenied
        event = request.GET.get("event") if request.GET.get("event") in EVENTS else "triggered"
        variant = request.GET.get("variant") if request.GET.get("variant") in VARIANTS else "full"
        incident = None
        incident_error = ""
        if request.GET.get("incident"):
            incident_id = request.GET["incident"]
            incident = (
                Incident.objects.select_related("channel").filter(pk=incident_id).first()
                if id_in_range(incident_id)
                else None
            )
            if incident is None:
                incident_error = _("There is no incident %(id)s; showing the sample.") % {"id": incident_id}
        rows = template_set_preview(
            template_set=template_set, event=event, now=clock.now(), incident=incident, variant=variant
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Preview: %(name)s") % {"name": template_set.name},
            "opts": self.opts,
            "original": template_set,
            "rows": rows,
            "events": EVENTS,
            "variants": VARIANTS,
            "event": event,
            "variant": variant,
            "incident": incident,
            "incident_error": incident_error,
        }
        return TemplateResponse(request, "admin/channels_app/templateset/preview.html", context)
