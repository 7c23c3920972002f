"""Counts in messages: a number with its noun in the number it takes."""

from __future__ import annotations


def counted(n: int, word: str, plural: str | None = None, grouped: bool = False) -> str:
    """``n`` and ``word`` in the number ``n`` takes: '0 rows', '1 row', '3 rows', '2 series'
    (``plural`` for a noun that does not add an s). ``grouped`` writes the digits in groups
    of three, '12,345 characters', for counts that run large."""
    number = f"{n:,}" if grouped else f"{n}"
    return f"{number} {word if n == 1 else plural or word + 's'}"
