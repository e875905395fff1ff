"""System checks: every registered provider imports and names itself as registered, every template slot it uses
exists, and every slot's default template is there and compiles."""

from __future__ import annotations

from django.core import checks
from django.utils.module_loading import import_string

from channels_app.base import BotProvider, NotificationMethod
from channels_app.bots.mapping import PLATFORMS
from channels_app.registry import BOTS, METHODS
from channels_app.templating import SLOTS, TemplateFailure
from channels_app.templating.render import compile_body, default_source


@checks.register()
def check_method_registry(app_configs, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    for key, path in METHODS.items():
        try:
            cls = import_string(path)
        except ImportError as exc:
            errors.append(checks.Error(f"Notification method {key!r}: cannot import {path}: {exc}", id="channels.E001"))
            continue
        if not (isinstance(cls, type) and issubclass(cls, NotificationMethod)):
            errors.append(checks.Error(f"{path} is not a NotificationMethod", id="channels.E002"))
        elif getattr(cls, "key", None) != key:
            errors.append(
                checks.Error(f"{path}.key is {getattr(cls, 'key', None)!r}, registered as {key!r}", id="channels.E003")
            )
        else:
            unknown = [name for name in getattr(cls, "slots", ()) if name not in SLOTS]
            if unknown or not getattr(cls, "slots", ()):
                errors.append(
                    checks.Error(f"{path}.slots names no template slot or unknown ones: {unknown}", id="channels.E004")
                )
    return errors


@checks.register()
def check_bot_registry(app_configs, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    for key, path in BOTS.items():
        try:
            cls = import_string(path)
        except ImportError as exc:
            errors.append(checks.Error(f"Bot kind {key!r}: cannot import {path}: {exc}", id="channels.E007"))
            continue
        if not (isinstance(cls, type) and issubclass(cls, BotProvider)):
            errors.append(checks.Error(f"{path} is not a BotProvider", id="channels.E008"))
        elif getattr(cls, "key", None) != key:
            errors.append(
                checks.Error(f"{path}.key is {getattr(cls, 'key', None)!r}, registered as {key!r}", id="channels.E009")
            )
        elif getattr(cls, "slot", None) not in SLOTS:
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
