"""What the escalation rule admin's add form posts, for tests that save a rule through it."""

from __future__ import annotations


def one_level_rule_form(channel, name: str, **level) -> dict:
    """The POST data of a new rule of `channel` with one level emailing on Critical after 30 minutes; `level` adds
    the level's own fields (people, teams, schedule_targets, emails, bots...) without the "levels-0-" prefix."""
    data = {
        "channel": channel.pk,
        "name": name,
        "priority": 10,
        "enabled": "on",
        "description": "",
        "delay_seconds": 0,
        "time_windows": "[]",
        "filters": "[]",
        "levels-TOTAL_FORMS": 1,
        "levels-INITIAL_FORMS": 0,
        "levels-MIN_NUM_FORMS": 1,
        "levels-MAX_NUM_FORMS": 1000,
        "levels-0-position": 0,
        "levels-0-critical_methods": ["email"],
        "levels-0-escalate_after_minutes": 30,
        "levels-0-emails": "[]",
        "levels-0-repeat_times": 0,
        "levels-0-repeat_every_minutes": 10,
    }
    return {**data, **{f"levels-0-{field}": value for field, value in level.items()}}
