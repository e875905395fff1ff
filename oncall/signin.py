"""Limits on password guessing at the sign-in pages, built on django-axes (settings: AXES_* in oncall.settings).

Axes counts failed sign-ins in the database (so every web process and machine sees the same counts) and refuses
further attempts once a limit is reached, until a cool-off has passed. Axes locks what its lockout parameters name
with one limit; the platform has two (the account from one address, and the address over all accounts, higher):
the handler below adds the second.
"""

from __future__ import annotations

from axes.attempts import get_cool_off_threshold
from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.shortcuts import render


class SignInBackend(AxesStandaloneBackend):
    """Refuses a sign-in while its account and address, or its address, are locked out; signs nobody in itself
    (ModelBackend, after it, checks the password).

    A sign-in without a request (the test client's login(), a management command) did not come over the web: it is
    not counted and not refused, instead of failing as axes' own backend does. Every sign-in form (the two pages,
    anything built on Django's AuthenticationForm) passes its request.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class SignInAttempts(AxesDatabaseHandler):
    """Axes' database handler, with a second, higher limit per client address over all accounts.

    AXES_LOCKOUT_PARAMETERS locks an account from one address after AXES_FAILURE_LIMIT failures. An address that has
    failed SIGNIN_MAX_FAILURES_PER_IP times within the cool-off, over any accounts, is locked for every account:
    its failure count is then reported as AXES_FAILURE_LIMIT itself, which is what axes compares with.
    """

    def get_failures(self, request, credentials: dict | None = None) -> int:
        failures = super().get_failures(request, credentials)
        limit = get_failure_limit(request, credentials)
        address = request.axes_ip_address
        if address is None or failures >= limit:
            return failures
        from_address = AccessAttempt.objects.filter(
            ip_address=address, attempt_time__gte=get_cool_off_threshold(request)
        ).aggregate(total=Sum("failures_since_start"))["total"]
        if (from_address or 0) >= settings.SIGNIN_MAX_FAILURES_PER_IP:
            return limit
        return failures


def lockout_response(request, original_response=None, credentials=None):
    """The answer to a sign-in refused by the lockout: 429, what happened, when to try again and what else to do.

    Every further attempt while locked counts as a failure, so the lock ends one cool-off after the last one.
    """
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds())
    response = render(
        request,
        "registration/locked_out.html",
        {"minutes": max(1, round(seconds / 60))},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
    response["Retry-After"] = str(seconds)
    return response
