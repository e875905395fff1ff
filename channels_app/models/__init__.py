"""The models of channels_app: template sets and deliveries (deliveries.py), bots and mapping tables (bots.py), and
the health of providers with the attempts in flight to them (providers.py)."""

from channels_app.models.bots import Bot, BotSend, MappingEntry, MappingTable
from channels_app.models.deliveries import DailyUsage, Delivery, TemplateSet
from channels_app.models.providers import ProviderCall, ProviderHealth

__all__ = [
    "Bot",
    "BotSend",
    "DailyUsage",
    "Delivery",
    "MappingEntry",
    "MappingTable",
    "ProviderCall",
    "ProviderHealth",
    "TemplateSet",
]
