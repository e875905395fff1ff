"""Row ids as they come from outside: whole numbers the database can hold."""

from __future__ import annotations

# Ids are 64-bit: a larger number cannot name a row, and the database would refuse it rather than find nothing.
ID_MAX = 2**63 - 1


def id_in_range(value: object) -> bool:
    """Whether `value` (an int or its text) is a number from 1 to ID_MAX; False for anything else."""
    try:
        number = int(str(value).strip())
    except ValueError:
        return False
    return 1 <= number <= ID_MAX
