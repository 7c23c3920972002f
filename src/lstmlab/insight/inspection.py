"""``lstmlab inspect``: a character LSTM's gates over a text, and cells that track something.

Dimensions: T characters, H cells per layer.

Reads the text once from a zero state (:func:`~lstmlab.insight.gates.record_charlm`), finds
for every property of :data:`~lstmlab.insight.units.SIGNAL_DOCS` the cells whose state C_t
follows it best (:func:`~lstmlab.insight.units.find_units`), and writes a report: heatmaps of
f, i, C̃, C, o, h over the first characters, and the text coloured by each found cell.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._checks import positive_int
from .gates import record_charlm
from .report import Report, colored_chars
from .units import SIGNAL_DOCS, find_units, text_signals


# Said for a text over which every property is constant (blank lines, one repeated letter):
# the table of cells stays empty, and would look like a failed search.
NOTHING_VARIES = ("none of the properties varies over this text, so no cell can follow "
                  "one: give text with quotes, brackets, comments or lines of several "
                  "lengths")


def inspect_text(model, vocab, text: str, out_dir, heat_chars: int = 120, units: int = 16,
                 per_signal: int = 2, unknown: str = "error", source: str = ""):
    """Record, search and write ``out_dir/inspect.html``; returns the matches (best first
    within each property) and the path of the report."""
    from . import plots  # matplotlib only when drawing

    heat_chars, units = positive_int(heat_chars, "heat_chars"), positive_int(units, "units")
    traces = record_charlm(model, vocab, text, unknown=unknown)
    cells = [tr.cell[:, 0].astype(np.float64) for tr in traces]  # per layer (T, H)
    signals = text_signals(text)
    matches = find_units(cells, signals, per_signal=per_signal)

    rep = Report("Inside a character LSTM",
                 f"{source or 'text'}: {len(text):,} character{'' if len(text) == 1 else 's'}; "
                 f"{model.config.num_layers} "
                 f"layer(s) of {model.config.hidden_size} cells")
    rep.section("Cells that follow a nameable property", "units")
    rep.text("Every cell's state C_t after each character is correlated (Pearson's r) with "
             "properties of the text at that point, after Karpathy, Johnson & Fei-Fei (2015), "
             "\"Visualizing and Understanding Recurrent Networks\". |r| near 1: the cell tracks "
             "the property. Compare with the same search on an untrained network of the same "
             "shape: a leaky cell that the newline kicks already follows the position in the "
             "line somewhat, so only the gain over that baseline is learned.")
    rep.table(["property", "definition", "layer", "cell", "r"],
              [[m.signal, SIGNAL_DOCS[m.signal], m.layer, m.unit, f"{m.r:+.3f}"] for m in matches])
    if not matches:
        rep.text(NOTHING_VARIES[0].upper() + NOTHING_VARIES[1:] + ".", note=True)
    shown = min(len(text), 2000)  # characters coloured in the page
    best_per_signal = {}
    for m in matches:
        best_per_signal.setdefault(m.signal, m)
    for name, m in best_per_signal.items():
        c = cells[m.layer][:, m.unit]
        rep.text(f"{name}: layer {m.layer}, cell {m.unit} (r = {m.r:+.3f}); red: C_t above its "
                 f"mean over the text ({c.mean():+.2f}), blue: below; the first {shown:,} "
                 f"characters.")
        rep.raw(colored_chars(text[:shown], c[:shown] - c.mean()))

    rep.section("Gates over the characters", "gates")
    n = min(len(text), heat_chars)
    for l, tr in enumerate(traces):
        H = tr.cell.shape[2]
        chosen = []
        for m in matches:
            if m.layer == l and m.unit not in chosen:
                chosen.append(m.unit)
        spread = np.argsort(-cells[l].std(axis=0))
        chosen += [int(u) for u in spread if u not in chosen]
        chosen = chosen[:min(units, H)]
        rep.figure(plots.gates_figure(tr.sequence(0).steps(0, n), units=chosen, chars=text[:n],
                                      title=f"layer {l}: cells {chosen}"),
                   f"Layer {l}: f, i, C̃, C, o, h of {len(chosen)} cells (rows: the found cells "
                   f"first, then the most variable ones) over the first {n} characters.")
    path = Path(out_dir) / "inspect.html"
    rep.write(path)
    return matches, path
