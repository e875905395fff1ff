"""On-call schedules: layers that rotate groups of people, overrides, the schedule targets of escalation levels,
calendar feeds and shift reminders. Who is on call is decided by escalation.rotation over plain data."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from escalation import rotation
from oncall.lib import secrets
from oncall.models.people import validate_time_zone

# The times a schedule keeps (layer starts and ends, overrides), in UTC. A time zone can carry a time entered as
# "9999-12-31 23:00" (forever) past year 9999 in UTC, or year 1 before it: PostgreSQL stores such a value, but no
# process can read the row back, and every level paging the schedule would fail. The margin also keeps the
# rotation's arithmetic (handoffs months apart, local times) inside what a datetime can hold.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive: the last year allowed is 9998


def validate_schedule_time(value: datetime) -> None:
    """Refuse a schedule time outside the years 1970 to 9998, checked in UTC (after the time zone's offset)."""
    try:
        moment = value.astimezone(UTC)
    except OverflowError:  # beyond year 1 or 9999 once in UTC
        moment = None
    if moment is None or not EARLIEST_TIME <= moment < LATEST_TIME:
        raise ValidationError(
            _("Choose a time between the years 1970 and 9998 (in UTC)."),
            code="out_of_range",
        )


class Role(models.TextChoices):
    """On-call roles, the same in every schedule, so an escalation level can target "the primary of schedule X"."""

    PRIMARY = "primary", _("Primary")
    BACKUP = "backup", _("Backup")


class Schedule(models.Model):
    """Who is on call when, for a team: layers of rotations, with overrides on top."""

    name = models.CharField(_("name"), max_length=40, unique=True)
    team = models.ForeignKey("oncall.Team", on_delete=models.PROTECT, related_name="schedules", verbose_name=_("team"))
    description = models.TextField(_("description"), max_length=500, blank=True)
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text=_("Handoff times and restriction windows are read in this time zone (daylight saving included)."),
    )
    enabled = models.BooleanField(
        _("enabled"), default=True, help_text=_("A disabled schedule has nobody on call and sends no reminders.")
    )
    reminder_minutes = models.PositiveIntegerField(
        _("shift reminder (minutes before)"),
        default=0,
        validators=[MaxValueValidator(1440)],
        help_text=_("Tell each person this many minutes before their shift starts (0 to 1440); 0: no reminders."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("schedule")
        verbose_name_plural = _("schedules")

    def __str__(self) -> str:
        return self.name


class Layer(models.Model):
    """A rotation of groups of people; where a higher layer has someone in a role, it wins over lower layers."""

    class Unit(models.TextChoices):
        HOUR = "hour", _("hour")
        DAY = "day", _("day")
        WEEK = "week", _("week")
        MONTH = "month", _("month")

    class RestrictionKind(models.TextChoices):
        NONE = "none", _("None: all the time")
        DAILY = "daily", _("Daily windows")
        WEEKLY = "weekly", _("Weekly windows")

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="layers", verbose_name=_("schedule"))
    position = models.PositiveSmallIntegerField(
        _("position"),
        default=1,
        help_text=_("Layers with a higher position win over lower ones where they have someone."),
    )
    name = models.CharField(_("name"), max_length=40)
    rotation_unit = models.CharField(_("rotate every"), max_length=5, choices=Unit.choices, default=Unit.WEEK)
    rotation_count = models.PositiveSmallIntegerField(
        _("number of units"), default=1, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    start = models.DateTimeField(
        _("start"),
        validators=[validate_schedule_time],
        help_text=_(
            "The first group's first shift begins here. For day, week and month rotations its time of day is the "
            "handoff time, in the schedule's time zone."
        ),
    )
    end = models.DateTimeField(
        _("end"), null=True, blank=True, validators=[validate_schedule_time], help_text=_("Empty: the layer runs on.")
    )
    restriction_kind = models.CharField(
        _("restriction"), max_length=6, choices=RestrictionKind.choices, default=RestrictionKind.NONE
    )
    restriction_windows = models.JSONField(
        _("restriction windows"),
        default=list,
        blank=True,
        help_text=_(
            "Outside these windows the layer has nobody (lower layers fill in). Daily: "
            '[{"start": "09:00", "end": "18:00"}]; weekly: [{"start": "mon 09:00", "end": "fri 18:00"}]. '
            "An end before its start runs over midnight (the weekend)."
        ),
    )

    class Meta:
        ordering = ["schedule", "position", "id"]
        verbose_name = _("layer")
        verbose_name_plural = _("layers")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__isnull=True) | models.Q(end__gt=models.F("start")),
                name="escalation_layer_end_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.schedule} / {self.name}"

    def clean(self) -> None:
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": _("The end must be after the start.")})
        try:
            rotation.parse_restriction(self.restriction_kind, self.restriction_windows)
        except ValueError as exc:
            raise ValidationError({"restriction_windows": str(exc)}) from None


class LayerMember(models.Model):
    """One person of one group of a layer's rotation; groups take turns in the order of their numbers."""

    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="members", verbose_name=_("layer"))
    group = models.PositiveSmallIntegerField(
        _("group"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_("Groups take turns in the order of these numbers; people with the same number are on together."),
    )
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("person")
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.PRIMARY)

    class Meta:
        ordering = ["layer", "group", "id"]
        verbose_name = _("layer member")
        verbose_name_plural = _("layer members")
        constraints = [
            models.UniqueConstraint(fields=["layer", "group", "person"], name="escalation_layer_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.layer} #{self.group}: {self.person} ({self.get_role_display()})"


class Override(models.Model):
    """A person takes a time range from whoever the layers have then: in one role, or in every role."""

    schedule = models.ForeignKey(
        Schedule, on_delete=models.CASCADE, related_name="overrides", verbose_name=_("schedule")
    )
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("person")
    )
    role = models.CharField(
        _("role"), max_length=10, choices=Role.choices, blank=True, help_text=_("Empty: every role.")
    )
    start = models.DateTimeField(_("start"), validators=[validate_schedule_time])
    end = models.DateTimeField(_("end"), validators=[validate_schedule_time])
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        ordering = ["schedule", "start", "id"]
        verbose_name = _("override")
        verbose_name_plural = _("overrides")
        constraints = [
            models.CheckConstraint(condition=models.Q(end__gt=models.F("start")), name="escalation_override_end_after")
        ]
        indexes = [models.Index(fields=["schedule", "end"], name="escalation_override_end")]

    def __str__(self) -> str:
        return f"{self.schedule}: {self.person} {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M}"

    def clean(self) -> None:
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": _("The end must be after the start.")})


class LevelSchedule(models.Model):
    """An escalation level's schedule target: whoever is on call (in `role`, or in any role) when the level runs."""

    level = models.ForeignKey("escalation.EscalationLevel", on_delete=models.CASCADE, related_name="schedule_targets")
    schedule = models.ForeignKey(Schedule, on_delete=models.PROTECT, related_name="level_targets")
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, blank=True, help_text=_("Empty: any role."))

    class Meta:
        ordering = ["level", "id"]
        verbose_name = _("schedule target")
        verbose_name_plural = _("schedule targets")
        constraints = [
            models.UniqueConstraint(fields=["level", "schedule", "role"], name="escalation_level_schedule_unique")
        ]

    def __str__(self) -> str:
        return f"{self.schedule} ({self.get_role_display()})" if self.role else str(self.schedule)


class CalendarFeedQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class CalendarFeed(models.Model):
    """A secret iCalendar URL listing the shifts of one schedule or of one person. Shown once; only its hash is kept."""

    class Kind(models.TextChoices):
        SCHEDULE = "schedule", _("Schedule")
        PERSON = "person", _("Person")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    schedule = models.ForeignKey(
        Schedule, on_delete=models.CASCADE, null=True, blank=True, related_name="feeds", verbose_name=_("schedule")
    )
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="calendar_feeds",
        verbose_name=_("person"),
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(_("ends with"), max_length=8, editable=False)
    created_at = models.DateTimeField(_("created at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = CalendarFeedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("calendar feed")
        verbose_name_plural = _("calendar feeds")
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="schedule", schedule__isnull=False, person__isnull=True)
                    | models.Q(kind="person", schedule__isnull=True, person__isnull=False)
                ),
                name="escalation_feed_owner",
            ),
            models.UniqueConstraint(
                fields=["schedule"],
                condition=models.Q(revoked_at__isnull=True),
                name="escalation_feed_one_per_schedule",
            ),
            models.UniqueConstraint(
                fields=["person"], condition=models.Q(revoked_at__isnull=True), name="escalation_feed_one_per_person"
            ),
        ]

    def __str__(self) -> str:
        owner = self.schedule if self.kind == self.Kind.SCHEDULE else self.person
        return f"{self.get_kind_display()} {owner} ({secrets.mask(self.token_hint)})"


class ShiftReminder(models.Model):
    """One reminder of one shift start, for one person: planned by the ticker, claimed like other ticker work,
    sent once. The unique key makes a second planner (another ticker) a no-op."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled (no longer on shift)")

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="reminders")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.PRIMARY)
    shift_start = models.DateTimeField(_("shift starts"))
    shift_end = models.DateTimeField(_("shift ends"))
    due_at = models.DateTimeField(_("due at"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    address = models.CharField(_("address"), max_length=254, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        ordering = ["-due_at", "-id"]
        verbose_name = _("shift reminder")
        verbose_name_plural = _("shift reminders")
        constraints = [
            models.UniqueConstraint(fields=["schedule", "person", "shift_start"], name="escalation_shift_reminder_once")
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["pending", "sending"]),
                name="escalation_reminder_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.schedule}: {self.person} at {self.shift_start:%Y-%m-%d %H:%M}"
