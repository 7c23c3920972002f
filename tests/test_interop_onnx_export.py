"""ONNX export: onnx.checker accepts the graphs and ONNX Runtime computes what lstmlab does.

Randomized layer configurations (LSTM and RNN, 1-3 levels, bidirectional, batch_first,
with and without bias, ragged sequence_lens, peepholes, clip, coupled gates) with random
weights and non-zero initial states, float32 to 1e-5. Then the char-LM graph (Embedding ->
LSTM stack -> Linear): its logits, its vocabulary metadata, and the same greedy text.
"""

import errno
import importlib.util
import json
import os
import re

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from lstmlab import LSTM, RNN  # noqa: E402
from lstmlab.interop import onnx_weights, to_onnx  # noqa: E402
from lstmlab.layers.basic import Embedding, Linear  # noqa: E402


def session(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def random_layer(seed):
    rng = np.random.default_rng(seed)
    kind = ["LSTM", "RNN", "LSTM"][seed % 3]
    common = dict(num_layers=int(rng.integers(1, 4)), bidirectional=bool(rng.integers(2)),
                  bias=seed % 4 != 3, batch_first=bool(rng.integers(2)), rng=rng)
    D, H = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    if kind == "LSTM":
        variant = {}
        if seed % 3 == 2:  # every third LSTM case uses the ONNX-only options
            variant = dict(peephole=True, clip=[None, 1.0][seed % 2], input_forget=seed % 5 == 2)
        layer = LSTM(D, H, **common, **variant)
    else:
        layer = RNN(D, H, nonlinearity=["tanh", "relu"][seed % 2], **common)
    for v in layer.params().values():
        v[...] = rng.normal(0, 0.7, size=v.shape)
    return rng, layer


@pytest.mark.parametrize("seed", range(18))
def test_onnxruntime_equals_lstmlab(seed):
    rng, layer = random_layer(seed)
    T = int(rng.integers(1, 7)) if seed % 5 else 1
    B = int(rng.integers(1, 5)) if seed % 7 else 1
    use_lens = seed % 2 == 0
    model = to_onnx(layer, sequence_lens=use_lens)
    D, H = layer.input_size, layer.hidden_size
    n = layer.num_layers * layer.num_directions
    x = rng.normal(size=(B, T, D) if layer.batch_first else (T, B, D)).astype(np.float32)
    h0 = rng.normal(size=(n, B, H)).astype(np.float32)
    c0 = rng.normal(size=(n, B, H)).astype(np.float32)
    feeds = {"X": x, "h0": h0}
    lengths = None
    if use_lens:
        lengths = rng.integers(1, T + 1, size=B)
        feeds["sequence_lens"] = lengths.astype(np.int32)
    if isinstance(layer, LSTM):
        feeds["c0"] = c0
        y, (h, c) = layer(x, (h0, c0), lengths=lengths)
        want = [y, h, c]
    else:
        y, h = layer(x, h0, lengths=lengths)
        want = [y, h]
    got = session(model).run(None, feeds)
    assert [o.name for o in model.graph.output] == ["Y", "h_n", "c_n"][:len(want)]
    for g, w, name in zip(got, want, ["Y", "h_n", "c_n"]):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5, err_msg=name)


def test_absent_initial_state_is_zeros():
    rng = np.random.default_rng(0)
    layer = LSTM(3, 4, num_layers=2, bidirectional=True, rng=rng)
    x = rng.normal(size=(5, 3, 3)).astype(np.float32)
    got = session(to_onnx(layer)).run(None, {"X": x})
    y, (h, c) = layer(x)
    for g, w in zip(got, (y, h, c)):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5)


def test_onnx_weight_layout():
    rng = np.random.default_rng(1)
    layer = LSTM(2, 3, bidirectional=True, peephole=True, rng=rng)
    w = onnx_weights(layer, 0)
    H = 3
    assert w["W"].shape == (2, 12, 2) and w["R"].shape == (2, 12, 3)
    assert w["B"].shape == (2, 24) and w["P"].shape == (2, 9)
    p = layer.params()
    for onnx_block, ours in enumerate((1, 2, 0, 3)):  # ONNX i, o, f, c; ours f, i, o, C̃
        np.testing.assert_array_equal(w["W"][1, onnx_block * H:(onnx_block + 1) * H],
                                      p["Wx_l0_reverse"][:, ours * H:(ours + 1) * H].T)
        np.testing.assert_array_equal(w["B"][0, onnx_block * H:(onnx_block + 1) * H],
                                      p["b_l0"][ours * H:(ours + 1) * H])
    assert not w["B"][:, 12:].any()  # the recurrent-bias half is zero
    for onnx_block, ours in enumerate((1, 2, 0)):  # peepholes ONNX i, o, f; ours f, i, o
        np.testing.assert_array_equal(w["P"][0, onnx_block * H:(onnx_block + 1) * H],
                                      p["P_l0"][ours * H:(ours + 1) * H])


def test_a_vocab_that_does_not_fit_the_head_is_refused():
    # the vocabulary went into the metadata as given: a head of 4 outputs with 3 characters
    # decoded logits into the wrong characters, and a layer alone carried a vocabulary
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="head has 4 outputs but vocab has 3 entries"):
        to_onnx(LSTM(2, 5, rng=rng), embedding=Embedding(3, 2, rng=rng),
                head=Linear(5, 4, rng=rng), vocab="abc")
    with pytest.raises(ValueError, match="a graph of the recurrent layer alone has neither"):
        to_onnx(LSTM(2, 5, rng=rng), vocab="abc")


def test_export_rejects_mismatched_pieces(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="input_size"):
        to_onnx(LSTM(4, 5, rng=rng), embedding=Embedding(3, 2, rng=rng))
    with pytest.raises(ValueError, match="output width"):
        to_onnx(LSTM(4, 5, rng=rng), head=Linear(4, 3, rng=rng))
    with pytest.raises(ValueError, match="vocab has 2 entries"):
        to_onnx(LSTM(2, 5, rng=rng), embedding=Embedding(3, 2, rng=rng), vocab="ab")
    with pytest.raises(TypeError, match="LSTM, RNN or GRU"):
        to_onnx(Linear(2, 2, rng=rng))
    path = tmp_path / "m.onnx"
    to_onnx(RNN(2, 3, rng=rng), path=path)
    onnx.checker.check_model(str(path))


def test_export_names_an_embedding_or_head_that_is_not_a_layer():
    rng = np.random.default_rng(0)
    lstm = LSTM(2, 3, rng=rng)
    table = Embedding(4, 2, rng=rng).params()["weight"]  # the array, not the layer
    with pytest.raises(TypeError, match=r"^embedding must be an lstmlab Embedding or None, "
                                        r"got ndarray$"):
        to_onnx(lstm, embedding=table)
    with pytest.raises(TypeError, match=r"^head must be an lstmlab Linear or None, got dict$"):
        to_onnx(lstm, head=Linear(3, 4, rng=rng).params())


def test_export_refuses_a_head_whose_width_is_not_the_vocabulary_size():
    rng = np.random.default_rng(0)
    emb, rnn = Embedding(5, 2, rng=rng), LSTM(2, 4, rng=rng)
    for width in (3, 6):  # too narrow: tokens never scored; too wide: scores for no token
        head = Linear(4, width, rng=rng)
        with pytest.raises(ValueError, match=f"head has {width} outputs but the embedding has "
                                             f"5 rows"):
            to_onnx(rnn, embedding=emb, head=head)
        with pytest.raises(ValueError, match=f"head has {width} outputs but vocab has 5 entries"):
            to_onnx(rnn, embedding=emb, head=head, vocab="abcde")
        with pytest.raises(ValueError, match=f"head has {width} outputs but vocab has 5 entries"):
            to_onnx(LSTM(3, 4, rng=rng), head=head, vocab="abcde")
    model = to_onnx(rnn, embedding=emb, head=Linear(4, 5, rng=rng), vocab="abcde")
    assert model.graph.output[0].type.tensor_type.shape.dim[2].dim_value == 5
    to_onnx(LSTM(3, 4, rng=rng), head=Linear(4, 2, rng=rng))  # no vocabulary: any width


def test_a_failed_save_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    path = tmp_path / "m.onnx"
    to_onnx(RNN(2, 3, rng=rng), path=path)
    before = path.read_bytes()

    def disk_full(fd):  # the disk fills up as the new model is flushed
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match=f"cannot write {re.escape(str(path))}: No space left"):
        to_onnx(LSTM(2, 30, rng=rng), path=path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


# -- the char-LM graph ----------------------------------------------------------------------

def char_lm(seed=0, num_layers=2):
    rng = np.random.default_rng(seed)
    vocab = list("\n abcdehilnorstw")
    V, E, H = len(vocab), 8, 12
    emb = Embedding(V, E, rng=rng)
    rnn = LSTM(E, H, num_layers=num_layers, rng=rng)
    head = Linear(H, V, rng=rng)
    for m in (rnn, head):
        for v in m.params().values():
            v[...] = rng.normal(0, 0.8, size=v.shape)
    return rng, vocab, emb, rnn, head


def greedy_lstmlab(vocab, emb, rnn, head, prompt, n):
    """Greedy continuation of ``prompt`` by lstmlab itself, one step at a time."""
    state = None
    for ch in prompt:
        y, state = rnn.step(emb(np.array([vocab.index(ch)])), state)
    out = []
    for _ in range(n):
        nxt = int(np.argmax(head(y)[0]))
        out.append(vocab[nxt])
        y, state = rnn.step(emb(np.array([nxt])), state)
    return "".join(out)


def test_char_lm_logits_and_vocab():
    rng, vocab, emb, rnn, head = char_lm()
    model = to_onnx(rnn, embedding=emb, head=head, vocab=vocab)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["vocab"]) == vocab
    assert [i.name for i in model.graph.input] == ["tokens", "h0", "c0"]
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    tokens = rng.integers(0, len(vocab), size=(7, 3))
    h0 = rng.normal(size=(2, 3, 12)).astype(np.float32)
    c0 = rng.normal(size=(2, 3, 12)).astype(np.float32)
    logits, h_n, c_n = session(model).run(None, {"tokens": tokens, "h0": h0, "c0": c0})
    y, (h, c) = rnn(emb(tokens), (h0, c0))
    np.testing.assert_allclose(logits, head(y), rtol=0, atol=1e-5)
    np.testing.assert_allclose(h_n, h, rtol=0, atol=1e-5)
    np.testing.assert_allclose(c_n, c, rtol=0, atol=1e-5)
    logits0, _, _ = session(model).run(None, {"tokens": tokens})  # h0/c0 default to zeros
    np.testing.assert_allclose(logits0, head(rnn(emb(tokens))[0]), rtol=0, atol=1e-5)


def test_char_lm_greedy_text_is_the_same_in_onnxruntime():
    _, vocab, emb, rnn, head = char_lm(seed=9)  # a seed whose continuation varies
    model = to_onnx(rnn, embedding=emb, head=head, vocab=vocab)
    sess = session(model)
    meta = sess.get_modelmeta().custom_metadata_map
    chars = json.loads(meta["vocab"])

    def greedy_onnx(prompt, n):
        ids = np.array([[chars.index(ch)] for ch in prompt], dtype=np.int64)  # (T, 1)
        logits, h, c = sess.run(None, {"tokens": ids})
        out = []
        for _ in range(n):
            nxt = int(np.argmax(logits[-1, 0]))
            out.append(chars[nxt])
            logits, h, c = sess.run(None, {"tokens": np.array([[nxt]], np.int64), "h0": h, "c0": c})
        return "".join(out)

    text = greedy_lstmlab(vocab, emb, rnn, head, "the ", 40)
    assert greedy_onnx("the ", 40) == text
    assert len(set(text)) > 2  # a non-trivial continuation, not one repeated character


def test_docs_snippet_runs_with_onnxruntime_alone(tmp_path):
    """docs/interop.md's snippet, verbatim, in a fresh interpreter where lstmlab cannot load."""
    import pathlib
    import re
    import subprocess
    import sys
    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "interop.md").read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    (snippet,) = [b for b in blocks if b.startswith("# Needs only numpy and onnxruntime")]
    assert "lstmlab" not in snippet
    _, vocab, emb, rnn, head = char_lm(seed=9)
    to_onnx(rnn, embedding=emb, head=head, vocab=vocab, path=tmp_path / "charlm.onnx")
    guard = "import sys; sys.modules['lstmlab'] = None\n"
    res = subprocess.run([sys.executable, "-c", guard + snippet], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "the " + greedy_lstmlab(vocab, emb, rnn, head, "the ", 100) + "\n"


def test_onnxruntime_loads_an_exported_char_lm_without_warnings(tmp_path):
    """h0/c0 are optional inputs, not initializers that are also inputs (which ONNX Runtime
    warns about, one line each). Its C++ log goes to the process's stderr: a subprocess."""
    import subprocess
    import sys
    for make in (LSTM, RNN):
        _, vocab, emb, _, head = char_lm(seed=4)
        rnn = make(emb.embedding_dim, head.in_features, num_layers=2,
                   rng=np.random.default_rng(4))
        path = tmp_path / f"{make.__name__}.onnx"
        to_onnx(rnn, embedding=emb, head=head, vocab=vocab, path=path)
        code = ("import numpy as np, onnxruntime as ort\n"
                f"s = ort.InferenceSession({str(path)!r}, providers=['CPUExecutionProvider'])\n"
                "print([i.name for i in s.get_inputs()], len(s.get_overridable_initializers()))\n"
                "s.run(None, {'tokens': np.zeros((3, 2), np.int64)})\n")
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        states = "['tokens', 'h0', 'c0']" if make is LSTM else "['tokens', 'h0']"
        assert res.stdout == f"{states} 0\n"


def test_states_fed_or_left_out_in_lstmlab_and_onnxruntime():
    from lstmlab.interop import import_onnx
    _, vocab, emb, rnn, head = char_lm(seed=5)
    model = to_onnx(rnn, embedding=emb, head=head, vocab=vocab)
    imported = import_onnx(model)
    assert imported.inputs == ["tokens"]
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, len(vocab), size=(4, 3))
    L, H = rnn.num_layers, rnn.hidden_size
    h0, c0 = (rng.normal(size=(L, 3, H)).astype(np.float32) for _ in range(2))
    y, (h, c) = rnn(emb(tokens), (h0, c0))
    want = head(y)
    feeds = {"tokens": tokens, "h0": h0, "c0": c0}
    for got in (session(model).run(None, feeds), list(imported.run(feeds).values())):
        np.testing.assert_allclose(got[0], want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[1], h, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[2], c, rtol=1e-4, atol=1e-5)
    zeros, _ = rnn(emb(tokens))
    only_h = {"tokens": tokens, "h0": np.zeros((L, 3, H), np.float32)}
    for got in (session(model).run(["logits"], only_h)[0], imported.run(only_h)["logits"],
                imported.run({"tokens": tokens})["logits"]):
        np.testing.assert_allclose(got, head(zeros), rtol=1e-4, atol=1e-5)


def test_export_refuses_weights_that_float32_cannot_hold(tmp_path):
    # a diverged layer, or a float64 weight beyond float32's range, was written as NaN or inf
    # into the graph, every output of which was then NaN or inf
    rng = np.random.default_rng(0)
    nan = LSTM(3, 4, rng=rng)
    nan.params()["Wh_l0"][1, 2] = np.nan
    with pytest.raises(ValueError, match=r"rnn parameter 'Wh_l0' .*NaN or inf \(first at index "
                                         r"\(1, 2\)\)"):
        to_onnx(nan, path=tmp_path / "nan.onnx")
    big = Linear(4, 5, dtype=np.float64, rng=rng)
    big.params()["bias"][3] = 1e300
    with pytest.raises(ValueError, match=r"head parameter 'bias' .*holds 1e\+300 at index \(3,\)"):
        to_onnx(LSTM(3, 4, dtype=np.float64, rng=rng), head=big, path=tmp_path / "big.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_takes_a_vocab_of_strings_and_a_bool_sequence_lens():
    # a vocab of numbers was written, and then refused by import_onnx; sequence_lens="False"
    # added the sequence_lens input
    rng = np.random.default_rng(0)
    emb, rnn, head = Embedding(3, 2, rng=rng), LSTM(2, 4, rng=rng), Linear(4, 3, rng=rng)
    with pytest.raises(TypeError, match=r"vocab must list one string per token .* got 7 of "
                                        r"type int at index 1"):
        to_onnx(rnn, embedding=emb, head=head, vocab=["a", 7, "c"])
    with pytest.raises(TypeError, match="sequence_lens must be True or False, got 'False'"):
        to_onnx(rnn, sequence_lens="False")
    model = to_onnx(rnn, sequence_lens=np.bool_(True))
    assert [i.name for i in model.graph.input][:2] == ["X", "sequence_lens"]


def test_a_vocab_listing_a_token_twice_is_refused():
    # a reader's {token: id} lookup of the stored vocab kept one id of the two
    rng = np.random.default_rng(0)
    emb, rnn, head = Embedding(5, 2, rng=rng), LSTM(2, 4, rng=rng), Linear(4, 5, rng=rng)
    with pytest.raises(ValueError, match=r"vocab lists 'a' twice \(at indices 0 and 1\)"):
        to_onnx(rnn, embedding=emb, head=head, vocab=list("aacde"))


def test_a_batch_first_layer_in_a_char_lm_graph_reads_back_as_the_time_major_graph_runs():
    # the graph of a char-LM is time-major whatever the layer's layout, but its metadata said
    # batch_first: the layer read back took (B, T, D) for a graph that runs (T, B, D)
    from lstmlab.interop import import_onnx
    rng = np.random.default_rng(0)
    emb, head = Embedding(5, 2, rng=rng), Linear(4, 5, rng=rng)
    rnn = LSTM(2, 4, batch_first=True, rng=rng)
    model = to_onnx(rnn, embedding=emb, head=head)
    layer = import_onnx(model).to_layer()
    assert layer.batch_first is False
    x = rng.normal(size=(6, 3, 2)).astype(np.float32)  # (T, B, D)
    y_back, _ = layer(x)
    y_ref, _ = rnn(x.transpose(1, 0, 2))
    np.testing.assert_allclose(y_back, y_ref.transpose(1, 0, 2), rtol=0, atol=1e-6)


def test_writers_name_a_path_that_is_no_file_name(tmp_path, monkeypatch):
    # path="" was "cannot write .: Device or resource busy", path=5 a TypeError from pathlib
    from lstmlab.interop import save_keras_charlm, save_safetensors
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    emb, rnn, head = Embedding(5, 2, rng=rng), LSTM(2, 4, rng=rng), Linear(4, 5, rng=rng)
    writers = [lambda p: to_onnx(rnn, path=p),
               lambda p: save_keras_charlm(p, emb, rnn, head)]
    if importlib.util.find_spec("safetensors") is not None:
        writers.append(lambda p: save_safetensors(p, {"embed": emb, "rnn": rnn, "head": head}))
    for write in writers:
        for bad, error, said in (("", ValueError, "path must name a file, got ''"),
                                 (".", ValueError, "path must name a file, got '.'"),
                                 (5, TypeError, r"path must be a file name \(str or "
                                                r"os.PathLike\), got int"),
                                 (b"m.onnx", TypeError, "got bytes")):
            with pytest.raises(error, match=said):
                write(bad)
    assert list(tmp_path.iterdir()) == []
