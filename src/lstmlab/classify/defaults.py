"""Choices and thresholds shared by the classifier and its command line (no imports, so that
building the parser stays light)."""

MODELS = ("lstm-fcn", "lstm", "rnn")  # the first is the default
AUTO_VAL_MIN = 300  # training sequences from which val_fraction=None holds out 15 %
