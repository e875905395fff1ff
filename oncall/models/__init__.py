from oncall.models.contacts import Contact, Device, DeviceLinkToken, NotificationPreference, VerificationCode
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
from oncall.models.intake import Channel, EventBatch, IngestTask, Integration, RoutingRule
from oncall.models.people import ApiToken, Team, User

__all__ = [
    "Alert",
    "AlertProgress",
    "ApiToken",
    "Channel",
    "Contact",
    "Device",
    "DeviceLinkToken",
    "EventBatch",
    "EventStatus",
    "Incident",
    "IncidentEvent",
    "IngestTask",
    "Integration",
    "NotificationPreference",
    "Progress",
    "Responder",
    "RoutingRule",
    "Severity",
    "Source",
    "Team",
    "TimelineEntry",
    "User",
    "VerificationCode",
]
