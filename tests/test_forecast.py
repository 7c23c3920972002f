"""Windows, split, scaling, baselines, the LSTM forecaster and the forecast command."""

import csv
import json

import numpy as np
import pytest
from seq_helpers import one_blas_thread, write  # noqa: F401

from lstmlab.cli import main
from lstmlab.forecast.baselines import (LinearAR, mase_scale, persistence, rmse, scores,
                                        seasonal_naive)
from lstmlab.forecast.data import TimeSeries
from lstmlab.forecast.model import ForecastConfig, Forecaster, future_labels
from lstmlab.forecast.report import evaluate
from lstmlab.forecast.windows import (WindowError, WindowScaler, chronological_split,
                                      make_windows)
from lstmlab.training.supervised import FitConfig


def _series(y, features=None):
    y = np.asarray(y, np.float64)
    cols = [y] + ([] if features is None else list(features))
    return TimeSeries(np.column_stack(cols), ["y"] + [f"f{i}" for i in range(len(cols) - 1)],
                      None, "test", np.arange(len(y)) + 2)


def test_windows_read_the_past_and_forecast_the_future():
    values = np.arange(10.0)
    X, Y = make_windows(values, 3, 2, [3, 8])
    assert X[:, :, 0].tolist() == [[0, 1, 2], [5, 6, 7]]
    assert Y.tolist() == [[3, 4], [8, 9]]


def test_split_parts_do_not_overlap_and_hold_all_targets():
    sp = chronological_split(100, lookback=10, horizon=5, val_fraction=0.15, test_fraction=0.2)
    assert (sp.train, sp.val, sp.test) == (65, 15, 20)
    tr, va, te = (sp.origins(p, 10, 5) for p in ("train", "val", "test"))
    assert tr[0] == 10 and tr[-1] + 5 <= 65          # training targets inside the training part
    assert va[0] == 65 and va[-1] + 5 <= 80
    assert te[0] == 80 and te[-1] + 5 == 100


def test_series_shorter_than_lookback_plus_horizon():
    with pytest.raises(WindowError, match="shorter than lookback \\+ horizon = 20 \\+ 5 = 25"):
        chronological_split(24, 20, 5)
    with pytest.raises(WindowError, match="lower --lookback or --horizon"):
        chronological_split(24, 20, 5)
    with pytest.raises(WindowError, match=r"= 13: not even one window fits; lower --horizon,"):
        chronological_split(10, 1, 12)  # a lookback of 1 cannot be lowered
    with pytest.raises(WindowError, match="training part has"):
        chronological_split(35, 20, 5)
    with pytest.raises(WindowError, match=r"test part has 3 steps \(--test-fraction 0.03 of "
                                          r"100\), fewer than the horizon 5"):
        chronological_split(100, 5, 5, val_fraction=0.1, test_fraction=0.03)


@pytest.mark.parametrize("flags, season", [(["--season", "12", "--lookback", "12"], "12"),
                                           ([], "none given or detected")])
def test_anchor_season_without_a_season_inside_the_lookback_names_the_flags(tmp_path, capsys,
                                                                            flags, season):
    # the error came from inside the scaler, in Python terms ("anchor='season' needs a
    # lookback longer than the season (12), got 12"), after "no candidate setting fits this
    # series" and the settings line
    p = tmp_path / "c.csv"
    noise = np.random.default_rng(0).normal(size=80)
    p.write_text("t,y\n" + "".join(f"{i},{v:.4f}\n" for i, v in enumerate(noise)))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--target", "y", "--horizon", "6", "--anchor",
                 "season", "--quiet", "--no-plot", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"lstmlab forecast train: error: --anchor season reads the value one season back, so it needs "
        f"a season shorter than the lookback {flags[-1] if flags else 24} (season: {season}); "
        f"pass --season M, a longer --lookback, or another --anchor"]
    assert not out.exists()

def test_a_part_too_short_for_the_horizon_names_its_flag(tmp_path, capsys):
    # the advice was "raise its fraction", naming no flag
    p = tmp_path / "c.csv"
    p.write_text("t,y\n" + "".join(f"{i},{i % 7}\n" for i in range(60)))
    assert main(["forecast", "train", str(p), "--target", "y", "--horizon", "12", "--quiet",
                 "--no-plot", "--out", str(tmp_path / "run")]) == 2
    assert ("the validation part has 9 steps (--val-fraction 0.15 of 60), fewer than the "
            "horizon 12, so no window fits in it; raise --val-fraction to at least 0.2, lower "
            "--horizon, or set --val-fraction 0") in capsys.readouterr().err
    with pytest.raises(WindowError, match=r"fractions \(0.9 \+ 0.5\) leave no training part"):
        chronological_split(120, 1, 12, val_fraction=0.9, test_fraction=0.5)  # not "-48 steps"


def test_predict_refuses_a_gap_only_among_the_rows_it_reads(tmp_path, capsys):
    months = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(80)]
    y = 50 + np.sin(np.arange(80)) + 0.01 * np.arange(80)
    p = tmp_path / "m.csv"
    p.write_text("t,y\n" + "".join(f"{t},{v:.4f}\n" for t, v in zip(months, y)))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--target", "y", "--time", "t", "--lookback",
                 "6", "--horizon", "3", "--epochs", "1", "--quiet", "--no-plot", "--out",
                 str(out)]) == 0
    for cut, rc in ((5, 0), (77, 2)):  # a month missing long before the window, or inside it
        rows = [f"{t},{v:.4f}\n" for t, v in zip(months, y)]
        q = tmp_path / f"gap{cut}.csv"
        q.write_text("t,y\n" + "".join(rows[:cut] + rows[cut + 1:]))
        capsys.readouterr()
        assert main(["forecast", "predict", str(out / "model.ckpt"), str(q)]) == rc
    assert "the time column jumps from '2006-05' to '2006-07'" in capsys.readouterr().err


def test_predict_with_a_log_model_names_the_line_of_a_value_it_cannot_take(tmp_path, capsys):
    # the error said "the input window holds -3; use --transform none", a flag predict has not
    y = 50 + np.sin(np.arange(60))
    p = tmp_path / "s.csv"
    p.write_text("t,y\n" + "".join(f"{i},{v:.4f}\n" for i, v in enumerate(y)))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--target", "y", "--transform", "log",
                 "--lookback", "6", "--horizon", "3", "--epochs", "1", "--quiet", "--no-plot",
                 "--out", str(out)]) == 0
    for row, rc in ((3, 0), (58, 2)):  # before the last 6 rows it reads, or among them
        q = tmp_path / f"neg{row}.csv"
        q.write_text("t,y\n" + "".join(f"{i},{-3 if i == row else v:.4f}\n"
                                        for i, v in enumerate(y)))
        capsys.readouterr()
        assert main(["forecast", "predict", str(out / "model.ckpt"), str(q)]) == rc
    assert (f"{q}, line 60 holds -3, but the model was trained with --transform log and reads "
            f"the logs of the last 6 values, which must be positive; such data needs a model "
            f"trained with --transform none") in capsys.readouterr().err

@pytest.mark.parametrize("anchor", ["none", "last", "season"])
@pytest.mark.parametrize("log", [False, True])
def test_scaler_round_trip(anchor, log):
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, size=(7, 6, 2))
    Y = rng.uniform(1, 5, size=(7, 3))
    sc = WindowScaler(log=log, anchor=anchor, season=4).fit(X, Y)
    x, y = sc.encode(X, Y)
    assert x.shape == ((2 if anchor == "season" else 6), 7, 2)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)  # standardised on these windows
    np.testing.assert_allclose(sc.decode(X, y), Y, rtol=1e-12)
    again = WindowScaler.from_json(sc.to_json())
    np.testing.assert_allclose(again.decode(X, y), Y, rtol=1e-12)


def test_scaler_log_needs_positive_values():
    with pytest.raises(ValueError, match="log transform needs a positive target"):
        WindowScaler(log=True).fit(np.zeros((2, 3, 1)), np.ones((2, 1)))


def test_baselines_on_a_known_series():
    y = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10.0])
    X, Y = make_windows(y, 4, 3, [4, 6])
    assert persistence(X, 3).tolist() == [[4, 4, 4], [6, 6, 6]]
    # season 2: y[t+k-2*(k//2+1)]
    assert seasonal_naive(y, [4, 6], 3, 2).tolist() == [[3, 4, 3], [5, 6, 5]]
    assert mase_scale(y, 1) == 1.0 and mase_scale(y, 3) == 3.0
    s = scores(Y, persistence(X, 3), 1.0)
    assert s["rmse_1"] == 1.0 and s["mae"] == 2.0 and s["mase"] == 2.0


def test_linear_ar_recovers_an_autoregression():
    rng = np.random.default_rng(0)
    y = np.zeros(3000)
    for t in range(2, len(y)):
        y[t] = 0.6 * y[t - 1] - 0.3 * y[t - 2] + 1.0 + 0.1 * rng.normal()
    X, Y = make_windows(y, 3, 1, np.arange(3, len(y)))
    ar = LinearAR(ridge=0).fit(X, Y)
    np.testing.assert_allclose(ar.coef[:, 0], [0, -0.3, 0.6, 1.0], atol=0.05)


def test_linear_ar_fits_fewer_windows_than_weights_at_any_level():
    # five windows of six steps in the thousands (grunfeld's General Motors value): the
    # normal equations were singular in float64 and the report stopped with LinAlgError
    y = np.array([3078.5, 4661.7, 5387.1, 2792.2, 4313.2, 4643.9, 4551.2, 3244.1, 4053.7,
                  4379.3, 4840.9, 4900.9, 3526.5])
    X, Y = make_windows(y, 6, 3, np.arange(6, 11))
    ar = LinearAR().fit(X, Y)
    np.testing.assert_allclose(ar.predict(X), Y, rtol=1e-6)  # enough weights to fit them all
    assert np.all(np.isfinite(ar.predict(X + 1.0)))


def test_linear_ar_forecasts_a_series_far_from_zero_as_it_does_near_zero():
    # at 1e9 the normal equations of the raw values (entries near 1e18) rounded the
    # series' changes away: forecast train scored the levels AR at MASE 3.6 beside 0.39
    # for the same series near zero
    rng = np.random.default_rng(0)
    y = 10 * np.sin(np.arange(200) * 2 * np.pi / 12) + rng.normal(size=200)
    X, Y = make_windows(y, 12, 3, np.arange(12, 150))
    Xt, _ = make_windows(y, 12, 3, np.arange(150, 198))
    near = LinearAR().fit(X, Y).predict(Xt)
    far = LinearAR().fit(X + 1e9, Y + 1e9).predict(Xt + 1e9) - 1e9
    np.testing.assert_allclose(far, near, atol=1e-3)


def _sine(n=260, seed=0):
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 10 + 3 * np.sin(2 * np.pi * t / 12) + 0.1 * t + 0.2 * rng.normal(size=n)


def test_forecaster_learns_a_seasonal_series_and_round_trips(tmp_path):
    s = _series(_sine())
    cfg = ForecastConfig(lookback=24, horizon=6)
    fc = Forecaster.train(s, cfg, np.random.default_rng(0), hidden_size=16, dtype="float64",
                          fit_config=FitConfig(epochs=30, lr=1e-2, patience=20))
    assert fc.season == 12
    ev = evaluate(fc, s)
    assert set(ev.preds) == {"lstm", "persistence", "seasonal_naive", "linear_ar", "linear_ar_t"}
    assert ev.scores["lstm"]["rmse"] < 0.5 * ev.scores["persistence"]["rmse"]
    fc.save(tmp_path / "m.ckpt")
    back = Forecaster.load(tmp_path / "m.ckpt")
    X, _ = make_windows(s.values, 24, 6, fc.split.origins("test", 24, 6))
    np.testing.assert_array_equal(back.predict_windows(X), fc.predict_windows(X))
    assert back.season == 12 and back.split == fc.split
    np.testing.assert_allclose(back.forecast_next(s, 3), fc.predict_windows(s.values[-24:][None])[0, :3])
    with pytest.raises(ValueError, match="direct multi-step output"):
        back.forecast_next(s, 7)


def test_scaler_and_season_ignore_the_test_part():
    y = _sine(160)
    cfg = ForecastConfig(lookback=24, horizon=6, val_fraction=0.15, test_fraction=0.2)
    kw = dict(hidden_size=4, dtype="float64", fit_config=FitConfig(epochs=2))
    a = Forecaster.train(_series(y), cfg, np.random.default_rng(0), **kw)
    z = y.copy()
    z[a.split.train + a.split.val:] *= 100  # wreck the test part
    b = Forecaster.train(_series(z), cfg, np.random.default_rng(0), **kw)
    assert a.scaler.to_json() == b.scaler.to_json() and a.season == b.season
    for k, v in a.net.params().items():
        np.testing.assert_array_equal(v, b.net.params()[k])


def test_an_array_for_a_series_is_a_type_error_saying_how_to_wrap_it():
    from lstmlab.forecast.select import train_default

    y = _sine(80)
    cfg = ForecastConfig(lookback=6, horizon=2)
    fc = Forecaster.train(_series(y), cfg, np.random.default_rng(0), hidden_size=4,
                          fit_config=FitConfig(epochs=1))
    for call in (lambda: Forecaster.train(y, cfg, np.random.default_rng(0)),
                 lambda: train_default(list(y), cfg, set(), np.random.default_rng(0)),
                 lambda: fc.forecast_next(y), lambda: evaluate(fc, y)):
        with pytest.raises(TypeError, match=r"series must be a TimeSeries, got (ndarray|list): "
                                            r"read one with read_series"):
            call()
    # the wrapping the message suggests works as written
    wrapped = TimeSeries(values=y.reshape(len(y), -1), columns=["y"], time=None, source="array")
    assert fc.forecast_next(wrapped).shape == (2,)


def test_future_labels():
    assert future_labels(["1959-11", "1959-12"], 3) == ["1960-01", "1960-02", "1960-03"]
    assert future_labels(["2006", "2007", "2008"], 2) == ["2009", "2010"]
    assert future_labels(None, 2) == ["+1", "+2"]
    # pandas' spelling of a quarter is continued in it (it became '+1, +2')
    assert future_labels(["2009Q3", "2009Q4"], 2) == ["2010Q1", "2010Q2"]


def test_future_labels_continue_only_numbers_of_one_step():
    # weekly dates written 20210623, 20210630, 20210707 were continued by the last step,
    # 77, as 20210784 and 20210861
    assert future_labels(["20210623", "20210630", "20210707"], 2) == ["+1", "+2"]
    assert future_labels(["20210705", "20210706", "20210707"], 2) == ["+1", "+2"]
    assert future_labels(["1990", "1995", "2000", "2001"], 2) == ["+1", "+2"]
    assert future_labels(["0", "3600", "7200"], 2) == ["10800", "14400"]


def test_future_labels_continue_a_week_or_more_of_daily_dates():
    # daily data got '+1, +2' for the days after its last date
    days = [str(np.datetime64("2024-02-20") + i) for i in range(8)]  # ... 2024-02-27
    assert future_labels(days, 3) == ["2024-02-28", "2024-02-29", "2024-03-01"]
    assert future_labels(days[-5:], 2) == ["+1", "+2"]  # Monday to Friday: business days?
    weekdays = [d for d in days if np.is_busday(np.datetime64(d))]
    assert future_labels(weekdays, 2) == ["+1", "+2"]


def test_future_labels_continue_months_written_as_six_digits():
    # 202111, 202112 were continued as numbers: 202113, 202114
    assert future_labels(["202111", "202112"], 3) == ["202201", "202202", "202203"]
    # years with a gap before the last three are continued as before
    assert future_labels(["1990", "1995", "2000", "2001", "2002"], 2) == ["2003", "2004"]


# -- the command ----------------------------------------------------------------------------


def test_future_labels_continue_days_after_an_old_skipped_day():
    # a daily file missing one old date got '+1, +2': the whole file had to be a day apart
    days = [str(np.datetime64("2024-02-01") + i) for i in range(27) if i != 3]  # ... 2024-02-27
    assert future_labels(days, 2) == ["2024-02-28", "2024-02-29"]
    assert future_labels(days[:-5] + days[-4:], 2) == ["+1", "+2"]  # a skip in the last week


def _weekly_days(n: int, skip: int | None = None, empty: bool = False) -> str:
    """A CSV of ``n`` days with a weekly pattern, the ``skip``-th date left out (or, with
    ``empty``, kept without a value)."""
    rows = []
    for i in range(n):
        day = np.datetime64("2024-01-01") + i  # a Monday
        value = 10 + 5 * (0, 1, 3, 2, 5, 8, 1)[i % 7] + 0.01 * (i % 5)
        if i != skip or empty:
            rows.append(f"{day},{'' if i == skip else f'{value:.2f}'}\n")
    return "date,y\n" + "".join(rows)


def test_daily_dates_that_skip_a_day_are_refused_as_a_missing_month_is(tmp_path, capsys):
    # without a season the windows across a skipped day read the days on either side as
    # neighbours, silently (a skip in the test part: linear AR test MAE 5.87, 0.12 without it)
    p = write(tmp_path / "d.csv", _weekly_days(70, skip=40))
    out = tmp_path / "run"
    run = ["forecast", "train", str(p), "--target", "y", "--time", "date", "--horizon", "7",
           "--lookback", "14", "--epochs", "1", "--quiet", "--no-plot", "--out", str(out)]
    for flags in (["--season", "1"], [], ["--season", "7", "--anchor", "season"]):
        assert main(run + flags) == 2
        err = capsys.readouterr().err
        assert (f"{p}, line 42: the time column jumps from '2024-02-09' to '2024-02-11', "
                f"where the other rows are one day apart (1 such jump); the model would read "
                f"the rows on both sides as neighbours: add the missing dates as rows with an "
                f"empty value and pass --missing interpolate (or ffill)") in err
        assert not out.exists()
    write(p, _weekly_days(70, skip=40, empty=True))  # the fix the message gives
    assert main(run + ["--season", "1", "--missing", "interpolate"]) == 0
    assert ("column 'y': 1 missing value at line 42: interpolated linearly"
            in capsys.readouterr().err)
    model = str(out / "model.ckpt")
    # a forecast reads the last 14 rows: a skip before them is no matter, one among them is
    assert main(["forecast", "predict", model, str(write(p, _weekly_days(70, skip=50)))]) == 0
    assert main(["forecast", "predict", model, str(write(p, _weekly_days(70, skip=60)))]) == 2
    assert (f"{p}, line 62: the time column jumps from '2024-02-29' to '2024-03-02'"
            in capsys.readouterr().err)


def test_a_model_refuses_to_forecast_from_rows_that_skip_a_day():
    # a series made in Python, not read from a file, is checked as the readers check one
    days = [str(np.datetime64("2024-01-01") + i) for i in range(60)]
    y = 10 + 5 * np.tile([0, 1, 3, 2, 5, 8, 1], 9)[:60] + 0.01 * (np.arange(60) % 5)
    s = TimeSeries(y[:, None], ["y"], days, "test", np.arange(60) + 2)
    fc = Forecaster.train(s, ForecastConfig(lookback=14, horizon=7, season=1),
                          np.random.default_rng(0), hidden_size=4,
                          fit_config=FitConfig(epochs=1))
    old = TimeSeries(y[1:, None], ["y"], days[:1] + days[2:], "test", np.arange(59) + 2)
    assert fc.forecast_next(old).shape == (7,)  # a skip before the rows it reads
    with pytest.raises(ValueError, match=r"test, line 3: the time column jumps from "
                                         r"'2024-01-01' to '2024-01-03'"):
        Forecaster.train(old, ForecastConfig(lookback=14, horizon=7, season=1),
                         np.random.default_rng(0), hidden_size=4,
                         fit_config=FitConfig(epochs=1))
    late = TimeSeries(y[1:, None], ["y"], days[:50] + days[51:], "test", np.arange(59) + 2)
    with pytest.raises(ValueError, match=r"test, line 52: the time column jumps from "
                                         r"'2024-02-19' to '2024-02-21'"):
        fc.forecast_next(late)

def _csv(tmp_path, n=150):
    y = _sine(n)
    rows = ["date,units,price"] + [f"{2000 + i // 12}-{i % 12 + 1:02d},{v:.4f},{1 + (i % 3)}"
                                   for i, v in enumerate(y)]
    return write(tmp_path / "sales.csv", "\n".join(rows) + "\n")


def test_cli_train_then_predict(tmp_path, capsys):
    path = _csv(tmp_path)
    out = tmp_path / "run"
    rc = main(["forecast", "train", str(path), "--target", "units", "--time", "date",
               "--features", "price", "--lookback", "24", "--horizon", "6", "--hidden", "8",
               "--epochs", "5", "--quiet", "--out", str(out), "--dtype", "float64"])
    assert rc == 0
    text = capsys.readouterr().out
    for method in ("LSTM (this model)", "persistence", "seasonal naive (m=12)",
                   "linear AR (levels)", "linear AR (network's transform)"):
        assert method in text
    assert "RMSE h=1" in text and "MASE" in text
    assert {p.name for p in out.iterdir()} >= {"model.ckpt", "forecasts.csv", "report.json",
                                               "metrics.jsonl", "forecast.png"}
    rows = list(csv.DictReader((out / "forecasts.csv").read_text().splitlines()))
    assert rows[0]["origin_time"] < rows[0]["target_time"]
    assert set(rows[0]) >= {"truth", "lstm", "persistence", "linear_ar"}
    report = json.loads((out / "report.json").read_text())
    assert report["split"]["test"] == 30 and report["season"] == 12
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 5
    # a second run into the same folder is refused, nothing overwritten
    assert main(["forecast", "train", str(path), "--target", "units", "--out", str(out)]) == 2
    assert "already holds a model" in capsys.readouterr().err
    # --force replaces the run; drawing no plot, it leaves none of the replaced run's behind
    assert main(["forecast", "train", str(path), "--target", "units", "--time", "date",
                 "--lookback", "24", "--horizon", "6", "--hidden", "8", "--epochs", "2",
                 "--quiet", "--out", str(out), "--force", "--no-plot"]) == 0
    assert not (out / "forecast.png").exists() and (out / "model.ckpt").exists()
    capsys.readouterr()

    assert main(["forecast", "predict", str(out / "model.ckpt"), str(path), "--horizon", "3",
                 "--out", str(tmp_path / "next.csv")]) == 0
    lines = (tmp_path / "next.csv").read_text().splitlines()
    assert lines[0] == "step,time,forecast,lo80,hi80,lo95,hi95"
    assert lines[1].startswith("1,2012-07,")
    assert len(lines) == 4
    f, lo80, hi80, lo95, hi95 = map(float, lines[1].split(",")[2:])
    assert lo95 <= lo80 <= f <= hi80 <= hi95


def test_cli_default_series_says_so(tmp_path, capsys):
    rc = main(["forecast", "train", "--dataset", "sunspots", "--epochs", "1", "--hidden", "4",
               "--quiet", "--no-plot", "--out", str(tmp_path / "r")])
    assert rc == 0
    err = capsys.readouterr().err
    assert "no CSV given: using the shipped series 'sunspots'" in err


def test_cli_quiet_leaves_out_the_lines_that_say_what_the_run_does(tmp_path, capsys):
    # `forecast train --quiet` printed its settings line (one series) or its model line (many
    # series) on stderr, as `train --quiet` did its model line
    assert main(["forecast", "train", "--epochs", "1", "--hidden", "4", "--lookback", "12",
                 "--transform", "none", "--anchor", "last", "--base", "none", "--quiet",
                 "--no-plot", "--out", str(tmp_path / "one")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("no CSV given: using the shipped series 'airline'")
    assert err[1:] == ["settings given: lookback 12, transform none, anchor last, base none"]
    rng = np.random.default_rng(0)
    rows = [f"{name},{t},{v:.3f}" for name in "ab" for t, v in enumerate(rng.random(40) + 1)]
    long = write(tmp_path / "p.csv", "id,t,y\n" + "\n".join(rows) + "\n")
    assert main(["forecast", "train", str(long), "--id", "id", "--time", "t", "--value", "y",
                 "--lookback", "4", "--horizon", "2", "--base", "none", "--epochs", "1",
                 "--hidden", "2", "--quiet", "--no-plot", "--out", str(tmp_path / "many")]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("content, args, message", [
    ("", [], "is empty"),
    ("date,units\n2000-01,1\n", ["--target", "sales"], "target column 'sales' is not in"),
    ("date,units\n2000-01,1\n2000-02,x\n", [], "line 3, column 'units': 'x' is not a number"),
    ("date,units\n" + "".join(f"2000-{m:02d},{m}\n" for m in range(1, 13)), [],
     "shorter than lookback \\+ horizon"),
    ("date,units\n" + "".join(f"{1900 + i},{'' if i == 50 else i}\n" for i in range(100)), [],
     "1 missing value"),
])
def test_cli_bad_inputs_exit_2_with_a_clear_message(tmp_path, capsys, content, args, message):
    path = write(tmp_path / "bad.csv", content)
    argv = ["forecast", "train", str(path), "--time", "date" if "date" in content else "units",
            "--out", str(tmp_path / "r"), "--quiet", "--epochs", "1"]
    if "--target" not in args:
        argv += ["--target", "units"]
    if content.startswith("date,units\n19"):
        argv[argv.index("--time") + 1] = "date"
    assert main(argv + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstmlab forecast train: error: ")
    import re
    assert re.search(message, err), err
    assert not (tmp_path / "r" / "model.ckpt").exists()


def test_cli_missing_values_filled_on_request(tmp_path, capsys):
    y = _sine(120)
    rows = ["t,y"] + [f"{i},{'' if i in (40, 41) else f'{v:.3f}'}" for i, v in enumerate(y)]
    path = write(tmp_path / "gap.csv", "\n".join(rows) + "\n")
    rc = main(["forecast", "train", str(path), "--target", "y", "--time", "t", "--missing",
               "interpolate", "--lookback", "12", "--horizon", "3", "--epochs", "1", "--hidden",
               "4", "--quiet", "--no-plot", "--out", str(tmp_path / "r")])
    assert rc == 0
    assert "2 missing values at lines 42, 43: interpolated" in capsys.readouterr().err


def test_rmse_helper():
    assert rmse(np.array([0.0, 0.0]), np.array([3.0, 4.0])) == pytest.approx(np.sqrt(12.5))


def test_predict_refuses_rows_laid_out_for_the_times_to_forecast(tmp_path, capsys):
    # rows of the future months with an empty value (a spreadsheet laid out for the
    # forecast) were refused with "pass --missing ffill or --missing interpolate", and with
    # that flag the forecast started after them, from the carried-forward values
    y = 50 + np.sin(np.arange(60))
    rows = "".join(f"{i},{v:.4f}\n" for i, v in enumerate(y))
    p = write(tmp_path / "s.csv", "t,y\n" + rows)
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--target", "y", "--time", "t", "--lookback",
                 "6", "--horizon", "3", "--epochs", "1", "--base", "none", "--quiet",
                 "--no-plot", "--out", str(out)]) == 0
    q = write(tmp_path / "f.csv", "t,y\n" + rows + "60,\n61,\n")
    for missing in ("refuse", "ffill", "interpolate"):
        capsys.readouterr()
        assert main(["forecast", "predict", str(out / "model.ckpt"), str(q), "--missing",
                     missing]) == 2
        assert ("the last 2 rows (lines 62..63) have no value of 'y'; a forecast starts "
                "after the last row") in capsys.readouterr().err
    inside = "".join(f"{i},{'' if i == 30 else f'{v:.4f}'}\n" for i, v in enumerate(y))
    q = write(tmp_path / "g.csv", "t,y\n" + inside)  # a gap inside the history is filled
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(q), "--missing",
                 "ffill"]) == 0


@pytest.mark.parametrize("scale", [1e-30, 1e6, 1e30])
def test_score_table_keeps_its_columns_and_digits_at_any_scale(scale):
    # in units of 1e-30 every error printed as 0.000; in units of 1e30 as 30-digit numbers
    # that ran the columns together
    from lstmlab.forecast.report import Evaluation, format_table
    truth = np.array([[1.0, 2.0]]) * scale
    preds = {"lstm": truth * 1.25, "persistence": truth * 1.5}
    ev = Evaluation(origins=np.array([5]), truth=truth, preds=preds,
                    scores={m: scores(truth, p, scale) for m, p in preds.items()},
                    season=None, scale=scale, part="test")
    head, rule, *rows = format_table(ev).splitlines()
    for row in rows:
        assert len(row.removesuffix("  <- best")) == len(head)
    cells = rows[0].removesuffix("  <- best").split()[-4:]  # RMSE h=1, RMSE 1..2, MAE, MASE
    assert cells == [f"{0.25 * scale:.3g}", f"{0.395 * scale:.3g}", f"{0.375 * scale:.3g}",
                     "0.375"]


def _tiny_run(tmp_path, n: int, horizon: int):
    """``(csv, run folder)``: a one-epoch forecast train of lookback 4 on ``n`` steps of a
    sine, written without a time column."""
    y = 50 + np.sin(np.arange(n))
    p = write(tmp_path / "s.csv", "y\n" + "".join(f"{v:.4f}\n" for v in y))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--target", "y", "--lookback", "4", "--horizon",
                 str(horizon), "--hidden", "4", "--epochs", "1", "--quiet", "--no-plot",
                 "--out", str(out)]) == 0
    return p, out


def test_a_horizon_of_one_is_one_step_in_every_message(tmp_path, capsys):
    # 'each forecasting 1 steps' and 'this model forecasts 1 steps ahead at once'
    p, out = _tiny_run(tmp_path, 60, 1)
    assert "windows, each forecasting 1 step; MASE" in capsys.readouterr().out
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(p), "--horizon", "2"]) == 2
    assert "this model forecasts 1 step ahead at once" in capsys.readouterr().err


def test_score_and_backtest_tables_widen_for_a_long_method_label():
    # 'ETS(levels, damped trend, no season)' ran two characters into the RMSE column
    from lstmlab.forecast.backtest import format_backtest
    from lstmlab.forecast.report import Evaluation, format_table
    label = "ETS(levels, damped trend, season 12)"
    truth = np.array([[1.0, 2.0]])
    preds = {"lstm": truth * 1.25, "ets": truth * 1.5}
    ev = Evaluation(origins=np.array([5]), truth=truth, preds=preds,
                    scores={m: scores(truth, p, 1.0) for m, p in preds.items()},
                    season=None, scale=1.0, part="test", labels={"ets": label})
    bt = {"ends": [10, 8], "mase": {"lstm": [0.5, 0.6], "ets": [0.7, 0.8]}}
    for table in (format_table(ev), format_backtest(bt, {"lstm": "LSTM", "ets": label})):
        rows = [r.removesuffix("  <- best") for r in table.splitlines() if r[:1] in "mLE"]
        assert len({len(r) for r in rows}) == 1 and rows[-1].startswith(label + " ")


def test_predict_names_the_line_of_the_row_it_forecasts_after(tmp_path, capsys):
    # without a time column it said 'after the last row (58)', the row's 0-based index,
    # of a file whose last row is on line 60
    p, out = _tiny_run(tmp_path, 59, 2)
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(p)]) == 0
    assert f"2-step forecast of 'y' after the last row (line 60) of {p}:" in capsys.readouterr().err


def test_a_window_with_a_missing_value_is_named_as_such():
    # forecast_next on a series holding NaN said the column 'is too far from the training
    # data to scale: it falls outside float32'
    s = _series(_sine(200))
    fc = Forecaster.train(s, ForecastConfig(lookback=12, horizon=3, base="none"),
                          np.random.default_rng(0), hidden_size=4, fit_config=FitConfig(epochs=1))
    y = s.values[:, 0].copy()
    y[-3] = np.nan
    with pytest.raises(ValueError, match=r"column 'y' of window 0 has a missing value \(NaN\) "
                                         r"at step 10 of 12; fill it"):
        fc.forecast_next(_series(y))


@pytest.mark.parametrize("horizon", [0, -1, 2.5, "3"])
def test_a_horizon_that_is_not_a_positive_integer_is_named(horizon):
    # 0 said 'retrain with --horizon 0 for more'; 2.5 and '3' failed inside NumPy or on '<='
    s = _series(_sine(200))
    fc = Forecaster.train(s, ForecastConfig(lookback=12, horizon=3, base="none"),
                          np.random.default_rng(0), hidden_size=4, fit_config=FitConfig(epochs=1))
    with pytest.raises(ValueError, match="horizon must be a positive integer, got") as err:
        fc.forecast_next(s, horizon)
    assert "retrain" not in str(err.value)


def test_the_plot_leaves_the_callers_matplotlib_backend_as_it_was(tmp_path, capsys):
    # plot_forecast switched the process to the Agg backend: a notebook calling the API lost
    # its inline figures
    import matplotlib

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        assert main(["forecast", "train", str(_csv(tmp_path)), "--target", "units",
                     "--lookback", "12", "--horizon", "3", "--hidden", "4", "--epochs", "2",
                     "--quiet", "--out", str(tmp_path / "run")]) == 0
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert (tmp_path / "run" / "forecast.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backtest_table_labels_a_method_whose_folds_chose_different_variants_truthfully():
    # the ETS row carried fold 0's variant, though other folds had chosen another
    from lstmlab.forecast.backtest import format_backtest
    log, lev = "ETS(log, damped trend, no season)", "ETS(levels, no trend, no season)"
    bt = {"ends": [10, 8, 6], "mase": {"lstm": [0.5, 0.6, 0.7], "ets": [0.7, 0.8, 0.9]},
          "labels": {"lstm": ["LSTM"] * 3, "ets": [log, lev, log]}}
    table = format_backtest(bt, {"lstm": "LSTM", "ets": log})
    rows = table.splitlines()
    assert rows[3].startswith("LSTM ")
    assert rows[4].startswith("ETS (variant per fold, below) ") and log not in rows[4]
    assert rows[5] == f"ETS per fold (test part ending after step): 10: {log}; 8: {lev}; 6: {log}"
    bt["labels"]["ets"] = [log] * 3  # one variant throughout: named in its row
    assert format_backtest(bt, {}).splitlines()[4].startswith(log + " ")


def test_train_without_target_names_the_columns_it_may_be(tmp_path, capsys):
    # 'a CSV needs --target COLUMN' left a new user to open the file to find the name
    p = write(tmp_path / "sales.csv", "date,units,price\n2024-01-01,3,1.5\n2024-01-02,4,1.5\n")
    assert main(["forecast", "train", str(p)]) == 2
    assert f"a CSV needs --target COLUMN (the column to forecast); '{p}' has the columns date, " \
           f"units, price" in capsys.readouterr().err
    q = write(tmp_path / "panel.csv", "store,date,units\nA,1,3\nB,1,4\n")
    assert main(["forecast", "train", str(q), "--id", "store"]) == 2
    assert f"'{q}' has the columns store, date, units" in capsys.readouterr().err


def test_a_training_part_repeating_its_season_exactly_is_not_called_constant(tmp_path, capsys):
    # 0, 1, 2, 3, 4, 0, 1, ...: the seasonal naive forecast is exact on it, and the report
    # said 'MASE relative to nothing: the training part is constant' and that each quantile
    # was the point forecast, though the quantile heads forecast a band
    y = np.arange(60) % 5
    p = write(tmp_path / "cyc.csv", "y\n" + "".join(f"{v}\n" for v in y))
    assert main(["forecast", "train", str(p), "--target", "y", "--horizon", "3", "--lookback",
                 "10", "--base", "snaive", "--transform", "none", "--anchor", "last",
                 "--quantiles", "0.1,0.9", "--epochs", "1", "--hidden", "4", "--quiet",
                 "--no-plot", "--out", str(tmp_path / "run")]) == 0
    text = capsys.readouterr().out
    assert ("MASE relative to nothing: the training part repeats its season of 5 exactly, so "
            "the seasonal naive forecast has no error there to scale by; MASE is the MAE") in text
    assert "constant" not in text and "quantile heads (pinball loss) on the test part" in text


def test_predict_reads_missing_values_as_trained_and_only_in_the_rows_it_reads(tmp_path,
                                                                               capsys):
    # a model trained with --missing ffill refused its own training file in predict,
    # for a value missing long before the 6 rows it reads
    y = 50 + np.sin(np.arange(60))
    rows = [f"{i},{'' if i == 5 else f'{v:.4f}'}\n" for i, v in enumerate(y)]
    p = write(tmp_path / "s.csv", "t,y\n" + "".join(rows))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--target", "y", "--time", "t", "--missing",
                 "ffill", "--lookback", "6", "--horizon", "3", "--epochs", "1", "--base",
                 "none", "--quiet", "--no-plot", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(p)]) == 0
    assert "1 missing value at line 7: carried the previous value forward" in (
        capsys.readouterr().err)
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(p), "--missing",
                 "refuse"]) == 0
    assert ("line 7 has a missing value that --missing refuse does not fill, before the last "
            "6 rows the forecast reads: the rows up to it (lines 2..7) are left out"
            ) in capsys.readouterr().err
    inside = write(tmp_path / "w.csv", "t,y\n" + "".join(rows[:57] + ["57,\n"] + rows[58:]))
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(inside), "--missing",
                 "refuse"]) == 2
    assert "column 'y' has 1 missing value (line 59)" in capsys.readouterr().err


def test_predict_without_a_csv_forecasts_the_shipped_series_the_model_was_trained_on(
        tmp_path, capsys):
    # a model trained on the shipped airline series needed the path of its CSV inside the
    # package to forecast ("the following arguments are required: CSV")
    out = tmp_path / "run"
    assert main(["forecast", "train", "--lookback", "12", "--horizon", "3", "--base", "none",
                 "--transform", "none", "--anchor", "last", "--hidden", "4", "--epochs", "1",
                 "--quiet", "--no-plot", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt")]) == 0
    text, err = capsys.readouterr()
    assert text.splitlines()[1].startswith("1,1961-01,")
    assert "no CSV given: forecasting from the shipped series 'airline'" in err
    p = write(tmp_path / "s.csv", "y\n" + "".join(f"{50 + np.sin(i):.4f}\n" for i in range(60)))
    mine = tmp_path / "mine"
    assert main(["forecast", "train", str(p), "--target", "y", "--lookback", "4", "--horizon",
                 "2", "--base", "none", "--epochs", "1", "--quiet", "--no-plot", "--out",
                 str(mine)]) == 0
    capsys.readouterr()
    assert main(["forecast", "predict", str(mine / "model.ckpt")]) == 2
    assert (f"this model was trained on {p}, not on a shipped series; pass CKPT CSV"
            ) in capsys.readouterr().err


def test_cli_a_gru_trains_predicts_and_is_named_in_the_report(tmp_path, capsys):
    # SequenceNet took "lstm" and "rnn" only; --model gru trains the GRU through the same path
    path = _csv(tmp_path)
    out = tmp_path / "run"
    assert main(["forecast", "train", str(path), "--target", "units", "--time", "date",
                 "--model", "gru", "--lookback", "12", "--horizon", "3", "--hidden", "4",
                 "--epochs", "2", "--quiet", "--no-plot", "--out", str(out)]) == 0
    assert "GRU (this model)" in capsys.readouterr().out
    assert "gru" in json.loads((out / "report.json").read_text())["scores"]
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(path)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4  # header and 3 steps
