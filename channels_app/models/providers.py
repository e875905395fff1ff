"""How each provider has been answering, and the attempts in flight to it: the rows the delivery bulkhead
(channels_app.bulkhead) admits attempts under, so every worker on every host agrees."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ProviderHealth(models.Model):
    """One provider, by the key its attempts share (an API's host and port, or `method:<key>`), and how it has been
    answering. Attempts to it are admitted under a lock on this row."""

    key = models.CharField(_("provider"), max_length=300, unique=True)
    fast_streak = models.PositiveIntegerField(
        _("fast answers in a row"),
        default=0,
        help_text=_("Attempts that finished quickly since the last slow one; how many may be in flight grows with it."),
    )
    last_seconds = models.FloatField(_("last attempt took (s)"), null=True, blank=True)
    last_slow_at = models.DateTimeField(_("last slow attempt at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["key"]
        verbose_name = _("provider health")
        verbose_name_plural = _("provider health")

    def __str__(self) -> str:
        return self.key


class ProviderCall(models.Model):
    """An attempt in flight to a provider, leased to the worker making it (`holder`: host and process id). A
    worker that dies leaves its row behind; it stops counting when its lease ends, or at once when the process is
    found gone on the same host."""

    provider = models.ForeignKey(ProviderHealth, on_delete=models.CASCADE, related_name="calls")
    delivery = models.ForeignKey("channels_app.Delivery", on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField(_("started at"))
    lease_until = models.DateTimeField(_("lease until"))
    holder = models.CharField(_("worker"), max_length=300)

    class Meta:
        verbose_name = _("provider call")
        verbose_name_plural = _("provider calls")

    def __str__(self) -> str:
        return f"{self.provider_id}: delivery {self.delivery_id} since {self.started_at:%H:%M:%S}"
