"""Binding and verifying a phone number (code by SMS at the fake Twilio) and an email address (code by email):
the happy path, expiry, wrong codes, the attempt limit, rate limits per person and per number, and what an
unverified or flagged contact means for notifications."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from rest_framework.test import APIClient

from channels_app.models import Delivery
from oncall.models import Incident, User, VerificationCode
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.integration.paging import SMS_FROM, configure_twilio

pytestmark = pytest.mark.django_db

CONTACTS = "/api/v1/me/contacts/"


@pytest.fixture
def twilio(settings, fake_providers):
    configure_twilio(settings, fake_providers)
    return fake_providers


@pytest.fixture
def alice(clock):
    return make_user("alice", first_name="Alice")


@pytest.fixture
def api(alice) -> APIClient:
    client = APIClient()
    client.force_authenticate(alice)
    return client


def sms_code(fake) -> str:
    body = fake.received("/twilio/")[-1].field("Body")
    return re.search(r"\b(\d{6})\b", body).group(1)


def mail_code(mailoutbox) -> str:
    return re.search(r"\b(\d{6})\b", mailoutbox[-1].subject).group(1)


def error(response) -> dict:
    return response.json()["error"]


def test_binding_a_phone_sends_a_code_by_sms_and_the_code_verifies_it(api, alice, twilio, clock):
    response = api.post(f"{CONTACTS}phone/", {"phone": "+1 (415) 555-0123"}, format="json")
    assert response.status_code == 200, response.json()
    pending = response.json()["data"]["phone"]
    assert pending["value"] == "" and pending["pending"]["target"] == "+14155550123"
    [sms] = twilio.received("/twilio/")
    assert (sms.field("To"), sms.field("From")) == ("+14155550123", SMS_FROM)
    assert "expires in 10 minutes" in sms.field("Body")
    code = sms_code(twilio)
    stored = VerificationCode.objects.get()
    assert code not in stored.code_hash and len(stored.code_hash) == 64  # only a keyed hash is kept

    clock.advance(minutes=9)
    response = api.post(f"{CONTACTS}phone/verify/", {"code": code}, format="json")
    assert response.status_code == 200, response.json()
    phone = response.json()["data"]["phone"]
    assert (phone["value"], phone["verified"], phone["reachable"], phone["pending"]) == (
        "+14155550123",
        True,
        True,
        None,
    )
    alice.refresh_from_db()
    assert (alice.phone, alice.phone_verified_at, alice.reachable_phone) == (
        "+14155550123",
        clock.current,
        "+14155550123",
    )
    # Used once: the same code again finds nothing waiting.
    again = api.post(f"{CONTACTS}phone/verify/", {"code": code}, format="json")
    assert again.status_code == 400 and "No code is waiting" in error(again)["message"]


def test_an_expired_code_is_refused(api, alice, twilio, clock):
    api.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json")
    code = sms_code(twilio)
    clock.advance(minutes=10)
    response = api.post(f"{CONTACTS}phone/verify/", {"code": code}, format="json")
    assert response.status_code == 400
    assert error(response) == {
        "code": "InvalidParameter",
        "message": "The code has expired; ask for a new one.",
        "field": "code",
    }
    assert VerificationCode.objects.get().status == "expired"
    alice.refresh_from_db()
    assert alice.phone == ""


def test_a_wrong_code_counts_and_the_fifth_spends_the_code(api, alice, twilio):
    api.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json")
    code = sms_code(twilio)
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1):
        response = api.post(f"{CONTACTS}phone/verify/", {"code": wrong}, format="json")
        assert response.status_code == 400
        assert error(response)["message"] == f"That code is wrong; {left} attempt(s) left."
    last = api.post(f"{CONTACTS}phone/verify/", {"code": wrong}, format="json")
    assert error(last)["message"] == "Too many wrong codes; ask for a new one."
    assert (VerificationCode.objects.get().status, VerificationCode.objects.get().attempts) == ("spent", 5)
    # Even the right code is useless now.
    right = api.post(f"{CONTACTS}phone/verify/", {"code": code}, format="json")
    assert right.status_code == 400
    alice.refresh_from_db()
    assert alice.phone == ""


def test_a_new_code_replaces_the_pending_one(api, twilio, clock):
    api.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json")
    first = sms_code(twilio)
    api.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json")
    second = sms_code(twilio)
    if first != second:
        assert api.post(f"{CONTACTS}phone/verify/", {"code": first}, format="json").status_code == 400
    assert api.post(f"{CONTACTS}phone/verify/", {"code": second}, format="json").status_code == 200


def test_codes_are_rate_limited_per_number(api, twilio, clock):
    bob = make_user("bob")
    for _ in range(3):
        assert api.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json").status_code == 200
        clock.advance(minutes=1)
    other = APIClient()
    other.force_authenticate(bob)
    # A fourth code to the same number within the hour, even for another person: refused with when to retry.
    response = other.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json")
    assert response.status_code == 429
    assert error(response)["code"] == "RequestTooFrequently"
    assert "3 codes were sent to this number" in error(response)["message"]
    assert int(response["Retry-After"]) == 57 * 60 + 1
    assert len(twilio.received("/twilio/")) == 3
    clock.advance(minutes=58)
    assert other.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json").status_code == 200


def test_codes_are_rate_limited_per_person(api, twilio, clock, mailoutbox):
    numbers = ["+14155550101", "+14155550102", "+14155550103"]
    for number in numbers:
        assert api.post(f"{CONTACTS}phone/", {"phone": number}, format="json").status_code == 200
    assert api.post(f"{CONTACTS}email/", {}, format="json").status_code == 200
    assert api.post(f"{CONTACTS}email/", {}, format="json").status_code == 200
    response = api.post(f"{CONTACTS}phone/", {"phone": "+14155550104"}, format="json")
    assert response.status_code == 429
    assert "You asked for 5 codes in the last hour" in error(response)["message"]
    assert int(response["Retry-After"]) == 3601


def test_a_number_another_person_has_is_refused(api, twilio):
    make_user("bob", phone="+14155550123")
    response = api.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "Conflict"
    assert twilio.received("/twilio/") == []


@pytest.mark.parametrize("value", ["4155550123", "+1 555", "call me"])
def test_an_invalid_number_is_refused_with_the_field(api, twilio, value):
    response = api.post(f"{CONTACTS}phone/", {"phone": value}, format="json")
    assert response.status_code == 400
    assert error(response)["field"] == "phone"
    assert VerificationCode.objects.count() == 0


def test_a_number_twilio_refuses_leaves_an_unusable_code(api, twilio):
    twilio.fail_next("/twilio", status=400, json={"code": 21614, "message": "'To' number is not a valid mobile number"})
    response = api.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json")
    assert response.status_code == 400
    assert "21614" in error(response)["message"]
    assert VerificationCode.objects.get().status == "unsent"


def test_twilio_being_down_answers_503(api, twilio):
    twilio.fail_next("/twilio", status=503, text="unavailable")
    response = api.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json")
    assert response.status_code == 503
    assert error(response)["code"] == "ServiceUnavailable"


def test_the_email_is_verified_by_a_code_sent_to_it(api, alice, clock, mailoutbox):
    User.objects.filter(pk=alice.pk).update(email_verified_at=None)
    response = api.post(f"{CONTACTS}email/", {}, format="json")
    assert response.status_code == 200
    assert mailoutbox[-1].to == ["alice@example.com"]
    response = api.post(f"{CONTACTS}email/verify/", {"code": mail_code(mailoutbox)}, format="json")
    assert response.json()["data"]["email"]["verified"] is True


def test_changing_the_email_takes_effect_only_once_verified(api, alice, mailoutbox):
    api.post(f"{CONTACTS}email/", {"email": "alice@new.example.com"}, format="json")
    assert mailoutbox[-1].to == ["alice@new.example.com"]
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"  # the old address keeps working until then
    api.post(f"{CONTACTS}email/verify/", {"code": mail_code(mailoutbox)}, format="json")
    alice.refresh_from_db()
    assert (alice.email, alice.reachable_email) == ("alice@new.example.com", "alice@new.example.com")


def test_verifying_again_clears_a_flag(api, alice, twilio):
    User.objects.filter(pk=alice.pk).update(
        phone="+14155550123", phone_verified_at=alice.date_joined, phone_flagged="Twilio 21610: unsubscribed"
    )
    alice.refresh_from_db()
    assert alice.reachable_phone is None
    api.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json")
    api.post(f"{CONTACTS}phone/verify/", {"code": sms_code(twilio)}, format="json")
    alice.refresh_from_db()
    assert (alice.phone_flagged, alice.reachable_phone) == ("", "+14155550123")


def test_removing_the_phone(api, alice):
    User.objects.filter(pk=alice.pk).update(phone="+14155550123", phone_verified_at=alice.date_joined)
    response = api.delete(f"{CONTACTS}phone/")
    assert response.json()["data"]["phone"]["value"] == ""


@pytest.mark.django_db(transaction=True)
def test_unverified_and_flagged_contacts_receive_nothing_and_the_timeline_says_why(client, clock, settings, twilio):
    unverified = make_user("uma", phone="+14155550111", phone_verified=False, email_verified=False)
    flagged = make_user("fay", phone="+14155550112", phone_flagged="Twilio 21211: invalid 'To' phone number")
    channel = make_channel()
    make_rule(channel, [{"people": [unverified, flagged], "methods": ["sms", "voice", "email"]}])
    push(client, make_integration(channel=channel)[1], {"title_rule": "x", "event_status": "Critical"})
    messages = set(Incident.objects.get().timeline.filter(kind="notify_failed").values_list("message", flat=True))
    assert {
        "Skipped uma (sms): no verified sms contact.",
        "Skipped uma (voice): no verified voice contact.",
        "Skipped uma (email): no verified email contact.",
        "Skipped fay (sms): phone number flagged: Twilio 21211: invalid 'To' phone number.",
        "Skipped fay (voice): phone number flagged: Twilio 21211: invalid 'To' phone number.",
    } <= messages
    assert list(Delivery.objects.values_list("method", "address")) == [("email", "fay@example.com")]
    assert twilio.received("/twilio/") == []


def test_staff_mark_a_contact_verified_in_the_admin_and_it_is_recorded(client, clock):
    admin_user = make_user("root", is_staff=True, is_superuser=True)
    person = make_user("pat", phone="+14155550123", phone_verified=False)
    client.force_login(admin_user)
    response = client.post(
        "/admin/oncall/user/", {"action": "mark_phone_verified", "_selected_action": [person.pk]}, follow=True
    )
    assert response.status_code == 200
    person.refresh_from_db()
    assert person.reachable_phone == "+14155550123"
    entry = LogEntry.objects.get(object_id=str(person.pk))
    assert (entry.user, entry.get_change_message()) == (admin_user, "Marked phone +14155550123 verified.")


def test_changing_a_phone_in_the_admin_makes_it_unverified(client, clock):
    admin_user = make_user("root", is_staff=True, is_superuser=True)
    person = make_user("pat", phone="+14155550123")
    client.force_login(admin_user)
    page = client.get(f"/admin/oncall/user/{person.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(phone="+1 415 555 0199", date_joined_0="2026-01-01", date_joined_1="00:00:00")
    data.pop("date_joined", None)
    for prefix in ("devices", "notification_preferences"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0})
    response = client.post(f"/admin/oncall/user/{person.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    person.refresh_from_db()
    assert (person.phone, person.phone_verified_at) == ("+14155550199", None)


def test_codes_are_not_kept_in_the_clear_anywhere(api, twilio):
    api.post(f"{CONTACTS}phone/", {"phone": "+14155550123"}, format="json")
    code = sms_code(twilio)
    row = VerificationCode.objects.values().get()
    assert all(code not in str(value) for value in row.values())
    assert row["expires_at"] - row["created_at"] == timedelta(minutes=10)
