"""Bots (group-chat webhooks an escalation level posts to), user mapping tables for their @mentions, and the
per-bot send schedule that paces them."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from channels_app.bots.filters import BOT_EVENTS, SEVERITIES
from channels_app.bots.mapping import PLATFORMS, email_check, im_id_check, platform_choices
from channels_app.registry import bot_kind_choices


def all_bot_events() -> list[str]:
    return list(BOT_EVENTS)


def validate_severities(value: object) -> None:
    if not isinstance(value, list) or any(item not in SEVERITIES for item in value):
        raise ValidationError(
            _("Must be a list of severities among %(known)s."), params={"known": ", ".join(SEVERITIES)}
        )


def validate_bot_events(value: object) -> None:
    if not isinstance(value, list) or any(item not in BOT_EVENTS for item in value):
        raise ValidationError(
            _("Must be a list of event types among %(known)s."), params={"known": ", ".join(BOT_EVENTS)}
        )


def validate_chat_ids(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValidationError(_("Must be a list of chat ids."))


class MappingTable(models.Model):
    """Which user id each person (by email) has on one IM platform, so bots can @mention them."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    platform = models.CharField(_("platform"), max_length=20, choices=platform_choices)
    description = models.CharField(_("description"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["platform", "name"]
        verbose_name = _("user mapping table")
        verbose_name_plural = _("user mapping tables")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"

    @property
    def id_label(self) -> str:
        return str(PLATFORMS[self.platform].id_label) if self.platform in PLATFORMS else _("IM user id")


class MappingEntry(models.Model):
    """One person's user id on the table's platform, by their email address."""

    table = models.ForeignKey(MappingTable, on_delete=models.CASCADE, related_name="entries")
    email = models.EmailField(_("email"), max_length=254)
    im_id = models.CharField(_("IM user id"), max_length=200)

    class Meta:
        ordering = ["table", "email"]
        verbose_name = _("mapping entry")
        verbose_name_plural = _("mapping entries")
        constraints = [
            models.UniqueConstraint("table", Lower("email"), name="channels_mapping_entry_email_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.im_id}"

    def clean(self) -> None:
        problem = email_check(self.email) if self.email else ""
        if problem:
            raise ValidationError({"email": problem})
        if self.table_id and self.im_id:
            problem = im_id_check(self.table.platform, self.im_id.strip())
            if problem:
                raise ValidationError({"im_id": problem})
            self.im_id = self.im_id.strip()


class Bot(models.Model):
    """A group chat's webhook that escalation levels post incidents to (DingTalk, Feishu/Lark, WeCom, Slack, Zoom,
    Telegram, Teams or a custom URL), with its filters, @mention settings and IM fallback.

    `url` and `secret` are secrets (a webhook URL carries its access token): the admin never shows them in full.
    """

    class Fallback(models.TextChoices):
        NONE = "none", _("None")
        SMS = "sms", _("SMS")
        EMAIL = "email", _("Email")
        BOTH = "both", _("SMS and email")

    class MessageFormat(models.TextChoices):
        MARKDOWN = "markdown", _("Markdown (supports @mentions)")
        ACTION_CARD = "action_card", _("ActionCard (buttons; no @mentions)")

    name = models.CharField(
        _("name"), max_length=100, unique=True, help_text=_("The alias shown in the timeline and the admin.")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=bot_kind_choices)
    url = models.URLField(_("webhook URL"), max_length=2000, blank=True)
    secret = models.CharField(_("secret"), max_length=500, blank=True)
    chat_ids = models.JSONField(_("chat ids"), default=list, blank=True, validators=[validate_chat_ids])
    message_format = models.CharField(
        _("message format"), max_length=20, choices=MessageFormat.choices, default=MessageFormat.MARKDOWN
    )
    at_all = models.BooleanField(_("@all"), default=False, help_text=_("Mention everyone in the group."))
    severities = models.JSONField(
        _("severities"),
        default=list,
        blank=True,
        validators=[validate_severities],
        help_text=_("Only incidents of these severities are posted; none selected: all."),
    )
    event_types = models.JSONField(
        _("notification event types"),
        default=all_bot_events,
        blank=True,
        validators=[validate_bot_events],
        help_text=_("What the bot posts about; none selected: everything."),
    )
    mentions = models.BooleanField(
        _("@mentions"), default=True, help_text=_("Mention the people the message is about (the level's people).")
    )
    mapping_table = models.ForeignKey(
        MappingTable,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="bots",
        verbose_name=_("user mapping table"),
    )
    fallback = models.CharField(
        _("IM fallback"),
        max_length=10,
        choices=Fallback.choices,
        default=Fallback.NONE,
        help_text=_(
            "When a message asking for action cannot be delivered, remind the people it was meant for by SMS "
            "and/or email."
        ),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    paused_until = models.DateTimeField(
        _("rate-limited until"),
        null=True,
        blank=True,
        help_text=_("The provider asked us to wait; messages are held until then."),
    )
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("bot")
        verbose_name_plural = _("bots")

    def __str__(self) -> str:
        return self.name


class BotSend(models.Model):
    """A message to a bot, at the time it was (or is to be) sent: the send schedule that paces a bot.

    Workers reserve the next free time for a bot here under a lock on the bot's row, so any number of them agree
    on how many messages a bot got in each of its provider's rate-limit windows.
    """

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="sends")
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("bot send")
        verbose_name_plural = _("bot sends")
        indexes = [models.Index(fields=["bot", "at"], name="channels_botsend_bot_at")]

    def __str__(self) -> str:
        return f"{self.bot_id} at {self.at:%Y-%m-%d %H:%M:%S}"
