"""Text cells safe to open in a spreadsheet: CSV (formula) injection quoted as OWASP advises, reversibly."""

from __future__ import annotations

# A cell starting with one of these is read as a formula by spreadsheet programs (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def quote_cell(value: str) -> str:
    """``value`` prefixed with a single quote when a spreadsheet would run it as a formula; a value that
    already starts with the quote gets one more, so ``unquote_cell`` restores every value exactly."""
    return QUOTE + value if value.startswith((*FORMULA_STARTS, QUOTE)) else value


def unquote_cell(value: str) -> str:
    """The value ``quote_cell`` was given."""
    return value[1:] if value.startswith(QUOTE) else value
