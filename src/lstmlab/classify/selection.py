"""Choosing the network's readout and size on held-out training data.

The choices left open (those the caller did not fix) are tried in turn, each trained on the
same part of the training set from the same seed and scored on the rest; the winner is then
trained on the whole training set as usual. The held-out share follows the validation
scheme of :class:`~lstmlab.classify.model.SequenceClassifier`: 15 % from ``AUTO_VAL_MIN``
training sequences on, else a third, because a set of 36–200 sequences has no hold-out of
its own and needs one large enough to tell candidates apart (ArrowHead's 36: 12 sequences).

The score is the held-out accuracy, then (for equal accuracy, frequent on a dozen
sequences) the lower mean cross-entropy, then the candidate listed first — the smallest and
simplest, so a tie keeps it.

Candidates (:func:`candidates`): for ``lstm-fcn`` the LSTM branch's width, 8 or 64 (two of
the three the LSTM-FCN authors tried, 8, 64 and 128); for ``lstm``, ``gru`` and ``rnn`` the readout,
last or mean, and the width, 32 or 64; ``fcn`` has nothing to choose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .data import SequenceSet
from .defaults import AUTO_VAL_MIN
from .model import stratified_split

SMALL_SET_FRACTION = 1 / 3  # held out below AUTO_VAL_MIN training sequences
LARGE_SET_FRACTION = 0.15  # held out from AUTO_VAL_MIN on, as for picking the epoch


def candidates(model: str, hidden: int | None, readout: str | None) -> list[dict]:
    """The settings to try for ``model``: every combination of the open choices (``hidden``
    and ``readout`` None), the fixed ones as given. One candidate means nothing to choose."""
    if model == "fcn":
        return [{}]
    if model == "lstm-fcn":
        return [{"hidden_size": h} for h in ([hidden] if hidden else [8, 64])]
    return [{"readout": r, "hidden_size": h}
            for r in ([readout] if readout else ["last", "mean"])
            for h in ([hidden] if hidden else [32, 64])]


def flags(settings: dict) -> str:
    """Settings as the command-line flags that fix them: ``--hidden 8 --readout mean``."""
    return " ".join(f"--{k.replace('_size', '')} {v}" for k, v in settings.items())


@dataclass
class Selection:
    """The outcome: the chosen settings and every candidate's held-out score."""

    chosen: dict
    scores: list  # per candidate: {"settings", "accuracy", "loss", "seconds"}
    n_fit: int
    n_held: int
    # The chosen candidate's model, trained on the n_fit sequences: what a run stopped while
    # choosing keeps (not part of the JSON).
    model: object = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {"chosen": self.chosen, "candidates": self.scores, "n_fit": self.n_fit,
                "n_held_out": self.n_held,
                "criterion": "held-out accuracy, then mean cross-entropy, then the first"}

    def describe(self) -> str:
        """One line: what was chosen, on what, against what; a candidate whose training was
        stopped (Ctrl-C, SIGTERM) is marked, since its score is not that of its setting."""
        rows = "; ".join(f"{flags(c['settings'])}: {c['accuracy']:.3f} ({c['loss']:.3f})"
                         + (" interrupted" if c.get("status") == "interrupted" else "")
                         for c in self.scores)
        stopped = any(c.get("status") == "interrupted" for c in self.scores)
        return (f"chose {flags(self.chosen)} on {self.n_held} held-out training sequences "
                f"(trained on {self.n_fit}); accuracy (cross-entropy): {rows}"
                + ("; the choice was interrupted, so it compares candidates trained "
                   "partly or not at all" if stopped else ""))


def choose(data: SequenceSet, rng: np.random.Generator, options: list[dict],
           train: Callable[[SequenceSet, np.random.Generator, dict], object]) -> Selection:
    """Train ``train(part, generator, settings)`` (a ``SequenceClassifier``) for each of
    ``options`` on one stratified part of ``data``, score it on the rest (module docstring)
    and return the choice. Every candidate gets the same part and the same seed."""
    if len(options) < 2:
        raise ValueError(f"choose needs at least two options, got {len(options)}")
    fraction = LARGE_SET_FRACTION if len(data) >= AUTO_VAL_MIN else SMALL_SET_FRACTION
    keep, held = stratified_split(data.labels, fraction, rng)
    if len(held) == 0:
        raise ValueError(f"{len(data)} training sequences leave none to hold out for choosing "
                         f"the width or readout; give them (--hidden, --readout) or pass "
                         f"--no-select")
    part, rest = data.subset(keep), data.subset(held)
    seed = int(rng.integers(2**63))
    scores, models = [], []
    for settings in options:
        model = train(part, np.random.default_rng(seed), settings)
        models.append(model)
        proba = model.predict_proba(rest)  # (n_held, C)
        truth = model.encode_labels(rest.labels)
        picked = np.clip(proba[np.arange(len(truth)), truth], 1e-300, None)
        scores.append({"settings": settings,
                       "accuracy": float(np.mean(proba.argmax(axis=1) == truth)),
                       "loss": float(-np.mean(np.log(picked))),
                       "seconds": float(model.meta["summary"]["seconds"]),
                       "status": model.meta["summary"].get("status", "finished")})
    best = min(range(len(options)), key=lambda k: (-scores[k]["accuracy"], scores[k]["loss"], k))
    return Selection(dict(options[best]), scores, len(keep), len(held), models[best])
