"""System checks: every registered provider imports and names itself as registered."""

from __future__ import annotations

from django.core import checks
from django.utils.module_loading import import_string

from channels_app.base import NotificationMethod
from channels_app.registry import METHODS


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
    return errors
