"""Layers: objects that own parameters and their gradients."""

from .base import Module
from .basic import Dropout, Embedding, Linear
from .model import CharLM, CharLMConfig
from .recurrent import GRU, LSTM, RNN

__all__ = ["CharLM", "CharLMConfig", "Dropout", "Embedding", "GRU", "LSTM", "Linear", "Module", "RNN"]
