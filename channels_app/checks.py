"""System checks: every registered provider imports and names itself as registered, every template slot it uses
exists, and every slot's default template is there and compiles."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from channels_app.acklinks import ack_url
from channels_app.base import BotProvider, NotificationMethod
from channels_app.bots.mapping import PLATFORMS
from channels_app.registry import BOTS, METHODS
from channels_app.templating import SLOTS, TemplateFailure
from channels_app.templating.limits import sms_segments
from channels_app.templating.render import compile_body, default_source


def _registered(registry: dict[str, str], base: type, noun: str, ids: tuple[str, str, str], errors: list):
    """The classes a registry names, each imported, a subclass of `base` and keyed as registered; a check error
    (with the given ids: cannot import, wrong base, wrong key) for every one that is not."""
    cannot_import, wrong_base, wrong_key = ids
    for key, path in registry.items():
        try:
            cls = import_string(path)
        except ImportError as exc:
            errors.append(checks.Error(f"{noun} {key!r}: cannot import {path}: {exc}", id=cannot_import))
            continue
        if not (isinstance(cls, type) and issubclass(cls, base)):
            errors.append(checks.Error(f"{path} is not a {base.__name__}", id=wrong_base))
        elif getattr(cls, "key", None) != key:
            errors.append(
                checks.Error(f"{path}.key is {getattr(cls, 'key', None)!r}, registered as {key!r}", id=wrong_key)
            )
        else:
            yield path, cls


@checks.register()
def check_method_registry(app_configs, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    ids = ("channels.E001", "channels.E002", "channels.E003")
    for path, cls in _registered(METHODS, NotificationMethod, "Notification method", ids, errors):
        unknown = [name for name in getattr(cls, "slots", ()) if name not in SLOTS]
        if unknown or not getattr(cls, "slots", ()):
            errors.append(
                checks.Error(f"{path}.slots names no template slot or unknown ones: {unknown}", id="channels.E004")
            )
    return errors


@checks.register()
def check_bot_registry(app_configs, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    ids = ("channels.E007", "channels.E008", "channels.E009")
    for path, cls in _registered(BOTS, BotProvider, "Bot kind", ids, errors):
        if getattr(cls, "slot", None) not in SLOTS:
            errors.append(checks.Error(f"{path}.slot names no template slot", id="channels.E010"))
        elif cls.mapping_platform is not None and cls.mapping_platform not in PLATFORMS:
            errors.append(checks.Error(f"{path}.mapping_platform is not a known platform", id="channels.E011"))
    return errors


@checks.register()
def check_default_templates(app_configs, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    for name, slot in SLOTS.items():
        try:
            compile_body(slot.markup, default_source(name))
        except OSError as exc:
            errors.append(checks.Error(f"Default template of slot {name!r} is missing: {exc}", id="channels.E005"))
        except TemplateFailure as exc:
            errors.append(checks.Error(f"Default template of slot {name!r}: {exc}", id="channels.E006"))
    return errors


@checks.register()
def check_send_lease(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """An attempt is leased to its worker for DELIVERY_SEND_LEASE_SECONDS, and its requests end by 80% of the lease
    (so the ticker never takes a live attempt for a dead one and sends it again); a provider may take
    HTTP_TOTAL_TIMEOUT to answer. A lease not above that cuts every slow provider short."""
    if settings.DELIVERY_SEND_LEASE_SECONDS > settings.HTTP_TOTAL_TIMEOUT:
        return []
    return [
        checks.Warning(
            f"DELIVERY_SEND_LEASE_SECONDS ({settings.DELIVERY_SEND_LEASE_SECONDS}) is not above HTTP_TOTAL_TIMEOUT "
            f"({settings.HTTP_TOTAL_TIMEOUT}): an attempt's requests end by 80% of its lease, so a provider that "
            "answers slowly is not waited for as long as HTTP_TOTAL_TIMEOUT says.",
            hint="Keep DELIVERY_SEND_LEASE_SECONDS well above HTTP_TOTAL_TIMEOUT (defaults: 45 and 15).",
            id="channels.W001",
        )
    ]


@checks.register()
def check_sms_ack_link(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """An SMS keeps its acknowledge link whole or leaves it out (limits.truncate_sms). A link that does not fit in
    SMS_MAX_SEGMENTS even alone (a long PUBLIC_URL with one segment) is left out of every SMS: say so at startup
    rather than let people find out at night."""
    link = ack_url(2**31 - 1)  # an incident id as long as they get
    if sms_segments(link).segments <= settings.SMS_MAX_SEGMENTS:
        return []
    return [
        checks.Warning(
            f"An acknowledge link ({len(link)} characters with PUBLIC_URL {settings.PUBLIC_URL}) does not fit in "
            f"SMS_MAX_SEGMENTS={settings.SMS_MAX_SEGMENTS} SMS segments: SMS are sent without it.",
            hint="Raise SMS_MAX_SEGMENTS, or serve the platform at a shorter PUBLIC_URL.",
            id="channels.W002",
        )
    ]
