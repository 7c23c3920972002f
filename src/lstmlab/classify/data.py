"""Labelled sequences: a long-format CSV reader, a UCR/UEA ``.ts`` reader, padding, examples.

Dimensions: n sequences, T_i the length of sequence i, T = max T_i, D features per step.

**CSV (long format)**: one row per time step, with a sequence-id column, an optional
time-order column, feature columns and a label column::

    id,t,x,y,label
    a,0,0.1,1.2,walk
    a,1,0.3,1.0,walk
    b,0,...

Rows are grouped by id (in order of first appearance) and sorted by the time column within a
sequence (numbers, date-times with a UTC offset, or ISO dates and date-times; a note names where
a sequence's rows first went back, as the forecasting readers do); a repeated time
inside a sequence, an id whose rows hold the whole of another sequence between them (without
a time column, where the file order is the step order), a label that changes within a sequence, a non-numeric feature cell (named
by line and column) and missing values (under ``missing="refuse"``) are errors. Ids, and
labels, that differ only in case or spacing stay apart, with a note naming them, and so do
labels that are one number written differently (``1``, ``1.0``).
Missing-value tokens (``NA``, ``?``, ...) apply to the feature columns only: a label is read
as written, and only an empty one is missing.

**UCR/UEA ``.ts``** (the sktime / timeseriesclassification.com format): ``@`` header lines
(``@problemName``, ``@univariate``, ``@dimensions``, ``@equalLength``, ``@classLabel true
<labels>``, ...) then ``@data`` and one case per line: the dimensions separated by ``:``, the
values of each by ``,``, the class label last; ``?`` is a missing value (among the values: a
label is read as written). Sequences may differ in length between cases (all dimensions of one
case have the same length). The header is held to: a case with another number of dimensions
than ``@univariate true`` or ``@dimensions N``, another length than ``@seriesLength N`` or the
first case's under ``@equalLength true``, a missing value under ``@missing false`` or a label
``@classLabel true <labels>`` does not list is an error naming its line and the declaration's.
Time-stamped (``@timeStamps true``) files are not supported and say so.

Sequences of different lengths are padded into one ``(T, n, D)`` array with ``lengths (n,)``
(the network's variable-length path ignores the padding).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._checks import generator, non_negative_int, positive_int, short_repr, true_or_false
from .._files import is_left_beside_data, read_utf8, text_lines
from ..forecast.data import (MISSING_POLICIES, MISSING_TOKENS, SeriesError, column_index,
                             empty_time_problem, fill_missing, parse_numeric_column,
                             lookalike_ids_note, read_csv_table, repeated_names, time_order,
                             time_order_key, unsorted_note)


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_DIGITS = re.compile(r"(\d+)", re.ASCII)


def _label_key(label: str) -> tuple:
    """The sort key of one label: a number (``-1``, ``10``, ``2.5``, ``1e3``) by its value,
    before any other label; another label as its runs of text and of digits, the digit runs
    by their value (``class2`` before ``class10``); the text last, so that labels equal by
    value (``1``, ``1.0``, ``01``) still have one order."""
    text = str(label)
    if _NUMBER.fullmatch(text):
        return (0, float(text), (), text)
    parts = _DIGITS.split(text)  # text, digits, text, ...: each place holds one type
    return (1, 0.0, tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), text)


def class_order(labels) -> list[str]:
    """The distinct ``labels`` in the order a reader expects of classes: numeric labels by
    value (``1, 2, 10``, not the text order ``1, 10, 2``) and before the others, the others
    by text with their digit runs read as numbers (``run2, run10``). The order depends on
    the set of labels only, never on the order they come in."""
    return sorted(set(labels), key=_label_key)


def same_number_note(labels, column: str, kind: str = "label",
                     what: str = "class") -> str | None:
    """The note for labels of the ``column`` that are one number written differently (``1``,
    ``1.0``, ``01``): each is read as a ``what`` (a class, a series) of its own, as a label
    is read as written, which labels joined from two sources seldom mean to be. ``kind``
    names the values in the note: labels, or the ids of a long-format file. None when there
    are none."""
    numbers: dict[float, list[str]] = {}
    for label in dict.fromkeys(labels):
        if _NUMBER.fullmatch(label):
            numbers.setdefault(float(label), []).append(label)
    groups = [names for names in numbers.values() if len(names) > 1]
    if not groups:
        return None
    shown = "; ".join(", ".join(repr(n) for n in names) for names in groups[:3])
    more = f"; and {len(groups) - 3} more such groups" if len(groups) > 3 else ""
    return (f"the {kind} column {column!r} holds {kind}s that are one number written "
            f"differently ({shown}{more}): each is read as a {what} of its own; write them "
            f"alike if they name one {what}")


def same_number_hint(unseen, known) -> str:
    """For labels ``unseen`` (of a test set, of data to label) that equal a label of ``known``
    (the trained classes) as numbers, ``1.0`` beside ``1``: a clause saying which, to end the
    message that refuses or does not score them; "" when none does. A label names its class
    as written (``01`` and ``1`` may be two codes), so the two are not matched: the user
    writes them alike."""
    values: dict[float, str] = {}
    for label in class_order(known):
        if _NUMBER.fullmatch(label):
            values.setdefault(float(label), label)
    pairs = [(label, values[float(label)]) for label in class_order(unseen)
             if _NUMBER.fullmatch(label) and float(label) in values]
    if not pairs:
        return ""
    shown = ", ".join(f"{a!r} is {b!r}" for a, b in pairs[:5])
    more = f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
    return (f"; as numbers they are the same ({shown}{more}), but a label is read as written: "
            f"write them as the training data does")


class SequenceDataError(SeriesError):
    """Labelled-sequence data that cannot be used; the message says where and why."""


def check_label_strings(labels, where: str = "") -> None:
    """A TypeError naming the first of ``labels`` that is not a string (``where`` leads the
    message): a checkpoint keeps its classes as strings, as a file reads them, and labels
    of mixed types cannot be sorted into classes."""
    bad = next((i for i, lab in enumerate(labels) if not isinstance(lab, str)), None)
    if bad is not None:
        raise TypeError(f"{where}labels[{bad}] is {short_repr(labels[bad])} "
                        f"({type(labels[bad]).__name__}); class labels are strings, as read "
                        f"from a file: pass [str(v) for v in labels]")


class FeatureColumnError(SequenceDataError):
    """A feature column asked for by name that the CSV file does not hold, or holds more
    than once; a caller that chose the names (the training data's, for its test set) tells
    this apart from the file's other problems by its type."""


def _as_sequence_errors(reader):
    """The CSV helpers shared with forecasting raise SeriesError; readers here raise
    SequenceDataError (a subclass), so one ``except`` catches all of their problems."""
    @functools.wraps(reader)
    def wrapped(*args, **kwargs):
        try:
            return reader(*args, **kwargs)
        except SequenceDataError:
            raise
        except SeriesError as exc:
            raise SequenceDataError(str(exc)) from None
    return wrapped


@dataclass
class SequenceSet:
    """Variable-length sequences with (optional) labels."""

    x: list  # n arrays of shape (T_i, D), float64
    labels: list | None  # n class labels (str), or None when the data is unlabelled
    ids: list  # n sequence ids (str)
    features: list  # D feature names
    source: str = ""
    notes: list = field(default_factory=list)
    # n int arrays (T_i,): the file line of each step (a .ts case's line for all its steps),
    # so that a value refused after reading is named where the user can find it; None when
    # the set comes from no file
    lines: list | None = None

    def __post_init__(self) -> None:
        """Types, shapes and counts checked where the set is made, by name: a (T,) array,
        text values, a label that is no string, a missing label or no ids otherwise fail
        deep inside padding, training, saving or a message naming a sequence."""
        if isinstance(self.x, (str, bytes)) or not hasattr(self.x, "__len__"):
            raise TypeError(f"SequenceSet: x must be a list of (T, D) arrays, one per "
                            f"sequence, got {type(self.x).__name__}")
        if isinstance(self.features, str) or not isinstance(self.features, (list, tuple)) or \
                not all(isinstance(f, str) for f in self.features):
            raise TypeError(f"SequenceSet: features must be a list of names (strings), one per "
                            f"column of x, got {short_repr(self.features)}")
        twice = repeated_names(self.features)
        if twice:  # a model reads its features by name: which column is which?
            raise SequenceDataError(f"SequenceSet: features name {', '.join(map(repr, twice))} "
                                    f"more than once; a model reads its features by name")
        n, D = len(self.x), len(self.features)
        for i, s in enumerate(self.x):
            shape = np.shape(s)
            if len(shape) != 2 or shape[1] != D or shape[0] < 1:
                raise SequenceDataError(f"SequenceSet: x[{i}] must have shape (T, D) with T >= 1 "
                                        f"steps and D = {D} (features {list(self.features)}), "
                                        f"got {shape}")
            kind = np.asarray(s).dtype
            if kind.kind not in "biuf":
                raise TypeError(f"SequenceSet: x[{i}] holds {kind} values; a sequence holds "
                                f"real numbers (np.asarray(values, float) converts numbers "
                                f"given as text or objects)")
        for name, values in (("labels", self.labels), ("ids", self.ids), ("lines", self.lines)):
            if values is None and name != "ids":  # unlabelled, or from no file
                continue
            if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
                raise TypeError(f"SequenceSet: {name} must be a list, one entry per sequence, "
                                f"got {short_repr(values)}")
            if len(values) != n:
                raise SequenceDataError(f"SequenceSet: {name} has {len(values)} entries for "
                                        f"{n} sequences")
        if self.labels is not None:
            check_label_strings(self.labels, "SequenceSet: ")

    def __len__(self) -> int:
        return len(self.x)

    def where(self, i: int, t: int) -> str:
        """Step ``t`` of sequence ``i`` as a message names it: its file line first, when the
        set knows it, then the case and step."""
        at = f"case {self.ids[i]!r} (step {t})"
        return at if self.lines is None else f"line {int(self.lines[i][t])}, {at}"

    @property
    def num_features(self) -> int:
        return len(self.features)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.x], np.int64)  # (n,)

    def padded(self, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
        """``x (T, n, D)`` zero-padded after each sequence's end, and ``lengths (n,)``."""
        lengths = self.lengths
        out = np.zeros((int(lengths.max(initial=0)), len(self.x), self.num_features),
                       dtype)  # (T, n, D); (0, 0, D) for an empty set
        for i, s in enumerate(self.x):
            out[: len(s), i] = s
        return out, lengths

    def subset(self, idx) -> "SequenceSet":
        """The sequences at the indices ``idx``, in that order, or where the boolean mask
        ``idx`` (one entry per sequence) is true: int() would read a mask's True and False
        as the indices 1 and 0."""
        mask = np.asarray(idx)
        if mask.dtype == bool:
            if mask.shape != (len(self),):
                raise ValueError(f"a boolean mask must have shape ({len(self)},), one entry per "
                                 f"sequence, got {mask.shape}")
            idx = np.flatnonzero(mask)
        idx = [int(i) for i in idx]
        outside = [i for i in idx if not -len(self) <= i < len(self)]
        if outside:
            raise IndexError(f"index {outside[0]} is outside the set's {len(self)} sequences")
        return SequenceSet([self.x[i] for i in idx],
                           None if self.labels is None else [self.labels[i] for i in idx],
                           [self.ids[i] for i in idx], self.features, self.source, self.notes,
                           None if self.lines is None else [self.lines[i] for i in idx])


def _all_or_none(labels, unlabelled: list):
    """``labels`` (None where missing) when every sequence has one, None when none has (a
    file to label: an empty label column, nothing after the last ``:`` of every case); a file
    with some labels missing is an error naming the first (an accuracy over part of it would
    mislead). Only an empty label is missing: ``NA`` or ``?`` may be a class's name, and
    missing-value tokens apply to the values of the series, never to labels."""
    if not unlabelled:
        return labels
    if len(unlabelled) == len(labels):
        return None
    raise SequenceDataError(f"{unlabelled[0]}, but other sequences have labels; label every "
                            f"sequence, or none to only predict")


# -- CSV ------------------------------------------------------------------------------------

def _refuse_split_sequences(groups: dict, lines, where: str) -> None:
    """Without a time column the rows of a sequence are its steps in file order, so an id
    whose rows have the whole of another sequence (two rows or more) between two of them is
    an id given to two sequences (files joined, a copied block) and would silently make one
    sequence of both. Rows interleaved step by step (every sequence's first step, then every
    second step) keep at most one row of another sequence between two of a sequence's rows
    and are read as written."""
    n = sum(len(ks) for ks in groups.values())
    ends = np.full(n + 1, n, np.int64)  # ends[k]: last row of the sequence starting at row k
    starts = {}
    for sid, ks in groups.items():
        if len(ks) > 1:
            ends[ks[0]], starts[ks[0]] = ks[-1], sid
    first_end = np.minimum.accumulate(ends[::-1])[::-1]  # first_end[k]: min of ends[k:]
    for sid, ks in groups.items():
        for a, b in zip(ks, ks[1:]):
            if b - a > 2 and first_end[a + 1] < b:
                start = next(k for k in range(a + 1, b) if ends[k] < b)
                raise SequenceDataError(
                    f"{where}: the rows of sequence {sid!r} on lines {lines[a]} and {lines[b]} "
                    f"have the whole of sequence {starts[start]!r} (lines {lines[start]}-"
                    f"{lines[ends[start]]}) between them: one id names two sequences; without "
                    f"--time a sequence's rows are its steps in file order, so give each "
                    f"sequence its own id, or pass --time to order rows by a time column")


def _feature_column(rows, i: int, lines, header, path, chosen: bool) -> np.ndarray:
    """Column ``i`` as numbers; a text cell in a column taken by default (no ``features``)
    says so, since such a column (a subject's name, a session tag) is more often metadata
    than a feature written wrong."""
    try:
        return parse_numeric_column([r[i] for r in rows], lines, header[i], path)
    except SeriesError as exc:
        if chosen:
            raise
        raise SequenceDataError(f"{exc}; without --features every column besides the id, time "
                                f"and label columns is a feature: name the features with "
                                f"--features to leave {header[i]!r} out") from None


@_as_sequence_errors
def read_sequence_csv(path, id_col: str = "id", label_col: str | None = "label",
                      time_col: str | None = None, features: list[str] | None = None,
                      missing: str = "refuse", require_labels: bool = True,
                      require_label_column: bool | None = None,
                      note_unread: bool = False) -> SequenceSet:
    """Read a long-format CSV of labelled sequences (see the module docstring).

    With ``note_unread``, ``features`` are the training data's, taken by name from a file
    to test or label, and a note names the file's other columns, which are not read: a
    column the training data did not have cannot be an input, but the user learns that
    it is left out (a file laid out otherwise than the training file shows here too).

    Without ``require_labels`` the labels are optional: a file without the label column, or
    with every label empty, is a file to label. ``require_label_column`` (default:
    ``require_labels``) still requires the column itself, for a name the user gave: a file
    that names its label column otherwise would else be read as a file to label, and the
    accuracy asked for silently left out."""
    for name, value, optional in (("id_col", id_col, False), ("label_col", label_col, True),
                                  ("time_col", time_col, True)):
        if not (isinstance(value, str) or (optional and value is None)):
            raise TypeError(f"{name} must be a column name{' or None' if optional else ''}, "
                            f"got {value!r}")
    if features is not None:
        names = None
        if not isinstance(features, str):  # a str would be read letter by letter
            try:
                names = list(features)
            except TypeError:  # a number, say: not a collection at all
                pass
        if names is None or not all(isinstance(f, str) for f in names):
            raise TypeError(f"features must be a list of column names or None, got "
                            f"{features!r}")
        if not names:  # [] would read every column, as None does
            raise ValueError("features must name at least one column, got an empty list; "
                             "None reads every column besides the id, time and label columns")
        features = [str(f) for f in names]
    require_labels = true_or_false(require_labels, "require_labels")  # "no" is truthy
    if require_label_column is not None:
        true_or_false(require_label_column, "require_label_column")
    true_or_false(note_unread, "note_unread")
    header, rows, lines = read_csv_table(path)
    where = str(path)
    try:
        i_id = column_index(header, id_col, path, "sequence-id column")
    except SeriesError as exc:
        if len(header) == 1 or id_col.lower() in (h.lower() for h in header):
            raise  # another separator, or the name's case: the message says which
        raise SequenceDataError(f"{exc}. A CSV file here is in long format, one row per time "
                                f"step and a column naming its sequence (--id); a file of one "
                                f"series per row (its label, then its values) is reshaped to "
                                f"that, or written as a UCR/UEA .ts file") from None
    i_t = None if time_col is None else column_index(header, time_col, path, "time column")
    i_y = None
    if require_label_column is None:
        require_label_column = require_labels
    if label_col is not None and (require_label_column or label_col in header):
        i_y = column_index(header, label_col, path, "label column")
    roles = [(i, role) for i, role in ((i_id, "sequence-id"), (i_t, "time"), (i_y, "label"))
             if i is not None]
    for k, (i, role) in enumerate(roles):
        other = next((r for j, r in roles[k + 1:] if j == i), None)
        if other:  # one column in two roles: read as labels or times, the error would mislead
            raise SequenceDataError(f"{header[i]!r} is given as both the {role} column and the "
                                    f"{other} column; they must be different columns")
    used = {i for i in (i_id, i_t, i_y) if i is not None}
    if features:
        try:
            i_f = [column_index(header, f, path, "feature column") for f in features]
        except SeriesError as exc:
            raise FeatureColumnError(str(exc)) from None
        clash = next((i for i in i_f if i in used), None)
        if clash is not None:  # named with its other role, as a column in two roles is above
            role = next(r for i, r in roles if i == clash)
            raise SequenceDataError(f"{header[clash]!r} is given as both a feature column and "
                                    f"the {role} column; they must be different columns")
    else:
        i_f = [i for i in range(len(header)) if i not in used]
        for i in [i for i in i_f if not header[i]]:  # a trailing comma on every line
            if any(r[i] for r in rows):
                raise SequenceDataError(f"{where}: column {i + 1} has no name in the header but "
                                        f"holds values; name it, or choose the features with "
                                        f"--features")
            i_f.remove(i)  # empty and unnamed: nothing to read
        if not i_f:
            raise SequenceDataError(f"{where} has no feature columns besides id/time/label "
                                    f"({', '.join(header)})")
        dupes = repeated_names([header[i] for i in i_f])
        if dupes:
            raise SequenceDataError(f"{where}: the header names {dupes} more than once; "
                                    f"rename them, or choose the features with --features")
    names = [header[i] for i in i_f]
    unread = list(dict.fromkeys(h for i, h in enumerate(header)
                                if h and i not in used and i not in i_f))
    unread_note = (f"{'the column' if len(unread) == 1 else 'the columns'} "
                   f"{', '.join(map(repr, unread))} {'is' if len(unread) == 1 else 'are'} not "
                   f"read: the features are the training data's ({', '.join(names)}), taken "
                   f"by name" if note_unread and features and unread else None)
    values = np.column_stack([_feature_column(rows, i, lines, header, path, bool(features))
                              for i in i_f])  # (rows, D) with NaN where missing
    groups: dict[str, list[int]] = {}
    for k, r in enumerate(rows):
        if not r[i_id]:
            raise SequenceDataError(f"{where}, line {lines[k]}: the sequence-id column "
                                    f"{id_col!r} is empty; every row needs the id of its "
                                    f"sequence")
        groups.setdefault(r[i_id], []).append(k)
    if i_t is None:
        _refuse_split_sequences(groups, lines, where)
    if len(groups) > 1 and len(groups) == len(rows) and len(i_f) > 1:  # one series a row
        raise SequenceDataError(
            f"{where}: every sequence has one row, so each would be a single time step of "
            f"{len(i_f)} features ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}); "
            f"a CSV file here is in long format, one row per time step: a file of one series "
            f"per row is reshaped to that, or written as a UCR/UEA .ts file")
    xs, labels, ids, notes, steps = [], [] if i_y is not None else None, [], [], []
    unlabelled = []  # where a label is missing, when labels are optional
    unsorted: list[tuple[str, str]] = []  # (sequence, where its rows first go back in time)
    for sid, ks in groups.items():
        if i_t is not None:
            times = [rows[k][i_t] for k in ks]
            problem = empty_time_problem(times, [lines[k] for k in ks], time_col)
            if problem:
                raise SequenceDataError(f"{where}, sequence {sid!r}, {problem}")
            keys = time_order_key(times)
            if keys is None:  # as text, 't10' would come before 't2'
                other = next((t for t in times if len(t) != len(times[0])), None)
                shown = f"{times[0]!r}" + ("" if other is None else f", {other!r}")
                raise SequenceDataError(
                    f"{where}, sequence {sid!r}: the time column {time_col!r} cannot be "
                    f"ordered ({shown}: not numbers, nor ISO dates); "
                    f"use numbers or ISO dates, or leave out --time to keep the row order")
            order, back, repeat = time_order(times, [lines[k] for k in ks])
            if repeat:
                raise SequenceDataError(f"{where}, sequence {sid!r}, {repeat}; each time step "
                                        f"needs one row: remove the duplicate")
            if back:
                unsorted.append((sid, back))
                ks = [ks[j] for j in order]
        seq_lines = [lines[k] for k in ks]
        seq = values[ks].copy()  # (T_i, D)
        for j, name in enumerate(names):
            seq[:, j], note = fill_missing(seq[:, j], missing, name, seq_lines,
                                           f"{where}, sequence {sid!r}")
            if note:
                notes.append(f"sequence {sid!r}, {note}")
        if i_y is not None:
            found = {rows[k][i_y] for k in ks}
            if len(found) > 1:
                first = {}
                for k in ks:
                    first.setdefault(rows[k][i_y], lines[k])
                shown = ", ".join(f"{lab!r} (line {ln})" for lab, ln in first.items())
                raise SequenceDataError(f"{where}: sequence {sid!r} has more than one label: "
                                        f"{shown}; a sequence has one label")
            label = found.pop()
            if not label:
                problem = f"{where}, line {seq_lines[0]}: sequence {sid!r} has no label"
                if require_labels:
                    raise SequenceDataError(problem)
                unlabelled.append(problem)
                label = None
            labels.append(label)
        xs.append(seq)
        ids.append(sid)
        steps.append(np.array(seq_lines, np.int64))
    if unsorted:
        sid, back = unsorted[0]
        what = (f"the rows of sequence {sid!r}" if len(unsorted) == 1 else
                f"the rows of {len(unsorted)} sequences (the first: {sid!r})")
        notes.insert(0, unsorted_note(back, time_col, what))
    lookalike = [unread_note, lookalike_ids_note(groups, id_col, "sequence")]
    if labels is not None:  # 'Walk' beside 'walk': a class of one retyped label, silently
        lookalike.append(lookalike_ids_note(dict.fromkeys(lab for lab in labels if lab),
                                            label_col, "class", kind="label"))
        lookalike.append(same_number_note([lab for lab in labels if lab], label_col))
    notes[:0] = [note for note in lookalike if note]
    return SequenceSet(xs, _all_or_none(labels, unlabelled), ids, names, where, notes, steps)


# -- UCR/UEA .ts ----------------------------------------------------------------------------

_TS_SWITCHES = ("timestamps", "missing", "univariate", "equallength", "targetlabel")
_TS_COUNTS = ("dimensions", "serieslength")


class _TsHeader:
    """The ``@`` declarations of a ``.ts`` file, each kept with its line, so that a case
    contradicting one is refused naming both lines (a header is a promise about the data;
    a file breaking it is a cut or mixed-up file more often than not)."""

    def __init__(self, where: str):
        self.where = where
        self.tags: dict[str, tuple[str, str, int]] = {}  # key -> (as written, value, line)
        self.first_length: tuple[int, int] | None = None  # (T, line) of the first case

    def add(self, line: str, ln: int) -> None:
        """One ``@tag value`` line; a value a switch or a count cannot have, or a declaration
        the cases are held to given twice with different values, is refused here (a name,
        ``@problemName``, may be given twice: the archive's UnitTest files do; the last one
        counts)."""
        name, _, value = line[1:].partition(" ")
        key, value = name.lower(), " ".join(value.split())
        held = key in _TS_SWITCHES or key in _TS_COUNTS or key == "classlabel"
        if held and key in self.tags and self.tags[key][1] != value:
            raise SequenceDataError(f"{self.where}, line {ln}: {line!r} contradicts "
                                    f"{self.said(key)}")
        self.tags[key] = (line, value, ln)
        first = value.split(" ")[0].lower()
        if (key in _TS_SWITCHES or key == "classlabel") and first not in ("true", "false"):
            raise SequenceDataError(f"{self.where}, line {ln}: @{name} takes true or false, "
                                    f"got {value!r}")
        if key in _TS_COUNTS and not (value.isascii() and value.isdigit() and int(value) > 0):
            raise SequenceDataError(f"{self.where}, line {ln}: @{name} takes a whole number "
                                    f"of at least 1, got {value!r}")

    def said(self, key: str) -> str:
        """The declaration as the file writes it, with its line."""
        line, _, ln = self.tags[key]
        return f"{line} (line {ln})"

    def switch(self, key: str) -> bool | None:
        """A true/false declaration, None when the file does not make it."""
        return self.tags[key][1].split(" ")[0].lower() == "true" if key in self.tags else None

    def count(self, key: str) -> int | None:
        return int(self.tags[key][1]) if key in self.tags else None

    @property
    def classes(self) -> list[str]:
        """The labels ``@classLabel true`` lists (empty when it lists none)."""
        return self.tags["classlabel"][1].split(" ")[1:] if self.switch("classlabel") else []

    def check_complete(self) -> None:
        """At ``@data``: what the reader refuses whatever the cases, and declarations that
        contradict each other."""
        if self.switch("timestamps"):
            raise SequenceDataError(f"{self.where}: time-stamped .ts files (@timeStamps true) "
                                    f"are not supported; export the values without time stamps")
        if self.switch("targetlabel"):
            raise SequenceDataError(f"{self.where}: a regression .ts file (@targetLabel true); "
                                    f"classify needs class labels")
        if self.switch("univariate") and (self.count("dimensions") or 1) != 1:
            raise SequenceDataError(f"{self.where}: {self.said('univariate')} contradicts "
                                    f"{self.said('dimensions')}")
        if self.switch("equallength") is False and "serieslength" in self.tags:
            raise SequenceDataError(f"{self.where}: {self.said('equallength')} contradicts "
                                    f"{self.said('serieslength')}")

    def check_case(self, series: list[list[float]], label, ln: int) -> None:
        """One case (``series``: its dimensions' values) against the declarations."""
        where, dims, length = f"{self.where}, line {ln}", len(series), len(series[0])
        wanted = 1 if self.switch("univariate") else self.count("dimensions")
        if wanted is not None and dims != wanted:
            key = "univariate" if self.switch("univariate") else "dimensions"
            raise SequenceDataError(f"{where}: the case has {dims} dimension(s), but the "
                                    f"header declares {self.said(key)}")
        if self.count("serieslength") not in (None, length):
            raise SequenceDataError(f"{where}: the case has {length} value(s) per dimension, "
                                    f"but the header declares {self.said('serieslength')}")
        if self.first_length is None:
            self.first_length = (length, ln)
        elif self.switch("equallength") and length != self.first_length[0]:
            raise SequenceDataError(f"{where}: the case has {length} value(s) per dimension, the "
                                    f"case on line {self.first_length[1]} "
                                    f"{self.first_length[0]}, but the header declares "
                                    f"{self.said('equallength')}")
        if self.switch("missing") is False and any(math.isnan(v) for s in series for v in s):
            raise SequenceDataError(f"{where}: the case has a missing value ('?' or NaN), but "
                                    f"the header declares {self.said('missing')}")
        if label is not None and self.classes and label not in self.classes:
            hint = (f" ({label!r} is a label like any other: a file to label declares "
                    f"@classLabel false, or leaves the label empty)"
                    if label.lower() in MISSING_TOKENS else "")
            raise SequenceDataError(f"{where}: the label {label!r} is not among the declared "
                                    f"classes: {self.said('classlabel')}{hint}")


def _ts_value(text: str, line: int, where: str) -> float:
    text = text.strip()
    if text == "?" or text.lower() == "nan":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise SequenceDataError(f"{where}, line {line}: {text!r} is not a number") from None


def _ts_values(part: str, ln: int, where: str, header: _TsHeader) -> list[float]:
    """The values of one dimension of a case; a label where values were expected (a file
    without ``@classLabel true``) says so."""
    try:
        return [_ts_value(v, ln, where) for v in part.split(",")]
    except SequenceDataError as exc:
        if header.switch("classlabel") or "," in part:
            raise
        declared = (f"declares {header.said('classlabel')}" if "classlabel" in header.tags
                    else "has no @classLabel line")
        raise SequenceDataError(f"{exc}; the header {declared}, so every part of a case holds "
                                f"values: a file with labels declares @classLabel true "
                                f"<labels>") from None


@_as_sequence_errors
def read_ts(path, missing: str = "refuse", require_labels: bool = True) -> SequenceSet:
    """Read a UCR/UEA ``.ts`` file (see the module docstring)."""
    require_labels = true_or_false(require_labels, "require_labels")  # "no" is truthy
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
    path = Path(path)
    where = str(path)
    text = read_utf8(path, ".ts file", SequenceDataError)
    if not text.strip():
        raise SequenceDataError(f".ts file {where!r} is empty")
    header = _TsHeader(where)
    in_data = False
    xs, labels, notes, steps = [], [], [], []
    unlabelled = []  # where a label is missing, when labels are optional
    dims = None
    for ln, raw in enumerate(text_lines(text), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "%")):  # '%': the archive's ARFF-style comments
            continue
        if not in_data:
            if not line.startswith("@"):
                raise SequenceDataError(f"{where}, line {ln}: expected an @tag before @data, got "
                                        f"{line[:40]!r}")
            in_data = line[1:].split(" ")[0].lower() == "data"
            if in_data:
                header.check_complete()
            else:
                header.add(line, ln)
            continue
        parts = line.split(":")
        label = None
        if header.switch("classlabel"):
            label = parts.pop().strip()
            if not label:
                problem = (f"{where}, line {ln}: case {len(xs)} has no class label (nothing "
                           f"after the last ':')")
                if require_labels:
                    raise SequenceDataError(problem)
                unlabelled.append(problem)
                label = None
            labels.append(label)
        if "(" in line:
            raise SequenceDataError(f"{where}, line {ln}: time-stamped values '(t,v)' are not "
                                    f"supported")
        if not parts:  # a lone label: splitting would find zero dimensions
            what = ("no label after its values (no ':')" if "," in label else
                    f"no values before its label {label!r}")
            raise SequenceDataError(f"{where}, line {ln}: the case has {what}; under "
                                    f"{header.said('classlabel')} a case is 'v1,v2,...:label'")
        series = [_ts_values(p, ln, where, header) for p in parts]
        lens = {len(s) for s in series}
        if len(lens) != 1:
            raise SequenceDataError(f"{where}, line {ln}: the dimensions of this case have "
                                    f"different lengths {sorted(lens)}")
        header.check_case(series, label, ln)
        if dims is None:
            dims = len(series)
        elif len(series) != dims:
            raise SequenceDataError(f"{where}, line {ln}: {len(series)} dimensions, but earlier "
                                    f"cases have {dims}")
        seq = np.array(series, np.float64).T  # (T_i, D)
        sid = str(len(xs))
        for j in range(dims):
            seq[:, j], note = fill_missing(seq[:, j], missing, f"dim_{j}",
                                           range(1, len(seq) + 1),
                                           f"{where}, case {sid} (line {ln})", place="value")
            if note:
                notes.append(f"case {sid}, {note}")
        xs.append(seq)
        steps.append(np.full(len(seq), ln, np.int64))
    if not in_data:
        raise SequenceDataError(f"{where}: no @data line; is this a UCR/UEA .ts file?")
    if not xs:
        raise SequenceDataError(f"{where}: @data is followed by no cases")
    labels = _all_or_none(labels, unlabelled)
    if not labels:
        if require_labels:
            raise SequenceDataError(f"{where}: the cases have no class labels (@classLabel false)")
        labels = None
    features = [f"dim_{j}" for j in range(dims)]
    name = header.tags.get("problemname", ("", path.stem, 0))[1] or path.stem
    return SequenceSet(xs, labels, [str(i) for i in range(len(xs))], features,
                       f"{where} ({name})", notes, steps)


def ucr_pair(directory) -> tuple[Path, Path | None]:
    """``(train, test)`` files of a UCR/UEA problem folder: ``NAME_TRAIN.ts`` and, when
    present, ``NAME_TEST.ts`` (``None`` when absent).

    Names are compared in lower case after listing the folder, so ``X_TRAIN.TS`` and
    ``x_train.ts`` are found alike whether or not the file system itself ignores case; two
    files for one role (two problems, or one name in two spellings) are refused rather than
    one picked by listing order. Hidden files (``._X_TRAIN.ts``, macOS's resource fork of a
    copied file) and Excel's lock files (``~$...``) are not data and are left out.
    """
    d = Path(directory)
    files = _problem_files(d)
    train = [n for n in files if n.lower().endswith("_train.ts")]
    if not train:
        found = ", ".join(n for n in files if n.lower().endswith(".ts")) or "no .ts files"
        raise SequenceDataError(f"folder {str(d)!r} holds no *_TRAIN.ts file (names are "
                                f"matched in any letter case; its *_TEST.ts is optional); "
                                f"found: {found}")
    if len(train) > 1:
        raise SequenceDataError(f"folder {str(d)!r} holds {len(train)} files for the training "
                                f"set (*_TRAIN.ts in any letter case): {', '.join(train)}; keep "
                                f"one there, or give the file itself instead of the folder")
    stem = train[0][: -len("_train.ts")]
    wanted = stem.lower() + "_test.ts"
    test = [n for n in files if n.lower() == wanted]
    if len(test) > 1:
        raise SequenceDataError(f"folder {str(d)!r} holds {len(test)} files for the test set "
                                f"({stem}_TEST.ts in any letter case): {', '.join(test)}; keep "
                                f"one there")
    return d / train[0], (d / test[0] if test else None)


def _problem_files(d: Path) -> list[str]:
    """The names of the data files in the UCR/UEA problem folder ``d``, sorted (hidden files
    and lock files left out, see :func:`ucr_pair`)."""
    if not d.is_dir():
        raise SequenceDataError(f"{str(d)!r} is not a folder (a UCR/UEA problem folder holds "
                                f"NAME_TRAIN.ts and NAME_TEST.ts)")
    return sorted(p.name for p in d.iterdir() if p.is_file() and not is_left_beside_data(p.name))


def ucr_test(directory) -> Path | None:
    """The ``NAME_TEST.ts`` of a UCR/UEA problem folder, the file a trained model labels:
    the one of its ``NAME_TRAIN.ts`` (as :func:`ucr_pair` finds it), or in a folder without
    training data the only ``*_TEST.ts`` (in any letter case); ``None`` when there is none.
    Two test files with no training file to tell them apart are refused."""
    d = Path(directory)
    files = _problem_files(d)
    if any(n.lower().endswith("_train.ts") for n in files):
        return ucr_pair(d)[1]
    test = [n for n in files if n.lower().endswith("_test.ts")]
    if len(test) > 1:
        raise SequenceDataError(f"folder {str(d)!r} holds {len(test)} files for the test set "
                                f"(*_TEST.ts in any letter case): {', '.join(test)}; keep one "
                                f"there, or give the file itself instead of the folder")
    return d / test[0] if test else None


def read_sequences(path, require_labels: bool = True, **csv_options) -> SequenceSet:
    """A ``.ts`` file or a CSV file (``csv_options``: id_col, label_col, time_col, features,
    missing, require_label_column, note_unread)."""
    require_labels = true_or_false(require_labels, "require_labels")  # "no" is truthy
    p = Path(path)
    if p.suffix.lower() == ".arff":  # read as CSV, its @-header gives a baffling field count
        raise SequenceDataError(f"{str(p)!r} is an ARFF file, which is not read; the UCR/UEA "
                                f"archive ships each problem as .ts files too "
                                f"({p.stem}.ts): pass that")
    if p.suffix.lower() == ".ts":
        return read_ts(p, missing=csv_options.get("missing", "refuse"),
                       require_labels=require_labels)
    return read_sequence_csv(p, require_labels=require_labels, **csv_options)


# -- example sets ---------------------------------------------------------------------------

def synthetic_sequences(n: int, rng: np.random.Generator, min_len: int = 8, max_len: int = 24
                        ) -> SequenceSet:
    """A set with a known answer: the class is the frequency of a noisy sine.

    Class k in {0, 1, 2} draws ``sin(2π f_k t + φ) + 0.3·noise`` with periods 1/f of
    16, 8 and 4 steps, a random phase φ and a random length in ``[min_len, max_len]``.
    A sequence of at least 8 steps shows half a period of the slowest class, so a
    correct classifier is right on nearly every sequence; chance is 1/3.
    """
    rng = generator(rng)
    n = non_negative_int(n, "n")
    min_len = positive_int(min_len, "min_len")
    if positive_int(max_len, "max_len") < min_len:
        raise ValueError(f"max_len must be >= min_len, got min_len={min_len}, max_len={max_len}")
    periods = (16.0, 8.0, 4.0)
    y = rng.integers(0, 3, size=n)
    xs = []
    for k in y:
        T = int(rng.integers(min_len, max_len + 1))
        t = np.arange(T)
        phase = rng.uniform(0, 2 * np.pi)
        s = np.sin(2 * np.pi * t / periods[k] + phase) + 0.3 * rng.normal(size=T)
        xs.append(s[:, None])
    labels = [f"period_{int(periods[k])}" for k in y]
    return SequenceSet(xs, labels, [str(i) for i in range(n)], ["x"], "synthetic sines")


def digits_sequences() -> SequenceSet:
    """scikit-learn's bundled 8x8 handwritten digits read row by row: 8 steps of 8 pixels
    (values 0..16). Needs scikit-learn (the data ships inside it; nothing is downloaded)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise OSError("the digits set ships with scikit-learn; pip install scikit-learn") from None
    d = load_digits()
    xs = [img.astype(np.float64) for img in d.images]  # each (8 rows = steps, 8 columns)
    return SequenceSet(xs, [str(int(t)) for t in d.target], [str(i) for i in range(len(xs))],
                       [f"col_{j}" for j in range(8)], "scikit-learn digits (8 rows x 8 pixels)")
