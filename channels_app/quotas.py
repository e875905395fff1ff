"""Daily quotas per person for the methods that ring a phone (voice, SMS), so a flapping alert cannot flood one.

A unit is taken before each provider call (a retry that calls again takes another). The day is the person's own
local day. When the quota stops a page, the person is told by email, once per method per day.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from channels_app.models import DailyUsage
from oncall.models import User

logger = logging.getLogger(__name__)


def _local_day(person: User, now: datetime):
    try:
        return now.astimezone(ZoneInfo(person.time_zone)).date()
    except (KeyError, ValueError):
        return now.date()


def _usage(person: User, method: str, now: datetime) -> DailyUsage:
    day = _local_day(person, now)
    try:
        with transaction.atomic():
            return DailyUsage.objects.get_or_create(person=person, method=method, day=day)[0]
    except IntegrityError:  # created by a concurrent worker between the get and the create
        return DailyUsage.objects.get(person=person, method=method, day=day)


def quota_take(*, person: User, method: str, limit: int, now: datetime) -> bool:
    """Take one unit of `person`'s daily quota for `method`; False when the quota is used up (nothing taken)."""
    usage = _usage(person, method, now)
    taken = DailyUsage.objects.filter(pk=usage.pk, count__lt=limit).update(count=F("count") + 1)
    if not taken:
        DailyUsage.objects.filter(pk=usage.pk).update(refused=F("refused") + 1)
    return bool(taken)


def quota_notice_send(*, person: User, method: str, method_label: str, limit: int, setting: str, now: datetime) -> bool:
    """Tell `person` by email, once per method and day, that the quota stopped a page. Returns whether it was sent.

    Only to a verified, unflagged address; a failure to send is logged, never retried (the timeline already says
    what happened).
    """
    usage = _usage(person, method, now)
    if not DailyUsage.objects.filter(pk=usage.pk, notice_sent_at__isnull=True).update(notice_sent_at=now):
        return False
    address = person.reachable_email
    if not address:
        return False
    subject = _("Daily %(method)s limit reached: you are not being paged by %(method)s") % {"method": method_label}
    body = _(
        "Hello %(name)s,\n\nYou were sent %(limit)d notifications by %(method)s today, the most the platform sends "
        "one person in a day. Further pages by %(method)s are not sent until tomorrow (your time); the other ways "
        "you are notified still work. Check the incidents that are paging you, or ask an administrator about the "
        "limit (%(setting)s).\n"
    ) % {"name": person.display_name, "limit": limit, "method": method_label, "setting": setting}
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)
    except Exception:
        logger.exception("Could not send the daily quota notice to person %s", person.pk)
        return False
    return True
