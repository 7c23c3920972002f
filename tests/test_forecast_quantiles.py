"""Quantile outputs: the pinball loss and its exact gradient, quantile heads that learn the
spread of the noise, their coverage in the report, checkpoint and CLI."""

import csv
import json

import numpy as np
import pytest
from seq_helpers import one_blas_thread, write  # noqa: F401

from lstmlab.cli import main
from lstmlab.forecast.baselines import ridge_loo
from lstmlab.forecast.data import TimeSeries
from lstmlab.forecast.model import ForecastConfig, Forecaster, point_and_quantile_loss
from lstmlab.forecast.report import evaluate, format_coverage, quantile_scores
from lstmlab.training.losses import pinball_loss
from lstmlab.training.supervised import FitConfig


def _pinball_reference(pred, target, tau):
    e = target - pred
    return np.mean(np.where(e >= 0, tau * e, (tau - 1) * e))


@pytest.mark.parametrize("seed", range(4))
def test_pinball_gradient_is_exact_against_finite_differences_and_torch(seed):
    rng = np.random.default_rng(seed)
    n, Q, K = rng.integers(1, 6), rng.integers(1, 4), rng.integers(1, 5)  # n = 1 and K = 1 too
    tau = np.sort(rng.uniform(0.02, 0.98, Q))[:, None]  # (Q, 1)
    pred = rng.normal(size=(n, Q, K))
    target = pred + rng.choice([-1, 1], size=pred.shape) * rng.uniform(0.1, 2, pred.shape)
    loss, grad = pinball_loss(pred, target, tau)
    assert loss == pytest.approx(_pinball_reference(pred, target, tau), rel=1e-14)
    h = 1e-6  # every |target - pred| >= 0.1: no kink within h
    fd = np.zeros_like(pred)
    for i in np.ndindex(pred.shape):
        p, m = pred.copy(), pred.copy()
        p[i] += h
        m[i] -= h
        fd[i] = (pinball_loss(p, target, tau)[0] - pinball_loss(m, target, tau)[0]) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-10)
    torch = pytest.importorskip("torch")
    t = torch.tensor(pred, requires_grad=True)
    e = torch.tensor(target) - t
    tt = torch.tensor(np.broadcast_to(tau, pred.shape).copy())
    torch.maximum(tt * e, (tt - 1) * e).mean().backward()
    np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-13, atol=1e-15)
    s_loss, s_grad = pinball_loss(pred, target, tau, reduction="sum")
    assert s_loss == pytest.approx(loss * pred.size) and np.allclose(s_grad, grad * pred.size)


def test_pinball_minimiser_is_the_empirical_quantile_and_bad_levels_are_refused():
    y = np.random.default_rng(0).normal(size=1001)
    grid = np.linspace(-3, 3, 2001)
    for tau in (0.1, 0.5, 0.9):
        losses = [pinball_loss(np.full_like(y, q), y, tau)[0] for q in grid]
        assert grid[int(np.argmin(losses))] == pytest.approx(np.quantile(y, tau), abs=0.01)
    for bad in (0.0, 1.0, -0.2):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            pinball_loss(y, y, bad)
    with pytest.raises(ValueError, match="do not broadcast"):
        pinball_loss(np.zeros((2, 3)), np.zeros((2, 3)), [0.1, 0.9])


def test_point_and_quantile_loss_adds_mse_and_pinball_with_their_gradients():
    rng = np.random.default_rng(1)
    K, quantiles = 3, (0.2, 0.8)
    out, target = rng.normal(size=(5, K * 3)), rng.normal(size=(5, K))
    loss, grad = point_and_quantile_loss(K, quantiles)(out, target)
    q = out[:, K:].reshape(5, 2, K)
    expect = np.mean((out[:, :K] - target) ** 2) + _pinball_reference(
        q, target[:, None, :], np.array(quantiles)[:, None])
    assert loss == pytest.approx(expect, rel=1e-13)
    np.testing.assert_allclose(grad[:, :K], 2 * (out[:, :K] - target) / (5 * K))
    e = target[:, None, :] - q
    tau = np.array(quantiles)[:, None]
    np.testing.assert_allclose(grad[:, K:].reshape(5, 2, K), np.where(e < 0, 1 - tau, -tau) / q.size)


def test_quantile_config_is_checked():
    assert ForecastConfig(quantiles=[0.1, 0.9]).quantiles == (0.1, 0.9)
    for bad in ([0.9, 0.1], [0.5, 0.5], [0, 0.5], [1.2], ["x"]):
        with pytest.raises(ValueError, match="quantiles"):
            ForecastConfig(quantiles=bad)


def test_a_repeated_quantile_level_is_refused_by_the_cli_and_the_config(tmp_path, capsys):
    with pytest.raises(ValueError, match="quantiles must not repeat: 0.1 given more than once"):
        ForecastConfig(quantiles=(0.1, 0.1, 0.9))
    csv = write(tmp_path / "s.csv", "y\n" + "".join(f"{i % 7}\n" for i in range(80)))
    for levels in ("0.1,0.1", "0.9,0.1,0.10"):
        with pytest.raises(SystemExit) as exc:
            main(["forecast", "train", str(csv), "--target", "y", "--quantiles", levels,
                  "--out", str(tmp_path / "run")])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "--quantiles: expected each level once, got 0.1 more than once" in err
    assert not (tmp_path / "run").exists()


def _noisy(n=420, sd=1.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 20 + 3 * np.sin(2 * np.pi * t / 12) + sd * rng.normal(size=n)
    return TimeSeries(y[:, None], ["y"], None, "noisy", t + 2)


@pytest.mark.parametrize("base", ["ar", "none"])
def test_quantile_heads_learn_the_spread_of_the_noise(base, one_blas_thread):
    s = _noisy()
    cfg = ForecastConfig(lookback=24, horizon=3, anchor="season", season=12, base=base,
                         quantiles=(0.1, 0.5, 0.9))
    fc = Forecaster.train(s, cfg, np.random.default_rng(0), hidden_size=16, dtype="float64",
                          fit_config=FitConfig(epochs=60, lr=5e-3, patience=20))
    ev = evaluate(fc, s)
    qc = ev.quantile_coverage
    assert 0.68 <= qc["bands"]["0.8"] <= 0.92  # nominal 80 %
    assert qc["below"]["0.1"] < 0.25 and 0.3 < qc["below"]["0.5"] < 0.7 < qc["below"]["0.9"]
    lo, hi = ev.quantiles["0.1"], ev.quantiles["0.9"]
    width = float(np.mean(hi - lo))
    assert 2.2 < width < 4.2  # the 10-90 % range of N(0, 1) noise is 2.56; estimation adds
    assert "80% band covers" in format_coverage(ev)


def test_quantile_scores_counts_bands_and_shares_below():
    truth = np.array([[0.0, 1.0, 2.0, 3.0]])
    q = {"0.1": np.full((1, 4), 0.5), "0.9": np.full((1, 4), 2.5), "0.5": np.full((1, 4), 1.5)}
    assert quantile_scores(truth, q) == {"below": {"0.1": 0.25, "0.9": 0.75, "0.5": 0.5},
                                         "bands": {"0.8": 0.5}}


def test_cli_quantiles_in_report_forecasts_checkpoint_and_predict(tmp_path, one_blas_thread,
                                                                  capsys):
    y = _noisy(200).target
    csv = write(tmp_path / "s.csv", "t,y\n" + "".join(f"{i},{float(v)!r}\n" for i, v in enumerate(y)))
    out = tmp_path / "run"
    rc = main(["forecast", "train", str(csv), "--target", "y", "--time", "t", "--horizon", "3",
               "--lookback", "24", "--quantiles", "0.9,0.1", "--epochs", "5", "--hidden", "6",
               "--quiet", "--out", str(out)])
    assert rc == 0
    assert "quantile heads (pinball loss) on the test part: 80% band covers" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert set(report["quantile_coverage"]["below"]) == {"0.1", "0.9"}
    head = (out / "forecasts.csv").read_text().splitlines()[0].split(",")
    assert head[-2:] == ["lstm_q10", "lstm_q90"]
    fc = Forecaster.load(out / "model.ckpt")
    X = y[-24:][None, :, None]
    q = fc.predict_quantiles(X)
    assert q.shape == (1, 2, 3) and np.all(q[:, 0] <= q[:, 1])
    rc = main(["forecast", "predict", str(out / "model.ckpt"), str(csv), "--out",
               str(tmp_path / "next.csv")])
    rows = (tmp_path / "next.csv").read_text().splitlines()
    assert rc == 0 and rows[0].endswith(",q10,q90")
    np.testing.assert_allclose([float(r.split(",")[-2]) for r in rows[1:]], q[0, 0], rtol=1e-5)
    with pytest.raises(SystemExit) as exc:
        main(["forecast", "train", str(csv), "--target", "y", "--quantiles", "1.5",
              "--out", str(tmp_path / "r2")])
    assert exc.value.code == 2
    assert "--quantiles: quantile levels must lie strictly between 0 and 1" in capsys.readouterr().err


@pytest.mark.parametrize("seed", range(3))
def test_ridge_leave_one_out_equals_refitting_without_each_window(seed):
    rng = np.random.default_rng(seed)
    n, L, K = rng.integers(6, 14), rng.integers(1, 5), rng.integers(1, 4)
    x, Y = rng.normal(size=(n, L, 1)), rng.normal(size=(n, K)) + 3.0
    for lam in (0.0, 0.01, 1.0):
        loo = ridge_loo(x, Y, lam)
        A = np.hstack([x.reshape(n, -1), np.ones((n, 1))])  # intercept last, not penalised
        P = lam * n * np.eye(A.shape[1])
        P[-1, -1] = 0.0
        for i in range(n):
            keep = np.arange(n) != i
            W = np.linalg.lstsq(A[keep].T @ A[keep] + P, A[keep].T @ Y[keep], rcond=None)[0]
            np.testing.assert_allclose(loo[i], A[i] @ W, rtol=1e-8, atol=1e-8)


def test_hybrid_intervals_calibrate_on_training_and_validation_windows(one_blas_thread):
    s = _noisy(200)
    cfg = dict(lookback=24, horizon=3, anchor="season", season=12)
    fit = FitConfig(epochs=3)
    hybrid = Forecaster.train(s, ForecastConfig(base="ar", **cfg), np.random.default_rng(0),
                              hidden_size=4, fit_config=fit)
    plain = Forecaster.train(s, ForecastConfig(base="none", **cfg), np.random.default_rng(0),
                             hidden_size=4, fit_config=fit)
    n_train = len(hybrid.split.origins("train", 24, 3))
    n_val = len(hybrid.split.origins("val", 24, 3))
    assert hybrid.intervals.n == n_train + n_val and plain.intervals.n == n_val
    assert np.all(hybrid.intervals.width["0.95"] >= hybrid.intervals.width["0.8"])


@pytest.mark.parametrize("base", ["naive", "none"])
def test_a_constant_series_gets_quantiles_of_zero_width(tmp_path, one_blas_thread, capsys, base):
    # the heads spread 4.83..5.00 around a series that is 5 throughout, and the report said
    # '100% below the 10% quantile'
    p = write(tmp_path / "c.csv", "y\n" + "5\n" * 80)
    out = tmp_path / "run"
    assert main(["forecast", "train", str(p), "--target", "y", "--quantiles", "0.1,0.5,0.9",
                 "--base", base, "--lookback", "8", "--horizon", "4", "--hidden", "4",
                 "--epochs", "3", "--quiet", "--no-plot", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert ("quantile heads on the test part: the training part is constant, so each quantile "
            "is the point forecast (a band of zero width)") in text and "below the" not in text
    with open(out / "forecasts.csv") as f:
        rows = list(csv.DictReader(f))
    assert all(r["lstm_q10"] == r["lstm_q50"] == r["lstm_q90"] == r["lstm"] for r in rows)
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(p)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("step,"))
    rows = list(csv.DictReader(lines[start:]))
    assert len(rows) == 4
    assert all(r["q10"] == r["q50"] == r["q90"] == r["forecast"] for r in rows)


def test_nonnegative_keeps_forecasts_bounds_and_quantiles_of_counts_at_zero_or_above(
        tmp_path, one_blas_thread, capsys):
    # counts of about 1 a step got lo80 -0.47 and lo95 -1.30 from forecast predict
    y = np.random.default_rng(0).poisson(1.0, 200)
    p = write(tmp_path / "counts.csv", "y\n" + "".join(f"{v}\n" for v in y))
    out = tmp_path / "run"
    argv = ["forecast", "train", str(p), "--target", "y", "--lookback", "8", "--horizon", "4",
            "--hidden", "4", "--epochs", "1", "--quantiles", "0.05,0.5", "--quiet", "--no-plot"]
    assert main(argv + ["--nonnegative", "--out", str(out)]) == 0
    with open(out / "forecasts.csv") as f:
        rows = list(csv.DictReader(f))
    bounds = ["lstm", "lstm_lo80", "lstm_lo95", "lstm_q5", "lstm_q50"]
    values = np.array([[float(r[c]) for c in bounds] for r in rows])
    assert values.min() == 0.0  # clipped, not shifted
    capsys.readouterr()
    assert main(["forecast", "predict", str(out / "model.ckpt"), str(p)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("step,"))
    printed = list(csv.DictReader(lines[start:]))
    assert min(float(r[c]) for r in printed for c in ("forecast", "lo95", "q5")) == 0.0
    assert main(argv + ["--out", str(tmp_path / "plain")]) == 0  # off by default
    with open(tmp_path / "plain" / "forecasts.csv") as f:
        assert min(float(r["lstm_lo95"]) for r in csv.DictReader(f)) < 0
    q = write(tmp_path / "net.csv", "y\n" + "".join(f"{v - 1}\n" for v in y))
    assert main(["forecast", "train", str(q), "--target", "y", "--nonnegative",
                 "--out", str(tmp_path / "neg")]) == 2
    assert "--nonnegative needs a target that is never below 0, but 'y' is -1 at line" in \
        capsys.readouterr().err


def test_nonnegative_clips_every_methods_forecasts_in_the_report(tmp_path, capsys):
    # the network's forecasts of counts that run down to 0 stopped at 0, but the linear AR
    # beside them went on down to -1.5: a clipped network against unclipped baselines
    rng = np.random.default_rng(1)
    y = np.tile(np.r_[np.arange(8, -1, -1), [0, 0, 0]], 14) + rng.poisson(0.2, 168)
    p = write(tmp_path / "counts.csv", "y\n" + "".join(f"{v}\n" for v in y))
    argv = ["forecast", "train", str(p), "--target", "y", "--lookback", "8", "--horizon", "4",
            "--hidden", "4", "--epochs", "1", "--base", "ar", "--quiet", "--no-plot"]
    methods = ["lstm", "persistence", "linear_ar", "linear_ar_t"]

    def lowest(out):
        with open(out / "forecasts.csv") as f:
            rows = list(csv.DictReader(f))
        return {m: min(float(r[m]) for r in rows) for m in methods}

    assert main(argv + ["--out", str(tmp_path / "plain")]) == 0
    assert lowest(tmp_path / "plain")["linear_ar"] < 0  # the data makes the AR go below 0
    assert main(argv + ["--nonnegative", "--out", str(tmp_path / "clip")]) == 0
    assert min(lowest(tmp_path / "clip").values()) == 0.0
    report = json.loads((tmp_path / "clip" / "report.json").read_text())
    with open(tmp_path / "clip" / "forecasts.csv") as f:  # the scores are of what is written
        rows = list(csv.DictReader(f))
    miss = [abs(float(r["truth"]) - float(r["linear_ar"])) for r in rows]
    assert report["scores"]["linear_ar"]["mae"] == pytest.approx(np.mean(miss), rel=1e-4)
