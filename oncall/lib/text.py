"""Text the database can store (PostgreSQL refuses NUL characters and unpaired UTF-16 surrogates in text and JSON),
and text an XML document can carry."""

from __future__ import annotations

import re

_NEEDS_CLEANING = re.compile(r"\\u0000|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# XML 1.0 (§2.2, Char) allows tab, newline and carriage return but no other C0 control, no lone surrogate and
# neither U+FFFE nor U+FFFF; one of them makes the whole document unreadable (Twilio: error 12100).
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# An ANSI escape sequence (a colour, a cursor move), as log lines put them in alert titles: ESC [ … final byte.
_ANSI_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def json_needs_cleaning(document: str) -> bool:
    """Whether a JSON document may decode to text that needs `clean` (a cheap test on its text). Decoded strictly
    from UTF-8 it holds no surrogate, and JSON refuses a raw NUL in a string: only their escapes can bring them."""
    return _NEEDS_CLEANING.search(document) is not None


def clean(value: object) -> object:
    """`value` (decoded JSON) with NULs removed and unpaired surrogates replaced by "?", in keys and values.

    Walked with a stack of its own rather than by recursion: a body may nest as deep as the JSON reader allows,
    deeper than Python's call stack would go here, and it must still be cleaned, not refused with a 500."""
    pending: list[tuple[list | dict, list | dict]] = []

    def copy(item: object) -> object:
        # A container is copied empty and filled when its turn on the stack comes; anything else is cleaned now.
        if isinstance(item, list | dict):
            empty: list | dict = [] if isinstance(item, list) else {}
            pending.append((item, empty))
            return empty
        return _clean_leaf(item)

    result = copy(value)
    while pending:
        source, target = pending.pop()
        if isinstance(source, list):
            target.extend(copy(item) for item in source)
        else:
            for key, item in source.items():
                target[_clean_leaf(key)] = copy(item)
    return result


def _clean_leaf(value: object) -> object:
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return value


def strip_ansi(text: str) -> str:
    """`text` without ANSI escape sequences (colours, cursor moves): they mean nothing outside a terminal."""
    return _ANSI_SEQUENCE.sub("", text) if "\x1b" in text else text


def xml_safe(text: str) -> str:
    """`text` without ANSI escape sequences, and with every other character XML 1.0 forbids (C0 controls but tab,
    newline and carriage return; lone surrogates; U+FFFE, U+FFFF) replaced by a space."""
    return _NOT_XML_CHAR.sub(" ", strip_ansi(text))
