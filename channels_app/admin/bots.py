"""Admin of bots (only the fields of the chosen kind, secrets never shown back, "send test message") and of user
mapping tables (entries inline, CSV import and export)."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.validators import URLValidator
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import escape, format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from channels_app import registry
from channels_app.bots.filters import BOT_EVENT_LABELS, BOT_EVENTS, SEVERITIES
from channels_app.bots.mapping import PLATFORMS, CsvErrors, im_id_check
from channels_app.bots.services import bot_test_send, masked_url
from channels_app.bots.tables import mapping_table_export, mapping_table_import
from channels_app.models import Bot, MappingEntry, MappingTable
from escalation.admin.in_use import levels_naming
from oncall.lib import clock, http
from oncall.lib.secrets import mask

# Settings only some kinds use (each kind lists its own in BotProvider.fields).
KIND_FIELDS = ("chat_ids", "message_format", "at_all")
_CHAT_ID = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,}")


def kind_of(request, obj: Bot | None) -> str | None:
    """The bot's kind: its own once saved, else the one being added (?kind= or the posted form)."""
    if obj is not None:
        return obj.kind
    kind = request.POST.get("kind") or request.GET.get("kind")
    return kind if kind in registry.BOTS else None


def kind_hints() -> dict[str, dict]:
    """What the form's little script needs to show only the chosen kind's fields and its help texts."""
    hints = {}
    for key in registry.BOTS:
        provider = registry.bot_kind(key)
        hints[key] = {
            "fields": ["url", *(["secret", "clear_secret"] if provider.secret_label else []), *provider.fields]
            + (["mapping_table"] if provider.mapping_platform else []),
            "url_help": str(provider.url_help),
            "secret_label": str(provider.secret_label or ""),
            "secret_help": str(provider.secret_help),
            "mention_help": str(provider.mention_help),
            "platform": provider.mapping_platform or "",
        }
    return hints


class BotForm(forms.ModelForm):
    url = forms.CharField(label=_("Webhook URL"), required=False, max_length=2000)
    secret = forms.CharField(
        label=_("Secret"), required=False, max_length=500, widget=forms.PasswordInput(render_value=False)
    )
    clear_secret = forms.BooleanField(label=_("Remove the secret"), required=False)
    chat_ids_text = forms.CharField(
        label=_("Chat ids"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One per line (or comma-separated): -1001234567890 for a group, @channelname for a channel."),
    )
    severities = forms.MultipleChoiceField(
        label=_("Severities"),
        required=False,
        choices=[(severity, _(severity)) for severity in SEVERITIES],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Unselected severities are not pushed; none selected: all."),
    )
    event_types = forms.MultipleChoiceField(
        label=_("Notification event types"),
        required=False,
        choices=[(event, BOT_EVENT_LABELS[event]) for event in BOT_EVENTS],
        widget=forms.CheckboxSelectMultiple,
        help_text=_("What the bot posts about; none selected: everything."),
    )

    class Meta:
        model = Bot
        fields = (
            "name",
            "kind",
            "enabled",
            "message_format",
            "at_all",
            "mentions",
            "mapping_table",
            "fallback",
        )

    def __init__(self, *args, kind: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.kind = self.instance.kind if self.instance.pk else kind
        if self.instance.pk:
            # Secrets are written, never read back: the URL (it carries the access token) and the secret.
            self.initial["url"] = self.initial["secret"] = ""
            self.initial["chat_ids_text"] = "\n".join(self.instance.chat_ids)
            self.initial["severities"] = self.instance.severities
            self.initial["event_types"] = self.instance.event_types
            current = masked_url(self.instance.url)
            self.fields["url"].help_text = (
                _("Set: %(url)s. Leave empty to keep it; it is never shown in full.") % {"url": escape(current)}
                if current
                else ""
            )
            if self.instance.secret:
                self.fields["secret"].help_text = _("Set: %(hint)s. Leave empty to keep it.") % {
                    "hint": escape(mask(self.instance.secret[-4:]))
                }
        else:
            self.initial.setdefault("event_types", list(BOT_EVENTS))
            if self.kind:
                self.initial["kind"] = self.kind
        if "kind" in self.fields:
            self.fields["kind"].widget.attrs["data-bot-kind"] = "1"
        provider = registry.bot_kind(self.kind) if self.kind else None
        if provider is not None:
            self.fields["url"].help_text = " ".join(
                filter(None, [str(provider.url_help), self.fields["url"].help_text])
            )
            if provider.secret_label:
                self.fields["secret"].label = provider.secret_label
                self.fields["secret"].help_text = " ".join(
                    filter(None, [str(provider.secret_help), str(self.fields["secret"].help_text)])
                )
            self.fields["mentions"].help_text = provider.mention_help
            if "mapping_table" in self.fields and provider.mapping_platform:
                self.fields["mapping_table"].queryset = MappingTable.objects.filter(platform=provider.mapping_platform)
                if provider.mentions_need_table:
                    self.fields["mapping_table"].help_text = _(
                        "Required for @mentions: without a table nobody is mentioned."
                    )

    def clean(self):
        cleaned = super().clean()
        kind = self.kind or cleaned.get("kind")
        if kind not in registry.BOTS:
            return cleaned
        provider = registry.bot_kind(kind)
        url = (cleaned.get("url") or "").strip() or self.instance.url
        if url:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except forms.ValidationError:
                self.add_error("url", _("Enter an http(s) URL."))
            else:
                if http.url_problem(url) is not None:  # what URLValidator lets through: a port of 0 or past 65535
                    self.add_error("url", _("The port must be a number from 1 to 65535."))
                if host := http.forbidden_host(url):
                    self.add_error(
                        "url",
                        _("%(host)s is a private or local address, which this platform may not call.") % {"host": host},
                    )
        elif not provider.default_url:
            self.add_error("url", _("The webhook URL is required."))
        secret = (cleaned.get("secret") or "").strip() or self.instance.secret
        if cleaned.get("clear_secret") or not provider.secret_label:
            secret = ""
        if provider.secret_required and not secret:
            self.add_error("secret", _("%(what)s is required.") % {"what": provider.secret_label})
        chat_ids = []
        if "chat_ids" in provider.fields:
            chat_ids = [item for item in re.split(r"[\s,]+", cleaned.get("chat_ids_text") or "") if item]
            bad = [item for item in chat_ids if not _CHAT_ID.fullmatch(item)]
            if bad:
                self.add_error("chat_ids_text", _("Not chat ids: %(ids)s") % {"ids": ", ".join(bad)})
            elif not chat_ids:
                self.add_error("chat_ids_text", _("At least one chat id is required."))
        table = cleaned.get("mapping_table")
        if table is not None and table.platform != provider.mapping_platform:
            self.add_error(
                "mapping_table",
                _("A %(kind)s bot needs a %(platform)s table.")
                % {
                    "kind": provider.label,
                    "platform": PLATFORMS[provider.mapping_platform].label if provider.mapping_platform else _("no"),
                },
            )
        # What the kind does not use goes back to its default, so a hidden field never changes behaviour.
        cleaned["url"] = self.instance.url = url
        cleaned["secret"] = self.instance.secret = secret
        self.instance.chat_ids = list(dict.fromkeys(chat_ids))
        cleaned["severities"] = [s for s in SEVERITIES if s in (cleaned.get("severities") or [])]
        cleaned["event_types"] = [e for e in BOT_EVENTS if e in (cleaned.get("event_types") or [])]
        self.instance.severities, self.instance.event_types = cleaned["severities"], cleaned["event_types"]
        if "message_format" not in provider.fields:
            cleaned["message_format"] = Bot.MessageFormat.MARKDOWN
        if "at_all" not in provider.fields:
            cleaned["at_all"] = False
        if not provider.mapping_platform:
            cleaned["mapping_table"] = None
        return cleaned


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    form = BotForm
    list_display = ("name", "kind", "enabled", "webhook", "last_success_at", "last_error_short", "last_error_at")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    actions = ["send_test_message"]
    change_form_template = "admin/channels_app/bot/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        status = ("last_success_at", "last_error", "last_error_at", "paused_until")
        return ("kind", *status) if obj is not None else status

    def get_deleted_objects(self, objs, request):
        deleted_objects, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = [*protected, *levels_naming(objs, field="bots", advice=_("Remove the bot from the level first."))]
        return deleted_objects, model_count, perms_needed, protected

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        kind = kind_of(request, obj)

        class KindForm(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, kind=kind, **kw)

        return KindForm

    def get_fieldsets(self, request, obj=None):
        kind = kind_of(request, obj)
        if kind:
            hints = kind_hints()[kind]["fields"]
            connection = [name if name != "chat_ids" else "chat_ids_text" for name in hints if name != "mapping_table"]
        else:
            # Adding without a kind yet: every field, and the form's script shows the chosen kind's.
            connection = ["url", "secret", "clear_secret", "chat_ids_text", *KIND_FIELDS[1:]]
        if obj is None:
            connection = [name for name in connection if name != "clear_secret"]
        advanced = ["severities", "event_types", "mentions"]
        if not kind or registry.bot_kind(kind).mapping_platform:
            advanced.append("mapping_table")
        advanced.append("fallback")
        fieldsets = [
            (None, {"fields": ("name", "kind", "enabled")}),
            (_("Connection"), {"fields": connection}),
            (_("Advanced options"), {"fields": advanced}),
        ]
        if obj is not None:
            fieldsets.append(
                (_("Status"), {"fields": ("last_success_at", "last_error", "last_error_at", "paused_until")})
            )
        return fieldsets

    @admin.display(description=_("webhook"))
    def webhook(self, obj: Bot) -> str:
        return masked_url(obj.url) or "—"

    @admin.display(description=_("last error"))
    def last_error_short(self, obj: Bot) -> str:
        return Truncator(obj.last_error).chars(80) if obj.last_error else "—"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["bot_kind_hints"] = kind_hints()
        context["bot_kind_fields"] = [
            "url",
            "secret",
            "clear_secret",
            "chat_ids_text",
            *KIND_FIELDS[1:],
            "mapping_table",
        ]
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def get_urls(self):
        test = path("<path:object_id>/test/", self.admin_site.admin_view(self.test_view), name="channels_app_bot_test")
        return [test, *super().get_urls()]

    @admin.action(description=_("Send a test message"), permissions=["change"])
    def send_test_message(self, request, queryset):
        answers = [bot_test_send(bot=bot, person=request.user, now=clock.now()) for bot in queryset]
        return self._answers(request, answers)

    def test_view(self, request, object_id: str):
        """POST: send the bot a test message now and show what its provider answered."""
        bot = self.get_object(request, unquote(object_id))
        if bot is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, bot):
            raise PermissionDenied
        if request.method != "POST":
            return redirect(reverse("admin:channels_app_bot_change", args=[bot.pk]))
        return self._answers(request, [bot_test_send(bot=bot, person=request.user, now=clock.now())])

    def _answers(self, request, answers):
        context = {
            **self.admin_site.each_context(request),
            "title": _("Test messages"),
            "opts": self.opts,
            "answers": answers,
        }
        return TemplateResponse(request, "admin/channels_app/bot/test_answers.html", context)


class MappingEntryFormSet(forms.BaseInlineFormSet):
    """The entries typed on a table's page, checked together: the database refuses an email twice in one table
    whatever its case, and rows added in one save are not in the database yet for the model's checks to see.

    On the add page the table has no id yet, so MappingEntry.clean cannot reach its platform; the admin has
    already copied the parent form's cleaned values onto `self.instance` when the inlines are validated, so the
    ids are checked here against that platform.
    """

    def clean(self) -> None:
        super().clean()
        platform = self.instance.platform if self.instance.platform in PLATFORMS else None
        seen: dict[str, str] = {}
        for form in self.forms:
            if not form.cleaned_data or self._should_delete_form(form):
                continue
            im_id = form.cleaned_data.get("im_id")
            if platform and im_id:
                problem = im_id_check(platform, im_id.strip())
                if problem:
                    form.add_error("im_id", problem)
            email = form.cleaned_data.get("email")
            if not email:
                continue
            if email.lower() in seen and not form.errors:
                form.add_error(
                    "email",
                    _("%(email)s is already listed as %(other)s; each person can be in a table once.")
                    % {"email": email, "other": seen[email.lower()]},
                )
                continue
            seen.setdefault(email.lower(), email)


class MappingEntryInline(admin.TabularInline):
    model = MappingEntry
    formset = MappingEntryFormSet
    extra = 1
    fields = ("email", "im_id")


class CsvImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"), help_text=_("Two columns: email,im_id (a header line is optional)."))
    replace = forms.BooleanField(
        label=_("Replace the table"),
        required=False,
        help_text=_("Delete the entries the file does not list; otherwise they are kept."),
    )


def bots_using(tables) -> list[str]:
    """One line per bot that @mentions people through one of `tables`, for the admin to refuse deleting them: a
    deleted table leaves its bots without one (Bot.mapping_table is SET_NULL), and they silently mention nobody."""
    bots = Bot.objects.filter(mapping_table__in=[table.pk for table in tables]).select_related("mapping_table")
    return [
        format_html(
            '<a href="{}">{}</a>: {}',
            reverse("admin:channels_app_bot_change", args=[bot.pk]),
            _("Bot %(bot)s") % {"bot": bot.name},
            _("mentions people through %(table)s. Choose another table on the bot first.")
            % {"table": bot.mapping_table.name},
        )
        for bot in bots.order_by("name", "pk")
    ]


@admin.register(MappingTable)
class MappingTableAdmin(admin.ModelAdmin):
    list_display = ("name", "platform", "entry_count", "updated_at")
    list_filter = ("platform",)
    search_fields = ("name", "entries__email", "entries__im_id")
    inlines = [MappingEntryInline]
    change_form_template = "admin/channels_app/mappingtable/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(entry_total=Count("entries", distinct=True))

    @admin.display(description=_("entries"), ordering="entry_total")
    def entry_count(self, obj: MappingTable) -> int:
        return obj.entry_total

    def get_readonly_fields(self, request, obj=None):
        # The ids in a table are checked for its platform: changing the platform would leave them unchecked.
        return ("platform",) if obj is not None else ()

    def get_deleted_objects(self, objs, request):
        deleted_objects, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted_objects, model_count, perms_needed, [*protected, *bots_using(objs)]

    def get_urls(self):
        extra = [
            path(
                "<path:object_id>/import/",
                self.admin_site.admin_view(self.import_view),
                name="channels_app_mappingtable_import",
            ),
            path(
                "<path:object_id>/export/",
                self.admin_site.admin_view(self.export_view),
                name="channels_app_mappingtable_export",
            ),
        ]
        return [*extra, *super().get_urls()]

    def import_view(self, request, object_id: str):
        """Upload a CSV of email,im_id; a file with any bad line is refused with every line number."""
        table = self.get_object(request, unquote(object_id))
        if table is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, table):
            raise PermissionDenied
        errors: list[str] = []
        form = CsvImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            raw = form.cleaned_data["file"].read()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                errors = [str(_("The file is not UTF-8 text."))]
            else:
                try:
                    report = mapping_table_import(table=table, text=text, replace=form.cleaned_data["replace"])
                except CsvErrors as exc:
                    errors = exc.errors
                else:
                    self.message_user(
                        request,
                        _("Imported: %(c)d added, %(u)d updated, %(d)d deleted.")
                        % {"c": report.created, "u": report.updated, "d": report.deleted},
                        messages.SUCCESS,
                    )
                    return redirect(reverse("admin:channels_app_mappingtable_change", args=[table.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import into %(table)s") % {"table": table},
            "opts": self.opts,
            "original": table,
            "form": form,
            "errors": errors,
            "id_label": table.id_label,
            "example": PLATFORMS[table.platform].example,
        }
        return TemplateResponse(
            request, "admin/channels_app/mappingtable/import.html", context, status=400 if errors else 200
        )

    def export_view(self, request, object_id: str):
        table = self.get_object(request, unquote(object_id))
        if table is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, table):
            raise PermissionDenied
        response = HttpResponse(mapping_table_export(table=table), content_type="text/csv; charset=utf-8")
        filename = re.sub(r"[^A-Za-z0-9_.-]+", "-", table.name).strip("-") or "mapping"
        response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return response
