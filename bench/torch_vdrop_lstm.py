"""What a PyTorch user writes today for a variational-dropout LSTM (Gal & Ghahramani 2016):
``nn.LSTM`` takes no per-sequence masks, so the recurrence is a Python loop of
``nn.LSTMCell``-style arithmetic, eager or compiled with TorchScript. One mask per sequence on
the inputs and one on h_{t-1}, the same at every step, drawn in each forward (training).

Dimensions: T time, B batch, D input features, H hidden units. Gate order i, f, g, o (PyTorch's).
"""

from __future__ import annotations

import torch


def _recurrence(xz: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_hh: torch.Tensor,
                mask_h: torch.Tensor):
    """The loop over time: ``xz (T, B, 4H)`` the input projections with bias, ``w_hh (4H, H)``."""
    ys = []
    for t in range(xz.shape[0]):
        z = xz[t] + torch.mm(h * mask_h, w_hh.t())
        i, f, g, o = z.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        ys.append(h)
    return torch.stack(ys), h, c


_scripted = None


class VariationalLSTM(torch.nn.Module):
    """One layer; ``script=True`` runs the loop as a TorchScript function."""

    def __init__(self, D: int, H: int, p_input: float, p_recurrent: float, script: bool = False):
        super().__init__()
        self.cell = torch.nn.LSTMCell(D, H)  # its weights and biases; the loop is ours
        self.p_input, self.p_recurrent = p_input, p_recurrent
        global _scripted
        if script and _scripted is None:
            _scripted = torch.jit.script(_recurrence)
        self.loop = _scripted if script else _recurrence

    def forward(self, x: torch.Tensor):
        T, B, D = x.shape
        H = self.cell.hidden_size
        mask_x = x.new_empty(B, D).bernoulli_(1 - self.p_input) / (1 - self.p_input)
        mask_h = x.new_empty(B, H).bernoulli_(1 - self.p_recurrent) / (1 - self.p_recurrent)
        xz = torch.addmm(self.cell.bias_ih + self.cell.bias_hh, (x * mask_x).reshape(T * B, D),
                         self.cell.weight_ih.t()).reshape(T, B, 4 * H)
        h = c = x.new_zeros(B, H)
        return self.loop(xz, h, c, self.cell.weight_hh, mask_h)
