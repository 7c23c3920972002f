"""Pure sequence kernels: forward and hand-written backward, time-major ``(T, B, ...)``."""

from ._common import reverse_index, reverse_padded, sigmoid, step_masks
from .gru import GRUCache, GRUParams, gru_backward, gru_cell, gru_forward
from .lstm import LSTMCache, LSTMParams, lstm_backward, lstm_cell, lstm_forward
from .rnn import RNNCache, RNNParams, rnn_backward, rnn_cell, rnn_forward

__all__ = [
    "GRUCache", "GRUParams", "gru_backward", "gru_cell", "gru_forward",
    "LSTMCache", "LSTMParams", "lstm_backward", "lstm_cell", "lstm_forward",
    "RNNCache", "RNNParams", "rnn_backward", "rnn_cell", "rnn_forward",
    "reverse_index", "reverse_padded", "sigmoid", "step_masks",
]
