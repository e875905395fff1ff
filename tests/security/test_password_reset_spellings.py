"""The password-reset limit per address holds for every spelling of it that reaches the same inbox (on
PostgreSQL, whose case-insensitive lookup follows Unicode case rules)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_the_limit_per_address_holds_for_every_spelling_that_mails_the_same_inbox(mailoutbox, clock):
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite's iexact folds ASCII only; PostgreSQL's UPPER() folds the long s to 'S' as the form expects"
        )
    victim = make_user("sam", email="sam.ross@example.com")
    # Each of these finds the account (PostgreSQL UPPER() and Django's own NFKC+casefold check both say it is the
    # same address) and the mail goes to the stored address, sam.ross@example.com.
    long_s = "\u017f"
    spellings = [
        "sam.ross@example.com",
        f"{long_s}am.ross@example.com",
        f"sam.ro{long_s}s@example.com",
        f"{long_s}am.ro{long_s}{long_s}@example.com",
    ]
    for n, spelling in enumerate(spellings):
        for _ in range(3):
            Client(REMOTE_ADDR=f"192.0.2.{n}").post("/accounts/password_reset/", {"email": spelling})
    sent = [message for message in mailoutbox if victim.email in message.to]
    assert len(sent) == 3  # PASSWORD_RESET_PER_EMAIL_PER_HOUR
