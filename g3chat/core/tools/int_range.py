"""Integer bounds as grammar: GBNF that matches exactly the integers a schema's bounds allow.

llama-cpp-python's JSON-schema converter ignores ``minimum``/``maximum`` and writes any integer of up to
16 digits, so a tool's ``"days": {"minimum": 1, "maximum": 1000}`` could come out as
``1000000000000000``. Here a range becomes alternatives over decimal digits, the way a regular expression
for a numeric range is built: 1..1000 is ``[1-9] | [1-9] [0-9] | [1-9] [0-9]{2} | "1000"``. Each side of a
range costs a few alternatives per digit, so any bounds fit (no enumeration of the values).
Without an upper bound, numerals stop at 16 digits, as the converter's own integers do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_DIGITS = 16  # the converter's integral part: [1-9] [0-9]{0,15}


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def integer_bounds(schema: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """The smallest and largest integer ``schema`` allows (None: unbounded on that side).

    Reads ``minimum``/``maximum``, numeric ``exclusiveMinimum``/``exclusiveMaximum`` (draft 6 on) and the
    boolean ones of draft 4; fractional bounds round inwards.
    """
    low, high = _number(schema.get("minimum")), _number(schema.get("maximum"))
    if schema.get("exclusiveMinimum") is True and low is not None:
        low = math.floor(low) + 1
    elif (exclusive := _number(schema.get("exclusiveMinimum"))) is not None:
        low = max(low, math.floor(exclusive) + 1) if low is not None else math.floor(exclusive) + 1
    if schema.get("exclusiveMaximum") is True and high is not None:
        high = math.ceil(high) - 1
    elif (exclusive := _number(schema.get("exclusiveMaximum"))) is not None:
        high = min(high, math.ceil(exclusive) - 1) if high is not None else math.ceil(exclusive) - 1
    return (
        math.ceil(low) if low is not None else None,
        math.floor(high) if high is not None else None,
    )


def _same_length(low: str, high: str) -> list[list[str]]:
    """Digit sequences (each item a digit or a class) for the numerals low..high of one length."""
    if not low:
        return [[]]
    if low[0] == high[0]:
        return [[low[0], *rest] for rest in _same_length(low[1:], high[1:])]
    n = len(low) - 1
    zeros, nines = "0" * n, "9" * n
    out: list[list[str]] = []
    first, last = int(low[0]), int(high[0])
    if low[1:] != zeros:
        out += [[low[0], *rest] for rest in _same_length(low[1:], nines)]
        first += 1
    tail: list[list[str]] = []
    if high[1:] != nines:
        tail = [[high[0], *rest] for rest in _same_length(zeros, high[1:])]
        last -= 1
    if first <= last:
        head = str(first) if first == last else f"[{first}-{last}]"
        out.append([head, *["[0-9]"] * n])
    return out + tail


def _render(sequence: list[str]) -> str:
    """``["1", "2", "[0-9]", "[0-9]"]`` as ``"12" [0-9]{2}``."""
    parts: list[str] = []
    i = 0
    while i < len(sequence):
        j = i
        if sequence[i] == "[0-9]":
            while j < len(sequence) and sequence[j] == "[0-9]":
                j += 1
            parts.append("[0-9]" if j - i == 1 else f"[0-9]{{{j - i}}}")
        elif len(sequence[i]) == 1:
            while j < len(sequence) and len(sequence[j]) == 1:
                j += 1
            parts.append(f'"{"".join(sequence[i:j])}"')
        else:
            j = i + 1
            parts.append(sequence[i])
        i = j
    return " ".join(parts) or '""'


def _naturals(low: int, high: int | None) -> list[str]:
    """GBNF alternatives for the numerals of low..high (0 <= low; None: up to 16 digits), no leading
    zeros."""
    top = max(len(str(low)), MAX_DIGITS) if high is None else len(str(high))
    out: list[str] = []
    for n in range(len(str(low)), top + 1):
        first, last = max(low, 10 ** (n - 1) if n > 1 else 0), 10**n - 1
        if high is not None:
            last = min(high, last)
        if first > last:
            continue
        if high is None and first == 10 ** (n - 1) and n > 1:
            more = top - n
            out.append(
                f"[1-9] [0-9]{{{n - 1},{n - 1 + more}}}" if more else _render(["[1-9]", *["[0-9]"] * (n - 1)])
            )
            break
        out += [_render(s) for s in _same_length(str(first), str(last))]
    return out


def integer_rule(schema: Mapping[str, Any]) -> str | None:
    """The GBNF body of an integer within ``schema``'s bounds (then ``space``); None when it has none
    or they exclude every integer (then the converter's rule stands and validation reports it)."""
    low, high = integer_bounds(schema)
    if (low is None and high is None) or (low is not None and high is not None and low > high):
        return None
    alternatives: list[str] = []
    if low is None or low < 0:  # negative integers, by magnitude
        smallest = 1 if high is None or high >= 0 else -high
        alternatives += [f'"-" {a}' for a in _naturals(smallest, None if low is None else -low)]
    if high is None or high >= 0:
        alternatives += _naturals(max(low or 0, 0), high)
    return "(" + " | ".join(alternatives) + ") space"
