"""Time series from CSV files: reading, missing values, the shipped series, season detection.

Dimensions: N time steps (rows), D columns used as model input (the target is column 0).

Reading is strict because a forecast from silently mangled data is worse than none:

* an empty file, a header without rows, a row with the wrong number of fields, a missing
  column: a :class:`SeriesError` that names the file and what was expected;
* a cell that is not a number: the error names its line in the file, its column and its text;
* missing cells (empty, ``NA``, ``NaN``, ``null``, ``?``) are found and counted, then handled
  by an explicit policy: ``"refuse"`` (the default: an error listing where they are),
  ``"ffill"`` (carry the last observed value forward) or ``"interpolate"`` (linear in the row
  index). What was filled is reported in :attr:`TimeSeries.notes`.

Line numbers are those of the file as a text editor shows them (the header is line 1).
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path

import numpy as np

from .._files import read_utf8, text_lines
from .._words import counted

MISSING_POLICIES = ("refuse", "ffill", "interpolate")
MISSING_TOKENS = frozenset({"", "na", "nan", "n/a", "null", "none", "?"})

# name -> (file, time column, target column, what it is)
SHIPPED = {
    "airline": ("airline_passengers.csv", "Date", "Passengers",
                "monthly international airline passengers 1949-01..1960-12 (thousands; Box, "
                "Jenkins & Reinsel, Series G)"),
    "sunspots": ("sunspots_yearly.csv", "YEAR", "SUNACTIVITY",
                 "yearly sunspot activity 1700..2008 (NOAA NGDC)"),
}


class SeriesError(ValueError):
    """Time-series data that cannot be used as asked; the message says where and why."""


@dataclass
class TimeSeries:
    """A numeric table read from a CSV: the target first, then the extra input features."""

    values: np.ndarray  # (N, D) float64; column 0 is the target
    columns: list[str]  # D column names, target first
    time: list[str] | None  # N time labels (from the time column), or None
    source: str  # where it came from, for reports
    lines: np.ndarray = field(default=None)  # (N,) the file line of each row
    notes: list[str] = field(default_factory=list)  # what was filled or assumed
    # rows of the file before the first one held, left out unread (``read_series``'s
    # ``read_rows``): a position counted in rows from the file's first row counts them
    left_out: int = 0

    @property
    def target(self) -> np.ndarray:
        return self.values[:, 0]  # (N,)

    def __len__(self) -> int:
        return self.values.shape[0]

    def time_label(self, i: int) -> str:
        return self.time[i] if self.time is not None else str(i)


def check_time_series(series, name: str = "series") -> None:
    """A ``TypeError`` saying how to make a :class:`TimeSeries` when ``series`` is not one
    (an array or a list would otherwise fail deep inside, on a missing attribute)."""
    if not isinstance(series, TimeSeries):
        raise TypeError(f"{name} must be a TimeSeries, got {type(series).__name__}: read one "
                        f"with read_series(path, column) or load_shipped(name), or wrap an "
                        f"array a as TimeSeries(values=a.reshape(len(a), -1), columns=[...], "
                        f"time=None, source='...')")


# -- CSV ------------------------------------------------------------------------------------

def read_csv_table(path, empty_rows: bool = False
                   ) -> tuple[list[str], list[list[str]], list[int]]:
    """``(header, rows, line_numbers)`` of a CSV file; every row has the header's width.

    Blank lines carry nothing, except with ``empty_rows``: between two data rows, a row of
    empty cells as a spreadsheet writes it (separators alone, ``,,``, or in a one-column
    file an empty line) is kept as a row of empty cells, for a table read by position,
    where it is a time step with its values missing. An empty line in a file of several
    columns is skipped even then (a spreadsheet writes an empty row as its separators), and
    a long-format table, whose every row names its series, skips both: such a row names
    none."""
    path = Path(path)
    text = read_utf8(path, "CSV file", SeriesError)
    if not text.strip():
        raise SeriesError(f"CSV file {str(path)!r} is empty")
    text = _without_sep_line(text, path)
    # skipinitialspace: in 'date, "units"' the quotes after the space delimit the field
    # (as in every spreadsheet), rather than being read as part of the name '"units"'.
    reader = csv.reader(text_lines(text), skipinitialspace=True)
    header: list[str] | None = None
    titles: list | None = None  # see _title_lines
    rows, lines = [], []
    empty: list[int] = []  # lines of the empty rows since the last data row
    for row in _rows(reader, path):
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            if empty_rows and rows and (len(row) == len(header) or (len(header) == 1 and not row)):
                empty.append(line)
            continue
        row = [c.strip() for c in row]
        row[0] = row[0].removeprefix("\ufeff")  # a byte-order mark: files joined into one
        if header is None:
            header, header_line = row, line  # a name may repeat: see column_index
            titles = _title_lines([], row, line, path)  # the lines so far, while titles
            continue
        if titles is not None:
            titles = _title_lines(titles, row, line, path)
        if row == header and not all(_is_number(c) for c in row):  # a headerless file's
            # first row may well come again; a repeated header of names is files joined
            raise SeriesError(f"CSV file {str(path)!r}, line {line} repeats the header (line "
                              f"{header_line}): the file looks like several files joined into "
                              f"one; remove the repeated header and check the rows around it")
        if len(row) > len(header) and not any(row[len(header):]):
            row = row[:len(header)]  # trailing separators with nothing after them: no data
        if len(row) != len(header):
            other = _other_separator(header)
            hint = (f"; the header is one column holding {other!r}: the file looks separated by "
                    f"{other!r}, its commas decimal commas (a European locale's export), and a "
                    f"CSV file here is separated by commas, with decimal points" if other else "")
            raise SeriesError(f"CSV file {str(path)!r}, line {line}: {len(row)} fields, but the "
                              f"header has {len(header)} ({', '.join(header)}){hint}")
        rows += [[""] * len(header) for _ in empty] + [row]
        lines += empty + [line]
        empty = []
    if header is None:  # only separators and blanks
        raise SeriesError(f"CSV file {str(path)!r} is empty (no header, no rows)")
    if not rows:
        raise SeriesError(f"CSV file {str(path)!r} has a header ({', '.join(header)}) but no "
                          f"data rows")
    return header, rows, lines


def _title_lines(titles: list, row: list[str], line: int, path) -> list | None:
    """The lines read so far, with ``row``, while each holds one cell of text (a title, as
    a spreadsheet report writes above its table); None once one does not. A row of two or
    more cells of text below such lines is the header they push down: an error says so,
    since taking the title for the header names every column wrongly. A line holding
    another separator is no title (see ``_other_separator``)."""
    named = [c for c in row if c]
    if len(named) == 1 and not _is_number(named[0]) and not _other_separator(named):
        return titles + [(line, row)]
    if not titles or len(named) < 2 or any(_is_number(c) for c in named):
        return None
    first, cells = titles[0]
    raise SeriesError(f"CSV file {str(path)!r}, line {line} ({', '.join(named)}) looks like the "
                      f"header, below a title (line {first}: {next(c for c in cells if c)!r}); "
                      f"a CSV file here starts with its header: delete the "
                      f"{'line' if len(titles) == 1 else 'lines'} above it")


def _without_sep_line(text: str, path) -> str:
    """``text`` with Excel's separator directive (a first line ``sep=,``) blanked, so line
    numbers stay those of the file; a directive for another separator is an error naming
    it, since the rest of the file is then separated by it."""
    first, nl, rest = text.partition("\n")
    found = re.fullmatch(r"sep=(.?)", first.strip())
    if not found:
        return text
    if found.group(1) != ",":
        raise SeriesError(f"CSV file {str(path)!r}, line 1: {first.strip()!r} declares "
                          f"{found.group(1)!r} as the separator (a spreadsheet's directive); a "
                          f"CSV file here is separated by commas, with decimal points")
    return nl + rest


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _rows(reader, path):
    """The rows of a ``csv.reader``, its errors (a field longer than the csv module's limit,
    a quote left open) as a SeriesError naming the file and line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise SeriesError(f"CSV file {str(path)!r}, line {reader.line_num}: {exc}") from None


def _other_separator(header: list[str]) -> str | None:
    """The separator a one-column header holds (tab, ``;`` or ``|``): the file is separated
    by it, not by commas."""
    return next((sep for sep in ("\t", ";", "|") if len(header) == 1 and sep in header[0]), None)


def repeated_names(header: list[str]) -> list[str]:
    """The names ``header`` gives to more than one column, unnamed columns aside (a
    spreadsheet's export ends every line with a comma per empty column it once had)."""
    return sorted(c for c, n in Counter(header).items() if n > 1 and c)


def column_index(header: list[str], name: str, path, what: str = "column") -> int:
    """Index of ``name`` in ``header``; a clear error listing the columns if absent, or
    naming them if the header gives ``name`` to several (which one is meant, only the user
    knows). Other columns may share a name: an export's columns not asked for are no
    concern of the reader."""
    if name in header:
        at = [i for i, h in enumerate(header) if h == name]
        if len(at) > 1:
            raise SeriesError(f"{what} {name!r}: CSV file {str(path)!r} has {len(at)} columns "
                              f"of that name (columns {', '.join(str(i + 1) for i in at)}); "
                              f"rename all but one of them in the header")
        return at[0]
    close = [h for h in header if h.lower() == name.lower()]
    hint = f" (did you mean {close[0]!r}? names are case-sensitive)" if close else ""
    other = _other_separator(header)
    if other and not close:  # one column holding the names: another separator
        hint = (f" (the header is one column holding {other!r}: the file looks separated by "
                f"{other!r}, and a CSV file here is separated by commas)")
    named = [h for h in header if h]
    if named and all(_is_number(h) or _YEAR_FIRST.fullmatch(h) for h in named):
        hint = (f" (its first line holds values, {named[0]!r}, rather than names: the file "
                f"looks to have no header; a CSV file here starts with a line naming its "
                f"columns)")
    raise SeriesError(f"{what} {name!r} is not in {str(path)!r}{hint}; its columns are: "
                      f"{', '.join(header)}")


def parse_numeric_column(cells: list[str], lines: list[int], column: str, path) -> np.ndarray:
    """Floats of one column; missing tokens become NaN; any other text is an error that
    names the line, the column and the text."""
    out = np.empty(len(cells), np.float64)
    for i, cell in enumerate(cells):
        if cell.lower() in MISSING_TOKENS:
            out[i] = np.nan
            continue
        try:
            v = float(cell)
        except ValueError:
            raise SeriesError(f"{str(path)!r}, line {lines[i]}, column {column!r}: {cell!r} is "
                              f"not a number{_number_hint(cell)}") from None
        if math.isinf(v):
            raise SeriesError(f"{str(path)!r}, line {lines[i]}, column {column!r}: {cell!r} is "
                              f"infinite")
        out[i] = v
    return out


# A date or date-time as a spreadsheet or ISO 8601 writes it: 2021-01-05, 03/04/2021,
# 5.1.2021, 2021-01-05 06:00, 2021-01-05T06:00:00Z; a month 2021-01 or a quarter 2021-Q1.
_DATE_LIKE = re.compile(r"\d{1,4}([-/.])\d{1,2}\1\d{1,4}(?:[ T]\d{1,2}:\d{2}.*)?"
                        r"|\d{4}-(?:\d{2}|Q[1-4])")


def _number_hint(cell: str) -> str:
    """What a spreadsheet's export most likely made of a number ``cell`` that does not read
    as one: a thousands separator (a comma; a space, a no-break space or an apostrophe, as
    French or Swiss formats write it) or decimal comma, an error value, a typographic minus,
    a dash (zero in an accounting format, or a missing value: only its writer knows which),
    a number in a percent, currency or accounting format, a date (its column named as a
    number, where --time names the labels)."""
    if not cell.strip("-\u2013\u2014"):
        return (" (a dash: a spreadsheet writes it for zero, some exports for a missing value; "
                "write 0, or leave the cell empty to mark it missing)")
    if cell.startswith("#"):
        return (" (a spreadsheet's error value; leave the cell empty, or write NA, to mark it "
                "missing)")
    if "," in cell or _is_number(re.sub(r"(?<=\d)[ \u00a0\u202f'](?=\d)", "", cell)):
        return (" (a thousands separator or a decimal comma: numbers here are written with a "
                "decimal point and no separators, 1234.5)")
    if _DATE_LIKE.fullmatch(cell):
        return (" (a date or time: name its column with --time, which orders the rows; the "
                "target and --features are columns of numbers)")
    if cell.endswith("%") and _is_number(cell[:-1]):
        return " (a percentage: write the number alone, 0.05 for 5%, or 5 in a column of percents)"
    if _is_number(cell.strip("$\u20ac\u00a3\u00a5 \u00a0")):
        return " (a currency sign: write the amount alone, 5.00)"
    if cell.startswith("(") and cell.endswith(")") and _is_number(cell[1:-1]):
        return f" (an accounting format's negative number: write -{cell[1:-1]})"
    if "\u2212" in cell:
        return " (it holds the minus sign '\u2212'; write the hyphen-minus '-')"
    return ""


def fill_missing(values: np.ndarray, policy: str, column: str, lines, where: str,
                 place: str = "line") -> tuple[np.ndarray, str | None]:
    """Apply the missing-value ``policy`` to one column ``(N,)``; returns ``(values, note)``.

    ``lines[i]`` says where value i is, as a ``place``: the file's line for a CSV row; a
    ``.ts`` case holds all its values on one line, so its reader names their positions
    (``place="value"``), and there is no row to drop."""
    if policy not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {policy!r}")
    miss = np.isnan(values)
    n = int(miss.sum())
    if n == 0:
        return values, None
    at = [int(lines[i]) for i in np.flatnonzero(miss)]
    shown = f"{place}{'' if n == 1 else 's'} " + ", ".join(str(a) for a in at[:8]) + (
        " ..." if n > 8 else "")
    if n == len(values):
        raise SeriesError(f"{where}: column {column!r} has no values at all (all {n} missing)")
    if policy == "refuse":
        raise SeriesError(f"{where}: column {column!r} has {counted(n, 'missing value')} "
                          f"({shown}); pass --missing ffill or --missing interpolate to fill "
                          f"{'it' if n == 1 else 'them'}, or fix the file")
    out = values.copy()
    idx = np.arange(len(values))
    if policy == "ffill":
        if miss[0]:
            first = int(np.flatnonzero(~miss)[0])
            drop = (f"drop {'that row' if first == 1 else 'those rows'} or "
                    if place == "line" else "")
            raise SeriesError(f"{where}: column {column!r} starts with "
                              f"{counted(first, 'missing value')} ({place} {at[0]}): there is "
                              f"nothing to carry forward; {drop}use --missing interpolate")
        last_seen = np.maximum.accumulate(np.where(miss, 0, idx))  # (N,) index of last value
        out = values[last_seen]
        how = "carried the previous value forward"
    else:
        # Linear in the row index; before the first / after the last value np.interp holds
        # the nearest value constant, which the note says.
        out[miss] = np.interp(idx[miss], idx[~miss], values[~miss])
        how = "interpolated linearly"
        if miss[0] or miss[-1]:
            how += " (gaps at the ends take the nearest value)"
    return out, f"column {column!r}: {counted(n, 'missing value')} at {shown}: {how}"


# A label that starts with a four-digit year, then anything but a digit: ISO 8601 dates and
# date-times ('1949-01', '2001-Q3', '2020-03-01T12:00'), which sort correctly as text when
# they have one width. 'Jan 2000' or '01/02/2000' have one width too, but not that order.
_YEAR_FIRST = re.compile(r"\d{4}(?:\D.*)?", re.DOTALL)


def empty_time_problem(labels: list[str], lines: list[int], column: str) -> str | None:
    """A message naming the first row whose time cell is empty: one such cell leaves the
    column without an order (every check of it is skipped, the file's order taken instead),
    and the time of that row unknown. Among numbers or ISO dates, a label without a digit
    ('Total', 'Sum') is named too: a spreadsheet report's totals row, which, read as one
    more step, would end the series with its sum."""
    i = next((i for i, t in enumerate(labels) if not t), None)
    if i is not None:
        return (f"line {lines[i]}: the time column {column!r} is empty; every row needs its "
                f"time (or leave out --time to take the rows in the file's order)")
    if not any(_is_number(t) or _YEAR_FIRST.fullmatch(t) for t in labels):
        return None
    i = next((i for i, t in enumerate(labels) if not any(c.isdigit() for c in t)), None)
    if i is None:
        return None
    return (f"line {lines[i]}: the time column {column!r} holds {labels[i]!r}, which is not a "
            f"time (a report's totals row?); every row is one time step: remove that row")


# An ISO 8601 date-time with a UTC offset ('2021-10-31T02:30:00+02:00', '...Z'): as text,
# the local times of a DST change go back ('02:30+02:00' then '02:15+01:00') while the
# instants go forward, and 'Z' and '+00:00' differ in width.
_ZONED = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
                    r"(?:Z|[+-]\d{2}(?::?\d{2})?)")


# A time of day in a date-time label ('2021-10-31 02:00', '...T02:00:00').
_CLOCK = re.compile(r"\d[T ]\d{1,2}:\d{2}")


def time_order_key(labels: list[str]) -> list | None:
    """Sort keys for time labels: numbers, date-times with a UTC offset (by the instant they
    name), ISO dates of one width (year first, so they sort correctly as text), or ISO dates
    and date-times without an offset ('2021-01-03' beside '2021-01-03 06:00', by the time
    they name); None for labels that cannot be ordered ('t2' before 't10', 'Feb 2000' before
    'Jan 2000' as text, a time with an offset beside one without)."""
    try:
        return [float(t) for t in labels]
    except ValueError:
        pass
    if all(_ZONED.fullmatch(t) for t in labels):
        try:
            return [datetime.fromisoformat(t).timestamp() for t in labels]
        except ValueError:  # a month 13, a 25th hour: not a time
            return None
    if not all(_YEAR_FIRST.fullmatch(t) for t in labels):
        return None
    if len({len(t) for t in labels}) == 1:
        return labels
    try:
        stamps = [datetime.fromisoformat(t) for t in labels]
    except ValueError:
        return None
    return stamps if all(t.tzinfo is None for t in stamps) else None


def mixed_time_note(labels: list[str], lines: list[int], column: str) -> str | None:
    """A note when the time labels cannot be ordered because they are not written alike
    and some are ISO dates ('2021-01-01' beside '03/01/2021', as a spreadsheet writes cells
    it took for dates of its locale; a time with a UTC offset beside one without): the rows
    are then taken in the file's order, their order and gaps unchecked, which a file of
    ISO dates otherwise has checked."""
    if not any(_YEAR_FIRST.fullmatch(t) for t in labels) or time_order_key(labels) is not None:
        return None
    shape = [re.sub(r"\d", "0", t) for t in labels]
    i = next((i for i, s in enumerate(shape) if s != shape[0]), None)
    if i is None:
        return None
    return (f"the time column {column!r} cannot be ordered: {labels[i]!r} (line {lines[i]}) "
            f"is not written like {labels[0]!r} (line {lines[0]}); the rows are taken in the "
            f"file's order, and neither their order nor gaps in it are checked")


def time_order(labels: list[str], lines: list[int]
               ) -> tuple[list[int], str | None, str | None]:
    """``(order, back, repeat)`` of the rows with time ``labels``: the row indices in time
    order; where the file's order first goes back in time (``"line 4: '2' after '3'"``), or
    None; the first time that occurs twice, or None (two clock times without a UTC offset say
    that the end of daylight saving time repeats an hour of local time; a date beside its
    midnight is no such hour).

    Labels that can be ordered (see ``time_order_key``) are sorted, keeping the file's order
    among equal times; labels in a format that cannot be ordered ('03/04/2021') keep the
    file's order. Times are compared as they are ordered, so '1' and '1.0' are one time; a
    time in two rows is a duplicate in any format."""
    keys = time_order_key(labels)
    order = list(range(len(labels)))
    back = None
    if keys is not None:
        order.sort(key=keys.__getitem__)
        i = next((i for i in range(1, len(keys)) if keys[i] < keys[i - 1]), None)
        if i is not None:
            back = f"line {lines[i]}: {labels[i]!r} after {labels[i - 1]!r}"
    first: dict = {}
    for i in order:
        k = labels[i] if keys is None else keys[i]
        if k in first:
            j = first[k]
            same = (repr(labels[i]) if labels[i] == labels[j] else
                    f"{labels[j]!r} (as {labels[i]!r})")
            local = all(_CLOCK.search(t) and not _ZONED.fullmatch(t)
                        for t in (labels[i], labels[j]))
            dst = ("; local clock times repeat an hour where daylight saving time ends: "
                   "write them with their UTC offset, 2021-10-31T02:00+01:00" if local else "")
            return order, back, (f"line {lines[i]}: the time {same} occurs twice (lines "
                                 f"{lines[j]} and {lines[i]}{dst})")
        first[k] = i
    return order, back, None


def checked_time_order(labels: list[str], lines: list[int], column: str, where: str,
                       repeated: str) -> tuple[list[int], str | None, str | None]:
    """``(order, back, note)`` of a series' time labels as ``time_order`` finds them, with
    ``mixed_time_note``'s note; an empty or totals cell (``empty_time_problem``) or a time
    given twice (followed by ``repeated``, what to do) is a SeriesError naming ``where``."""
    problem = empty_time_problem(labels, lines, column)
    if problem:
        raise SeriesError(f"{where}, {problem}")
    order, back, repeat = time_order(labels, lines)
    if repeat:
        raise SeriesError(f"{where}, {repeat}; {repeated}")
    return order, back, mixed_time_note(labels, lines, column)


def unsorted_note(back: str, column: str, what: str = "the rows") -> str:
    """The note a reader leaves when it sorts rows by time: where their order went back."""
    return f"{what} are not in time order ({back}): they are read sorted by {column!r}"


SHOWN_ID_GROUPS = 3  # groups of look-alike ids a note names; it counts the rest


def lookalike_ids_note(ids, column: str, what: str, kind: str = "id") -> str | None:
    """The note a long-format reader leaves when ids of the ``column`` differ only in case or
    in the spaces between words (``'Store A'``, ``'store a'``, ``'Store  A'``): each is read
    as a ``what`` (series, sequence) of its own, which a retyped id seldom is meant to be;
    None when no two ids fold together. Spaces around a cell are gone already (the CSV
    reader strips every cell). A note, not an error: the file may mean them apart. ``kind``
    names the values in the note: ids, or the labels of a classifier's classes."""
    folded: dict[str, list[str]] = {}
    for name in ids:
        folded.setdefault(" ".join(name.split()).casefold(), []).append(name)
    groups = [names for names in folded.values() if len(names) > 1]
    if not groups:
        return None
    shown = "; ".join(", ".join(repr(n) for n in names) for names in groups[:SHOWN_ID_GROUPS])
    more = len(groups) - SHOWN_ID_GROUPS
    return (f"the {kind} column {column!r} holds {kind}s that differ only in case or spacing "
            f"({shown}{f'; and {more} more such groups' if more > 0 else ''}): each is read "
            f"as a {what} of its own; write them alike if they name one {what}")


# Excel writes a date cell without a date format as its serial number: days since
# 1899-12-30 (the 1900 date system, past its phantom 1900-02-29). Whole numbers from 20000
# (1954-10-03) to 80000 (2119-01-10) in a column whose name says date are taken for them.
_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_DAYS = (20_000, 80_000)


def excel_dates(labels: list[str], column: str) -> tuple[list[str], str | None]:
    """``(labels, note)``: time labels that are Excel serial dates (see ``_EXCEL_DAYS``; the
    column's name holds 'date') as ISO dates, with a note saying so; other labels as they
    are, and no note. Read as numbers they pass for steps: monthly data (31, 28, 31 days
    apart) reads as a column with gaps, and forecasts go on from the last number."""
    if "date" not in column.lower():
        return labels, None
    try:
        days = [float(t) for t in labels]
    except ValueError:
        return labels, None
    if not all(d.is_integer() and _EXCEL_DAYS[0] <= d < _EXCEL_DAYS[1] for d in days):
        return labels, None
    dates = [(_EXCEL_EPOCH + timedelta(days=int(d))).isoformat() for d in days]
    lo, hi = int(min(days)), int(max(days))
    note = (f"the time column {column!r} holds whole numbers {lo}..{hi}, as a spreadsheet "
            f"writes date cells without a date format: read as Excel dates "
            f"{_EXCEL_EPOCH + timedelta(days=lo)}..{_EXCEL_EPOCH + timedelta(days=hi)} (format "
            f"the column as dates, yyyy-mm-dd, before exporting to leave no doubt)")
    return dates, note


# Time labels with a regular spacing a gap can be told from: whole numbers (counts and
# years; below 1e5, so that dates written as numbers, 200401 or 20040131, are not taken for
# counts), YYYY-MM or YYYYMM months (every one of them 01..12) and YYYY-Qn quarters (or
# YYYYQn, as pandas writes a quarter). Days are told apart by ``daily_dates``: business
# days skip weekends by design.
_REGULAR = ((re.compile(r"(\d{4})-?(\d{2})"), 12, "month"), (re.compile(r"(\d{4})-?Q([1-4])"), 4,
                                                              "quarter"))


def time_steps(labels: list[str]) -> tuple[list[int], str] | None:
    """``(step numbers, unit)`` of regular time labels (see ``_REGULAR``), else None."""
    try:
        steps = [int(t) for t in labels]
        if all(abs(t) < 100_000 for t in steps):
            return steps, "step"
    except ValueError:
        pass
    for pattern, per_year, unit in _REGULAR:
        found = [pattern.fullmatch(t) for t in labels]
        if all(found) and all(1 <= int(m.group(2)) <= per_year for m in found):
            return [int(m.group(1)) * per_year + int(m.group(2)) - 1 for m in found], unit
    return None


def time_gap_problem(labels: list[str], lines: list[int] | None,
                     rows: int | None = None) -> str | None:
    """A message if time labels in increasing order skip steps among their last ``rows``
    (None: all of them; a forecast reads the last lookback rows only, so an old gap does not
    stop it): a month missing from monthly data (regular labels, see ``_REGULAR``), or a day
    from daily dates (:func:`daily_dates`, told from business days by all the labels). The
    windows would take the rows on both sides of the gap for neighbours, and a season would
    slip by the missing steps from there on. ``lines``: the file's, else rows counted from 1."""
    first = len(labels) - rows if rows and rows < len(labels) else 0
    tail = labels[first:]
    found = time_steps(tail)
    if found is None and daily_dates(labels):
        found = [day_number(t) for t in tail], "day"
    if found is None or len(tail) < (2 if found[1] == "day" else 3):
        return None
    steps, unit = found
    diffs = np.diff(steps)
    step = 1 if unit == "day" else int(diffs.min())
    wrong = np.flatnonzero(diffs != step)
    if step <= 0 or not len(wrong):  # labels out of order are time_order's to sort
        return None
    i = int(wrong[0])
    at = f"line {lines[first + i + 1]}" if lines is not None else f"row {first + i + 2}"
    apart = f"one {unit}" if step == 1 else counted(step, unit)
    excel = unit == "step" and all(_EXCEL_DAYS[0] <= t < _EXCEL_DAYS[1] for t in steps)
    return (f"{at}: the time column jumps from {tail[i]!r} to {tail[i + 1]!r}, where the "
            f"other rows are {apart} apart ({counted(len(wrong), 'such jump')}); the model "
            f"would read the rows on both sides as neighbours: add the missing "
            f"{'dates' if unit == 'day' else 'times'} as rows with an empty value and pass "
            f"--missing interpolate (or ffill); forecast train without --time takes the rows "
            f"as consecutive" + (
                f" (whole numbers {_EXCEL_DAYS[0]}..{_EXCEL_DAYS[1] - 1} may be a spreadsheet's "
                f"dates without a date format: format the column as dates before exporting, "
                f"or name it 'date' to have them read as dates)" if excel else ""))


def check_observed_end(raw: np.ndarray, lines, column: str, where: str) -> None:
    """An error naming the rows without a value at the end of a target ``raw (N,)`` read to
    forecast from its end: those rows are the times to forecast, laid out in advance, and
    filling them would start the forecast from made-up values."""
    seen = np.flatnonzero(~np.isnan(raw))
    n = len(raw) - 1 - int(seen[-1]) if len(seen) else 0  # all missing: fill_missing says so
    if n:
        at = f"line {lines[-1]}" if n == 1 else f"lines {lines[-n]}..{lines[-1]}"
        rows = "row" if n == 1 else f"{n} rows"
        raise SeriesError(f"{where}: the last {rows} ({at}) {'has' if n == 1 else 'have'} no "
                          f"value of {column!r}; a "
                          f"forecast starts after the last row, so leave the times to forecast "
                          f"out of the file (filling them, as --missing would, would forecast "
                          f"from made-up values)")


def unread_rows(raws: list[np.ndarray], missing: str, rows: int) -> int:
    """How many rows at the start of the columns ``raws`` (each ``(N,)``, NaN where a value
    is missing) a forecast that reads the last ``rows`` rows leaves out: those up to the
    last missing value before the rows read that the ``missing`` policy does not fill (any,
    with ``"refuse"``; those before a column's first value, with ``"ffill"``), so that a
    value missing long before the window read does not stop the forecast. Filling a gap
    among the rows read takes values before them (the last one, for ``"ffill"``; the
    neighbours, for ``"interpolate"``), so rows the policy fills stay. 0 when none go."""
    cut = max(len(raws[0]) - rows, 0)
    start = 0
    for raw in raws:
        miss = np.isnan(raw[:cut])
        if missing == "refuse" and miss.any():
            start = max(start, int(np.flatnonzero(miss)[-1]) + 1)
        elif missing == "ffill" and miss[:1].any():  # nothing before them to carry forward
            seen = np.flatnonzero(~miss)
            start = max(start, int(seen[0]) if len(seen) else cut)
    return start


def read_series(path, target: str, features: list[str] | None = None, time: str | None = None,
                missing: str = "refuse", gap_rows: int | None = None,
                observed_end: bool = False, read_rows: int | None = None) -> TimeSeries:
    """Read a forecasting table: ``target`` (and ``features``) as numbers, ``time`` as labels.
    Rows out of time order are sorted by ``time`` (see ``time_order``), and a note says where
    the file's order first went back: a file written newest first is read as meant, and a
    row pasted in the wrong place is named rather than passed over.
    A gap in the time column is an error among the last ``gap_rows`` rows (None: all of them;
    a forecast reads the last lookback rows only, so an old gap does not stop it). With
    ``observed_end`` (a forecast from the file's end) rows without a target at the end are
    an error whatever ``missing`` says: they are the times to forecast, laid out in advance,
    and filling them would start the forecast from made-up values. With ``read_rows`` (a
    forecast that reads the last ``read_rows`` rows) the rows before a missing value that
    ``missing`` does not fill, outside those rows, are left out (see ``unread_rows``; the
    series' ``left_out`` counts them), and a note says so."""
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")
    header, rows, lines = read_csv_table(path, empty_rows=True)
    features = list(features or [])
    if target in features:
        raise SeriesError(f"the target {target!r} is also listed in --features; the target is "
                          f"always an input, so leave it out of --features")
    if time is not None and (time == target or time in features):
        raise SeriesError(f"column {time!r} cannot be both the time column and a numeric input")
    names = [target] + features
    cols = [column_index(header, target, path, "target column")]
    cols += [column_index(header, f, path, "feature column") for f in features]
    where = str(path)
    notes = []
    labels = None
    if time is not None:
        ti = column_index(header, time, path, "time column")
        labels, note = excel_dates([r[ti] for r in rows], time)
        notes += [note] if note else []
        order, back, note = checked_time_order(labels, lines, time, where,
                                               "each time needs one row: remove the duplicate")
        notes += [note] if note else []
        if back:
            rows, lines, labels = ([a[i] for i in order] for a in (rows, lines, labels))
            notes.append(unsorted_note(back, time))
        problem = time_gap_problem(labels, lines, gap_rows)
        if problem:
            raise SeriesError(f"{where}, {problem}")
    raws = [parse_numeric_column([r[c] for r in rows], lines, name, path)
            for name, c in zip(names, cols)]
    if observed_end:
        check_observed_end(raws[0], lines, target, where)
    values, start, filled = filled_columns(raws, names, lines, missing, where, read_rows)
    lines, labels = lines[start:], None if labels is None else labels[start:]
    return TimeSeries(values, names, labels, where, np.asarray(lines), notes + filled, start)


def filled_columns(raws: list[np.ndarray], names: list[str], lines, missing: str, where: str,
                   read_rows: int | None = None) -> tuple[np.ndarray, int, list[str]]:
    """``(values (N - start, D), start, notes)``: the columns ``raws`` (each ``(N,)``, NaN
    where a value is missing, named ``names``, on the file's ``lines``) filled by the
    ``missing`` policy. With ``read_rows`` (a forecast that reads the last ``read_rows``
    rows) the first ``start`` rows, up to a missing value the policy does not fill before
    the rows read, are left out (see ``unread_rows``), and a note says so."""
    start = unread_rows(raws, missing, read_rows) if read_rows else 0
    notes = []
    if start:
        notes.append(f"line {lines[start - 1]} has a missing value that --missing {missing} "
                     f"does not fill, before the last {counted(read_rows, 'row')} the "
                     f"forecast reads: the rows up to it (lines {lines[0]}..{lines[start - 1]}) "
                     f"are left out")
    values = np.empty((len(lines) - start, len(names)), np.float64)  # (N, D)
    for j, (name, raw) in enumerate(zip(names, raws)):
        # ffill carries a value from before the rows kept, from the column's first value on
        first = min(start, int(np.argmax(~np.isnan(raw)))) if missing == "ffill" else start
        filled, note = fill_missing(raw[first:], missing, name, lines[first:], where)
        values[:, j] = filled[start - first:]
        if note:
            notes.append(note)
    return values, start, notes


def shipped_path(name: str) -> Path:
    if name not in SHIPPED:
        raise ValueError(f"no shipped series {name!r}; choose one of {sorted(SHIPPED)}")
    return Path(str(resources.files("lstmlab").joinpath("datasets", SHIPPED[name][0])))


def load_shipped(name: str) -> TimeSeries:
    """One of the series that ship with lstmlab: ``"airline"`` or ``"sunspots"``."""
    path = shipped_path(name)
    _, time, target, what = SHIPPED[name]
    series = read_series(path, target, time=time)
    series.source = f"shipped series {name!r}: {what}"
    return series


# -- seasons --------------------------------------------------------------------------------

def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation ``r_k`` for ``k = 0..max_lag`` (the usual biased estimator)."""
    x = np.asarray(x, np.float64) - np.mean(x)
    denom = float(x @ x)
    if denom == 0:
        return np.zeros(max_lag + 1)
    return np.array([float(x[: len(x) - k] @ x[k:]) / denom for k in range(max_lag + 1)])


WEEK = 7  # the season of daily data tried beside the autocorrelation's peaks

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def day_number(label: str) -> int | None:
    """The day an ISO date ``label`` (``2021-03-01``) names, counted from 0001-01-01; None
    for any other label."""
    if not _ISO_DATE.fullmatch(label):
        return None
    try:
        return date.fromisoformat(label).toordinal()
    except ValueError:
        return None


def daily(labels: list[str] | None) -> bool:
    """Whether time ``labels`` are ISO dates (``2021-03-01``), each the day after the one
    before: daily rows, in which :func:`detect_season` looks for a week."""
    if not labels or len(labels) < 2:
        return False
    days = [day_number(t) for t in labels]
    return None not in days and bool(np.all(np.diff(days) == 1))


def day_gap(labels: list[str] | None, lines=None) -> str | None:
    """Where ISO date ``labels`` (on the file's ``lines``, or rows counted from 1 without
    them) first are not a day apart, as ``'2024-01-10' to '2024-01-12' on line 12``; None
    where each is the day after the one before (:func:`daily`), or a label is no ISO date."""
    days = [day_number(t) for t in labels or []]
    if len(days) < 2 or None in days:
        return None
    wrong = np.flatnonzero(np.diff(days) != 1)
    if not len(wrong):
        return None
    i = int(wrong[0]) + 1
    where = f"line {int(lines[i])}" if lines is not None else f"row {i + 1}"
    return f"{labels[i - 1]!r} to {labels[i]!r} on {where}"


def daily_dates(labels: list[str] | None) -> bool:
    """Whether time ``labels`` are daily dates, a day missing from which is a gap: ISO dates
    on every day of the week, each day of the week holding at least half as many as the
    most frequent one, some a day apart. Business days skip weekends (also when a few
    weekend days open), and weeks or months are not days, by design."""
    days = [day_number(t) for t in labels or []]
    if len(days) < 2 or None in days:
        return False
    per_weekday = np.bincount(np.asarray(days) % 7, minlength=7)  # (7,)
    return 2 * int(per_weekday.min()) >= int(per_weekday.max()) and bool(
        np.any(np.diff(days) == 1))


def detect_season(y: np.ndarray, threshold: float = 0.5, max_lag: int | None = None,
                  weekly: bool = False) -> int | None:
    """The season length of ``y`` from its autocorrelation, or None if there is no clear one.

    The series is first differenced (a trend makes every lag look correlated); the season is
    the lag ``k >= 2`` where the differenced series' autocorrelation has its highest local
    peak, provided that peak exceeds ``threshold``. The monthly airline series gives 12
    (``r_12 = 0.83`` on the whole series); the yearly sunspots' 11-year cycle (``r_11 = 0.42``
    on the default training part) is not taken for a season. Call it on the training part only, so the test part does not choose it.

    ``weekly`` (rows that are days, :func:`daily`): a week is a season known in advance, so
    where no peak passes ``threshold``, or the peak is at 14, 21, ... days, the season is 7
    when the differenced series' ``r_7`` is positive and passes the M4 90 % test
    (:func:`.m4.is_seasonal`). Day-to-day noise keeps a clear weekly cycle in counts below
    0.5, or puts its highest peak at a multiple of 7.
    """
    y = np.asarray(y, np.float64)
    d = np.diff(y)
    max_lag = max_lag if max_lag is not None else len(d) // 3
    if max_lag < 3:
        return None
    r = autocorrelation(d, max_lag)
    peaks = [k for k in range(2, max_lag) if r[k] > r[k - 1] and r[k] >= r[k + 1]]
    best = max(peaks, key=lambda k: r[k]) if peaks else None
    if best is not None and r[best] <= threshold:
        best = None
    if weekly and (best is None or best % WEEK == 0) and _has_week(d):
        return WEEK
    return best


def training_season(series: TimeSeries, end: int) -> int | None:
    """:func:`detect_season` of the first ``end`` steps of ``series``' target, looking for a
    week when those rows are days."""
    return detect_season(series.target[:end], weekly=daily((series.time or [])[:end]))


def known_season(given: int | None, series: TimeSeries, end: int) -> int | None:
    """The season of ``series``: the one ``given``, or when None the one detected on its
    first ``end`` steps (:func:`training_season`). A season of one step is none (None, as
    when none is detected): ``--season 1`` says the series has no season."""
    if given is None:
        return training_season(series, end)
    return given if given > 1 else None


def _has_week(d: np.ndarray) -> bool:
    """Whether the differenced daily series ``d`` has a positive lag-7 autocorrelation that
    passes the M4 90 % seasonality test."""
    from .m4 import is_seasonal  # .m4 reads this module's autocorrelation

    return is_seasonal(d, WEEK) and autocorrelation(d, WEEK)[WEEK] > 0
