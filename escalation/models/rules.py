"""Escalation rules and levels (configuration), and each incident's running escalation and timers (state)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from channels_app import registry
from escalation import engine
from oncall.lib.filters import FilterError, parse_filters


def default_methods() -> list[str]:
    return ["email"]


def validate_methods(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(_("Must be a list of notification method names."))
    unknown = [item for item in value if item not in registry.METHODS]
    if unknown:
        raise ValidationError(
            _("Unknown notification method(s): %(names)s. Known: %(known)s."),
            params={"names": ", ".join(unknown), "known": ", ".join(registry.METHODS)},
        )


def validate_filters(value: object) -> None:
    try:
        parse_filters(value)
    except FilterError as exc:
        raise ValidationError(str(exc)) from None


def validate_time_windows(value: object) -> None:
    try:
        engine.parse_time_windows(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def validate_emails(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(_("Must be a list of email addresses."))
    for address in value:
        try:
            EmailValidator()(address)
        except ValidationError:
            raise ValidationError(_("%(a)s is not an email address."), params={"a": address}) from None


class EscalationRule(models.Model):
    """Who is told about a channel's incidents, how, and when to escalate. First enabled rule by priority wins."""

    channel = models.ForeignKey(
        "oncall.Channel", on_delete=models.CASCADE, related_name="escalation_rules", verbose_name=_("channel")
    )
    name = models.CharField(_("name"), max_length=39)
    description = models.CharField(_("description"), max_length=500, blank=True)
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        default=100,
        validators=[MaxValueValidator(200)],
        help_text=_("Lower is evaluated first (0 to 200)."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    time_windows = models.JSONField(
        _("time windows"),
        default=list,
        blank=True,
        validators=[validate_time_windows],
        help_text=_(
            "When the rule applies, in the channel's time zone; empty: always. A list of "
            '{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}; a window whose end '
            "is before its start runs overnight into the next day."
        ),
    )
    filters = models.JSONField(
        _("incident filter"),
        default=list,
        blank=True,
        validators=[validate_filters],
        help_text=_(
            "Which incidents the rule applies to; empty: all. OR of AND-groups, e.g. "
            '[[{"key": "severity", "op": "IN", "values": ["Critical"]}, '
            '{"key": "labels.service", "op": "IN", "values": ["billing*"]}]].'
        ),
    )
    template_set = models.ForeignKey(
        "channels_app.TemplateSet",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="escalation_rules",
        verbose_name=_("notification templates"),
        help_text=_("What the messages say; empty: the platform's default templates."),
    )
    delay_seconds = models.PositiveIntegerField(
        _("delay window (seconds)"),
        default=0,
        validators=[MaxValueValidator(3600)],
        help_text=_(
            "Wait this long before the first notification (0 to 3600); an incident closed meanwhile pages nobody."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["channel", "priority", "id"]
        verbose_name = _("escalation rule")
        verbose_name_plural = _("escalation rules")
        constraints = [models.UniqueConstraint(fields=["channel", "name"], name="escalation_rule_name_unique")]

    def __str__(self) -> str:
        return f"{self.channel} / {self.name}"


class EscalationLevel(models.Model):
    """One stage of a rule: the people to notify and by which methods, the bots to post to, and when to move to
    the next stage."""

    rule = models.ForeignKey(EscalationRule, on_delete=models.CASCADE, related_name="levels")
    position = models.PositiveSmallIntegerField(_("position"), default=0, help_text=_("Levels run in this order."))
    people = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+", verbose_name=_("people"))
    teams = models.ManyToManyField(
        "oncall.Team",
        blank=True,
        related_name="+",
        verbose_name=_("teams"),
        help_text=_("Everyone in these teams when the level runs."),
    )
    schedules = models.ManyToManyField(
        "escalation.Schedule",
        through="escalation.LevelSchedule",
        blank=True,
        related_name="+",
        verbose_name=_("schedules"),
        help_text=_("Whoever is on call in these schedules (in a role, or in any role) when the level runs."),
    )
    bots = models.ManyToManyField(
        "channels_app.Bot",
        blank=True,
        related_name="levels",
        verbose_name=_("bots"),
        help_text=_("Group chats this level posts to, each by its own filters; they post even when nobody is on call."),
    )
    emails = models.JSONField(
        _("email addresses"),
        default=list,
        blank=True,
        validators=[validate_emails],
        help_text=_('Plain addresses (people without an account, a shared mailbox), e.g. ["dba-oncall@example.com"].'),
    )
    follow_preferences = models.BooleanField(
        _("follow personal preferences"),
        default=False,
        help_text=_("Reach each person by their own notification preferences instead of the methods below."),
    )
    critical_methods = models.JSONField(
        _("methods for Critical"), default=default_methods, blank=True, validators=[validate_methods]
    )
    warning_methods = models.JSONField(
        _("methods for Warning"), default=default_methods, blank=True, validators=[validate_methods]
    )
    info_methods = models.JSONField(
        _("methods for Info"), default=default_methods, blank=True, validators=[validate_methods]
    )
    escalate_after_minutes = models.PositiveSmallIntegerField(
        _("escalate after (minutes)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(720)],
        help_text=_("If nobody acknowledges within this time, the next level is notified."),
    )
    force_escalate = models.BooleanField(
        _("force escalation"),
        default=False,
        help_text=_("Escalate after the time above unless the incident is closed, even when it was acknowledged."),
    )
    repeat_times = models.PositiveSmallIntegerField(
        _("repeat"),
        default=0,
        validators=[MaxValueValidator(6)],
        help_text=_("Notify this level again up to this many times (0 to 6) until someone acknowledges."),
    )
    repeat_every_minutes = models.PositiveSmallIntegerField(
        _("repeat every (minutes)"), default=10, validators=[MinValueValidator(1), MaxValueValidator(120)]
    )

    class Meta:
        ordering = ["rule", "position", "id"]
        verbose_name = _("escalation level")
        verbose_name_plural = _("escalation levels")

    def __str__(self) -> str:
        return _("Level %(n)d") % {"n": self.position + 1}


class EscalationState(models.Model):
    """The running escalation of one incident: the frozen rule, where it stands, and its step token.

    `token` changes whenever the escalation is (re)started or stopped; a timer carrying an older token is
    stale and does nothing, so a late or duplicate step can never notify anyone.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        FINISHED = "finished", _("Finished (last level done)")
        STOPPED = "stopped", _("Stopped")
        # Every alert of the incident recovered while it stayed open: nobody is paged about it until one fires again.
        RECOVERED = "recovered", _("Stopped: all alerts recovered")
        UNASSIGNED = "unassigned", _("Unassigned (no rule matched)")
        # Assigned to people when created by hand, or reassigned since: no rule escalates it; when it is triggered
        # again (unacknowledged, woken, reopened) its responders are notified again.
        DIRECT = "direct", _("Assigned to people directly")

    incident = models.OneToOneField("oncall.Incident", on_delete=models.CASCADE, related_name="escalation")
    rule = models.ForeignKey(EscalationRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    snapshot = models.JSONField(_("frozen rule"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.RUNNING)
    run = models.PositiveIntegerField(_("run"), default=0, help_text=_("How many times escalation (re)started."))
    token = models.UUIDField(default=uuid.uuid4)
    level = models.PositiveSmallIntegerField(_("level"), default=0)
    round = models.PositiveSmallIntegerField(_("round"), default=0)
    level_started_at = models.DateTimeField(_("level started at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("escalation state")
        verbose_name_plural = _("escalation states")

    def __str__(self) -> str:
        return f"#{self.incident_id} {self.get_status_display()}"


class Timer(models.Model):
    """A step due at a time: run a level (or a repeat of it), or end the escalation. Claimed by the ticker."""

    class Kind(models.TextChoices):
        LEVEL = "level", _("Notify a level")
        END = "end", _("End of escalation")

    state = models.ForeignKey(EscalationState, on_delete=models.CASCADE, related_name="timers")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    token = models.UUIDField()
    level = models.PositiveSmallIntegerField(_("level"), default=0)
    round = models.PositiveSmallIntegerField(_("round"), default=0)
    due_at = models.DateTimeField(_("due at"))
    lease_until = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("timer")
        verbose_name_plural = _("timers")
        indexes = [
            models.Index(fields=["due_at"], condition=models.Q(done_at__isnull=True), name="escalation_timer_due")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} L{self.level + 1} R{self.round} at {self.due_at:%Y-%m-%d %H:%M:%S}"
