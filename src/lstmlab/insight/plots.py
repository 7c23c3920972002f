"""Figures for the report and the CLI: each function returns a PNG as bytes.

matplotlib is imported here only, when a figure is drawn (``pip install matplotlib``; the
demo's pinned set has it). Figures are built on ``matplotlib.figure.Figure`` directly, with
no pyplot state, so drawing never opens a window or needs a display.
"""

from __future__ import annotations

import io
import unicodedata

import numpy as np

from .gates import FIELDS, SYMBOLS

COLORS = {"rnn": "#d62728", "lstm": "#1f77b4"}


def _figure(w: float, h: float):
    """A bare figure; margins are set by hand (automatic layouts cost seconds per figure)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is in the demo's pinned set
        raise RuntimeError("drawing figures needs matplotlib (pip install matplotlib)") from None
    return Figure(figsize=(w, h), dpi=100)


def _margins(fig, left=0.7, right=0.25, top=0.4, bottom=0.6, wspace=0.28, hspace=0.35):
    """Margins in inches, turned into the figure fractions subplots_adjust takes."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, top=1 - top / h, bottom=bottom / h,
                        wspace=wspace, hspace=hspace)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def gradient_flow_figure(panels: list[tuple[str, str, list[tuple[str, np.ndarray, str]]]]) -> bytes:
    """Log-scale curves over "steps back from the loss".

    ``panels``: ``(title, ylabel, curves)`` each; ``curves``: ``(label, values (K,), style)``
    or ``(label, values, style, color)`` with ``values[k]`` the quantity k steps before the
    last one and ``style`` a matplotlib line style such as ``"-"`` or ``"--"``.
    """
    fig = _figure(5.2 * len(panels), 3.8)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    _margins(fig, left=0.8)
    for ax, (title, ylabel, curves) in zip(axes, panels):
        for label, values, style, *color in curves:
            v = np.asarray(values, np.float64)
            k = np.arange(len(v))
            ax.semilogy(k, np.maximum(v, 1e-300), style, label=label, lw=1.6,
                        color=color[0] if color else None)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("steps back from the last step (k = T - t)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def experiment_figure(task: str, results, target: float, budget: int) -> bytes:
    """Left: the held-out score against T, every seed a dot and the mean a line, per model.
    Right: training sequences until solved against T; unsolved runs sit on the budget line."""
    fig = _figure(10.4, 3.8)
    ax1, ax2 = fig.subplots(1, 2)
    _margins(fig, left=0.75)
    models = [m for m in ("rnn", "lstm") if any(r.model == m for r in results)]
    lengths = sorted({r.T for r in results})
    for i, m in enumerate(models):
        c = COLORS.get(m)
        off = (i - (len(models) - 1) / 2) * 0.04  # side by side on the log axis
        rs = [r for r in results if r.model == m]
        means = [np.mean([r.score for r in rs if r.T == T]) for T in lengths]
        ax1.plot(lengths, means, "-", color=c, label=m.upper())
        ax1.scatter([r.T * (1 + off) for r in rs], [r.score for r in rs], color=c, s=14, alpha=0.6)
        ok = [r for r in rs if r.solved_at is not None]
        bad = [r for r in rs if r.solved_at is None]
        ax2.scatter([r.T * (1 + off) for r in ok], [r.solved_at for r in ok], color=c, s=18,
                    label=f"{m.upper()} solved")
        ax2.scatter([r.T * (1 + off) for r in bad], [budget] * len(bad), color=c, s=30,
                    marker="x", label=f"{m.upper()} not solved")
    ax1.axhline(target, color="gray", ls=":", lw=1)
    ax1.set_xscale("log")
    ax1.set_xticks(lengths, [str(T) for T in lengths])
    ax1.set_ylim(-0.02, 1.02)
    ax1.set_xlabel("T (the task's length)")
    ax1.set_ylabel("held-out fraction solved" if task == "adding" else "recall accuracy")
    ax1.set_title(f"{task}: final held-out score", fontsize=10)
    ax1.legend(fontsize=8)
    ax2.axhline(budget, color="gray", ls=":", lw=1)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xticks(lengths, [str(T) for T in lengths])
    ax2.set_xlabel("T (the task's length)")
    ax2.set_ylabel("training sequences until solved")
    ax2.set_title("speed (x: not solved within the budget)", fontsize=10)
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    return _png(fig)


def learning_curves_figure(results, baseline: float, error_name: str, score_name: str,
                           target: float) -> bytes:
    """Held-out error (left, log scale, with the memoryless baseline) and score (right)
    against training sequences seen, one line per run."""
    fig = _figure(10.4, 3.6)
    ax1, ax2 = fig.subplots(1, 2)
    _margins(fig, left=0.75)
    for r in results:
        c = np.asarray(r.curve, np.float64)  # (evals, 3): seen, error, score
        if not len(c):
            continue
        label = f"{r.model.upper()} T={r.T} seed {r.seed}"
        ax1.semilogy(c[:, 0], c[:, 1], color=COLORS.get(r.model), label=label)
        ax2.plot(c[:, 0], c[:, 2], color=COLORS.get(r.model), label=label)
    ax1.axhline(baseline, color="gray", ls=":", lw=1, label="memoryless baseline")
    ax2.axhline(target, color="gray", ls=":", lw=1)
    ax1.set_ylabel(f"held-out {error_name}")
    ax2.set_ylabel(f"held-out {score_name}")
    ax2.set_ylim(-0.02, 1.02)
    for ax in (ax1, ax2):
        ax.set_xlabel("training sequences seen")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


_LABEL_FONT = "monospace"  # the family of the heatmaps' character labels
# Pixels a column needs for its character label (7-point monospace at 100 dpi is ~6 wide):
# with narrower columns the labels overprint one another and their tick marks merge into a
# black bar, and drawing thousands of them takes tens of seconds.
_LABEL_PX = 6


def _drawable() -> dict:
    """The code points the label font has glyphs for (its character map)."""
    from matplotlib import font_manager, ft2font

    path = font_manager.findfont(font_manager.FontProperties(family=_LABEL_FONT))
    return ft2font.FT2Font(path).get_charmap()


def _char_label(ch: str, drawable) -> str:
    """A column's label: the character itself; newline, space and tab as symbols; a control
    character or one the label font has no glyph for (CJK, most emoji) as its code point,
    ``U+65E5``, so the label names it, where the glyph would be an empty box and matplotlib
    would warn on stderr about every such character."""
    special = {"\n": "⏎", " ": "·", "\t": "⇥"}.get(ch)
    if special is not None:
        return special
    if unicodedata.category(ch) == "Cc" or ord(ch) not in drawable:
        return f"U+{ord(ch):04X}"
    return ch


def _figure_shape(trace, units, chars, inputs) -> tuple[int, int, np.ndarray]:
    """``(T, H, units)`` of :func:`gates_figure`'s arguments, each checked against the trace
    of one sequence: a whole batch's trace, a cell that is not there, or labels for other
    steps would fail inside matplotlib or label the steps wrongly."""
    if trace.cell.ndim != 2:
        raise ValueError(f"trace must be the trace of one sequence, arrays (T, H), got "
                         f"{trace.cell.shape}: pass trace.sequence(b)")
    T, H = trace.cell.shape
    units = np.arange(H) if units is None else np.asarray(units)
    if units.ndim != 1 or not units.size or units.dtype.kind not in "iu" or not (
            (units >= 0) & (units < H)).all():
        raise ValueError(f"units must be a non-empty list of cell indices in [0, {H - 1}], got "
                         f"{units.tolist()}")
    if chars is not None and len(chars) != T:
        raise ValueError(f"chars must label the {T} steps of the trace, got {len(chars)} "
                         f"characters")
    if inputs is not None and len(inputs) != T:
        raise ValueError(f"inputs must have the trace's {T} steps in its first dimension, got "
                         f"shape {np.shape(inputs)}")
    return T, H, units


def gates_figure(trace, units=None, chars: str | None = None, marks=None,
                 inputs: np.ndarray | None = None, title: str = "") -> bytes:
    """Heatmaps of f, i, C̃, C, o, h (rows: units, columns: steps) of one sequence.

    ``trace``: a :class:`~lstmlab.insight.gates.GateTrace` of one sequence (arrays ``(T, H)``);
    Colours: the gates on viridis from 0 to 1, C̃ on red-blue from -1 to 1, C and h on
    red-blue symmetric about 0 up to their largest |value| (written beside each panel).
    ``units``: which units to show, in order (default all); ``chars``: label the columns
    with these characters (when each column is wide enough to hold one: beyond some 400
    characters the axis is numbered instead); ``marks``: steps to outline (e.g. the adding
    problem's marked pairs); ``inputs (T, D)``: drawn as a strip on top.
    """
    T, H, units = _figure_shape(trace, units, chars, inputs)
    rows = len(FIELDS) + (inputs is not None)
    width = min(max(6.0, 0.11 * T + 1.5), 24.0)
    height_each = max(0.8, 0.09 * len(units) + 0.3)
    fig = _figure(width, height_each * rows + 1.0)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    _margins(fig, left=0.9, right=0.2, top=0.45 if title else 0.15, bottom=0.55, hspace=0.12)
    if title:
        fig.suptitle(title, fontsize=10)
    k = 0
    if inputs is not None:
        inp = np.atleast_2d(np.asarray(inputs, np.float64).T)  # (D, T)
        axes[0].imshow(inp, aspect="auto", cmap="PuOr_r", vmin=-1, vmax=1, interpolation="nearest")
        axes[0].set_yticks([])
        axes[0].set_ylabel("x_t", rotation=0, ha="right", va="center")
        k = 1
    for name, arr in trace.items():
        ax = axes[k]
        k += 1
        data = np.asarray(arr, np.float64)[:, units].T  # (units, T)
        if name in ("forget", "input_gate", "output_gate"):
            ax.imshow(data, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            scale = "0..1"
        else:
            # C and h use their own range (small states would look blank on ±1), C̃ its ±1
            lim = 1.0 if name == "candidate" else max(float(np.abs(data).max()), 1e-6)
            ax.imshow(data, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim,
                      interpolation="nearest")
            scale = f"±{lim:.2g}"
        ax.set_ylabel(f"{SYMBOLS[name]}\n{scale}", rotation=0, ha="right", va="center",
                      fontsize=9, labelpad=14)
        if len(units) <= 32:  # the cell numbers, small
            ax.set_yticks(range(len(units)), [str(u) for u in units], fontsize=5)
        else:
            ax.set_yticks([])
        for m in marks if marks is not None else ():
            ax.axvline(m, color="white", lw=0.8, ls="--")
    if chars is not None and len(chars) * _LABEL_PX > fig.get_figwidth() * fig.dpi:
        axes[-1].set_xlabel(f"character t ({len(chars):,} characters: too many to write each "
                            f"under its column)")
    elif chars is not None:
        drawable = _drawable()
        labels = [_char_label(c, drawable) for c in chars]
        ticks = axes[-1].set_xticks(range(len(chars)), labels, fontsize=7, family=_LABEL_FONT)
        for tick, label in zip(ticks, labels):
            if len(label) > 1:  # a code point: upright, it would cover its neighbours
                tick.label1.set_rotation(90)
    else:
        axes[-1].set_xlabel("time step t")
    return _png(fig)
