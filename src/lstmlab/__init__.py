"""lstmlab: the lecture's vanilla RNN and LSTM in NumPy, exact and fast, from equations up."""

from .kernels.fast import get_num_threads, set_num_threads
from .layers import LSTM, RNN, CharLM, CharLMConfig, Dropout, Embedding, Linear, Module

__version__ = "0.1.0"
__all__ = ["LSTM", "RNN", "CharLM", "CharLMConfig", "Dropout", "Embedding", "Linear", "Module",
           "get_num_threads", "set_num_threads", "__version__"]
