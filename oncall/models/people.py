"""People and teams."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("%(value)s is not a known time zone (for example Europe/Berlin)."), params={"value": value}
        )


class User(AbstractUser):
    """A person who can be paged, acknowledge incidents and, if staff, configure the platform.

    Their contacts live here: the login email is also where email notifications go, and `phone` (E.164) is where
    calls and SMS go. A contact is used only once verified (a code sent to it, or a staff member vouching for it
    in the admin) and while no provider has flagged it as unreachable for good.
    """

    language = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        blank=True,
        help_text=_("Language of the pages; empty: the platform's default."),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text=_("Used to show times to this person."),
    )
    phone = models.CharField(
        _("phone"),
        max_length=20,
        blank=True,
        default="",
        help_text=_("In international (E.164) form, e.g. +14155550100; where calls and SMS go once verified."),
    )
    phone_verified_at = models.DateTimeField(_("phone verified at"), null=True, blank=True)
    phone_flagged = models.CharField(
        _("phone flagged"),
        max_length=300,
        blank=True,
        default="",
        help_text=_("Why calls and SMS stopped (a provider said the number cannot be reached); verify it again."),
    )
    email_verified_at = models.DateTimeField(_("email verified at"), null=True, blank=True)
    email_flagged = models.CharField(
        _("email flagged"),
        max_length=300,
        blank=True,
        default="",
        help_text=_("Why email stopped (a hard bounce or a refusal); verify the address again."),
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.UniqueConstraint(Lower("email"), condition=~models.Q(email=""), name="oncall_user_email_unique"),
            models.UniqueConstraint(fields=["phone"], condition=~models.Q(phone=""), name="oncall_user_phone_unique"),
        ]

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @property
    def reachable_phone(self) -> str | None:
        """The phone calls and SMS may use: set, verified and not flagged."""
        if self.phone and self.phone_verified_at and not self.phone_flagged:
            return self.phone
        return None

    @property
    def reachable_email(self) -> str | None:
        """The address email notifications may use: set, verified and not flagged."""
        if self.email and self.email_verified_at and not self.email_flagged:
            return self.email
        return None


class Team(models.Model):
    """A group of people; teams own channels, and an escalation level may target a whole team."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.CharField(_("description"), max_length=500, blank=True)
    members = models.ManyToManyField(User, related_name="teams", blank=True, verbose_name=_("members"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A personal API token for scripts and the mobile app. Shown once when created; only its hash is kept.

    A token acts as its owner: it sees and changes what the owner may, nothing more. The phone app's token
    (`for_app`) belongs to the device it was issued for (`device`): unlinking that device signs the app out. Its
    push service forgetting the device's push token does not: the app is still installed and links its new push
    token with this token (the device is then empty until it does).
    """

    PREFIX = "oncall_"
    MAX_PER_PERSON = 5

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("owner"))
    # Unlinking a device (by its owner, in the admin) revokes its tokens first. A device whose push service said
    # its push token is gone is deleted with its app still signed in (SET_NULL): the app links its new push token
    # with this token, which then belongs to that device.
    device = models.ForeignKey(
        "oncall.Device",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="api_tokens",
        verbose_name=_("device"),
        help_text=_(
            "The linked device the phone app holding this token pushes to: unlinking it revokes the token. Empty "
            "for a token made for scripts, and for an app whose push token its push service forgot, until the app "
            "links its new one."
        ),
    )
    # Kept apart from `device`, which is empty for a while when a push token is renewed: the app is still the app
    # (timeline source, not counted among a person's tokens for scripts, moves to the device it links).
    for_app = models.BooleanField(
        _("phone app"),
        default=False,
        editable=False,
        help_text=_("Given to the phone app when it linked itself by QR code (not a token made for scripts)."),
    )
    name = models.CharField(_("name"), max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(_("starts with"), max_length=16, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.token_hint}…)"
