"""How a person is reached: verification codes for their contacts, their app devices and their preferences."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Contact(models.TextChoices):
    """A kind of contact a person verifies."""

    PHONE = "phone", _("Phone")
    EMAIL = "email", _("Email")


class VerificationCode(models.Model):
    """A code sent to a contact to prove the person receives there. Only a keyed hash of the code is stored.

    One field holds the state: pending until it is used (verified), replaced by a newer code, spent by too many
    wrong guesses, or past its expiry. The `target` is the phone number or address being verified; the person's
    contact changes to it only when the code is entered.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        VERIFIED = "verified", _("Verified")
        REPLACED = "replaced", _("Replaced by a newer code")
        SPENT = "spent", _("Too many wrong codes")
        EXPIRED = "expired", _("Expired")
        UNSENT = "unsent", _("Could not be sent")

    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="verification_codes", verbose_name=_("person")
    )
    contact = models.CharField(_("contact"), max_length=10, choices=Contact.choices)
    target = models.CharField(_("to"), max_length=254, help_text=_("The phone number or email address verified."))
    code_hash = models.CharField(max_length=64, editable=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("wrong attempts"), default=0)
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("verification code")
        verbose_name_plural = _("verification codes")
        indexes = [
            models.Index(fields=["person", "created_at"], name="oncall_code_person_created"),
            models.Index(fields=["contact", "target", "created_at"], name="oncall_code_target_created"),
        ]

    def __str__(self) -> str:
        return f"{self.get_contact_display()} {self.target} ({self.get_status_display()})"


class Device(models.Model):
    """A phone app or browser linked to a person for push notifications.

    `token` is the FCM registration token (android), the APNs device token (ios) or the Web Push subscription's
    endpoint (web, with its keys in `subscription`). A token belongs to one person: linking it again moves it.
    """

    class Platform(models.TextChoices):
        IOS = "ios", _("iOS app (APNs)")
        ANDROID = "android", _("Android app (FCM)")
        WEB = "web", _("Web app (Web Push)")

    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices", verbose_name=_("person")
    )
    platform = models.CharField(_("platform"), max_length=10, choices=Platform.choices)
    token = models.TextField(_("token"))
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    subscription = models.JSONField(
        _("web push subscription"), default=dict, blank=True, help_text=_("The browser's endpoint and keys.")
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    app_version = models.CharField(_("app version"), max_length=50, blank=True)
    created_at = models.DateTimeField(_("linked at"))
    last_pushed_at = models.DateTimeField(_("last pushed at"), null=True, blank=True)

    class Meta:
        ordering = ["person", "-created_at", "-id"]
        verbose_name = _("device")
        verbose_name_plural = _("devices")

    def __str__(self) -> str:
        return f"{self.name or self.get_platform_display()} ({self.person})"

    @property
    def token_hint(self) -> str:
        """What is shown of a token: its last characters (a token is a credential to push to the device)."""
        return self.token[-6:]


class DeviceLinkToken(models.Model):
    """A one-time token the personal center shows as a QR code; the phone app scans it to link itself to the
    person and get an API token, with no password typed on the phone. Stored hashed; short-lived."""

    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="device_link_tokens", verbose_name=_("person")
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("device link token")
        verbose_name_plural = _("device link tokens")

    def __str__(self) -> str:
        return f"{self.person} {self.created_at:%Y-%m-%d %H:%M}"


class NotificationPreference(models.Model):
    """How a person wants to be reached about incidents of one severity: any of the notification methods.

    A severity without a row uses the platform's defaults (channels_app.preferences).
    """

    person = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_preferences",
        verbose_name=_("person"),
    )
    severity = models.CharField(_("severity"), max_length=10)
    methods = models.JSONField(_("methods"), default=list, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["person", "severity"]
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(fields=["person", "severity"], name="oncall_preference_unique"),
        ]

    def __str__(self) -> str:
        methods = self.methods if isinstance(self.methods, list) else [self.methods]
        return f"{self.person} {self.severity}: {', '.join(map(str, methods))}"
