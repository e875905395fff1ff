"""The SMS method against the fake Twilio: what is sent, the status callback, each class of error, retries and
the daily quota."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from channels_app.models import DailyUsage, Delivery
from oncall.models import Contact, Incident, User
from oncall.services.contacts import contact_code_create, contact_verify
from tests.factories import make_channel, make_integration, make_rule, make_user, push
from tests.integration.paging import SMS_FROM, TWILIO_SID, configure_twilio, later, twilio_callback

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "+14155550123"
NEW_PHONE = "+14155550177"


def event(key: str = "cpu") -> dict:
    return {"title_rule": f"{key} high on db-1", "event_status": "Warning", "alert_key": key}


@pytest.fixture
def twilio(settings, fake_providers):
    configure_twilio(settings, fake_providers)
    return fake_providers


@pytest.fixture
def sam(clock):
    return make_user("sam", phone=PHONE)


@pytest.fixture
def key(sam):
    channel = make_channel("Ops")
    make_rule(channel, [{"people": [sam], "methods": ["sms"]}])
    return make_integration(channel=channel)[1]


def status(client, delivery: Delivery, **fields):
    url = f"{settings.PUBLIC_URL}/hooks/twilio/sms/{delivery.callback_code}/status/"
    params = {"AccountSid": TWILIO_SID, "MessageSid": delivery.provider_id, "To": PHONE, "From": SMS_FROM, **fields}
    return twilio_callback(client, url, params)


def test_the_sms_is_sent_with_the_template_and_a_status_callback(client, clock, twilio, key):
    push(client, key, event())
    [sms] = twilio.received("/twilio/")
    delivery = Delivery.objects.get()
    number = Incident.objects.get().number
    assert sms.path.endswith("/Messages.json")
    assert (sms.field("To"), sms.field("From")) == (PHONE, SMS_FROM)
    assert sms.field("Body").startswith(f"Triggered: [Warning] #{number} cpu high on db-1 (Ops).")
    assert sms.field("StatusCallback") == f"{settings.PUBLIC_URL}/hooks/twilio/sms/{delivery.callback_code}/status/"
    assert (delivery.status, delivery.provider_id[:2]) == ("sent", "SM")


def test_the_status_callback_marks_it_delivered(client, clock, twilio, key):
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert status(client, delivery, MessageStatus="sent").status_code == 204
    assert Delivery.objects.get().status == "sent"
    assert status(client, delivery, MessageStatus="delivered").status_code == 204
    delivery.refresh_from_db()
    assert (delivery.status, delivery.delivered_at) == ("delivered", clock.current)


def test_an_invalid_number_fails_at_once_and_flags_the_phone(client, clock, twilio, key, sam):
    twilio.fail_next(
        "/twilio",
        status=400,
        json={"code": 21211, "message": f"The 'To' number {PHONE} is not a valid phone number.", "status": 400},
    )
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "21211" in delivery.error
    sam.refresh_from_db()
    assert sam.phone_flagged == "Twilio 21211: invalid 'To' phone number"
    failure = Incident.objects.get().timeline.get(kind="notify_failed")
    assert "flagged" in failure.message
    later(clock, minutes=10)
    assert len(twilio.received("/twilio/")) == 1
    # The next incident skips the flagged number and says why.
    push(client, key, event("mem"))
    skipped = Incident.objects.get(title__startswith="mem").timeline.get(kind="notify_failed")
    assert skipped.message == "Skipped sam (sms): phone number flagged: Twilio 21211: invalid 'To' phone number."


def test_a_configuration_error_fails_without_flagging_anyone(client, clock, twilio, key, sam):
    twilio.twilio_accounts.clear()  # the account's credentials are wrong: 401, code 20003
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "20003" in delivery.error
    sam.refresh_from_db()
    assert sam.phone_flagged == ""


def test_a_twilio_url_whose_port_cannot_exist_fails_at_once_without_flagging_anyone(
    client, clock, twilio, key, sam, settings
):
    settings.TWILIO_API_URL = "https://api.twilio.com:99999"
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert "its port is not a number from 1 to 65535" in delivery.error
    assert twilio.received("/twilio/") == []
    sam.refresh_from_db()
    assert sam.phone_flagged == ""


def test_undelivered_with_a_number_error_fails_and_flags(client, clock, twilio, key, sam):
    push(client, key, event())
    delivery = Delivery.objects.get()
    status(client, delivery, MessageStatus="undelivered", ErrorCode="30005")
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    sam.refresh_from_db()
    assert sam.phone_flagged == "Twilio 30005: unknown destination handset"


def calls_to(twilio) -> list:
    return [request for request in twilio.received("/twilio/") if request.path.endswith("/Calls.json")]


def voice_key(person) -> str:
    channel = make_channel("Voice")
    make_rule(channel, [{"people": [person], "methods": ["voice"]}])
    return make_integration(channel=channel)[1]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (21610, "Attempt to send to unsubscribed recipient"),
        (21612, "The 'To' phone number is not currently reachable via SMS"),
        (21614, f"'To' number {PHONE} is not a valid mobile number"),
    ],
)
def test_a_number_that_takes_no_sms_fails_the_sms_but_is_still_called(client, clock, twilio, key, sam, code, message):
    """A desk phone or a landline refuses SMS, or its owner replied STOP: that SMS fails for good, but the number
    is not flagged, so the person's voice calls still ring it."""
    twilio.fail_next("/twilio", status=400, json={"code": code, "message": message, "status": 400})
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert str(code) in delivery.error
    failure = Incident.objects.get().timeline.get(kind="notify_failed")
    assert "flagged" not in failure.message
    sam.refresh_from_db()
    assert (sam.phone_flagged, sam.reachable_phone) == ("", PHONE)
    later(clock, minutes=10)
    assert len(twilio.received("/twilio/")) == 1, "an SMS the number cannot take was sent again"
    push(client, voice_key(sam), event("disk"))
    [call] = calls_to(twilio)
    assert call.field("To") == PHONE
    assert Delivery.objects.get(method="voice").status == "sent"


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (30006, "landline or unreachable carrier"),
        (30004, "message blocked (the recipient opted out, a do-not-disturb list or carrier filtering)"),
    ],
)
def test_undelivered_as_sms_only_fails_the_sms_but_the_number_is_still_called(
    client, clock, twilio, key, sam, code, meaning
):
    """A landline (30006), or an SMS blocked because the person replied STOP, is on a do-not-disturb list or the
    carrier filters it (30004): that SMS fails for good and is not sent again, but the phone is not flagged, so
    the person's next voice page still rings it."""
    push(client, key, event())
    delivery = Delivery.objects.get()
    status(client, delivery, MessageStatus="undelivered", ErrorCode=str(code))
    delivery.refresh_from_db()
    sam.refresh_from_db()
    assert sam.phone_flagged == ""
    assert (delivery.status, delivery.error) == ("failed", f"SMS undelivered (Twilio error {code}: {meaning})")
    later(clock, minutes=10)
    assert len(twilio.received("/twilio/")) == 1, "an SMS the number refused was sent again"
    push(client, voice_key(sam), event("disk"))
    [call] = calls_to(twilio)
    assert call.field("To") == PHONE


def test_a_refused_status_callback_url_sends_the_sms_again_at_once_without_it(client, clock, twilio, key):
    """Twilio 21609 (our StatusCallback URL is not valid, e.g. a wrong PUBLIC_URL): the person still gets the SMS,
    sent again straight away without the callback, and the delivery says no status report will come."""
    twilio.fail_next(
        "/twilio",
        status=400,
        json={"code": 21609, "message": "The StatusCallback URL is not a valid URL.", "status": 400},
    )
    push(client, key, event())
    refused, sent = twilio.received("/twilio/")
    assert refused.field("StatusCallback") is not None
    assert (sent.field("To"), sent.field("Body")) == (PHONE, refused.field("Body"))
    assert [name for name in sent.form if name.startswith("StatusCallback")] == []
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.provider_id[:2]) == ("sent", 1, "SM")
    assert "no status report will come" in delivery.attempt_log[-1]["status_callback"]
    assert not Incident.objects.get().timeline.filter(kind="notify_failed").exists()
    later(clock, minutes=10)
    assert len(twilio.received("/twilio/")) == 2


def test_undelivered_with_a_temporary_error_is_sent_again(client, clock, twilio, key, sam):
    push(client, key, event())
    delivery = Delivery.objects.get()
    status(client, delivery, MessageStatus="undelivered", ErrorCode="30003")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.next_attempt_at) == ("pending", clock.current + timedelta(seconds=30))
    later(clock, seconds=30)
    assert len(twilio.received("/twilio/")) == 2
    assert Delivery.objects.get().status == "sent"
    sam.refresh_from_db()
    assert sam.phone_flagged == ""


def test_a_rate_limit_is_retried_after_retry_after_then_succeeds(client, clock, twilio, key):
    twilio.fail_next(
        "/twilio", status=429, json={"code": 20429, "message": "Too Many Requests"}, headers={"Retry-After": "90"}
    )
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.next_attempt_at) == ("pending", clock.current + timedelta(seconds=90))
    later(clock, seconds=89)
    assert len(twilio.received("/twilio/")) == 1
    later(clock, seconds=1)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert [entry["outcome"] for entry in delivery.attempt_log] == ["retryable", "sent"]


def test_server_errors_and_timeouts_are_retried_until_the_attempts_run_out(client, clock, twilio, key, settings):
    settings.HTTP_TOTAL_TIMEOUT = 0.5
    twilio.fail_next("/twilio", status=503, text="Service Unavailable", times=2)
    twilio.fail_next("/twilio", status=201, json={"sid": "SMlate"}, times=2, delay=1.0)
    push(client, key, event())
    for wait in (30, 120, 300):
        later(clock, seconds=wait)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 4)
    assert [entry["outcome"] for entry in delivery.attempt_log] == ["retryable"] * 4
    assert "did not answer within" in delivery.error
    assert "failed after 4 attempt(s)" in Incident.objects.get().timeline.get(kind="notify_failed").message


def test_a_status_callback_after_the_request_timed_out_settles_the_sms_so_it_is_not_sent_twice(
    client, clock, twilio, key, settings
):
    """Twilio took the SMS but answered after our deadline, so the attempt waits to be retried. Twilio's callback
    about that SMS, coming in the meantime, proves it has the message: recorded as sent, and not sent again."""
    settings.HTTP_TOTAL_TIMEOUT = 0.5
    twilio.fail_next("/twilio", status=201, json={"sid": "SMlate", "status": "queued"}, times=1, delay=1.0)
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    delivery.provider_id = "SMlate"  # what Twilio's callback names
    assert status(client, delivery, MessageStatus="sent").status_code == 204
    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_id, delivery.next_attempt_at) == ("sent", "SMlate", None)
    assert delivery.attempt_log[-1]["reconciled"] is True
    assert status(client, delivery, MessageStatus="delivered").status_code == 204
    later(clock, seconds=31)
    later(clock, seconds=120)
    assert len(twilio.received("/twilio/")) == 1, "the person got the same SMS twice"
    assert Delivery.objects.get().status == "delivered"


def test_a_status_callback_after_the_connection_dropped_settles_the_sms_so_it_is_not_sent_twice(
    client, clock, twilio, key
):
    """Twilio took the SMS, but the connection was reset before its answer reached us (not a timeout). Twilio's
    callback about that SMS, coming while the retry waits, proves it has it: recorded as sent, not sent again."""
    twilio.drop_next("/twilio")
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "could not reach" in delivery.error
    delivery.provider_id = "SM" + "d" * 32  # what Twilio's callback names; we never got its answer
    assert status(client, delivery, MessageStatus="queued").status_code == 204
    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_id, delivery.next_attempt_at) == ("sent", "SM" + "d" * 32, None)
    assert status(client, delivery, MessageStatus="delivered").status_code == 204
    later(clock, seconds=31)
    later(clock, seconds=120)
    assert len(twilio.received("/twilio/")) == 1, "the person got the same SMS twice"
    assert Delivery.objects.get().status == "delivered"


def test_an_sms_whose_connection_dropped_is_sent_again_when_twilio_never_reports_on_it(client, clock, twilio, key):
    twilio.drop_next("/twilio")
    push(client, key, event())
    later(clock, seconds=30)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(twilio.received("/twilio/")) == 2


def test_a_late_sent_callback_does_not_undo_the_retry_of_an_sms_reported_undelivered(
    client, clock, twilio, key, settings
):
    """Callbacks may come out of order: once Twilio said the SMS did not reach the person, a 'sent' about the same
    SMS arriving after does not cancel the retry."""
    push(client, key, event())
    delivery = Delivery.objects.get()
    assert status(client, delivery, MessageStatus="undelivered", ErrorCode="30003").status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert status(client, delivery, MessageStatus="sent").status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    later(clock, seconds=31)
    assert len(twilio.received("/twilio/")) == 2


def test_the_daily_quota_stops_sms_and_tells_the_person_once(client, clock, twilio, key, settings, mailoutbox, sam):
    settings.SMS_DAILY_QUOTA = 2
    for name in ("a", "b", "c", "d"):
        push(client, key, event(name))
    assert len(twilio.received("/twilio/")) == 2
    refused = Delivery.objects.filter(status="failed").order_by("pk")
    assert refused.count() == 2
    assert refused[0].error == "quota reached: 2 SMS today for this person"
    entry = Incident.objects.get(title__startswith="c").timeline.get(kind="notify_failed")
    assert entry.message == "SMS to sam not sent: quota reached (2 per day, SMS_DAILY_QUOTA)."
    assert [mail.subject for mail in mailoutbox] == ["Daily SMS limit reached: you are not being paged by SMS"]
    assert mailoutbox[0].to == ["sam@example.com"]
    usage = DailyUsage.objects.get()
    assert (usage.count, usage.refused) == (2, 2)
    # A new day (the person's own) starts a new count.
    User.objects.filter(pk=sam.pk).update(time_zone="UTC")
    clock.advance(days=1)
    push(client, key, event("e"))
    assert len(twilio.received("/twilio/")) == 3


def test_a_late_callback_about_the_first_sms_does_not_mark_a_refused_retry_sent(client, clock, twilio, key):
    """SMS 1 is reported undelivered (30003: temporary), so it is retried; Twilio refuses the retry (503). A late
    'sent' callback about SMS 1 then says nothing about the retry: the person has had no SMS, so it is tried again."""
    push(client, key, event())
    delivery = Delivery.objects.get()
    first_sid = delivery.provider_id
    assert first_sid.startswith("SM")
    assert status(client, delivery, MessageStatus="undelivered", ErrorCode="30003").status_code == 204
    assert Delivery.objects.get().status == "pending"

    twilio.fail_next("/twilio", status=503, text="Service Unavailable", times=1)
    later(clock, seconds=30)  # attempt 2: Twilio answers 503, nothing was created
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 2)
    assert len(twilio.received("/twilio/")) == 2

    delivery.provider_id = first_sid  # the late callback names SMS 1, the undelivered one
    assert status(client, delivery, MessageStatus="sent").status_code == 204
    delivery.refresh_from_db()
    assert delivery.status == "pending", (
        f"a callback about the undelivered first SMS marked the refused retry {delivery.status!r} "
        f"(log: {delivery.attempt_log[-1]})"
    )
    later(clock, minutes=3)
    assert len(twilio.received("/twilio/")) == 3, "the person never gets the SMS"


def test_a_late_failure_of_the_sms_to_an_old_number_neither_fails_the_retry_nor_flags_the_new_number(
    client, clock, twilio, key, settings, sam
):
    """Twilio took SMS 1 but answered after our deadline; Sam verified a new number before the retry, which went
    there. SMS 1's final status then says the old number is unknown: it is about SMS 1 and the old number, so the
    SMS Sam got stands, and his new number is not flagged."""
    settings.HTTP_TOTAL_TIMEOUT = 0.5
    twilio.fail_next("/twilio", status=201, json={"sid": "SMold", "status": "queued"}, times=1, delay=1.0)
    push(client, key, event())
    assert (Delivery.objects.get().status, Delivery.objects.get().attempts) == ("pending", 1)
    _row, code = contact_code_create(person=sam, contact=Contact.PHONE, target=NEW_PHONE, now=clock.current)
    contact_verify(person=sam, contact=Contact.PHONE, code=code, now=clock.current)
    later(clock, seconds=30)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.address, delivery.attempts) == ("sent", NEW_PHONE, 2)

    url = f"{settings.PUBLIC_URL}/hooks/twilio/sms/{delivery.callback_code}/status/"
    late = {"AccountSid": TWILIO_SID, "MessageSid": "SMold", "To": PHONE, "From": SMS_FROM}
    late |= {"MessageStatus": "undelivered", "ErrorCode": "30005"}
    assert twilio_callback(client, url, late).status_code == 204
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error) == ("sent", "")
    assert delivery.attempt_log[-1]["earlier_message"] is True
    sam.refresh_from_db()
    assert (sam.phone, sam.phone_flagged) == (NEW_PHONE, "")
    assert not Incident.objects.get().timeline.filter(kind="notify_failed").exists()
    later(clock, minutes=10)
    assert len(twilio.received("/twilio/")) == 2
