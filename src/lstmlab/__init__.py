"""lstmlab: the lecture's vanilla RNN and LSTM in NumPy, exact and fast, from equations up."""

__version__ = "0.1.0"
