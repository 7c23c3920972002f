"""Layer behaviour: bad input, single-step use, dropout and modes, initialisation."""

import re

import numpy as np
import pytest

import lstmlab
from seq_helpers import assert_step_equals_forward, numerical_gradient


def lstm(**kw):
    kw.setdefault("rng", np.random.default_rng(0))
    return lstmlab.LSTM(3, 4, **kw)


# -- bad input: each error names the argument and what was expected -------------------------
@pytest.mark.parametrize("x,exc,pattern", [
    (np.zeros((5, 2)), ValueError, r"x must have 3 features .* got shape \(5, 2\)"),
    (np.zeros((5,)), ValueError, r"x must have 2 or 3 dimensions, got shape \(5,\)"),
    (np.zeros((5, 2, 3, 1)), ValueError, r"x must have 2 or 3 dimensions"),
    (np.zeros((5, 2, 4)), ValueError, r"x must have 3 features .* got shape \(5, 2, 4\)"),
    (np.zeros((5, 2, 3), dtype=np.int64), TypeError, r"x must be a real floating-point array, got dtype int64"),
    (np.zeros((5, 2, 3), dtype=np.complex128), TypeError, r"x must be a real floating-point.*complex128"),
    (np.full((5, 2, 3), np.nan), ValueError, r"x contains NaN or inf \(first at index \(0, 0, 0\)\)"),
    (np.zeros((0, 2, 3)), ValueError, r"at least one time step"),
])
def test_bad_x(x, exc, pattern):
    with pytest.raises(exc, match=pattern):
        lstm().forward(x)


def test_ragged_nested_lists_are_named_at_every_entry_point():
    from lstmlab.layers import Linear
    from lstmlab.training import mse_loss
    ragged = r"must be an array or equally long nested lists; got nested sequences of unequal"
    calls = [("x", lambda: lstm().forward([[[1.0, 2.0, 3.0]], [[1.0, 2.0]]])),
             ("x_t", lambda: lstm().step([[1.0, 2.0, 3.0], [1.0]])),
             (r"state\[0\] \(h_0\)", lambda: lstm().forward(np.zeros((2, 1, 3)),
                                                         ([[[0.0] * 4], [[0.0]]], None))),
             ("x", lambda: Linear(2, 2).forward([[1.0, 2.0], [3.0]])),
             ("pred", lambda: mse_loss([[1.0, 2.0], [3.0]], [1.0, 2.0]))]
    for name, call in calls:
        with pytest.raises(ValueError, match=rf"^{name} {ragged}"):
            call()


def test_inf_in_x_is_located():
    x = np.zeros((4, 2, 3))
    x[2, 1, 0] = np.inf
    with pytest.raises(ValueError, match=re.escape("x contains NaN or inf (first at index (2, 1, 0))")):
        lstm().forward(x)


@pytest.mark.parametrize("lengths,exc,pattern", [
    ([0, 3], ValueError, r"lengths must lie in \[1, 5\] \(T = 5\), got values from 0 to 3"),
    ([6, 3], ValueError, r"lengths must lie in \[1, 5\]"),
    ([3, 3, 3], ValueError, r"lengths must have shape \(2,\)"),
    ([2.5, 3], TypeError, r"lengths must be integers"),
    ([np.inf, 3.0], TypeError, r"lengths must be integers, got dtype float64"),
    ([1e20, 3.0], ValueError, r"lengths must lie in \[1, 5\] \(T = 5\), got values from 3 to "
                              r"100000000000000000000"),
])
def test_bad_lengths(lengths, exc, pattern):
    with pytest.raises(exc, match=pattern):
        lstm().forward(np.zeros((5, 2, 3)), lengths=lengths)


def test_lengths_work_with_batch_first():
    rng = np.random.default_rng(1)
    a = lstmlab.LSTM(3, 4, batch_first=True, dtype=np.float64, rng=np.random.default_rng(2))
    b = lstmlab.LSTM(3, 4, batch_first=False, dtype=np.float64, rng=np.random.default_rng(2))
    x = rng.normal(size=(2, 5, 3))
    ya, (ha, _) = a.forward(x, lengths=[2, 5])
    yb, (hb, _) = b.forward(x.transpose(1, 0, 2), lengths=[2, 5])
    np.testing.assert_array_equal(ya, yb.transpose(1, 0, 2))
    np.testing.assert_array_equal(ha, hb)
    assert np.all(ya[0, 2:] == 0)


def test_state_of_another_size_is_rejected():
    layer = lstm(num_layers=2)
    x = np.zeros((5, 2, 3))
    with pytest.raises(ValueError, match=r"state\[0\] \(h_0\) must have shape \(2, 2, 4\), got \(1, 2, 4\)"):
        layer.forward(x, (np.zeros((1, 2, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(ValueError, match=r"state\[1\] \(c_0\) must have shape \(2, 2, 4\), got \(2, 2, 5\)"):
        layer.forward(x, (np.zeros((2, 2, 4)), np.zeros((2, 2, 5))))
    with pytest.raises(TypeError, match="state must be a pair"):
        layer.forward(x, np.zeros((2, 2, 4)))
    rnn = lstmlab.RNN(3, 4, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"h0 must have shape \(1, 2, 4\), got \(1, 2, 3\)"):
        rnn.forward(x, np.zeros((1, 2, 3)))


@pytest.mark.parametrize("cls", ["RNN", "GRU"])
def test_a_one_state_layer_given_a_containers_tuple_state_says_so(cls):
    # GRU.forward(x, (h0,)), the state as CharLM carries it, said "h0 must have shape
    # (1, 2, 5), got (1, 1, 2, 5)"; a list of per-layer arrays stays a valid state
    layer = getattr(lstmlab, cls)(3, 5, rng=np.random.default_rng(0))
    x, h0 = np.zeros((4, 2, 3)), np.zeros((1, 2, 5))
    with pytest.raises(TypeError, match=rf"h0 of a {cls} is the hidden state array itself, "
                                        r"not a tuple \(h0\[0\] here"):
        layer.forward(x, (h0,))
    with pytest.raises(TypeError, match=r"state of a .* not a tuple \(state\[0\] here"):
        layer.step(x[0], (h0,))
    np.testing.assert_array_equal(layer.forward(x, [h0[0]])[1], layer.forward(x, h0)[1])


def test_backward_before_forward_and_bad_dy():
    layer = lstm()
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.zeros((5, 2, 4)))
    layer.forward(np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match=r"dy must have shape \(5, 2, 4\), got \(5, 2, 3\)"):
        layer.backward(np.zeros((5, 2, 3)))
    with pytest.raises(ValueError, match=r"dstate\[1\] \(dc_n\) must have shape \(1, 2, 4\)"):
        layer.backward(np.zeros((5, 2, 4)), (None, np.zeros((2, 4))))


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(hidden_size=0), "hidden_size must be a positive integer"),
    (dict(num_layers=-1), "num_layers must be a positive integer"),
    (dict(dropout=1.0), r"dropout must be a number in \[0, 1\)"),
    (dict(dtype=np.int32), "dtype must be float32 or float64"),
])
def test_bad_constructor_arguments(kwargs, pattern):
    args = dict(input_size=3, hidden_size=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=pattern):
        lstmlab.LSTM(**args)


def test_rng_must_be_a_generator_and_nonlinearity_known():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        lstmlab.LSTM(3, 4, rng=42)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        lstmlab.RNN(3, 4, nonlinearity="sigmoid")


# -- single-step use ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["lstm", "rnn"])
def test_step_equals_forward(kind):
    rng = np.random.default_rng(5)
    if kind == "lstm":
        layer = lstmlab.LSTM(3, 4, num_layers=3, dtype=np.float64, rng=rng)
        state = (rng.normal(size=(3, 2, 4)), rng.normal(size=(3, 2, 4)))
    else:
        layer = lstmlab.RNN(3, 4, num_layers=3, dtype=np.float64, rng=rng)
        state = rng.normal(size=(3, 2, 4))
    assert_step_equals_forward(layer, rng.normal(size=(6, 2, 3)), state, atol=1e-14)


@pytest.mark.parametrize("kind, setting, value", [("lstm", "zoneout", 0.0),
                                                   ("lstm", "clip", 0.5),
                                                   ("rnn", "nonlinearity", "relu")])
def test_step_follows_a_setting_changed_after_a_step(kind, setting, value):
    rng = np.random.default_rng(7)
    opts = {"zoneout": 0.3} if setting == "zoneout" else {}
    if setting == "clip":
        opts = {"clip": 3.0}
    layer = (lstmlab.LSTM if kind == "lstm" else lstmlab.RNN)(3, 4, num_layers=2,
                                                              dtype=np.float64, rng=rng, **opts)
    layer.eval()
    x = 4 * rng.normal(size=(1, 2, 3))
    layer.step(x[0])  # the streaming step keeps the layer's weights and options
    setattr(layer, setting, value)
    np.testing.assert_allclose(layer.step(x[0])[0], layer.forward(x)[0][0], rtol=0, atol=1e-14)


def test_step_refuses_bidirectional_and_checks_width():
    layer = lstm(bidirectional=True)
    with pytest.raises(ValueError, match="unidirectional layers only"):
        layer.step(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"x_t must have 3 features .* got shape \(2, 5\)"):
        lstm().step(np.zeros((2, 5)))


@pytest.mark.parametrize("layer", [lstm(), lstmlab.GRU(3, 4, rng=np.random.default_rng(0)),
                                   lstmlab.RNN(3, 4, rng=np.random.default_rng(0))],
                         ids=["lstm", "gru", "rnn"])
def test_step_names_empty_batch_and_the_shape_given(layer):
    with pytest.raises(ValueError, match=r"x_t must have at least one sequence, got shape \(0, 3\)"):
        layer.step(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"x_t must have 3 features .* got shape \(5,\)"):
        layer.step(np.zeros(5))  # the shape passed in, not the batch of one made from it


# -- dropout, modes, initialisation --------------------------------------------------------
def test_dropout_only_between_layers_and_only_in_training():
    x = np.random.default_rng(0).normal(size=(4, 3, 3))
    layer = lstmlab.LSTM(3, 4, num_layers=2, dropout=0.5, dtype=np.float64,
                         rng=np.random.default_rng(1))
    y_eval1, _ = layer.eval().forward(x)
    y_eval2, _ = layer.forward(x)
    np.testing.assert_array_equal(y_eval1, y_eval2)
    y_train, _ = layer.train().forward(x)
    assert not np.allclose(y_train, y_eval1)
    with pytest.warns(UserWarning, match="dropout=0.5 acts between stacked layers and "
                                         "num_layers=1 has none"):  # as torch.nn.LSTM warns
        single = lstmlab.LSTM(3, 4, num_layers=1, dropout=0.5, dtype=np.float64,
                              rng=np.random.default_rng(1))
    a, _ = single.train().forward(x)
    b, _ = single.eval().forward(x)
    np.testing.assert_array_equal(a, b)  # one layer: nothing between layers to drop


def test_dropout_backward_matches_finite_differences():
    rng = np.random.default_rng(2)
    layer = lstmlab.LSTM(2, 3, num_layers=2, dropout=0.4, dtype=np.float64, rng=rng)
    x = rng.normal(size=(3, 2, 2))
    dy = rng.normal(size=(3, 2, 3))
    state = np.random.default_rng(9).bit_generator.state

    def loss():  # replay the same dropout mask on every call
        layer.rng.bit_generator.state = state
        y, _ = layer.forward(x)
        return float((y * dy).sum())

    loss()
    dx, _ = layer.backward(dy)
    np.testing.assert_allclose(dx, numerical_gradient(loss, x), rtol=1e-6, atol=1e-8)


def test_initialisation_like_pytorch_and_forget_bias():
    layer = lstmlab.LSTM(10, 64, rng=np.random.default_rng(0))
    k = 1 / np.sqrt(64)
    for name, p in layer.params().items():
        assert p.dtype == np.float32
        assert np.abs(p).max() <= k + 1e-7, name
        assert np.abs(p).max() > 0.9 * k, name
    shifted = lstmlab.LSTM(10, 64, forget_bias=1.0, rng=np.random.default_rng(0))
    diff = shifted.params()["b_l0"] - layer.params()["b_l0"]
    np.testing.assert_allclose(diff[:64], 1.0, atol=1e-6)  # block 0 is the forget gate
    np.testing.assert_array_equal(diff[64:], 0.0)


@pytest.mark.parametrize("make,pattern", [
    (lambda: lstmlab.LSTM(3, 4, forget_bias=float("nan")), r"forget_bias must be a finite number"),
    (lambda: lstmlab.LSTM(3, 4, forget_bias=1e39), r"forget_bias .* within float32's range, got 1e\+39"),
    (lambda: lstmlab.LSTM(3, 4, forget_bias=10**400), r"forget_bias must be a finite number"),
    (lambda: lstmlab.LSTM(3, 4, forget_bias="1"), r"forget_bias must be a finite number"),
    (lambda: lstmlab.LSTM(3, 10**12), r"too large for this machine: input_size 3, hidden_size 1000000000000"),
    (lambda: lstmlab.RNN(3, 8, num_layers=10**10), r"too large .* num_layers 10000000000"),
    (lambda: lstmlab.LSTM(10**13, 8), r"too large .* input_size 10000000000000"),
])
def test_bad_sizes_and_forget_bias_are_refused_before_any_allocation(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_forget_bias_within_float64_range_is_kept():
    assert lstmlab.LSTM(3, 4, forget_bias=1e39, dtype=np.float64).forget_bias == 1e39


def test_same_seed_same_weights_and_names():
    a = lstmlab.LSTM(3, 4, num_layers=2, bidirectional=True, rng=np.random.default_rng(7))
    b = lstmlab.LSTM(3, 4, num_layers=2, bidirectional=True, rng=np.random.default_rng(7))
    assert list(a.params()) == ["Wx_l0", "Wh_l0", "b_l0", "Wx_l0_reverse", "Wh_l0_reverse",
                                "b_l0_reverse", "Wx_l1", "Wh_l1", "b_l1", "Wx_l1_reverse",
                                "Wh_l1_reverse", "b_l1_reverse"]
    assert a.params()["Wx_l1"].shape == (8, 16)
    for k in a.params():
        np.testing.assert_array_equal(a.params()[k], b.params()[k])
    assert set(a.grads()) == set(a.params())


def test_float64_layer_accepts_float32_input_and_outputs_float64():
    layer = lstmlab.LSTM(3, 4, dtype=np.float64, rng=np.random.default_rng(0))
    y, (h, c) = layer.forward(np.ones((2, 1, 3), np.float32))
    assert y.dtype == h.dtype == c.dtype == np.float64


def test_load_torch_state_dict_errors():
    layer = lstm()
    sd = layer.torch_state_dict()
    bad = dict(sd)
    bad.pop("bias_hh_l0")
    with pytest.raises(ValueError, match=r"missing \['bias_hh_l0'\]"):
        layer.load_torch_state_dict(bad)
    bad = dict(sd)
    bad["weight_ih_l0"] = np.zeros((16, 5))
    with pytest.raises(ValueError, match=r"weight_ih_l0'\] must have shape \(16, 3\), got \(16, 5\)"):
        layer.load_torch_state_dict(bad)


@pytest.mark.parametrize("cls", [lstmlab.LSTM, lstmlab.GRU, lstmlab.RNN])
def test_load_torch_state_dict_refuses_what_is_not_a_mapping(cls):
    layer = cls(3, 4, rng=np.random.default_rng(0))
    arrays = list(layer.torch_state_dict().values())
    with pytest.raises(TypeError, match=r"state_dict must be a mapping of names to tensors or "
                                        r"arrays .*got list"):
        layer.load_torch_state_dict(arrays)


@pytest.mark.parametrize("cls", [lstmlab.LSTM, lstmlab.GRU, lstmlab.RNN])
def test_load_torch_state_dict_refuses_nan_and_values_float32_cannot_hold(cls):
    layer = cls(3, 4, rng=np.random.default_rng(0))
    before = {k: v.copy() for k, v in layer.params().items()}
    sd = {k: v.astype(np.float64) for k, v in layer.torch_state_dict().items()}
    sd["weight_hh_l0"][1, 2] = np.nan
    with pytest.raises(ValueError, match=r"state_dict\['weight_hh_l0'\] contains NaN or inf "
                                         r"\(first at index \(1, 2\)\)"):
        layer.load_torch_state_dict(sd)
    sd["weight_hh_l0"][1, 2] = 0.0
    sd["bias_ih_l0"][0] = 1e300
    with pytest.raises(ValueError, match=r"state_dict\['bias_ih_l0'\] holds 1e\+300 .*float32"):
        layer.load_torch_state_dict(sd)
    assert all(np.array_equal(v, before[k]) for k, v in layer.params().items())


@pytest.mark.parametrize("cls,name", [(cls, name) for cls in (lstmlab.LSTM, lstmlab.GRU, lstmlab.RNN)
                                      for name in ("bias", "batch_first", "bidirectional")]
                         + [(lstmlab.LSTM, "peephole"), (lstmlab.LSTM, "input_forget")])
@pytest.mark.parametrize("value", ["False", 0.2, None])
def test_switches_take_true_or_false_only(cls, name, value):
    # LSTM(3, 4, 2, 0.2) puts a dropout into bias; "False" from a config file is truthy
    with pytest.raises(TypeError, match=rf"{name} must be True or False, got {re.escape(repr(value))}"):
        cls(3, 4, **{name: value})
    assert getattr(cls(3, 4, **{name: np.True_}), name) is True


def test_an_lstm_only_option_given_to_the_gru_or_rnn_names_the_layer_and_the_lstm():
    for cls in (lstmlab.GRU, lstmlab.RNN):
        for option in ({"proj_size": 2}, {"layer_norm": True}, {"peephole": True}):
            name = next(iter(option))
            with pytest.raises(TypeError, match=rf"^{cls.__name__}\(\) got an unexpected "
                                                rf"keyword argument '{name}'; {name} is an "
                                                rf"option of lstmlab\.LSTM$"):
                cls(3, 4, **option)
        with pytest.raises(TypeError, match=rf"^{cls.__name__}\(\) got an unexpected keyword "
                                            rf"argument 'colour'$"):
            cls(3, 4, colour="red")


@pytest.mark.parametrize("backend", ["numpy", "auto"])
@pytest.mark.parametrize("cls", [lstmlab.LSTM, lstmlab.GRU, lstmlab.RNN])
def test_refilling_the_input_buffer_before_backward_keeps_the_gradients(cls, backend):
    rng = np.random.default_rng(0)
    for shape, kwargs in (((5, 2, 3), {}), ((5, 3), {}), ((1, 5, 3), {"batch_first": True})):
        # in training mode (eval mode does not copy x: inference keeps nothing)
        layer = cls(3, 4, rng=np.random.default_rng(0), **kwargs)
        layer.backend = backend
        x = rng.normal(size=shape).astype(np.float32)
        dy = rng.normal(size=shape[:-1] + (4,)).astype(np.float32)
        layer.forward(x.copy())
        dx, _ = layer.backward(dy)
        expected = {k: v.copy() for k, v in layer.grads().items()}
        buffer = x.copy()
        layer.forward(buffer)
        buffer[...] = rng.normal(size=shape)  # the next batch, read into the same buffer
        dx_again, _ = layer.backward(dy)
        np.testing.assert_array_equal(dx_again, dx)
        for k, v in layer.grads().items():
            np.testing.assert_array_equal(v, expected[k], err_msg=k)


@pytest.mark.parametrize("mode", ["eval", "False", None, 2])
def test_train_takes_a_bool_mode_only(mode):
    from lstmlab.layers.seqnet import SequenceNet, SequenceNetConfig
    net = SequenceNet(SequenceNetConfig(3, 1, hidden_size=4), rng=np.random.default_rng(0))
    net.eval()
    with pytest.raises(TypeError, match=rf"mode must be True or False, got {re.escape(repr(mode))}"):
        net.train(mode)
    assert not net.training and not net.rnn.training
    assert net.train(np.True_).rnn.training and not net.train(False).head.training


def test_forget_bias_without_a_bias_is_refused_rather_than_ignored():
    with pytest.raises(ValueError, match=r"forget_bias=1.0 is added to the forget gate's bias, "
                                         r"and a layer with bias=False has none"):
        lstm(bias=False, forget_bias=1.0)
    assert "b_l0" not in lstm(bias=False, forget_bias=0.0).params()


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("backend", ["numpy", "auto"])
@pytest.mark.parametrize("cls", [lstmlab.LSTM, lstmlab.GRU, lstmlab.RNN])
def test_a_copy_holds_the_weights_but_not_the_last_forward(cls, backend, mode):
    import copy
    import pickle
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8, 3)).astype(np.float32)
    dy = rng.normal(size=(50, 8, 4)).astype(np.float32)

    def layer():
        made = cls(3, 4, rng=np.random.default_rng(0))
        made.backend = backend
        return getattr(made, mode)()

    original = layer()
    original.forward(x)
    alone = len(pickle.dumps(layer()))
    copies = [copy.deepcopy(original), pickle.loads(pickle.dumps(original))]
    # the forward's cache (every step's gates in training; after an inference forward on the
    # compiled kernels, a closure that does not pickle) is not in the copy
    assert len(pickle.dumps(original)) < alone + 4096
    for p in original.params().values():
        p *= 2  # the original's next update: the copies keep their own weights
    reference = layer()
    reference.forward(x)
    dx = reference.backward(dy)[0]
    for c in copies:
        with pytest.raises(RuntimeError, match=r"backward called before forward"):
            c.backward(dy)
        c.forward(x)
        np.testing.assert_array_equal(c.backward(dy)[0], dx)
        for k, v in c.grads().items():
            np.testing.assert_array_equal(v, reference.grads()[k], err_msg=k)
