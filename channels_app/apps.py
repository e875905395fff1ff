from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsAppConfig(AppConfig):
    """How messages reach people: notification methods, bots, templates and deliveries."""

    name = "channels_app"
    label = "channels_app"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from channels_app import checks, tracking  # noqa: F401  (registers the registry check, the email tracking receiver)
