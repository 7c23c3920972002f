"""Embedding, Linear and Dropout against PyTorch float64, by finite differences, and on bad input.

Every backward is checked with a random upstream gradient ``dout`` (loss = Σ y ⊙ dout),
never with ones, so a transposed or mis-summed gradient cannot pass by symmetry.
"""

import numpy as np
import pytest

from lstmlab import LSTM
from lstmlab.layers.basic import Dropout, Embedding, Linear

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL = 1e-12
LEAD_SHAPES = [(), (1,), (5,), (1, 1), (3, 2), (4, 1, 3)]


def assert_close(actual, expected, rtol=RTOL, atol=1e-14):
    expected = expected.detach().numpy() if hasattr(expected, "detach") else expected
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# -- Linear ------------------------------------------------------------------------------

@pytest.mark.parametrize("lead", LEAD_SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(lead, bias):
    rng = np.random.default_rng([len(lead), *lead, bias])
    D, O = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    layer = Linear(D, O, bias=bias, dtype=np.float64, rng=rng)
    x = rng.standard_normal(lead + (D,))
    dout = rng.standard_normal(lead + (O,))

    y = layer.forward(x)
    dx = layer.backward(dout)

    W = t64(layer.weight, grad=True)
    b = t64(layer.bias, grad=True) if bias else None
    xt = t64(x, grad=True)
    yt = F.linear(xt, W, b)
    (yt * t64(dout)).sum().backward()
    assert y.shape == lead + (O,) and dx.shape == x.shape
    assert_close(y, yt)
    assert_close(dx, xt.grad)
    assert_close(layer.grads()["weight"], W.grad)
    if bias:
        assert_close(layer.grads()["bias"], b.grad)
    else:
        assert set(layer.params()) == {"weight"}


def test_linear_finite_differences():
    rng = np.random.default_rng(1)
    layer = Linear(4, 3, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 5, 4))
    dout = rng.standard_normal((2, 5, 3))
    layer.forward(x)
    dx = layer.backward(dout)
    analytic = {"x": dx, **{k: v.copy() for k, v in layer.grads().items()}}
    targets = {"x": x, **layer.params()}
    eps = 1e-6
    for name, arr in targets.items():
        numeric = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            up = np.sum(layer.forward(x) * dout)
            arr[idx] = old - eps
            down = np.sum(layer.forward(x) * dout)
            arr[idx] = old
            numeric[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-7, atol=1e-8, err_msg=name)


def test_linear_init_is_torch_layout_and_bounds():
    layer = Linear(16, 5, rng=np.random.default_rng(0))
    assert layer.weight.shape == (5, 16) and layer.bias.shape == (5,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert np.abs(layer.weight).max() <= 0.25 and np.abs(layer.bias).max() <= 0.25
    assert layer.weight.std() > 0.1  # U(±1/4) has std 0.144: really spread out, not tiny
    again = Linear(16, 5, rng=np.random.default_rng(0))
    assert np.array_equal(layer.weight, again.weight) and np.array_equal(layer.bias, again.bias)


def test_linear_grads_are_overwritten_and_live():
    rng = np.random.default_rng(2)
    layer = Linear(3, 2, dtype=np.float64, rng=rng)
    gW = layer.grads()["weight"]
    x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    layer.forward(x)
    layer.backward(dout)
    first = gW.copy()
    layer.backward(dout)
    assert layer.grads()["weight"] is gW  # same array the optimizer holds
    np.testing.assert_array_equal(gW, first)  # overwritten, not doubled


def test_linear_float32_input_conversion():
    layer = Linear(3, 2, rng=np.random.default_rng(3))
    y = layer.forward(np.ones((2, 3), dtype=np.float64))
    assert y.dtype == np.float32
    assert layer.backward(np.ones((2, 2))).dtype == np.float32


# -- Embedding ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1,), (7,), (1, 1), (4, 3), (2, 3, 5)])
def test_embedding_matches_torch(shape):
    rng = np.random.default_rng([len(shape), *shape])
    V, E = int(rng.integers(2, 9)), int(rng.integers(1, 6))
    layer = Embedding(V, E, dtype=np.float64, rng=rng)
    tokens = rng.integers(0, V, size=shape)  # repeats guaranteed for the larger shapes
    dout = rng.standard_normal(shape + (E,))

    y = layer.forward(tokens)
    assert layer.backward(dout) is None

    W = t64(layer.weight, grad=True)
    yt = F.embedding(torch.tensor(tokens), W)
    (yt * t64(dout)).sum().backward()
    assert y.shape == shape + (E,)
    assert_close(y, yt)
    assert_close(layer.grads()["weight"], W.grad)


def test_embedding_backward_equals_add_at_and_overwrites():
    rng = np.random.default_rng(4)
    layer = Embedding(50, 8, rng=rng)  # float32
    tokens = rng.integers(0, 50, size=(30, 4))
    dout = rng.standard_normal((30, 4, 8)).astype(np.float32)
    expected = np.zeros((50, 8), np.float32)
    np.add.at(expected, tokens, dout)
    layer.forward(tokens)
    layer.backward(dout)
    layer.backward(dout)  # a second call must not accumulate
    np.testing.assert_allclose(layer.grads()["weight"], expected, rtol=1e-5, atol=1e-5)
    assert layer.grads()["weight"].dtype == np.float32


def test_embedding_init_standard_normal():
    layer = Embedding(200, 50, rng=np.random.default_rng(5))
    assert layer.weight.shape == (200, 50) and layer.weight.dtype == np.float32
    # 10 000 draws: the sample mean and std are within 0.01 of 0 and 1 at one sigma
    assert abs(layer.weight.mean()) < 0.05 and abs(layer.weight.std() - 1) < 0.05


def test_embedding_empty_tokens():
    layer = Embedding(4, 3, dtype=np.float64, rng=np.random.default_rng(6))
    y = layer.forward(np.zeros((0, 2), dtype=np.int64))
    assert y.shape == (0, 2, 3)
    layer.backward(np.zeros((0, 2, 3)))
    assert not layer.grads()["weight"].any()


# -- Dropout -----------------------------------------------------------------------------

def test_dropout_eval_is_identity_like_torch():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 5))
    dout = rng.standard_normal((3, 4, 5))
    layer = Dropout(0.5, rng=rng).eval()
    y = layer.forward(x)
    dx = layer.backward(dout)
    xt = t64(x, grad=True)
    yt = F.dropout(xt, p=0.5, training=False)
    (yt * t64(dout)).sum().backward()
    assert_close(y, yt)
    assert_close(dx, xt.grad)


def test_dropout_train_mask_and_gradient_match_torch_given_mask():
    rng = np.random.default_rng(8)
    p = 0.3
    x = rng.standard_normal((40, 50)) + 3.0  # away from 0 so y / x recovers the mask
    dout = rng.standard_normal((40, 50))
    layer = Dropout(p, rng=rng)
    y = layer.forward(x)
    dx = layer.backward(dout)
    mask = y / x
    scale = 1 / (1 - p)
    assert np.all(np.isclose(mask, 0) | np.isclose(mask, scale))
    kept = np.isclose(mask, scale).mean()
    assert abs(kept - (1 - p)) < 0.05  # 2000 Bernoulli draws: sd of the mean ≈ 0.01
    # torch with the same mask (its own dropout draws from its own generator)
    xt = t64(x, grad=True)
    (xt * t64(np.where(np.isclose(mask, 0), 0.0, scale)) * t64(dout)).sum().backward()
    assert_close(dx, xt.grad)


def test_dropout_randomness_comes_from_the_generator():
    x = np.ones((10, 10), np.float32)
    a = Dropout(0.5, rng=np.random.default_rng(9)).forward(x)
    b = Dropout(0.5, rng=np.random.default_rng(9)).forward(x)
    c = Dropout(0.5, rng=np.random.default_rng(10)).forward(x)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dropout_p_zero_is_identity_in_training():
    x = np.arange(6.0).reshape(2, 3)
    layer = Dropout(0.0, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)


# -- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("layer", [Linear(2, 2), Embedding(3, 2), Dropout(0.5)],
                         ids=["Linear", "Embedding", "Dropout"])
def test_backward_before_forward(layer):
    with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}\.backward called before"):
        layer.backward(np.zeros((1, 2)))


def test_embedding_rejects_float_tokens():
    with pytest.raises(TypeError, match="tokens must be an integer array.*float64"):
        Embedding(5, 2).forward(np.array([0.0, 1.0]))


@pytest.mark.parametrize("bad", [5, -1])
def test_embedding_rejects_out_of_range_tokens(bad):
    with pytest.raises(ValueError, match=rf"tokens must lie in \[0, 4\].*got {bad}"):
        Embedding(5, 2).forward(np.array([[0, bad], [1, 2]]))


def test_embedding_rejects_bad_dout_shape():
    layer = Embedding(5, 2)
    layer.forward(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"dout .* must have shape \(3, 2\)"):
        layer.backward(np.zeros((3, 3)))


def test_linear_rejects_wrong_input_width():
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 3\).*got \(2, 4\)"):
        Linear(3, 2).forward(np.zeros((2, 4)))


def test_linear_rejects_scalar_and_nan_and_int_input():
    layer = Linear(3, 2)
    with pytest.raises(ValueError, match="x must have shape"):
        layer.forward(np.float32(1.0))
    with pytest.raises(ValueError, match="x contains NaN"):
        layer.forward(np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(TypeError, match="x must be a real floating-point array"):
        layer.forward(np.zeros((1, 3), dtype=np.int64))


def test_linear_rejects_bad_dout_shape():
    layer = Linear(3, 2)
    layer.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"dout .* must have shape \(4, 2\)"):
        layer.backward(np.zeros((4, 3)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(in_features=0, out_features=2), "in_features must be a positive integer"),
    (dict(in_features=2, out_features=2.5), "out_features must be a positive integer"),
    (dict(in_features=2, out_features=2, dtype=np.float16), "dtype must be float32 or float64"),
])
def test_linear_rejects_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Linear(**kwargs)


def test_layers_reject_a_non_generator_rng():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        Linear(2, 2, rng=0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        Embedding(2, 2, rng=np.random.RandomState(0))
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        Dropout(0.1, rng=1)


@pytest.mark.parametrize("p", [1.0, -0.1, "0.5"])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\)"):
        Dropout(p)


def test_dropout_rejects_non_float_input():
    with pytest.raises(TypeError, match="x must be a real floating-point array"):
        Dropout(0.5).forward(np.zeros(3, dtype=np.int32))
    with pytest.raises(ValueError, match="x's dtype must be float32 or float64"):
        Dropout(0.5).forward(np.zeros(3, dtype=np.float16))


def test_zero_dimensional_inputs_keep_their_shape():
    layer = Linear(1, 2, dtype=np.float64, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 1\) .*got \(\)"):
        layer.forward(np.float64(1.0))
    drop = Dropout(0.5, rng=np.random.default_rng(0))
    assert drop.forward(np.float64(2.0)).shape == ()
    assert drop.backward(np.float64(1.0)).shape == ()
    emb = Embedding(3, 2, dtype=np.float64, rng=np.random.default_rng(0))
    assert emb.forward(np.int64(1)).shape == (2,)
    emb.backward(np.ones(2))
    np.testing.assert_array_equal(emb.grads()["weight"], [[0, 0], [1, 1], [0, 0]])


@pytest.mark.parametrize("value", ["False", 0.5, None])
def test_linear_bias_takes_true_or_false_only(value):
    with pytest.raises(TypeError, match=rf"bias must be True or False, got {value!r}"):
        Linear(3, 4, bias=value)
    assert Linear(3, 4, bias=np.False_).bias is None


@pytest.mark.parametrize("layer,name,value", [
    (lambda: Linear(3, 2, rng=np.random.default_rng(0)), "bias", np.nan),
    (lambda: Embedding(5, 2, rng=np.random.default_rng(0)), "weight", -np.inf),
    (lambda: LSTM(3, 4, rng=np.random.default_rng(0)), "Wh_l0", np.inf),
    (lambda: LSTM(3, 4, rng=np.random.default_rng(0)), "b_l0", 1e300),  # beyond float32
])
def test_load_params_refuses_non_finite_values_naming_the_parameter(layer, name, value):
    layer = layer()
    before = {k: v.copy() for k, v in layer.params().items()}
    values = {k: v.astype(np.float64) for k, v in before.items()}
    for v in values.values():
        v.flat[-1] = 0.5  # a change that a refused load must not make either
    values[name].flat[1] = value
    with pytest.raises(ValueError, match=rf"parameter '{name}' (contains NaN or inf|holds 1e\+300)"):
        layer.load_params(values)
    for k, v in layer.params().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


@pytest.mark.parametrize("values", [None, [np.zeros((3, 2))], np.zeros(3)])
def test_load_params_names_values_that_are_no_mapping(values):
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"values must be a mapping of parameter names to arrays "
                                        r"\(what params\(\) returns\), got"):
        layer.load_params(values)
