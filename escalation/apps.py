from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EscalationConfig(AppConfig):
    """Escalation rules, levels, timers and the ticker; the receiver of incident events."""

    name = "escalation"
    label = "escalation"
    verbose_name = _("Escalation")

    def ready(self) -> None:
        from escalation import receivers  # noqa: F401  (connects the incident event receiver)
