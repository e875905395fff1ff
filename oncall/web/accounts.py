"""Signing in, signing out and passwords: Django's own pages, with the reset mails limited.

The sign-in pages' guessing limits are django-axes' (oncall.signin); the password-reset form is limited here, since
it sends a mail to any address anyone types, and a new password set through the emailed link lifts the account's
sign-in pauses.
"""

from __future__ import annotations

import logging
import unicodedata

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import urls as auth_urls
from django.contrib.auth import views as auth_views
from django.http import HttpResponseRedirect
from django.urls import path
from django.utils.crypto import salted_hmac

from oncall.lib import clock, ratelimit
from oncall.lib.client_ip import client_ip

logger = logging.getLogger(__name__)

HOUR = 3600


def password_reset_limited(*, email: str, address: str | None, now: float) -> str | None:
    """Count one reset request against its client address and its email address; name the limit it exceeds.

    The email address is counted in Django's own comparison form (NFKC, case-folded: the reset form finds accounts
    by a case-insensitive match that also takes a long s, U+017F, for an "s", and mails the address the account
    has), and keyed, so the cache holds no addresses.
    """
    limits = (
        (f"password-reset-ip:{address}", settings.PASSWORD_RESET_PER_IP_PER_HOUR, "from one client address"),
        (f"password-reset-email:{_email_key(email)}", settings.PASSWORD_RESET_PER_EMAIL_PER_HOUR, "for one email"),
    )
    for scope, per_hour, which in limits:
        exceeded = ratelimit.hit(scope, [ratelimit.Limit(per_hour, HOUR)], now=now)
        if exceeded is not None:
            return f"{exceeded.limit.describe()} {which}"
    return None


def _email_key(email: str) -> str:
    canonical = unicodedata.normalize("NFKC", email.strip()).casefold()
    return salted_hmac("oncall.web.accounts.password-reset", canonical, algorithm="sha256").hexdigest()


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset form; over a limit the mail is not sent, and the answer is the usual one (the page saying a
    link is on its way if an account has that address), so it tells no one about the address or the limit."""

    def form_valid(self, form):
        email = form.cleaned_data["email"]
        # The address of the account the mail would go to, when one matches: every spelling that reaches one inbox
        # shares its count.
        account = next(iter(form.get_users(email)), None)
        if account is not None:
            email = getattr(account, account.get_email_field_name())
        exceeded = password_reset_limited(email=email, address=client_ip(self.request), now=clock.now().timestamp())
        if exceeded is not None:
            logger.warning("Password-reset mail not sent: over the limit of %s", exceeded)
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's page behind the emailed link. The new password also lifts the account's sign-in pauses: whoever sets
    it has just proved they read the account's mail, and an engineer who locked themselves out need not wait."""

    def form_valid(self, form):
        response = super().form_valid(form)
        AxesProxyHandler.reset_attempts(username=form.user.get_username())
        return response


_OURS = [
    path("password_reset/", PasswordResetView.as_view(), name="password_reset"),
    path("reset/<uidb64>/<token>/", PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
]
urlpatterns = [
    *_OURS,
    *(pattern for pattern in auth_urls.urlpatterns if pattern.name not in {ours.name for ours in _OURS}),
]
