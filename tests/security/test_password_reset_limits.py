"""The password-reset form sends a mail to whatever address anyone types: it is limited per email address and per
client address, and over a limit it answers as usual without sending, so it still tells no one which addresses
have an account."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import make_user

pytestmark = pytest.mark.django_db


def reset_mails(mailoutbox, address: str) -> list:
    return [message for message in mailoutbox if address in message.to]


def ask(client: Client, email: str):
    return client.post("/accounts/password_reset/", {"email": email})


def test_password_reset_mails_to_one_address_are_limited(mailoutbox, clock):
    """One script would otherwise flood an engineer's inbox (the inbox their email pages go to) and spend the
    platform's mail sending quota."""
    victim = make_user("ann")
    answers = {(r.status_code, r["Location"]) for r in (ask(Client(), victim.email) for _ in range(50))}
    assert answers == {(302, "/accounts/password_reset/done/")}
    assert len(reset_mails(mailoutbox, victim.email)) == 3


def test_the_limit_per_address_ignores_letter_case_and_client(mailoutbox, clock):
    victim = make_user("ann")
    for n, spelling in enumerate(["ann@example.com", "ANN@example.com", "Ann@Example.com", "ann@EXAMPLE.COM"]):
        ask(Client(REMOTE_ADDR=f"192.0.2.{n}"), spelling)
    assert len(reset_mails(mailoutbox, victim.email)) == 3


def test_requests_from_one_client_address_are_limited(mailoutbox, settings, clock):
    settings.PASSWORD_RESET_PER_IP_PER_HOUR = 5
    people = [make_user(f"person{n}") for n in range(8)]
    client = Client(REMOTE_ADDR="198.51.100.7")
    for person in people:
        assert ask(client, person.email)["Location"] == "/accounts/password_reset/done/"
    assert [message.to for message in mailoutbox] == [[person.email] for person in people[:5]]
    ask(Client(REMOTE_ADDR="203.0.113.20"), people[7].email)
    assert len(reset_mails(mailoutbox, people[7].email)) == 1


def test_the_limits_reopen_after_the_hour(mailoutbox, clock):
    victim = make_user("ann")
    for _ in range(5):
        ask(Client(), victim.email)
    clock.advance(hours=1)
    ask(Client(), victim.email)
    assert len(reset_mails(mailoutbox, victim.email)) == 4


def test_an_address_over_its_limit_answers_like_an_unknown_one(mailoutbox, clock):
    victim = make_user("ann")
    for _ in range(3):
        ask(Client(), victim.email)
    limited, unknown = ask(Client(), victim.email), ask(Client(), "nobody-here@example.com")
    assert (limited.status_code, limited["Location"]) == (unknown.status_code, unknown["Location"])
    assert len(reset_mails(mailoutbox, victim.email)) == 3
