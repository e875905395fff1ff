"""The models of channels_app: template sets and deliveries (deliveries.py)."""

from channels_app.models.deliveries import DailyUsage, Delivery, TemplateSet

__all__ = ["DailyUsage", "Delivery", "TemplateSet"]
