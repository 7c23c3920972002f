"""Many series, one model: long-format reading and its errors, the M4 measures (sMAPE,
naive 2, OWA), the global model's per-series scaling, training, checkpoint and CLI."""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
from seq_helpers import double_ctrl_c_after_each_epoch, one_blas_thread, write  # noqa: F401

from lstmlab.cli import main
from lstmlab.forecast.baselines import smape
from lstmlab.forecast.data import SeriesError, TimeSeries
from lstmlab.forecast.global_model import GlobalConfig, GlobalForecaster, split_series
from lstmlab.forecast.global_report import evaluate_panel
from lstmlab.forecast.global_select import candidates, train_global_default, validation_score
from lstmlab.forecast.m4 import is_seasonal, naive2, owa, seasonal_indices, seasonal_offsets
from lstmlab.forecast.model import MIXES, future_labels
from lstmlab.forecast.panel import Panel, read_long, read_panel
from lstmlab.forecast.windows import WindowError
from lstmlab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lstmlab.training.supervised import FitConfig


def _seasonal(n, m=4, level=100.0, seed=0, noise=0.02, trend=0.0, amplitude=0.3):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    factors = 1 + amplitude * np.sin(2 * np.pi * (np.arange(m) + 0.5) / m)
    return level * np.exp(trend * t) * factors[t % m] * np.exp(noise * rng.normal(size=n))


def _long_csv(series: dict) -> str:
    rows = ["id,t,y"]
    for name, y in series.items():
        rows += [f"{name},{i},{float(v)!r}" for i, v in enumerate(y)]
    return "\n".join(rows) + "\n"


# -- the M4 measures ----------------------------------------------------------------------------

def test_smape_follows_the_m4_formula():
    assert smape([100.0], [110.0]) == pytest.approx(200 * 10 / 210)
    assert smape([1.0, 0.0], [1.0, 0.0]) == 0.0  # both zero counts as no error
    assert smape([1.0], [-1.0]) == pytest.approx(200.0)  # the largest possible


def test_seasonality_test_finds_a_season_and_not_white_noise():
    assert is_seasonal(_seasonal(80, m=4, noise=0.05), 4)
    assert is_seasonal(_seasonal(120, m=12, noise=0.05), 12)
    noise = 100 + np.random.default_rng(3).normal(size=200)
    assert not is_seasonal(noise, 4) and not is_seasonal(noise, 12)
    assert not is_seasonal(_seasonal(10, m=4), 4)  # shorter than three seasons
    assert not is_seasonal(_seasonal(80), 1)


def test_classical_decomposition_recovers_multiplicative_indices():
    for m in (4, 7, 12):  # even (2 x m average) and odd
        rng = np.random.default_rng(m)
        f = np.exp(rng.normal(0, 0.2, m))
        f /= f.mean()
        n = 10 * m + 3
        y = 50 * np.exp(0.002 * np.arange(n)) * f[np.arange(n) % m]
        np.testing.assert_allclose(seasonal_indices(y, m), f, rtol=3e-3)


def test_classical_decomposition_recovers_additive_components_of_any_sign():
    for m in (4, 7, 12):
        rng = np.random.default_rng(m)
        c = rng.normal(0, 2.0, m)
        c -= c.mean()
        n = 10 * m + 3
        y = -5.0 + 0.01 * np.arange(n) + c[np.arange(n) % m]  # a linear trend through 0
        np.testing.assert_allclose(seasonal_offsets(y, m), c, atol=1e-9)


def test_naive2_reseasonalises_the_last_adjusted_value_and_is_naive_without_season():
    m, n = 4, 60
    f = np.array([0.8, 1.1, 1.3, 0.8])
    y = 200.0 * f[np.arange(n) % m]  # a level of 200 times an exact season
    origins = np.array([40, 45, 51])
    pred = naive2(y, 40, origins, 6, m)
    truth = y[origins[:, None] + np.arange(6)]
    np.testing.assert_allclose(pred, truth, rtol=1e-12)  # exact on an exact season
    noise = 100 + np.random.default_rng(0).normal(size=n)
    plain = naive2(noise, 40, origins, 6, m)  # no season found: the naive forecast
    np.testing.assert_array_equal(plain, np.repeat(noise[origins - 1][:, None], 6, axis=1))
    shifted = y - 300  # negative values: no multiplicative index, so naive
    np.testing.assert_array_equal(naive2(shifted, 40, origins, 6, m),
                                  np.repeat(shifted[origins - 1][:, None], 6, axis=1))
    later = y.copy()
    later[50:] -= 300  # values <= 0 after the training part: the indices see only that part
    np.testing.assert_allclose(naive2(later, 40, origins[:1], 6, m), truth[:1], rtol=1e-12)


def test_owa_is_one_for_naive2_and_halves_with_both_errors():
    assert owa(12.0, 1.5, 12.0, 1.5) == 1.0
    assert owa(6.0, 0.75, 12.0, 1.5) == 0.5
    assert np.isnan(owa(1.0, 1.0, 0.0, 1.0))


# -- reading many series ------------------------------------------------------------------------

def test_long_format_groups_series_and_sorts_each_by_time(tmp_path):
    p = write(tmp_path / "p.csv", "id,t,y\nA,2,20\nB,1,5\nA,1,10\nB,2,6\nA,3,30\n")
    panel = read_long(p, "id", "y", "t")
    assert panel.names() == ["A", "B"]
    np.testing.assert_array_equal(panel.series["A"].target, [10, 20, 30])
    assert panel.series["A"].time == ["1", "2", "3"]
    assert list(panel.series["A"].lines) == [4, 2, 6]  # lines as the file has them


def test_ids_that_differ_only_in_case_or_spacing_are_named_in_a_note(tmp_path, capsys):
    # 'Store A', 'store a' and 'Store  A' became three series without a word
    rows = "".join(f"{name},{t},{t + k}\n" for k, name in enumerate(
        ["Store A", "store a", "Store  A", "B", "b", "C"]) for t in range(20))
    p = write(tmp_path / "p.csv", "store,t,y\n" + rows)
    panel = read_long(p, "store", "y", "t")
    assert len(panel) == 6  # kept apart: the file may mean them apart
    note = ("the id column 'store' holds ids that differ only in case or spacing ('Store A', "
            "'store a', 'Store  A'; 'B', 'b'): each is read as a series of its own; write them "
            "alike if they name one series")
    assert panel.notes == [note]
    assert read_long(write(tmp_path / "q.csv", "store,t,y\nA,1,1\nB,1,2\n"), "store", "y",
                     "t").notes == []


@pytest.mark.parametrize("text, words", [
    ("id,t,y\nA,1,1\n,2,3\n", ["line 3", "id column 'id' is empty"]),
    ("id,t,y\nA,1,1\nB,1,2\nA,1,3\n", ["series 'A'", "time '1' occurs twice", "lines 2 and 4"]),
    # The same number written two ways is one time, as the sort takes it.
    ("id,t,y\nA,1,1\nA,2,2\nA,1.0,3\n", ["series 'A'", "time '1' (as '1.0') occurs twice",
                                           "lines 2 and 4"]),
    ("id,t,y\nA,1,1\nB,1,x\n", ["series 'B'", "line 3", "'x' is not a number"]),
    ("id,t,y\nA,1,1\nB,1,2\nB,2,NA\n", ["series 'B'", "missing value", "--missing"]),
    ("series,t,y\nA,1,1\n", ["id column 'id' is not in", "series, t, y"]),
])
def test_bad_long_format_files_get_errors_naming_series_and_line(tmp_path, text, words):
    p = write(tmp_path / "bad.csv", text)
    with pytest.raises(SeriesError) as e:
        read_long(p, "id", "y", "t")
    for w in words:
        assert w in str(e.value)


def test_a_series_too_short_for_one_window_is_named(tmp_path):
    y = _seasonal(80)
    p = write(tmp_path / "p.csv", _long_csv({"long": y, "stub": y[:14]}))
    panel = read_long(p, "id", "y", "t")
    split_series("long", panel.series["long"], GlobalConfig(lookback=8, horizon=2))
    with pytest.raises(WindowError, match="series 'stub'.*no training window fits"):
        split_series("stub", panel.series["stub"], GlobalConfig(lookback=8, horizon=2))
    rc = main(["forecast", "train", str(p), "--id", "id", "--time", "t", "--target", "y",
               "--lookback", "8", "--horizon", "2", "--out", str(tmp_path / "run")])
    assert rc != 0 and not (tmp_path / "run" / "model.ckpt").exists()


def test_folder_of_csvs_is_a_panel_named_after_the_files(tmp_path):
    (tmp_path / "d").mkdir()
    write(tmp_path / "d" / "north.csv", "t,y\n1,3\n2,4\n")
    write(tmp_path / "d" / "south.csv", "t,y\n1,7\n2,8\n3,9\n")
    panel = read_panel(tmp_path / "d", "y", time="t")
    assert panel.names() == ["north", "south"] and len(panel.series["south"]) == 3
    with pytest.raises(SeriesError, match="leave out --id"):
        read_panel(tmp_path / "d", "y", id_column="id")
    with pytest.raises(SeriesError, match="need --id"):
        read_panel(tmp_path / "d" / "north.csv", "y")



def test_folder_reading_matches_the_csv_extension_in_any_case(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    write(d / "north.csv", "t,y\n1,3\n2,4\n")
    write(d / "South.CSV", "t,y\n1,7\n2,8\n3,9\n")
    write(d / "west.Csv", "t,y\n1,5\n2,6\n")
    write(d / "notes.txt", "not a series\n")
    # a copied folder's macOS resource fork and Excel's lock file stopped the run as
    # "looks like a binary file"
    (d / "._north.csv").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
    (d / "~$west.Csv").write_bytes(b"\x05user\x00\x00\x00")
    panel = read_panel(d, "y", time="t")
    assert panel.names() == ["South", "north", "west"]  # file-name order, every run
    assert len(panel.series["South"]) == 3
    if (d / "NORTH.CSV").exists():  # a case-insensitive file system holds one 'north'
        return
    write(d / "north.CSV", "t,y\n1,1\n2,2\n")  # a second file for the series 'north'
    with pytest.raises(SeriesError, match="holds both 'north.CSV' and 'north.csv'"):
        read_panel(d, "y", time="t")

# -- the global model -----------------------------------------------------------------------

def _panel(scales=(1.0, 50.0, 3000.0), n=90):
    series = {}
    for i, s in enumerate(scales):
        y = s * _seasonal(n, level=10, seed=i, noise=0.01, trend=0.03, amplitude=0.0)
        series[f"s{i}"] = TimeSeries(y[:, None], ["y"], None, f"s{i}", np.arange(n) + 2)
    return Panel(series, "synthetic", "id", None, "y")


def _train(panel, epochs=40, **kw):
    cfg = GlobalConfig(**{"lookback": 12, "horizon": 4, "season": 4, **kw})
    return GlobalForecaster.train(panel, cfg, np.random.default_rng(0), hidden_size=12,
                                  dtype="float64",
                                  fit_config=FitConfig(epochs=epochs, lr=1e-2, patience=20))


def test_per_series_scaling_makes_forecasts_follow_the_series_units(one_blas_thread):
    panel = _panel()
    gf = _train(panel, epochs=3, deseasonalize=False)
    X = panel.series["s0"].target[:24].reshape(2, 12)
    at = np.array([12, 24])
    base = gf.predict("s0", X, at)
    info = gf.info["s0"]
    for factor in (1e-3, 7.0, 1e4):  # the same shape in other units: the same forecast, rescaled
        scaled = replace(info, scale=info.scale * factor)
        np.testing.assert_allclose(gf.predict("s0", X * factor, at, scaled), base * factor,
                                   rtol=1e-9)
    np.testing.assert_allclose(gf.predict("s0", X + 5.0, at), base + 5.0, rtol=1e-9)  # level-free
    assert gf.info["s2"].scale == pytest.approx(3000 * gf.info["s0"].scale, rel=0.3)



@pytest.mark.parametrize("base", ["none", "ar"])
def test_constant_series_are_forecast_by_their_value(one_blas_thread, base):
    # a constant series was scaled by s = 1 in its own units: the network's change for it
    # (learnt in other series' units) moved its forecast off the constant, and an all-zero
    # series scored sMAPE 200
    panel = _panel()
    n = 90
    for name, y in (("zero", np.zeros(n)), ("five", np.full(n, 5.0)),
                    ("rounded", 0.1 * 3 + np.where(np.arange(n) % 2, 0.0, 5.6e-17))):
        panel.series[name] = TimeSeries(y[:, None], ["y"], None, name, np.arange(n) + 2)
    gf = _train(panel, epochs=3, base=base)
    ev = evaluate_panel(gf, panel)
    for name, level in (("zero", 0.0), ("five", 5.0), ("rounded", 0.3)):
        r = ev.series[name]
        np.testing.assert_allclose(r.preds["lstm"], level, rtol=1e-12, atol=0)
        assert r.scores["lstm"]["smape"] < 1e-12 and r.scores["lstm"]["mase"] < 1e-12
    assert ev.series["zero"].scores["lstm"]["smape"] == 0.0  # 0/0 counts as no error
    unseen = TimeSeries(np.full((30, 1), -2.0), ["y"], None, "new", np.arange(30) + 2)
    np.testing.assert_array_equal(gf.forecast_next("new", unseen)[0], [-2.0] * 4)
    with pytest.raises(ValueError, match="every series is constant on its training part "
                                         r"\(zero, five\)"):
        _train(Panel({k: panel.series[k] for k in ("zero", "five")}, "c", "id", None, "y"))



def test_cli_names_the_constant_series_and_reports_them_exact(tmp_path, capsys):
    series = {f"s{i}": 10 * (i + 1) * _seasonal(60, seed=i) for i in range(2)}
    series["flat"] = np.zeros(60)
    p = write(tmp_path / "p.csv", _long_csv(series))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
                 "--lookback", "8", "--horizon", "4", "--season", "4", "--epochs", "2",
                 "--hidden", "4", "--quiet", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "from 2 series;" in text
    assert "1 series constant on their training part (flat): forecast by their value" in text
    # naive 2 is exact on the flat series, so its OWA is undefined: it was written as NaN,
    # which no strict JSON reader takes, and printed as nan
    def refuse(name):
        raise ValueError(f"{name} in report.json")

    report = json.loads((out / "report.json").read_text(), parse_constant=refuse)
    flat = report["series"]["flat"]["scores"]["lstm"]
    assert flat["smape"] == 0.0 and flat["mae"] == 0.0 and flat["owa"] is None
    assert "nan" not in text and "OWA -: naive 2 is exact there" in text


def test_global_predict_with_a_log_model_names_the_series_and_line(tmp_path, capsys):
    series = {f"s{i}": 10 * (i + 1) * _seasonal(60, seed=i) for i in range(2)}
    p = write(tmp_path / "p.csv", _long_csv(series))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
                 "--lookback", "8", "--horizon", "4", "--transform", "log", "--epochs", "1",
                 "--hidden", "4", "--quiet", "--out", str(out)]) == 0
    series["s1"][-2] = 0.0
    write(p, _long_csv(series))
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(p)]) == 2
    assert ("series 's1', line 120 holds 0, but the model was trained with --transform log"
            in capsys.readouterr().err)

def test_global_model_learns_across_series_and_beats_naive2(one_blas_thread):
    panel = _panel()
    ev = evaluate_panel(_train(panel, transform="log"), panel)
    agg = ev.aggregate()
    assert agg["naive2"]["owa"] == pytest.approx(1.0)
    assert agg["lstm"]["owa"] < 0.5  # the growth learnt once for three series
    for name, r in ev.series.items():
        assert r.scores["lstm"]["mase"] < r.scores["persistence"]["mase"], name
        assert set(r.coverage) == {"0.8", "0.95"}


def test_deseasonalising_lets_one_network_serve_series_of_any_phase_and_level(one_blas_thread):
    series = {}
    for i, s in enumerate((1.0, 50.0, 3000.0)):
        y = s * _seasonal(90, level=10, seed=i, noise=0.03, trend=0.004)
        series[f"s{i}"] = TimeSeries(y[:, None], ["y"], None, f"s{i}", np.arange(90) + 2)
    panel = Panel(series, "synthetic", "id", None, "y")
    adjusted = _train(panel)
    assert all(i.indices is not None and i.indices.shape == (4,) for i in adjusted.info.values())
    owa_adjusted = evaluate_panel(adjusted, panel).aggregate()["lstm"]["owa"]
    owa_raw = evaluate_panel(_train(panel, deseasonalize=False), panel).aggregate()["lstm"]["owa"]
    assert owa_adjusted < 0.85 < 2 * owa_adjusted < owa_raw  # beats naive 2 only when adjusted


def test_a_seasonal_series_with_values_below_zero_is_adjusted_additively(one_blas_thread,
                                                                        tmp_path):
    series = {}  # temperature-like: a season of +-8 around levels from -3 to 4
    for i, (level, amp) in enumerate(((-3.0, 8.0), (0.5, 5.0), (4.0, 10.0))):
        rng = np.random.default_rng(i)
        t = np.arange(90)
        shape = np.sin(2 * np.pi * (t % 4 + 0.5 + i) / 4)
        y = level + 0.02 * t + amp * shape + 0.3 * rng.normal(size=90)
        series[f"s{i}"] = TimeSeries(y[:, None], ["y"], None, f"s{i}", t + 2)
    panel = Panel(series, "synthetic", "id", None, "y")
    adjusted = _train(panel)
    for info in adjusted.info.values():
        assert info.additive and info.indices.shape == (4,)
        assert abs(info.indices.mean()) < 1e-12
    owa_adjusted = evaluate_panel(adjusted, panel).aggregate()["lstm"]["owa"]
    owa_raw = evaluate_panel(_train(panel, deseasonalize=False), panel).aggregate()["lstm"]["owa"]
    assert owa_adjusted < 0.7 * owa_raw
    path = tmp_path / "m.ckpt"  # the kind of adjustment is kept with the model
    adjusted.save(path)
    again = GlobalForecaster.load(path)
    X, at = series["s0"].target[40:52][None], np.array([52])
    np.testing.assert_array_equal(again.predict("s0", X, at), adjusted.predict("s0", X, at))
    assert again.info["s0"].additive


def test_global_checkpoint_and_cli_train_then_predict(tmp_path, one_blas_thread, capsys):
    series = {f"s{i}": 10 * (i + 1) * _seasonal(70, seed=i, trend=0.003) for i in range(3)}
    p = write(tmp_path / "p.csv", _long_csv(series))
    out = tmp_path / "run"
    rc = main(["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
               "--lookback", "8", "--horizon", "4", "--season", "4", "--epochs", "5",
               "--hidden", "6", "--quiet", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "mean sMAPE" in text and "naive 2 (M4)" in text and "OWA" in text
    report = json.loads((out / "report.json").read_text())
    assert set(report["series"]) == {"s0", "s1", "s2"}
    assert report["aggregate"]["naive2"]["owa"] == pytest.approx(1.0)
    gf = GlobalForecaster.load(out / "model.ckpt")
    X = series["s1"][-8:][None]
    before = gf.predict("s1", X, np.array([70]))
    # predict: every series of the file, plus one the model never saw
    series["new"] = 5 * _seasonal(30, seed=9)
    write(tmp_path / "q.csv", _long_csv(series))
    rc = main(["forecast", "predict", str(out / "model.ckpt"), str(tmp_path / "q.csv"),
               "--horizon", "2", "--out", str(tmp_path / "next.csv")])
    assert rc == 0
    rows = (tmp_path / "next.csv").read_text().splitlines()
    assert rows[0] == "series,step,time,forecast,lo80,hi80,lo95,hi95"
    assert len(rows) == 1 + 4 * 2
    s1 = [r.split(",") for r in rows if r.startswith("s1,")]
    np.testing.assert_allclose([float(r[3]) for r in s1], before[0, :2], rtol=1e-5)
    assert all(float(r[4]) < float(r[3]) < float(r[5]) for r in s1)
    new = [[float(v) for v in r.split(",")[3:]] for r in rows if r.startswith("new,")]
    assert all(lo95 < lo80 < f < hi80 < hi95 for f, lo80, hi80, lo95, hi95 in new)
    err = capsys.readouterr().err
    assert "was not in training" in err and "no prediction intervals" not in err
    # a folder holds one series per file, whatever the model was trained on
    (tmp_path / "d").mkdir()
    write(tmp_path / "d" / "s1.csv", "t,y\n" + "".join(f"{i},{float(v)!r}\n"
                                                      for i, v in enumerate(series["s1"])))
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(tmp_path / "d"),
                 "--horizon", "2", "--out", str(tmp_path / "d.csv")]) == 0
    assert (tmp_path / "d.csv").read_text().splitlines()[1:] == [r for r in rows if
                                                                  r.startswith("s1,")]
    # a name with a comma and a quote stays one field of the printed CSV
    write(tmp_path / "q2.csv", 'id,t,y\n' + "".join(f'"s1, ""x""",{i},{float(v)!r}\n'
                                                     for i, v in enumerate(series["s1"])))
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(tmp_path / "q2.csv"),
                 "--horizon", "2"]) == 0
    got = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert [r[:2] for r in got[1:]] == [['s1, "x"', "1"], ['s1, "x"', "2"]]
    assert all(len(r) == len(got[0]) for r in got)
    # a model trained on a folder has no id column to read a long-format file with
    gf.save(tmp_path / "folder.ckpt", extra={"id": None, "time": "t", "value": "y"})
    capsys.readouterr()
    assert main(["forecast", "predict", str(tmp_path / "folder.ckpt"), str(p)]) != 0
    err = capsys.readouterr().err
    assert "trained on a folder of CSVs" in err and "--id" not in err
    for flag in (["--features", "x"], ["--anchor", "season"], ["--base", "snaive"]):
        assert main(["forecast", "train", str(p), "--id", "id", "--target", "y",
                     "--out", str(tmp_path / "r2"), *flag]) != 0
    assert main(["forecast", "train", "--id", "id", "--target", "y"]) != 0
    assert "--id needs a CSV" in capsys.readouterr().err


def test_global_hybrid_stands_on_each_series_ar_and_round_trips(tmp_path, one_blas_thread):
    panel = _panel()
    gf = _train(panel, epochs=5, transform="log", base="ar")
    L, K = gf.config.lookback, gf.config.horizon
    assert all(i.ar.shape == (L + 1, K) and i.mix in MIXES for i in gf.info.values())
    y = panel.series["s1"].target
    X, at = np.stack([y[:L], y[3:L + 3]]), np.array([L, L + 3])
    alone = gf.predict("s1", X, at, mix=0.0)
    for p in gf.net.params().values():  # weight 0: the series' AR alone, whatever the network
        p[...] = 0.5
    np.testing.assert_allclose(gf.predict("s1", X, at, mix=0.0), alone, rtol=1e-12)
    assert not np.allclose(gf.predict("s1", X, at, mix=1.0), alone)
    gf.save(tmp_path / "h.ckpt")
    back = GlobalForecaster.load(tmp_path / "h.ckpt")
    np.testing.assert_array_equal(back.predict("s1", X, at), gf.predict("s1", X, at))
    unseen = TimeSeries((2 * y)[:, None], ["y"], None, "new", np.arange(len(y)) + 2)
    pred, seen = back.forecast_next("new", unseen)
    assert not seen and pred.shape == (K,) and np.all(np.isfinite(pred))
    meta, arrays = load_checkpoint(tmp_path / "h.ckpt", expect_kind="global_forecaster")
    meta["series"]["s0"]["ar"] = None
    save_checkpoint(tmp_path / "broken.ckpt", meta, arrays)
    with pytest.raises(CheckpointError, match="series 's0': base 'ar' needs a linear AR"):
        GlobalForecaster.load(tmp_path / "broken.ckpt")


def test_quarter_labels_are_continued():
    assert future_labels(["2009-Q2", "2009-Q3"], 3) == ["2009-Q4", "2010-Q1", "2010-Q2"]


def test_cli_says_when_a_given_season_is_too_long_to_test_on_the_training_parts(
        tmp_path, one_blas_thread, capsys):
    # the same panel gives the same numbers with --season 40 as with none: no series'
    # training part (about 45 steps) holds the three seasons the test needs, which is said
    # (in the number of the series it concerns: '1 of 3 series has')
    series = {f"s{i}": 10 * (i + 1) * _seasonal(n, seed=i) for i, n in enumerate((70, 70, 200))}
    p = write(tmp_path / "p.csv", _long_csv(series))
    argv = ["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
            "--lookback", "8", "--horizon", "4", "--epochs", "2", "--hidden", "4", "--quiet"]
    assert main(argv + ["--season", "40", "--out", str(tmp_path / "long")]) == 0
    err = capsys.readouterr().err
    assert "--season 40: the seasonality test needs three seasons (120 steps)" in err
    assert "2 of 3 series have fewer ('s0', 's1', at most " in err
    series = {"s0": series["s0"], "s2": series["s2"]}
    p = write(tmp_path / "q.csv", _long_csv(series))
    argv[2] = str(p)
    assert main(argv + ["--season", "40", "--out", str(tmp_path / "one")]) == 0
    assert "1 of 2 series has fewer ('s0', at most " in capsys.readouterr().err
    assert main(argv + ["--season", "4", "--out", str(tmp_path / "four")]) == 0
    assert "seasonality test needs" not in capsys.readouterr().err


def test_cli_global_run_replacing_a_single_series_run_leaves_no_plot_of_it(tmp_path, capsys):
    single = tmp_path / "one.csv"
    single.write_text("t,y\n" + "".join(f"{i},{float(v)!r}\n"
                                        for i, v in enumerate(_seasonal(80))))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(single), "--target", "y", "--horizon", "4",
                 "--lookback", "8", "--hidden", "4", "--epochs", "1", "--quiet",
                 "--out", str(out)]) == 0
    assert (out / "forecast.png").exists()
    panel = tmp_path / "panel.csv"
    panel.write_text(_long_csv({"a": _seasonal(60, seed=1), "b": _seasonal(60, seed=2)}))
    assert main(["forecast", "train", str(panel), "--id", "id", "--time", "t", "--value", "y",
                 "--horizon", "4", "--lookback", "8", "--hidden", "4", "--epochs", "1",
                 "--quiet", "--out", str(out), "--force"]) == 0
    assert not (out / "forecast.png").exists()  # it showed the replaced model's forecasts
    capsys.readouterr()


def test_cli_a_folder_of_one_csv_says_how_to_get_a_plot(tmp_path, capsys):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "only.csv").write_text("t,y\n" + "".join(f"{i},{float(v)!r}\n"
                                                      for i, v in enumerate(_seasonal(60))))
    assert main(["forecast", "train", str(folder), "--time", "t", "--value", "y",
                 "--horizon", "4", "--lookback", "8", "--hidden", "4", "--epochs", "1",
                 "--quiet", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "many series" not in out
    assert "this folder holds one series: give its CSV file" in out


def test_global_predict_refuses_a_series_ending_in_rows_without_a_value(tmp_path):
    # the same for one series of a long-format CSV read to forecast from its end
    from lstmlab.forecast.data import SeriesError
    from lstmlab.forecast.panel import read_long

    p = tmp_path / "p.csv"
    p.write_text("id,t,y\nA,1,5\nA,2,6\nA,3,\nB,1,7\nB,2,8\n")
    assert read_long(p, "id", "y", "t", "ffill").series["A"].target.tolist() == [5, 6, 6]
    with pytest.raises(SeriesError, match=r"series 'A': the last row \(line 4\) has no value "
                                          r"of 'y'"):
        read_long(p, "id", "y", "t", "ffill", observed_end=True)


# -- the default: lookback and base chosen on validation ----------------------------------------

def test_validation_score_is_relative_to_the_naive_forecast(one_blas_thread, monkeypatch):
    panel = _panel()
    gf = _train(panel, epochs=1)

    weights = []

    def naive(name, X, origins, *a, mix=None):
        weights.append(mix)
        return np.repeat(X[:, -1:], gf.config.horizon, axis=1)

    monkeypatch.setattr(gf, "predict", naive)
    assert validation_score(gf, panel) == pytest.approx(1.0)
    # a hybrid is scored at the network's full weight, not at the weights picked on the
    # same windows
    assert weights == [1.0] * len(panel.series)

    def half_way(name, X, origins, *a, mix=None):  # half the naive error, every window
        s = panel.series[name].target
        truth = np.stack([s[o:o + gf.config.horizon] for o in origins])
        return (naive(name, X, origins) + truth) / 2

    monkeypatch.setattr(gf, "predict", half_way)
    assert validation_score(gf, panel) == pytest.approx(0.5)


def test_default_global_run_chooses_lookback_and_base_that_fit_every_series(tmp_path, capsys):
    # 40 steps: a training part of 26, so lookback 24 (with horizon 4) fits no series
    series = {f"s{i}": 10 * (i + 1) * _seasonal(40, seed=i, trend=0.01) for i in range(3)}
    p = write(tmp_path / "p.csv", _long_csv(series))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
                 "--horizon", "4", "--epochs", "2", "--hidden", "4", "--quiet",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    choice = json.loads((out / "report.json").read_text())["choice"]
    tried = [(c["lookback"], c["base"]) for c in choice["tried"]]
    assert sorted(tried) == [(6, "ar"), (6, "none"), (12, "ar"), (12, "none")]
    errors = [c["relative_mae"] for c in choice["tried"]]
    assert errors == sorted(errors) and choice["chose"] == ["lookback", "base"]
    gf = GlobalForecaster.load(out / "model.ckpt")
    assert (gf.config.lookback, gf.config.base) == tried[0]
    assert f"chose lookback {tried[0][0]}, base {tried[0][1]} from 4 candidates" in text
    # settings given are not tried against others; with both given, one model is trained
    assert main(["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
                 "--horizon", "4", "--epochs", "2", "--hidden", "4", "--quiet", "--lookback",
                 "6", "--out", str(out), "--force"]) == 0
    choice = json.loads((out / "report.json").read_text())["choice"]
    assert sorted((c["lookback"], c["base"]) for c in choice["tried"]) == [(6, "ar"), (6, "none")]
    assert choice["chose"] == ["base"]
    capsys.readouterr()
    assert main(["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
                 "--horizon", "4", "--epochs", "2", "--hidden", "4", "--quiet", "--lookback",
                 "6", "--base", "none", "--out", str(out), "--force"]) == 0
    assert "settings given: lookback 6, base none" in capsys.readouterr().out
    assert len(json.loads((out / "report.json").read_text())["choice"]["tried"]) == 1


def test_global_choice_with_a_stop_request_keeps_the_best_candidate_so_far(one_blas_thread):
    panel = _panel()
    calls = []
    gf, choice = train_global_default(
        panel, GlobalConfig(horizon=4, season=4), set(), np.random.default_rng(0),
        on_candidate=lambda i, n, cfg: calls.append((i, n, cfg.lookback, cfg.base)),
        should_stop=lambda: len(calls) >= 2, hidden_size=4,
        fit_config=FitConfig(epochs=2))
    assert calls == [(0, 6, 8, "none"), (1, 6, 8, "ar")]  # 2m, 3m, 4m with each base
    assert len(choice.tried) == 2 and gf.config == choice.config
    assert gf.config == choice.tried[0][0]


@pytest.mark.parametrize("val_fraction", [0.15, 0.0])
def test_global_candidates_are_the_configurations_trained(one_blas_thread, val_fraction):
    # without a validation part candidates() listed six configurations, of which one was
    # trained: the CLI checked the series against a list the search did not use
    panel = _panel()
    config = GlobalConfig(horizon=4, season=4, val_fraction=val_fraction)
    listed = candidates(panel, config, set())
    gf, choice = train_global_default(panel, config, set(), np.random.default_rng(0),
                                      hidden_size=4, fit_config=FitConfig(epochs=1))
    key = lambda c: (c.lookback, c.base)  # noqa: E731
    assert sorted((c for c, _ in choice.tried), key=key) == sorted(listed, key=key)
    assert len(listed) == (6 if val_fraction else 1)


def test_global_intervals_pool_every_series_validation_windows(one_blas_thread, tmp_path):
    panel = _panel()
    gf = _train(panel, epochs=3)
    widths = [i.intervals.to_json() for i in gf.info.values()]
    assert all(w == widths[0] for w in widths)  # one calibration set for the panel
    assert widths[0]["n"] == sum(len(i.split.origins("val", 12, 4)) for i in gf.info.values())
    # a window's interval follows that window's own roughness, in any series' units
    iv, X = gf.info["s0"].intervals, panel.series["s0"].target[:12][None, :, None]
    flat = gf.info["s0"].scale  # a flat window's scale: its series'
    lo, hi = iv.bounds(np.zeros((1, 4)), "0.8", X, flat)
    lo2, hi2 = iv.bounds(np.zeros((1, 4)), "0.8", 1000 * X, 1000 * flat)
    np.testing.assert_allclose(hi2, 1000 * hi, rtol=1e-9)
    assert np.all(hi > 0) and np.all(lo == -hi)
    with pytest.raises(ValueError, match="serve several series: pass the series' scale"):
        iv.bounds(np.zeros((1, 4)), "0.8", X)
    gf.save(tmp_path / "m.ckpt")
    loaded = GlobalForecaster.load(tmp_path / "m.ckpt").info["s0"].intervals
    np.testing.assert_array_equal(loaded.bounds(np.zeros((1, 4)), "0.95", X, flat)[1],
                                  iv.bounds(np.zeros((1, 4)), "0.95", X, flat)[1])


def _steps(n, seed, size=0.25, chance=0.06, level=2.0):
    """A series that moves in rare steps of ``size`` (a policy rate): most windows are flat."""
    rng = np.random.default_rng(seed)
    return level + size * np.cumsum(rng.random(n) < chance)


def test_intervals_of_a_series_that_moves_in_rare_steps_stay_near_the_step_size(
        one_blas_thread):
    # a flat calibration window followed by a step had its error divided by a scale near 0:
    # the 95 % interval of such a series was +-4e7 around a rate of 5
    series = {f"r{i}": TimeSeries(_steps(160, i)[:, None], ["y"], None, f"r{i}",
                                  np.arange(160) + 2) for i in range(3)}
    panel = Panel(series, "synthetic", "id", None, "y")
    gf = _train(panel, epochs=3, season=None)
    for name, info in gf.info.items():
        X = series[name].target[-12:][None, :, None]
        for window in (X, np.full_like(X, X[0, -1, 0])):  # as given, and flat
            lo, hi = info.intervals.bounds(np.zeros((1, 4)), "0.95", window, info.scale)
            assert np.all(hi - lo <= 20 * 0.25), (name, hi - lo)


def _tiny_train(tmp_path, panel: bool, out) -> list[str]:
    """The argv of a one-epoch forecast train into ``out`` on a panel of two series or on
    one series (a CSV written in ``tmp_path``)."""
    data = tmp_path / "d.csv"
    if panel:
        data.write_text(_long_csv({"a": _seasonal(60, seed=1), "b": _seasonal(60, seed=2)}))
        columns = ["--id", "id", "--time", "t", "--value", "y"]
    else:
        data.write_text("t,y\n" + "".join(f"{i},{float(v)!r}\n"
                                          for i, v in enumerate(_seasonal(80))))
        columns = ["--target", "y"]
    return ["forecast", "train", str(data), *columns, "--horizon", "4", "--lookback", "8",
            "--hidden", "4", "--epochs", "1", "--quiet", "--no-plot", "--out", str(out)]


@pytest.mark.parametrize("panel", [False, True], ids=["one series", "panel"])
def test_ctrl_c_while_the_model_is_scored_keeps_it_and_no_reports_of_another(tmp_path,
                                                                            monkeypatch,
                                                                            capsys, panel):
    # scoring (baselines, --ets per window and series) takes seconds to minutes after the
    # training; a Ctrl-C there lost the trained model, and over a run replaced with --force
    # left that run's model.ckpt beside the new metrics.jsonl
    from lstmlab.forecast import global_report, report
    from lstmlab.forecast.model import Forecaster

    out = tmp_path / "run"
    argv = _tiny_train(tmp_path, panel, out)
    assert main(argv + ["--seed", "1"]) == 0
    assert (out / "report.json").exists() and (out / "forecasts.csv").exists()
    replaced = (out / "model.ckpt").read_bytes()

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(global_report if panel else report,
                        "evaluate_panel" if panel else "evaluate", ctrl_c)
    capsys.readouterr()
    assert main(argv + ["--seed", "2", "--force"]) == 130
    assert capsys.readouterr().err.strip().endswith("interrupted")
    model = (GlobalForecaster if panel else Forecaster).load(out / "model.ckpt")
    assert model.meta["summary"]["epochs_run"] == 1
    assert (out / "model.ckpt").read_bytes() != replaced  # the new run's
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl", "model.ckpt"]


@pytest.mark.parametrize("panel", [False, True], ids=["one series", "panel"])
def test_force_stopped_at_once_leaves_no_model_of_the_replaced_run(tmp_path, monkeypatch,
                                                                   capsys, panel):
    # a double Ctrl-C in training over a run replaced with --force left that run's
    # model.ckpt and reports beside the new run's metrics.jsonl
    out = tmp_path / "run"
    argv = _tiny_train(tmp_path, panel, out)
    assert main(argv) == 0
    double_ctrl_c_after_each_epoch(monkeypatch)
    capsys.readouterr()
    assert main(argv + ["--force", "--seed", "2"]) == 130
    assert "--force: removed model.ckpt, forecasts.csv, report.json, metrics.jsonl from " \
        in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("panel", [False, True], ids=["one series", "panel"])
def test_files_of_the_users_own_in_out_are_kept_without_force(tmp_path, capsys, panel):
    # a report.json (or forecasts.csv, forecast.png) in --out without a model beside it
    # was overwritten without a word; classify train refuses the same
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.json").write_text('{"my": "notes"}')
    argv = _tiny_train(tmp_path, panel, out)
    assert main(argv) == 2
    assert (f"--out {out} already holds report.json, which this run writes; choose another "
            f"--out or pass --force") in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text() == '{"my": "notes"}'
    assert main(argv + ["--force"]) == 0
    assert "source" in json.loads((out / "report.json").read_text())


def test_predict_says_what_reading_the_panel_filled_or_sorted(tmp_path, one_blas_thread,
                                                              capsys):
    # forecast predict on a long-format file filled missing values (--missing interpolate)
    # without a word, where forecast train printed them
    panel = _panel(n=40)
    gf = _train(panel, epochs=1)
    gf.save(tmp_path / "m.ckpt", extra={"id": "id", "time": "t", "value": "y"})
    rows = [f"{name},{t},{'' if (name, t) == ('s1', 20) else repr(float(v))}"
            for name, s in panel.series.items() for t, v in enumerate(s.target)]
    rows[0], rows[1] = rows[1], rows[0]
    write(tmp_path / "p.csv", "id,t,y\n" + "\n".join(rows) + "\n")
    capsys.readouterr()
    assert main(["forecast", "predict", str(tmp_path / "m.ckpt"), str(tmp_path / "p.csv"),
                 "--missing", "interpolate"]) == 0
    err = capsys.readouterr().err
    assert ("the rows of series 's0' are not in time order (line 3: '0' after '1'): they are "
            "read sorted by 't'") in err
    assert "series 's1': column 'y': 1 missing value at line 62: interpolated" in err


def test_a_folder_of_many_files_prints_the_notes_of_ten_and_counts_the_rest(tmp_path, capsys):
    # every file of a folder exported newest first printed its own sort note: a folder of
    # 500 files printed 500 lines before training
    from lstmlab.forecast.global_cli import print_notes

    d = tmp_path / "d"
    d.mkdir()
    for i in range(13):
        write(d / f"f{i:02d}.csv", "t,y\n3,3.5\n2,2.5\n1,1.0\n")
    print_notes(read_panel(d, "y", time="t"))
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 11 and all(line.startswith("series 'f0") for line in err[:10])
    assert err[-1] == "... and 3 more series with notes of their own (not shown)"


def test_panel_table_keeps_its_columns_for_a_series_scored_in_its_own_units():
    # a series constant on its training part has its MASE in its own units (the MAE): at
    # 1.35e6 its cells printed as 1346152.500 and ran into each other
    from lstmlab.forecast.global_report import PanelEvaluation, SeriesResult, format_panel

    def result(mase):
        scores = {m: {"mase": mase, "smape": 10.0, "owa": 1.0} for m in ("lstm", "naive2")}
        return SeriesResult(np.arange(1), np.zeros((1, 2)), {}, scores, None, None, {})

    ev = PanelEvaluation({"calm": result(0.5), "jump": result(1346152.5)}, "lstm", "test")
    lines = format_panel(ev).splitlines()
    head, jump = lines[1], next(line for line in lines if line.startswith("jump"))
    assert len(jump) == len(head) and jump.split()[1:3] == ["1.35e+06", "1.35e+06"]


def test_panel_mean_mase_leaves_out_the_series_scored_in_their_own_units():
    # the MASE of a series constant on its training part is its MAE in its own units: a
    # jump to 7e6 made the panel's mean MASE 4.5e5 for every method
    from lstmlab.forecast.global_report import PanelEvaluation, SeriesResult, format_panel

    def result(mase, lag):
        scores = {m: {"mase": mase * (1 + (m == "naive2")), "smape": 10.0, "owa": 1.0}
                  for m in ("lstm", "naive2")}
        return SeriesResult(np.arange(1), np.zeros((1, 2)), {}, scores, None, lag, {})

    ev = PanelEvaluation({"a": result(0.5, 1), "b": result(0.7, 4), "jump": result(1e6, None)},
                         "lstm", "test")
    assert ev.aggregate()["lstm"]["mase"] == pytest.approx(0.6)
    assert ev.aggregate()["naive2"]["mase"] == pytest.approx(1.2)
    assert "the mean MASE leaves out jump, constant on the training part" in format_panel(ev)


@pytest.mark.parametrize("panel", [False, True], ids=["one series", "panel"])
def test_outputs_write_a_series_far_from_zero_to_its_changes(tmp_path, panel, capsys):
    # a series at 1e9 moving by units was written as 1e+09 in every row of forecasts.csv
    # and of forecast predict, truth, forecasts and interval bounds alike
    y = 1e9 + _seasonal(80, level=10.0)
    data = tmp_path / "d.csv"
    if panel:
        data.write_text(_long_csv({"a": y, "b": _seasonal(80, seed=2)}))
        columns = ["--id", "id", "--time", "t", "--value", "y"]
    else:
        data.write_text("t,y\n" + "".join(f"{i},{float(v)!r}\n" for i, v in enumerate(y)))
        columns = ["--target", "y"]
    out = tmp_path / "run"
    assert main(["forecast", "train", str(data), *columns, "--horizon", "4", "--lookback", "8",
                 "--base", "ar", "--hidden", "4", "--epochs", "1", "--quiet", "--no-plot",
                 "--out", str(out)]) == 0
    rows = [r for r in csv.DictReader((out / "forecasts.csv").read_text().splitlines())
            if r.get("series", "a") == "a"]
    truth = np.array([float(r["truth"]) for r in rows])
    t = np.array([int(r["target_time"]) for r in rows])
    np.testing.assert_allclose(truth - 1e9, y[t] - 1e9, atol=0.01)
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(data)]) == 0
    lines = [r for r in capsys.readouterr().out.splitlines()[1:] if not r.startswith("b,")]
    values = np.array([[float(v) for v in r.split(",")[-5:]] for r in lines]) - 1e9  # (K, 5)
    assert np.all(values[:, 1] < values[:, 0]) and np.all(values[:, 0] < values[:, 2])
    assert np.all(np.abs(values) < 100)


@pytest.mark.parametrize("panel", [False, True], ids=["one series", "panel"])
def test_no_part_to_score_on_is_refused_before_training(tmp_path, panel, capsys):
    # the run trained, wrote model.ckpt and then stopped: 'there is neither a test nor a
    # validation part ...' for one series, 'zero-size array to reduction operation
    # minimum which has no identity' for a panel
    out = tmp_path / "run"
    argv = _tiny_train(tmp_path, panel, out)
    assert main(argv + ["--val-fraction", "0", "--test-fraction", "0"]) == 2
    assert ("--val-fraction 0 and --test-fraction 0 leave no part of the series to score the "
            "model on") in capsys.readouterr().err
    assert not (out / "model.ckpt").exists()


def test_evaluate_panel_without_a_part_to_score_names_the_series(one_blas_thread):
    gf = _train(_panel(n=40), epochs=1, val_fraction=0.0, test_fraction=0.0)
    with pytest.raises(ValueError, match="series 's0' has neither a test nor a validation "
                                         "part to evaluate on"):
        evaluate_panel(gf, _panel(n=40))


def test_report_of_a_run_with_nothing_to_choose_is_strict_json(tmp_path, capsys):
    # lookback and base given: the one candidate's score was written as NaN, which
    # strict JSON readers (jq, a browser's JSON.parse) refuse
    out = tmp_path / "run"
    assert main(_tiny_train(tmp_path, True, out) + ["--base", "ar"]) == 0
    def refuse(token):
        raise ValueError(f"{token} in report.json")
    report = json.loads((out / "report.json").read_text(), parse_constant=refuse)
    assert report["choice"]["tried"] == [{"lookback": 8, "base": "ar", "relative_mae": None}]


@pytest.mark.parametrize("dates", [False, True], ids=["quarters", "ISO dates"])
def test_predict_keeps_the_seasonal_phase_of_a_file_that_starts_elsewhere(tmp_path, dates,
                                                                          capsys):
    # the phase was counted from the file's first row: the same series without its three
    # oldest rows was forecast a season out of phase (2020-Q1 at 104 instead of 235)
    def label(i):
        year = 2000 + i // 4
        return f"{year}-{3 * (i % 4) + 1:02d}-01" if dates else f"{year}-Q{i % 4 + 1}"

    def panel_csv(path, start):
        rows = ["id,t,y"] + [f"{n},{label(i)},{v:.4f}" for n, y in series.items()
                             for i, v in enumerate(y) if i >= start]
        return write(path, "\n".join(rows) + "\n")

    series = {f"s{i}": 100 * (i + 1) * _seasonal(60, seed=i, amplitude=0.4) for i in range(2)}
    full = panel_csv(tmp_path / "full.csv", 0)
    out = tmp_path / "run"
    assert main(["forecast", "train", str(full), "--id", "id", "--time", "t", "--value", "y",
                 "--lookback", "8", "--horizon", "4", "--season", "4", "--base", "none",
                 "--hidden", "4", "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(full)]) == 0
    expected = capsys.readouterr().out
    later = panel_csv(tmp_path / "later.csv", 3)
    rc = main(["forecast", "predict", str(out / "model.ckpt"), str(later)])
    if dates:  # labels that are not counted in steps need the first training row
        assert rc == 2
        assert ("series 's0' is seasonally adjusted in the phase of its first training row, "
                "time '2000-01-01', which the file given does not hold") in capsys.readouterr().err
    else:
        assert rc == 0 and capsys.readouterr().out == expected


def test_a_series_far_from_zero_is_not_taken_for_a_constant(tmp_path, capsys):
    # a series at 1e11 moving by units was said to be 'constant on their training part'
    # and forecast by its last value, its windows left out of training
    big = 1e11 + _seasonal(60, seed=3, level=1.0)  # changes of about 0.3
    p = write(tmp_path / "p.csv", _long_csv({"big": big, "small": _seasonal(60, seed=4)}))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
                 "--lookback", "8", "--horizon", "4", "--base", "none", "--hidden", "4",
                 "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    assert "constant" not in capsys.readouterr().out
    gf = GlobalForecaster.load(out / "model.ckpt")
    assert gf.info["big"].scale > 0


def test_a_window_with_a_missing_value_is_named_for_its_series(one_blas_thread):
    # GlobalForecaster.predict said 'x contains NaN or inf (first at index (3, 0, 0))'
    gf = _train(_panel(n=40), epochs=1)
    X = np.full((1, 12), 10.0)
    X[0, 3] = np.nan
    with pytest.raises(ValueError, match=r"series 's1': window 0 has a missing value \(NaN\) "
                                         r"at step 4 of 12; fill it"):
        gf.predict("s1", X, np.array([40]))


@pytest.mark.parametrize("horizon", [0, 2.5, "3"])
def test_global_forecast_next_names_a_horizon_that_is_not_a_positive_integer(
        one_blas_thread, horizon):
    panel = _panel(n=40)
    gf = _train(panel, epochs=1)
    with pytest.raises(ValueError, match="horizon must be a positive integer, got"):
        gf.forecast_next("s0", panel.series["s0"], horizon)


def test_predict_names_the_trained_id_a_new_one_only_respells(tmp_path, capsys):
    # ids '01', '02' come back from a spreadsheet as '1', '2': each was forecast as a series
    # never seen, its scale from the data given, with nothing to say why
    series = {"01": _seasonal(60, seed=1), "Store A": _seasonal(60, seed=2)}
    p = write(tmp_path / "p.csv", _long_csv(series))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
                 "--lookback", "8", "--horizon", "4", "--base", "none", "--hidden", "4",
                 "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    q = write(tmp_path / "q.csv", _long_csv({"1": series["01"], "store a": series["Store A"]}))
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(q)]) == 0
    err = capsys.readouterr().err
    assert "series '1' was not in training (the model has '01': write the id as" in err
    assert "series 'store a' was not in training (the model has 'Store A'" in err


def test_a_run_into_the_folder_of_csvs_it_reads_is_refused(tmp_path, capsys):
    # forecast train sales/ --out sales wrote forecasts.csv among the series, and the next
    # forecast predict on the folder stopped: "target column 'y' is not in
    # 'sales/forecasts.csv'"
    folder = tmp_path / "sales"
    folder.mkdir()
    for name, seed in (("a", 1), ("b", 2)):
        y = _seasonal(60, seed=seed)
        write(folder / f"{name}.csv", "y\n" + "".join(f"{float(v)!r}\n" for v in y))
    argv = ["forecast", "train", str(folder), "--value", "y", "--lookback", "8", "--horizon",
            "4", "--hidden", "4", "--epochs", "1", "--quiet"]
    assert main(argv + ["--out", str(folder)]) == 2
    assert "is the folder of CSVs this command reads" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "b.csv"]
    assert main(argv + ["--out", str(folder / "run")]) == 0


@pytest.mark.parametrize("flags, words", [
    (["--id", "units", "--value", "units"], "--id and --value (--target) both name the column 'units'"),
    (["--id", "units", "--target", "t", "--time", "t"],
     "--value (--target) and --time both name the column 't'"),
    (["--id", "t", "--value", "t", "--time", "t"],
     "--id, --value (--target) and --time all name the column 't'"),
])
def test_a_column_named_by_two_flags_is_refused_naming_the_flags_as_typed(tmp_path, capsys,
                                                                           flags, words):
    p = write(tmp_path / "p.csv", "units,t\n1,1\n2,2\n")
    assert main(["forecast", "train", str(p), *flags, "--out", str(tmp_path / "run")]) != 0
    assert words in capsys.readouterr().err


def test_ids_that_are_one_number_written_differently_are_named_in_a_note(tmp_path):
    # '1', '1.0' and '01' (one id through a spreadsheet and a script) were three series
    rows = "".join(f"{name},{t},{t + k}\n" for k, name in enumerate(["1", "1.0", "01", "2"])
                   for t in range(20))
    panel = read_long(write(tmp_path / "p.csv", "store,t,y\n" + rows), "store", "y", "t")
    assert panel.names() == ["1", "1.0", "01", "2"]  # kept apart: the file may mean them apart
    assert panel.notes == ["the id column 'store' holds ids that are one number written "
                           "differently ('1', '1.0', '01'): each is read as a series of its "
                           "own; write them alike if they name one series"]


def test_skip_short_leaves_out_series_too_short_naming_them_on_train_and_predict(tmp_path,
                                                                                 capsys):
    # one short series stopped the whole panel, with no way to forecast the others
    y = _seasonal(60)
    p = write(tmp_path / "p.csv", _long_csv({"long": y, "stub": y[:14], "other": y * 2}))
    out = tmp_path / "run"
    argv = ["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
            "--lookback", "8", "--horizon", "2", "--hidden", "4", "--epochs", "1", "--quiet",
            "--out", str(out)]
    assert main(argv) != 0  # by default the error, naming the way out
    err = capsys.readouterr().err
    assert "series 'stub': the training part has 9" in err and "--skip-short" in err
    assert main(argv + ["--skip-short"]) == 0
    err = capsys.readouterr().err
    assert ("--skip-short: left out 1 of 3 series too short for the model's windows: 'stub' "
            "(the training part has 9 of the series' 14 steps") in err
    report = json.loads((out / "report.json").read_text())
    assert "stub" not in json.dumps(report) and "other" in json.dumps(report)
    q = write(tmp_path / "q.csv", _long_csv({"long": y[:20], "stub": y[:5], "other": y[:20]}))
    predict = ["forecast", "predict", str(out / "model.ckpt"), str(q)]
    assert main(predict) != 0
    assert ("series 'stub': it has 5 steps, fewer than the model's lookback 8; pass "
            "--skip-short") in capsys.readouterr().err
    assert main(predict + ["--skip-short"]) == 0
    text, err = capsys.readouterr()
    assert "left out 1 of 3 series too short for the model's windows: 'stub'" in err
    assert {line.split(",")[0] for line in text.strip().splitlines()[1:]} == {"long", "other"}
    both = write(tmp_path / "b.csv", _long_csv({"stub": y[:5], "tiny": y[:3]}))
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(both), "--skip-short"]) != 0
    assert "every series of" in capsys.readouterr().err
    assert main(["forecast", "train", str(write(tmp_path / "one.csv", "y\n1\n2\n")), "--target",
                 "y", "--skip-short", "--out", str(tmp_path / "r1")]) == 2
    assert "--skip-short leaves out the series of a panel" in capsys.readouterr().err


@pytest.mark.parametrize("base", ["none", "ar"])
def test_predict_fits_a_series_not_in_training_once(tmp_path, capsys, monkeypatch, base):
    # forecast predict fitted the season, indices and scale of a series never seen twice:
    # once for its forecast and again for the scale of its intervals
    from lstmlab.forecast import global_model

    gf = _train(_panel(), epochs=1, base=base)
    gf.save(tmp_path / "m.ckpt", extra={"id": "id", "time": "t", "value": "y"})
    new = 7 * _seasonal(40, seed=5)
    p = write(tmp_path / "q.csv", _long_csv({"new": new}))
    expected, _ = gf.forecast_next("new", TimeSeries(new[:, None], ["y"], None, "new"))
    fits = []
    fit = global_model.fit_series_info
    monkeypatch.setattr(global_model, "fit_series_info", lambda *a: fits.append(1) or fit(*a))
    capsys.readouterr()
    assert main(["forecast", "predict", str(tmp_path / "m.ckpt"), str(p)]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    np.testing.assert_allclose([float(r["forecast"]) for r in rows], expected, rtol=1e-5)
    assert all(float(r["lo95"]) < float(r["forecast"]) < float(r["hi95"]) for r in rows)
    assert len(fits) == 1


def test_skip_short_leaves_out_a_new_series_too_short_for_its_own_linear_ar(tmp_path, capsys):
    # a hybrid panel model fits a linear AR of its own to a series it never saw; one with
    # fewer rows than lookback + horizon stopped forecast predict --skip-short with an error
    # that did not name the flag
    gf = _train(_panel(), epochs=1, base="ar")
    gf.save(tmp_path / "m.ckpt", extra={"id": "id", "time": "t", "value": "y"})
    y = _seasonal(40, seed=5)
    q = write(tmp_path / "q.csv", _long_csv({"new": y, "stub": y[:14]}))  # 12 <= 14 < 16
    predict = ["forecast", "predict", str(tmp_path / "m.ckpt"), str(q)]
    assert main(predict) != 0
    assert ("series 'stub': it was not in training and has 14 steps, fewer than lookback + "
            "horizon = 16, which its own linear AR needs; pass --skip-short") in \
        capsys.readouterr().err
    assert main(predict + ["--skip-short"]) == 0
    text, err = capsys.readouterr()
    assert "left out 1 of 2 series too short for the model's windows: 'stub'" in err
    assert {line.split(",")[0] for line in text.strip().splitlines()[1:]} == {"new"}


def test_a_series_that_repeats_its_season_exactly_is_not_called_constant_alone(tmp_path,
                                                                                 capsys):
    # 0, 1, 2, 3, 4, 0, 1, ... was named 'constant on its training part', which its values
    # do not show: it is constant once seasonally adjusted
    rng = np.random.default_rng(0)
    p = write(tmp_path / "p.csv", _long_csv({"cyc": np.arange(60) % 5,
                                             "walk": 10 + rng.normal(size=60).cumsum()}))
    argv = ["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
            "--lookback", "10", "--horizon", "3", "--base", "none", "--epochs", "1",
            "--hidden", "4", "--quiet", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    assert ("1 series constant on their training part (cyc: repeats its season of 5 exactly)"
            ) in capsys.readouterr().out
    q = write(tmp_path / "q.csv", _long_csv({"cyc": np.arange(60) % 5, "flat": np.ones(60)}))
    assert main(argv[:2] + [str(q)] + argv[3:-1] + [str(tmp_path / "run2")]) != 0
    assert ("every series is constant on its training part (cyc: repeats its season of 5 "
            "exactly; flat)") in capsys.readouterr().err


def test_predict_reads_a_panel_by_the_missing_value_rule_it_was_trained_with(tmp_path, capsys):
    # a model trained with --missing interpolate refused its own training file in predict
    series = {f"s{i}": _seasonal(24, seed=i) for i in range(2)}
    rows = _long_csv(series).splitlines()
    rows[5] = rows[5].rsplit(",", 1)[0] + ","  # s0 at t=4: missing
    p = write(tmp_path / "p.csv", "\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--id", "id", "--time", "t", "--value", "y",
                 "--missing", "interpolate", "--lookback", "4", "--horizon", "2", "--base",
                 "none", "--hidden", "4", "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(p)]) == 0
    assert "series 's0': column 'y': 1 missing value at line 6: interpolated" in (
        capsys.readouterr().err)


def _daily_panel(path, keep=lambda i: True):
    """A long-format CSV of two series with a weekly season, dated a day apart from
    2024-01-01: the rows ``i`` (0..69) where ``keep(i)``."""
    series = {f"s{i}": 100 * (i + 1) * _seasonal(70, m=7, seed=i, amplitude=0.4)
              for i in range(2)}
    day = np.datetime64("2024-01-01")
    rows = ["id,t,y"] + [f"{n},{day + i},{v:.4f}" for n, y in series.items()
                         for i, v in enumerate(y) if keep(i)]
    return write(path, "\n".join(rows) + "\n")


def _train_daily(data, out, *flags) -> str:
    """The checkpoint of a model trained on ``data`` (:func:`_daily_panel`) into ``out``."""
    assert main(["forecast", "train", str(data), "--id", "id", "--time", "t", "--value", "y",
                 "--lookback", "14", "--horizon", "7", "--base", "none", "--hidden", "4",
                 "--epochs", "1", "--quiet", "--out", str(out), *flags]) == 0
    return str(out / "model.ckpt")


def test_predict_counts_the_weekly_phase_of_daily_dates_in_days(tmp_path, capsys):
    # a series deseasonalised by the week found in its daily dates was refused from a file
    # starting three days later: its phase was counted from the row of the first training day
    full = _daily_panel(tmp_path / "full.csv")
    model = _train_daily(full, tmp_path / "run")
    capsys.readouterr()
    assert main(["forecast", "predict", model, str(full)]) == 0
    expected = capsys.readouterr().out
    later = _daily_panel(tmp_path / "later.csv", lambda i: i >= 3)
    assert main(["forecast", "predict", model, str(later)]) == 0
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize("folder", [False, True], ids=["long file", "folder"])
@pytest.mark.parametrize("missing,row", [("refuse", 2), ("ffill", 0)])
def test_predict_leaves_out_an_old_missing_value_in_the_seasonal_phase(tmp_path, capsys,
                                                                       folder, missing, row):
    # a value missing before the last lookback rows, which the model's --missing rule does
    # not fill, stopped forecast predict on a panel; one series accepts it
    series = {f"s{i}": 100 * (i + 1) * _seasonal(40, seed=i, amplitude=0.4) for i in range(2)}

    def data(name, gap):  # no --time: the phase is counted in rows from the file's first
        values = {n: ["NA" if gap and n == "s0" and i == row else f"{v:.4f}"
                      for i, v in enumerate(y)] for n, y in series.items()}
        if not folder:
            return write(tmp_path / f"{name}.csv", "id,y\n" + "".join(
                f"{n},{v}\n" for n, vs in values.items() for v in vs))
        (tmp_path / name).mkdir()
        for n, vs in values.items():
            write(tmp_path / name / f"{n}.csv", "y\n" + "".join(f"{v}\n" for v in vs))
        return tmp_path / name

    out = tmp_path / "run"
    full = data("full", False)
    assert main(["forecast", "train", str(full), *([] if folder else ["--id", "id"]), "--value",
                 "y", "--missing", missing, "--lookback", "8", "--horizon", "4", "--season", "4",
                 "--base", "none", "--hidden", "4", "--epochs", "1", "--quiet", "--out",
                 str(out)]) == 0
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(full)]) == 0
    expected = capsys.readouterr().out
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(data("gap", True))]) == 0
    printed = capsys.readouterr()
    assert printed.out == expected
    line = row + 2  # the header is line 1, s0 first
    assert (f"series 's0': line {line} has a missing value that --missing {missing} does not "
            f"fill") in printed.err


def test_predict_refuses_to_count_in_days_the_phase_of_training_dates_that_skip_days(
        tmp_path, capsys):
    # training dates that skip days (business days, 2024-01-01 a Monday) have their phase
    # counted in rows; a later file of dates a day apart was counted in days from the first
    # training date, out of phase by the days skipped
    full = _daily_panel(tmp_path / "full.csv", lambda i: i % 7 < 5)
    model = _train_daily(full, tmp_path / "run", "--season", "5")
    capsys.readouterr()
    assert main(["forecast", "predict", model, str(full)]) == 0
    later = _daily_panel(tmp_path / "later.csv", lambda i: i >= 21)
    assert main(["forecast", "predict", model, str(later)]) == 2
    assert ("series 's0' is seasonally adjusted in the phase of its first training row, time "
            "'2024-01-01', which the file given does not hold; its training dates skip days "
            "(first from '2024-01-05' to '2024-01-08' on line 7 of the training file), so its "
            "phase counts rows from that time, not days") in capsys.readouterr().err


def test_daily_dates_that_skip_a_day_are_refused_in_every_series_with_or_without_a_season(
        tmp_path, capsys):
    # without a season the windows across a skipped day read the days on either side as
    # neighbours, silently; with one, a season fitted row by row was out of phase past it
    data = _daily_panel(tmp_path / "skip.csv", lambda i: i != 10)
    folder = tmp_path / "folder"
    folder.mkdir()
    write(folder / "s0.csv", "t,y\n" + "".join(
        line[3:] + "\n" for line in data.read_text().splitlines() if line.startswith("s0,")))
    for where, extra in ((f"{str(data)!r}, series 's0'", ["--id", "id"]),
                         (str(folder / "s0.csv"), [])):
        csv_path = data if extra else folder
        args = ["forecast", "train", str(csv_path), *extra, "--time", "t", "--value", "y",
                "--lookback", "14", "--horizon", "7", "--base", "none", "--hidden", "4",
                "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")]
        for flags in (["--season", "1"], ["--season", "7"]):
            assert main(args + flags) == 2
            err = capsys.readouterr().err
            assert (f"{where}, line 12: the time column jumps from "
                    f"'2024-01-10' to '2024-01-12', where the other rows are one day apart (1 "
                    f"such jump); the model would read the rows on both sides as neighbours: "
                    f"add the missing dates as rows with an empty value and pass --missing "
                    f"interpolate (or ffill)") in err
            assert not (tmp_path / "run" / "model.ckpt").exists()
    filled = write(tmp_path / "filled.csv", data.read_text().replace(
        "s0,2024-01-12,", "s0,2024-01-11,\ns0,2024-01-12,").replace(
        "s1,2024-01-12,", "s1,2024-01-11,\ns1,2024-01-12,"))
    model = _train_daily(filled, tmp_path / "run", "--season", "1", "--missing", "interpolate")
    capsys.readouterr()  # a forecast reads the last 14 rows: a skip before them is no matter
    assert main(["forecast", "predict", model, str(data)]) == 0
    late = _daily_panel(tmp_path / "late.csv", lambda i: i != 65)  # in the last 14 rows
    assert main(["forecast", "predict", model, str(late)]) == 2
    assert (f"{str(late)!r}, series 's0', line 67: the time column jumps from '2024-03-05' to "
            f"'2024-03-07'") in capsys.readouterr().err
    # a new series adjusted by a season is fitted on all its rows, so all of them are checked
    seasonal = _train_daily(filled, tmp_path / "run7", "--season", "7", "--missing",
                            "interpolate")
    new = write(tmp_path / "new.csv", data.read_text().replace("s0,", "new,"))
    assert main(["forecast", "predict", seasonal, str(new)]) == 2
    assert ("series 'new' is seasonally adjusted by indices fitted on all its rows, so all of "
            "them are checked: line 12: the time column jumps from '2024-01-10' to "
            "'2024-01-12'") in capsys.readouterr().err

def test_predict_counts_the_phase_of_daily_dates_in_days_past_a_row_left_out(tmp_path,
                                                                            capsys):
    # a file holding the first training date but not 2024-01-31 was counted in rows from
    # that date, and its forecast adjusted a day out of phase
    model = _train_daily(_daily_panel(tmp_path / "full.csv"), tmp_path / "run", "--season",
                         "7")
    def forecasts(data):  # the forecast columns, without the times labelled
        capsys.readouterr()
        assert main(["forecast", "predict", model, str(data)]) == 0
        return [{k: v for k, v in r.items() if k != "time"}
                for r in csv.DictReader(capsys.readouterr().out.splitlines())]

    expected = forecasts(tmp_path / "full.csv")
    assert forecasts(_daily_panel(tmp_path / "gap.csv", lambda i: i != 30)) == expected
    late = _daily_panel(tmp_path / "late.csv", lambda i: i != 65)  # in the last 14 rows
    assert main(["forecast", "predict", model, str(late)]) == 2
    assert ("series 's0', line 67: the time column jumps from '2024-03-05' to '2024-03-07'"
            in capsys.readouterr().err)


def test_predict_refuses_rows_left_out_or_added_between_the_training_rows(tmp_path, capsys):
    # business days are counted in rows from the first training date: a file holding it
    # without one of the training rows, or with one more, was forecast out of phase
    weekdays = lambda i: i % 7 < 5  # noqa: E731
    model = _train_daily(_daily_panel(tmp_path / "full.csv", weekdays), tmp_path / "run",
                         "--season", "5")
    capsys.readouterr()
    for name, keep in (("dropped", lambda i: weekdays(i) and i != 30),
                       ("added", lambda i: weekdays(i) or i == 33)):  # a Saturday
        data = _daily_panel(tmp_path / f"{name}.csv", keep)
        assert main(["forecast", "predict", model, str(data)]) == 2
        assert ("series 's0' is seasonally adjusted in the phase of its rows counted from its "
                "first training row, time '2024-01-01'; the file given holds "
                f"{49 if name == 'dropped' else 51} rows from it to '2024-03-08', where the "
                "training file held 50") in capsys.readouterr().err
    meta, arrays = load_checkpoint(model)  # saved before the gap and last time were kept
    for info in meta["series"].values():
        del info["last"], info["gap"]
    save_checkpoint(tmp_path / "old.ckpt", meta, arrays)
    outputs = []
    for ckpt in (model, str(tmp_path / "old.ckpt")):
        assert main(["forecast", "predict", ckpt, str(tmp_path / "full.csv")]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
