"""How long a value's text is at least, found without building it.

A template can hold a list of 100 000 references to one 100 000-character string: each part is within the
sandbox's limits, but `str()`, `repr()`, `pprint` or JSON of the list would build 10^10 characters in one call,
before any check on the result. The sandbox asks `text_length` first and refuses what is too long.
"""

from __future__ import annotations

from collections.abc import ItemsView, KeysView, Mapping, ValuesView
from typing import Any

from jinja2.utils import Namespace

_SEQUENCES = (list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)


def text_length(value: Any, limit: int, indent: int = 0) -> int:
    """A lower bound of the length of `value` as text: `str()`, `repr()`, `pprint` or JSON (indented by `indent`).

    Counting stops as soon as it passes `limit`, so it takes at most about `limit` steps whatever the value's
    size, and a value that holds itself (a namespace can) cannot make it loop.
    """
    if isinstance(value, str):
        return len(value)
    total = 0
    pending: list[Any] = [value]
    while pending and total <= limit:
        item = pending.pop()
        nested = item is not value
        if isinstance(item, str):
            total += len(item) + (2 if nested else 0)  # quotes, inside a list or a dict
        elif isinstance(item, Namespace):
            total += 1
            pending.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif isinstance(item, (Mapping, *_SEQUENCES)):
            # Brackets, and ", " (or ",\n" and the indent) between items; ": " after each key.
            size = len(item)
            total += 2 + max(size - 1, 0) * 2 + size * indent
            if isinstance(item, Mapping):
                total += size * 2
            if total > limit:
                break
            if isinstance(item, Mapping):
                for key, member in item.items():
                    pending.extend((key, member))
            else:
                pending.extend(item)
        else:
            total += 1  # a number, a date, None…: at least one character
    return total


__all__ = ["text_length"]
