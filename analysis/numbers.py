"""How the analysis writes a number as text: the report's cells and prose, its tables' reasons and
the status lines all go through `number_text`, so a value reads the same wherever it is shown.

Thousands are separated with commas; a value that rounds to zero reads 0, never -0.0; a missing
value (None, NaN, infinite, not a number) reads MISSING, or the caller's own word for it.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "\u2014"  # em dash


def is_number(value: Any) -> bool:
    """Whether `value` is a finite number (pandas' NA and NaN, None and text are not)."""
    try:
        return value is not None and value == value and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def number_text(value: Any, decimals: int = 0, *, missing: str = MISSING) -> str:
    """`value` rounded to `decimals`, thousands separated (1,234.5), or `missing`."""
    if not is_number(value):
        return missing
    text = f"{float(value):,.{decimals}f}"
    # A value that rounds to zero is shown as 0, not -0.0.
    return text[1:] if text.startswith("-") and float(text.replace(",", "")) == 0.0 else text


def data_value(value: Any) -> str:
    """The full-precision value for an HTML data-value (repr round-trips a float exactly); "" when missing."""
    if not is_number(value):
        return ""
    number = float(value)
    return repr(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def format_score(value: Any) -> str:
    """A raw game score: thousands separated and whole from 1,000 up, one decimal below."""
    return number_text(value, 0 if is_number(value) and abs(float(value)) >= 1000 else 1)


def format_percent(value: Any) -> str:
    """A percentage (human-normalized score, share of the plan) to one decimal, without the sign."""
    return number_text(value, 1)


def format_int(value: Any) -> str:
    """A count (games, seeds, frames): whole, thousands separated."""
    return number_text(value, 0)


def format_hours(value: Any) -> str:
    return number_text(value, 2)


def percent_of(fraction: float) -> str:
    """A share in percent with two significant digits below 10 % (0.032 %), whole numbers above."""
    percent = 100.0 * fraction
    if percent >= 10.0 or percent == 0.0:
        return f"{number_text(percent, 0)} %"
    return f"{number_text(percent, max(0, 1 - math.floor(math.log10(percent))))} %"


def setting_text(value: Any) -> str:
    """A config value as read in a table: whole numbers with thousands separators (200,000,000),
    anything else as written (0.00025, 1e-2, true)."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    if number.is_integer() and abs(number) >= 1000 and "e" not in text.lower():
        return number_text(number, 0)
    return text
