"""Choices and thresholds shared by the classifier and its command line (no imports, so that
building the parser stays light)."""

# the first is the default; fcn is LSTM-FCN without its LSTM branch
MODELS = ("lstm-fcn", "fcn", "lstm", "gru", "rnn")
RECURRENT = ("lstm", "gru", "rnn")  # the plain recurrent stacks (lstmlab.layers.seqnet.CELLS)
# The models each training setting acts on (SequenceClassifier.train's names). Given for
# another model, a setting would do nothing, and the user would believe, say, that the LSTM
# read the sequences both ways: the classifier and its command line refuse it.
SETTING_MODELS = {"hidden_size": ("lstm-fcn",) + RECURRENT, "readout": RECURRENT,
                  "num_layers": RECURRENT, "dropout": RECURRENT,
                  "filters": ("lstm-fcn", "fcn"), "bidirectional": ("lstm-fcn",)}
# FitConfig's choices (lstmlab.training.supervised), repeated so the parser stays light
SCHEDULES = ("cosine", "plateau")
CHECKPOINTS = ("auto", "train-loss")
AUTO_VAL_MIN = 300  # training sequences from which val_fraction=None holds out 15 %
MIN_UPDATES = 1000  # the default epoch budget gives at least this many Adam steps
MIN_EPOCHS = 100
# Defaults of options that are refused where they do nothing, so the parser's own default is
# None (given or not) and these fill in the rest.
FILTERS = (32, 64, 32)  # lstm-fcn, fcn: filters of the three convolution blocks
PLATEAU_EPOCHS = 100  # --lr-schedule plateau: epochs without a lower loss before each cut
TEST_FRACTION = 0.2  # test share when no test set is given
PATIENCE = 30  # epochs without a lower validation loss, where there is one


def default_epochs(n_train: int, batch_size: int) -> int:
    """Epochs for at least ``MIN_UPDATES`` updates and ``MIN_EPOCHS`` passes: a set of 36
    sequences in batches of 16 makes 3 updates an epoch, and 100 epochs leave it far from
    converged."""
    batches = -(-max(1, n_train) // batch_size)
    return max(MIN_EPOCHS, -(-MIN_UPDATES // batches))
