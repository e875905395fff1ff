"""Signing in, signing out and passwords: Django's own pages, with one change.

The sign-in pages' guessing limits are django-axes' (oncall.signin); a new password set through the emailed link
lifts the account's sign-in pauses.
"""

from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import urls as auth_urls
from django.contrib.auth import views as auth_views
from django.urls import path


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's page behind the emailed link. The new password also lifts the account's sign-in pauses: whoever sets
    it has just proved they read the account's mail, and an engineer who locked themselves out need not wait."""

    def form_valid(self, form):
        response = super().form_valid(form)
        AxesProxyHandler.reset_attempts(username=form.user.get_username())
        return response


_OURS = [
    path("reset/<uidb64>/<token>/", PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
]
urlpatterns = [
    *_OURS,
    *(pattern for pattern in auth_urls.urlpatterns if pattern.name not in {ours.name for ours in _OURS}),
]
