"""SequenceNet readouts against PyTorch float64 (outputs and every gradient)."""

import numpy as np
import pytest

from lstmlab.layers.seqnet import SequenceNet, SequenceNetConfig

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("readout", ["last", "mean", "all"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_readouts_match_torch(readout, cell):
    rng = np.random.default_rng(0)
    T, B, D, H, O = 6, 4, 3, 5, 2
    net = SequenceNet(SequenceNetConfig(D, O, H, num_layers=2, cell=cell, readout=readout,
                                        dtype="float64"), rng=rng)
    tr = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](D, H, 2).double()
    tr.load_state_dict({k: torch.from_numpy(v) for k, v in net.rnn.torch_state_dict().items()})
    x = rng.normal(size=(T, B, D))
    lengths = np.array([6, 2, 4, 1])
    out = net.forward(x, lengths)
    dout = rng.normal(size=out.shape)
    net.backward(dout)

    xt = torch.tensor(x, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False)
    y, _ = tr(packed)
    y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=T)
    if readout == "last":
        feats = y[torch.tensor(lengths - 1), torch.arange(B)]
    elif readout == "mean":
        feats = y.sum(0) / torch.tensor(lengths, dtype=torch.float64)[:, None]
    else:
        feats = y
    W = torch.tensor(net.head.weight, requires_grad=True)
    b = torch.tensor(net.head.params()["bias"], requires_grad=True)
    tout = feats @ W.T + b
    (tout * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.head.grads()["weight"], W.grad.numpy(), rtol=1e-9, atol=1e-12)
    ours = net.rnn.torch_state_dict(grads=True)
    for k, p in tr.named_parameters():
        np.testing.assert_allclose(ours[k], p.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_predict_batches_equal_one_forward():
    rng = np.random.default_rng(1)
    net = SequenceNet(SequenceNetConfig(2, 1, 8, dtype="float64"), rng=rng)
    x = rng.normal(size=(5, 10, 2))
    np.testing.assert_allclose(net.predict(x, batch_size=3), net.forward(x), rtol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), r"batch_size must be a positive integer, got 0"),
    (dict(lengths=[1, 2, 3], batch_size=4), r"lengths must have shape \(10,\) .*got \(3,\)"),
])
def test_predict_names_a_bad_batch_size_or_lengths_of_the_whole_input(kwargs, message):
    net = SequenceNet(SequenceNetConfig(2, 1, 8, dtype="float64"), rng=np.random.default_rng(1))
    with pytest.raises(ValueError, match=message):
        net.predict(np.zeros((5, 10, 2)), **kwargs)


def test_predict_names_an_input_of_no_sequences():
    net = SequenceNet(SequenceNetConfig(2, 1, 8, dtype="float64"), rng=np.random.default_rng(1))
    with pytest.raises(ValueError, match=r"x must have at least one sequence, got shape \(5, 0, 2\)"):
        net.predict(np.zeros((5, 0, 2)))


@pytest.mark.parametrize("readout", ["last", "mean", "all"])
def test_backward_names_a_non_finite_dout_in_its_own_shape(readout):
    # the recurrent layer named the hidden gradient made of it, "dy", at an index of (T, B, H)
    net = SequenceNet(SequenceNetConfig(2, 3, 4, readout=readout), rng=np.random.default_rng(0))
    out = net.forward(np.ones((5, 2, 2), np.float32))
    dout = np.zeros_like(out)
    dout[(0,) * (dout.ndim - 1) + (1,)] = np.nan
    at = r"\(0, 0, 1\)" if readout == "all" else r"\(0, 1\)"
    with pytest.raises(ValueError, match=rf"^dout contains NaN or inf \(first at index {at}\)"):
        net.backward(dout)


def test_sequence_net_is_a_layer_of_lstmlab_layers_beside_charlm():
    # docs/design.md lists it among the layers; only lstmlab.layers.seqnet had it
    import lstmlab.layers
    assert lstmlab.layers.SequenceNet is SequenceNet
    assert lstmlab.layers.SequenceNetConfig is SequenceNetConfig
    assert {"SequenceNet", "SequenceNetConfig"} <= set(lstmlab.layers.__all__)
