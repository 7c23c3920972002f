"""Gradient-flow measurement against finite differences, and the demo end to end."""

import numpy as np
import pytest
from seq_helpers import kernel_forward, numerical_gradient

import lstmlab
from lstmlab.cli import main
from lstmlab.insight.gradflow import gradient_flow


def _loss_from_step(layer, x, t, h_t, c_t, dy, o_t=None):
    """Loss dy·y over steps t+1..T-1 plus dy_t·h_t, restarting the single-layer net at step t.

    With ``o_t`` given, h_t is recomputed from C_t as the LSTM does (h_t = o_t * tanh(C_t)),
    so that perturbing C_t measures its total derivative, through h_t too."""
    p = layer._layer_params("l0")
    if o_t is not None:
        h_t = o_t * np.tanh(c_t)
    rest = x[t + 1:]
    total = float((dy[t] * h_t).sum())
    if len(rest):
        y = kernel_forward(p, rest, h_t, c_t, getattr(layer, "nonlinearity", "tanh"))[0]
        total += float((dy[t + 1:] * y).sum())
    return total


@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_gradient_flow_matches_finite_differences(kind):
    rng = np.random.default_rng(0)
    T, B, D, H = 5, 2, 3, 4
    cls = lstmlab.LSTM if kind == "lstm" else lstmlab.RNN
    layer = cls(D, H, dtype=np.float64, rng=rng)
    x = rng.normal(size=(T, B, D))
    dy = rng.normal(size=(T, B, H))
    flow = gradient_flow(layer, x, dy=dy)
    p = layer._layer_params("l0")
    zeros = np.zeros((B, H))
    cache = kernel_forward(p, x, zeros, zeros if kind == "lstm" else None)[2]
    eps = 1e-6
    for t in range(T):
        h_t = cache.h[t + 1].copy()
        c_t = cache.c[t + 1].copy() if kind == "lstm" else None
        o_t = cache.gates[t, :, 2 * H:3 * H] if kind == "lstm" else None
        for which, arr in [("h", h_t)] + ([("C", c_t)] if c_t is not None else []):
            o = o_t if which == "C" else None
            num = numerical_gradient(lambda: _loss_from_step(layer, x, t, h_t, c_t, dy, o), arr,
                                     eps)
            got = flow.dh_norm[0, t] if which == "h" else flow.dc_norm[0, t]
            assert got == pytest.approx(np.linalg.norm(num), rel=1e-7)


def test_gradient_flow_refuses_bidirectional():
    layer = lstmlab.LSTM(2, 3, bidirectional=True, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="unidirectional"):
        gradient_flow(layer, np.zeros((3, 1, 2), np.float32))


def test_decay_without_a_gradient_at_the_last_step_is_refused():
    layer = lstmlab.LSTM(2, 3, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(4, 2, 2)).astype(np.float32)
    flow = gradient_flow(layer, x, dhT=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="gradient at the last step is 0"):
        flow.decay()  # (it returned NaN with warnings)
    assert gradient_flow(layer, x).decay()["h"][-1] == 1.0


def test_demo_runs_and_shows_the_rnn_vanishing(capsys, tmp_path):
    # --quick shrinks the training sections; the gradient section takes the sizes given here
    assert main(["demo", "--quick", "--out", str(tmp_path), "--length", "60", "--batch", "4",
                 "--hidden", "16"]) == 0
    out = capsys.readouterr().out
    rnn_row = next(line for line in out.splitlines() if line.startswith("RNN (tanh)"))
    last = float(rnn_row.split()[-1])
    assert last < 1e-6  # 50 steps back, the RNN's gradient has all but vanished
    lstm_c = [line for line in out.splitlines() if line.startswith("LSTM, forget bias 3") and " C " in line]
    assert float(lstm_c[0].split()[-1]) > 1e-2  # the open forget gate carries it back


def test_cli_rejects_bad_numbers(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--length", "0"])
    assert "expected a positive integer" in capsys.readouterr().err


def test_insight_arguments_that_do_not_fit_the_layer_are_named():
    from lstmlab.insight import jacobian_norms, record_gates

    lstm = lstmlab.LSTM(3, 4, num_layers=2, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(5, 2, 3))
    h = np.zeros((2, 2, 4))
    cases = {
        r"x must have 3 features \(input_size\) in its last dimension, got shape \(5, 2, 2\)":
            lambda f: f(lstm, x[:, :, :2]),
        r"x must have at least one time step and one sequence, got shape \(0, 2, 3\)":
            lambda f: f(lstm, x[:0]),
        r"state\[0\] \(h0\) must have shape \(2, 2, 4\), got \(1, 2, 4\)":
            lambda f: f(lstm, x, state=(h[:1], h)),
        r"state\[1\] \(c0\) must have shape \(2, 2, 4\), got \(2, 3, 4\)":
            lambda f: f(lstm, x, state=(h, np.zeros((2, 3, 4)))),
        r"works on the lecture's LSTM; .* a projection \(proj_size\)":
            lambda f: f(lstmlab.LSTM(3, 4, proj_size=2), x),
    }
    for f in (gradient_flow, jacobian_norms, record_gates):
        for message, call in cases.items():
            with pytest.raises(ValueError, match=message):
                call(f)
        with pytest.raises(TypeError, match=r"state must be a pair \(h0, c0\)"):
            f(lstm, x, state=h)
    rnn = lstmlab.RNN(3, 4, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"state must have shape \(1, 2, 4\), got \(1, 3, 4\)"):
        gradient_flow(rnn, x, state=np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match=r"dy must have shape \(5, 2, 4\), got \(5, 2, 5\)"):
        gradient_flow(lstm, x, dy=np.zeros((5, 2, 5)))
    with pytest.raises(ValueError, match=r"dhT must have shape \(2, 4\), got \(3, 4\)"):
        gradient_flow(lstm, x, dhT=np.zeros((3, 4)))
    for probes in (0, -1, 2.5):
        with pytest.raises(ValueError, match="probes must be a positive integer"):
            jacobian_norms(lstm, x, probes=probes)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        jacobian_norms(lstm, x, rng=3)


def test_insight_runs_a_zoneout_lstm_as_it_evaluates():
    from lstmlab.insight import record_gates

    kw = dict(zoneout=0.4, dtype=np.float64)
    net = lstmlab.LSTM(3, 4, num_layers=2, rng=np.random.default_rng(0), **kw).eval()
    x = np.random.default_rng(1).normal(size=(6, 2, 3))
    y, (h_n, c_n) = net.forward(x)
    traces = record_gates(net, x)
    np.testing.assert_allclose(traces[-1].hidden, y, atol=1e-12)
    np.testing.assert_allclose(traces[-1].cell[-1], c_n[-1], atol=1e-12)
    # dL/dh_t = dy_t + the gradient the rest of the sequence sends back to its initial h
    one = lstmlab.LSTM(3, 4, rng=np.random.default_rng(0), **kw).eval()
    dy = np.random.default_rng(2).normal(size=(6, 2, 4))
    expected = []
    for t in range(6):
        _, state = one.forward(x[:t + 1])
        dh = dy[t].copy()
        if t < 5:
            one.forward(x[t + 1:], state)
            dh += one.backward(dy[t + 1:])[1][0][0]
        expected.append(np.linalg.norm(dh))
    np.testing.assert_allclose(gradient_flow(one, x, dy=dy).dh_norm[0], expected, rtol=1e-10)


def test_decay_names_a_layer_the_flow_does_not_have():
    layer = lstmlab.LSTM(2, 3, num_layers=2, rng=np.random.default_rng(0))
    flow = gradient_flow(layer, np.random.default_rng(1).normal(size=(4, 2, 2)))
    for bad in (2, -3, 0.0, True, "top"):
        with pytest.raises(ValueError, match=r"layer must be an integer in \[-2, 1\]"):
            flow.decay(bad)
    np.testing.assert_array_equal(flow.decay(-2)["C"], flow.decay(0)["C"])
