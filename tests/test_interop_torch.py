"""PyTorch interop: NumPy state-dict converters, and real torch modules both ways.

The state-dict round trips need no torch. With torch installed, every layer option is
carried to ``torch.nn`` and back and both compute the same outputs and final states on
random inputs with non-zero initial states (float64 to 1e-12, float32 to 1e-5).
"""

import numpy as np
import pytest

from lstmlab import GRU, LSTM, RNN
from lstmlab.interop import (from_torch_state_dict, load_model_state_dict,
                             load_torch_state_dict, model_state_dict, torch_state_dict)
from lstmlab.layers.basic import Embedding, Linear

CONFIGS = [  # (kind, num_layers, bidirectional, bias, batch_first, nonlinearity)
    ("LSTM", 1, False, True, False, "tanh"),
    ("LSTM", 2, True, True, True, "tanh"),
    ("LSTM", 3, False, False, False, "tanh"),
    ("RNN", 2, True, True, False, "relu"),
    ("RNN", 1, False, False, True, "tanh"),
    ("RNN", 3, True, False, True, "tanh"),
    ("GRU", 2, True, True, True, "tanh"),
    ("GRU", 1, False, False, False, "tanh"),
]


def make(cfg, dtype=np.float64, seed=0):
    kind, L, bi, bias, bf, act = cfg
    rng = np.random.default_rng(seed)
    common = dict(num_layers=L, bidirectional=bi, bias=bias, batch_first=bf, dtype=dtype, rng=rng)
    layer = (LSTM(3, 5, **common) if kind == "LSTM" else GRU(3, 5, **common) if kind == "GRU"
             else RNN(3, 5, nonlinearity=act, **common))
    for v in layer.params().values():
        v[...] = rng.normal(0, 0.5, size=v.shape)
    return layer


def inputs(layer, rng, T=4, B=3):
    D, H = layer.input_size, layer.hidden_size
    x = rng.normal(size=(B, T, D) if layer.batch_first else (T, B, D)).astype(layer.dtype)
    n = layer.num_layers * layer.num_directions
    h0 = rng.normal(size=(n, B, H)).astype(layer.dtype)
    c0 = rng.normal(size=(n, B, H)).astype(layer.dtype)
    return x, h0, c0


@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_numpy_state_dict_round_trip(cfg):
    layer = make(cfg)
    sd = torch_state_dict(layer)
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    back = from_torch_state_dict(sd, nonlinearity=cfg[5], batch_first=cfg[4])
    assert type(back) is type(layer) and repr(back) == repr(layer)
    for k, v in layer.params().items():
        np.testing.assert_allclose(back.params()[k], v, rtol=0, atol=1e-15, err_msg=k)


def test_state_dict_bias_halves_are_summed():
    layer = make(CONFIGS[0])
    sd = torch_state_dict(layer)
    rng = np.random.default_rng(1)
    split = rng.normal(size=sd["bias_ih_l0"].shape)
    sd["bias_hh_l0"] = split
    sd["bias_ih_l0"] = sd["bias_ih_l0"] - split
    back = from_torch_state_dict(sd)
    np.testing.assert_allclose(back.params()["b_l0"], layer.params()["b_l0"], atol=1e-15)


def test_state_dict_errors_name_the_problem():
    sd = torch_state_dict(make(CONFIGS[0]))
    with pytest.raises(ValueError, match="weight_ih_l0"):
        from_torch_state_dict({"weight": np.zeros((2, 2))})
    five = {"weight_ih_l0": np.zeros((15, 3)), "weight_hh_l0": np.zeros((15, 3))}
    with pytest.raises(ValueError, match="5 gate blocks are not supported"):
        from_torch_state_dict(five)
    with pytest.raises(ValueError, match="kind='RNN'"):
        from_torch_state_dict(sd, kind="RNN")
    with pytest.raises(ValueError, match=r"weight_hr_l0 must have shape \(proj_size, hidden_size\)"):
        from_torch_state_dict({**sd, "weight_hr_l0": np.zeros((2, 5))})
    bad = dict(sd, weight_hh_l0=np.zeros((20, 4)))
    with pytest.raises(ValueError, match=r"weight_hh_l0.*\(20, 5\)"):
        make(CONFIGS[0]).load_torch_state_dict(bad)
    with pytest.raises(ValueError, match="peephole"):
        torch_state_dict(LSTM(3, 4, peephole=True))


def test_model_state_dict_prefixes_and_round_trips():
    rng = np.random.default_rng(0)
    pieces = {"embed": Embedding(7, 3, rng=rng), "rnn": make(CONFIGS[1], np.float32),
              "head": Linear(10, 7, rng=rng)}
    sd = model_state_dict(pieces)
    assert {"embed.weight", "rnn.weight_ih_l1_reverse", "head.weight", "head.bias"} <= set(sd)
    fresh = {"embed": Embedding(7, 3, rng=rng), "rnn": make(CONFIGS[1], np.float32, seed=9),
             "head": Linear(10, 7, rng=rng)}
    load_model_state_dict(fresh, sd)
    for name in pieces:
        for k, v in pieces[name].params().items():
            np.testing.assert_array_equal(fresh[name].params()[k], v)
    with pytest.raises(ValueError, match="no piece"):
        load_model_state_dict(fresh, {**sd, "extra.weight": np.zeros(1)})



def test_a_refused_model_state_dict_changes_no_piece():
    rng = np.random.default_rng(0)
    pieces = {"embed": Embedding(7, 3, rng=rng), "rnn": make(CONFIGS[0], np.float32),
              "head": Linear(10, 7, rng=rng)}
    before = {k: v.copy() for k, v in model_state_dict(pieces).items()}
    other = {k: v + 1 for k, v in before.items()}
    refused = {"no piece": {**other, "extra.weight": np.zeros(1)},
               r"expected shape \(7,\), got \(4,\)": {**other, "head.bias": np.zeros(4)},
               "NaN": {**other, "rnn.weight_hh_l0": np.full_like(other["rnn.weight_hh_l0"], np.nan)}}
    for message, sd in refused.items():
        with pytest.raises(ValueError, match=message):
            load_model_state_dict(pieces, sd)
        now = model_state_dict(pieces)
        assert [k for k in before if not np.array_equal(now[k], before[k])] == [], message
    with pytest.raises(ValueError, match=r"expected shape \(7,\), got \(4,\)"):
        load_torch_state_dict(pieces["head"], {"weight": np.zeros((7, 10)), "bias": np.zeros(4)})
    np.testing.assert_array_equal(pieces["head"].params()["weight"], before["head.weight"])


# -- real torch -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=str)
def test_to_torch_computes_the_same(cfg, dtype):
    torch = pytest.importorskip("torch")
    from lstmlab.interop import from_torch, to_torch
    layer = make(cfg, dtype)
    mod = to_torch(layer)
    assert isinstance(mod, getattr(torch.nn, cfg[0]))
    rng = np.random.default_rng(3)
    x, h0, c0 = inputs(layer, rng)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    with torch.no_grad():
        if cfg[0] == "LSTM":
            ty, (th, tc) = mod(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
            y, (h, c) = layer(x, (h0, c0))
            np.testing.assert_allclose(tc.numpy(), c, rtol=0, atol=tol)
        else:
            ty, th = mod(torch.from_numpy(x), torch.from_numpy(h0))
            y, h = layer(x, h0)
    np.testing.assert_allclose(ty.numpy(), y, rtol=0, atol=tol)
    np.testing.assert_allclose(th.numpy(), h, rtol=0, atol=tol)
    back = from_torch(mod)  # lstmlab -> torch -> lstmlab
    assert repr(back) == repr(layer)
    for k, v in layer.params().items():
        np.testing.assert_allclose(back.params()[k], v, rtol=0, atol=tol, err_msg=k)


def test_from_torch_reads_a_fresh_torch_module():
    torch = pytest.importorskip("torch")
    from lstmlab.interop import from_torch
    torch.manual_seed(0)
    mod = torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True, dropout=0.25).double()
    layer = from_torch(mod)
    assert layer.dropout == 0.25 and layer.dtype == np.float64
    layer.eval()
    mod.eval()
    x = np.random.default_rng(0).normal(size=(5, 2, 4))
    with torch.no_grad():
        ty, (th, tc) = mod(torch.from_numpy(x))
    y, (h, c) = layer(x)
    np.testing.assert_allclose(y, ty.numpy(), atol=1e-12)
    np.testing.assert_allclose(c, tc.numpy(), atol=1e-12)


def test_embedding_and_linear_both_ways():
    torch = pytest.importorskip("torch")
    from lstmlab.interop import from_torch, to_torch
    rng = np.random.default_rng(0)
    emb, lin = Embedding(6, 4, rng=rng), Linear(4, 6, rng=rng)
    temb, tlin = to_torch(emb), to_torch(lin)
    tokens = np.array([[0, 5], [3, 3]])
    with torch.no_grad():
        out = tlin(temb(torch.from_numpy(tokens))).numpy()
    np.testing.assert_allclose(out, lin(emb(tokens)), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(from_torch(temb).params()["weight"], emb.params()["weight"])
    np.testing.assert_array_equal(from_torch(tlin).params()["bias"], lin.params()["bias"])
    no_bias = from_torch(torch.nn.Linear(3, 2, bias=False))
    assert "bias" not in no_bias.params()


def test_from_torch_refuses_what_has_no_equivalent():
    torch = pytest.importorskip("torch")
    from lstmlab.interop import from_torch
    with pytest.raises(TypeError, match="GRUCell"):
        from_torch(torch.nn.GRUCell(3, 4))
    with pytest.raises(ValueError, match="padding_idx"):
        from_torch(torch.nn.Embedding(5, 2, padding_idx=0))


@pytest.mark.parametrize("given", ["lstm.pt", {"weight_ih_l0": np.zeros((4, 3))}, None])
def test_to_and_from_torch_name_what_they_convert_when_given_something_else(given):
    pytest.importorskip("torch")
    from lstmlab.interop import from_torch, to_torch
    got = type(given).__name__
    with pytest.raises(TypeError, match=rf"^from_torch converts torch.nn.LSTM, RNN, GRU, "
                                        rf"Embedding and Linear; got {got}$"):
        from_torch(given)
    with pytest.raises(TypeError, match=rf"^to_torch converts lstmlab LSTM, RNN, GRU, "
                                        rf"Embedding and Linear; got {got}$"):
        to_torch(given)


def test_from_torch_takes_bfloat16_and_names_a_bad_kind_or_state_dict():
    torch = pytest.importorskip("torch")
    from lstmlab.interop import from_torch, load_torch_state_dict

    torch.manual_seed(0)
    mod = torch.nn.GRU(3, 4).bfloat16()
    want = {k: v.float().numpy() for k, v in mod.state_dict().items()}  # bfloat16 fits float32
    for layer in (from_torch(mod), from_torch_state_dict(mod.state_dict())):
        assert layer.dtype == np.float32
        got = torch_state_dict(layer)
        for k in ("weight_ih_l0", "weight_hh_l0"):
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        # lstmlab keeps the sum of the r and z bias halves: compare the sums
        np.testing.assert_allclose(got["bias_ih_l0"] + got["bias_hh_l0"],
                                   want["bias_ih_l0"] + want["bias_hh_l0"], rtol=1e-6)
    layer = GRU(3, 4, rng=np.random.default_rng(0))
    load_torch_state_dict(layer, mod.state_dict())
    np.testing.assert_array_equal(torch_state_dict(layer)["weight_hh_l0"], want["weight_hh_l0"])
    layer = GRU(3, 4, rng=np.random.default_rng(0))  # the layer's own method, too
    layer.load_torch_state_dict(mod.state_dict())
    np.testing.assert_array_equal(torch_state_dict(layer)["weight_hh_l0"], want["weight_hh_l0"])
    with pytest.raises(ValueError, match="kind must be 'LSTM', 'RNN', 'GRU' or None"):
        from_torch_state_dict(want, kind="lstm2")
    with pytest.raises(TypeError, match="state_dict must be a mapping of names to tensors or "
                                        "arrays"):
        from_torch_state_dict(list(want.items()))


def test_dtype_takes_torch_dtypes_and_names_what_it_expects():
    # dtype=torch.float64 raised NumPy's "Cannot interpret 'torch.float64' as a data type",
    # and dtype="bfloat16" its "data type 'bfloat16' not understood"
    torch = pytest.importorskip("torch")
    from lstmlab.interop import from_torch
    module = torch.nn.LSTM(3, 4)
    assert from_torch(module, dtype=torch.float64).dtype == np.float64
    sd = {k: v.numpy() for k, v in module.state_dict().items()}
    assert from_torch_state_dict(sd, dtype=torch.float32).dtype == np.float32
    # (NumPy reads 'bfloat16' once ml_dtypes, which Keras' backends import, is loaded)
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got '?bfloat16"):
        from_torch_state_dict(sd, dtype="bfloat16")


def test_a_model_state_dict_given_for_one_layer_says_to_drop_the_prefix():
    # the error listed 'rnn.weight_ih_l0' among the keys and said only that there was no
    # 'weight_ih_l0'
    sd = {f"rnn.{k}": v for k, v in LSTM(3, 4).torch_state_dict().items()}
    with pytest.raises(ValueError, match="pass the entries under 'rnn.' with that prefix removed"):
        from_torch_state_dict(sd)


def test_non_finite_weights_are_refused_by_name():
    lin = Linear(3, 2, rng=np.random.default_rng(0))
    sd = torch_state_dict(lin)
    sd["weight"][1, 0] = np.nan
    with pytest.raises(ValueError, match=r"parameter 'weight' contains NaN or inf \(first at "
                                         r"index \(1, 0\)\)"):
        load_torch_state_dict(lin, sd)
    assert np.isfinite(lin.params()["weight"]).all()


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_torch_biases_whose_sum_overflows_the_layer_dtype_are_refused_before_any_copy(cls):
    layer = cls(3, 4, num_layers=2, dtype=np.float32, rng=np.random.default_rng(0))
    before = {k: v.copy() for k, v in layer.params().items()}
    sd = {k: np.array(v) for k, v in layer.torch_state_dict().items()}
    sd["bias_ih_l1"][:] = 3e38  # each fits float32 (largest 3.4e38); the sum does not
    sd["bias_hh_l1"][:] = 3e38
    with pytest.raises(ValueError, match=r"state_dict\['bias_ih_l1'\] \+ state_dict\['bias_hh_l1'\] "
                                         r"holds 6e\+38 at index \(0,\), beyond the range of float32"):
        layer.load_torch_state_dict(sd)
    for k, v in layer.params().items():  # nothing copied, layer 0 included
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_model_state_dict_names_pieces_that_are_not_a_mapping():
    from lstmlab.interop import load_model_state_dict, model_state_dict
    layer = LSTM(3, 4, rng=np.random.default_rng(0))
    pieces = r"^pieces must be a mapping of names to layers .*got {}$"
    for given in (layer, [layer]):  # one layer, or a list of them, instead of {name: layer}
        with pytest.raises(TypeError, match=pieces.format(type(given).__name__)):
            model_state_dict(given)
        with pytest.raises(TypeError, match=pieces.format(type(given).__name__)):
            load_model_state_dict(given, {})


def test_a_state_dict_that_is_not_a_mapping_or_lacks_weight_hh_is_named():
    # load_torch_state_dict(Embedding, 5) failed with "'int' object is not iterable",
    # load_model_state_dict(pieces, list) inside dict(), and a state dict with weight_ih_l0
    # but no weight_hh_l0 with KeyError 'weight_hh_l0'
    rng = np.random.default_rng(0)
    emb, lstm = Embedding(5, 3, rng=rng), LSTM(3, 4, rng=rng)
    pieces = {"embed": emb, "rnn": lstm}
    for call in (lambda: load_torch_state_dict(emb, 5),
                 lambda: load_torch_state_dict(Linear(3, 2, rng=rng), None),
                 lambda: load_model_state_dict(pieces, list(model_state_dict(pieces).items()))):
        with pytest.raises(TypeError, match=r"state_dict must be a mapping of names to tensors "
                                            r"or arrays \(what torch's module.state_dict\(\) "
                                            r"returns\), got"):
            call()
    sd = torch_state_dict(lstm)
    del sd["weight_hh_l0"]
    with pytest.raises(ValueError, match="state_dict has 'weight_ih_l0' but no 'weight_hh_l0'"):
        from_torch_state_dict(sd)


def test_safetensors_metadata_that_is_not_strings_is_named(tmp_path):
    # metadata=["vocab"] failed inside dict() ("dictionary update sequence element #0 has
    # length 1"), a dict value as a type error of the safetensors binding
    pytest.importorskip("safetensors")
    from lstmlab.interop import save_safetensors
    pieces = {"rnn": LSTM(3, 4, rng=np.random.default_rng(0))}
    path = tmp_path / "m.safetensors"
    for bad in (["vocab"], {"config": {"hidden_size": 4}}, {1: "a"}):
        with pytest.raises(TypeError, match=r"metadata must be a mapping of strings to strings"):
            save_safetensors(path, pieces, bad)
    assert not path.exists()
    save_safetensors(path, pieces, {"config": '{"hidden_size": 4}'})
    from safetensors import safe_open
    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata() == {"config": '{"hidden_size": 4}'}


def test_from_torch_takes_the_weights_a_pruned_module_computes_with():
    # a pruned module's state dict holds weight_orig and weight_mask: from_torch refused it
    # ("missing ['weight_hh_l0'], unexpected ['weight_hh_l0_mask', 'weight_hh_l0_orig']")
    torch = pytest.importorskip("torch")
    import torch.nn.utils.prune as prune

    from lstmlab.interop import from_torch
    torch.manual_seed(0)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    for module, name in ((torch.nn.LSTM(3, 4, 2, bidirectional=True), "weight_hh_l1_reverse"),
                         (torch.nn.GRU(3, 4), "weight_ih_l0"), (torch.nn.Linear(3, 4), "weight")):
        module = module.double()
        prune.l1_unstructured(module, name, amount=0.5)
        layer = from_torch(module)
        with torch.no_grad():
            want = module(x)
        want = want[0] if isinstance(want, tuple) else want
        got = layer(x.numpy())
        got = got[0] if isinstance(got, tuple) else got
        np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-10)
        assert (torch_state_dict(layer)[name] == 0).sum() >= getattr(module, name).numel() // 2


def test_from_torch_names_a_module_on_the_meta_device():
    # a module built on the meta device (no values) failed inside the conversion with
    # NotImplementedError "Cannot copy out of meta tensor; no data!"
    torch = pytest.importorskip("torch")
    from lstmlab.interop import from_torch
    with pytest.raises(ValueError, match="the LSTM's parameters are on the meta device and hold "
                                         "no values"):
        from_torch(torch.nn.LSTM(3, 4, device="meta"))


def test_load_torch_state_dict_names_a_tensor_on_the_meta_device():
    # a meta-device module's state dict holds shapes without values: the error names the key
    # and the meta device, not torch's "Cannot copy out of meta tensor" from deep inside
    torch = pytest.importorskip("torch")
    layer, linear = LSTM(3, 4, rng=np.random.default_rng(0)), Linear(3, 2)
    before = torch_state_dict(layer)
    with pytest.raises(ValueError, match=r"state_dict\['weight_ih_l0'\] is a tensor on the "
                                         r"meta device, which holds no values"):
        load_torch_state_dict(layer, torch.nn.LSTM(3, 4, device="meta").state_dict())
    with pytest.raises(ValueError, match=r"state_dict\['weight'\] is a tensor on the meta device"):
        load_torch_state_dict(linear, torch.nn.Linear(3, 2, device="meta").state_dict())
    assert all(np.array_equal(v, torch_state_dict(layer)[k]) for k, v in before.items())


def test_to_torch_and_from_torch_keep_evaluation_mode():
    # an evaluating layer came back as a module in training mode (and the other way), so
    # dropout between levels changed its outputs at random
    torch = pytest.importorskip("torch")
    from lstmlab.interop import from_torch, to_torch
    rng = np.random.default_rng(0)
    layer = LSTM(3, 4, num_layers=2, dropout=0.5, dtype=np.float64, rng=rng).eval()
    x = rng.normal(size=(5, 2, 3))
    module = to_torch(layer)
    assert not module.training
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(x))[0].numpy(), layer(x)[0], rtol=0,
                                   atol=1e-10)
    back = from_torch(module)
    assert not back.training
    np.testing.assert_allclose(back(x)[0], layer(x)[0], rtol=0, atol=1e-10)
    assert to_torch(layer.train()).training and from_torch(module.train()).training


def test_piece_names_are_those_of_torch_children():
    # pieces named "a" and "a.b" made keys that belong to either: load_model_state_dict of
    # model_state_dict's own output failed with "unexpected ['b.bias', 'b.weight']"
    rng = np.random.default_rng(0)
    for bad in ({"a": Linear(2, 2, rng=rng), "a.b": Linear(2, 2, rng=rng)}, {"": Linear(2, 2)},
                {3: Linear(2, 2)}):
        with pytest.raises(ValueError, match="piece names must be non-empty strings without a "
                                             "dot"):
            model_state_dict(bad)
        with pytest.raises(ValueError, match="piece names must be non-empty strings"):
            load_model_state_dict(bad, {})


def test_a_piece_no_converter_takes_is_named_with_all_that_they_take():
    # torch_state_dict(Dropout(0.5)) said "expected an lstmlab LSTM, RNN or GRU layer", though
    # it (and the Keras weight lists) take an Embedding or a Linear too
    from lstmlab.interop import load_keras_weights, to_keras_weights
    from lstmlab.layers.basic import Dropout
    what = r"expected an lstmlab LSTM, RNN, GRU, Embedding or Linear, got Dropout"
    for convert in (torch_state_dict, to_keras_weights,
                    lambda m: load_torch_state_dict(m, {}), lambda m: load_keras_weights(m, [])):
        with pytest.raises(TypeError, match=what):
            convert(Dropout(0.5))
