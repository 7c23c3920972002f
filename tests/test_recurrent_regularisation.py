"""Recurrent regularisation of the LSTM: variational dropout (inputs and recurrent state),
zoneout and weight drop (``LSTM(dropout_input=, dropout_recurrent=, zoneout=, weight_drop=)``).

The oracle is a short PyTorch-autograd LSTM written here from the papers' equations (Gal &
Ghahramani 2016; Krueger et al. 2017; Merity et al. 2018) with the same fixed masks: float64
outputs and every gradient to 1e-10, non-zero biases and states, random upstream gradients,
ragged lengths, T=1 and B=1, two layers, bidirectional. The layer's masks are reproduced from
its Generator in the documented order (``LSTM._regularised``).
"""

import numpy as np
import pytest

import lstmlab
from lstmlab import GRU, LSTM, RNN
from lstmlab.kernels import LSTMParams, fast, lstm_backward, lstm_forward
from lstmlab.kernels.lstm import LSTMMasks
from seq_helpers import central_difference

torch = pytest.importorskip("torch")
needs_fast = pytest.mark.skipif(not fast.available(), reason="needs numba")

OPTIONS = [dict(dropout_recurrent=0.3), dict(zoneout=0.3), dict(dropout_input=0.25),
           dict(weight_drop=0.4), dict(dropout_input=0.2, dropout_recurrent=0.3, weight_drop=0.3),
           dict(dropout_input=0.2, zoneout=0.4, weight_drop=0.3)]


# -- the oracle: the papers' equations in torch autograd ----------------------------------------
def torch_direction(x, h, c, Wx, Wh, b, lengths, m=None, d_h=None, d_c=None):
    """One LSTM direction (gate blocks f, i, o, C̃). ``m (B, H)``: the mask on h_{t-1} in the
    recurrent product; ``d_h, d_c (T or 1, B or 1, H)``: zoneout's d_t. Packed-sequence
    semantics: past its length a sequence's state is carried and its output is 0."""
    T, H = x.shape[0], h.shape[1]
    ys = []
    for t in range(T):
        z = x[t] @ Wx + (h if m is None else m * h) @ Wh + b
        f, i, o = (torch.sigmoid(z[:, k * H:(k + 1) * H]) for k in range(3))
        c_new = f * c + i * torch.tanh(z[:, 3 * H:])
        h_new = o * torch.tanh(c_new)
        if d_h is not None:  # Krueger et al. (2017), eq. for the LSTM
            dh_t, dc_t = d_h[min(t, len(d_h) - 1)], d_c[min(t, len(d_c) - 1)]
            c_new = dc_t * c + (1 - dc_t) * c_new
            h_new = dh_t * h + (1 - dh_t) * h_new
        on = torch.as_tensor(t < lengths)[:, None]
        h, c = torch.where(on, h_new, h), torch.where(on, c_new, c)
        ys.append(torch.where(on, h_new, torch.zeros_like(h_new)))
    return torch.stack(ys), h, c


def reverse(x, lengths):
    T = x.shape[0]
    t = np.arange(T)[:, None]
    idx = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)
    return x[torch.as_tensor(idx), torch.arange(x.shape[1])[None, :]]


def draw_masks(layer, T, B):
    """The layer's masks, drawn from a copy of its Generator in the layer's order."""
    rng = np.random.Generator(type(layer.rng.bit_generator)())
    rng.bit_generator.state = layer.rng.bit_generator.state
    keep = lambda shape, p: (rng.random(shape) >= p) / (1.0 - p)  # noqa: E731
    H, out = layer.hidden_size, []
    for level in range(layer.num_layers):
        D = layer.input_size if level == 0 else layer.num_directions * H
        for _ in range(layer.num_directions):
            d = {}
            if layer.dropout_input:
                d["x"] = keep((B, D), layer.dropout_input)
            if layer.weight_drop:
                d["Wh"] = keep((H, 4 * H), layer.weight_drop)
            if layer.dropout_recurrent:
                d["m"] = keep((B, H), layer.dropout_recurrent)
            if layer.zoneout:
                d["d_h"], d["d_c"] = ((rng.random((T, B, H)) < layer.zoneout) * 1.0
                                      for _ in range(2))
            out.append(d)
    return out


def torch_layer(layer, x, h0, c0, lengths, masks, dy, dh, dc):
    """The layer's forward and backward in torch: outputs, then every gradient by name."""
    tt = lambda a: torch.tensor(a, requires_grad=True)  # noqa: E731
    xt, h0t, c0t = tt(x), tt(h0), tt(c0)
    params = {k: tt(v) for k, v in layer.params().items()}
    inp, hs, cs, K = xt, [], [], layer.num_directions
    for level in range(layer.num_layers):
        outs = []
        for d in range(K):
            s, mk = f"l{level}" + ("_reverse" if d else ""), masks[level * K + d]
            seq = inp if d == 0 else reverse(inp, lengths)
            if "x" in mk:
                seq = seq * torch.tensor(mk["x"])
            Wh = params[f"Wh_{s}"] * (torch.tensor(mk["Wh"]) if "Wh" in mk else 1.0)
            if layer.zoneout and not layer.training:
                p = torch.full((1, 1, layer.hidden_size), layer.zoneout, dtype=torch.float64)
                mk = dict(mk, d_h=p, d_c=p)
            y, h, c = torch_direction(
                seq, h0t[level * K + d], c0t[level * K + d], params[f"Wx_{s}"], Wh,
                params[f"b_{s}"], lengths, *(torch.as_tensor(mk[k]) if k in mk else None
                                             for k in ("m", "d_h", "d_c")))
            outs.append(y if d == 0 else reverse(y, lengths))
            hs.append(h)
            cs.append(c)
        inp = torch.cat(outs, dim=-1)
    hn, cn = torch.stack(hs), torch.stack(cs)
    loss = (inp * torch.tensor(dy)).sum() + (hn * torch.tensor(dh)).sum() + (
        cn * torch.tensor(dc)).sum()
    loss.backward()
    grads = {"dx": xt.grad, "dh0": h0t.grad, "dc0": c0t.grad}
    grads.update({k: v.grad for k, v in params.items()})
    return [inp, hn, cn], {k: v.numpy() for k, v in grads.items()}


def random_layer_case(seed, options, backend, training=True):
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 7)) if seed % 3 else 1
    B = int(rng.integers(1, 5)) if seed % 4 else 1
    D, H = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    K = 2 if seed % 2 else 1
    layer = LSTM(D, H, num_layers=2, bidirectional=K == 2, dtype=np.float64,
                 rng=np.random.default_rng(seed + 100), **options)
    layer.backend = backend
    layer.train(training)
    for v in layer.params().values():  # non-zero biases, weights of a trained size
        v[...] = rng.normal(0, 0.6, v.shape)
    lengths = rng.integers(1, T + 1, B)
    lengths[rng.integers(B)] = T
    x = rng.normal(size=(T, B, D))
    h0, c0 = rng.normal(size=(2 * K, B, H)), rng.normal(size=(2 * K, B, H))
    dy = rng.normal(size=(T, B, K * H))
    dh, dc = rng.normal(size=(2 * K, B, H)), rng.normal(size=(2 * K, B, H))
    return layer, (x, h0, c0, lengths, dy, dh, dc)


def run_layer(layer, case):
    x, h0, c0, lengths, dy, dh, dc = case
    y, (hn, cn) = layer.forward(x, (h0, c0), lengths=lengths)
    dx, (dh0, dc0) = layer.backward(dy, (dh, dc))
    grads = {"dx": dx, "dh0": dh0, "dc0": dc0}
    grads.update({k: v.copy() for k, v in layer.grads().items()})
    return [y, hn, cn], grads


BACKENDS = ["numpy", pytest.param("fast", marks=needs_fast)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("k", range(len(OPTIONS)))
def test_layer_equals_torch_autograd_of_the_papers_equations(k, backend):
    for seed in range(3 * k, 3 * k + 3):
        layer, case = random_layer_case(seed, OPTIONS[k], backend)
        x, h0, c0, lengths, dy, dh, dc = case
        masks = draw_masks(layer, x.shape[0], x.shape[1])
        want, want_grads = torch_layer(layer, x, h0, c0, lengths, masks, dy, dh, dc)
        got, got_grads = run_layer(layer, case)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b.detach().numpy(), rtol=0, atol=1e-10)
        assert set(got_grads) == set(want_grads)
        for name in got_grads:
            np.testing.assert_allclose(got_grads[name], want_grads[name], rtol=0, atol=1e-10,
                                       err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluation_is_deterministic_and_zoneout_is_its_expectation(backend):
    for seed, options in enumerate(OPTIONS):
        layer, case = random_layer_case(seed + 20, options, backend, training=False)
        x, h0, c0, lengths, dy, dh, dc = case
        state = layer.rng.bit_generator.state
        want, want_grads = torch_layer(layer, x, h0, c0, lengths, [{}] * 4, dy, dh, dc)
        first, grads = run_layer(layer, case)
        again, _ = run_layer(layer, case)
        assert layer.rng.bit_generator.state == state  # evaluation draws nothing
        for a, b, w in zip(first, again, want):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_allclose(a, w.detach().numpy(), rtol=0, atol=1e-10)
        for name in grads:
            np.testing.assert_allclose(grads[name], want_grads[name], rtol=0, atol=1e-10)


# -- the kernels themselves, with fixed masks ---------------------------------------------------
def kernel_case(seed, kind, dtype=np.float64):
    rng = np.random.default_rng(seed)
    T = int(rng.integers(1, 8)) if seed % 3 else 1
    B = int(rng.integers(1, 5)) if seed % 4 else 1
    D, H = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    lengths = rng.integers(1, T + 1, B)
    lengths[0] = T
    x = rng.normal(size=(T, B, D)).astype(dtype)
    h0, c0 = rng.normal(size=(2, B, H)).astype(dtype)
    params = LSTMParams(*(rng.normal(0, 0.6, s).astype(dtype)
                          for s in ((D, 4 * H), (H, 4 * H), (4 * H,))))
    if kind == "dropout":
        masks = LSTMMasks(h=((rng.random((B, H)) >= 0.3) / 0.7).astype(dtype))
    elif kind == "zoneout":
        masks = LSTMMasks(keep_h=(rng.random((T, B, H)) < 0.4).astype(dtype),
                          keep_c=(rng.random((T, B, H)) < 0.4).astype(dtype))
    else:  # zoneout's evaluation
        p = np.full((1, 1, H), 0.35, dtype)
        masks = LSTMMasks(keep_h=p, keep_c=p)
    upstream = rng.normal(size=(T, B, H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    return (x, h0, c0, params, lengths, masks), tuple(u.astype(dtype) for u in upstream)


def reference_run(args, upstream):
    x, h0, c0, params, lengths, masks = args
    y, hT, cT, cache = lstm_forward(x, h0, c0, params, lengths, masks)
    dx, dh0, dc0, g = lstm_backward(*upstream, cache)
    return [y, hT, cT, dx, dh0, dc0, *g]


def fast_run(args, upstream):
    x, h0, c0, params, lengths, masks = args
    y, (hT, cT), cache = fast.sequence_forward("lstm", x, (h0, c0), *params, lengths,
                                               masks=masks)
    dx, (dh0, dc0), g = fast.sequence_backward(upstream[0], upstream[1:], cache)
    return [y, hT, cT, dx, dh0, dc0, *g[:3]]


KINDS = ["dropout", "zoneout", "expectation"]


@pytest.mark.parametrize("kind", KINDS)
def test_kernel_mask_gradients_by_finite_differences(kind):
    """The masks' gradient paths (through m ⊙ h_{t-1}, through d ⊙ h_{t-1} and d ⊙ C_{t-1})
    against central differences of the reference kernel, every input and parameter."""
    for seed in range(4):
        args, (dy, dhT, dcT) = kernel_case(seed, kind)

        def loss():
            y, hT, cT, _ = lstm_forward(*args)
            return (y * dy).sum() + (hT * dhT).sum() + (cT * dcT).sum()

        got = reference_run(args, (dy, dhT, dcT))[3:]
        x, h0, c0, params = args[:4]
        for arr, g in zip((x, h0, c0, *params), got):
            for idx in np.ndindex(arr.shape):
                assert abs(central_difference(loss, arr, idx) - g[idx]) < 1e-7


@needs_fast
@pytest.mark.parametrize("kind", KINDS)
def test_fast_kernels_equal_the_reference(kind):
    for seed in range(6):
        for dtype, tol in ((np.float64, 1e-10), (np.float32, 1e-5)):
            args, upstream = kernel_case(seed, kind, dtype)
            for a, b in zip(fast_run(args, upstream), reference_run(args, upstream)):
                assert a.dtype == dtype
                np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@needs_fast
@pytest.mark.parametrize("shape", [(40, 24, 48, 96), (60, 6, 64, 128)])
def test_fast_kernels_give_the_same_bits_for_any_thread_count(shape):
    T, B, D, H = shape
    rng = np.random.default_rng(7)
    lengths = rng.integers(T // 2, T + 1, B)
    lengths[0] = T
    x = rng.normal(size=(T, B, D)).astype(np.float32)
    h0, c0 = rng.normal(size=(2, B, H)).astype(np.float32)
    params = [rng.normal(0, 0.2, s).astype(np.float32) for s in ((D, 4 * H), (H, 4 * H), (4 * H,))]
    upstream = (rng.normal(size=(T, B, H)).astype(np.float32),
                rng.normal(size=(B, H)).astype(np.float32), None)
    for masks in (LSTMMasks(h=((rng.random((B, H)) >= 0.3) / 0.7).astype(np.float32)),
                  LSTMMasks(keep_h=(rng.random((T, B, H)) < 0.2).astype(np.float32),
                            keep_c=(rng.random((T, B, H)) < 0.2).astype(np.float32))):
        runs = []
        before = fast.get_num_threads()
        try:
            for n in (1, 2, 3):
                fast.set_num_threads(n)
                runs.append(fast_run((x, h0, c0, params, lengths, masks), upstream))
        finally:
            fast.set_num_threads(before)
        for run in runs[1:]:
            for a, b in zip(run, runs[0]):
                np.testing.assert_array_equal(a, b)


# -- the layer's contract ------------------------------------------------------------------------
def test_same_seed_same_masks_and_fresh_masks_every_call():
    x = np.random.default_rng(0).normal(size=(5, 3, 4))
    for options in OPTIONS:
        a, b, c = (LSTM(4, 6, dtype=np.float64, rng=np.random.default_rng(s), **options)
                   for s in (1, 1, 2))
        for k, v in a.params().items():
            c.params()[k][...] = v
        ya, yb, yc = (m.forward(x)[0] for m in (a, b, c))
        np.testing.assert_array_equal(ya, yb)
        assert not np.array_equal(ya, yc)  # other masks
        assert not np.array_equal(a.forward(x)[0], ya)  # a new draw every call


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_streaming_is_evaluation(backend):
    """``step`` applies no masks and zoneout's expectation: step by step it equals the
    evaluation forward, whichever mode the layer is in."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 2, 3))
    for options in OPTIONS:
        layer = LSTM(3, 5, num_layers=2, dtype=np.float64, rng=np.random.default_rng(4), **options)
        layer.backend = backend
        layer.eval()
        y, (h, c) = layer.forward(x)
        layer.train()
        state = None
        for t in range(x.shape[0]):
            y_t, state = layer.step(x[t], state)
            np.testing.assert_allclose(y_t, y[t], rtol=0, atol=1e-12)
        np.testing.assert_allclose(state[1], c, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["dropout_input", "dropout_recurrent", "zoneout", "weight_drop"])
def test_bad_probabilities_name_the_argument(name):
    for bad in (1.0, -0.1, 1.5, True, "0.2", float("nan")):
        with pytest.raises(ValueError, match=f"{name} must be a number in \\[0, 1\\)"):
            LSTM(2, 3, **{name: bad})


def test_combinations_that_do_not_make_sense_are_refused():
    with pytest.raises(ValueError, match="dropout_recurrent and zoneout"):
        LSTM(2, 3, dropout_recurrent=0.2, zoneout=0.2)
    for other in (dict(proj_size=2), dict(peephole=True), dict(clip=1.0)):
        with pytest.raises(ValueError, match="do not combine with proj_size"):
            LSTM(2, 3, zoneout=0.2, **other)
    for cls in (RNN, GRU):
        for name in ("dropout_recurrent", "zoneout"):
            with pytest.raises(ValueError, match=f"{name} is an option of the LSTM"):
                cls(2, 3, **{name: 0.1})
    with pytest.raises(ValueError, match="zoneout"):
        lstmlab.CharLMConfig(vocab_size=5, cell="gru", zoneout=0.1)


@pytest.mark.parametrize("cls", [RNN, GRU])
def test_input_dropout_and_weight_drop_on_the_other_cells_by_finite_differences(cls):
    rng = np.random.default_rng(5)
    layer = cls(3, 4, num_layers=2, bidirectional=True, dtype=np.float64,
                rng=np.random.default_rng(6), dropout_input=0.3, weight_drop=0.3)
    x, lengths = rng.normal(size=(4, 2, 3)), np.array([4, 2])
    h0, dy = rng.normal(size=(4, 2, 4)), rng.normal(size=(4, 2, 8))
    state = layer.rng.bit_generator.state

    def loss():
        layer.rng.bit_generator.state = state  # the same masks for every evaluation
        return (layer.forward(x, h0, lengths)[0] * dy).sum()

    loss()
    dx, dh0 = layer.backward(dy)
    for arr, g in [(x, dx), (h0, dh0)] + [(v, layer.grads()[k].copy())
                                          for k, v in layer.params().items()]:
        for idx in list(np.ndindex(arr.shape))[::3]:
            assert abs(central_difference(loss, arr, idx) - g[idx]) < 1e-7


def test_checkpoints_keep_the_options(tmp_path):
    from lstmlab.cli import main
    from lstmlab.training.checkpoint import load_checkpoint

    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 40, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", str(text), "--hidden", "8", "--layers", "2", "--embed", "4",
                 "--seq-len", "10", "--batch-size", "2", "--steps", "2", "--eval-every", "2",
                 "--zoneout", "0.15", "--dropout-input", "0.1", "--weight-drop", "0.2",
                 "--quiet", "--out", str(out)]) == 0
    meta, _ = load_checkpoint(out / "last.ckpt", expect_kind="charlm")
    config = lstmlab.CharLMConfig.from_json(meta["model"])
    assert (config.zoneout, config.dropout_input, config.weight_drop) == (0.15, 0.1, 0.2)
    model = lstmlab.CharLM(config)
    assert (model.rnn.zoneout, model.rnn.dropout_input, model.rnn.weight_drop) == (0.15, 0.1, 0.2)
    # torch.nn.LSTM evaluates without zoneout: a state dict for it would compute other logits
    for fmt, name in (("torch", "m.safetensors"), ("torch-npz", "m.npz")):
        assert main(["export", str(out / "last.ckpt"), "--format", fmt,
                     "--out", str(tmp_path / name)]) == 2
        assert not (tmp_path / name).exists()


def test_onnx_and_keras_export_refuse_zoneout_and_ignore_training_options():
    from lstmlab.interop import to_keras_weights

    from lstmlab.interop import to_torch

    with pytest.raises(ValueError, match="has no zoneout"):
        to_keras_weights(LSTM(2, 3, zoneout=0.1))
    with pytest.raises(ValueError, match="torch.nn.LSTM has no zoneout"):
        to_torch(LSTM(2, 3, zoneout=0.1))
    from lstmlab.interop import model_state_dict, torch_state_dict
    for convert in (torch_state_dict, lambda layer: model_state_dict({"rnn": layer})):
        with pytest.raises(ValueError, match="torch.nn.LSTM has no zoneout"):
            convert(LSTM(2, 3, zoneout=0.1))
    plain = LSTM(2, 3, rng=np.random.default_rng(0))
    trained = LSTM(2, 3, rng=np.random.default_rng(0), dropout_input=0.2, weight_drop=0.3,
                   dropout_recurrent=0.1)
    for a, b in zip(to_keras_weights(plain), to_keras_weights(trained)):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    pytest.importorskip("onnx")
    from lstmlab.interop import to_onnx

    with pytest.raises(ValueError, match="ONNX's LSTM has no zoneout"):
        to_onnx(LSTM(2, 3, zoneout=0.1))
    assert to_onnx(plain).graph == to_onnx(trained).graph


def test_a_resumed_run_draws_the_masks_of_the_uninterrupted_one(tmp_path):
    import json

    from lstmlab.cli import main

    text = tmp_path / "t.txt"
    text.write_text("".join(f"line {i}: the quick brown fox\n" for i in range(200)),
                    encoding="utf-8")
    common = [str(text), "--hidden", "8", "--layers", "2", "--embed", "4", "--seq-len", "10",
              "--batch-size", "2", "--eval-every", "5", "--checkpoint-every", "5", "--quiet",
              "--schedule", "constant", "--dropout-input", "0.2", "--zoneout", "0.2",
              "--weight-drop", "0.2"]
    assert main(["train", *common, "--steps", "10", "--out", str(tmp_path / "full")]) == 0
    assert main(["train", *common, "--steps", "5", "--out", str(tmp_path / "cut")]) == 0
    assert main(["train", *common, "--steps", "10", "--resume", "--out",
                 str(tmp_path / "cut")]) == 0
    losses = [{r["step"]: r["loss"] for r in map(json.loads, (tmp_path / run / "metrics.jsonl")
                                                 .read_text().splitlines())}
              for run in ("full", "cut")]
    assert sorted(losses[0]) == list(range(1, 11))
    assert losses[0] == losses[1]


@pytest.mark.parametrize("model, flag", [("gru", "--zoneout"), ("rnn", "--dropout-recurrent"),
                                         ("gru", "--layer-norm")])
def test_an_lstm_only_flag_on_another_cell_is_named_as_typed(tmp_path, capsys, model, flag):
    from lstmlab.cli import main

    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox\n" * 20, encoding="utf-8")
    value = [] if flag == "--layer-norm" else ["0.1"]
    assert main(["train", str(text), "--model", model, flag, *value, "--steps", "1",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"error: {flag} is an option of --model lstm, not of --model {model}" in err
    assert "cell '" not in err and "_" not in err.split("error: ")[1]  # no library names
    assert not (tmp_path / "run").exists()


def test_the_layer_s_own_torch_state_dict_refuses_zoneout_but_loads_into_it():
    # the README's lstm.torch_state_dict(), as lstmlab.interop.torch_state_dict(lstm) does
    layer = LSTM(2, 3, zoneout=0.1, rng=np.random.default_rng(0))
    for grads in (False, True):
        with pytest.raises(ValueError, match=r"torch.nn.LSTM has no zoneout: a layer with "
                                             r"zoneout=0.1 .*compute other outputs"):
            layer.torch_state_dict(grads=grads)
    plain = LSTM(2, 3, rng=np.random.default_rng(1))
    layer.load_torch_state_dict(plain.torch_state_dict())  # training with zoneout from them
    for k, v in plain.params().items():
        np.testing.assert_array_equal(layer.params()[k], v, err_msg=k)


def test_keras_weights_load_into_a_zoneout_layer_as_torch_s_do():
    # load_keras_weights refused a layer with zoneout, saying "export a layer with
    # zoneout=0", where load_torch_state_dict loads the same weights into it
    from lstmlab.interop import load_keras_weights, to_keras_weights
    layer = LSTM(2, 3, zoneout=0.1, rng=np.random.default_rng(0))
    plain = LSTM(2, 3, rng=np.random.default_rng(1))
    load_keras_weights(layer, to_keras_weights(plain))
    for k, v in plain.params().items():
        np.testing.assert_array_equal(layer.params()[k], v, err_msg=k)


@pytest.mark.skipif(not fast.available(), reason="the compiled kernels need numba")
def test_a_zoneout_layer_compiles_its_forward_once_for_every_batch_size():
    # zoneout's masks reached the loops in another memory order when B > 1, so the first
    # validation batch of a training run compiled the forward again (seconds, unannounced)
    rng = np.random.default_rng(0)
    lstm = LSTM(3, 4, zoneout=0.3, dtype=np.float32, rng=rng)
    forward = fast._compiled().loops.forward
    lstm.forward(rng.normal(size=(5, 1, 3)).astype(np.float32))
    kinds = len(forward.signatures)
    for training in (True, False):  # drawn masks, then their expectation (validation)
        lstm.train(training)
        for B in (1, 2, 3, 7):
            lstm.forward(rng.normal(size=(5, B, 3)).astype(np.float32))
    assert len(forward.signatures) == kinds
