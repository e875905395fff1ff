"""The admin of escalation: rules and running escalations, and schedules."""

from escalation.admin import rules, schedules  # noqa: F401  (importing them registers their admin classes)
