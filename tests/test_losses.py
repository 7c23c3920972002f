"""Losses against PyTorch float64 and finite differences, stability, and bad input."""

import numpy as np
import pytest

from lstmlab.training.losses import log_softmax, mse_loss, softmax, softmax_cross_entropy
from seq_helpers import numerical_gradient

torch = pytest.importorskip("torch")
F = torch.nn.functional

RTOL = 1e-12


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# -- softmax / log_softmax -----------------------------------------------------------------

@pytest.mark.parametrize("shape, axis", [((1, 1), -1), ((4, 7), -1), ((3, 2, 5), 1), ((6,), 0)])
def test_softmax_and_log_softmax_match_torch(shape, axis):
    x = np.random.default_rng([len(shape), *shape]).standard_normal(shape) * 3
    np.testing.assert_allclose(softmax(x, axis), torch.softmax(t64(x), axis).numpy(), rtol=RTOL)
    np.testing.assert_allclose(log_softmax(x, axis), torch.log_softmax(t64(x), axis).numpy(),
                               rtol=RTOL, atol=1e-15)


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1000.0, 0.0, -1000.0], [-1e308, -1e308, -1e308]])
    p = softmax(x)  # warnings are errors in this suite: an overflow would fail here
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(log_softmax(x)[0], [0.0, -1000.0, -2000.0])
    assert np.isfinite(log_softmax(x)).all()


# -- cross-entropy -----------------------------------------------------------------------

def torch_cross_entropy(logits, targets, reduction, ignore_index=-100):
    z = t64(logits.reshape(-1, logits.shape[-1]), grad=True)
    loss = F.cross_entropy(z, torch.tensor(targets.reshape(-1)), reduction=reduction,
                           ignore_index=ignore_index)
    loss.backward()
    return loss.item(), z.grad.numpy().reshape(logits.shape)


@pytest.mark.parametrize("lead", [(1,), (9,), (1, 1), (4, 3), (2, 3, 2)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_matches_torch(lead, reduction):
    rng = np.random.default_rng([len(lead), *lead, reduction == "sum"])
    V = int(rng.integers(2, 12))
    logits = rng.standard_normal(lead + (V,)) * 2
    targets = rng.integers(0, V, size=lead)
    loss, dlogits = softmax_cross_entropy(logits, targets, reduction=reduction)
    loss_t, dlogits_t = torch_cross_entropy(logits, targets, reduction)
    assert isinstance(loss, float)
    assert dlogits.shape == logits.shape
    np.testing.assert_allclose(loss, loss_t, rtol=RTOL)
    np.testing.assert_allclose(dlogits, dlogits_t, rtol=RTOL, atol=1e-16)


@pytest.mark.parametrize("ignore_index", [-100, 0, 3])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_ignore_index_matches_torch(ignore_index, reduction):
    rng = np.random.default_rng([ignore_index + 100, reduction == "sum"])
    T, B, V = 6, 4, 5
    logits = rng.standard_normal((T, B, V))
    targets = rng.integers(0, V, size=(T, B))
    targets[rng.random((T, B)) < 0.3] = ignore_index  # padding
    targets[0, 0] = 1  # at least one counted entry (1 is never an ignore_index here)
    loss, dlogits = softmax_cross_entropy(logits, targets, ignore_index=ignore_index,
                                          reduction=reduction)
    loss_t, dlogits_t = torch_cross_entropy(logits, targets, reduction, ignore_index)
    np.testing.assert_allclose(loss, loss_t, rtol=RTOL)
    np.testing.assert_allclose(dlogits, dlogits_t, rtol=RTOL, atol=1e-16)
    assert not dlogits[targets == ignore_index].any()  # padding gets exactly no gradient


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_mask_equals_ignore_index(reduction):
    rng = np.random.default_rng(11)
    T, B, V = 5, 3, 4
    logits = rng.standard_normal((T, B, V))
    targets = rng.integers(0, V, size=(T, B))
    lengths = np.array([5, 2, 1])
    mask = np.arange(T)[:, None] < lengths[None, :]  # (T, B) time-major padding mask
    loss, dlogits = softmax_cross_entropy(logits, targets, mask=mask.astype(np.float32),
                                          reduction=reduction)
    loss_t, dlogits_t = torch_cross_entropy(logits, np.where(mask, targets, -100), reduction)
    np.testing.assert_allclose(loss, loss_t, rtol=RTOL)
    np.testing.assert_allclose(dlogits, dlogits_t, rtol=RTOL, atol=1e-16)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_finite_differences(reduction):
    rng = np.random.default_rng(12)
    logits = rng.standard_normal((3, 2, 5))
    targets = rng.integers(0, 5, size=(3, 2))
    targets[1, 1] = -1
    mask = np.ones((3, 2), bool)
    mask[2, 0] = False

    def loss():
        return softmax_cross_entropy(logits, targets, ignore_index=-1, mask=mask,
                                     reduction=reduction)[0]

    _, dlogits = softmax_cross_entropy(logits, targets, ignore_index=-1, mask=mask,
                                       reduction=reduction)
    np.testing.assert_allclose(dlogits, numerical_gradient(loss, logits), rtol=1e-7, atol=1e-9)


def test_cross_entropy_of_uniform_logits_is_log_v():
    V = 65  # the first loss of a fresh character model: -log(1/V) per step
    loss, _ = softmax_cross_entropy(np.zeros((10, V)), np.arange(10))
    np.testing.assert_allclose(loss, np.log(V), rtol=1e-15)


def test_cross_entropy_is_stable_and_keeps_float32():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], dtype=np.float32)
    loss, dlogits = softmax_cross_entropy(logits, np.array([0, 0]))
    assert dlogits.dtype == np.float32
    np.testing.assert_allclose(loss, 1e4 / 2, rtol=1e-6)  # row 0 costs 0, row 1 costs 1e4
    np.testing.assert_allclose(dlogits, [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-6)


def test_cross_entropy_float32_is_close_to_float64():
    rng = np.random.default_rng(13)
    logits = rng.standard_normal((50, 30)) * 4
    targets = rng.integers(0, 30, size=50)
    loss64, d64 = softmax_cross_entropy(logits, targets)
    loss32, d32 = softmax_cross_entropy(logits.astype(np.float32), targets)
    np.testing.assert_allclose(loss32, loss64, rtol=1e-6)
    np.testing.assert_allclose(d32, d64, atol=1e-7)


def test_cross_entropy_accepts_any_target_value_at_ignored_positions():
    logits = np.zeros((3, 4))
    loss, _ = softmax_cross_entropy(logits, np.array([1, 99, -7]), mask=np.array([1, 0, 0]))
    np.testing.assert_allclose(loss, np.log(4))


# -- MSE ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1,), (7,), (4, 1), (3, 2, 5)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_matches_torch(shape, reduction):
    rng = np.random.default_rng([len(shape), *shape, reduction == "sum"])
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    loss, dpred = mse_loss(pred, target, reduction)
    p = t64(pred, grad=True)
    loss_t = F.mse_loss(p, t64(target), reduction=reduction)
    loss_t.backward()
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, loss_t.item(), rtol=RTOL)
    np.testing.assert_allclose(dpred, p.grad.numpy(), rtol=RTOL)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_finite_differences(reduction):
    rng = np.random.default_rng(14)
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    _, dpred = mse_loss(pred, target, reduction)
    numeric = numerical_gradient(lambda: mse_loss(pred, target, reduction)[0], pred)
    np.testing.assert_allclose(dpred, numeric, rtol=1e-7, atol=1e-9)


def test_mse_does_not_modify_its_inputs():
    pred, target = np.ones((2, 2)), np.zeros((2, 2))
    mse_loss(pred, target)
    assert (pred == 1).all() and (target == 0).all()


# -- bad input ---------------------------------------------------------------------------

def test_cross_entropy_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"targets must have shape \(4,\).*got \(5,\)"):
        softmax_cross_entropy(np.zeros((4, 3)), np.zeros(5, dtype=int))


@pytest.mark.parametrize("bad", [3, -1])
def test_cross_entropy_rejects_targets_out_of_range(bad):
    with pytest.raises(ValueError, match=rf"targets must lie in \[0, 2\].*got {bad}"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, bad]))


def test_cross_entropy_rejects_float_targets():
    with pytest.raises(TypeError, match="targets must be an integer array"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))


def test_cross_entropy_rejects_all_ignored():
    with pytest.raises(ValueError, match="every position is ignored"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([-100, -100]), ignore_index=-100)
    with pytest.raises(ValueError, match="every position is ignored"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), mask=np.zeros(2),
                              reduction="sum")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_names_logits_of_no_positions(reduction):
    # not "every position is ignored (by ignore_index or mask)" when neither was given
    with pytest.raises(ValueError, match=r"logits has no positions \(shape \(0, 4, 3\)\): the "
                                         r"cross-entropy of no targets is undefined"):
        softmax_cross_entropy(np.zeros((0, 4, 3)), np.zeros((0, 4), np.int64), reduction=reduction)


def test_cross_entropy_rejects_bad_mask():
    with pytest.raises(ValueError, match=r"mask must have the shape of targets \(2,\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), mask=np.ones(3))
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), mask=np.array([0.5, 1.0]))


def test_cross_entropy_rejects_bad_logits_and_options():
    with pytest.raises(ValueError, match="logits contains NaN"):
        softmax_cross_entropy(np.array([[0.0, np.nan]]), np.array([0]))
    with pytest.raises(TypeError, match="logits must be a real floating-point array"):
        softmax_cross_entropy(np.zeros((2, 3), dtype=int), np.array([0, 1]))
    with pytest.raises(ValueError, match="logits must have at least 1 dimension"):
        softmax_cross_entropy(np.float64(1.0), np.int64(0))
    with pytest.raises(ValueError, match="reduction must be one of"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), reduction="none")
    with pytest.raises(TypeError, match="ignore_index must be an integer or None"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), ignore_index=0.5)


def test_mse_rejects_bad_input():
    with pytest.raises(ValueError, match=r"target must have the shape of pred \(3, 1\), got \(3,"):
        mse_loss(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="pred is empty"):
        mse_loss(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="target contains NaN"):
        mse_loss(np.zeros(2), np.array([0.0, np.inf]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        mse_loss(np.zeros(2), np.zeros(2), reduction="max")


def test_softmax_rejects_bad_axis():
    with pytest.raises(ValueError, match=r"axis must be an integer in \[-2, 1\]"):
        softmax(np.zeros((2, 3)), axis=2)


def test_mse_of_zero_dimensional_values():
    loss, dpred = mse_loss(np.float64(3.0), np.float64(1.0))
    assert loss == 4.0 and isinstance(dpred, np.ndarray) and dpred.shape == () and dpred == 4.0


def test_mse_of_float32_errors_whose_squares_leave_float32():
    # errors of 1e20 in float32 squared to inf in float32: the loss was inf (a "diverged"
    # run) though its value, 1e40, is an ordinary float
    loss, dpred = mse_loss(np.zeros(4, np.float32), np.full(4, 1e20, np.float32))
    assert loss == pytest.approx(1e40, rel=1e-6)
    assert dpred.dtype == np.float32 and np.isfinite(dpred).all()


def test_softmax_and_cross_entropy_name_an_axis_of_no_classes():
    no_classes = r"has no classes along axis {}: a softmax needs at least one"
    with pytest.raises(ValueError, match=r"x of shape \(3, 0\) " + no_classes.format(-1)):
        softmax(np.zeros((3, 0)))
    with pytest.raises(ValueError, match=r"x of shape \(0, 3\) " + no_classes.format(0)):
        log_softmax(np.zeros((0, 3)), axis=0)
    with pytest.raises(ValueError, match=r"logits of shape \(2, 0\) " + no_classes.format(-1)):
        softmax_cross_entropy(np.zeros((2, 0)), np.array([0, 0]))


@pytest.mark.parametrize("pred, target, message", [
    (np.nan, 1.0, r"^pred is nan$"),
    (1.0, -np.inf, r"^target is -inf$"),
    (np.float32(1.0), 1e300, r"^target holds 1e\+300, beyond the range of float32"),
])
def test_a_zero_dimensional_value_that_is_not_finite_is_named(pred, target, message):
    with pytest.raises(ValueError, match=message):  # not an IndexError from the check
        mse_loss(np.asarray(pred), np.asarray(target))
