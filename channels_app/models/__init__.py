"""The models of channels_app: template sets and deliveries (deliveries.py), bots and mapping tables (bots.py)."""

from channels_app.models.bots import Bot, BotSend, MappingEntry, MappingTable
from channels_app.models.deliveries import DailyUsage, Delivery, TemplateSet

__all__ = ["Bot", "BotSend", "DailyUsage", "Delivery", "MappingEntry", "MappingTable", "TemplateSet"]
