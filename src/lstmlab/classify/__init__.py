"""Sequence classification: CSV and UCR/UEA .ts readers, the LSTM classifier, accuracy and the
confusion matrix (see docs/classification.md)."""

from .data import (SequenceDataError, SequenceSet, digits_sequences, read_sequence_csv,
                   read_sequences, read_ts, synthetic_sequences)
from .model import SequenceClassifier, confusion_matrix, format_confusion, stratified_split

__all__ = ["SequenceClassifier", "SequenceDataError", "SequenceSet", "confusion_matrix",
           "digits_sequences", "format_confusion", "read_sequence_csv", "read_sequences",
           "read_ts", "stratified_split", "synthetic_sequences"]
