"""Where alerts come from (integrations) and where they land (channels)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from oncall.lib import secrets
from oncall.models.people import Team, validate_time_zone


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
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return self.name


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
        verbose_name=_("channel"),
        help_text=_("The channel this integration's alerts go to."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_event_at = models.DateTimeField(_("last event at"), null=True, blank=True, editable=False)

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
