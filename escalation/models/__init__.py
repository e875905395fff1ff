from escalation.models.rules import EscalationLevel, EscalationRule, EscalationState, Timer
from escalation.models.schedules import (
    CalendarFeed,
    Layer,
    LayerMember,
    LevelSchedule,
    Override,
    Role,
    Schedule,
    ShiftReminder,
)

__all__ = [
    "CalendarFeed",
    "EscalationLevel",
    "EscalationRule",
    "EscalationState",
    "Layer",
    "LayerMember",
    "LevelSchedule",
    "Override",
    "Role",
    "Schedule",
    "ShiftReminder",
    "Timer",
]
