"""The GRU (``lstmlab.GRU``) against ``torch.nn.GRU``: outputs, final states and every gradient.

Randomized configurations (T and B from 1, D != H, 1-3 layers, bidirectional, batch_first,
ragged lengths, bias on/off) on both kernels, non-zero biases (PyTorch's two different
ones) and initial states, random upstream gradients on outputs and final state: float64 to
1e-10, float32 to 1e-5. Then the layer's own contract: state dicts both ways, streaming
``step`` against ``nn.GRUCell``, clear errors.
"""

import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lstmlab  # noqa: E402
from seq_helpers import EDGE_SHAPES, edge_config, random_config  # noqa: E402
from torch_ref import TOL, assert_worst_within, make_torch_twin, rel_err, torch_run  # noqa: E402

BACKENDS = ["numpy"] + (["fast"] if importlib.util.find_spec("numba") else [])


def run_case(cfg, dtype, seed, backend):
    """Every relative error of the layer against its torch twin, by name."""
    rng = np.random.default_rng(2000 + seed)
    layer = lstmlab.GRU(cfg["D"], cfg["H"], num_layers=cfg["L"], bias=cfg["bias"],
                        batch_first=cfg["batch_first"], bidirectional=cfg["bidirectional"],
                        dtype=dtype, rng=rng)
    layer.backend = backend
    mod = make_torch_twin(layer, rng)
    T, B, D, H = cfg["T"], cfg["B"], cfg["D"], cfg["H"]
    n, K = cfg["L"] * (2 if cfg["bidirectional"] else 1), 2 if cfg["bidirectional"] else 1
    x = rng.normal(size=(B, T, D) if cfg["batch_first"] else (T, B, D)).astype(dtype)
    h0 = rng.normal(size=(n, B, H)).astype(dtype)
    lengths = None
    if cfg["use_lengths"]:
        lengths = rng.integers(1, T + 1, size=B)
        lengths[rng.integers(B)] = T  # torch pads to the longest; keep one full-length row
    dy = rng.normal(size=(B, T, K * H) if cfg["batch_first"] else (T, B, K * H)).astype(dtype)
    dh_n = rng.normal(size=(n, B, H)).astype(dtype)

    y, h_n = layer.forward(x, h0, lengths=lengths)
    dx, dh0 = layer.backward(dy, dh_n)
    ty, (th_n,), tdx, (tdh0,), tgrads = torch_run(mod, x, (h0,), lengths, dy, (dh_n,))
    errors = {"y": rel_err(y, ty), "h_n": rel_err(h_n, th_n), "dx": rel_err(dx, tdx),
              "dh0": rel_err(dh0, tdh0)}
    ours = layer.torch_state_dict(grads=True)
    assert set(ours) == set(tgrads)
    errors.update({k: rel_err(ours[k], g) for k, g in tgrads.items()})
    return errors


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype,seed", [(np.float64, s) for s in range(24)]
                         + [(np.float32, s) for s in range(6)])
def test_gru_matches_torch(dtype, seed, backend):
    cfg = random_config(seed)
    assert_worst_within(run_case(cfg, dtype, seed, backend), TOL[dtype], cfg)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("T,B", EDGE_SHAPES)
def test_gru_edge_shapes(T, B, backend):
    assert max(run_case(edge_config(T, B), np.float64, 7 * T + B, backend).values()) <= 1e-10


def test_torch_state_dict_round_trip_and_bias_layout():
    """Loading sums PyTorch's r and z biases and keeps b_in and b_hn apart; writing back gives
    a state dict that computes the same in torch (bias_hh's r and z blocks zero)."""
    rng = np.random.default_rng(4)
    mod = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True).double()
    layer = lstmlab.GRU(3, 5, num_layers=2, bidirectional=True, dtype=np.float64, rng=rng)
    layer.load_torch_state_dict(mod.state_dict())
    sd = mod.state_dict()
    bi, bh = sd["bias_ih_l1_reverse"].numpy(), sd["bias_hh_l1_reverse"].numpy()
    want = np.concatenate([bi[:10] + bh[:10], bi[10:], bh[10:]])
    np.testing.assert_allclose(layer.params()["b_l1_reverse"], want, rtol=0, atol=1e-15)
    out = layer.torch_state_dict()
    assert np.all(out["bias_hh_l0"][:10] == 0)
    mod2 = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True).double()
    mod2.load_state_dict({k: torch.from_numpy(v) for k, v in out.items()})
    x = torch.from_numpy(rng.normal(size=(4, 2, 3)))
    assert rel_err(mod2(x)[0].detach().numpy(), mod(x)[0].detach().numpy()) <= 1e-14


def test_load_torch_state_dict_names_what_is_wrong():
    layer = lstmlab.GRU(3, 4, rng=np.random.default_rng(0))
    sd = torch.nn.GRU(3, 4).state_dict()
    with pytest.raises(ValueError, match="missing"):
        layer.load_torch_state_dict({k: v for k, v in sd.items() if k != "bias_hh_l0"})
    with pytest.raises(ValueError, match=r"weight_hh_l0.*shape \(12, 4\)"):
        layer.load_torch_state_dict(dict(sd, weight_hh_l0=torch.zeros(12, 5)))
    with pytest.raises(ValueError, match=r"weight_ih_l0.*shape \(12, 3\), got \(16, 3\)"):
        layer.load_torch_state_dict(torch.nn.LSTM(3, 4).state_dict())  # an LSTM's: 4 blocks


def test_keras_reset_before_weights_are_refused_saying_why():
    # Keras' GRU(reset_after=False) keeps one (3H,) bias; the error named only the shapes
    from lstmlab.interop import from_keras_weights
    kernel, rec = np.zeros((3, 12), np.float32), np.zeros((4, 12), np.float32)
    with pytest.raises(ValueError, match=r"reset_after=False.*computes another function"):
        from_keras_weights([[kernel, rec, np.zeros(12, np.float32)]], kind="GRU")


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_matches_torch_gru_cell_and_forward(backend):
    """Streaming ``step`` equals ``nn.GRUCell`` step by step (batched and unbatched) and a
    forward over the same sequence; bad input names the argument."""
    rng = np.random.default_rng(8)
    layer = lstmlab.GRU(6, 7, num_layers=2, dtype=np.float64, rng=rng)
    layer.backend = backend
    cells = [torch.nn.GRUCell(6 if k == 0 else 7, 7, dtype=torch.float64) for k in range(2)]
    sd = layer.torch_state_dict()
    with torch.no_grad():
        for k, cell in enumerate(cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(torch.from_numpy(sd[f"{name}_l{k}"]))
    for B in (1, 3, 6):
        h = rng.normal(size=(2, B, 7))
        x = rng.normal(size=(5, B, 6))
        th = [torch.from_numpy(h[k]) for k in range(2)]
        state = h
        for t in range(5):
            y, state = layer.step(x[t], state)
            th[0] = cells[0](torch.from_numpy(x[t]), th[0])
            th[1] = cells[1](th[0], th[1])
            assert rel_err(y, th[1].detach().numpy()) <= 1e-12
            assert rel_err(state[0], th[0].detach().numpy()) <= 1e-12
        y_seq, h_n = layer.forward(x, h)
        assert rel_err(y, y_seq[-1]) <= 1e-12 and rel_err(state, h_n) <= 1e-12
    y1, s1 = layer.step(x[0, 0])  # unbatched, from zeros
    assert y1.shape == (7,) and s1.shape == (2, 7)
    with pytest.raises(ValueError, match="x_t must have 6 features"):
        layer.step(np.ones((2, 5)))
    with pytest.raises(ValueError, match="state"):
        layer.step(np.ones((2, 6)), np.zeros((2, 3, 7)))


def test_gru_repr_params_and_errors():
    layer = lstmlab.GRU(3, 4, num_layers=2, bidirectional=True, rng=np.random.default_rng(0))
    assert repr(layer) == "GRU(3, 4, num_layers=2, bidirectional=True, dtype=float32)"
    shapes = {k: v.shape for k, v in layer.params().items()}
    assert shapes["Wx_l0"] == (3, 12) and shapes["Wh_l0"] == (4, 12)
    assert shapes["b_l0"] == (16,) and shapes["Wx_l1_reverse"] == (8, 12)
    assert "b_l0" not in lstmlab.GRU(3, 4, bias=False).params()
    with pytest.raises(ValueError, match="hidden_size"):
        lstmlab.GRU(3, 0)
    with pytest.raises(ValueError, match="x must have 3 features"):
        layer.forward(np.ones((5, 2, 4), np.float32))
    with pytest.raises(ValueError, match="h0"):
        layer.forward(np.ones((5, 2, 3), np.float32), np.zeros((4, 2, 5)))
    with pytest.raises(RuntimeError, match="before forward"):
        lstmlab.GRU(3, 4).backward(np.ones((5, 2, 4)))


def test_charlm_cli_trains_resumes_generates_and_evaluates_a_gru(tmp_path, capsys):
    """``lstmlab train --cell gru``: a run resumed from its step-10 checkpoint logs the
    uninterrupted run's losses; the checkpoint generates and evaluates."""
    from lstmlab.cli import main
    from lstmlab.training.lm import load_charlm

    corpus = tmp_path / "c.txt"
    corpus.write_text("def gate(x):\n    return reset(x) + update(x)\n" * 40, encoding="utf-8")

    def train(out, steps, *extra):
        return main(["train", str(corpus), "--cell", "gru", "--out", str(out), "--steps",
                     str(steps), "--hidden", "12", "--embed", "6", "--seq-len", "16",
                     "--batch-size", "3", "--eval-every", "10", "--eval-chunks", "2",
                     "--checkpoint-every", "10", "--schedule", "constant", "--seed", "2", "--quiet",
                     *extra])

    assert train(tmp_path / "full", 20) == 0
    assert train(tmp_path / "part", 10) == 0
    assert train(tmp_path / "part", 20, "--resume") == 0
    logs = [[json.loads(line)["loss"] for line in (tmp_path / d / "metrics.jsonl")
             .read_text().splitlines() if "loss" in json.loads(line)] for d in ("full", "part")]
    assert len(logs[0]) == 20 and logs[0] == logs[1]
    model, vocab, _ = load_charlm(tmp_path / "full" / "best.ckpt")
    assert model.config.cell == "gru" and isinstance(model.rnn, lstmlab.GRU)
    capsys.readouterr()
    assert main(["generate", str(tmp_path / "full" / "best.ckpt"), "--prompt", "def ",
                 "--length", "30", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out) >= 30
    assert main(["evaluate", str(tmp_path / "full" / "best.ckpt"), str(corpus)]) == 0
    assert "bits per character" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "full" / "best.ckpt"), "--file", str(corpus)]) == 2
    assert "holds a GRU: it has no gates or cell state of an LSTM" in capsys.readouterr().err


@pytest.mark.parametrize("seed", range(6))
def test_onnx_export_runs_in_onnxruntime_and_imports_back(seed, tmp_path):
    """A GRU exported to ONNX (a GRU node per level, linear_before_reset=1) computes in ONNX
    Runtime what lstmlab computes (float32, 1e-5; ragged sequence_lens, non-zero h0) and
    imports back to the same parameters."""
    ort = pytest.importorskip("onnxruntime")
    from lstmlab.interop import import_onnx, to_onnx
    rng = np.random.default_rng(seed)
    layer = lstmlab.GRU(int(rng.integers(1, 6)), int(rng.integers(1, 6)),
                        num_layers=int(rng.integers(1, 4)), bidirectional=bool(seed % 2),
                        batch_first=seed % 3 == 1, bias=seed != 4, rng=rng)
    for v in layer.params().values():
        v[...] = rng.normal(0, 0.7, size=v.shape)
    T, B = (1, 1) if seed == 0 else (int(rng.integers(1, 7)), int(rng.integers(1, 5)))
    D, H, n = layer.input_size, layer.hidden_size, layer.num_layers * layer.num_directions
    x = rng.normal(size=(B, T, D) if layer.batch_first else (T, B, D)).astype(np.float32)
    h0 = rng.normal(size=(n, B, H)).astype(np.float32)
    lengths = rng.integers(1, T + 1, size=B)
    path = tmp_path / "gru.onnx"
    model = to_onnx(layer, sequence_lens=True, path=path)
    assert {nd.op_type for nd in model.graph.node} >= {"GRU"}
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"X": x, "h0": h0, "sequence_lens": lengths.astype(np.int32)})
    y, h_n = layer(x, h0, lengths=lengths)
    assert len(got) == 2
    np.testing.assert_allclose(got[0], y, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got[1], h_n, rtol=0, atol=1e-5)
    back = import_onnx(path).to_layer()
    assert repr(back) == repr(layer)
    for k, v in layer.params().items():
        np.testing.assert_allclose(back.params()[k], v, rtol=0, atol=1e-6, err_msg=k)


def test_charlm_export_of_a_gru_runs_in_onnxruntime_and_loads_in_torch(tmp_path):
    """``lstmlab export`` of a GRU char-LM: the ONNX graph's logits equal lstmlab's (float32,
    1e-5) and the torch arrays load into nn.GRU computing the same."""
    ort = pytest.importorskip("onnxruntime")
    from lstmlab.cli import main
    from lstmlab.data.text import Vocab
    from lstmlab.layers.model import CharLM, CharLMConfig
    from lstmlab.training.lm import LMTrainer, TrainConfig

    vocab = Vocab.from_text("abc def\n")
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=6, num_layers=2, embed_dim=4,
                                cell="gru"), rng=np.random.default_rng(0))
    ids = np.array(vocab.encode("abc def\n" * 20))
    trainer = LMTrainer(model, vocab, ids, ids, TrainConfig(steps=1, batch_size=2, seq_len=8), tmp_path / "run",
                        np.random.default_rng(0), progress=False)
    ckpt = trainer.save("last")
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert main(["export", str(ckpt), "--format", "torch-npz", "--out", str(tmp_path / "m.npz")]) == 0
    tokens = np.random.default_rng(1).integers(0, len(vocab), size=(5, 2))
    logits, _ = model.forward(tokens)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    onnx_logits, h_n = sess.run(None, {"tokens": tokens})
    np.testing.assert_allclose(onnx_logits, logits, rtol=0, atol=1e-5)
    arrays = dict(np.load(tmp_path / "m.npz"))
    gru = torch.nn.GRU(4, 6, num_layers=2)
    gru.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in arrays.items()
                         if k.startswith("rnn.")})
    emb = torch.from_numpy(arrays["embed.weight"])[torch.from_numpy(tokens)]
    with torch.no_grad():
        y, _ = gru(emb)
    np.testing.assert_allclose(y.numpy() @ arrays["head.weight"].T + arrays["head.bias"],
                               logits, rtol=0, atol=1e-5)
