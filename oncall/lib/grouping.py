"""Alert grouping decisions, as pure functions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence


def group_key(keys: Sequence[str], labels: Mapping[str, str]) -> str:
    """The value alerts share when they belong in one incident: equal values for every grouping label.

    A label an alert lacks counts as empty, so alerts that all lack it still group together. No grouping keys
    means no grouping (empty result).
    """
    if not keys:
        return ""
    material = json.dumps([[key, labels.get(key, "")] for key in keys], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]
