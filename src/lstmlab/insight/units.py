"""Looking for cells that track something nameable, after Karpathy, Johnson & Fei-Fei (2015).

"Visualizing and Understanding Recurrent Networks" (ICLR 2016 workshop, arXiv:1506.02078)
found, in character LSTMs trained on code and prose, single cells whose state follows an
interpretable property of the text: inside a quotation, inside brackets, position in the
line, indentation. This module names such properties for every character of a text
(:func:`text_signals`), correlates each cell's state ``C_t`` with each of them (Pearson's r;
for a 0/1 signal that is the point-biserial correlation) and lists the best matches.

Alignment: the state after reading character t is compared with the property *after* that
character (so the opening quote is already "inside", the closing one already "outside").
Dimensions: T characters, H cells, S signals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import positive_int

BRACKETS = {"(": ")", "[": "]", "{": "}"}

SIGNAL_DOCS = {
    "inside quotes": "1 inside a string literal ('...', \"...\", triple quotes; escapes skipped)",
    "inside brackets": "1 while any (, [ or { is open (outside strings and comments)",
    "bracket depth": "how many (, [, { are open",
    "inside comment": "1 from # to the end of the line (outside strings)",
    "position in line": "characters since the last newline",
    "indentation": "leading spaces of the current line (counted as they are read)",
}


def text_signals(text: str) -> dict[str, np.ndarray]:
    """The properties of :data:`SIGNAL_DOCS` after every character of ``text``, each ``(T,)``.

    A small Python-flavoured scanner: quotes open and close string literals (single, double,
    triple), a backslash escapes the next character inside a string, ``#`` starts a comment
    outside strings; brackets count only outside strings and comments. Other languages'
    code and prose get the same rules, which fit them roughly (an apostrophe opens a "string").
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    out = {name: np.zeros(len(text)) for name in SIGNAL_DOCS}
    closing = set(BRACKETS.values())
    quote = None  # the open string's delimiter: ', ", ''' or """
    escaped = comment = False
    leading = True  # still in the line's leading spaces
    depth = column = indent = skip = 0
    for k, ch in enumerate(text):
        if ch == "\n":
            column, indent, leading, comment = 0, 0, True, False
            if quote in ("'", '"'):  # an unterminated one-line string ends with its line
                quote = None
        else:
            column += 1
            if leading and ch == " ":
                indent += 1
            else:
                leading = False
        if skip:  # the 2nd and 3rd character of a triple quote, read with the 1st
            skip -= 1
        elif ch == "\n":
            pass
        elif quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif text.startswith(quote, k):
                skip, quote = len(quote) - 1, None
        elif comment:
            pass
        elif ch == "#":
            comment = True
        elif ch in "'\"":
            quote = ch * 3 if text.startswith(ch * 3, k) else ch
            skip = len(quote) - 1
        elif ch in BRACKETS:
            depth += 1
        elif ch in closing:
            depth = max(0, depth - 1)
        out["inside quotes"][k] = quote is not None
        out["inside brackets"][k] = depth > 0
        out["bracket depth"][k] = depth
        out["inside comment"][k] = comment
        out["position in line"][k] = column
        out["indentation"][k] = indent
    return out


def correlations(states: np.ndarray, signals: dict[str, np.ndarray]) -> np.ndarray:
    """Pearson's r of every cell with every signal: ``states (T, H)`` -> ``(S, H)``.

    A constant cell or signal has no correlation; it gets 0 (not NaN). A value that is not
    finite is a ValueError: its r would be NaN, not a finding.
    """
    states = np.asarray(states, np.float64)
    if states.ndim != 2:
        raise ValueError(f"states must have shape (T, H), got {states.shape}")
    if not signals:
        raise ValueError("signals is empty: give at least one property to correlate with "
                         "(text_signals(text) names six)")
    sig = np.stack([np.asarray(v, np.float64) for v in signals.values()])  # (S, T)
    if sig.shape[1] != states.shape[0]:
        raise ValueError(f"signals have {sig.shape[1]} steps but states {states.shape[0]}")
    for what, a, hint in (("states", states, " (from a model whose training diverged?)"),
                          ("signals", sig, "")):
        if not np.isfinite(a).all():  # r would come out 0, "follows nothing", for a NaN
            raise ValueError(f"{what} must be finite, got {a[~np.isfinite(a)][0]}{hint}")
    a = states - states.mean(axis=0)  # (T, H)
    s = sig - sig.mean(axis=1, keepdims=True)  # (S, T)
    denom = np.sqrt((s ** 2).sum(axis=1))[:, None] * np.sqrt((a ** 2).sum(axis=0))[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (s @ a) / denom  # (S, H)
    return np.where(denom > 1e-12, r, 0.0)


@dataclass(frozen=True)
class UnitMatch:
    signal: str  # the property's name (a key of SIGNAL_DOCS)
    layer: int  # 0 = bottom layer
    unit: int  # index of the cell within the layer
    r: float  # Pearson correlation of C_t with the property


def find_units(cells: list[np.ndarray], signals: dict[str, np.ndarray],
               per_signal: int = 3) -> list[UnitMatch]:
    """For every signal, the ``per_signal`` cells (over all layers) with the largest ``|r|``.

    ``cells`` holds one ``(T, H)`` array of C_t per layer. Signals that are constant over
    the text (no brackets at all, say) are skipped: nothing can follow them.
    """
    per_signal = positive_int(per_signal, "per_signal")
    names = list(signals)
    per_layer = [correlations(c, signals) for c in cells]  # each (S, H)
    out = []
    for s, name in enumerate(names):
        if np.ptp(signals[name]) == 0:
            continue
        cand = [(abs(r[s, u]), l, u, r[s, u]) for l, r in enumerate(per_layer)
                for u in range(r.shape[1])]
        cand.sort(key=lambda c: -c[0])
        out.extend(UnitMatch(name, l, u, float(r)) for _, l, u, r in cand[:per_signal])
    return out
