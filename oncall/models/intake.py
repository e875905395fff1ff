"""Where alerts come from (integrations) and where they land (channels)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from oncall.lib import routing, secrets
from oncall.lib.filters import LABEL_PREFIX, FilterError, parse_filters
from oncall.models.people import Team, validate_time_zone

GROUP_KEYS_MAX = 5


def group_key_normalise(key: str) -> str:
    """The label a grouping key names: " service " and "labels.service" (as filters write it) both name service."""
    return key.strip().removeprefix(LABEL_PREFIX).strip()


def validate_group_keys(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(key, str) for key in value):
        raise ValidationError(_("Must be a list of label names."))
    keys = [group_key_normalise(key) for key in value]
    if not all(keys):
        raise ValidationError(_('Each entry must name a label, e.g. "service" (or "labels.service").'))
    if len(keys) > GROUP_KEYS_MAX:
        raise ValidationError(_("At most %(n)d label names."), params={"n": GROUP_KEYS_MAX})
    if len(set(keys)) != len(keys):
        raise ValidationError(_("Each label name may appear once."))


def validate_filters(value: object) -> None:
    try:
        parse_filters(value)
    except FilterError as exc:
        if exc.path:
            raise ValidationError(
                _("%(path)s: %(message)s"), params={"path": exc.path, "message": exc.message}
            ) from None
        raise ValidationError(exc.message) from None


class Channel(models.Model):
    """A collaboration space: owns incidents and escalation rules, belongs to a team."""

    name = models.CharField(_("name"), max_length=59, unique=True)
    description = models.CharField(_("description"), max_length=500, blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="channels", verbose_name=_("team"))
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text=_("Time windows of this channel's escalation rules are read in this time zone."),
    )
    group_keys = models.JSONField(
        _("group alerts by labels"),
        default=list,
        blank=True,
        validators=[validate_group_keys],
        help_text=_(
            "Up to 5 label names. An alert joins an open incident of this channel whose alerts had the same values "
            "for these labels and that started within the grouping window. Empty: one incident per alert."
        ),
    )
    group_window_minutes = models.PositiveIntegerField(
        _("grouping window (minutes)"),
        default=60,
        validators=[MinValueValidator(1), MaxValueValidator(1440)],
    )
    close_with_alerts = models.BooleanField(
        _("close with alerts"),
        default=True,
        help_text=_("Close an incident by itself once every one of its alerts has recovered."),
    )
    auto_resolve_minutes = models.PositiveIntegerField(
        _("auto-resolve after (minutes)"),
        default=0,
        validators=[MaxValueValidator(30 * 24 * 60)],
        help_text=_("Close an open incident that received no alert event for this long. 0: never."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Alerts are grouped by the label itself: a key stored as "labels.service" or " service " would match no
        # label, every alert would count as lacking it, and all of the channel's alerts would join one incident.
        if isinstance(self.group_keys, list) and all(isinstance(key, str) for key in self.group_keys):
            self.group_keys = [group_key_normalise(key) for key in self.group_keys]


class IntegrationQuerySet(models.QuerySet):
    def for_key(self, key: str) -> Integration | None:
        if not key:
            return None
        return self.filter(key_hash=secrets.key_hash(key)).select_related("channel").first()


class Integration(models.Model):
    """An alert source. Monitors push to a URL that carries the integration's secret key.

    The key is shown once, when the integration is created or its key is regenerated; only its hash and last
    four characters are stored.
    """

    class Kind(models.TextChoices):
        STANDARD = "standard", _("Standard (Flashduty event API)")
        PROMETHEUS = "prometheus", _("Prometheus Alertmanager")
        GRAFANA = "grafana", _("Grafana alerting")
        PAGERDUTY = "pagerduty", _("PagerDuty Events API")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.STANDARD)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(_("key ends with"), max_length=4, editable=False)
    enabled = models.BooleanField(_("enabled"), default=True, help_text=_("A disabled integration refuses events."))
    channel = models.ForeignKey(
        Channel,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="integrations",
        verbose_name=_("default route"),
        help_text=_(
            "The channel an event goes to when none of the routing rules takes it. Empty: such events are refused "
            "(400 NoRoute)."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_event_at = models.DateTimeField(_("last event at"), null=True, blank=True, editable=False)
    rate_limit_per_second = models.PositiveIntegerField(
        _("requests per second"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Pushes accepted per second; empty means the platform default (100)."),
    )
    rate_limit_per_minute = models.PositiveIntegerField(
        _("requests per minute"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("Pushes accepted per minute; empty means the platform default (1000)."),
    )

    objects = IntegrationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("integration")
        verbose_name_plural = _("integrations")

    def __str__(self) -> str:
        return self.name

    def set_new_key(self, key: str | None = None) -> str:
        """Give the integration a new secret key and return it; the caller shows it once and forgets it."""
        key = key or secrets.new_key()
        self.key_hash = secrets.key_hash(key)
        self.key_hint = key[-4:]
        return key

    @property
    def masked_key(self) -> str:
        return secrets.mask(self.key_hint)


LABEL_NAME_MAX = 128


class RoutingRule(models.Model):
    """One of an integration's ordered routing rules: which events (a filter) go to which channel(s).

    Rules are evaluated by position; every matching rule adds its channels, and one that does not fall through
    stops the evaluation. The integration's channel is the default route, used only when no rule matched.
    """

    class Mode(models.TextChoices):
        CHANNELS = routing.CHANNELS, _("Send to the chosen channels")
        NAME_MAPPING = routing.NAME_MAPPING, _("Send to the channel named by a label")

    integration = models.ForeignKey(
        Integration, on_delete=models.CASCADE, related_name="routing_rules", verbose_name=_("integration")
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0, help_text=_("Rules run in this order."))
    name = models.CharField(_("name"), max_length=100, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    filters = models.JSONField(
        _("filter"),
        default=list,
        blank=True,
        validators=[validate_filters],
        help_text=_(
            "Which events this rule takes; empty: every event. An OR of AND-groups of conditions, e.g. "
            '[[{"key": "severity", "op": "IN", "values": ["Critical"]}, '
            '{"key": "labels.service", "op": "IN", "values": ["db-*"]}]] takes Critical events whose service '
            "label starts with db-. Keys: severity, title, description, integration, or a label as labels.service. "
            "Values: exact text, wildcards (* and ?), /regex/, cidr:10.0.0.0/8, num:gt:90. op NOTIN: none of the "
            "values matches."
        ),
    )
    mode = models.CharField(_("send to"), max_length=20, choices=Mode.choices, default=Mode.CHANNELS)
    channels = models.ManyToManyField(
        Channel,
        blank=True,
        related_name="routing_rules",
        verbose_name=_("channels"),
        help_text=_("Where matching events go, when sending to the chosen channels."),
    )
    name_mapping_label = models.CharField(
        _("channel name label"),
        max_length=LABEL_NAME_MAX,
        blank=True,
        help_text=_(
            "When sending to the channel named by a label: the label whose value is a channel's name, e.g. team. "
            "An event without that label, or naming no channel, is not taken by this rule."
        ),
    )
    fallthrough = models.BooleanField(
        _("continue to the next rules"),
        default=True,
        help_text=_("Off: an event this rule takes is not offered to the rules below it."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["integration", "position", "id"]
        verbose_name = _("routing rule")
        verbose_name_plural = _("routing rules")

    def __str__(self) -> str:
        return self.name or _("Routing rule %(n)d") % {"n": self.position + 1}

    def clean(self) -> None:
        # "labels.team" names the same label as "team": accept the form people know from filters.
        self.name_mapping_label = self.name_mapping_label.strip().removeprefix("labels.")
        if self.mode == self.Mode.NAME_MAPPING and not self.name_mapping_label:
            raise ValidationError({"name_mapping_label": _("Name the label whose value is the channel's name.")})


class EventBatch(models.Model):
    """The events of one push, stored as accepted: a monitor's 2xx means this row exists.

    The worker turns batches into alerts and incidents in the order they arrived, per integration, and deletes
    them; a batch that keeps failing is kept with its error for an operator to look at.
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="batches")
    events = models.JSONField(_("events"))
    received_at = models.DateTimeField(_("received at"))
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("gave up at"), null=True, blank=True)
    error = models.TextField(_("last error"), blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("event batch")
        verbose_name_plural = _("event batches")
        indexes = [
            models.Index(
                fields=["integration", "id"], condition=models.Q(failed_at__isnull=True), name="oncall_batch_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.integration} @ {self.received_at:%Y-%m-%d %H:%M:%S}"


class IngestTask(models.Model):
    """Whether a worker task for an integration's stored pushes is queued and has not started yet: a push that
    finds one rides on it instead of queueing a task of its own (ingest.events_accept); the task clears it when
    it starts. Kept apart from the batches, which a drain already running deletes while such a task still waits."""

    integration = models.OneToOneField(
        Integration, on_delete=models.CASCADE, primary_key=True, related_name="ingest_task"
    )
    queued = models.BooleanField(_("task queued"), default=False)
    # When the mark was set: one still set long after is taken for a task the broker lost (ingest.TASK_LOST).
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)

    class Meta:
        verbose_name = _("ingest task")
        verbose_name_plural = _("ingest tasks")

    def __str__(self) -> str:
        return f"{self.integration}: {'queued' if self.queued else 'none queued'}"
