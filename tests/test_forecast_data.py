"""Reading forecasting CSVs: every bad input gets an error naming what is wrong and where."""

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from seq_helpers import one_blas_thread, write  # noqa: F401

from lstmlab.cli import main
from lstmlab.forecast.data import (SeriesError, TimeSeries, autocorrelation, daily, detect_season,
                                   load_shipped, read_series, shipped_path, time_gap_problem,
                                   training_season)
from lstmlab.forecast.panel import read_long

SHA256 = {
    "airline": "28af0eb869db6d9fbd31d5af03993a0cbf36c0857c3eb046a068c094b60da851",
    "sunspots": "f67889b1d9002cd5227f0e0ef54e35b419cdd85a31279adef6f73fb41e5c0a9b",
}


@pytest.mark.parametrize("name", sorted(SHA256))
def test_shipped_series_are_the_provenance_files(name):
    data = Path(shipped_path(name)).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256[name]


def test_shipped_series_read():
    air = load_shipped("airline")
    assert len(air) == 144 and air.columns == ["Passengers"]
    assert air.time[0] == "1949-01" and air.time[-1] == "1960-12"
    assert air.target[:3].tolist() == [112, 118, 132]
    sun = load_shipped("sunspots")
    assert len(sun) == 309 and sun.time[0] == "1700" and sun.time[-1] == "2008"
    assert "shipped" in sun.source


def test_empty_csv(tmp_path):
    with pytest.raises(SeriesError, match="is empty"):
        read_series(write(tmp_path / "e.csv", ""), "y")
    with pytest.raises(SeriesError, match="no data rows"):
        read_series(write(tmp_path / "h.csv", "t,y\n"), "y")


def test_missing_target_column(tmp_path):
    p = write(tmp_path / "a.csv", "t,Sales\n1,2\n2,3\n")
    with pytest.raises(SeriesError, match=r"target column 'y' is not in .*columns are: t, Sales"):
        read_series(p, "y")
    with pytest.raises(SeriesError, match="did you mean 'Sales'"):
        read_series(p, "sales")


def test_text_in_numeric_column_names_line_and_column(tmp_path):
    p = write(tmp_path / "a.csv", "t,y,x\n1,2,0\n2,3,0\n3,abc,0\n")
    with pytest.raises(SeriesError, match=r"line 4, column 'y': 'abc' is not a number"):
        read_series(p, "y", ["x"])


def test_ragged_row(tmp_path):
    p = write(tmp_path / "a.csv", "t,y\n1,2\n2,3,4\n")
    with pytest.raises(SeriesError, match="line 3: 3 fields, but the header has 2"):
        read_series(p, "y")


def test_nan_in_the_middle_refused_by_default(tmp_path):
    p = write(tmp_path / "a.csv", "t,y\n1,1\n2,2\n3,\n4,NA\n5,5\n")
    with pytest.raises(SeriesError, match=r"2 missing values \(lines 4, 5\).*--missing"):
        read_series(p, "y")


def test_nan_in_the_middle_filled_on_request(tmp_path):
    p = write(tmp_path / "a.csv", "t,y\n1,1\n2,2\n3,nan\n4,?\n5,5\n")
    s = read_series(p, "y", missing="ffill")
    assert s.target.tolist() == [1, 2, 2, 2, 5]
    assert "carried" in s.notes[0] and "4, 5" in s.notes[0]
    s = read_series(p, "y", missing="interpolate")
    assert s.target.tolist() == [1, 2, 3, 4, 5]
    assert "interpolated" in s.notes[0]


def test_ffill_cannot_fill_a_leading_gap(tmp_path):
    p = write(tmp_path / "a.csv", "t,y\n1,\n2,2\n3,3\n")
    with pytest.raises(SeriesError, match="starts with 1 missing"):
        read_series(p, "y", missing="ffill")
    assert read_series(p, "y", missing="interpolate").target.tolist() == [2, 2, 3]


def test_time_column_order_is_checked(tmp_path):
    p = write(tmp_path / "a.csv", "t,y\n2001,1\n2003,2\n2002,3\n")
    s = read_series(p, "y", time="t")
    assert s.time == ["2001", "2002", "2003"] and s.target.tolist() == [1, 3, 2]
    assert s.lines.tolist() == [2, 4, 3]
    assert s.notes == ["the rows are not in time order (line 4: '2002' after '2003'): they "
                       "are read sorted by 't'"]
    p = write(tmp_path / "b.csv", "t,y\n2001-01,1\n2001-01,2\n")
    with pytest.raises(SeriesError, match="line 3: the time '2001-01' occurs twice"):
        read_series(p, "y", time="t")


@pytest.mark.parametrize("times, jump", [
    (["2004-01", "2004-02", "2004-05", "2004-06"], "'2004-02' to '2004-05'"),
    (["2001-Q3", "2001-Q4", "2002-Q2", "2002-Q3"], "'2001-Q4' to '2002-Q2'"),
    # pandas' spelling of a quarter: the missing quarter went through unnoticed
    (["2001Q3", "2001Q4", "2002Q2", "2002Q3"], "'2001Q4' to '2002Q2'"),
    (["1990", "1991", "1993", "1994"], "'1991' to '1993'"),
    # months written YYYYMM: the missing months went through unnoticed
    (["200411", "200412", "200503", "200504"], "'200412' to '200503'"),
])
def test_a_gap_in_a_regular_time_column_is_refused(tmp_path, times, jump):
    # the rows on both sides of a missing month were read as neighbours without a word
    rows = "".join(f"{t},{i}\n" for i, t in enumerate(times))
    p = write(tmp_path / "g.csv", "t,y\n" + rows)
    with pytest.raises(SeriesError, match=f"line 4: the time column jumps from {jump}.*"
                                          f"--missing interpolate"):
        read_series(p, "y", time="t")
    with pytest.raises(SeriesError, match=f"series 'A'.*line 4: the time column jumps from "
                                          f"{jump}"):
        read_long(write(tmp_path / "p.csv", "id,t,y\n" + "".join(
            f"A,{r}" for r in rows.splitlines(keepends=True))), "id", "y", "t")
    assert len(read_series(p, "y")) == 4  # without --time the rows are consecutive
    assert len(read_series(p, "y", time="t", gap_rows=2)) == 4  # a forecast reads 2 rows
    # evenly spaced labels are no gap: every 5 years, dates written as numbers (YYYYMM)
    for even in (["1950", "1955", "1960"], ["200411", "200412", "200501"]):
        p = write(tmp_path / "e.csv", "t,y\n" + "".join(f"{t},1\n" for t in even))
        assert read_series(p, "y", time="t").time == even


def test_an_empty_time_cell_is_named(tmp_path):
    # one empty cell made the column unorderable: every check of it was skipped and the
    # file's order taken without a word (classify said it 'cannot be ordered')
    from lstmlab.classify import read_sequence_csv

    p = write(tmp_path / "a.csv", "t,y\n2001,1\n,2\n2003,3\n")
    with pytest.raises(SeriesError, match=r"line 3: the time column 't' is empty; every row "
                                          r"needs its time"):
        read_series(p, "y", time="t")
    p = write(tmp_path / "p.csv", "id,t,y\nA,1,1\nA,,2\nA,3,3\n")
    with pytest.raises(SeriesError, match=r"series 'A', line 3: the time column 't' is empty"):
        read_long(p, "id", "y", "t")
    p = write(tmp_path / "c.csv", "id,t,x,label\na,0,1,p\na,,2,p\n")
    with pytest.raises(SeriesError, match=r"sequence 'a', line 3: the time column 't' is empty"):
        read_sequence_csv(p, time_col="t")

def test_infinite_values_rejected(tmp_path):
    with pytest.raises(SeriesError, match="line 3, column 'y': 'inf' is infinite"):
        read_series(write(tmp_path / "a.csv", "y\n1\ninf\n"), "y")


def test_features_read_after_the_target(tmp_path):
    s = read_series(write(tmp_path / "a.csv", "x,y,z\n1,2,3\n4,5,6\n"), "y", ["z", "x"])
    assert s.columns == ["y", "z", "x"]
    assert s.values.tolist() == [[2, 3, 1], [5, 6, 4]]


def test_season_detection():
    air = load_shipped("airline")
    assert detect_season(air.target[:93]) == 12  # the training part of the default split
    rng = np.random.default_rng(0)
    assert detect_season(rng.normal(size=200).cumsum()) is None  # a random walk has none
    t = np.arange(200)
    assert detect_season(np.sin(2 * np.pi * t / 7) + 0.01 * t) == 7
    r = autocorrelation(np.sin(2 * np.pi * t / 7), 14)
    assert r[0] == pytest.approx(1.0) and r[7] > 0.9


def _weekday_counts(seed: int, n: int = 120) -> np.ndarray:
    """Daily counts about 30, a third lower on the last two days of every week."""
    weekday = 1 + 0.3 * np.array([0.5, 0.25, 0.25, 0.25, 0.75, -1, -1])
    return np.random.default_rng(seed).poisson(30 * weekday[np.arange(n) % 7]).astype(float)


@pytest.mark.parametrize("seed, plain", [(5, 14), (6, None)])
def test_a_week_is_found_in_rows_dated_a_day_apart(seed, plain):
    # daily counts quieter at weekends: the autocorrelation's highest peak stayed below 0.5
    # or came at 14 days, and forecast train said 'no season detected' or took a fortnight
    y = _weekday_counts(seed)
    days = [str(np.datetime64("2024-01-01") + i) for i in range(len(y))]
    months = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(len(y))]
    assert detect_season(y) == plain
    assert training_season(TimeSeries(y[:, None], ["y"], days, "t"), len(y)) == 7
    assert training_season(TimeSeries(y[:, None], ["y"], months, "t"), len(y)) == plain
    assert training_season(TimeSeries(y[:, None], ["y"], None, "t"), len(y)) == plain
    assert daily(days) and not daily(days[:3] + days[4:]) and not daily(months)
    rng = np.random.default_rng(0)  # a week is not forced on daily rows without one
    walk = TimeSeries(rng.normal(size=(120, 1)).cumsum(0), ["y"], days, "t")
    assert training_season(walk, len(y)) is None


def test_a_skipped_day_is_told_from_business_days_weeks_and_months():
    # a day missing from daily dates is a gap, as a month from monthly ones; business days,
    # weeks and months skip days by design
    days = [str(np.datetime64("2024-01-01") + i) for i in range(30)]
    skip = days[:10] + days[11:]
    assert time_gap_problem(skip, None).startswith(
        "row 11: the time column jumps from '2024-01-10' to '2024-01-12', where the other rows "
        "are one day apart (1 such jump)")
    assert time_gap_problem(skip, list(range(2, 31))).startswith("line 12: ")
    assert time_gap_problem(skip, None, rows=19) is None  # the rows a forecast reads
    assert time_gap_problem(skip, None, rows=20).startswith("row 11: ")
    weekdays = [d for d in days if np.is_busday(np.datetime64(d))]
    opened = sorted(weekdays + ["2024-01-13", "2024-01-21"])  # a Saturday and a Sunday open
    weeks = days[::7]
    months = [f"20{20 + i // 12}-{i % 12 + 1:02d}-01" for i in range(30)]
    assert [time_gap_problem(t, None) for t in (days, weekdays, opened, weeks, months)] == (
        [None] * 5)

def test_cli_detects_the_week_of_a_daily_csv(tmp_path, capsys):
    y = _weekday_counts(6)
    rows = "".join(f"{np.datetime64('2024-01-01') + i},{v:g}\n" for i, v in enumerate(y))
    p = write(tmp_path / "daily.csv", "date,visits\n" + rows)
    assert main(["forecast", "train", str(p), "--target", "visits", "--time", "date",
                 "--horizon", "7", "--lookback", "14", "--base", "naive", "--transform", "none",
                 "--anchor", "last", "--epochs", "1", "--hidden", "4", "--quiet", "--no-plot",
                 "--out", str(tmp_path / "run")]) == 0
    assert "season 7 (detected)" in capsys.readouterr().out


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_file_separated_by_another_character_says_so(tmp_path, sep):
    # the error listed one column, 'Date;Passengers', and said 'Passengers' was not in it
    from lstmlab.forecast.data import read_series

    path = write(tmp_path / "s.csv", f"Date{sep}Passengers\n1949-01{sep}112\n1949-02{sep}118\n")
    with pytest.raises(SeriesError, match=re.escape(f"the file looks separated by {sep!r}")):
        read_series(path, "Passengers")


def test_time_labels_of_one_width_that_are_not_year_first_keep_the_file_order(tmp_path):
    # 'Feb 2000' sorts before 'Jan 2000' as text, and '01/02/2001' before '12/31/2000':
    # such labels are taken in the file's order, not sorted as text
    months = ["Nov 1999", "Dec 1999", "Jan 2000", "Feb 2000", "Mar 2000"]
    p = write(tmp_path / "m.csv", "t,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(months)))
    s = read_series(p, "y", time="t")
    assert s.target.tolist() == [0, 1, 2, 3, 4] and list(s.time) == months
    us = ["12/30/2000", "12/31/2000", "01/01/2001"]
    rows = "".join(f"{name},{t},{i}\n" for name in "AB" for i, t in enumerate(us))
    panel = read_long(write(tmp_path / "p.csv", "id,t,y\n" + rows), "id", "y", "t")
    assert [list(s.time) for s in panel.series.values()] == [us, us]
    assert [s.target.tolist() for s in panel.series.values()] == [[0, 1, 2], [0, 1, 2]]
    # ISO dates of one width are sorted, one series and a panel alike
    assert read_series(write(tmp_path / "j.csv", "t,y\n2000-02,2\n2000-01,1\n"), "y",
                       time="t").time == ["2000-01", "2000-02"]
    assert list(read_long(write(tmp_path / "k.csv", "id,t,y\nA,2000-02,2\nA,2000-01,1\n"),
                          "id", "y", "t").series["A"].time) == ["2000-01", "2000-02"]


def test_a_csv_that_begins_with_excels_byte_order_mark_names_its_first_column(tmp_path):
    # Excel's 'CSV UTF-8' begins the file with a byte-order mark, before the first column's
    # name: each reader takes the name without it
    from lstmlab.classify import read_sequence_csv

    def bom(name, text):
        (tmp_path / name).write_bytes("\ufeff".encode("utf-8") + text.encode("utf-8"))
        return tmp_path / name

    series = read_series(bom("s.csv", "y,x\n1,2\n2,3\n"), "y", ["x"])
    assert series.columns == ["y", "x"] and series.target.tolist() == [1, 2]
    panel = read_long(bom("l.csv", "id,y\na,1\na,2\nb,3\nb,4\n"), "id", "y")
    assert sorted(panel.series) == ["a", "b"]
    sequences = read_sequence_csv(bom("c.csv", "id,label,v\n1,p,0.5\n2,q,0.25\n"))
    assert sorted(sequences.labels) == ["p", "q"]


def test_trailing_unnamed_columns_of_a_spreadsheet_export_are_read(tmp_path):
    # 'date,units,,' (two empty columns a spreadsheet kept) was refused: "the header names
    # [''] more than once", though no unnamed column can be asked for
    from lstmlab.classify import read_sequence_csv

    p = write(tmp_path / "a.csv", "date,units,,\n2001-01,1,,\n2001-02,2,,\n2001-03,3,,\n")
    assert read_series(p, "units", time="date").target.tolist() == [1, 2, 3]
    p = write(tmp_path / "c.csv", "id,x,label,,\na,1,p,,\na,2,p,,\nb,3,q,,\n")
    assert read_sequence_csv(p).features == ["x"]
    with pytest.raises(SeriesError, match=r"target column 'y': .* has 2 columns of that name "
                                          r"\(columns 1, 2\); rename all but one"):
        read_series(write(tmp_path / "d.csv", "y,y,,\n1,2,,\n"), "y")


def test_a_name_the_header_repeats_is_refused_only_where_it_is_asked_for(tmp_path):
    # an export with two 'Notes' columns was refused as a whole ("the header names
    # ['Notes'] more than once") though neither was asked for
    from lstmlab.classify import read_sequence_csv

    p = write(tmp_path / "a.csv", "date,Notes,units,Notes\n2001-01,a,1,\n2001-02,,2,b\n")
    assert read_series(p, "units", time="date").target.tolist() == [1, 2]
    p = write(tmp_path / "p.csv", "id,t,y,Notes,Notes\nA,1,1,,\nA,2,2,,\n")
    assert read_long(p, "id", "y", "t").series["A"].target.tolist() == [1, 2]
    with pytest.raises(SeriesError, match=r"value column 'y': .* has 2 columns of that name "
                                          r"\(columns 3, 4\)"):
        read_long(write(tmp_path / "q.csv", "id,t,y,y\nA,1,1,2\n"), "id", "y", "t")
    p = write(tmp_path / "c.csv", "id,x,Notes,Notes,label\na,1,,,p\nb,2,,,q\n")
    assert read_sequence_csv(p, features=["x"]).features == ["x"]
    with pytest.raises(SeriesError, match=r"the header names \['Notes'\] more than once; "
                                          r"rename them, or choose the features with --features"):
        read_sequence_csv(p)


def test_a_semicolon_file_with_decimal_commas_is_named_as_such(tmp_path):
    # a European export ('date;units' then '2001-01;10,5') stopped at line 2 with "2 fields,
    # but the header has 1 (date;units)", which does not say what to change
    from lstmlab.classify import read_sequence_csv

    p = write(tmp_path / "s.csv", "date;units\n2001-01;10,5\n2001-02;11,25\n")
    wanted = r"line 2: 2 fields.*the file looks separated by ';', its commas decimal commas"
    with pytest.raises(SeriesError, match=wanted):
        read_series(p, "units", time="date")
    p = write(tmp_path / "c.csv", "id;x;label\na;0,5;p\n")
    with pytest.raises(SeriesError, match=wanted):
        read_sequence_csv(p)


def test_time_stamps_with_utc_offsets_are_ordered_by_the_instant(tmp_path):
    # across the autumn DST change the local times go back ('02:30+02:00' then '02:00+01:00')
    # and the file was refused as "going back in time"; '09:00+00:00' then '10:00+05:00'
    # (04:00 UTC, an hour back) went through as in order, compared as text
    from lstmlab.classify import read_sequence_csv

    dst = ["2021-10-31T01:30:00+02:00", "2021-10-31T02:00:00+02:00", "2021-10-31T02:30:00+02:00",
           "2021-10-31T02:00:00+01:00", "2021-10-31T02:30:00+01:00", "2021-10-31T02:00:00Z"]
    p = write(tmp_path / "d.csv", "t,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(dst)))
    assert read_series(p, "y", time="t").time == dst
    back = ["2021-03-01T09:00:00+00:00", "2021-03-01T10:00:00+05:00"]
    p = write(tmp_path / "b.csv", "t,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(back)))
    s = read_series(p, "y", time="t")
    assert s.target.tolist() == [1, 0]
    assert "(line 3: '2021-03-01T10:00:00+05:00' after" in s.notes[0]
    rows = "".join(f"A,{t},{i}\n" for i, t in reversed(list(enumerate(dst))))
    panel = read_long(write(tmp_path / "p.csv", "id,t,y\n" + rows), "id", "y", "t")
    assert panel.series["A"].target.tolist() == [0, 1, 2, 3, 4, 5]
    rows = "".join(f"a,{t},{i},p\n" for i, t in reversed(list(enumerate(dst))))
    seq = read_sequence_csv(write(tmp_path / "c.csv", "id,t,x,label\n" + rows), time_col="t")
    assert seq.x[0][:, 0].tolist() == [0, 1, 2, 3, 4, 5]


def test_a_header_repeated_inside_the_file_is_named(tmp_path):
    # two exports joined into one: the error was "line 4, column 'y': 'y' is not a number"
    from lstmlab.classify import read_sequence_csv

    p = write(tmp_path / "a.csv", "t,y\n2001,1\n2002,2\nt,y\n2003,3\n")
    with pytest.raises(SeriesError, match=r"line 4 repeats the header \(line 1\): the file "
                                          r"looks like several files joined into one"):
        read_series(p, "y", time="t")
    p = write(tmp_path / "c.csv", "id,x,label\na,1,p\n\nid,x,label\nb,2,q\n")
    with pytest.raises(SeriesError, match=r"line 4 repeats the header \(line 1\)"):
        read_sequence_csv(p)
    # the second file's byte-order mark at the start of its header line
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufefft,y\n2001,1\n\ufefft,y\n2002,2\n".encode("utf-8"))
    with pytest.raises(SeriesError, match=r"line 3 repeats the header \(line 1\)"):
        read_series(p, "y", time="t")
    # a file without a header whose first row comes again is no joined file
    assert read_series(write(tmp_path / "n.csv", "1\n2\n1\n"), "1").target.tolist() == [2, 1]


def test_a_repeated_time_is_refused_in_a_format_that_cannot_be_ordered(tmp_path):
    # '03/04/2021' twice (a duplicated export row) was read as two consecutive steps: the
    # duplicate check was part of the order check, skipped for labels it cannot order
    us = ["03/02/2021", "03/03/2021", "03/03/2021", "03/04/2021"]
    p = write(tmp_path / "u.csv", "t,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(us)))
    with pytest.raises(SeriesError, match=r"line 4: the time '03/03/2021' occurs twice \(lines "
                                          r"3 and 4\)"):
        read_series(p, "y", time="t")
    assert len(read_series(p, "y")) == 4  # without --time the rows are taken as they are


@pytest.mark.parametrize("cell, hint", [
    ('"1,234.5"', "a thousands separator or a decimal comma"),
    ('"10,5"', "a thousands separator or a decimal comma"),
    ("#N/A", "a spreadsheet's error value; leave the cell empty, or write NA"),
    ("#DIV/0!", "a spreadsheet's error value"),
    ("\u22125", "it holds the minus sign"),
    ("-", "a dash: a spreadsheet writes it for zero"),
    ("\u2014", "a dash: a spreadsheet writes it for zero"),
    # a French or Swiss thousands separator, percent, currency and accounting formats
    ("1 234", "a thousands separator or a decimal comma"),
    ("1\u00a0234.5", "a thousands separator or a decimal comma"),
    ("1'234.5", "a thousands separator or a decimal comma"),
    ("5%", "a percentage: write the number alone, 0.05 for 5%"),
    ("$5.00", "a currency sign: write the amount alone"),
    ("5 \u20ac", "a currency sign: write the amount alone"),
    ("(5.00)", "an accounting format's negative number: write -5.00"),
    # a date column named as the target or a feature
    ("03/04/2021", "a date or time: name its column with --time"),
    ("2021-01-05", "a date or time: name its column with --time"),
    ("2021-01-05T06:00:00Z", "a date or time: name its column with --time"),
    ("2021-01", "a date or time: name its column with --time"),
])
def test_a_cell_a_spreadsheet_wrote_says_what_it_likely_is(tmp_path, cell, hint):
    # these were only "is not a number": the user sees '1,234.5' or '−5', which look like
    # numbers, and is not told what the reader wants instead
    p = write(tmp_path / "a.csv", f"y\n1\n{cell}\n")
    with pytest.raises(SeriesError, match=r"line 3, column 'y': .* is not a number \(" +
                       re.escape(hint)):
        read_series(p, "y")


def test_rows_ending_in_empty_fields_the_header_lacks_are_read(tmp_path):
    # 'date,units' then '2001-01,1,' (an exporter ending every row with a separator) stopped
    # with "3 fields, but the header has 2", though nothing follows the comma
    p = write(tmp_path / "a.csv", "date,units\n2001-01,1,\n2001-02,2,,\n2001-03,3\n")
    assert read_series(p, "units", time="date").target.tolist() == [1, 2, 3]
    with pytest.raises(SeriesError, match="line 3: 3 fields, but the header has 2"):
        read_series(write(tmp_path / "b.csv", "date,units\n2001-01,1\n2001-02,2,7\n"), "units")


def test_quoted_fields_after_a_space_are_unquoted(tmp_path):
    # 'date, "units"' gave a column named '"units"' (quotes and all): --target units was
    # "not in" a file listing it, and ' "1.5"' was not a number
    p = write(tmp_path / "a.csv", 'date, "units"\n2001-01, "1.5"\n2001-02, "2.5"\n')
    s = read_series(p, "units", time="date")
    assert s.columns == ["units"] and s.target.tolist() == [1.5, 2.5]


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1e"])
def test_a_unicode_line_separator_in_a_cell_is_a_character_not_a_line_break(tmp_path, sep):
    # a quoted cell holding U+2028 counted as two lines, so later errors named the line
    # below the bad one; unquoted, it cut the row in two ("2 fields, but the header has 3")
    from lstmlab.classify import read_sequence_csv

    p = write(tmp_path / "q.csv", f't,note,y\n2001,"a{sep}b",1\n2002,x,oops\n')
    with pytest.raises(SeriesError, match=r"line 3, column 'y': 'oops' is not a number"):
        read_series(p, "y", time="t")
    p = write(tmp_path / "u.csv", f"t,note,y\n2001,a{sep}b,1\n2002,x,2\n")
    assert read_series(p, "y", time="t").target.tolist() == [1, 2]
    p = write(tmp_path / "c.csv", f'id,x,label\na,1,"p{sep}q"\nb,zz,q\n')
    with pytest.raises(SeriesError, match=r"line 3, column 'x': 'zz' is not a number"):
        read_sequence_csv(p)


def test_a_spreadsheets_separator_line_is_read_as_a_directive(tmp_path):
    # 'sep=,' on the first line (Excel's directive) was taken for the header: the columns
    # were 'sep=' and '', and 'units' was "not in" the file
    p = write(tmp_path / "a.csv", "sep=,\r\ndate,units\r\n2001-01,1\r\n2001-02,x\r\n")
    with pytest.raises(SeriesError, match="line 4, column 'units': 'x' is not a number"):
        read_series(p, "units", time="date")  # the lines are the file's
    p = write(tmp_path / "b.csv", "sep=,\ndate,units\n2001-01,1\n2001-02,2\n")
    assert read_series(p, "units", time="date").target.tolist() == [1, 2]
    p = write(tmp_path / "c.csv", "sep=;\ndate;units\n2001-01;1,5\n")
    with pytest.raises(SeriesError, match=r"line 1: 'sep=;' declares ';' as the separator"):
        read_series(p, "units")


def test_an_empty_row_inside_a_series_is_a_missing_step(tmp_path):
    # a spreadsheet writes an empty cell of a one-column sheet as an empty line, and an
    # empty row of a wider one as ',': both were skipped, the steps on either side read as
    # neighbours (a value silently dropped)
    for text, line in (("y\n1\n\n3\n4\n\n", 3), ("y,x\n1,5\n,\n3,6\n4,7\n,\n", 3)):
        p = write(tmp_path / "a.csv", text)
        with pytest.raises(SeriesError, match=rf"column 'y' has 1 missing value \(line {line}\)"):
            read_series(p, "y")
        assert read_series(p, "y", missing="interpolate").target.tolist() == [1, 2, 3, 4]
    # a blank line between the rows of a wider file is layout, and is skipped
    p = write(tmp_path / "b.csv", "y,x\n1,5\n\n3,6\n")
    assert read_series(p, "y").target.tolist() == [1, 3]


def test_empty_rows_are_missing_steps_by_position_and_skipped_in_long_format(tmp_path):
    # one rule for every reader: a table read by position (one series, or each file of a
    # folder) keeps a row of empty cells as a step with its values missing; an empty line
    # in a file of several columns is no row; a long-format row names its series, so a
    # blank line or a row of empty cells names none and is skipped
    from lstmlab.classify import read_sequence_csv
    from lstmlab.forecast.panel import read_folder

    one = write(tmp_path / "one.csv", "y\n1\n2\n\n4\n\n")
    assert read_series(one, "y", missing="interpolate").target.tolist() == [1, 2, 3, 4]
    two = write(tmp_path / "two.csv", "x,y\n0,1\n0,2\n,\n0,4\n\n0,5\n")
    s = read_series(two, "y", missing="interpolate")
    assert s.target.tolist() == [1, 2, 3, 4, 5] and s.lines.tolist() == [2, 3, 4, 5, 7]
    folder = tmp_path / "f"
    folder.mkdir()
    write(folder / "a.csv", "y\n1\n2\n\n4\n")
    assert read_folder(folder, "y", missing="interpolate").series["a"].target.tolist() == [
        1, 2, 3, 4]
    long = write(tmp_path / "long.csv", "id,t,y\nA,1,1\n\nA,2,2\n,,\nA,3,3\n")
    assert read_long(long, "id", "y", "t").series["A"].target.tolist() == [1, 2, 3]
    seq = write(tmp_path / "seq.csv", "id,x,label\na,1,p\n\na,2,p\n,,\nb,3,q\n")
    assert [x[:, 0].tolist() for x in read_sequence_csv(seq).x] == [[1, 2], [3]]


def test_rows_out_of_time_order_are_sorted_with_a_note_by_every_reader(tmp_path):
    # one series refused rows out of time order while a panel sorted them without a word;
    # every reader sorts them and says where the file's order first went back
    from lstmlab.classify import read_sequence_csv

    s = read_series(write(tmp_path / "s.csv", "t,y\n3,3\n2,2\n1,1\n"), "y", time="t")
    assert s.target.tolist() == [1, 2, 3]
    assert s.notes == ["the rows are not in time order (line 3: '2' after '3'): they are read "
                       "sorted by 't'"]
    rows = "id,t,y\nA,1,1\nB,2,2\nA,3,3\nB,1,1\nA,2,2\nC,1,1\n"
    panel = read_long(write(tmp_path / "p.csv", rows), "id", "y", "t")
    assert [s.target.tolist() for s in panel.series.values()] == [[1, 2, 3], [1, 2], [1]]
    assert panel.notes == ["the rows of 2 series (the first: 'A') are not in time order "
                           "(line 6: '2' after '3'): they are read sorted by 't'"]
    assert read_long(write(tmp_path / "q.csv", "id,t,y\nA,1,1\nA,2,2\n"), "id", "y",
                     "t").notes == []
    seq = read_sequence_csv(write(tmp_path / "c.csv", "id,t,x,label\na,1,1,p\na,0,0,p\n"),
                            time_col="t")
    assert seq.x[0][:, 0].tolist() == [0, 1]
    assert seq.notes == ["the rows of sequence 'a' are not in time order (line 3: '0' after "
                         "'1'): they are read sorted by 't'"]


def test_excel_serial_dates_in_a_date_column_are_read_as_dates(tmp_path):
    # a spreadsheet's date cells without a date format export as 44197, 44228, ...: read as
    # numbers, monthly data (31, 28, 31 days apart) was refused for gaps, "28 steps apart"
    p = write(tmp_path / "x.csv", "Date,Sales\n44197,1\n44228,2\n44256,3\n44287,4\n")
    s = read_series(p, "Sales", time="Date")
    assert s.time == ["2021-01-01", "2021-02-01", "2021-03-01", "2021-04-01"]
    assert s.notes == ["the time column 'Date' holds whole numbers 44197..44287, as a "
                       "spreadsheet writes date cells without a date format: read as Excel "
                       "dates 2021-01-01..2021-04-01 (format the column as dates, yyyy-mm-dd, "
                       "before exporting to leave no doubt)"]
    panel = read_long(write(tmp_path / "p.csv", "id,Date,y\nA,44256,3\nA,44197,1\nB,44228,2\n"),
                      "id", "y", "Date")
    assert panel.series["A"].time == ["2021-01-01", "2021-03-01"]
    assert "read as Excel dates 2021-01-01..2021-03-01" in panel.notes[0]
    # numbers in a column not named as dates, or outside the range, stay numbers
    assert read_series(write(tmp_path / "t.csv", "t,y\n44197,1\n44198,2\n"), "y",
                       time="t").time == ["44197", "44198"]
    assert read_series(write(tmp_path / "d.csv", "date,y\n1999,1\n2000,2\n"), "y",
                       time="date").notes == []


def test_counts_in_reader_messages_take_their_number(tmp_path):
    # "1 missing value(s) (line(s) 3)", "the last 1 row(s) (line 4) have", "(1 such jump(s))"
    p = write(tmp_path / "a.csv", "y\n1\n\n3\n")
    with pytest.raises(SeriesError, match=r"has 1 missing value \(line 3\); pass --missing "
                                          r"ffill or --missing interpolate to fill it,"):
        read_series(p, "y")
    assert read_series(p, "y", missing="ffill").notes == [
        "column 'y': 1 missing value at line 3: carried the previous value forward"]
    p = write(tmp_path / "b.csv", "t,y\n1,1\n2,\n3,\n4,4\n")
    assert "2 missing values at lines 3, 4:" in read_series(p, "y", missing="ffill").notes[0]
    p = write(tmp_path / "c.csv", "t,y\n1,1\n2,2\n3,\n")
    with pytest.raises(SeriesError, match=r"the last row \(line 4\) has no value of 'y'"):
        read_series(p, "y", observed_end=True)
    p = write(tmp_path / "d.csv", "t,y\n1,1\n2,2\n4,4\n")
    with pytest.raises(SeriesError, match=r"\(1 such jump\)"):
        read_series(p, "y", time="t")


def test_iso_times_of_several_widths_are_ordered_and_a_mix_of_formats_is_named(tmp_path):
    # '2021-01-02' beside '2021-01-01 12:00' could not be ordered (ISO dates of one width
    # only), so a row out of order or a time given twice went through unseen; a column
    # mixing ISO dates with '03/01/2021' was taken in the file's order without a word
    times = ["2021-01-02", "2021-01-01 12:00", "2021-01-03"]
    p = write(tmp_path / "a.csv", "t,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(times)))
    s = read_series(p, "y", time="t")
    assert s.target.tolist() == [1, 0, 2] and "(line 3: '2021-01-01 12:00' after" in s.notes[0]
    p = write(tmp_path / "b.csv", "t,y\n2021-01-01,1\n2021-01-01 00:00,2\n")
    with pytest.raises(SeriesError, match=r"line 3: the time '2021-01-01' \(as '2021-01-01 "
                                          r"00:00'\) occurs twice"):
        read_series(p, "y", time="t")
    note = ("the time column 't' cannot be ordered: '03/01/2021' (line 3) is not written like "
            "'2021-01-01' (line 2); the rows are taken in the file's order, and neither their "
            "order nor gaps in it are checked")
    p = write(tmp_path / "c.csv", "t,y\n2021-01-01,1\n03/01/2021,2\n")
    assert read_series(p, "y", time="t").notes == [note]
    p = write(tmp_path / "d.csv", "id,t,y\nA,2021-01-01,1\nA,03/01/2021,2\nB,1,1\n")
    assert read_long(p, "id", "y", "t").notes == [f"series 'A': {note}"]


def test_a_title_above_the_header_is_named(tmp_path):
    # a report's export with 'Monthly sales report' on line 1 took the title for the header:
    # "line 3: 2 fields, but the header has 1", or "'units' is not in ...; its columns are:
    # Monthly sales report, , "
    from lstmlab.classify import read_sequence_csv

    wanted = (r"line 4 \(date, units\) looks like the header, below a title \(line 1: 'Monthly "
              r"sales report'\); a CSV file here starts with its header: delete the lines above")
    p = write(tmp_path / "a.csv", "Monthly sales report\nPeriod: 2001\n\ndate,units\n2001-01,1\n")
    with pytest.raises(SeriesError, match=wanted):
        read_series(p, "units", time="date")
    p = write(tmp_path / "b.csv", "Monthly sales report,,\n,,\ndate,units,\n2001-01,1,\n")
    with pytest.raises(SeriesError, match=r"line 3 \(date, units\) looks like the header"):
        read_series(p, "units")
    p = write(tmp_path / "c.csv", "Trials\nid,x,label\na,1,p\n")
    with pytest.raises(SeriesError, match=r"line 2 \(id, x, label\) looks like the header"):
        read_sequence_csv(p)
    # a one-column file is no title: its rows are numbers
    assert read_series(write(tmp_path / "d.csv", "y\n1\n2\n"), "y").target.tolist() == [1, 2]


def test_a_totals_row_in_the_time_column_is_named(tmp_path):
    # 'Total,3' under monthly rows was read as one more step (the series ending in its own
    # sum), the time column then taken in the file's order unchecked
    p = write(tmp_path / "a.csv", "date,units\n2001-01,1\n2001-02,2\nTotal,3\n")
    wanted = (r"line 4: the time column 'date' holds 'Total', which is not a time \(a report's "
              r"totals row\?\); every row is one time step: remove that row")
    with pytest.raises(SeriesError, match=wanted):
        read_series(p, "units", time="date")
    p = write(tmp_path / "p.csv", "id,t,y\nA,1,1\nA,2,2\nA,Sum,3\n")
    with pytest.raises(SeriesError, match=r"series 'A', line 4: the time column 't' holds 'Sum'"):
        read_long(p, "id", "y", "t")
    # labels in a format without digits are no totals
    p = write(tmp_path / "b.csv", "t,y\nmon,1\ntue,2\n")
    assert read_series(p, "y", time="t").time == ["mon", "tue"]


@pytest.mark.parametrize("times, apart", [
    (["0", "2", "4", "8"], "2 steps apart"),  # said '2 one step apart'
    (["2001-01", "2001-04", "2001-07", "2002-01"], "3 months apart"),  # said 'one month apart'
    (["1", "2", "3", "5"], "one step apart"),
])
def test_a_gap_message_says_how_far_apart_the_other_rows_are(tmp_path, times, apart):
    p = write(tmp_path / "a.csv", "t,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(times)))
    with pytest.raises(SeriesError, match=f"where the other rows are {apart} \\(1 such jump\\)"):
        read_series(p, "y", time="t")


def test_a_gap_among_numbers_that_may_be_excel_dates_says_so(tmp_path):
    # monthly Excel serial dates in a column not named 'date' read as steps 28..31 apart
    p = write(tmp_path / "a.csv", "Month,y\n44197,1\n44228,2\n44256,3\n44287,4\n")
    with pytest.raises(SeriesError, match=r"whole numbers 20000\.\.79999 may be a spreadsheet's "
                                          r"dates without a date format"):
        read_series(p, "y", time="Month")
    p = write(tmp_path / "b.csv", "t,y\n1,1\n2,2\n4,4\n")
    with pytest.raises(SeriesError) as err:
        read_series(p, "y", time="t")
    assert "spreadsheet" not in str(err.value)


def test_a_file_without_a_header_says_so(tmp_path):
    # '112\n118\n' or '2001-01,112\n...' gave "target column 'y' is not in ...; its columns
    # are: 2001-01, 112", which does not say that the header is missing
    for text in ("112\n118\n132\n", "2001-01,112\n2001-02,118\n"):
        p = write(tmp_path / "a.csv", text)
        with pytest.raises(SeriesError, match=r"its first line holds values, .* rather than "
                                              r"names: the file looks to have no header"):
            read_series(p, "y")
    p = write(tmp_path / "b.csv", "target,0,1\na,1,2\n")  # numbers may be names
    with pytest.raises(SeriesError) as err:
        read_series(p, "y")
    assert "no header" not in str(err.value)


def test_a_local_clock_time_given_twice_names_daylight_saving_time(tmp_path):
    # hourly local times repeat 02:00 where DST ends; "remove the duplicate" alone would
    # have the user delete a real hour of data
    times = ["2021-10-31 01:00", "2021-10-31 02:00", "2021-10-31 02:00", "2021-10-31 03:00"]
    p = write(tmp_path / "a.csv", "t,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(times)))
    with pytest.raises(SeriesError, match=r"occurs twice \(lines 3 and 4; local clock times "
                                          r"repeat an hour where daylight saving time ends: "
                                          r"write them with their UTC offset"):
        read_series(p, "y", time="t")
    p = write(tmp_path / "b.csv", "t,y\n2021-10-31,1\n2021-10-31,2\n")  # dates: no clock
    with pytest.raises(SeriesError, match=r"occurs twice \(lines 2 and 3\); each time"):
        read_series(p, "y", time="t")
    # a date beside its own midnight is a row given twice, not an hour of local time repeated
    p = write(tmp_path / "c.csv", "t,y\n2021-01-08,1\n2021-01-09,2\n2021-01-09 00:00,3\n")
    with pytest.raises(SeriesError, match=r"occurs twice \(lines 3 and 4\); each time"):
        read_series(p, "y", time="t")


def test_step_counts_of_a_short_series_take_their_number(tmp_path):
    # "the series has 1 steps", "the test part has 1 steps"
    from lstmlab.forecast.windows import WindowError, chronological_split

    with pytest.raises(WindowError, match="the series has 1 step, shorter than lookback"):
        chronological_split(1, 1, 1)
    with pytest.raises(WindowError, match=r"the test part has 1 step \(--test-fraction"):
        chronological_split(10, 2, 2, val_fraction=0.0, test_fraction=0.1)


def test_a_windows_1252_file_is_named_by_what_its_byte_reads_as(tmp_path):
    # Excel's plain 'CSV' on Windows writes Windows-1252: 'Umsatz €' stopped with "byte 0x80
    # ... (invalid start byte)", which does not say what the byte is or why it is there
    p = tmp_path / "a.csv"
    p.write_bytes("Datum,Umsatz \u20ac\n2021-01,5\n".encode("cp1252"))
    with pytest.raises(SeriesError, match=r"byte 0x80 at byte offset 13 \(line 1\) \(invalid "
                                          r"start byte\) \(it reads as '\u20ac' in Windows-1252"):
        read_series(p, "Umsatz \u20ac")
    p.write_bytes("y\n1\n2\u20ac".encode()[:-1])  # a UTF-8 file cut inside a character
    with pytest.raises(SeriesError) as err:
        read_series(p, "y")
    assert "Windows-1252" not in str(err.value)


@pytest.mark.parametrize("argv", [
    ["forecast", "train", "-", "--target", "y", "--out", "{tmp}/run"],
    ["forecast", "predict", "{tmp}/model.ckpt", "-"],
])
def test_dash_for_the_csv_says_the_command_reads_files(tmp_path, monkeypatch, capsys, argv):
    # 'cat sales.csv | lstmlab forecast train - --target y' said "CSV file '-' does not
    # exist", where 'evaluate CKPT -' reads standard input
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"y\n1\n2\n3\n")))
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert err.endswith(": error: CSV '-': this command reads files, not standard input; save "
                        "the data to a file and pass that (a file named '-' is ./-)\n")
    assert out == "" and list(tmp_path.iterdir()) == []


def test_a_forecast_leaves_out_rows_before_a_missing_value_it_does_not_read(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("t,y,x\n0,,1\n1,2,\n2,3,3\n3,4,4\n4,5,5\n5,6,6\n")
    s = read_series(p, "y", ["x"], time="t", read_rows=3)  # refuse: the rows up to line 3 go
    assert s.time == ["2", "3", "4", "5"] and s.lines.tolist() == [4, 5, 6, 7]
    assert "the rows up to it (lines 2..3) are left out" in s.notes[0]
    s = read_series(p, "y", ["x"], time="t", missing="ffill", read_rows=3)
    assert s.time == ["1", "2", "3", "4", "5"]  # ffill: only the row before y's first value
    assert s.values.tolist() == [[2, 1], [3, 3], [4, 4], [5, 5], [6, 6]]  # x: from line 2
    assert len(read_series(p, "y", ["x"], missing="interpolate", read_rows=3)) == 6
    with pytest.raises(SeriesError, match=r"column 'y' has 1 missing value \(line 2\)"):
        read_series(p, "y", ["x"], read_rows=6)  # among the rows read
