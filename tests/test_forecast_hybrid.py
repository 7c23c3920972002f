"""The hybrid forecaster, the settings chosen on validation, and the ETS baseline."""

import json

import numpy as np
import pytest
from seq_helpers import one_blas_thread, write  # noqa: F401

from lstmlab.cli import main
from lstmlab.forecast import ets
from lstmlab.forecast.baselines import LinearAR, mae, ridge_gcv
from lstmlab.forecast.data import TimeSeries
from lstmlab.forecast.intervals import Intervals
from lstmlab.forecast.model import MIXES, ForecastConfig, Forecaster
from lstmlab.forecast.report import evaluate
from lstmlab.forecast.select import choose_settings
from lstmlab.forecast.windows import make_windows
from lstmlab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lstmlab.training.supervised import FitConfig


def _series(y):
    y = np.asarray(y, np.float64)
    return TimeSeries(y[:, None], ["y"], None, "test", np.arange(len(y)) + 2)


def _growth(n=180, seed=0):
    """Multiplicative season on exponential growth, like the airline series."""
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 100 * np.exp(0.01 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) * np.exp(
        0.02 * rng.normal(size=n))


def test_ridge_gcv_keeps_a_real_autoregression_and_shrinks_noise():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3, 1))  # 2000 windows, 3 informative inputs
    Y = X[:, :, 0] @ np.array([[0.5], [-0.3], [0.6]]) + 1.0 + 0.1 * rng.normal(size=(2000, 1))
    ar, lam = ridge_gcv(X, Y)
    assert lam <= 1e-3
    np.testing.assert_allclose(ar.coef[:, 0], [0.5, -0.3, 0.6, 1.0], atol=0.02)
    x = rng.normal(size=(40, 30, 1))  # 30 inputs unrelated to the 2 targets, 40 windows
    t = rng.normal(size=(40, 2))
    ar, lam = ridge_gcv(x, t)
    assert lam >= 1.0  # a strong penalty
    ols = LinearAR(ridge=0).fit(x, t)
    assert np.linalg.norm(ar.coef[:-1]) < 0.3 * np.linalg.norm(ols.coef[:-1])  # shrunk to the mean


def _fit(s, **kw):
    cfg = ForecastConfig(**{"lookback": 24, "horizon": 6, "base": "ar", **kw})
    return Forecaster.train(s, cfg, np.random.default_rng(1), hidden_size=8, dtype="float64",
                            fit_config=FitConfig(epochs=15, lr=1e-2, patience=10))


def test_hybrid_with_weight_zero_is_its_linear_ar_and_the_weight_is_the_validation_best(tmp_path):
    s = _series(_growth())
    fc = _fit(s, transform="log", anchor="season")
    errors = fc.meta["mix_val_mae"]
    assert set(errors) == {str(w) for w in MIXES}
    alone, best = errors["0.0"], min(errors.values())
    chosen = errors[str(fc.hybrid.mix)]
    assert chosen <= alone and alone - chosen >= (alone - best) / 2  # never worse than the AR
    assert all(alone - errors[str(w)] < (alone - best) / 2 for w in MIXES if w < fc.hybrid.mix)
    L, K = 24, 6
    Xv, Yv = make_windows(s.values, L, K, fc.split.origins("val", L, K))
    assert mae(Yv, fc.predict_windows(Xv)) == pytest.approx(errors[str(fc.hybrid.mix)])
    fc.hybrid.mix = 0.0
    ev = evaluate(fc, s)
    np.testing.assert_allclose(ev.preds["lstm"], ev.preds["linear_ar_t"], rtol=1e-10)
    fc.hybrid.mix = 0.5
    fc.save(tmp_path / "h.ckpt")
    back = Forecaster.load(tmp_path / "h.ckpt")
    assert back.config.base == "ar" and back.hybrid.mix == 0.5
    X, _ = make_windows(s.values, L, K, fc.split.origins("test", L, K))
    np.testing.assert_array_equal(back.predict_windows(X), fc.predict_windows(X))


def test_hybrid_checkpoint_without_its_linear_part_is_refused(tmp_path):
    fc = _fit(_series(_growth(120)), transform="log", anchor="last")
    fc.save(tmp_path / "h.ckpt")
    meta, arrays = load_checkpoint(tmp_path / "h.ckpt", expect_kind="forecaster")
    for key, value, says in [("hybrid", None, "base 'ar' without"),
                             ("hybrid", {**meta["hybrid"], "res_std": [1.0]}, "6 outputs"),
                             ("intervals", {**meta["intervals"], "width": {"0.8": [1.0]}},
                              "6 per level"),
                             ("intervals", {**meta["intervals"], "width": [1]}, "")]:
        save_checkpoint(tmp_path / "broken.ckpt", {**meta, key: value}, arrays)
        with pytest.raises(CheckpointError, match=f"broken description: .*{says}"):
            Forecaster.load(tmp_path / "broken.ckpt")


def test_choice_finds_log_on_multiplicative_growth_and_tries_the_season():
    s = _series(_growth(200))
    c = choose_settings(s, ForecastConfig(horizon=6, base="ar"), set())
    assert c.season == 12
    assert c.config.transform == "log" and c.config.lookback in (24, 36, 48)
    assert {cfg.anchor for cfg, _ in c.tried} == {"none", "last", "season"}
    errs = [e for _, e in c.tried]
    assert errs == sorted(errs) and len(c.tried) > 4
    assert c.explain().startswith("chose lookback")


def test_choice_keeps_what_the_user_gives_and_never_logs_a_non_positive_series():
    y = _growth(200)
    y[5] = -1.0
    s = _series(y)
    c = choose_settings(s, ForecastConfig(horizon=6, lookback=30), {"lookback"})
    assert c.config.lookback == 30 and all(cfg.lookback == 30 for cfg, _ in c.tried)
    assert all(cfg.transform == "none" for cfg, _ in c.tried)
    given = ForecastConfig(horizon=6, lookback=13, transform="none", anchor="last")
    c = choose_settings(s, given, {"lookback", "transform", "anchor", "base"})
    assert c.config == given and c.tried == [] and c.explain().startswith("settings given")
    c = choose_settings(s, ForecastConfig(horizon=6, val_fraction=0.0), set())
    assert c.tried == [] and c.config.lookback == 24
    # it said 'no candidate setting fits this series', as if the series were too short
    assert c.explain().startswith("no validation part (--val-fraction 0) to choose settings "
                                  "on; using lookback 24")


def test_choice_scores_rolling_origins_before_the_test_part_and_offers_the_trivial_bases():
    y = _growth(200)
    c = choose_settings(_series(y), ForecastConfig(horizon=6), set())
    assert c.folds == 3 and c.to_json()["folds"] == 3
    scores = {cfg.base: e for cfg, e in c.tried if cfg.base != "ar"}
    assert scores["naive"] == 1.0 and 0 < scores["snaive"] < 1  # relative to the naive MAE
    snaive = next(cfg for cfg, _ in c.tried if cfg.base == "snaive")
    assert snaive.lookback >= 12
    y2 = y.copy()
    y2[-40:] *= 3.0  # the test part (the last 20 %) changes; nothing chosen may move
    c2 = choose_settings(_series(y2), ForecastConfig(horizon=6), set())
    assert c2.tried == c.tried
    y3 = y.copy()
    y3[70:100] *= 1.5  # inside the earlier folds only: their scores move
    assert choose_settings(_series(y3), ForecastConfig(horizon=6), set()).tried != c.tried
    fixed = choose_settings(_series(y), ForecastConfig(horizon=6, base="ar"), {"base"})
    assert {cfg.base for cfg, _ in fixed.tried} == {"ar"}


@pytest.mark.parametrize("base", ["naive", "snaive"])
def test_hybrid_on_a_trivial_base_with_weight_zero_is_that_forecast(tmp_path, base):
    s = _series(_growth(150))
    fc = _fit(s, transform="log", anchor="last", base=base)
    calibration = fc.split.origins("train", 24, 6).size + fc.split.origins("val", 24, 6).size
    assert fc.intervals.n == calibration  # the base's training errors are out of sample
    fc.hybrid.mix = 0.0
    ev = evaluate(fc, s)
    other = "persistence" if base == "naive" else "seasonal_naive"
    np.testing.assert_allclose(ev.preds["lstm"], ev.preds[other], rtol=1e-10)
    fc.hybrid.mix = 0.75
    fc.save(tmp_path / "h.ckpt")
    back = Forecaster.load(tmp_path / "h.ckpt")
    assert back.hybrid.kind == base and back.config.base == base
    X, _ = make_windows(s.values, 24, 6, fc.split.origins("test", 24, 6))
    np.testing.assert_array_equal(back.predict_windows(X), fc.predict_windows(X))
    meta, arrays = load_checkpoint(tmp_path / "h.ckpt", expect_kind="forecaster")
    for hybrid, says in [({**meta["hybrid"], "kind": "theta"}, "unknown base 'theta'"),
                         ({**meta["hybrid"], "coef": [[1.0]]}, "with coefficients")]:
        save_checkpoint(tmp_path / "broken.ckpt", {**meta, "hybrid": hybrid}, arrays)
        with pytest.raises(CheckpointError, match=f"broken description: .*{says}"):
            Forecaster.load(tmp_path / "broken.ckpt")


def test_cli_seasonal_naive_base_without_a_season_is_a_clear_error(tmp_path, capsys):
    y = 50 + np.cumsum(np.random.default_rng(0).normal(size=120))  # a random walk: no season
    rows = ["t,y"] + [f"{i},{v:.4f}" for i, v in enumerate(y)]
    path = write(tmp_path / "trend.csv", "\n".join(rows) + "\n")
    rc = main(["forecast", "train", str(path), "--target", "y", "--horizon", "4", "--base",
               "snaive", "--epochs", "1", "--quiet", "--no-plot", "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "--base snaive needs a season" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before anything is written


def test_choice_on_a_short_series_falls_back_to_short_lookbacks():
    s = _series(_growth(60))  # season 12, but 2m = 24 leaves 13 training windows for 13 weights
    c = choose_settings(s, ForecastConfig(horizon=3, season=12, base="ar"), set())
    assert c.tried and c.config.lookback in (6, 12)


def test_season_1_gets_the_candidates_of_a_series_without_a_season():
    # --season 1 ("no season") narrowed the lookbacks tried to 2, 3 and 4, and added a
    # season anchor and a seasonal naive base that are the naive ones again
    from lstmlab.forecast.global_select import candidates
    from lstmlab.forecast.global_model import GlobalConfig
    from lstmlab.forecast.panel import Panel

    s = _series(100 + np.cumsum(np.random.default_rng(3).normal(size=300)))

    def tried(season):
        c = choose_settings(s, ForecastConfig(horizon=3, season=season, base="ar"), set())
        return [(cfg.lookback, cfg.transform, cfg.anchor, cfg.base, e) for cfg, e in c.tried]

    none = tried(None)
    assert {t[0] for t in none} == {6, 12, 24}
    assert tried(1) == none
    panel = Panel({"a": s}, "synthetic", "id", None, "y")
    looks = {c.lookback for c in candidates(panel, GlobalConfig(horizon=3, season=1), set())}
    assert looks == {c.lookback for c in candidates(panel, GlobalConfig(horizon=3), set())}


def test_a_series_too_short_for_every_candidate_gets_a_lookback_that_fits(tmp_path, capsys):
    # the default lookback 24 was kept for a 10-step series: "shorter than lookback +
    # horizon = 24 + 1 = 25 ... lower --lookback", a flag the user had not given
    p = write(tmp_path / "t.csv", "y\n" + "".join(f"{v}\n" for v in range(1, 11)))
    assert main(["forecast", "train", str(p), "--target", "y", "--horizon", "1", "--epochs",
                 "1", "--quiet", "--no-plot", "--out", str(tmp_path / "run")]) == 0
    assert "using lookback 5," in capsys.readouterr().err
    assert main(["forecast", "train", str(p), "--target", "y", "--horizon", "1", "--lookback",
                 "24", "--quiet", "--no-plot", "--out", str(tmp_path / "given")]) == 2
    assert "lookback + horizon = 24 + 1" in capsys.readouterr().err  # given: kept, refused

def test_ets_beats_naive_on_a_seasonal_series_and_reports_its_variant():
    y = _growth(144)
    e = ets.ETSBaseline.fit(y[:100], log=True, trend=False, season=12)
    origins = np.arange(121, 139)
    truth = y[origins[:, None] + np.arange(6)]
    pred = e.forecast(y, origins, 6)
    naive = np.repeat(y[origins - 1][:, None], 6, axis=1)
    assert pred.shape == (18, 6)
    assert mae(truth, pred) < 0.5 * mae(truth, naive)
    assert e.describe() == "ETS(log, no trend, season 12)"


def test_ets_variant_is_picked_on_validation():
    t = np.arange(80)
    y = 50 + 0.8 * t + np.random.default_rng(0).normal(size=80)  # a clean trend, no season
    e = ets.fit_ets(y, 50, np.arange(50, 60), 4, None)
    assert e.trend and e.season is None


def test_ets_of_an_all_zero_series_is_its_last_value(tmp_path, capsys):
    # statsmodels' fit of an all-zero training part fails, and 'forecast train zero.csv
    # --ets' stopped with its message: "The first guess on the deviance function returned
    # a nan. This could be a boundary problem and should be reported."
    y = np.r_[np.zeros(50), np.arange(1.0, 11.0)]
    e = ets.fit_ets(y, 40, np.arange(40, 47), 4, None)
    np.testing.assert_array_equal(e.forecast(y, np.array([45, 55]), 2), [[0, 0], [5, 5]])
    assert e.describe() == "ETS(constant: the last value)"
    p = write(tmp_path / "z.csv", "t,y\n" + "".join(f"{i},0\n" for i in range(60)))
    assert main(["forecast", "train", str(p), "--target", "y", "--horizon", "4", "--ets",
                 "--epochs", "1", "--quiet", "--no-plot", "--out", str(tmp_path / "run")]) == 0
    assert "ETS(constant: the last value)" in capsys.readouterr().out

def _csv(tmp_path, n=150):
    y = _growth(n)
    rows = ["date,units"] + [f"{2000 + i // 12}-{i % 12 + 1:02d},{v:.4f}" for i, v in enumerate(y)]
    return write(tmp_path / "sales.csv", "\n".join(rows) + "\n")


def test_cli_with_no_flags_chooses_on_validation_and_says_why(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["forecast", "train", str(_csv(tmp_path)), "--target", "units", "--time", "date",
               "--horizon", "6", "--hidden", "4", "--epochs", "3", "--quiet", "--no-plot",
               "--ets", "--out", str(out)])
    assert rc == 0
    cap = capsys.readouterr()
    assert "chose lookback" in cap.err and "relative MAE" in cap.err
    assert "hybrid: " in cap.err
    assert "ETS(" in cap.out  # statsmodels is in the test set
    report = json.loads((out / "report.json").read_text())
    assert report["choice"]["chose"] == ["lookback", "transform", "anchor", "base"]
    best = report["choice"]["tried"][0]
    assert [report["config"][k] for k in ("lookback", "base")] == [best["lookback"], best["base"]]
    assert "ets" in report["scores"]
    assert "80% interval covers" in cap.out and set(report["coverage"]) == {"0.8", "0.95"}
    head = (out / "forecasts.csv").read_text().splitlines()[0].split(",")
    assert head[-4:] == ["lstm_lo80", "lstm_hi80", "lstm_lo95", "lstm_hi95"]


def test_cli_flags_override_the_choice(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["forecast", "train", str(_csv(tmp_path)), "--target", "units", "--horizon", "6",
               "--lookback", "13", "--transform", "none", "--anchor", "last", "--base", "none",
               "--hidden", "4", "--epochs", "2", "--quiet", "--no-plot",
               "--out", str(out)])
    assert rc == 0
    cap = capsys.readouterr()
    assert "settings given" in cap.err and "hybrid" not in cap.err and "ETS" not in cap.out
    cfg = json.loads((out / "report.json").read_text())["config"]
    assert (cfg["lookback"], cfg["transform"], cfg["anchor"], cfg["base"]) == (13, "none", "last",
                                                                              "none")


def test_conformal_intervals_cover_at_their_level_on_exchangeable_errors():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(2000, 3)) * np.array([1.0, 2.0, 4.0])  # wider further ahead
    iv = Intervals.fit(truth, np.zeros_like(truth), log=False)
    assert iv.width["0.8"][0] < iv.width["0.8"][2] and np.all(iv.width["0.8"] < iv.width["0.95"])
    fresh = rng.normal(size=(4000, 3)) * np.array([1.0, 2.0, 4.0])
    cov = iv.coverage(fresh, np.zeros_like(fresh))
    assert abs(cov["0.8"] - 0.8) < 0.03 and abs(cov["0.95"] - 0.95) < 0.02
    few = Intervals.fit(truth[:5], np.zeros((5, 3)), log=False)  # too few for 95 %: the max
    np.testing.assert_array_equal(few.width["0.95"], np.abs(truth[:5]).max(axis=0))
    lo, hi = Intervals.fit(np.full((9, 1), 110.0), np.full((9, 1), 100.0), log=True).bounds(
        np.array([[200.0]]), "0.8")
    np.testing.assert_allclose([lo[0, 0], hi[0, 0]], [200 / 1.1, 200 * 1.1])  # ratios in log


@pytest.mark.parametrize("n", [1, 8, 9, 10, 19, 38, 39, 40, 100, 1001])
def test_conformal_width_is_the_rank_the_guarantee_needs(n):
    """The half-width at level a is the ⌈(n+1)·a⌉-th smallest of n errors (the largest when
    that rank exceeds n), whatever order the errors come in."""
    errors = np.random.default_rng(n).permutation(np.arange(1.0, n + 1))[:, None]
    width = Intervals.fit(errors, np.zeros_like(errors), log=False).width
    for level, key in ((0.8, "0.8"), (0.95, "0.95")):
        rank = min(n, -(-(n + 1) * round(level * 100) // 100))  # exact integer ceiling
        assert width[key][0] == rank


def test_local_scale_interval_of_a_flat_window_does_not_depend_on_its_batch():
    # a series constant but for one step: the flat windows got a scale a billionth of their
    # batch's roughest, so the intervals of a batch of flat test windows had width ~0 and
    # covered 0 % of the truth, while the same window beside a rough one had a real width
    flat = np.full((1, 6, 1), 5.0)
    bump = flat.copy()
    bump[0, 3, 0] = 6.0
    X = np.concatenate([np.repeat(flat, 9, axis=0), bump])  # (10, 6, 1)
    err = np.full((10, 1), 0.015)
    iv = Intervals.fit(err, np.zeros_like(err), log=False, windows=X)
    alone = iv.bounds(np.zeros((1, 1)), "0.8", flat)
    beside = iv.bounds(np.zeros((2, 1)), "0.8", np.concatenate([flat, bump]))
    assert alone[1][0, 0] == pytest.approx(0.015)
    assert beside[1][0, 0] == pytest.approx(0.015)
    back = Intervals.from_json(iv.to_json())
    assert back.bounds(np.zeros((1, 1)), "0.8", flat)[1][0, 0] == pytest.approx(0.015)


def test_local_scale_intervals_of_mostly_flat_windows_stay_near_the_size_of_a_step():
    # most windows of a series that moves in rare steps are flat; the few followed by a step
    # had their error divided by a near-zero scale, which swamped the quantiles (+-4e7 at 95 %)
    rng = np.random.default_rng(0)
    y = 5.0 + 0.25 * np.cumsum(rng.random(800) < 0.05)
    L, K = 6, 3
    X = np.stack([y[i:i + L] for i in range(len(y) - L - K)])[:, :, None]
    Y = np.stack([y[i + L:i + L + K] for i in range(len(y) - L - K)])
    pred = np.repeat(X[:, -1:, 0], K, axis=1)  # the naive forecast
    assert np.mean(np.ptp(X[:, :, 0], axis=1) == 0) > 0.6  # mostly flat windows
    iv = Intervals.fit(Y[:400], pred[:400], log=False, windows=X[:400])
    for level in ("0.8", "0.95"):
        lo, hi = iv.bounds(pred[400:], level, X[400:])
        assert np.max(hi - lo) <= 20 * 0.25
        assert np.mean((Y[400:] >= lo) & (Y[400:] <= hi)) >= float(level) - 0.05
    lo, hi = iv.bounds(pred[:1], "0.95", np.full((1, L, 1), 7.0))  # flat, at another level
    assert np.all(hi - lo <= 20 * 0.25)
    back = Intervals.from_json(iv.to_json())
    np.testing.assert_array_equal(back.bounds(pred, "0.95", X)[1], iv.bounds(pred, "0.95", X)[1])


def test_local_scale_intervals_widen_after_rough_windows_and_narrow_after_calm_ones():
    rng = np.random.default_rng(0)

    def draw(n):  # windows whose roughness sigma is also the spread of their errors
        sigma = np.exp(rng.uniform(-2, 2, size=n))  # (n,)
        X = 100 + np.cumsum(rng.normal(size=(n, 12)) * sigma[:, None], axis=1)[:, :, None]
        err = rng.normal(size=(n, 2)) * sigma[:, None]  # (n, K=2)
        return X, err, sigma

    X, err, _ = draw(3000)
    local = Intervals.fit(err, np.zeros_like(err), log=False, windows=X)
    fixed = Intervals.fit(err, np.zeros_like(err), log=False)
    X2, err2, sigma = draw(6000)
    rough, calm = sigma > np.exp(1), sigma < np.exp(-1)
    lo, hi = local.bounds(np.zeros_like(err2), "0.8", X2)
    inside = (err2 >= lo) & (err2 <= hi)
    assert abs(inside[rough].mean() - 0.8) < 0.05 and abs(inside[calm].mean() - 0.8) < 0.05
    lo, hi = fixed.bounds(np.zeros_like(err2), "0.8")
    inside = (err2 >= lo) & (err2 <= hi)
    assert inside[rough].mean() < 0.6 and inside[calm].mean() > 0.97
    assert Intervals.from_json(local.to_json()).local
    with pytest.raises(ValueError, match="need the input windows"):
        local.bounds(np.zeros((1, 2)), "0.8")


def test_forecaster_intervals_round_trip_and_reach_the_report(tmp_path, capsys):
    s = _series(_growth(150))
    fc = _fit(s, transform="log", anchor="last")
    calibration = fc.split.origins("train", 24, 6).size + fc.split.origins("val", 24, 6).size
    assert fc.intervals is not None and fc.intervals.n == calibration  # + the AR's leave-one-out
    assert fc.intervals.local
    fc.save(tmp_path / "m.ckpt")
    back = Forecaster.load(tmp_path / "m.ckpt")
    assert back.intervals.to_json() == fc.intervals.to_json()
    ev = evaluate(back, s)
    assert set(ev.coverage) == {"0.8", "0.95"} and all(0 <= c <= 1 for c in ev.coverage.values())
    lo, hi = ev.bounds["0.95"]
    assert np.all(lo <= ev.preds["lstm"]) and np.all(ev.preds["lstm"] <= hi)


def test_cli_ets_without_statsmodels_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ets, "available", lambda: False)
    out = tmp_path / "run"
    rc = main(["forecast", "train", str(_csv(tmp_path)), "--target", "units", "--ets",
               "--epochs", "1", "--quiet", "--no-plot", "--out", str(out)])
    assert rc == 2
    assert "--ets needs statsmodels" in capsys.readouterr().err
    assert not (out / "model.ckpt").exists()


def test_ctrl_c_during_the_backtest_stops_the_command(tmp_path, monkeypatch, capsys):
    # Ctrl-C while a fold's network trained stopped that network only: the backtest scored
    # it as a finished one, trained the remaining folds and exited 0, the Ctrl-C lost
    import signal

    from lstmlab.forecast import backtest

    real = backtest.train_default

    def ctrl_c_in_training(*args, **network):
        return real(*args, on_epoch=lambda record: signal.raise_signal(signal.SIGINT),
                    **network)

    monkeypatch.setattr(backtest, "train_default", ctrl_c_in_training)
    out = tmp_path / "run"
    assert main(["forecast", "train", str(_csv(tmp_path, 160)), "--target", "units",
                 "--horizon", "6", "--hidden", "4", "--epochs", "2", "--quiet", "--no-plot",
                 "--backtest", "3", "--out", str(out)]) == 130
    text, err = capsys.readouterr()
    assert "backtest over" not in text and err.strip().endswith("interrupted")
    assert "backtest" not in json.loads((out / "report.json").read_text())
    assert Forecaster.load(out / "model.ckpt").meta["summary"]["status"] == "finished"


def test_cli_backtest_reruns_everything_at_earlier_origins(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["forecast", "train", str(_csv(tmp_path, 160)), "--target", "units", "--horizon", "6",
            "--hidden", "4", "--epochs", "2", "--quiet", "--no-plot", "--out", str(out)]
    assert main(argv + ["--backtest", "3"]) == 0
    text = capsys.readouterr().out
    assert "backtest over 3 origins (test parts ending after steps 160, 154, 148)" in text
    report = json.loads((out / "report.json").read_text())
    bt = report["backtest"]
    assert bt["ends"] == [160, 154, 148] and all(len(v) == 3 for v in bt["mase"].values())
    assert bt["labels"].keys() == bt["mase"].keys()
    assert all(len(v) == len(bt["mase"][m]) for m, v in bt["labels"].items())
    # fold 0 is the run the report describes: same settings, same seed, same scores
    assert bt["mase"]["lstm"][0] == pytest.approx(report["scores"]["lstm"]["mase"], rel=1e-12)
    assert bt["mase"]["persistence"][1] != bt["mase"]["persistence"][0]
    assert main(argv + ["--backtest", "25", "--out", str(tmp_path / "r2")]) == 2
    assert "--backtest 25: the earliest fold keeps 16 of the series' 160" in capsys.readouterr().err
    # folds reaching back past the start: the distance is named, never a negative step count
    assert main(argv + ["--backtest", "40", "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert "--backtest 40: the earliest fold would end 234 steps (39 x the horizon 6)" in err
    assert "-74" not in err
    assert not (tmp_path / "r2" / "model.ckpt").exists()


def test_cli_benchmark_trains_the_default_and_names_its_base(capsys):
    assert main(["forecast", "benchmark", "--dataset", "sunspots", "--seeds", "1",
                 "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "**sunspots** — lookback" in out and ", base " in out
    assert "| LSTM (this model) |" in out


def test_cli_benchmark_refuses_a_series_named_twice(capsys):
    # it ran the series twice and printed its table twice
    assert main(["forecast", "benchmark", "--dataset", "sunspots", "airline", "sunspots",
                 "--seeds", "1", "--epochs", "1"]) == 2
    captured = capsys.readouterr()
    assert "--dataset sunspots is given more than once" in captured.err and captured.out == ""


def _season_1_run(tmp_path, base: str):
    """``(csv, run folder)``: a one-epoch forecast train with --season 1 and ``--base``."""
    s = 100 + np.cumsum(np.random.default_rng(3).normal(size=80))
    p = write(tmp_path / "y.csv", "y\n" + "".join(f"{v:.3f}\n" for v in s))
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--target", "y", "--season", "1", "--horizon", "3",
                 "--lookback", "6", "--base", base, "--transform", "none", "--anchor", "last",
                 "--epochs", "1", "--hidden", "4", "--quiet", "--no-plot", "--out", str(out)]) == 0
    return p, out


def test_season_1_reports_no_seasonal_naive_row_that_repeats_persistence(tmp_path, capsys):
    # --season 1 printed 'seasonal naive (m=1)', the persistence row again under another name
    _, out = _season_1_run(tmp_path, "naive")
    text = capsys.readouterr().out
    assert "no season (--season 1; seasonal naive left out)" in text
    assert "seasonal naive" not in text.split("no season (--season 1")[1].split(")", 1)[1]
    assert "seasonal_naive" not in (out / "forecasts.csv").read_text().splitlines()[0]


def test_season_1_is_recorded_as_no_season_and_old_checkpoints_of_it_load(tmp_path, capsys):
    # --season 1 was recorded as season 1 in report.json and the checkpoint, where a series
    # without a detected season records none
    p, out = _season_1_run(tmp_path, "ar")
    report = json.loads((out / "report.json").read_text())
    assert report["season"] is None and report["choice"]["season"] is None
    meta, arrays = load_checkpoint(out / "model.ckpt")
    assert meta["season"] is None and meta["choice"]["season"] is None
    assert Forecaster.load(out / "model.ckpt").season is None
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(p)]) == 0
    forecast = capsys.readouterr().out
    old = tmp_path / "old.ckpt"  # as --season 1 was recorded: season 1 in the fitted parts too
    save_checkpoint(old, {**meta, "season": 1, "scaler": {**meta["scaler"], "season": 1},
                          "hybrid": {**meta["hybrid"], "season": 1}}, arrays)
    assert Forecaster.load(old).season is None
    assert main(["forecast", "predict", str(old), str(p)]) == 0
    assert capsys.readouterr().out == forecast
