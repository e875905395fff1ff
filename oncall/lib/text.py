"""Text the database can store: PostgreSQL refuses NUL characters and unpaired UTF-16 surrogates in text and JSON."""

from __future__ import annotations

import re

_NEEDS_CLEANING = re.compile(r"\\u0000|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def json_needs_cleaning(document: str) -> bool:
    """Whether a JSON document may decode to text that needs `clean` (a cheap test on its text). Decoded strictly
    from UTF-8 it holds no surrogate, and JSON refuses a raw NUL in a string: only their escapes can bring them."""
    return _NEEDS_CLEANING.search(document) is not None


def clean(value: object) -> object:
    """`value` (decoded JSON) with NULs removed and unpaired surrogates replaced by "?", in keys and values."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [clean(item) for item in value]
    if isinstance(value, dict):
        return {clean(key): clean(item) for key, item in value.items()}
    return value
