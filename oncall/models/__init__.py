from oncall.models.incidents import (
    Alert,
    AlertProgress,
    EventStatus,
    Incident,
    IncidentEvent,
    Progress,
    Responder,
    Severity,
    Source,
    TimelineEntry,
)
from oncall.models.intake import Channel, EventBatch, Integration
from oncall.models.people import ApiToken, Team, User

__all__ = [
    "Alert",
    "AlertProgress",
    "ApiToken",
    "Channel",
    "EventBatch",
    "EventStatus",
    "Incident",
    "IncidentEvent",
    "Integration",
    "Progress",
    "Responder",
    "Severity",
    "Source",
    "Team",
    "TimelineEntry",
    "User",
]
