"""Alerts, incidents, responders, the timeline people read and the incident events the platform reacts to."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from oncall.models.intake import Channel, Integration


class Severity(models.TextChoices):
    CRITICAL = "Critical", _("Critical")
    WARNING = "Warning", _("Warning")
    INFO = "Info", _("Info")

    @classmethod
    def rank(cls, value: str) -> int:
        """Higher is more severe; lets code pick the highest of several severities."""
        return {cls.INFO: 1, cls.WARNING: 2, cls.CRITICAL: 3}.get(value, 0)


class EventStatus(models.TextChoices):
    """What an event says: still firing at a severity, or recovered (`Ok`)."""

    CRITICAL = "Critical", _("Critical")
    WARNING = "Warning", _("Warning")
    INFO = "Info", _("Info")
    OK = "Ok", _("Ok (recovered)")


class Progress(models.TextChoices):
    """How far people are with an incident."""

    TRIGGERED = "Triggered", _("Triggered")
    PROCESSING = "Processing", _("Processing (acknowledged)")
    CLOSED = "Closed", _("Closed")


class Source(models.TextChoices):
    """Where an action came from, as the timeline tells it."""

    SYSTEM = "system", _("System")
    MONITOR = "monitor", _("Monitor")
    WEB = "web", _("Web")
    API = "api", _("API")
    APP = "app", _("Mobile app")
    VOICE = "voice", _("Voice call")
    SMS = "sms", _("SMS")
    BOT = "bot", _("Bot link")
    ADMIN = "admin", _("Admin")


class Incident(models.Model):
    """What people handle: one or more alerts, a severity, a progress and the people responding."""

    title = models.CharField(_("title"), max_length=512)
    description = models.TextField(_("description"), blank=True)
    severity = models.CharField(_("severity"), max_length=10, choices=Severity.choices)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=EventStatus.choices,
        help_text=_("Recovery status: the severity while alerts fire, Ok once every alert has recovered."),
    )
    progress = models.CharField(_("progress"), max_length=12, choices=Progress.choices, default=Progress.TRIGGERED)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="incidents", verbose_name=_("channel"))
    labels = models.JSONField(_("labels"), default=dict, blank=True)
    start_time = models.DateTimeField(_("started at"))
    last_time = models.DateTimeField(_("last alert at"))
    ack_time = models.DateTimeField(_("first acknowledged at"), null=True, blank=True)
    close_time = models.DateTimeField(_("closed at"), null=True, blank=True)
    end_time = models.DateTimeField(_("recovered at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("closed by"),
    )
    responders = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="Responder",
        related_name="responding_to",
        verbose_name=_("responders"),
    )
    group_key = models.CharField(
        _("group key"), max_length=64, blank=True, help_text=_("Alerts with the same grouping values share it.")
    )
    manual_overrides = models.JSONField(
        _("edited by hand"),
        default=list,
        blank=True,
        help_text=_("Fields people changed; alerts no longer change them."),
    )
    snoozed_until = models.DateTimeField(_("snoozed until"), null=True, blank=True)
    # Kept by whoever moves alerts in or out, under the incident's row lock, so that the cap on alerts per incident
    # costs a grouped alert no count over all of them.
    alert_count = models.PositiveIntegerField(
        _("alerts"), default=0, editable=False, help_text=_("How many alerts, open or closed, it holds.")
    )
    auto_resolve_at = models.DateTimeField(_("auto-resolves at"), null=True, blank=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="merged_from",
        verbose_name=_("merged into"),
    )

    class Meta:
        ordering = ["-start_time", "-id"]
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        indexes = [
            models.Index(fields=["channel", "progress"], name="oncall_incident_channel_prog"),
            models.Index(fields=["progress", "-start_time"], name="oncall_incident_prog_start"),
            models.Index(
                fields=["channel", "group_key", "start_time"],
                condition=~models.Q(progress="Closed"),
                name="oncall_incident_open_group",
            ),
            models.Index(
                fields=["snoozed_until"],
                condition=models.Q(snoozed_until__isnull=False),
                name="oncall_incident_snoozed",
            ),
            models.Index(
                fields=["auto_resolve_at"],
                condition=models.Q(auto_resolve_at__isnull=False),
                name="oncall_incident_auto_resolve",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.title}"

    @property
    def number(self) -> int:
        """The short number people say ("incident 42"): the primary key, already short, sequential and unique."""
        return self.pk

    @property
    def is_open(self) -> bool:
        return self.progress != Progress.CLOSED

    @property
    def is_snoozed(self) -> bool:
        return self.snoozed_until is not None

    @property
    def all_alerts_recovered(self) -> bool:
        """Whether every alert of the incident has recovered and it has not been declared active again since: its
        status is Ok and it has a recovery time (`end_time`), which an alert firing in it again, or a person
        reopening it, clears. Nobody is paged about such an incident unless a person asks for it."""
        return self.status == EventStatus.OK and self.end_time is not None

    def recovery_recorded_at(self) -> datetime | None:
        """When the platform recorded that every alert had recovered, or None if they have not (no query then: this
        is on the delivery path). Not `end_time`, when the recovery was received: it may wait in the ingest queue
        while a level's timer pages, and a page written before the recovery was recorded gives way to it."""
        if not self.all_alerts_recovered:
            return None
        recorded = (
            self.events.filter(kind=IncidentEvent.Kind.RECOVERED)
            .order_by("-id")
            .values_list("created_at", flat=True)
            .first()
        )
        # No such event when it recovered before the platform recorded recoveries as events.
        return max(recorded, self.end_time) if recorded is not None else self.end_time


class Responder(models.Model):
    """A person assigned to an incident, with when they were assigned and when they acknowledged."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="responder_set")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="responder_set")
    assigned_at = models.DateTimeField(_("assigned at"))
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)

    class Meta:
        verbose_name = _("responder")
        verbose_name_plural = _("responders")
        constraints = [models.UniqueConstraint(fields=["incident", "person"], name="oncall_responder_unique")]

    def __str__(self) -> str:
        return str(self.person)


class AlertProgress(models.TextChoices):
    TRIGGERED = "Triggered", _("Open")
    CLOSED = "Closed", _("Closed")


class Alert(models.Model):
    """All events with the same alert key from one integration; open until it recovers or its incident closes."""

    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="alerts")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="alerts")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="alerts")
    alert_key = models.CharField(_("alert key"), max_length=255)
    title = models.CharField(_("title"), max_length=512)
    title_rule = models.CharField(_("title rule"), max_length=512, blank=True)
    description = models.TextField(_("description"), blank=True)
    severity = models.CharField(
        _("severity"),
        max_length=10,
        choices=Severity.choices,
        help_text=_("The highest severity any of its events had."),
    )
    status = models.CharField(_("status"), max_length=10, choices=EventStatus.choices)
    progress = models.CharField(
        _("progress"), max_length=10, choices=AlertProgress.choices, default=AlertProgress.TRIGGERED
    )
    labels = models.JSONField(_("labels"), default=dict, blank=True)
    images = models.JSONField(_("images"), default=list, blank=True)
    event_count = models.PositiveIntegerField(_("events"), default=1)
    start_time = models.DateTimeField(_("first seen"))
    last_time = models.DateTimeField(_("last seen"))
    end_time = models.DateTimeField(_("recovered at"), null=True, blank=True)
    close_time = models.DateTimeField(_("closed at"), null=True, blank=True)
    # The monitor's own clock, so that events it delivers late or twice (an HA Alertmanager peer, a retry) are
    # told apart from new ones: the start of the latest firing while the alert is open, its end once a recovery
    # closed it. Empty when the monitor gave no time (the standard format, PagerDuty without payload.timestamp).
    monitor_time = models.DateTimeField(
        _("monitor's time"),
        null=True,
        blank=True,
        help_text=_(
            "When the monitor said the latest firing started, or, once the alert recovered, when it said it ended; "
            "empty when the monitor sends no times."
        ),
    )

    class Meta:
        ordering = ["-start_time", "-id"]
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        constraints = [
            # Dedup: at most one open alert per key, integration and channel (routing may send an event to several
            # channels, each with its own alert), even when two events race. The key comes before the channel so the
            # index also serves a recovery, which looks for the key's open alerts in every channel.
            models.UniqueConstraint(
                fields=["integration", "alert_key", "channel"],
                condition=models.Q(progress="Triggered"),
                name="oncall_alert_one_open_per_key",
            ),
        ]
        # With the severity, an incident's open alerts of one severity are found without reading the others: working
        # out an incident's severity costs a grouped alert or a recovery the same however many alerts it holds.
        indexes = [models.Index(fields=["incident", "progress", "severity"], name="oncall_alert_incident_prog_sev")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.progress == AlertProgress.TRIGGERED


class TimelineEntry(models.Model):
    """One line of an incident's history, as people read it."""

    class Kind(models.TextChoices):
        OPENED = "opened", _("Opened")
        ALERT_ADDED = "alert_added", _("Alert added")
        ALERT_RECOVERED = "alert_recovered", _("Alert recovered")
        SEVERITY_CHANGED = "severity_changed", _("Severity changed")
        ASSIGNED = "assigned", _("Assigned")
        UNASSIGNED = "unassigned", _("No escalation rule")
        NOTIFIED = "notified", _("Notified")
        NOTIFY_FAILED = "notify_failed", _("Notification failed")
        ESCALATED = "escalated", _("Escalated")
        ESCALATION_ENDED = "escalation_ended", _("Escalation ended")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        UNACKNOWLEDGED = "unacknowledged", _("Unacknowledged")
        SNOOZED = "snoozed", _("Snoozed")
        WOKEN = "woken", _("Woken")
        REASSIGNED = "reassigned", _("Reassigned")
        RESPONDERS_ADDED = "responders_added", _("Responders added")
        EDITED = "edited", _("Edited")
        COMMENT = "comment", _("Comment")
        CLOSED = "closed", _("Closed")
        REOPENED = "reopened", _("Reopened")
        MERGED = "merged", _("Merged")

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(_("at"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    source = models.CharField(_("from"), max_length=10, choices=Source.choices, default=Source.SYSTEM)
    message = models.CharField(_("message"), max_length=1000)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("timeline entry")
        verbose_name_plural = _("timeline entries")
        indexes = [models.Index(fields=["incident", "at"], name="oncall_timeline_incident_at")]

    def __str__(self) -> str:
        return self.message


class IncidentEvent(models.Model):
    """Something that happened to an incident that other parts of the platform react to.

    Written in the same transaction as the change it announces and dispatched after commit (and, should the
    process die first, by the ticker), so no reaction is ever lost: an outbox.
    """

    class Kind(models.TextChoices):
        OPENED = "opened", _("Opened")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        UNACKNOWLEDGED = "unacknowledged", _("Unacknowledged")
        SNOOZED = "snoozed", _("Snoozed")
        WOKEN = "woken", _("Woken")
        CLOSED = "closed", _("Closed")
        REOPENED = "reopened", _("Reopened")
        ESCALATED = "escalated", _("Escalated")
        REASSIGNED = "reassigned", _("Reassigned")
        RESPONDERS_ADDED = "responders_added", _("Responders added")
        MERGED = "merged", _("Merged")
        SEVERITY_RAISED = "severity_raised", _("Severity raised")
        # Its alerts all recovered and it stays open (the channel does not close incidents with their alerts); and,
        # later, an alert fires in it again.
        RECOVERED = "recovered", _("Recovered")
        FIRING_AGAIN = "firing_again", _("Firing again")

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source = models.CharField(_("from"), max_length=10, choices=Source.choices, default=Source.SYSTEM)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("at"))
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("incident event")
        verbose_name_plural = _("incident events")
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(dispatched_at__isnull=True),
                name="oncall_event_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.incident_id}"
