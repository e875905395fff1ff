"""The admin of channels_app: template sets, bots and mapping tables, deliveries."""

from channels_app.admin import bots, deliveries, templates  # noqa: F401  (each registers its model admins)
