"""Log records name what they are about, in the text and JSON formats, and worker tasks bind their ids."""

import io
import json
import logging

import pytest

from channels_app import tasks as channel_tasks
from escalation import tasks as escalation_tasks
from oncall import tasks as core_tasks
from oncall.lib.logs import ContextFilter, json_formatter, log_context


@pytest.fixture
def captured():
    """A root handler set up like the console one, with the chosen formatter; yields a function reading its output."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.INFO)

    def use(formatter: logging.Formatter) -> io.StringIO:
        handler.setFormatter(formatter)
        return stream

    yield use
    root.removeHandler(handler)
    root.setLevel(previous_level)


TEXT = logging.Formatter("%(levelname)s %(message)s%(context)s")


def test_an_id_bound_inside_a_block_is_carried_for_the_rest_of_it(captured):
    stream = captured(TEXT)
    log = logging.getLogger("oncall.test")
    with log_context(timer_id=3) as bind:
        log.info("locking")
        bind(incident_id=7, delivery_id=None)
        log.info("locked")
    log.info("outside")
    assert stream.getvalue().splitlines() == [
        "INFO locking timer_id=3",
        "INFO locked incident_id=7 timer_id=3",
        "INFO outside",
    ]


def test_text_lines_carry_the_bound_ids_and_lose_them_outside_the_block(captured):
    stream = captured(TEXT)
    log = logging.getLogger("oncall.test")
    with log_context(incident_id=7):
        with log_context(delivery_id=12, timer_id=None):
            log.info("sending")
        log.info("back")
    log.info("outside")
    assert stream.getvalue().splitlines() == [
        "INFO sending incident_id=7 delivery_id=12",
        "INFO back incident_id=7",
        "INFO outside",
    ]


def test_json_objects_carry_the_ids_as_fields(captured):
    stream = captured(json_formatter())
    with log_context(integration_id=3):
        logging.getLogger("oncall.test").warning("batch %s failed", 9, extra={"incident_id": 4})
    record = json.loads(stream.getvalue())
    assert record["message"] == "batch 9 failed"
    assert record["level"] == "WARNING"
    assert record["logger"] == "oncall.test"
    assert record["integration_id"] == 3
    assert record["incident_id"] == 4
    assert "context" not in record


@pytest.mark.parametrize(
    ("task", "module", "function", "argument", "field"),
    [
        (channel_tasks.delivery_send, channel_tasks.services, "delivery_send", "delivery_id", "delivery_id"),
        (escalation_tasks.timer_fire, escalation_tasks.services, "timer_fire", "timer_id", "timer_id"),
        (
            escalation_tasks.shift_reminder_send,
            escalation_tasks.reminders,
            "shift_reminder_send",
            "reminder_id",
            "reminder_id",
        ),
        (core_tasks.batches_process, core_tasks.ingest, "batches_process", "integration_id", "integration_id"),
    ],
)
def test_worker_tasks_bind_the_id_they_work_on(captured, monkeypatch, task, module, function, argument, field):
    stream = captured(json_formatter())

    def service(**kwargs):
        logging.getLogger("oncall.test").info("working")

    monkeypatch.setattr(module, function, service)
    task(41)
    assert json.loads(stream.getvalue())[field] == 41


@pytest.mark.django_db(transaction=True)
def test_a_page_is_followed_by_its_incident_id_from_the_level_to_the_provider_call(captured, client, clock, fakes):
    """The level that notifies, the delivery's attempt and its HTTP call each name the incident."""
    from oncall.models import Incident
    from tests.factories import make_bot, make_user
    from tests.integration.botkit import fire, paging_setup

    stream = captured(json_formatter())
    key = paging_setup(people=[make_user("ann")], bots=[make_bot("webhook", fakes.url("/hook/ops"))])
    fire(client, key)
    incident = Incident.objects.get()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    http_calls = [r for r in records if r["logger"] == "oncall.lib.http"]
    assert http_calls, records
    assert all(r.get("incident_id") == incident.pk and r.get("delivery_id") for r in http_calls), http_calls
