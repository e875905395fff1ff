"""An incident whose severity rises while its escalation has notified a level: the level is notified again for the
new severity (only what it had not sent), its timing stays, and nothing is paged twice — through the real ingest,
ticker and worker code (tasks inline), the fake Twilio and the fake DingTalk, with a controlled clock."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection

from channels_app.models import Delivery
from channels_app.preferences import person_preferences_set
from escalation import services as escalation_services
from escalation.models import EscalationLevel, EscalationRule, EscalationState, Timer
from oncall.lib import clock as clock_module
from oncall.models import Incident, Responder, Source
from oncall.services import events, lifecycle
from tests.factories import make_bot, make_channel, make_integration, make_user, push
from tests.integration.paging import configure_twilio, later

pytestmark = pytest.mark.django_db(transaction=True)

ANN_PHONE = "+14155550101"
BEN_PHONE = "+14155550102"
AGAIN = "Level {n} notified again because the severity rose to {severity}: {who}."


def event(key: str = "api", severity: str = "Warning", **labels) -> dict:
    return {"title_rule": f"{key} errors", "event_status": severity, "alert_key": key, "labels": labels}


@pytest.fixture
def twilio(settings, fake_providers, clock):
    configure_twilio(settings, fake_providers)
    return fake_providers


@pytest.fixture
def ann():
    return make_user("ann", phone=ANN_PHONE)


@pytest.fixture
def ben():
    return make_user("ben", phone=BEN_PHONE)


def rule_with_levels(channel, *levels: dict) -> EscalationRule:
    """levels: {"people": [...], "warning": [...], "critical": [...], "after": minutes, **other level fields}."""
    rule = EscalationRule.objects.create(channel=channel, name="Paging")
    for position, spec in enumerate(levels):
        spec = dict(spec)
        people, bots = spec.pop("people", []), spec.pop("bots", [])
        level = EscalationLevel.objects.create(
            rule=rule,
            position=position,
            warning_methods=spec.pop("warning", []),
            critical_methods=spec.pop("critical", []),
            info_methods=spec.pop("info", []),
            escalate_after_minutes=spec.pop("after", 30),
            **spec,
        )
        level.people.set(people)
        level.bots.set(bots)
    return rule


def pages(twilio, mailoutbox) -> list[tuple[str, str]]:
    """Every page sent, as (address, method), in order per method."""
    kinds = {"/Messages.json": "sms", "/Calls.json": "voice"}
    sent = [
        (request.field("To"), kind)
        for request in twilio.received("/twilio/")
        for suffix, kind in kinds.items()
        if request.path.endswith(suffix)
    ]
    return sent + [(mail.to[0], "email") for mail in mailoutbox if not mail.subject.startswith("[Bot failed]")]


def posts(fakes, token: str) -> list:
    return [request for request in fakes.received("/dingtalk") if request.query.get("access_token") == [token]]


def timeline() -> list[str]:
    return list(Incident.objects.get().timeline.order_by("id").values_list("message", flat=True))


def test_an_incident_that_rises_to_critical_during_its_level_pages_that_level_for_critical(
    client, clock, twilio, ann, ben, mailoutbox
):
    """Level 1 emails for Warning and calls and texts for Critical: the alert turns Critical a minute in, and ann is
    called and texted then — not emailed again — while level 2 is still due when level 1 started plus 5 minutes."""
    channel = make_channel()
    rule_with_levels(
        channel,
        {"people": [ann], "warning": ["email"], "critical": ["email", "sms", "voice"], "after": 5},
        {"people": [ben], "warning": ["email"], "critical": ["sms"]},
    )
    _, key = make_integration(channel=channel)
    push(client, key, event("api", "Warning"))
    assert pages(twilio, mailoutbox) == [("ann@example.com", "email")]
    level_two_due = EscalationState.objects.get().timers.get(done_at__isnull=True).due_at

    clock.advance(minutes=1)
    push(client, key, event("api", "Critical"))

    assert sorted(pages(twilio, mailoutbox)) == [
        (ANN_PHONE, "sms"),
        (ANN_PHONE, "voice"),
        ("ann@example.com", "email"),
    ]
    assert AGAIN.format(n=1, severity="Critical", who="ann (sms), ann (voice)") in timeline()
    state = EscalationState.objects.get()
    assert (state.level, state.round, state.status) == (0, 0, "running")
    assert state.timers.get(done_at__isnull=True).due_at == level_two_due, "the level's timeout stays as it was"

    later(clock, minutes=3, seconds=59)
    assert len(pages(twilio, mailoutbox)) == 3
    later(clock, seconds=1)
    assert sorted(pages(twilio, mailoutbox)) == [
        (ANN_PHONE, "sms"),
        (ANN_PHONE, "voice"),
        (BEN_PHONE, "sms"),
        ("ann@example.com", "email"),
    ], "level 2 at its time, for Critical; nobody paged twice"


def test_a_level_that_notifies_nobody_for_warning_pages_when_a_grouped_alert_makes_the_incident_critical(
    client, clock, twilio, ann, mailoutbox
):
    channel = make_channel(group_keys=["service"])
    rule_with_levels(channel, {"people": [ann], "warning": [], "critical": ["sms"]})
    _, key = make_integration(channel=channel)
    push(client, key, event("latency", "Warning", service="checkout"))
    assert pages(twilio, mailoutbox) == []
    assert "Skipped ann (-): no notification method for Warning." in timeline()

    clock.advance(minutes=1)
    push(client, key, event("errors", "Critical", service="checkout"))
    assert Incident.objects.count() == 1
    assert pages(twilio, mailoutbox) == [(ANN_PHONE, "sms")]
    assert Responder.objects.filter(incident=Incident.objects.get(), person=ann).exists(), "paged: a responder now"


def test_an_incident_that_rises_after_its_last_level_ended_pages_that_level_for_critical(
    client, clock, twilio, ann, mailoutbox
):
    """Without this the incident would never be paged as Critical: there is no next level."""
    channel = make_channel()
    rule_with_levels(channel, {"people": [ann], "warning": ["email"], "critical": ["voice"], "after": 5})
    _, key = make_integration(channel=channel)
    push(client, key, event("api", "Warning"))
    later(clock, minutes=5)
    assert EscalationState.objects.get().status == "finished"

    later(clock, minutes=10)
    push(client, key, event("api", "Critical"))
    assert pages(twilio, mailoutbox) == [(ANN_PHONE, "voice"), ("ann@example.com", "email")]
    assert AGAIN.format(n=1, severity="Critical", who="ann (voice)") in timeline()
    state = EscalationState.objects.get()
    assert state.status == "finished" and not state.timers.filter(done_at__isnull=True).exists()


def test_the_level_repeats_at_its_own_times_after_a_rise(client, clock, twilio, ann, mailoutbox):
    channel = make_channel()
    rule_with_levels(
        channel,
        {
            "people": [ann],
            "warning": ["email"],
            "critical": ["email", "sms"],
            "after": 30,
            "repeat_times": 2,
            "repeat_every_minutes": 10,
        },
    )
    _, key = make_integration(channel=channel)
    push(client, key, event("api", "Warning"))
    later(clock, minutes=10)  # repeat 1, for Warning
    assert pages(twilio, mailoutbox) == [("ann@example.com", "email")] * 2

    later(clock, minutes=2)
    push(client, key, event("api", "Critical"))
    assert pages(twilio, mailoutbox) == [(ANN_PHONE, "sms")] + [("ann@example.com", "email")] * 2
    [timer] = EscalationState.objects.get().timers.filter(done_at__isnull=True)
    assert (timer.round, timer.due_at) == (2, clock.current + timedelta(minutes=8)), "repeat 2 twenty minutes in"

    later(clock, minutes=8)  # repeat 2 sends everything for Critical, as any repeat does
    assert pages(twilio, mailoutbox) == [(ANN_PHONE, "sms")] * 2 + [("ann@example.com", "email")] * 3


def test_an_acknowledged_incident_is_not_paged_when_its_severity_rises(client, clock, twilio, ann, ben, mailoutbox):
    channel = make_channel()
    rule_with_levels(channel, {"people": [ann], "warning": ["email"], "critical": ["sms"]})
    _, key = make_integration(channel=channel)
    push(client, key, event("api", "Warning"))
    lifecycle.incident_acknowledge(incident=Incident.objects.get(), by=ben, source=Source.WEB, now=clock.current)
    push(client, key, event("api", "Critical"))
    assert Incident.objects.get().severity == "Critical"
    assert pages(twilio, mailoutbox) == [("ann@example.com", "email")]
    assert not any("severity rose" in message for message in timeline())


def test_a_lower_severity_or_a_lowering_pages_nobody(client, clock, twilio, ann, mailoutbox):
    channel = make_channel(group_keys=["service"])
    rule_with_levels(
        channel, {"people": [ann], "info": ["email"], "warning": ["email"], "critical": ["email", "sms", "voice"]}
    )
    _, key = make_integration(channel=channel)
    push(client, key, event("a", "Critical", service="api"))
    push(client, key, event("b", "Warning", service="api"))
    push(client, key, event("c", "Info", service="api"))
    push(client, key, event("a", "Ok", service="api"))  # the Critical alert recovers: the incident is Warning
    assert Incident.objects.get().severity == "Warning"
    push(client, key, event("c", "Warning", service="api"))
    assert sorted(pages(twilio, mailoutbox)) == [(ANN_PHONE, "sms"), (ANN_PHONE, "voice"), ("ann@example.com", "email")]
    assert not any("severity rose" in message for message in timeline())
    assert Delivery.objects.count() == 3


def test_a_severity_that_rises_again_after_falling_pages_nobody_twice(client, clock, twilio, ann, mailoutbox):
    channel = make_channel(group_keys=["service"])
    rule_with_levels(channel, {"people": [ann], "warning": [], "critical": ["sms"]})
    _, key = make_integration(channel=channel)
    push(client, key, event("a", "Warning", service="api"))
    push(client, key, event("b", "Critical", service="api"))
    push(client, key, event("b", "Ok", service="api"))
    push(client, key, event("c", "Critical", service="api"))
    assert Incident.objects.count() == 1 and Incident.objects.get().severity == "Critical"
    assert pages(twilio, mailoutbox) == [(ANN_PHONE, "sms")]
    assert timeline().count(AGAIN.format(n=1, severity="Critical", who="ann (sms)")) == 1
    assert AGAIN.format(n=1, severity="Critical", who="nobody it had not notified that way already") in timeline()


def test_a_rise_reports_only_the_skips_the_level_had_not_reported(client, clock, mailoutbox):
    """Level 1 texts for Warning and texts and calls for Critical; cy has no phone. The Warning page reports
    "Skipped cy (sms)". The rise to Critical has one new thing to say (his call is skipped too); the text skip is
    already on the timeline and is not written again."""
    cy = make_user("cy")  # no phone
    channel = make_channel()
    rule_with_levels(channel, {"people": [cy], "warning": ["email", "sms"], "critical": ["email", "sms", "voice"]})
    _, key = make_integration(channel=channel)
    push(client, key, event("api", "Warning"))
    assert [m for m in timeline() if m.startswith("Skipped cy")] == ["Skipped cy (sms): no verified sms contact."]

    clock.advance(minutes=1)
    push(client, key, event("api", "Critical"))
    assert Incident.objects.get().severity == "Critical"
    assert [m for m in timeline() if m.startswith("Skipped cy")] == [
        "Skipped cy (sms): no verified sms contact.",
        "Skipped cy (voice): no verified voice contact.",
    ]
    again = Incident.objects.get().timeline.filter(kind="notified").last()
    assert again.message == AGAIN.format(n=1, severity="Critical", who="nobody it had not notified that way already")
    assert [(s["person_id"], s["method"]) for s in again.detail["skipped"]] == [(cy.pk, "voice")]


def test_a_level_that_follows_preferences_reaches_people_their_way_for_the_new_severity(
    client, clock, twilio, ann, ben, mailoutbox
):
    person_preferences_set(person=ann, preferences={"Warning": ["email"], "Critical": ["email", "voice"]})
    person_preferences_set(person=ben, preferences={"Warning": [], "Critical": ["sms"]})
    channel = make_channel()
    rule_with_levels(channel, {"people": [ann, ben], "follow_preferences": True})
    _, key = make_integration(channel=channel)
    push(client, key, event("api", "Warning"))
    assert pages(twilio, mailoutbox) == [("ann@example.com", "email")]
    push(client, key, event("api", "Critical"))
    assert sorted(pages(twilio, mailoutbox)) == [(ANN_PHONE, "voice"), (BEN_PHONE, "sms"), ("ann@example.com", "email")]


def critical_room(twilio):
    """A DingTalk bot that takes Critical incidents only."""
    twilio.dingtalk_tokens["CRIT"] = "SECcrit"
    return make_bot(
        "dingtalk",
        twilio.url("/dingtalk/robot/send?access_token=CRIT"),
        name="Critical room",
        secret="SECcrit",
        severities=["Critical"],
    )


def test_only_a_bot_that_left_out_the_old_severity_posts_on_a_rise_and_only_once(
    client, clock, twilio, ann, mailoutbox
):
    """A bot that posted the Warning trigger already has the incident; a Critical-only bot hears of it now."""
    twilio.dingtalk_tokens["ALL"] = "SECall"
    everything = make_bot("dingtalk", twilio.url("/dingtalk/robot/send?access_token=ALL"), secret="SECall")
    critical = critical_room(twilio)
    channel = make_channel(group_keys=["service"])
    rule_with_levels(
        channel, {"people": [ann], "warning": ["email"], "critical": ["sms"], "bots": [everything, critical]}
    )
    _, key = make_integration(channel=channel)
    push(client, key, event("a", "Warning", service="api"))
    assert len(posts(twilio, "ALL")) == 1
    assert posts(twilio, "CRIT") == []

    push(client, key, event("b", "Critical", service="api"))
    push(client, key, event("b", "Ok", service="api"))
    push(client, key, event("c", "Critical", service="api"))

    assert len(posts(twilio, "ALL")) == 1, "it had the incident already"
    [post] = posts(twilio, "CRIT")
    number = Incident.objects.get().number
    assert post.json["markdown"]["title"] == f"[Critical] #{number} a errors"
    assert "Posted to DingTalk bot Critical room." in timeline()
    assert pages(twilio, mailoutbox) == [(ANN_PHONE, "sms"), ("ann@example.com", "email")]


def test_a_level_that_only_posts_to_bots_says_on_a_rise_only_what_its_bots_did(client, clock, twilio):
    """As when it first ran: a level naming nobody to page has no "notified nobody" line beside its bots' lines."""
    critical = critical_room(twilio)
    channel = make_channel(group_keys=["service"])
    rule_with_levels(channel, {"bots": [critical]})
    _, key = make_integration(channel=channel)
    push(client, key, event("a", "Warning", service="api"))
    push(client, key, event("b", "Critical", service="api"))

    assert len(posts(twilio, "CRIT")) == 1
    assert "Posted to DingTalk bot Critical room." in timeline()
    assert [line for line in timeline() if "nobody" in line] == []


def critical_when_level_two_is_due(client, clock, patch, ann, ben) -> None:
    """Level 1 emails ann for Warning (texts for Critical), level 2 after 5 minutes does the same for ben: a Warning
    alert, then at level 2's time the alert turns Critical, its rise not dispatched yet (`patch` holds dispatch
    back: the ticker dispatches it later)."""
    channel = make_channel()
    rule_with_levels(
        channel,
        {"people": [ann], "warning": ["email"], "critical": ["sms"], "after": 5},
        {"people": [ben], "warning": ["email"], "critical": ["sms"]},
    )
    _, key = make_integration(channel=channel)
    push(client, key, event("api", "Warning"))
    clock.advance(minutes=5)
    patch.setattr(events, "incident_events_dispatch", lambda **kw: 0)
    push(client, key, event("api", "Critical"))


def test_a_rise_dispatched_after_the_next_level_ran_for_critical_pages_nobody_twice(
    client, clock, twilio, ann, ben, mailoutbox, monkeypatch
):
    """The level's timer wins the incident's lock: level 2 runs for Critical (the rise is committed), then the rise
    is dispatched and finds level 2 has sent all of it."""
    with monkeypatch.context() as patch:
        critical_when_level_two_is_due(client, clock, patch, ann, ben)
        timer = Timer.objects.get(done_at__isnull=True)
        assert escalation_services.timer_fire(timer_id=timer.pk, now=clock.current) == "ran"
    assert pages(twilio, mailoutbox) == [(BEN_PHONE, "sms"), ("ann@example.com", "email")]

    assert events.incident_events_dispatch(incident_id=Incident.objects.get().pk) == 2  # the rise, level 2's
    assert pages(twilio, mailoutbox) == [(BEN_PHONE, "sms"), ("ann@example.com", "email")]
    assert AGAIN.format(n=2, severity="Critical", who="nobody it had not notified that way already") in timeline()


def test_a_rise_and_the_levels_timer_racing_page_each_person_once(
    client, clock, twilio, ann, ben, mailoutbox, monkeypatch
):
    """Two threads (two processes' connections): one dispatches the rise, the other runs level 2's timer."""
    with monkeypatch.context() as patch:
        critical_when_level_two_is_due(client, clock, patch, ann, ben)
    timer_id = Timer.objects.get(done_at__isnull=True).pk
    incident_id = Incident.objects.get().pk
    barrier, errors = threading.Barrier(2), []

    def run(job) -> None:
        try:
            barrier.wait()
            job()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(lambda: events.incident_events_dispatch(incident_id=incident_id),)),
        threading.Thread(
            target=run, args=(lambda: escalation_services.timer_fire(timer_id=timer_id, now=clock_module.now()),)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    later(clock, minutes=1)  # a send held back while the other was in flight to the same host goes now
    sent = pages(twilio, mailoutbox)
    assert Counter(sent).most_common(1)[0][1] == 1, sent
    assert (BEN_PHONE, "sms") in sent, "level 2 for Critical"
    [again] = [message for message in timeline() if "because the severity rose" in message]
    if again.startswith("Level 1"):  # the rise went first: level 1 was texted for Critical, then level 2 ran
        assert again == AGAIN.format(n=1, severity="Critical", who="ann (sms)")
        assert sorted(sent) == [(ANN_PHONE, "sms"), (BEN_PHONE, "sms"), ("ann@example.com", "email")]
    else:  # the timer went first: level 2 ran for Critical and had sent everything the rise asks for
        assert again == AGAIN.format(n=2, severity="Critical", who="nobody it had not notified that way already")
        assert sorted(sent) == [(BEN_PHONE, "sms"), ("ann@example.com", "email")]


def test_a_severity_raised_by_hand_pages_the_level_for_it_but_not_once_someone_acknowledged(
    client, clock, twilio, ann, ben, mailoutbox
):
    """A person raising a triggered incident to Critical (the incident page, the API) pages as an alert's rise does;
    raising an acknowledged one pages nobody: someone is on it."""
    channel = make_channel()
    rule_with_levels(channel, {"people": [ann], "warning": ["email"], "critical": ["email", "sms"], "after": 5})
    _, key = make_integration(channel=channel)
    push(client, key, event("api", "Warning"))
    incident = Incident.objects.get()
    clock.advance(minutes=1)
    lifecycle.incident_edit(incident=incident, by=ben, source=Source.WEB, now=clock.current, severity="Critical")
    assert sorted(pages(twilio, mailoutbox)) == [(ANN_PHONE, "sms"), ("ann@example.com", "email")]
    assert AGAIN.format(n=1, severity="Critical", who="ann (sms)") in timeline()

    lifecycle.incident_edit(incident=incident, by=ben, source=Source.WEB, now=clock.current, severity="Warning")
    lifecycle.incident_acknowledge(incident=incident, by=ann, source=Source.WEB, now=clock.current)
    lifecycle.incident_edit(incident=incident, by=ben, source=Source.WEB, now=clock.current, severity="Critical")
    later(clock, seconds=30)
    assert len(pages(twilio, mailoutbox)) == 2, "an acknowledged incident raised by hand pages nobody"
