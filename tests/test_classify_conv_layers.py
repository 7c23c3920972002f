"""Conv1d, BatchNorm1d, GlobalAvgPool and ReLU against PyTorch float64 (random upstream
gradients, non-zero biases, randomized shapes including T = 1 and B = 1), and on bad input."""

import numpy as np
import pytest

from lstmlab.layers.conv import BatchNorm1d, Conv1d, GlobalAvgPool, ReLU

torch = pytest.importorskip("torch")

SHAPES = [(1, 1), (1, 3), (5, 1), (7, 4), (12, 2)]  # (T, B)


def close(actual, expected):
    expected = expected.detach().numpy() if hasattr(expected, "detach") else expected
    np.testing.assert_allclose(actual, expected, rtol=1e-11, atol=1e-13)


def to_torch(x):  # (T, B, C) -> (B, C, T), a leaf that wants a gradient
    return torch.tensor(np.ascontiguousarray(x.transpose(1, 2, 0)), requires_grad=True)


def from_torch(t):  # (B, C, T) -> (T, B, C)
    return t.detach().numpy().transpose(2, 0, 1)


def copy_to_torch(layer, ref):
    """``ref``'s weight and bias set to ``layer``'s."""
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.weight))
        ref.bias.copy_(torch.from_numpy(layer.bias))


def check_against_torch(layer, ref, x, dout, grads: bool = True):
    """``layer``'s output for ``x`` (T, B, C) and its input gradient for ``dout`` are
    ``ref``'s; with ``grads``, so are its weight and bias gradients."""
    xt = to_torch(x)
    yt = ref(xt)
    yt.backward(torch.from_numpy(np.ascontiguousarray(dout.transpose(1, 2, 0))))
    close(layer.forward(x), from_torch(yt))
    close(layer.backward(dout), from_torch(xt.grad))
    if grads:
        close(layer.grads()["weight"], ref.weight.grad)
        close(layer.grads()["bias"], ref.bias.grad)


@pytest.mark.parametrize("T,B", SHAPES)
@pytest.mark.parametrize("k", [1, 2, 3, 8])
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch pads a copy
def test_conv1d_matches_torch(T, B, k):
    rng = np.random.default_rng([T, B, k])
    C, O = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    layer = Conv1d(C, O, k, dtype=np.float64, rng=rng)
    layer.bias[...] = rng.standard_normal(O)
    ref = torch.nn.Conv1d(C, O, k, padding="same").double()
    copy_to_torch(layer, ref)
    x = rng.standard_normal((T, B, C))
    check_against_torch(layer, ref, x, rng.standard_normal((T, B, O)))


@pytest.mark.parametrize("T,B", [(1, 2), (2, 1), (5, 1), (7, 4), (12, 2)])
def test_batchnorm_matches_torch_in_training_and_evaluation(T, B):
    rng = np.random.default_rng([T, B, 7])
    C = int(rng.integers(1, 5))
    layer = BatchNorm1d(C, dtype=np.float64)
    layer.weight[...] = rng.normal(1, 0.5, C)
    layer.bias[...] = rng.standard_normal(C)
    ref = torch.nn.BatchNorm1d(C).double()
    copy_to_torch(layer, ref)
    for step in range(3):  # running statistics accumulate the same way over batches
        x = rng.normal(step, 2.0, (T, B, C))
        check_against_torch(layer, ref, x, rng.standard_normal((T, B, C)))
        ref.weight.grad = ref.bias.grad = None
    close(layer.running_mean, ref.running_mean)
    close(layer.running_var, ref.running_var)
    assert not layer.grads()["running_mean"].any() and not layer.grads()["running_var"].any()
    layer.eval()
    ref.eval()
    x = rng.standard_normal((T, B, C))
    check_against_torch(layer, ref, x, rng.standard_normal((T, B, C)), grads=False)


@pytest.mark.parametrize("T,B", SHAPES)
def test_pool_and_relu_match_torch_with_lengths(T, B):
    rng = np.random.default_rng([T, B, 3])
    C = 3
    lengths = rng.integers(1, T + 1, size=B)
    x = rng.standard_normal((T, B, C))
    dout = rng.standard_normal((B, C))
    relu, pool = ReLU(), GlobalAvgPool()
    y = pool.forward(relu.forward(x), lengths)
    dx = relu.backward(pool.backward(dout))
    xt = torch.tensor(x, requires_grad=True)
    mask = torch.tensor((np.arange(T)[:, None] < lengths[None, :])[..., None].astype(float))
    yt = (torch.relu(xt) * mask).sum(0) / torch.tensor(lengths[:, None].astype(float))
    yt.backward(torch.tensor(dout))
    close(y, yt)
    close(dx, xt.grad)


def test_bad_input_is_named():
    conv = Conv1d(2, 3, 3, dtype=np.float64, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"x must have shape \(T, B, 2\)"):
        conv.forward(np.zeros((4, 1, 3)))
    with pytest.raises(RuntimeError, match="before Conv1d.forward"):
        conv.backward(np.zeros((4, 1, 3)))
    with pytest.raises(ValueError, match="kernel_size"):
        Conv1d(2, 3, 0)
    bn = BatchNorm1d(2, dtype=np.float64)
    with pytest.raises(ValueError, match=r"T·B >= 2"):
        bn.forward(np.zeros((1, 1, 2)))
    with pytest.raises(ValueError, match="lengths must lie in"):
        GlobalAvgPool().forward(np.zeros((3, 2, 1)), np.array([1, 4]))
