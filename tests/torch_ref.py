"""Run a torch.nn.LSTM / torch.nn.RNN / torch.nn.GRU as the exactness oracle for an lstmlab layer.

Both see the same weights (through the layer's torch state dict), the same inputs, the same
non-zero initial state and the same random upstream gradients on outputs and final state.
"""

from __future__ import annotations

import numpy as np
import torch


def make_torch_twin(layer, rng):
    """A torch module of the layer's configuration, with random non-zero weights and two
    *different* non-zero biases, loaded into the layer too. Returns the torch module."""
    kind = type(layer).__name__
    kwargs = dict(num_layers=layer.num_layers, bias=layer.bias, batch_first=layer.batch_first,
                  bidirectional=layer.bidirectional)
    if getattr(layer, "proj_size", 0):
        kwargs["proj_size"] = layer.proj_size
    if kind in ("LSTM", "GRU"):
        mod = getattr(torch.nn, kind)(layer.input_size, layer.hidden_size, **kwargs)
    else:
        mod = torch.nn.RNN(layer.input_size, layer.hidden_size, nonlinearity=layer.nonlinearity,
                           **kwargs)
    tdtype = torch.float64 if layer.dtype == np.float64 else torch.float32
    mod = mod.to(tdtype)
    scale = 0.6
    with torch.no_grad():
        for p in mod.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, scale, size=tuple(p.shape))))
    layer.load_torch_state_dict(mod.state_dict())
    return mod


def torch_run(mod, x, state, lengths, dy, dstate):
    """Forward + backward in torch. ``state``/``dstate`` are tuples of arrays (1 for RNN, 2
    for LSTM). Returns (y, finals, dx, dinit, param_grads) as NumPy arrays."""
    bf = mod.batch_first
    xt = torch.tensor(x, requires_grad=True)
    st = tuple(torch.tensor(s, requires_grad=True) for s in state)
    hx = st if len(st) == 2 else st[0]
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.as_tensor(lengths), batch_first=bf,
                                                      enforce_sorted=False)
        out, fin = mod(inp, hx)
        T = x.shape[1] if bf else x.shape[0]
        yt, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=bf, total_length=T)
    else:
        yt, fin = mod(xt, hx)
    fins = fin if isinstance(fin, tuple) else (fin,)
    loss = (yt * torch.tensor(dy)).sum()
    for f, d in zip(fins, dstate):
        loss = loss + (f * torch.tensor(d)).sum()
    mod.zero_grad()
    loss.backward()
    grads = {k: p.grad.detach().numpy().copy() for k, p in mod.named_parameters()}
    return (yt.detach().numpy(), [f.detach().numpy() for f in fins], xt.grad.numpy(),
            [s.grad.numpy() for s in st], grads)


def rel_err(a, b) -> float:
    """max |a - b| / max |b| (0 when both are exactly zero)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.abs(b).max() if b.size else 0.0
    diff = np.abs(a - b).max() if a.size else 0.0
    return 0.0 if diff == 0 else diff / max(scale, 1e-300)


# How far a layer may stray from its torch twin: max relative error per dtype.
TOL = {np.float64: 1e-10, np.float32: 1e-5}


def assert_worst_within(errors: dict, tol: float, case) -> None:
    """The largest of ``errors`` (name -> relative error) is at most ``tol``; a failure
    names the ``case``, the quantity and its error."""
    worst = max(errors, key=errors.get)
    assert errors[worst] <= tol, (case, worst, errors[worst])
