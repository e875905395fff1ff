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
from oncall.models.intake import Channel, EventBatch, Integration, RoutingRule
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
    "RoutingRule",
    "Severity",
    "Source",
    "Team",
    "TimelineEntry",
    "User",
]
