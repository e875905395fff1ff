"""The explicit lists of notification methods and bot kinds. Adding one is its module, its template, its tests and
one line here.

A Django system check (channels_app.checks) imports every entry at start-up, so a broken entry stops the
platform from starting instead of failing during the first incident.
"""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import import_string

from channels_app.base import BotProvider, NotificationMethod

METHODS: dict[str, str] = {
    "app": "channels_app.providers.app.AppMethod",
    "voice": "channels_app.providers.voice.VoiceMethod",
    "sms": "channels_app.providers.sms.SmsMethod",
    "email": "channels_app.providers.email.EmailMethod",
}

# The method keys as one list, for the OpenAPI schema's one enum of them (SPECTACULAR_SETTINGS).
METHOD_KEYS = list(METHODS)


class UnknownMethod(KeyError):
    pass


@cache
def method(key: str) -> NotificationMethod:
    """The notification method registered under `key`."""
    try:
        path = METHODS[key]
    except KeyError:
        raise UnknownMethod(key) from None
    return import_string(path)()


def method_choices() -> list[tuple[str, str]]:
    return [(key, str(method(key).label)) for key in METHODS]


BOTS: dict[str, str] = {
    "dingtalk": "channels_app.providers.dingtalk.DingTalkBot",
    "feishu": "channels_app.providers.feishu.FeishuBot",
    "wecom": "channels_app.providers.wecom.WeComBot",
    "slack": "channels_app.providers.slack.SlackBot",
    "zoom": "channels_app.providers.zoom.ZoomBot",
    "telegram": "channels_app.providers.telegram.TelegramBot",
    "teams": "channels_app.providers.teams.TeamsBot",
    "webhook": "channels_app.providers.webhook.WebhookBot",
}


class UnknownBotKind(KeyError):
    pass


@cache
def bot_kind(key: str) -> BotProvider:
    """The bot provider registered under `key`."""
    try:
        path = BOTS[key]
    except KeyError:
        raise UnknownBotKind(key) from None
    return import_string(path)()


def bot_kind_choices() -> list[tuple[str, str]]:
    return [(key, bot_kind(key).label) for key in BOTS]
