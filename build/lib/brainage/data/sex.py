"""Normalise sex codes to ``"F"`` / ``"M"``."""

from __future__ import annotations

import math

_CODES = {
    "f": "F", "female": "F", "w": "F", "woman": "F",
    "m": "M", "male": "M", "man": "M",
}

#: Numeric conventions a user may declare for 0/1 (or 1/2) codes.
NUMERIC_CONVENTIONS = {
    "0=female": {"0": "F", "1": "M"},  # TSAN's one-hot convention
    "0=male": {"0": "M", "1": "F"},
    "1=male,2=female": {"1": "M", "2": "F"},  # IXI's SEX_ID
    "1=female,2=male": {"1": "F", "2": "M"},
}


def normalise_sex(value: object, numeric: str | None = None) -> str | None:
    """Map a sex code to ``"F"``, ``"M"``; missing values give ``None``.

    Args:
        value: Raw code, e.g. ``"male"``, ``"F"``, ``1``.
        numeric: Declared convention for numeric codes, one of NUMERIC_CONVENTIONS.
            Numeric codes without a declared convention are ambiguous and rejected.

    Raises:
        ValueError: unknown code, or a numeric code without a convention.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if text.lower() in ("", "n/a", "na", "nan"):
        return None
    if text.lower() in _CODES:
        return _CODES[text.lower()]
    key = text[:-2] if text.endswith(".0") else text
    if key.isdigit():
        if numeric is None:
            raise ValueError(
                f"numeric sex code {text!r} is ambiguous; declare a convention "
                f"(one of {', '.join(NUMERIC_CONVENTIONS)})"
            )
        if numeric not in NUMERIC_CONVENTIONS:
            raise ValueError(f"unknown sex convention {numeric!r}; use one of {list(NUMERIC_CONVENTIONS)}")
        if key in NUMERIC_CONVENTIONS[numeric]:
            return NUMERIC_CONVENTIONS[numeric][key]
    raise ValueError(f"unknown sex code {text!r}; expected F/M, female/male, or a declared numeric code")
