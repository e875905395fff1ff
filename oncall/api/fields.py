"""Serializer fields shared by the API's inputs."""

from __future__ import annotations

from rest_framework import serializers

from oncall.lib.ids import ID_MAX


class IdField(serializers.IntegerField):
    """The id of a row: a whole number from 1 to ID_MAX, so an absurd one is a 400 naming the field."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", ID_MAX)
        super().__init__(**kwargs)
