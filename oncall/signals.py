"""The one domain signal: something happened to an incident.

Sent by `oncall.services.events` for each `IncidentEvent` row, after the change it announces has committed, inside
the transaction that marks the event dispatched. Receivers (escalation's, in one place) therefore run at least
once per event and must be idempotent; they may write rows and enqueue work on commit.

Arguments: `event` (the IncidentEvent), `incident` (locked Incident row), `now` (datetime).
"""

from django.dispatch import Signal

incident_event = Signal()
