"""Label spellings: everything a user may write for member / non-member, normalised to 1 / 0."""

from __future__ import annotations

import contextlib
import math
import numbers
from typing import Any

MEMBER_SPELLINGS = frozenset({"1", "true", "member"})
NONMEMBER_SPELLINGS = frozenset({"0", "false", "nonmember", "non-member", "non_member"})
ACCEPTED = "1/0 (also 1.0/0.0), true/false or member/non-member (also nonmember, non_member)"


def normalize_label(value: Any) -> int:
    """Return 1 (member) or 0 (non-member) for any accepted spelling; raise ValueError otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        if value in (0, 1):
            return int(value)
    elif isinstance(value, numbers.Real):
        # A float column appears when a tool such as pandas widened an int column; 1.0 and 0.0 are exact.
        if not math.isnan(value) and value in (0.0, 1.0):
            return int(value)
    elif isinstance(value, str):
        key = value.strip().lower()
        if key in MEMBER_SPELLINGS:
            return 1
        if key in NONMEMBER_SPELLINGS:
            return 0
        # the same widened column written as text ("1.0", "0.0"), as the number itself is accepted
        with contextlib.suppress(ValueError):
            number = float(key)
            if number in (0.0, 1.0):
                return int(number)
    raise ValueError(f"unknown label {value!r}")


def label_name(label: int | None) -> str:
    """Human name of a normalised label, for messages."""
    return {1: "member", 0: "non-member", None: "unlabelled"}[label]
