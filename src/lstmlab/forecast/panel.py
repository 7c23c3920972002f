"""Many series at once: a long-format CSV (one row per series and time) or a folder of CSVs.

Dimensions: S series; each series has its own length N_s.

A long-format file has an id column naming the series, an optional time column and a value
column::

    series,date,y
    A,2001-01,112
    A,2001-02,118
    B,2001-01,7.5

Rows of one series need not be adjacent. With a time column whose labels can be ordered
(numbers, date-times with a UTC offset, ISO dates and date-times) each series is sorted by
time, and a note names where a series' rows first went back; otherwise its rows keep the
file's order. Errors name the file, the series and the
line: an empty id, a time that occurs twice within one series, a value that is not a number,
missing values (handled by the same ``missing`` policy as a single series). Ids that differ
only in case or spacing, or that are one number written differently (``1``, ``1.0``,
``01``), stay apart, with a note naming them. A folder holds
one CSV per series, named after the file (``sales_A.csv`` -> ``sales_A``), each read like a
single series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._files import is_left_beside_data
from ..classify.data import same_number_note
from .data import (MISSING_POLICIES, SeriesError, TimeSeries, check_observed_end,
                   checked_time_order, column_index, excel_dates, filled_columns,
                   lookalike_ids_note, parse_numeric_column, read_csv_table, read_series,
                   time_gap_problem, unsorted_note)


@dataclass
class Panel:
    """Named series (target only), in the order they first appear."""

    series: dict  # name -> TimeSeries
    source: str
    id_column: str | None  # None for a folder
    time_column: str | None
    value_column: str
    notes: list = field(default_factory=list)  # what was assumed of the file as a whole

    def __len__(self) -> int:
        return len(self.series)

    def names(self) -> list[str]:
        return list(self.series)


# The flags that name the columns of a long-format file; the value column's flag has two
# spellings, and the error names both, as either may be the one typed.
_COLUMN_FLAGS = ("--id", "--value (--target)", "--time")


def check_distinct_columns(id_column: str, value: str, time: str | None) -> None:
    """A ``SeriesError`` naming the flags that name one column twice: the id, the value and
    the time are three roles, and one column cannot hold two of them."""
    named = [(flag, col) for flag, col in zip(_COLUMN_FLAGS, (id_column, value, time))
             if col is not None]
    for i, (flag, col) in enumerate(named):
        flags = [flag, *(other for other, c in named[i + 1:] if c == col)]
        if len(flags) > 1:
            which = " and ".join([", ".join(flags[:-1]), flags[-1]])
            raise SeriesError(f"{which} {'both' if len(flags) == 2 else 'all'} name the column "
                              f"{col!r}; the id, value and time columns must be different")


def read_long(path, id_column: str, value: str, time: str | None = None,
              missing: str = "refuse", gap_rows: int | None = None,
              observed_end: bool = False, read_rows: int | None = None) -> Panel:
    """A long-format CSV as a :class:`Panel` (see the module docstring); a gap in a series'
    time column is an error among its last ``gap_rows`` rows (None: all of them), with
    ``observed_end`` so are rows without a value at a series' end, and with ``read_rows`` a
    series' rows up to a missing value that ``missing`` does not fill before its last
    ``read_rows`` rows are left out (each as in ``read_series``)."""
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
    check_distinct_columns(id_column, value, time)
    header, rows, lines = read_csv_table(path)
    ci = column_index(header, id_column, path, "id column")
    cv = column_index(header, value, path, "value column")
    ct = None if time is None else column_index(header, time, path, "time column")
    notes = []
    if ct is not None:
        dates, note = excel_dates([row[ct] for row in rows], time)
        for row, t in zip(rows, dates):
            row[ct] = t
        notes += [note] if note else []
    groups: dict[str, list[int]] = {}
    for r, row in enumerate(rows):
        name = row[ci]
        if not name:
            raise SeriesError(f"{str(path)!r}, line {lines[r]}: the id column {id_column!r} is "
                              f"empty; every row needs the name of its series")
        groups.setdefault(name, []).append(r)
    for note in (lookalike_ids_note(groups, id_column, "series"),
                 same_number_note(groups, id_column, "id", "series")):
        notes += [note] if note else []
    series = {}
    unsorted: list[tuple[str, str]] = []  # (series, where its rows first go back in time)
    mixed: list[str] = []  # the note on the first series whose times cannot be ordered
    for name, idx in groups.items():
        where = f"{str(path)!r}, series {name!r}"
        ln = [lines[r] for r in idx]
        labels = None
        if ct is not None:
            labels = [rows[r][ct] for r in idx]
            order, back, note = checked_time_order(labels, ln, time, where,
                                                   "each series needs one value per time")
            if back:
                unsorted.append((name, back))
                idx, ln, labels = ([a[i] for i in order] for a in (idx, ln, labels))
            if note and not mixed:
                mixed.append(f"series {name!r}: {note}")
            problem = time_gap_problem(labels, ln, gap_rows)
            if problem:
                raise SeriesError(f"{where}, {problem}")
        try:
            raw = parse_numeric_column([rows[r][cv] for r in idx], ln, value, path)
        except SeriesError as exc:
            raise SeriesError(f"series {name!r}: {exc}") from None
        if observed_end:
            check_observed_end(raw, ln, value, where)
        values, start, filled = filled_columns([raw], [value], ln, missing, where, read_rows)
        series[name] = TimeSeries(values, [value], None if labels is None else labels[start:],
                                  f"{path} [{name}]", np.asarray(ln[start:]), filled, start)
    if unsorted:
        name, back = unsorted[0]
        what = (f"the rows of series {name!r}" if len(unsorted) == 1 else
                f"the rows of {len(unsorted)} series (the first: {name!r})")
        notes.append(unsorted_note(back, time, what))
    return Panel(series, str(path), id_column, time, value, notes + mixed)


def read_folder(path, value: str, time: str | None = None, missing: str = "refuse",
                gap_rows: int | None = None, observed_end: bool = False,
                read_rows: int | None = None) -> Panel:
    """Every ``*.csv`` in the folder ``path`` as one series named after its file, in the
    order of the file names. The extension matches in any case (``.CSV`` too, as written by
    some exporters), on every file system, so a folder reads the same everywhere. Files a
    system or an editor leaves beside the data are not series: hidden ones (``._sales.csv``,
    macOS's resource forks on a copied folder) and ``~$sales.csv`` (the lock file Excel
    keeps while a file is open). ``gap_rows``, ``observed_end`` and ``read_rows`` are
    :func:`.data.read_series`'s, for every file."""
    if not Path(path).is_dir():
        raise SeriesError(f"{str(path)!r} is not a folder")
    files = sorted((p for p in Path(path).iterdir() if p.name.lower().endswith(".csv")
                    and not is_left_beside_data(p.name)),
                   key=lambda p: p.name)  # by code point: Windows' paths sort ignoring case
    if not files:
        raise SeriesError(f"folder {str(path)!r} holds no .csv files")
    first = {}
    for f in files:
        if f.stem in first:  # 'a.csv' beside 'a.CSV': two files, one series name
            raise SeriesError(f"folder {str(path)!r} holds both {first[f.stem].name!r} and "
                              f"{f.name!r}: each file is one series named after it, so rename "
                              f"one of them")
        first[f.stem] = f
    series = {f.stem: read_series(f, value, time=time, missing=missing, gap_rows=gap_rows,
                                  observed_end=observed_end, read_rows=read_rows)
              for f in files}
    return Panel(series, str(path), None, time, value)


def read_panel(path, value: str, id_column: str | None = None, time: str | None = None,
               missing: str = "refuse") -> Panel:
    """A folder (one CSV per series) or, with ``id_column``, a long-format CSV."""
    if Path(path).is_dir():
        if id_column is not None:
            raise SeriesError(f"{str(path)!r} is a folder (one CSV per series): leave out --id")
        return read_folder(path, value, time, missing)
    if id_column is None:
        raise SeriesError(f"{str(path)!r} is a file: many series in one file need --id COLUMN")
    return read_long(path, id_column, value, time, missing)
