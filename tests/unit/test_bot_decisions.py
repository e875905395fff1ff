"""The bot decisions as pure functions: which bots post (filters), when a message may go (pacing), what an IM
user id looks like per platform, and the mapping tables' CSV format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from channels_app.base import RateLimit
from channels_app.bots.filters import BOT_EVENTS, BotFilter, bot_skip_reason
from channels_app.bots.mapping import CsvErrors, csv_parse, csv_write, im_id_check
from channels_app.bots.pacing import Waiting, next_slot, queue_slots
from channels_app.providers import dingtalk, wecom
from escalation.engine import LevelPlan, Snapshot

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- filters ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bot", "severity", "event", "posts"),
    [
        (BotFilter(), "Info", "triggered", True),
        (BotFilter.of(enabled=True, severities=["Critical"], events=[]), "Critical", "closed", True),
        (BotFilter.of(enabled=True, severities=["Critical"], events=[]), "Warning", "triggered", False),
        (BotFilter.of(enabled=True, severities=[], events=["triggered", "closed"]), "Info", "closed", True),
        (BotFilter.of(enabled=True, severities=[], events=["triggered", "closed"]), "Info", "acknowledged", False),
        (BotFilter.of(enabled=False, severities=[], events=[]), "Critical", "triggered", False),
        (
            BotFilter.of(enabled=True, severities=["Critical", "Warning"], events=list(BOT_EVENTS)),
            "Info",
            "woken",
            False,
        ),
    ],
)
def test_a_bot_posts_only_what_its_filters_let_through(bot, severity, event, posts):
    reason = bot_skip_reason(bot, severity=severity, event=event)
    assert (reason == "") is posts


def test_the_skip_reason_says_which_filter():
    only_critical = BotFilter.of(enabled=True, severities=["Critical"], events=["triggered"])
    assert bot_skip_reason(only_critical, severity="Info", event="triggered") == "severity Info is not selected"
    assert bot_skip_reason(only_critical, severity="Critical", event="closed") == "it is not subscribed to closed"
    assert bot_skip_reason(BotFilter(enabled=False), severity="Info", event="closed") == "the bot is disabled"


# -- pacing -------------------------------------------------------------------------------------------------------

DINGTALK = (RateLimit(20, 60),)
FEISHU = (RateLimit(5, 1), RateLimit(100, 60))


def schedule(limits, count: int, *, now: datetime = T0, weight: int = 1, paused_until=None) -> list[datetime]:
    """Reserve `count` messages one after the other, all asked for at `now`."""
    reserved: list[datetime] = []
    for _ in range(count):
        slot = next_slot(reserved=reserved, limits=limits, now=now, paused_until=paused_until, weight=weight)
        reserved.extend([slot] * weight)
    return reserved


def max_in_window(times: list[datetime], seconds: float) -> int:
    window = timedelta(seconds=seconds)
    return max(sum(1 for other in times if start <= other < start + window) for start in times)


def test_twenty_go_at_once_and_the_next_wait_a_full_window():
    slots = schedule(DINGTALK, 45)
    assert slots[:20] == [T0] * 20
    assert slots[20:40] == [at(60)] * 20
    assert slots[40:] == [at(120)] * 5
    assert max_in_window(slots, 60) == 20


def test_two_limits_at_once_both_hold():
    slots = schedule(FEISHU, 120)
    assert max_in_window(slots, 1) <= 5 and max_in_window(slots, 60) <= 100
    assert slots[5] == at(1) and slots[100] >= at(60)


def test_one_per_second_spaces_every_message():
    assert schedule((RateLimit(1, 1),), 4) == [T0, at(1), at(2), at(3)]


def test_a_pause_holds_everything_until_it_ends_and_order_is_kept():
    assert schedule(DINGTALK, 3, paused_until=at(60)) == [at(60)] * 3
    reserved = [at(50)]
    assert next_slot(reserved=reserved, limits=DINGTALK, now=T0) == at(50)  # never ahead of an earlier message


def test_a_message_of_two_requests_counts_twice():
    slots = schedule(DINGTALK, 11, weight=2)
    assert slots.count(T0) == 20 and slots[20:] == [at(60)] * 2


def test_without_limits_a_message_goes_now():
    assert next_slot(reserved=[], limits=(), now=T0) == T0


def test_after_a_pause_the_waiting_messages_go_in_their_order_within_the_limit():
    """DingTalk's 20 in any 61 s: the refused request (at 0 s) still counts, so 19 go when the pause ends, one
    more when it leaves the window, the rest a window later; the refused message, written first, goes first."""
    limits = (RateLimit(20, 61),)
    waiting = [Waiting(not_before=at(60)), *[Waiting()] * 24]
    slots = queue_slots(reserved=[T0], limits=limits, now=T0, paused_until=at(60), waiting=waiting)
    assert slots == [at(60)] * 19 + [at(61)] + [at(121)] * 5
    assert max_in_window([T0, *slots], 61) == 20


def test_a_message_that_may_not_go_yet_holds_back_the_ones_behind_it():
    waiting = [Waiting(), Waiting(not_before=at(30)), Waiting(weight=2)]
    assert queue_slots(reserved=[], limits=DINGTALK, now=T0, waiting=waiting) == [T0, at(30), at(30)]
    assert queue_slots(reserved=[], limits=(RateLimit(1, 1),), now=T0, waiting=waiting) == [T0, at(30), at(31)]


# -- mapping tables -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "valid", "invalid"),
    [
        ("feishu", "ou_7d8a6e6df7621556ce0d21922b676706", "on_7d8a6e6df7621556ce0d21922b676706"),
        ("wecom", "zhang.san@corp", "zhang san"),
        ("zoom", "kdykjnimt4kpd8kku0ysw@xmpp.zoom.us", "jane@zoom.us"),
        ("slack", "U012AB3CD", "u012ab3cd"),
        ("telegram", "123456789", "-100123"),
        ("teams", "jane@contoso.com", "Jane Doe"),
        ("teams", "8:orgid:2f0b8b1c-1d2e-4f5a-9b8c-7d6e5f4a3b2c", "8:orgid:nope"),
    ],
)
def test_ids_are_checked_per_platform(platform, valid, invalid):
    assert im_id_check(platform, valid) == ""
    assert im_id_check(platform, invalid) != ""


def test_a_csv_reads_back_what_was_written():
    rows = [("alice@example.com", "U012AB3CD"), ("bob@example.com", "W0456EF7G")]
    parsed = csv_parse(csv_write(rows), platform="slack")
    assert [(row.email, row.im_id) for row in parsed] == rows
    assert [row.line for row in parsed] == [2, 3]


def test_a_csv_without_a_header_and_with_blank_lines_and_a_bom():
    parsed = csv_parse("\ufeffalice@example.com, 123\n\n bob@example.com ,456\n", platform="telegram")
    assert [(row.email, row.im_id, row.line) for row in parsed] == [
        ("alice@example.com", "123", 1),
        ("bob@example.com", "456", 3),
    ]


def test_a_bad_csv_names_every_bad_line_and_imports_nothing():
    text = (
        "email,im_id\n"
        "alice@example.com,U012AB3CD\n"
        "not-an-email,U999999\n"
        "bob@example.com,bob\n"
        "carol@example.com\n"
        "ALICE@example.com,U0000000\n"
    )
    with pytest.raises(CsvErrors) as caught:
        csv_parse(text, platform="slack")
    errors = caught.value.errors
    assert [error.split(":")[0] for error in errors] == ["line 3", "line 4", "line 5", "line 6"]
    assert "'not-an-email' is not an email address" in errors[0]
    assert "'bob' is not a Slack member id" in errors[1]
    assert "expected two columns" in errors[2]
    assert "also on line 2" in errors[3]


# -- phone numbers for mentions -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e164", "dingtalk_form", "wecom_form"),
    [
        ("+8613800000000", "13800000000", "13800000000"),
        ("+85291234567", "+852-91234567", "+85291234567"),
        ("+14155550100", "+1-4155550100", "+14155550100"),
    ],
)
def test_mobile_numbers_as_dingtalk_and_wecom_know_them(e164, dingtalk_form, wecom_form):
    assert dingtalk.mobile(e164) == dingtalk_form
    assert wecom.mobile(e164) == wecom_form


# -- the frozen rule ----------------------------------------------------------------------------------------------


def test_a_levels_bots_are_frozen_with_the_rule_and_old_snapshots_still_load():
    snapshot = Snapshot(1, "Default", (LevelPlan(people=(1,), bots=(3, 4)), LevelPlan(bots=(4, 5))))
    again = Snapshot.from_json(snapshot.to_json())
    assert again == snapshot and again.bot_ids() == (3, 4, 5)
    old = snapshot.to_json()
    for level in old["levels"]:
        del level["bots"]
    assert Snapshot.from_json(old).bot_ids() == ()
