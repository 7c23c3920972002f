"""Layers: objects that own parameters and their gradients."""

from .base import Module
from .basic import Dropout, Embedding, Linear
from .model import CharLM, CharLMConfig
from .recurrent import GRU, LSTM, RNN
from .seqnet import SequenceNet, SequenceNetConfig

__all__ = ["CharLM", "CharLMConfig", "Dropout", "Embedding", "GRU", "LSTM", "Linear", "Module", "RNN",
           "SequenceNet", "SequenceNetConfig"]
