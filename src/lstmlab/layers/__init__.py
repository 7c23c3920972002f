"""Layers: objects that own parameters and their gradients."""

from .base import Module
from .basic import Dropout, Embedding, Linear
from .model import CharLM, CharLMConfig
from .recurrent import LSTM, RNN

__all__ = ["CharLM", "CharLMConfig", "Dropout", "Embedding", "LSTM", "Linear", "Module", "RNN"]
