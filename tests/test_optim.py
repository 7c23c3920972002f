"""Optimizers, clipping and schedules against torch.optim float64, checkpoints, and bad input."""

import io
import json
import math

import numpy as np
import pytest

from lstmlab.layers.basic import Linear
from lstmlab.training.optim import (SGD, Adam, AdamW, Constant, Cosine, StepDecay, Warmup,
                                    clip_grad_norm)

torch = pytest.importorskip("torch")

SHAPES = {"lstm.Wx": (3, 8), "lstm.b": (8,), "head.weight": (2, 5), "scale": ()}
STEPS = 20


def random_params(rng):
    return {name: rng.standard_normal(shape) for name, shape in SHAPES.items()}


def random_grads(rng, steps=STEPS):
    # Gradients of varied scale, as a real run has, so the adaptive terms matter.
    return [{name: rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 1)
             for name, shape in SHAPES.items()} for _ in range(steps)]


def max_rel_err(ours: dict, theirs: dict) -> float:
    return max(float(np.max(np.abs(ours[k] - theirs[k]) / (np.abs(theirs[k]) + 1e-300)))
               for k in ours)


def run_torch(torch_cls, params, grads_seq, lrs=None, **kwargs):
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    opt = torch_cls(list(tensors.values()), **kwargs)
    for i, grads in enumerate(grads_seq):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[i]
        for k, t in tensors.items():
            t.grad = torch.tensor(grads[k])
        opt.step()
    return {k: t.detach().numpy() for k, t in tensors.items()}


CONFIGS = [
    (SGD, torch.optim.SGD, dict(lr=0.05)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True)),
    (SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True)),
    (SGD, torch.optim.SGD, dict(lr=0.05, weight_decay=0.1)),
    (Adam, torch.optim.Adam, dict()),
    (Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    (Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01)),
    (AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
]
IDS = [f"{ours.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
       for ours, _, kw in CONFIGS]


@pytest.mark.parametrize("case", range(len(CONFIGS)), ids=IDS)
def test_optimizer_matches_torch(case):
    ours_cls, torch_cls, kwargs = CONFIGS[case]
    rng = np.random.default_rng(case)
    params = random_params(rng)
    grads_seq = random_grads(rng)
    expected = run_torch(torch_cls, params, grads_seq, foreach=False, **kwargs)

    ours = {k: v.copy() for k, v in params.items()}
    live = dict(ours)
    opt = ours_cls(ours, **kwargs)
    for grads in grads_seq:
        opt.step(grads)
    assert all(ours[k] is live[k] for k in ours)  # updated in place
    assert opt.step_count == STEPS
    assert max_rel_err(ours, expected) <= 1e-12


@pytest.mark.parametrize("ours_cls, torch_cls, kwargs", [CONFIGS[3], CONFIGS[8], CONFIGS[9]],
                         ids=[IDS[3], IDS[8], IDS[9]])
def test_optimizer_with_a_schedule_matches_torch(ours_cls, torch_cls, kwargs):
    rng = np.random.default_rng(20)
    params = random_params(rng)
    grads_seq = random_grads(rng)
    schedule = Warmup(Cosine(kwargs["lr"], total_steps=12, min_lr=1e-4), warmup_steps=5)
    lrs = [schedule(k) for k in range(STEPS)]
    expected = run_torch(torch_cls, params, grads_seq, lrs=lrs, foreach=False, **kwargs)
    opt = ours_cls(params, **kwargs)
    for k, grads in enumerate(grads_seq):
        opt.lr = schedule(k)
        opt.step(grads)
    assert max_rel_err(params, expected) <= 1e-12


def test_step_does_not_modify_grads():
    rng = np.random.default_rng(21)
    params = random_params(rng)
    grads = random_grads(rng, 1)[0]
    before = {k: v.copy() for k, v in grads.items()}
    for opt in (SGD(params, 0.1, momentum=0.9, weight_decay=0.1), Adam(params, weight_decay=0.1)):
        opt.step(grads)
        opt.step(grads)
        assert all(np.array_equal(grads[k], before[k]) for k in grads)


def test_optimizer_works_on_a_layer_in_float32():
    rng = np.random.default_rng(22)
    layer = Linear(4, 3, rng=rng)
    opt = Adam(layer.params(), lr=0.1)
    w0 = layer.weight.copy()
    layer.forward(rng.standard_normal((5, 4)))
    layer.backward(rng.standard_normal((5, 3)))
    opt.step(layer.grads())
    assert layer.weight.dtype == np.float32 and opt.state["exp_avg"]["weight"].dtype == np.float32
    assert not np.array_equal(layer.weight, w0)


# -- checkpoints -------------------------------------------------------------------------

def through_disk(meta, arrays):
    """What a checkpoint does: JSON text and an .npz without pickle."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as npz:
        loaded = {k: npz[k] for k in npz.files}
    return json.loads(json.dumps(meta)), loaded


@pytest.mark.parametrize("ours_cls, kwargs", [
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (SGD, dict(lr=0.05)),
    (Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    (AdamW, dict(lr=0.01)),
])
@pytest.mark.parametrize("split", [0, 7])
def test_state_dict_round_trip_continues_identically(ours_cls, kwargs, split):
    rng = np.random.default_rng(23)
    params = random_params(rng)
    grads_seq = random_grads(rng)

    reference = {k: v.copy() for k, v in params.items()}
    opt = ours_cls(reference, **kwargs)
    for grads in grads_seq:
        opt.step(grads)

    first = {k: v.copy() for k, v in params.items()}
    opt_a = ours_cls(first, **kwargs)
    for grads in grads_seq[:split]:
        opt_a.step(grads)
    opt_a.lr = opt_a.lr  # a settable lr survives the trip too
    meta, arrays = through_disk(*opt_a.state_dict())

    resumed = {k: v.copy() for k, v in first.items()}  # the parameters' checkpoint
    opt_b = ours_cls(resumed, lr=123.0)  # different hyperparameters: the checkpoint wins
    opt_b.load_state_dict(meta, arrays)
    assert opt_b.step_count == split and opt_b.lr == kwargs["lr"]
    assert opt_b.hyperparameters() == opt_a.hyperparameters()
    for grads in grads_seq[split:]:
        opt_b.step(grads)
    for k in reference:
        np.testing.assert_array_equal(resumed[k], reference[k])


def test_state_dict_returns_copies():
    params = {"w": np.ones(3)}
    opt = SGD(params, 0.1, momentum=0.9)
    opt.step({"w": np.ones(3)})
    _, arrays = opt.state_dict()
    arrays["momentum_buffer/w"][:] = 99
    assert (opt.state["momentum_buffer"]["w"] == 1).all()


def test_load_state_dict_rejects_mismatches_and_changes_nothing():
    rng = np.random.default_rng(24)
    params = random_params(rng)
    opt = Adam(params, lr=0.01)
    opt.step(random_grads(rng, 1)[0])
    meta, arrays = opt.state_dict()

    target = Adam({k: v.copy() for k, v in params.items()}, lr=0.5)
    with pytest.raises(ValueError, match="optimizer state is for 'Adam', this optimizer is 'SGD'"):
        SGD(dict(params), lr=0.1).load_state_dict(meta, arrays)
    with pytest.raises(ValueError, match="optimizer state is for parameters"):
        Adam({"other": np.zeros(2)}).load_state_dict(meta, arrays)
    missing = {k: v for k, v in arrays.items() if not k.startswith("exp_avg_sq/")}
    with pytest.raises(ValueError, match=r"arrays do not match: missing \['exp_avg_sq/"):
        target.load_state_dict(meta, missing)
    bad_shape = dict(arrays, **{"exp_avg/lstm.b": np.zeros(3)})
    with pytest.raises(ValueError, match=r"state 'exp_avg/lstm.b' must have shape \(8,\)"):
        target.load_state_dict(meta, bad_shape)
    nan = dict(arrays, **{"exp_avg/lstm.b": np.full(8, np.nan)})
    with pytest.raises(ValueError, match="contains NaN"):
        target.load_state_dict(meta, nan)
    bad_hp = dict(meta, hyperparameters=dict(meta["hyperparameters"], betas=[0.9, 1.5]))
    with pytest.raises(ValueError, match=r"betas\[1\] must be a number in \[0, 1\)"):
        target.load_state_dict(bad_hp, arrays)
    unknown = dict(meta, hyperparameters=dict(meta["hyperparameters"], momentum=0.9))
    with pytest.raises(ValueError, match="hyperparameters .* that Adam does not take"):
        target.load_state_dict(unknown, arrays)
    assert target.lr == 0.5 and target.step_count == 0 and target.state == {}


@pytest.mark.parametrize("arrays, error, message", [
    # set() of them failed with "'NoneType' object is not iterable", "unhashable type"
    (None, TypeError, r"^arrays must be a mapping of buffer names to arrays \(what state_dict "
                      r"returns\), got NoneType$"),
    ([np.zeros(8)], TypeError, r"^arrays must be a mapping .* got list$"),
    # NumPy's "inhomogeneous shape", naming no buffer
    ({"exp_avg/lstm.b": [[0.0], [0.0, 1.0]]}, ValueError,
     r"^optimizer state 'exp_avg/lstm.b' must be an array or equally long nested lists"),
])
def test_load_state_dict_names_arrays_it_cannot_read(arrays, error, message):
    rng = np.random.default_rng(24)
    params = random_params(rng)
    opt = Adam(params, lr=0.01)
    opt.step(random_grads(rng, 1)[0])
    meta, good = opt.state_dict()
    if isinstance(arrays, dict):
        arrays = dict(good, **arrays)
    target = Adam({k: v.copy() for k, v in params.items()}, lr=0.5)
    with pytest.raises(error, match=message):
        target.load_state_dict(meta, arrays)
    assert target.step_count == 0 and target.state == {}


# -- clipping ----------------------------------------------------------------------------

@pytest.mark.parametrize("max_norm", [0.1, 1.0, 1e6])
def test_clip_grad_norm_matches_torch(max_norm):
    rng = np.random.default_rng(25)
    grads = {name: rng.standard_normal(shape) for name, shape in SHAPES.items()}
    tensors = [torch.zeros(shape, dtype=torch.float64, requires_grad=True)
               for shape in SHAPES.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g)
    expected_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm).item()
    live = dict(grads)
    norm = clip_grad_norm(grads, max_norm)
    assert isinstance(norm, float)
    np.testing.assert_allclose(norm, expected_norm, rtol=1e-14)
    for t, (k, g) in zip(tensors, grads.items()):
        assert g is live[k]  # in place
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-13)
    total_after = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    assert total_after <= max_norm * (1 + 1e-12)


def test_clip_grad_norm_float32_and_empty():
    g = {"a": np.full(4, 3.0, np.float32)}
    assert clip_grad_norm(g, 1.0) == pytest.approx(6.0)
    assert g["a"].dtype == np.float32
    np.testing.assert_allclose(g["a"], 0.5, rtol=1e-6)
    assert clip_grad_norm({}, 1.0) == 0.0


def test_clip_grad_norm_of_finite_gradients_beyond_the_square_range():
    # the squares of 1e200 overflowed: the norm came out inf and the gradients were scaled
    # to 0; those of 1e-200 underflowed: the norm came out 0
    g = {"a": np.array([3e200, 0.0]), "b": np.array([4e200])}
    assert clip_grad_norm(g, 1.0) == pytest.approx(5e200, rel=1e-12)
    np.testing.assert_allclose(g["a"], [0.6, 0.0], rtol=1e-9)
    np.testing.assert_allclose(g["b"], [0.8], rtol=1e-9)
    tiny = {"a": np.array([3e-200, 0.0]), "b": np.array([4e-200])}
    assert clip_grad_norm(tiny, 1.0) == pytest.approx(5e-200, rel=1e-12)
    np.testing.assert_array_equal(tiny["b"], [4e-200])


def test_a_gradient_beyond_the_range_of_its_parameter_is_named():
    # a float64 gradient of 1e300 for a float32 parameter became inf in the cast and the
    # step set the weights to NaN, with only NumPy's overflow warning
    p = {"w": np.ones(3, np.float32)}
    opt = Adam(p, lr=0.1)
    with pytest.raises(ValueError, match=r"grads\['w'\] holds 1e\+300 at index \(1,\), beyond "
                                         r"the range of its float32 parameter"):
        opt.step({"w": np.array([1.0, 1e300, 2.0])})
    np.testing.assert_array_equal(p["w"], 1.0)
    opt.step({"w": np.array([1.0, 1e10, 2.0])})  # within float32: taken
    assert np.isfinite(p["w"]).all()


def test_clip_grad_norm_nonfinite():
    g = {"a": np.array([1.0, np.inf])}
    with pytest.raises(ValueError, match="global gradient norm is inf"):
        clip_grad_norm(g, 1.0, error_if_nonfinite=True)
    assert clip_grad_norm(g, 1.0) == math.inf  # like torch: reported, not hidden


# -- schedules ---------------------------------------------------------------------------

def torch_lrs(make_scheduler, lr, steps):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_scheduler(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out)


def test_step_decay_matches_step_lr():
    ours = np.array([StepDecay(0.5, step_size=3, gamma=0.7)(k) for k in range(25)])
    theirs = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.7), 0.5, 25)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("min_lr", [0.0, 0.01])
def test_cosine_matches_cosine_annealing_lr_then_holds(min_lr):
    T = 17
    ours = np.array([Cosine(0.3, total_steps=T, min_lr=min_lr)(k) for k in range(T + 1)])
    theirs = torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T, eta_min=min_lr),
        0.3, T + 1)
    # torch updates the rate recursively, so compare against the scale of the rate
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    assert Cosine(0.3, T, min_lr)(T + 5) == min_lr


def test_warmup_matches_linear_lr_then_the_wrapped_schedule():
    w, f0 = 6, 0.25
    after = StepDecay(0.2, step_size=4, gamma=0.5)
    sched = Warmup(after, warmup_steps=w, start_factor=f0)
    ours = np.array([sched(k) for k in range(w + 12)])
    warm = torch_lrs(lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=f0,
                                                                 total_iters=w), 0.2, w)
    decay = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, 4, gamma=0.5), 0.2, 12)
    np.testing.assert_allclose(ours, np.concatenate([warm, decay]), rtol=1e-12)


def test_constant_and_default_warmup():
    assert [Constant(0.1)(k) for k in (0, 5, 10**9)] == [0.1, 0.1, 0.1]
    sched = Warmup(Constant(1.0), warmup_steps=4)
    assert [sched(k) for k in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert Warmup(Constant(1.0), warmup_steps=0)(0) == 1.0


# -- bad input ---------------------------------------------------------------------------

P = {"w": np.zeros(2)}


@pytest.mark.parametrize("make, match", [
    (lambda: SGD(P, lr=0), "lr must be > 0"),
    (lambda: SGD(P, lr=-0.1), "lr must be > 0"),
    (lambda: Adam(P, lr=float("nan")), "lr must be a finite real number"),
    (lambda: SGD(P, lr="0.1"), "lr must be a finite real number"),
    (lambda: SGD(P, lr=0.1, momentum=-0.5), "momentum must be >= 0"),
    (lambda: SGD(P, lr=0.1, nesterov=True), "nesterov=True needs momentum > 0"),
    (lambda: SGD(P, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "nesterov=True needs momentum > 0 and dampening = 0"),
    (lambda: SGD(P, lr=0.1, weight_decay=-1), "weight_decay must be >= 0"),
    (lambda: Adam(P, betas=(1.0, 0.999)), r"betas\[0\] must be a number in \[0, 1\)"),
    (lambda: Adam(P, betas=(0.9, -0.1)), r"betas\[1\] must be a number in \[0, 1\)"),
    (lambda: AdamW(P, betas=0.9), "betas must be a pair"),
    (lambda: Adam(P, eps=-1e-8), "eps must be > 0"),
    # eps 0 made a zero gradient 0/0: the weights turned NaN without a word
    (lambda: Adam(P, eps=0.0), "eps must be > 0"),
    (lambda: AdamW(P, weight_decay=-0.01), "weight_decay must be >= 0"),
    (lambda: Adam(P, amsgrad="yes"), "amsgrad must be True or False"),
    (lambda: SGD({}, lr=0.1), "params is empty"),
    (lambda: StepDecay(0.1, step_size=0), "step_size must be a positive integer"),
    (lambda: StepDecay(0.1, step_size=2, gamma=0), "gamma must be > 0"),
    (lambda: Cosine(0.1, total_steps=0), "total_steps must be a positive integer"),
    (lambda: Cosine(0.1, total_steps=5, min_lr=0.2), r"min_lr must be <= lr"),
    (lambda: Constant(0.0), "lr must be > 0"),
    (lambda: Warmup(Constant(0.1), warmup_steps=-1), "warmup_steps must be a non-negative integer"),
    (lambda: Warmup(Constant(0.1), warmup_steps=3, start_factor=1.5),
     r"start_factor must lie in \[0, 1\]"),
    (lambda: Constant(0.1)(-1), "step must be a non-negative integer"),
    (lambda: Constant(0.1)(1.5), "step must be a non-negative integer"),
    (lambda: clip_grad_norm({"w": np.ones(2)}, 0), "max_norm must be > 0"),
])
def test_bad_hyperparameters_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_lr_setter_allows_zero_but_not_negative():
    opt = SGD({"w": np.zeros(2)}, lr=0.1)
    opt.lr = 0.0  # the end of a cosine decay
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.lr = -1e-3


@pytest.mark.parametrize("params, match", [
    ([np.zeros(2)], "params must be a dict"),
    ({"w": np.zeros(2, dtype=int)}, r"params\['w'\] must be a floating-point numpy array"),
    (Linear(2, 2), r"for a layer pass layer.params\(\)"),
])
def test_bad_params_raise_type_error(params, match):
    with pytest.raises(TypeError, match=match):
        SGD(params, lr=0.1)


def test_one_parameter_under_two_names_is_refused():
    lin = Linear(2, 2, rng=np.random.default_rng(0))
    w = np.zeros(4)
    for params in ({**lin.params(), "again.weight": lin.weight}, {"a": w[:3], "b": w[2:]}):
        with pytest.raises(ValueError, match=r"are the same parameter .* update it twice"):
            Adam(params)
    Adam({"a": w[:2], "b": w[2:]})  # two halves of one buffer are two parameters


def test_bad_grads():
    opt = Adam({"w": np.zeros(2), "b": np.zeros(1)})
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['x'\]"):
        opt.step({"w": np.zeros(2), "x": np.zeros(1)})
    with pytest.raises(ValueError, match=r"grads\['w'\] must have the shape of .* \(2,\)"):
        opt.step({"w": np.zeros(3), "b": np.zeros(1)})
    with pytest.raises(TypeError, match=r"grads\['b'\] must be a floating-point array"):
        opt.step({"w": np.zeros(2), "b": np.zeros(1, dtype=int)})
    with pytest.raises(TypeError, match="grads must be a dict"):
        opt.step([np.zeros(2), np.zeros(1)])
    assert opt.step_count == 0 and opt.state == {}


@pytest.mark.parametrize("buffer", ["exp_avg_sq", "max_exp_avg_sq"])
def test_load_state_dict_refuses_a_negative_mean_of_squares(buffer):
    # loaded as it was, its square root made the next step's update NaN
    rng = np.random.default_rng(24)
    params = random_params(rng)
    opt = Adam(params, lr=0.01, amsgrad=True)
    opt.step(random_grads(rng, 1)[0])
    meta, arrays = opt.state_dict()
    bad = arrays[f"{buffer}/lstm.b"].copy()
    bad[5] = -0.25
    target = Adam({k: v.copy() for k, v in params.items()}, lr=0.5, amsgrad=True)
    with pytest.raises(ValueError, match=rf"^optimizer state '{buffer}/lstm.b' holds -0.25 at "
                                         rf"index \(5,\): a mean of squares is never negative"):
        target.load_state_dict(meta, dict(arrays, **{f"{buffer}/lstm.b": bad}))
    assert target.step_count == 0 and target.state == {}
    arrays["exp_avg/lstm.b"][5] = -0.25  # a first moment may be negative
    target.load_state_dict(meta, arrays)


def test_step_and_load_params_name_extra_keys_of_another_type():
    # sorting the unexpected names failed: "'<' not supported between instances of 'str'
    # and 'int'"
    opt = Adam({"w": np.zeros(2)}, lr=0.1)
    with pytest.raises(ValueError, match=r"grads must have the names of params: missing \[\], "
                                         r"unexpected \[0, 'b'\]"):
        opt.step({"w": np.zeros(2), 0: np.zeros(2), "b": np.zeros(2)})
    layer = Linear(2, 1)
    values = {**layer.params(), 0: np.zeros(1), "zz": np.zeros(1)}
    with pytest.raises(ValueError, match=r"parameter names do not match: missing \[\], "
                                         r"unexpected \[0, 'zz'\]"):
        layer.load_params(values)


def test_clip_grad_norm_names_a_read_only_gradient_before_scaling_any():
    # NumPy's "output array is read-only" named no gradient, after earlier ones were scaled
    first, frozen = np.full(3, 4.0), np.full(3, 4.0)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"^grads\['b'\] is read-only; clip_grad_norm scales "
                                         r"the gradients in place"):
        clip_grad_norm({"a": first, "b": frozen}, 1.0)
    assert (first == 4.0).all()
