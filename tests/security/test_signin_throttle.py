"""Password guessing at the two sign-in pages (the engineers' /accounts/login/ and the admin's /admin/login/) is
limited: an account locks for one client address after a few wrong passwords, an address locks for every account
after more, both for a cool-off (not for good), and nobody can lock an engineer out from their own address.

An on-call platform's accounts acknowledge, close, reassign and silence pages (staff accounts change every rule),
so their passwords need the usual guard against online guessing; and an engineer woken at night must still be able
to sign in, whatever an attacker elsewhere has been typing.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.db.models import F
from django.test import Client

from oncall.admin_site import OncallAdminSite
from tests.factories import make_user

pytestmark = pytest.mark.django_db

LOGIN_PAGES = ("/accounts/login/", "/admin/login/")
ATTACKER = "198.51.100.7"
ENGINEER = "203.0.113.20"


def signed_in_as(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def sign_in(client: Client, username: str, password: str, path: str = "/accounts/login/"):
    return client.post(path, {"username": username, "password": password})


def guess(client: Client, username: str, times: int, path: str = "/accounts/login/") -> list[int]:
    return [sign_in(client, username, f"guess-{n}", path).status_code for n in range(times)]


@pytest.mark.parametrize("login_path", LOGIN_PAGES)
def test_the_sign_in_stops_taking_guesses_after_many_wrong_passwords(login_path):
    """A hundred wrong passwords for one account from one client, then the right one: the platform stopped taking
    guesses long before, and the right password does not get in while the lock holds."""
    victim = make_user("oncall-lead", is_staff=True)  # staff, so the admin's sign-in accepts it too
    attacker = Client(REMOTE_ADDR=ATTACKER)
    statuses = guess(attacker, victim.username, 100, login_path)
    response = sign_in(attacker, victim.username, "pw", login_path)
    assert not signed_in_as(attacker)
    assert statuses[:9] == [200] * 9  # the form again, saying the password is wrong
    assert set(statuses[9:]) == {429}  # the tenth failure locks
    assert response.status_code == 429


@pytest.mark.parametrize("login_path", LOGIN_PAGES)
def test_a_locked_sign_in_says_so_and_when_to_try_again(login_path):
    victim = make_user("ann", is_staff=True)
    attacker = Client(REMOTE_ADDR=ATTACKER)
    guess(attacker, victim.username, 10, login_path)
    response = sign_in(attacker, victim.username, "guess-again", login_path)
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    text = response.content.decode()
    assert "Too many failed sign-ins" in text
    assert "15 minutes" in text
    assert 'href="/accounts/password_reset/"' in text
    assert "guess-again" not in text


def test_the_lock_holds_for_the_account_from_that_address_only():
    """Locking an account everywhere would let anyone keep an engineer out of the web with a few requests."""
    victim, attacker_own = make_user("ann"), make_user("mallory")
    attacker = Client(REMOTE_ADDR=ATTACKER)
    guess(attacker, victim.username, 30)
    assert sign_in(attacker, victim.username, "pw").status_code == 429

    engineer = Client(REMOTE_ADDR=ENGINEER)
    assert sign_in(engineer, victim.username, "pw").status_code == 302
    assert signed_in_as(engineer) == str(victim.pk)
    # The attacker's address is not locked for other accounts until it reaches the address limit.
    assert sign_in(Client(REMOTE_ADDR=ATTACKER), attacker_own.username, "pw").status_code == 302


def test_many_accounts_tried_from_one_address_lock_that_address():
    """Spraying a few passwords over many accounts stays under each account's limit: the address's own limit
    (higher, so a shared office address is not locked by a few typos) stops it."""
    people = [make_user(f"person{n}") for n in range(11)]
    sprayer = Client(REMOTE_ADDR=ATTACKER)
    for person in people[:9]:
        assert guess(sprayer, person.username, 5) == [200] * 5  # 5 per account, under each account's limit
    assert guess(sprayer, people[9].username, 5) == [200] * 4 + [429]  # the address's 50th failure locks it
    assert sign_in(sprayer, people[10].username, "pw").status_code == 429
    assert not signed_in_as(sprayer)
    elsewhere = Client(REMOTE_ADDR=ENGINEER)
    assert sign_in(elsewhere, people[10].username, "pw").status_code == 302


def test_signing_in_to_ones_own_account_does_not_clear_the_addresss_failures():
    people = [make_user(f"person{n}") for n in range(10)]
    mallory = make_user("mallory")
    sprayer = Client(REMOTE_ADDR=ATTACKER)
    for person in people[:9]:
        guess(sprayer, person.username, 5)  # 45
    assert sign_in(Client(REMOTE_ADDR=ATTACKER), mallory.username, "pw").status_code == 302
    assert guess(sprayer, people[9].username, 5) == [200] * 4 + [429]


def test_the_lock_ends_after_the_cool_off():
    victim = make_user("ann")
    attacker = Client(REMOTE_ADDR=ATTACKER)
    guess(attacker, victim.username, 10)
    assert sign_in(attacker, victim.username, "pw").status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=14))
    assert sign_in(attacker, victim.username, "pw").status_code == 429  # a guess in the lock extends it
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=15, seconds=1))
    assert sign_in(attacker, victim.username, "pw").status_code == 302
    assert signed_in_as(attacker) == str(victim.pk)


def test_a_successful_sign_in_clears_the_accounts_failures():
    ann = make_user("ann")
    client = Client(REMOTE_ADDR=ENGINEER)
    assert guess(client, ann.username, 9) == [200] * 9
    assert sign_in(client, ann.username, "pw").status_code == 302
    client.post("/accounts/logout/")
    assert guess(client, ann.username, 9) == [200] * 9
    assert sign_in(client, ann.username, "pw").status_code == 302


def test_a_new_password_by_the_emailed_link_lifts_the_accounts_pauses(mailoutbox):
    """The lockout page offers the reset: someone who has just read the account's mail need not wait."""
    ann = make_user("ann")
    client = Client(REMOTE_ADDR=ENGINEER)
    guess(client, ann.username, 10)
    assert sign_in(client, ann.username, "pw").status_code == 429
    client.post("/accounts/password_reset/", {"email": ann.email})
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", mailoutbox[0].body)[1]
    form = client.get(link, follow=True)
    new = "a-long-new-passphrase-42"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done["Location"] == "/accounts/reset/done/"
    assert sign_in(client, ann.username, new).status_code == 302
    assert signed_in_as(client) == str(ann.pk)


def test_the_limits_come_from_the_settings(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.SIGNIN_MAX_FAILURES_PER_IP = 5
    ann, ben, cat = make_user("ann"), make_user("ben"), make_user("cat")
    client = Client(REMOTE_ADDR=ATTACKER)
    assert guess(client, ann.username, 3) == [200, 200, 429]
    assert guess(client, ben.username, 2) == [200, 429]  # the address's fifth failure
    assert sign_in(client, cat.username, "pw").status_code == 429


def test_a_forged_x_forwarded_for_does_not_escape_the_lock_without_a_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    victim = make_user("ann")
    attacker = Client(REMOTE_ADDR=ATTACKER)
    statuses = [
        attacker.post(
            "/accounts/login/",
            {"username": victim.username, "password": f"guess-{n}"},
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        ).status_code
        for n in range(12)
    ]
    assert statuses == [200] * 9 + [429] * 3


def test_behind_a_proxy_each_client_is_told_apart_by_the_address_the_proxy_saw(settings):
    """Behind the proxy every request comes from its address: without X-Forwarded-For one attacker would lock the
    account for everybody. Only the entry the proxy appended counts, not what the client wrote before it."""
    settings.TRUSTED_PROXY_COUNT = 1
    victim = make_user("ann")
    proxy = "10.0.0.2"
    attacker = Client(REMOTE_ADDR=proxy)
    statuses = [
        attacker.post(
            "/accounts/login/",
            {"username": victim.username, "password": f"guess-{n}"},
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, {ATTACKER}",
        ).status_code
        for n in range(12)
    ]
    assert statuses == [200] * 9 + [429] * 3
    engineer = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=ENGINEER)
    assert sign_in(engineer, victim.username, "pw").status_code == 302
    assert AccessAttempt.objects.get().ip_address == ATTACKER


def test_the_admin_lists_lockouts_on_the_platforms_admin_site():
    assert isinstance(admin.site._wrapped, OncallAdminSite)  # the site the admin URLs serve
    assert AccessAttempt in admin.site._registry
    guess(Client(REMOTE_ADDR=ATTACKER), "ann", 10)
    staff = Client()
    staff.force_login(make_user("root", is_staff=True, is_superuser=True))
    page = staff.get("/admin/axes/accessattempt/")
    assert page.status_code == 200
    assert ATTACKER in page.content.decode()
    # Deleting the row lifts the lock before the cool-off ends.
    attempt = AccessAttempt.objects.get()
    staff.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert not AccessAttempt.objects.exists()


def test_signing_in_without_a_request_still_works():
    """The test client's login() and code calling authenticate() without a request: not a guess over the web."""
    make_user("ann")
    assert Client().login(username="ann", password="pw")
    assert not Client().login(username="ann", password="wrong")
    assert not AccessAttempt.objects.exists()
