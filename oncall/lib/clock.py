"""The one place the platform asks what time it is.

Decisions take `now` as an argument; interfaces (views, tasks, the ticker) call `now()` here once and pass it
down, so tests can drive time without patching the standard library.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
