"""The layer-normalised LSTM as a PyTorch user writes it today: a cell of ``nn.Linear`` and
``nn.LayerNorm`` modules stepped by a Python loop (eager), or the same module compiled with
TorchScript. PyTorch has no layer-norm LSTM of its own; this is the baseline
``bench/bench_lstm.py --suites lnlstm`` times lstmlab's ``LSTM(layer_norm=True)`` against.

Dimensions: T time, B batch, D input features, H hidden units. Equations of Ba, Kiros &
Hinton (2016), eq. 20-22, with PyTorch's gate order i, f, g, o::

    a_t = LN_ih(W_ih x_t) + LN_hh(W_hh h_{t-1})    (each LN over the 4H values, with bias)
    C_t = σ(f) ⊙ C_{t-1} + σ(i) ⊙ tanh(g)
    h_t = σ(o) ⊙ tanh(LN_c(C_t))

``load_lstmlab`` copies the weights of an lstmlab layer (one layer, one direction) into it:
the LSTM's bias b becomes ``LN_ih``'s bias (the sum of the two norms' biases is what counts).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class LayerNormLSTMCell(nn.Module):
    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.ih = nn.Linear(input_size, 4 * hidden_size, bias=False)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
        self.ln_ih = nn.LayerNorm(4 * hidden_size)
        self.ln_hh = nn.LayerNorm(4 * hidden_size)
        self.ln_c = nn.LayerNorm(hidden_size)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        gates = self.ln_ih(self.ih(x)) + self.ln_hh(self.hh(h))
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(self.ln_c(c))
        return h, c


class LayerNormLSTM(nn.Module):
    """One layer over ``x (T, B, D)`` from ``(h0, c0)``: ``(y (T, B, H), (h_T, c_T))``."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.cell = LayerNormLSTMCell(input_size, hidden_size)

    def forward(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        outputs: list[Tensor] = []
        for x_t in x.unbind(0):
            h, c = self.cell(x_t, h, c)
            outputs.append(h)
        return torch.stack(outputs), (h, c)


def load_lstmlab(mod: LayerNormLSTM, layer) -> LayerNormLSTM:
    """Copy layer 0 of an lstmlab ``LSTM(layer_norm=True)`` into ``mod`` (through the layer's
    PyTorch-style state dict); returns ``mod``."""
    sd = layer.torch_state_dict()
    cell = mod.cell
    bias = (sd["bias_ih_l0"] + sd["bias_hh_l0"] if "bias_ih_l0" in sd
            else np.zeros_like(sd["ln_ih_weight_l0"]))
    pairs = [(cell.ih.weight, sd["weight_ih_l0"]), (cell.hh.weight, sd["weight_hh_l0"]),
             (cell.ln_ih.weight, sd["ln_ih_weight_l0"]), (cell.ln_ih.bias, bias),
             (cell.ln_hh.weight, sd["ln_hh_weight_l0"]), (cell.ln_hh.bias, 0 * bias),
             (cell.ln_c.weight, sd["ln_c_weight_l0"]), (cell.ln_c.bias, sd["ln_c_bias_l0"])]
    with torch.no_grad():
        for p, v in pairs:
            p.copy_(torch.from_numpy(v.copy()).to(p.dtype))
    return mod
