"""Notification templates: slots, the sandbox they render in, their context, limits and defaults.

`render_slot`/`render_slots` are what senders use; `sample_context` and `check_body` serve the admin.
"""

from channels_app.templating.context import EVENTS, build_context
from channels_app.templating.render import Rendered, TemplateFailure, check_body, render_body, render_slot, render_slots
from channels_app.templating.sample import sample_context
from channels_app.templating.slots import SLOTS, MarkupKind, Slot, Unit, slot

__all__ = [
    "EVENTS",
    "SLOTS",
    "MarkupKind",
    "Rendered",
    "Slot",
    "TemplateFailure",
    "Unit",
    "build_context",
    "check_body",
    "render_body",
    "render_slot",
    "render_slots",
    "sample_context",
    "slot",
]
