"""The pieces behind tests/test_edges.py: stop signals, the memory bound, the float64 range
checks, MASE's denominator, sampling at tiny temperatures, the lazy package import."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from seq_helpers import one_blas_thread, write  # noqa: F401

import lstmlab
from lstmlab._checks import as_float_array
from lstmlab._memory import _sci, check_training_fits, format_bytes, recurrent_params
from lstmlab._scaling import mean_std, range_problem
from lstmlab._words import counted
from lstmlab.classify import SequenceClassifier, SequenceDataError, synthetic_sequences
from lstmlab.forecast.baselines import mase_denominator, mase_scale
from lstmlab.forecast.report import Evaluation
from lstmlab.training.lm import sample_next
from lstmlab.training.signals import StopNow, stop_signals
from lstmlab.training.supervised import FitConfig, fit_sequence_net

SRC = str(Path(__file__).resolve().parents[1] / "src")
POSIX = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")


# -- stop signals ---------------------------------------------------------------------------------

def test_stop_signals_record_the_first_signal_raise_on_the_second_and_restore():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with stop_signals() as stop:
        handler = signal.getsignal(signal.SIGTERM)
        assert handler is signal.getsignal(signal.SIGINT) and handler not in before.values()
        assert not stop.requested and stop.exit_code is None
        handler(signal.SIGTERM, None)  # what the interpreter does when SIGTERM arrives
        assert stop.requested and stop.name == "SIGTERM" and stop.exit_code == 143
        with pytest.raises(StopNow) as exc:
            handler(signal.SIGINT, None)
        assert exc.value.exit_code == 130 and isinstance(exc.value, KeyboardInterrupt)
    assert {s: signal.getsignal(s) for s in before} == before


@POSIX
def test_stop_signals_take_a_hangup_unless_it_is_ignored():
    # a closed terminal's SIGHUP ended a run at once, its steps since the last checkpoint
    # lost; under nohup it must stay ignored
    before = signal.getsignal(signal.SIGHUP)
    try:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as in a terminal (the suite may run
        with stop_signals() as stop:  # under nohup, which ignores it)
            signal.getsignal(signal.SIGHUP)(signal.SIGHUP, None)
            assert stop.name == "SIGHUP" and stop.exit_code == 129
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with stop_signals() as stop:
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_stop_signals_outside_the_main_thread_install_nothing():
    seen = []

    def worker():
        with stop_signals() as stop:
            seen.append(stop.requested)

    before = signal.getsignal(signal.SIGINT)
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [False] and signal.getsignal(signal.SIGINT) is before


def test_fit_stops_between_batches_when_asked():
    from lstmlab.layers.seqnet import SequenceNet, SequenceNetConfig
    from lstmlab.training.losses import mse_loss

    rng = np.random.default_rng(0)
    net = SequenceNet(SequenceNetConfig(input_size=1, output_size=1, hidden_size=3), rng=rng)
    x, y = rng.normal(size=(4, 8, 1)).astype(np.float32), rng.normal(size=(8, 1)).astype(np.float32)
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) >= 3

    summary = fit_sequence_net(net, x, y, mse_loss, FitConfig(epochs=50, batch_size=2), rng,
                               should_stop=should_stop)
    assert summary["status"] == "interrupted" and summary["epochs_run"] == 1 and len(asked) == 3


@POSIX
@pytest.mark.slow
@pytest.mark.parametrize("command", ["forecast", "classify"])
def test_sigterm_stops_forecast_and_classify_training_with_the_model_saved(tmp_path, command):
    out = tmp_path / "run"
    if command == "forecast":
        argv = ["forecast", "train", "--dataset", "sunspots", "--no-plot"]
    else:
        folder = tmp_path / "Syn"
        folder.mkdir()
        data = synthetic_sequences(40, np.random.default_rng(0))
        lines = [",".join(f"{v:.3f}" for v in s[:, 0]) + f":{lab}" for s, lab in zip(data.x, data.labels)]
        header = ("@problemName Syn\n@timeStamps false\n@missing false\n@univariate true\n"
                  f"@equalLength false\n@classLabel true {' '.join(sorted(set(data.labels)))}\n@data\n")
        write(folder / "Syn_TRAIN.ts", header + "\n".join(lines) + "\n")
        argv = ["classify", "train", str(folder / "Syn_TRAIN.ts")]
    proc = subprocess.Popen([sys.executable, "-m", "lstmlab", *argv, "--epochs", "100000",
                             "--patience", "0", "--hidden", "4", "--quiet", "--out", str(out)],
                            env=dict(os.environ, PYTHONPATH=SRC, OPENBLAS_NUM_THREADS="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    assert (out / "model.ckpt").exists()
    assert json.loads((out / "report.json").read_text())["training"]["status"] == "interrupted"


# -- the memory bound -------------------------------------------------------------------------------

def test_recurrent_params_match_the_layers():
    for cls, cell in ((lstmlab.LSTM, "lstm"), (lstmlab.RNN, "rnn")):
        layer = cls(5, 7, num_layers=3, rng=np.random.default_rng(0))
        assert recurrent_params(cell, 5, 7, 3) == layer.num_params()


def test_the_memory_bound_names_the_options_and_the_size():
    check_training_fits(1000, "float32", 4, {"--hidden": 8}, "w", available=16_000)
    with pytest.raises(ValueError) as exc:
        check_training_fits(1001, "float32", 4, {"--hidden": 8, "--layers": 2}, "w",
                            available=16_000)
    msg = str(exc.value)
    assert "--hidden 8, --layers 2" in msg and "1e+03 parameters" in msg and "15.6 KiB" in msg
    huge = 10 ** 400
    with pytest.raises(ValueError, match=r"1\.00e\+400 parameters"):
        check_training_fits(huge, "float64", 4, {"--hidden": huge}, "w", available=1)
    assert format_bytes(512) == "512 B" and format_bytes(3 * 1024 ** 3) == "3.0 GiB"
    assert _sci(123456) == "1.23e+05"


def test_without_a_known_memory_size_the_bound_is_one_tebibyte(monkeypatch):
    import lstmlab._memory as memory

    monkeypatch.setattr(memory, "machine_memory", lambda: None)
    check_training_fits(10**9, "float32", 4, {"--hidden": 8}, "w")  # 15 GiB: allowed
    with pytest.raises(ValueError, match=r"--layers 99999999999 .* 1\.0 TiB"):
        check_training_fits(10**12, "float32", 4, {"--layers": 99999999999}, "w")


def test_absurdly_many_layers_are_refused_before_the_first_is_built(tmp_path, capsys):
    from lstmlab.cli import main

    corpus = write(tmp_path / "c.txt", "the cell state gate\n" * 200)
    assert main(["train", str(corpus), "--layers", "99999999999", "--hidden", "8",
                 "--out", str(tmp_path / "run")]) == 2
    assert "--layers 99999999999" in capsys.readouterr().err


# -- float64 ranges and standardisation --------------------------------------------------------------

def test_range_problem_names_the_column_the_place_and_the_remedy():
    assert range_problem(np.array([1.0, 2.0, 1e150]), "y") is None
    msg = range_problem(np.array([1.0, -3e151, 2.0]), "y", lambda i: f"line {i + 2}")
    assert "column 'y' holds -3e+151 at line 3" in msg and "1e151" in msg
    msg = range_problem(np.array([1e-200, 3e-200]), "y")
    assert "differ by at most 2e-200" in msg and "multiply it by 1e200" in msg
    assert range_problem(np.array([1e-200, 3e-200]), "y", spread=False) is None
    assert range_problem(np.array([5e-200, 5e-200]), "y") is None  # constant: no spread needed
    assert "holds inf" in range_problem(np.array([1.0, np.inf]), "y")


def test_standardisation_scales_tiny_units_and_keeps_constants_unscaled():
    rng = np.random.default_rng(0)
    a = np.column_stack([1e-20 * rng.normal(size=50), np.full(50, 7.0), np.zeros(50)])
    mean, std = mean_std(a, axis=0)
    assert 0.5e-20 < std[0] < 2e-20  # a column in tiny units is scaled, not taken as constant
    assert std[1] == 1.0 and std[2] == 1.0
    z = (a - mean) / std
    assert 0.9 < z[:, 0].std() < 1.1


def test_classifier_refuses_training_data_beyond_float64_statistics():
    data = synthetic_sequences(20, np.random.default_rng(0))
    data.x[5] = data.x[5] * 1e200
    with pytest.raises(SequenceDataError, match=r"'x' holds .*e\+200 at case '5' \(step \d+\)"):
        SequenceClassifier.train(data, np.random.default_rng(0), hidden_size=3,
                                 fit_config=FitConfig(epochs=1))


def test_classifier_refuses_to_predict_what_it_cannot_scale():
    data = synthetic_sequences(20, np.random.default_rng(0))
    model = SequenceClassifier.train(data, np.random.default_rng(0), hidden_size=3,
                                     fit_config=FitConfig(epochs=1), znorm=False)
    far = data.subset(range(3))
    far.x = [s.copy() for s in far.x]
    far.x[1][2, 0] = 1e100
    with pytest.raises(SequenceDataError, match=r"case '1' \(step 2\), feature 'x'.*float32"):
        model.predict(far)


def test_sklearn_classifier_refuses_values_beyond_float64_statistics():
    pytest.importorskip("sklearn")
    from lstmlab.sklearn import LSTMClassifier

    X = np.random.default_rng(0).normal(size=(10, 6))
    X[4, 3] = 1e200
    with pytest.raises(ValueError, match=r"feature 0.*sample 4, step 3"):
        LSTMClassifier(epochs=1, hidden_size=3).fit(X, np.arange(10) % 2)


def test_layers_name_a_finite_value_their_dtype_cannot_hold():
    with pytest.raises(ValueError, match=r"x holds 1e\+300 at index \(0, 1\), beyond the range "
                                         r"of float32"):
        as_float_array(np.array([[0.0, 1e300]]), "x", np.float32)
    with pytest.raises(ValueError, match=r"x contains NaN or inf \(first at index \(1,\)\)"):
        as_float_array(np.array([0.0, np.nan]), "x", np.float32)


# -- MASE's denominator ---------------------------------------------------------------------------

def test_mase_denominator_says_which_lag_it_used():
    y = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0])
    assert mase_denominator(y, 2) == (pytest.approx(np.mean([1, 2, 2, 1])), 2)
    assert mase_denominator(y, 6) == (pytest.approx(np.mean([2, 1, 3, 1, 2])), 1)  # too long
    assert mase_denominator(np.full(6, 2.0), 2) == (1.0, None)
    assert mase_scale(y, 6) == mase_denominator(y, 6)[0]
    ev = Evaluation(np.arange(2), np.zeros((2, 1)), {}, {}, 1000, 0.5, "test", 1)
    assert ev.mase_basis() == "the in-sample naive (m=1) error 0.5"
    ev.mase_lag = None
    assert "constant" in ev.mase_basis()


# -- sampling ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [1e-310, 5e-324, 1e-300])
def test_a_tiny_temperature_is_the_argmax_limit(temperature):
    rng = np.random.default_rng(0)
    logits = np.array([0.5, 3.0, -2.0, 2.9999])
    assert {sample_next(logits, temperature, 0, rng) for _ in range(50)} == {1}
    tied = np.array([1.0, 4.0, 4.0, -1.0])
    assert {sample_next(tied, temperature, 2, rng) for _ in range(200)} == {1, 2}  # shared


# -- start-up -------------------------------------------------------------------------------------

def test_the_command_line_starts_without_numpy_and_the_layers_load_on_use():
    code = ("import sys, lstmlab.cli; assert 'numpy' not in sys.modules, 'numpy imported'; "
            "import lstmlab; assert lstmlab.LSTM.__name__ == 'LSTM'; "
            "assert 'LSTM' in dir(lstmlab); from lstmlab import Linear")
    run = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=SRC),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    with pytest.raises(AttributeError, match="no attribute 'LTSM'"):
        lstmlab.LTSM  # noqa: B018


def test_counted_gives_a_count_the_number_of_its_noun():
    assert [counted(n, "character") for n in (0, 1, 2)] == ["0 characters", "1 character",
                                                             "2 characters"]
    assert [counted(n, "series", "series") for n in (1, 2)] == ["1 series", "2 series"]
    assert counted(12345, "character", grouped=True) == "12,345 characters"
    assert counted(12345, "row") == "12345 rows"
