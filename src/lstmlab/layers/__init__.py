"""Layers: objects that own parameters and their gradients."""

from .base import Module
from .recurrent import LSTM, RNN

__all__ = ["LSTM", "Module", "RNN"]
