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
from oncall.models.intake import Channel, Integration
from oncall.models.people import ApiToken, Team, User

__all__ = [
    "Alert",
    "AlertProgress",
    "ApiToken",
    "Channel",
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
