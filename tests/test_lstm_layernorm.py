"""The layer-normalised LSTM (``LSTM(layer_norm=True)``, Ba, Kiros & Hinton 2016).

PyTorch has no such module, so the oracle is a short autograd transcription of the paper's
equations (below), fed the layer's PyTorch-style state dict. Randomized configurations (T and
B from 1, 1-2 layers, bidirectional, batch_first, ragged lengths, bias on/off) on both kernels,
non-zero biases, gains and initial states, random upstream gradients on outputs and final
states: outputs and every gradient in float64 to 1e-10. Then the fast path against the
reference in float32, the same bits for any thread count, streaming, state dicts, checkpoints
and clear errors.
"""

import copy
import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lstmlab  # noqa: E402
from lstmlab.kernels import reverse_index  # noqa: E402
from seq_helpers import assert_step_equals_forward  # noqa: E402
from seq_helpers import random_config as shared_random_config  # noqa: E402
from torch_ref import rel_err  # noqa: E402

BACKENDS = ["numpy"] + (["fast"] if importlib.util.find_spec("numba") else [])
needs_numba = pytest.mark.skipif(len(BACKENDS) == 1, reason="needs numba")


def layer_norm(v, gain, bias=None):
    """LN(v) = (v - mean) / sqrt(var + 1e-5) over the last axis (biased variance), then the
    gain and bias."""
    mu = v.mean(-1, keepdim=True)
    var = ((v - mu) ** 2).mean(-1, keepdim=True)
    out = gain * (v - mu) / torch.sqrt(var + 1e-5)
    return out if bias is None else out + bias


def torch_ln_lstm(sd, x, h0, c0, lengths, L, K, H):
    """Ba et al.'s eq. 20-22 with PyTorch's gate order (i, f, g, o) and state-dict keys:
    ``(y, h_n, c_n)`` for time-major ``x (T, B, D)``; past a sequence's length the state is
    carried and the output is 0."""
    T, B = x.shape[:2]
    lens = torch.as_tensor(np.full(B, T) if lengths is None else lengths)
    on = (torch.arange(T)[:, None] < lens[None, :]).to(x.dtype)[:, :, None]  # (T, B, 1)
    rev = torch.as_tensor(reverse_index(lengths, T, B))
    rows = torch.arange(B)[None, :]
    inp, hn, cn = x, [], []
    for layer in range(L):
        outs = []
        for d in range(K):
            s = f"l{layer}" + ("_reverse" if d else "")
            b = sd[f"bias_ih_{s}"] + sd[f"bias_hh_{s}"] if f"bias_ih_{s}" in sd else 0.0
            seq = inp if d == 0 else inp[rev, rows]
            h, c, ys = h0[layer * K + d], c0[layer * K + d], []
            for t in range(T):
                a = (layer_norm(seq[t] @ sd[f"weight_ih_{s}"].T, sd[f"ln_ih_weight_{s}"])
                     + layer_norm(h @ sd[f"weight_hh_{s}"].T, sd[f"ln_hh_weight_{s}"]) + b)
                i, f, g, o = a.chunk(4, dim=1)
                c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h_new = torch.sigmoid(o) * torch.tanh(
                    layer_norm(c_new, sd[f"ln_c_weight_{s}"], sd[f"ln_c_bias_{s}"]))
                m = on[t]
                h, c = m * h_new + (1 - m) * h, m * c_new + (1 - m) * c
                ys.append(m * h_new)
            y = torch.stack(ys)
            outs.append(y if d == 0 else y[rev, rows])
            hn.append(h)
            cn.append(c)
        inp = torch.cat(outs, dim=-1)
    return inp, torch.stack(hn), torch.stack(cn)


def random_layer(D, H, L, dtype, rng, **opts):
    layer = lstmlab.LSTM(D, H, num_layers=L, layer_norm=True, dtype=dtype, rng=rng, **opts)
    for name, v in layer.params().items():  # gains near 1, everything else around 0
        v[...] = (name[:2] in ("gx", "gh", "gc")) + rng.normal(0, 0.6, size=v.shape)
    return layer


def random_config(seed):
    """A small case of :func:`seq_helpers.random_config`, bidirectional every third seed and
    with lengths where seed % 5 == 1, whatever the draw."""
    cfg = shared_random_config(seed, T=6, D=5, H=6, L=3, distinct=False)
    cfg["bidirectional"] |= seed % 3 == 0
    cfg["use_lengths"] |= seed % 5 == 1
    return cfg


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(10))
def test_layer_equals_the_paper_in_torch_autograd(seed, backend):
    cfg = random_config(seed)
    rng = np.random.default_rng(300 + seed)
    T, B, D, H, L = (cfg[k] for k in "TBDHL")
    K = 2 if cfg["bidirectional"] else 1
    layer = random_layer(D, H, L, np.float64, rng, bias=cfg["bias"],
                         batch_first=cfg["batch_first"], bidirectional=cfg["bidirectional"])
    layer.backend = backend
    x = rng.normal(size=(T, B, D))
    state = (rng.normal(size=(L * K, B, H)), rng.normal(size=(L * K, B, H)))
    lengths = rng.integers(1, T + 1, size=B) if cfg["use_lengths"] else None
    dy, dh, dc = (rng.normal(size=(T, B, K * H)), rng.normal(size=(L * K, B, H)),
                  rng.normal(size=(L * K, B, H)))
    bf = (lambda a: a.transpose(1, 0, 2)) if cfg["batch_first"] else (lambda a: a)

    y, (h_n, c_n) = layer.forward(bf(x), state, lengths)
    dx, (dh0, dc0) = layer.backward(bf(dy), (dh, dc))

    sd = {k: torch.tensor(v, requires_grad=True) for k, v in layer.torch_state_dict().items()}
    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, *state))
    ty, th, tc = torch_ln_lstm(sd, xt, h0t, c0t, lengths, L, K, H)
    loss = (ty * torch.tensor(dy)).sum() + (th * torch.tensor(dh)).sum() + (
        tc * torch.tensor(dc)).sum()
    loss.backward()
    pairs = {"y": (bf(y), ty), "h_n": (h_n, th), "c_n": (c_n, tc), "dx": (bf(dx), xt.grad),
             "dh0": (dh0, h0t.grad), "dc0": (dc0, c0t.grad)}
    pairs.update({k: (v, sd[k].grad) for k, v in layer.torch_state_dict(grads=True).items()})
    assert any(k.startswith("ln_c_bias") for k in pairs)
    for name, (ours, ref) in pairs.items():
        assert rel_err(ours, ref.detach().numpy()) < 1e-10, (name, cfg)


@needs_numba
@pytest.mark.parametrize("seed", range(3))
def test_both_kernels_in_float32_are_within_1e_5_of_float64(seed):
    """The fast path and the reference in float32, each against the float64 reference (they
    differ from each other by the sum of their round-offs)."""
    rng = np.random.default_rng(40 + seed)
    K = 1 if seed == 1 else 2
    truth = random_layer(4, 7, 2, np.float64, rng, bidirectional=K == 2)
    truth.backend = "numpy"
    T, B = 5, 4
    x = rng.normal(size=(T, B, 4)).astype(np.float32)
    state = tuple(rng.normal(size=(2 * K, B, 7)).astype(np.float32) for _ in range(2))
    lengths = np.array([5, 2, 1, 4]) if seed else None
    dy = rng.normal(size=(T, B, 7 * K)).astype(np.float32)

    def run(layer):
        y, s = layer.forward(x.astype(layer.dtype), tuple(a.astype(layer.dtype) for a in state),
                             lengths)
        return [y, *s, *layer.backward(dy.astype(layer.dtype))[1]], layer.grads()
    want, want_grads = run(truth)
    for backend in ("numpy", "fast"):
        layer = lstmlab.LSTM(4, 7, num_layers=2, bidirectional=K == 2, layer_norm=True)
        layer.backend = backend
        for name, v in truth.params().items():
            layer.params()[name][...] = v
        got, grads = run(layer)
        for a, b in zip(got, want):
            assert rel_err(a, b) < 1e-5, backend
        for name, g in want_grads.items():
            assert rel_err(grads[name], g) < 1e-5, (backend, name)


@needs_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thread_counts_give_the_same_bits(dtype, monkeypatch):
    from lstmlab.kernels import fast
    monkeypatch.setattr(fast, "MIN_THREAD_FLOPS", 1.0)  # teams even on this small shape
    before = fast.get_num_threads()
    rng = np.random.default_rng(8)
    layer = random_layer(5, 9, 1, dtype, rng)
    layer.backend = "fast"
    x = rng.normal(size=(6, 7, 5)).astype(dtype)
    lengths = np.array([6, 3, 1, 6, 5, 2, 6])
    dy = rng.normal(size=(6, 7, 9)).astype(dtype)
    runs = []
    try:
        for n in (1, 2, 3):
            fast.set_num_threads(n)
            y, (h, c) = layer.forward(x, None, lengths)
            dx, (dh0, dc0) = layer.backward(dy, (h, c))
            runs.append([y, h, c, dx, dh0, dc0] + [g.copy() for g in layer.grads().values()])
    finally:
        fast.set_num_threads(before)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_equals_forward(backend):
    rng = np.random.default_rng(5)
    layer = random_layer(3, 4, 2, np.float64, rng)
    layer.backend = backend
    x = rng.normal(size=(5, 2, 3))
    state = (rng.normal(size=(2, 2, 4)), rng.normal(size=(2, 2, 4)))
    assert_step_equals_forward(layer, x, state, atol=1e-12)
    big = rng.normal(size=(5, 3))  # more rows than the streaming lane takes
    y_big = layer.step(np.tile(big, (2, 1)))[0]
    np.testing.assert_allclose(y_big[:5], y_big[5:], rtol=0, atol=1e-12)


def test_parameters_start_as_the_identity_norm_and_plain_weights_keep_their_draws():
    plain = lstmlab.LSTM(3, 4, num_layers=2, rng=np.random.default_rng(0))
    ln = lstmlab.LSTM(3, 4, num_layers=2, layer_norm=True, rng=np.random.default_rng(0))
    extra = [k for k in ln.params() if k not in plain.params()]
    assert extra == [f"{n}_l{k}" for k in range(2) for n in ("gx", "gh", "gc", "bc")]
    assert ln.params()["gx_l1"].shape == (16,) and ln.params()["bc_l0"].shape == (4,)
    assert (ln.params()["gh_l0"] == 1).all() and (ln.params()["bc_l1"] == 0).all()
    for k, v in plain.params().items():
        np.testing.assert_array_equal(v, ln.params()[k])
    assert "layer_norm=True" in repr(ln)


def test_torch_state_dict_round_trip():
    rng = np.random.default_rng(2)
    a = random_layer(3, 4, 2, np.float64, rng, bidirectional=True)
    b = lstmlab.LSTM(3, 4, num_layers=2, layer_norm=True, bidirectional=True, dtype=np.float64)
    b.load_torch_state_dict(a.torch_state_dict())
    for k, v in a.params().items():
        np.testing.assert_array_equal(b.params()[k], v)
    with pytest.raises(ValueError, match="ln_c_bias_l0"):
        lstmlab.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64
                     ).load_torch_state_dict(a.torch_state_dict())


def test_from_torch_state_dict_builds_the_layer_norm_lstm_its_keys_describe():
    # the ln_* keys torch_state_dict writes were "unexpected" to from_torch_state_dict, which
    # built a plain LSTM: its own output could not be read back
    from lstmlab.interop import from_torch_state_dict

    rng = np.random.default_rng(3)
    a = random_layer(3, 4, 2, np.float64, rng, bidirectional=True)
    b = from_torch_state_dict(a.torch_state_dict())
    assert b.layer_norm and b.bidirectional and b.num_layers == 2
    x = rng.normal(size=(5, 2, 3))
    np.testing.assert_array_equal(b(x)[0], a(x)[0])


@pytest.mark.parametrize("opts", [dict(proj_size=2), dict(peephole=True), dict(clip=1.0),
                                  dict(input_forget=True)])
def test_combinations_it_does_not_have_are_refused(opts):
    with pytest.raises(ValueError, match="layer_norm does not combine"):
        lstmlab.LSTM(3, 4, layer_norm=True, **opts)
    with pytest.raises(TypeError, match="layer_norm must be True or False"):
        lstmlab.LSTM(3, 4, layer_norm="yes")


def test_cli_trains_resumes_and_generates_a_layer_norm_lstm(tmp_path):
    from lstmlab.cli import main
    from lstmlab.training.checkpoint import load_checkpoint
    from lstmlab.training.lm import load_charlm
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the layer norm lstm reads this text again and again. " * 40,
                      encoding="utf-8")
    out = tmp_path / "run"
    args = ["train", str(corpus), "--out", str(out), "--layer-norm", "--hidden", "8",
            "--layers", "2", "--embed", "4", "--seq-len", "10", "--batch-size", "3",
            "--eval-every", "2", "--eval-chunks", "1", "--checkpoint-every", "2", "--quiet",
            "--schedule", "constant"]  # the learning rate does not depend on --steps
    assert main(args + ["--steps", "2"]) == 0
    meta, arrays = load_checkpoint(out / "last.ckpt")
    assert meta["model"]["layer_norm"] is True
    assert arrays["param/rnn.gc_l1"].shape == (8,)
    assert main(args + ["--steps", "4", "--resume"]) == 0
    whole = tmp_path / "whole"  # the same run without the stop: the same losses, bit for bit
    assert main([a if a != str(out) else str(whole) for a in args] + ["--steps", "4"]) == 0
    assert [r["loss"] for r in _metrics(out)] == [r["loss"] for r in _metrics(whole)]
    model, vocab = load_charlm(out / "last.ckpt")[:2]
    assert model.rnn.layer_norm and "LN-LSTM" in repr(model)
    assert main(["generate", str(out / "last.ckpt"), "--prompt", "the", "--length", "5",
                 "--seed", "1"]) == 0
    assert main(["train", str(corpus), "--out", str(tmp_path / "g"), "--model", "gru",
                 "--layer-norm", "--steps", "1"]) == 2


def _metrics(run):
    import json
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if "loss" in r]


def test_formats_without_layer_norm_refuse_it_by_name():
    from lstmlab.interop import keras_io, onnx_export, torch_io
    layer = lstmlab.LSTM(3, 4, layer_norm=True)
    embed, head = lstmlab.Embedding(5, 3), lstmlab.Linear(4, 5)
    for export in (torch_io.to_torch, keras_io.to_keras_weights, onnx_export.to_onnx,
                   lambda m: onnx_export.onnx_weights(m, 0),
                   lambda m: keras_io.keras_charlm(embed, m, head)):
        with pytest.raises(ValueError, match="layer_norm=True"):
            export(layer)


def test_the_benchmarks_pytorch_baseline_computes_the_same_layer(monkeypatch):
    """bench/torch_lnlstm.py (what ``bench_lstm.py --suites lnlstm`` times) is the same
    function as the layer, so the comparison is like for like."""
    from pathlib import Path
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    from torch_lnlstm import LayerNormLSTM, load_lstmlab
    rng = np.random.default_rng(11)
    layer = random_layer(3, 5, 1, np.float64, rng)
    x, h0, c0 = rng.normal(size=(4, 2, 3)), rng.normal(size=(2, 5)), rng.normal(size=(2, 5))
    y, (h, c) = layer.forward(x, (h0[None], c0[None]))
    mod = load_lstmlab(LayerNormLSTM(3, 5).double(), layer)
    ty, (th, tc) = mod(*(torch.from_numpy(a) for a in (x, h0, c0)))
    for ours, ref in ((y, ty), (h[0], th), (c[0], tc)):
        assert rel_err(ours, ref.detach().numpy()) < 1e-10
