"""Deliveries: one row per message to one recipient by one method, written before the provider is called."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import ProtectedError
from django.utils.translation import gettext_lazy as _


class TemplateSetQuerySet(models.QuerySet):
    def default(self) -> TemplateSet:
        """The set that ships with the platform (made by a migration; it cannot be deleted)."""
        return self.get(is_default=True)


class TemplateSet(models.Model):
    """What every message says: one body per template slot (email subject, SMS, voice, each bot kind…).

    `bodies` maps a slot name to a Jinja2 template; a slot that is missing or empty uses the platform's default
    for that slot. Escalation rules choose a set; rules without one use the default set.
    """

    name = models.CharField(_("name"), max_length=39, unique=True)
    description = models.CharField(_("description"), max_length=500, blank=True)
    team = models.ForeignKey(
        "oncall.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="template_sets",
        verbose_name=_("owner team"),
    )
    is_default = models.BooleanField(_("platform default"), default=False, editable=False)
    bodies = models.JSONField(_("bodies"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = TemplateSetQuerySet.as_manager()

    class Meta:
        ordering = ["-is_default", "name"]
        verbose_name = _("template set")
        verbose_name_plural = _("template sets")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="channels_one_default_template_set"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def delete(self, *args, **kwargs):
        if self.is_default:
            raise ProtectedError(_("The platform's default template set cannot be deleted."), {self})
        return super().delete(*args, **kwargs)


class Delivery(models.Model):
    """One message to one person (or address) by one notification method, or to one bot (method "bot").

    `dedup_key` makes "the same (incident, escalation run, level, round, recipient, method) is never sent twice"
    a database guarantee: whoever writes a delivery second gets a conflict, not a second page.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")  # waiting for its (next) attempt at next_attempt_at
        SENDING = "sending", _("Sending")  # a worker holds it until lease_until
        SENT = "sent", _("Sent")  # the provider accepted it
        DELIVERED = "delivered", _("Delivered")  # the provider confirmed it reached the recipient
        FAILED = "failed", _("Failed")  # permanent error or attempts exhausted
        CANCELLED = "cancelled", _("Cancelled")  # no longer needed when its turn came (docs/people.md)

    incident = models.ForeignKey("oncall.Incident", on_delete=models.CASCADE, related_name="deliveries")
    escalation_run = models.PositiveIntegerField(
        _("escalation run"), default=0, help_text=_("Which (re)start of the incident's escalation sent this.")
    )
    level = models.PositiveSmallIntegerField(_("level"), default=0)
    round = models.PositiveSmallIntegerField(_("round"), default=0, help_text=_("0 for the first notification."))
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("recipient"),
    )
    bot = models.ForeignKey(
        "channels_app.Bot",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("bot"),
    )
    recipient_key = models.CharField(max_length=300, help_text=_("person:<id>, email:<address> or bot:<id>"))
    address = models.CharField(_("address"), max_length=300, help_text=_("Where it was sent (a bot: its name)."))
    method = models.CharField(_("method"), max_length=30)
    event = models.CharField(_("event"), max_length=20, default="triggered")
    dedup_key = models.CharField(max_length=500, unique=True, editable=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    provider_id = models.CharField(_("provider id"), max_length=200, blank=True)
    error = models.TextField(_("last error"), blank=True)
    template_set = models.ForeignKey(
        TemplateSet,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("template set"),
        help_text=_("Empty: the platform default."),
    )
    template_error = models.TextField(
        _("template error"), blank=True, help_text=_("Why the custom template failed and the default was used.")
    )
    callback_code = models.CharField(
        max_length=64,
        blank=True,
        editable=False,
        help_text=_("Unguessable code in the provider's callback URLs (voice keypad, call and SMS status)."),
    )
    attempt_log = models.JSONField(
        _("attempts and callbacks"),
        default=list,
        blank=True,
        help_text=_("Every attempt and every provider callback, in order."),
    )
    state = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text=_("Kept for the provider's callbacks: the spoken text of a call, a status that came early."),
    )
    created_at = models.DateTimeField(_("created at"))
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=models.Q(status="pending"), name="channels_delivery_due"
            ),
            models.Index(fields=["lease_until"], condition=models.Q(status="sending"), name="channels_delivery_lease"),
            models.Index(fields=["incident", "created_at"], name="channels_delivery_incident"),
            models.Index(
                fields=["provider_id"], condition=~models.Q(provider_id=""), name="channels_delivery_provider"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["callback_code"], condition=~models.Q(callback_code=""), name="channels_delivery_callback_code"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} to {self.address} ({self.get_status_display()})"

    @property
    def incident_event_id(self) -> int | None:
        """The incident event this delivery announces, for a notification caused by one (see make_dedup_key)."""
        parts = self.dedup_key.split("/", 3)
        if len(parts) > 2 and parts[1] == "event" and parts[2].isdigit():
            return int(parts[2])
        return None

    @staticmethod
    def make_dedup_key(*, incident_id: int, scope: str, recipient_key: str, method: str) -> str:
        """`scope` is "<run>/<level>/<round>" for an escalation step, "event/<id>" for a notification caused by
        one incident event (a reassignment, for example)."""
        return f"{incident_id}/{scope}/{recipient_key}/{method}"


class DailyUsage(models.Model):
    """How many messages of one method (voice calls, SMS) a person was sent on one of their local days.

    Counted per provider call, before it is made, against the method's daily quota; `notice_sent_at` is when the
    person was told by email that the quota stopped their pages that day.
    """

    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    method = models.CharField(_("method"), max_length=30)
    day = models.DateField(_("day"))
    count = models.PositiveIntegerField(_("sent"), default=0)
    refused = models.PositiveIntegerField(_("not sent (quota)"), default=0)
    notice_sent_at = models.DateTimeField(_("person told at"), null=True, blank=True)

    class Meta:
        ordering = ["-day", "person", "method"]
        verbose_name = _("daily usage")
        verbose_name_plural = _("daily usage")
        constraints = [
            models.UniqueConstraint(fields=["person", "method", "day"], name="channels_daily_usage_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.person} {self.method} {self.day}: {self.count}"
