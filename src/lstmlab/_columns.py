"""Text in the columns of a printed table: widths in terminal columns, not in characters.

A table lines up only when every cell is padded to the columns it takes on screen. Python's
``len`` and ``str.ljust`` count code points, and a code point is not a column: a combining
mark (the tilde of ``C̃``, accents in decomposed text) and a zero-width joiner take none, an
East Asian wide or fullwidth character (``字``, most emoji) takes two. A control character
(``\\n``, ``\\t``, NUL) would break the line or move the cursor, so a cell shows it escaped,
as Python writes it in a string (``\\n``, ``\\x00``), and so does a lone surrogate, which a
terminal cannot show.
"""

from __future__ import annotations

import unicodedata

# Categories that take no column: nonspacing and enclosing marks, format characters (the
# zero-width joiner and space, direction marks).
_ZERO_WIDTH = frozenset({"Mn", "Me", "Cf"})
# Categories a cell shows escaped: control characters and lone surrogates.
_ESCAPED = frozenset({"Cc", "Cs"})


def shown(text: str) -> str:
    """``text`` as a table cell shows it: each control character and lone surrogate
    escaped as in Python's ``repr`` (``\\n``, ``\\x00``, ``\\ud83d``), the rest as it is."""
    text = str(text)
    if not any(unicodedata.category(ch) in _ESCAPED for ch in text):
        return text
    return "".join(repr(ch)[1:-1] if unicodedata.category(ch) in _ESCAPED else ch
                   for ch in text)


def width(text: str) -> int:
    """The terminal columns :func:`shown` ``(text)`` takes: 0 for a combining mark or
    format character, 2 for an East Asian wide or fullwidth character, 1 for any other."""
    total = 0
    for ch in shown(text):
        if unicodedata.category(ch) in _ZERO_WIDTH:
            continue
        total += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return total


def pad(text: str, columns: int, align: str = "<") -> str:
    """:func:`shown` ``(text)`` padded with spaces to ``columns`` terminal columns: on the
    right for ``align="<"``, on the left for ``">"``; a wider text is not cut."""
    if align not in ("<", ">"):
        raise ValueError(f"align must be '<' or '>', got {align!r}")
    cell = shown(text)
    fill = " " * max(0, columns - width(cell))
    return cell + fill if align == "<" else fill + cell
