"""Keras weight arrays: NumPy round trips without Keras, and real Keras 3 when installed.

The real-Keras tests use the torch backend (set before Keras is imported) and compare
Keras's outputs and final states with lstmlab's on random inputs with non-zero initial
states, float32 to 1e-5: stacked, bidirectional, without bias, SimpleRNN tanh and relu, GRU
(reset_after=True).
"""

import os
import pathlib
import re

import numpy as np
import pytest

from lstmlab import GRU, LSTM, RNN
from lstmlab.interop import from_keras_weights, load_keras_weights, to_keras_weights
from lstmlab.layers.basic import Embedding, Linear


def make(kind, L=1, bi=False, bias=True, act="tanh", seed=0, D=3, H=5):
    rng = np.random.default_rng(seed)
    common = dict(num_layers=L, bidirectional=bi, bias=bias, batch_first=True, rng=rng)
    layer = (LSTM(D, H, **common) if kind == "LSTM" else GRU(D, H, **common) if kind == "GRU"
             else RNN(D, H, nonlinearity=act, **common))
    for v in layer.params().values():
        v[...] = rng.normal(0, 0.5, size=v.shape)
    return layer


CASES = [("LSTM", 1, False, True, "tanh"), ("LSTM", 2, True, True, "tanh"),
         ("LSTM", 2, False, False, "tanh"), ("RNN", 1, False, True, "tanh"),
         ("RNN", 2, True, True, "relu"), ("RNN", 1, True, False, "tanh"),
         ("GRU", 1, False, True, "tanh"), ("GRU", 2, True, True, "tanh"),
         ("GRU", 2, False, False, "tanh")]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_numpy_round_trip(case):
    kind, L, bi, bias, act = case
    layer = make(kind, L, bi, bias, act)
    weights = to_keras_weights(layer)
    G = {"LSTM": 4, "GRU": 3}.get(kind, 1)
    assert len(weights) == L
    assert weights[0][0].shape == (3, G * 5) and weights[0][1].shape == (5, G * 5)
    assert len(weights[0]) == (3 if bias else 2) * (2 if bi else 1)
    back = from_keras_weights(weights, kind=kind, nonlinearity=act, batch_first=True)
    assert repr(back) == repr(layer)
    for k, v in layer.params().items():
        np.testing.assert_array_equal(back.params()[k], v, err_msg=k)


def test_gate_order_is_keras_ifco():
    layer = make("LSTM")
    H = layer.hidden_size
    kernel = to_keras_weights(layer)[0][0]
    Wx = layer.params()["Wx_l0"]  # blocks f, i, o, C̃
    for keras_block, ours in enumerate((1, 0, 3, 2)):  # Keras i, f, c, o
        np.testing.assert_array_equal(kernel[:, keras_block * H:(keras_block + 1) * H],
                                      Wx[:, ours * H:(ours + 1) * H])


def test_gru_gate_order_is_keras_zrh_and_the_bias_has_two_rows():
    layer = make("GRU")
    H = layer.hidden_size
    kernel, _, bias = to_keras_weights(layer)[0]
    Wx, b = layer.params()["Wx_l0"], layer.params()["b_l0"]  # blocks r, z, n; b_r, b_z, b_in, b_hn
    for keras_block, ours in enumerate((1, 0, 2)):  # Keras z, r, h
        np.testing.assert_array_equal(kernel[:, keras_block * H:(keras_block + 1) * H],
                                      Wx[:, ours * H:(ours + 1) * H])
    assert bias.shape == (2, 3 * H)
    np.testing.assert_array_equal(bias[0], np.concatenate([b[H:2 * H], b[:H], b[2 * H:3 * H]]))
    np.testing.assert_array_equal(bias[1], np.concatenate([np.zeros(2 * H), b[3 * H:]]))
    with pytest.raises(ValueError, match=r"bias of direction 0 must have shape \(2, 15\)"):
        load_keras_weights(layer, [[kernel, _, bias[0]]])


def test_embedding_and_dense_lists():
    rng = np.random.default_rng(0)
    emb, lin = Embedding(6, 3, rng=rng), Linear(3, 4, rng=rng)
    (table,) = to_keras_weights(emb)
    kernel, bias = to_keras_weights(lin)
    assert table.shape == (6, 3) and kernel.shape == (3, 4) and bias.shape == (4,)
    lin2 = Linear(3, 4, rng=rng)
    load_keras_weights(lin2, [kernel, bias])
    np.testing.assert_array_equal(lin2.params()["weight"], lin.params()["weight"])


def test_a_dense_or_embedding_list_of_the_wrong_shape_is_named_in_keras_terms():
    # a Dense kernel given as (out, in) was refused as "parameter 'weight': expected shape
    # (4, 3), got (3, 4)", the lstmlab weight's shape: the opposite of the kernel Keras has
    lin = Linear(3, 4)
    with pytest.raises(ValueError, match=r"weights\[0\] \(kernel\) must have shape \(3, 4\), "
                                         r"got \(4, 3\)"):
        load_keras_weights(lin, [np.zeros((4, 3), np.float32), np.zeros(4, np.float32)])
    with pytest.raises(ValueError, match=r"weights\[1\] \(bias\) must have shape \(4,\)"):
        load_keras_weights(lin, [np.zeros((3, 4), np.float32), np.zeros(3, np.float32)])
    with pytest.raises(ValueError, match=r"weights\[0\] \(embeddings\) must have shape "
                                         r"\(6, 3\), got \(5, 3\)"):
        load_keras_weights(Embedding(6, 3), [np.zeros((5, 3), np.float32)])


def test_errors_name_the_problem():
    layer = make("LSTM", 2, True)
    w = to_keras_weights(layer)
    with pytest.raises(ValueError, match="one weight list per layer level"):
        load_keras_weights(layer, w[:1])
    with pytest.raises(ValueError, match=r"weights\[1\] must hold 6 arrays"):
        load_keras_weights(layer, [w[0], w[1][:3]])
    bad = [list(w[0]), w[1]]
    bad[0][1] = bad[0][1][:, :8]
    with pytest.raises(ValueError, match="recurrent_kernel of direction 0 must have shape"):
        load_keras_weights(layer, bad)
    with pytest.raises(ValueError, match="2, 3, 4 or 6"):
        from_keras_weights([w[0][:5]])
    with pytest.raises(ValueError, match=r"\(H, 1H\)"):
        from_keras_weights([w[0]], kind="SimpleRNN")
    with pytest.raises(ValueError, match="peephole"):
        to_keras_weights(LSTM(2, 3, peephole=True))
    with pytest.raises(TypeError, match="floating point"):
        load_keras_weights(make("RNN"), [[np.zeros((3, 5), int), np.zeros((5, 5)), np.zeros(5)]])


def test_weights_that_are_not_lists_of_arrays_are_named():
    # an int or None was "object of type 'int' has no len()", an empty list for an Embedding
    # an IndexError, an array for from_keras_weights "truth value ... is ambiguous"; and an
    # Embedding took [embeddings, anything] and dropped the second array unseen
    layer = make("LSTM", 2, True)
    for bad in (None, 5, np.zeros((2, 3))):
        with pytest.raises(TypeError, match=r"weights must be a list of arrays \(what a Keras "
                                             r"layer's get_weights\(\) returns\), got"):
            load_keras_weights(layer, bad)
    with pytest.raises(TypeError, match=r"weights\[1\] must be a list of arrays"):
        load_keras_weights(layer, [to_keras_weights(layer)[0], np.zeros(3)])
    with pytest.raises(ValueError, match="one list of arrays per layer level"):
        from_keras_weights(np.zeros((2, 3)))
    emb = Embedding(4, 2, rng=np.random.default_rng(0))
    table = np.arange(8.0).reshape(4, 2)
    for bad in ([], [table, table]):
        with pytest.raises(ValueError, match=rf"an Embedding layer has 1 weight array "
                                             rf"\(embeddings\), got {len(bad)}"):
            load_keras_weights(emb, bad)
    with pytest.raises(TypeError, match="got ndarray"):
        load_keras_weights(emb, table)
    load_keras_weights(emb, (table,))
    np.testing.assert_array_equal(emb.params()["weight"], table)


def test_a_kind_that_is_not_a_name_is_refused_by_name():
    # kind=None (which from_torch_state_dict takes, to read the kind off the shapes) was an
    # AttributeError: "'NoneType' object has no attribute 'upper'"
    with pytest.raises(ValueError, match="kind must be 'LSTM', 'SimpleRNN' or 'GRU', got None"):
        from_keras_weights(to_keras_weights(make("LSTM")), kind=None)


# -- real Keras -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras():
    pytest.importorskip("torch")
    if os.environ.get("KERAS_BACKEND", "torch") != "torch":
        pytest.skip("these tests run Keras on its torch backend")
    os.environ["KERAS_BACKEND"] = "torch"
    return pytest.importorskip("keras")


def keras_stack(keras, kind, L, bi, bias, act, H, T, D):
    """Functional Keras model of L recurrent layers returning (y, states of every layer)."""
    inp = keras.Input((T, D))
    states_in, outs_state = [], []
    x = inp
    for _ in range(L):
        if kind == "LSTM":
            cell = keras.layers.LSTM(H, use_bias=bias, return_sequences=True, return_state=True)
            n = 2
        elif kind == "GRU":
            cell = keras.layers.GRU(H, use_bias=bias, reset_after=True, return_sequences=True,
                                    return_state=True)
            n = 1
        else:
            cell = keras.layers.SimpleRNN(H, activation=act, use_bias=bias,
                                          return_sequences=True, return_state=True)
            n = 1
        rec = keras.layers.Bidirectional(cell) if bi else cell
        init = [keras.Input((H,)) for _ in range(n * (2 if bi else 1))]
        states_in += init
        res = rec(x, initial_state=init)
        x, st = res[0], list(res[1:])
        outs_state += st
    return keras.Model([inp] + states_in, [x] + outs_state)


# Keras 3.15's torch backend converts tensors with np.array(x), which NumPy 2 warns about.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.parametrize("case", CASES, ids=str)
def test_real_keras_computes_the_same(keras, case):
    kind, L, bi, bias, act = case
    layer = make(kind, L, bi, bias, act, seed=1)
    B, T, D, H = 3, 4, layer.input_size, layer.hidden_size
    model = keras_stack(keras, kind, L, bi, bias, act, H, T, D)
    rec_layers = [lay for lay in model.layers if lay.weights]
    for kl, w in zip(rec_layers, to_keras_weights(layer)):
        kl.set_weights(w)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, T, D)).astype(np.float32)
    K = 2 if bi else 1
    h0 = rng.normal(size=(L * K, B, H)).astype(np.float32)
    c0 = rng.normal(size=(L * K, B, H)).astype(np.float32)
    # Keras's state order: per layer, per direction, (h, c) for an LSTM
    if kind == "LSTM":
        flat = [s for i in range(L * K) for s in (h0[i], c0[i])]
        y, (h, c) = layer(x, (h0, c0))
    else:
        flat = [h0[i] for i in range(L * K)]
        y, h = layer(x, h0)
    out = [o.detach().cpu().numpy() for o in model([x] + flat)]  # torch backend tensors
    np.testing.assert_allclose(out[0], y, rtol=0, atol=1e-5)
    per = 2 if kind == "LSTM" else 1
    for i in range(L * K):
        np.testing.assert_allclose(out[1 + per * i], h[i], rtol=0, atol=1e-5)
        if kind == "LSTM":
            np.testing.assert_allclose(out[2 + per * i], c[i], rtol=0, atol=1e-5)
    # and back: Keras's own get_weights() -> lstmlab
    back = from_keras_weights([kl.get_weights() for kl in rec_layers], kind=kind,
                              nonlinearity=act, batch_first=True)
    for k, v in layer.params().items():
        np.testing.assert_array_equal(back.params()[k], v, err_msg=k)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_the_documented_weight_list_example_runs_as_written(keras):
    """docs/interop.md's Keras block, verbatim (with the page's earlier ``LSTM`` import): the
    weights land in the Keras layers, which then compute what lstmlab computes."""
    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "interop.md").read_text("utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", doc, flags=re.S)
                if "to_keras_weights(layer)" in b]
    namespace = {"LSTM": LSTM}
    exec(block, namespace)
    layer, stack = namespace["layer"], namespace["stack"]
    x = np.random.default_rng(1).normal(size=(2, 7, 16)).astype(np.float32)
    y = stack[1](stack[0](x)[0])[0].detach().cpu().numpy()
    np.testing.assert_allclose(y, layer.forward(x)[0], rtol=0, atol=1e-5)
    for k, v in layer.params().items():
        np.testing.assert_array_equal(namespace["back"].params()[k], v, err_msg=k)


@pytest.mark.parametrize("export", ["keras", "onnx"])
def test_char_lm_pieces_that_do_not_chain_are_named(keras, export):
    from lstmlab import Embedding, Linear
    from lstmlab.interop import keras_charlm, to_onnx

    if export == "onnx":
        pytest.importorskip("onnx")
    write = keras_charlm if export == "keras" else (lambda e, r, h: to_onnx(r, embedding=e, head=h))
    rng = np.random.default_rng(0)
    rnn = LSTM(3, 4, rng=rng)
    with pytest.raises(ValueError, match="embedding width 5 != the recurrent layer's input_size 3"):
        write(Embedding(9, 5, rng=rng), rnn, Linear(4, 9, rng=rng))
    with pytest.raises(ValueError, match="head in_features 7 != the recurrent layer's output "
                                         "width 4"):
        write(Embedding(9, 3, rng=rng), rnn, Linear(7, 9, rng=rng))
    for width in (7, 11):  # a head narrower or wider than the vocabulary (9 embedding rows)
        with pytest.raises(ValueError, match=f"head has {width} outputs but the embedding has "
                                             f"9 rows"):
            write(Embedding(9, 3, rng=rng), rnn, Linear(4, width, rng=rng))


def test_save_keras_charlm_refuses_a_head_whose_width_is_not_the_vocabulary_size(keras, tmp_path):
    from lstmlab import Embedding, Linear
    from lstmlab.interop import save_keras_charlm

    rng = np.random.default_rng(0)
    path = tmp_path / "m.keras"
    with pytest.raises(ValueError, match="head has 3 outputs but the embedding has 5 rows"):
        save_keras_charlm(path, Embedding(5, 2, rng=rng), LSTM(2, 4, rng=rng),
                          Linear(4, 3, rng=rng))
    assert not path.exists()


def test_non_finite_weights_are_refused_by_their_keras_place():
    layer = make("LSTM", 2, True)
    w = to_keras_weights(layer)
    w[1][4] = w[1][4].copy()
    w[1][4][2, 3] = np.nan
    with pytest.raises(ValueError, match=r"weights\[1\]\[4\] contains NaN or inf \(first at "
                                         r"index \(2, 3\)\)"):
        load_keras_weights(layer, w)
    with pytest.raises(ValueError, match=r"weights\[1\] \(bias\) contains NaN or inf"):
        load_keras_weights(Linear(3, 4), [np.zeros((3, 4)), np.array([0, np.inf, 0, 0])])


def test_a_keras_char_lm_without_an_end_or_with_projections_is_named():
    # embed=None or head=None was an AttributeError from inside keras_charlm; an LSTM with
    # proj_size was refused as "head in_features P != ... output width H" for the right head
    import importlib.util

    from lstmlab.interop import keras_charlm

    if importlib.util.find_spec("keras") is None:
        pytest.skip("Keras is not installed")
    rng = np.random.default_rng(0)
    emb, rnn, head = Embedding(5, 2, rng=rng), LSTM(2, 4, rng=rng), Linear(4, 5, rng=rng)
    with pytest.raises(TypeError, match="embed must be an lstmlab Embedding: .* got None"):
        keras_charlm(None, rnn, head)
    with pytest.raises(TypeError, match="head must be an lstmlab Linear: .* got None"):
        keras_charlm(emb, rnn, None)
    with pytest.raises(ValueError, match="Keras's LSTM has no projection: an LSTM with "
                                         "proj_size=3"):
        keras_charlm(emb, LSTM(2, 4, proj_size=3, rng=rng), Linear(3, 5, rng=rng))


@pytest.mark.parametrize("option, text", [({"proj_size": 2}, "no projection: an LSTM with "
                                           "proj_size=2 cannot be loaded from Keras"),
                                          ({"layer_norm": True}, "no layer normalisation: an "
                                           "LSTM with layer_norm=True cannot be loaded from "
                                           "Keras")])
def test_loading_keras_weights_into_a_layer_keras_lacks_says_loaded_from(option, text):
    # the refusal said the layer "cannot be written as Keras", while it was being loaded into
    weights = to_keras_weights(LSTM(3, 4, rng=np.random.default_rng(0)))
    with pytest.raises(ValueError, match=re.escape(f"Keras's LSTM has {text}")):
        load_keras_weights(LSTM(3, 4, rng=np.random.default_rng(0), **option), weights)
