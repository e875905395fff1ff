"""JSON boxes in the admin: one left empty saves its field's empty value ([] or {}), as their help texts promise
("empty: always", "empty: all"). Django's JSON form field reads an empty box as None, which a field that may be
blank but not null cannot store: saving it was a server error (IntegrityError NOT NULL). Admin classes and inlines
with a JSON box mix in `EmptyJSONBoxes`; a test checks every admin form of the project."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.db import models


class EmptyJSONField(forms.JSONField):
    """A JSON box whose empty value (an empty box, or `null`) is `empty()` rather than None."""

    def __init__(self, *, empty: Callable[[], Any], **kwargs) -> None:
        self.empty = empty
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return self.empty() if value is None else value


class EmptyJSONBoxes:
    """For a ModelAdmin or an inline: its boxes for JSON fields that may be blank but not null use EmptyJSONField,
    empty meaning the field's default."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.JSONField) and db_field.blank and not db_field.null:
            kwargs.setdefault("form_class", EmptyJSONField)
            kwargs.setdefault("empty", db_field.get_default)
        return super().formfield_for_dbfield(db_field, request, **kwargs)
