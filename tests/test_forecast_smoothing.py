"""Exponential smoothing over each window: the recursions, the fit, and the hybrid's "ets" base."""

import json

import numpy as np
import pytest
from seq_helpers import one_blas_thread, write  # noqa: F401

from lstmlab.cli import main
from lstmlab.forecast.data import TimeSeries
from lstmlab.forecast.model import ForecastConfig, Forecaster
from lstmlab.forecast.report import evaluate
from lstmlab.forecast.select import choose_settings
from lstmlab.forecast.smoothing import WindowSmoothing
from lstmlab.forecast.windows import make_windows
from lstmlab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lstmlab.training.supervised import FitConfig


def _windows(y, L, K):
    y = np.asarray(y, np.float64)[:, None]
    return make_windows(y, L, K, np.arange(L, len(y) - K + 1))


def _by_the_equations(z, K, a, b, p, g, trend, m):
    """One window's forecasts from the recursions written out step by step."""
    L = len(z)
    if m:
        level = np.mean(z[:m])
        season = list(z[:m] - level)
        slope = (np.mean(z[m:2 * m]) - level) / m if trend else 0.0
        start = m
    else:
        level, season, start = z[0], None, 1
        slope = z[1] - z[0] if trend else 0.0
    for t in range(start, L):
        s = season[t % m] if m else 0.0
        new = a * (z[t] - s) + (1 - a) * (level + p * slope)
        if m:
            season[t % m] = g * (z[t] - level - p * slope) + (1 - g) * s
        if trend:
            slope = b * (new - level) + (1 - b) * p * slope
        level = new
    out = []
    for k in range(1, K + 1):
        reach = sum(p ** j for j in range(1, k + 1)) if trend else 0.0
        out.append(level + reach * slope + (season[(L + k - 1) % m] if m else 0.0))
    return np.array(out)


@pytest.mark.parametrize("trend,m,log", [(False, None, False), (True, None, False),
                                         (False, 4, True), (True, 3, False)])
def test_forecasts_follow_the_recursions(trend, m, log):
    rng = np.random.default_rng(7)
    L, K = int(rng.integers(8, 20)), int(rng.integers(1, 9))
    X = 5 + rng.random((6, L, 1))
    a, b, p, g = rng.uniform(0.05, 1.0, 4)
    ets = WindowSmoothing(trend, m, log, a, b if trend else 0.0, p if trend else 0.0,
                          g if m else 0.0)
    got = ets.forecast(X, K)
    for i in range(len(X)):
        z = np.log(X[i, :, 0]) if log else X[i, :, 0]
        want = _by_the_equations(z, K, a, b, p, g, trend, m)
        np.testing.assert_allclose(got[i], np.exp(want) if log else want, rtol=1e-12)


def test_fit_finds_the_structure_of_noiseless_series():
    t = np.arange(80.0)
    line = 3 + 0.5 * t  # a straight line: the undamped trend forecasts it exactly
    ets = WindowSmoothing.fit(*_windows(line, 12, 5), None, False)
    assert ets.trend and ets.phi == 1.0
    X, Y = _windows(line + 100, 12, 5)  # windows it has not seen, at another level
    np.testing.assert_allclose(ets.forecast(X, 5), Y, atol=1e-9)

    growth = 2 * 1.05 ** t  # exponential growth is a line in logs
    ets = WindowSmoothing.fit(*_windows(growth, 12, 5), None, True)
    X, Y = _windows(growth, 12, 5)
    np.testing.assert_allclose(ets.forecast(X, 5), Y, rtol=1e-9)

    pattern = 10 + np.tile([3.0, -1.0, 0.5, -2.5], 20)  # a fixed season around a fixed level
    ets = WindowSmoothing.fit(*_windows(pattern, 8, 6), 4, False)
    assert ets.season == 4
    X, Y = _windows(pattern, 8, 6)
    np.testing.assert_allclose(ets.forecast(X, 6), Y, atol=1e-9)


def test_fit_refuses_windows_it_cannot_smooth():
    with pytest.raises(ValueError, match="a lookback of 2 or more"):
        WindowSmoothing.fit(np.ones((3, 1, 1)), np.ones((3, 2)), None, False)
    with pytest.raises(ValueError, match="at least one training window"):
        WindowSmoothing.fit(np.ones((0, 4, 1)), np.ones((0, 2)), None, False)


def _series(y):
    y = np.asarray(y, np.float64)
    return TimeSeries(y[:, None], ["y"], None, "test", np.arange(len(y)) + 2)


def _level_shifts(n=160, seed=0):
    """A local level: a random walk seen through noise, where smoothing beats the last value."""
    rng = np.random.default_rng(seed)
    return 50 + np.cumsum(0.3 * rng.normal(size=n)) + 2.0 * rng.normal(size=n)


def test_the_choice_scores_smoothing_when_asked_or_given_and_not_by_default():
    s = _series(_level_shifts())
    assert "ets" not in {cfg.base for cfg, _ in choose_settings(
        s, ForecastConfig(horizon=4), set()).tried}
    c = choose_settings(s, ForecastConfig(horizon=4), set(), smoothing_base=True)
    ets = [(cfg, e) for cfg, e in c.tried if cfg.base == "ets"]
    assert ets and all(np.isfinite(e) and e > 0 for _, e in ets)
    assert {cfg.lookback for cfg, _ in ets} >= {6, 12}
    assert "exponential smoothing, lookback" in c.explain() or c.config.base != "ets"
    given = choose_settings(s, ForecastConfig(horizon=4, base="ets"), {"base"})
    assert given.config.base == "ets"
    assert {cfg.base for cfg, _ in given.tried} == {"ets"}


def test_hybrid_on_smoothing_with_weight_zero_is_that_forecast_and_round_trips(tmp_path):
    s = _series(_level_shifts())
    cfg = ForecastConfig(lookback=12, horizon=4, transform="none", anchor="last", base="ets")
    fc = Forecaster.train(s, cfg, np.random.default_rng(1), hidden_size=4, dtype="float64",
                          fit_config=FitConfig(epochs=3))
    assert fc.hybrid.kind == "ets" and "exponential smoothing" in fc.hybrid.describe()
    X, _ = make_windows(s.values, 12, 4, fc.split.origins("test", 12, 4))
    fc.hybrid.mix = 0.0
    np.testing.assert_allclose(fc.predict_windows(X), fc.hybrid.smoothing.forecast(X, 4),
                               rtol=1e-10)
    assert "lstm" in evaluate(fc, s).preds
    fc.hybrid.mix = 0.5
    fc.save(tmp_path / "e.ckpt")
    back = Forecaster.load(tmp_path / "e.ckpt")
    assert back.hybrid.smoothing == fc.hybrid.smoothing
    np.testing.assert_array_equal(back.predict_windows(X), fc.predict_windows(X))
    meta, arrays = load_checkpoint(tmp_path / "e.ckpt", expect_kind="forecaster")
    broken = [({**meta["hybrid"], "smoothing": None}, "without exponential smoothing"),
              ({**meta["hybrid"], "smoothing": {**meta["hybrid"]["smoothing"], "alpha": 2}},
               "alpha must be a number in"),
              ({**meta["hybrid"], "smoothing": {**meta["hybrid"]["smoothing"], "season": -1}},
               "season must be a positive integer")]
    for hybrid, says in broken:
        save_checkpoint(tmp_path / "broken.ckpt", {**meta, "hybrid": hybrid}, arrays)
        with pytest.raises(CheckpointError, match=f"broken description: .*{says}"):
            Forecaster.load(tmp_path / "broken.ckpt")


def test_cli_base_ets_trains_and_names_it(tmp_path, capsys):
    y = _level_shifts(120)
    path = write(tmp_path / "level.csv",
                 "t,y\n" + "".join(f"{i},{v:.4f}\n" for i, v in enumerate(y)))
    out = tmp_path / "run"
    rc = main(["forecast", "train", str(path), "--target", "y", "--horizon", "4", "--base",
               "ets", "--hidden", "4", "--epochs", "2", "--quiet", "--no-plot",
               "--out", str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "exponential smoothing over the window" in err
    assert json.loads((out / "report.json").read_text())["config"]["base"] == "ets"


def test_cli_base_ets_with_a_one_step_lookback_is_refused_before_anything_is_written(
        tmp_path, capsys):
    path = write(tmp_path / "level.csv", "t,y\n" + "".join(
        f"{i},{v:.4f}\n" for i, v in enumerate(_level_shifts(80))))
    rc = main(["forecast", "train", str(path), "--target", "y", "--horizon", "3", "--base",
               "ets", "--lookback", "1", "--epochs", "1", "--quiet", "--no-plot",
               "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "--base ets smooths over each window, so it needs a lookback of 2" in \
        capsys.readouterr().err
    assert not (tmp_path / "r").exists()
