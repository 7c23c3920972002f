"""The sequence classifier: z-normalised series -> standardised features -> a network (a
recurrent ``SequenceNet`` with the "last" or "mean" readout, or ``LSTMFCN``, with or without
its LSTM branch) -> class logits,
trained with the fused softmax cross-entropy; an ensemble of such networks over seeds;
accuracy and confusion matrix.

Dimensions: n sequences, T longest length, D features per step, C classes.

Variable lengths go through the network's ``lengths`` path: the "last" readout takes each
sequence's state at its own last step, the "mean" readout averages the top layer's outputs
over its valid steps; padding never reaches the loss or the gradients.

**Per-series z-normalisation** (``znorm=True``): each sequence is scaled to mean 0 and
standard deviation 1 per feature over its own steps before anything else, so the network
compares shapes, not offsets and amplitudes. ``znorm=None`` (the default) does so for
univariate data only, the conventions of the two archives: the UCR univariate problems are
z-normalised per series, the UEA multivariate ones are not, because the levels of their
features carry the class (JapaneseVowels' cepstra: 0.79 test accuracy z-normalised, 0.99
not; see docs/classification.md).

**Validation**: ``val_fraction=None`` (the default) holds out 15 % of the training sequences
(stratified) to pick the epoch only when there are at least ``AUTO_VAL_MIN`` = 300 of them;
with fewer, training runs its full epoch budget on every sequence, the learning rate
cosine-decayed to a tenth, and keeps the last epoch. Why: a hold-out of the 6–30 sequences a
36–200-case set can spare measures accuracy in steps of 3–17 points, coarser than the
differences between epochs it should choose from, and takes that share from training; the
LSTM-FCN authors likewise keep the checkpoint of the lowest training loss.

**Class weights** (``class_weight="balanced"``): each training sequence's cross-entropy is
weighted by ``n / (C · n_c)``, n_c the count of its class among the n, and the batch loss is the weighted
sum divided by the batch size (scikit-learn's "balanced" weights used as Keras's
``class_weight``, as the LSTM-FCN authors train), so that every class carries the same total
weight whatever its frequency. The validation loss, when there is a hold-out, is weighted the
same way.

**Ensemble** (``ensemble=K``): K networks from K independent seeds (``rng.spawn``), each
trained as above; their class probabilities are averaged. ``evaluate`` reports each member's
accuracy beside the ensemble's, so the spread over seeds is visible. Training stopped in
member k > 1 (``should_stop``, Ctrl-C) keeps the k - 1 members trained to the end and leaves
the stopped one out (the summary's ``members`` still lists it, ``interrupted``).

Classes are the sorted distinct training labels, as text (``1, 10, 2``), so the class
order, and a checkpoint, do not depend on the order of the rows; a checkpoint stores its
classes in their order, so a model keeps the order it was trained with. The feature scaler
(mean and standard deviation per feature over all valid training steps) is fitted on the
training sequences only and stored in the checkpoint (``kind = "classifier"``). A feature
whose values float64 cannot standardise (beyond ±1e150, or varying by less than 1e-150; see
``lstmlab._scaling``), and data the fitted scaler maps outside the network's dtype, are
errors naming the case and feature.
"""

from __future__ import annotations

import numpy as np

from .._config import check_config
from .._checks import generator, positive_int, probability, true_or_false
from .._columns import pad, width
from .._scaling import mean_std, range_problem
from ..layers.base import Module
from ..layers.seqnet import SequenceNet, SequenceNetConfig
from ..training.checkpoint import (CheckpointError, load_checkpoint, param_arrays, restore_params,
                                   save_checkpoint)
from ..training.losses import softmax, softmax_cross_entropy
from ..training.supervised import (FIT_CONFIG_EXAMPLE, FitConfig, check_callables,
                                   fit_sequence_net)
from .baselines import znormalise
from .data import SequenceDataError, SequenceSet, check_label_strings, same_number_hint
from .defaults import AUTO_VAL_MIN, FILTERS, MODELS, SETTING_MODELS
from .lstm_fcn import LSTMFCN, LSTMFCNConfig

KIND = "classifier"


def stratified_split(labels, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, held_out)`` index arrays: about ``fraction`` of each class held out (at least
    one per class when a class has two or more members)."""
    rng = generator(rng)
    fraction = probability(fraction, "fraction")  # NaN or 2 failed inside, or held out all
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a list of class labels, one per sequence, got "
                         f"{'None' if labels.ndim == 0 else f'shape {labels.shape}'}")
    keep, held = [], []
    for c in sorted(set(labels.tolist())):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(fraction * len(idx)))
        if fraction > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = 0
        held.extend(idx[:k].tolist())
        keep.extend(idx[k:].tolist())
    return np.sort(np.array(keep, np.int64)), np.sort(np.array(held, np.int64))


def check_feature_range(data: SequenceSet, spread: bool = True) -> None:
    """A ``SequenceDataError`` naming the feature and the step (its file line, when ``data``
    knows it, then the case) when a feature of ``data`` cannot be standardised in float64 (non-finite, beyond ±1e150, or — with ``spread``, for the data
    a scaler is fitted on — varying by less than 1e-150)."""
    if len(data) == 0:
        return
    steps = np.concatenate(data.x, axis=0)  # (sum T_i, D)
    case = np.repeat(np.arange(len(data)), data.lengths)  # (sum T_i,) the case of each step

    def where(i: int) -> str:
        k = int(case[i])
        return data.where(k, i - int(data.lengths[:k].sum()))

    for j, name in enumerate(data.features):
        problem = range_problem(steps[:, j], name, where, spread)
        if problem:
            raise SequenceDataError(f"{data.source + ': ' if data.source else ''}feature "
                                    f"{problem}")


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` counts: row = true class, column = predicted class, from ``truth`` and
    ``pred`` (n,), class indices in ``[0, C)``; an index outside would count as another
    class (-1 as the last) or fail inside NumPy, so it is refused by name."""
    C = positive_int(num_classes, "num_classes")
    truth, pred = np.asarray(truth), np.asarray(pred)
    for name, v in (("truth", truth), ("pred", pred)):
        if v.ndim != 1 or (v.size and v.dtype.kind not in "iu"):
            raise ValueError(f"{name} must be a 1-D array of class indices (integers), got "
                             f"shape {v.shape}, dtype {v.dtype}")
        outside = v[(v < 0) | (v >= C)]
        if outside.size:
            raise ValueError(f"{name} holds the class index {int(outside[0])}, outside "
                             f"[0, {C}) for num_classes={C}")
    if len(truth) != len(pred):
        raise ValueError(f"truth and pred must hold one class index per sequence each, got "
                         f"{len(truth)} and {len(pred)}")
    cm = np.zeros((C, C), np.int64)
    np.add.at(cm, (truth.astype(np.int64), pred.astype(np.int64)), 1)
    return cm


def format_confusion(cm: np.ndarray, classes: list[str]) -> str:
    """The confusion matrix ``cm (C, C)`` of counts as text, rows = truth, columns =
    prediction, headed by the C ``classes``."""
    names = [str(c) for c in classes]
    cm = np.asarray(cm)
    C = len(names)
    if C == 0:
        raise ValueError("classes must name at least one class")
    if cm.shape != (C, C):  # a row or column without a name would go unseen
        raise ValueError(f"cm must have shape ({C}, {C}), a row and a column per class of "
                         f"classes ({C} given), got {cm.shape}")
    if cm.dtype.kind not in "iuf" or not (np.isfinite(cm) & (cm >= 0) & (cm % 1 == 0)).all():
        raise ValueError(f"cm must hold counts (whole numbers >= 0), got dtype {cm.dtype}")
    w = max(4, *(width(n) for n in names), len(str(int(cm.max(initial=0)))))  # value columns
    corner = "truth \\ pred"
    first = max(len(corner), *(width(n) for n in names))  # the row-label column
    lines = [f"{corner:<{first}}" + "".join(pad(n, w + 1, ">") for n in names)]
    for i, n in enumerate(names):
        lines.append(pad(n, first) + "".join(f"{int(v):>{w + 1}}" for v in cm[i]))
    return "\n".join(lines)


class _Members(Module):
    """The networks of an ensemble as one module: parameters ``member{k}.<name>``."""

    def __init__(self, nets: list) -> None:
        super().__init__()
        self.nets = list(nets)

    def children(self):
        return {f"member{k}": net for k, net in enumerate(self.nets)}


def balanced_class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C,)`` weights ``n / (C · n_c)`` for the class ids ``y (n,)``, C the classes present in
    ``y``: the weights of the n sequences then sum to n. A class absent from ``y`` (a part of
    the data in the choice of width may miss a class of one sequence) gets weight 0."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)  # (C,)
    present = int(np.count_nonzero(counts))
    return np.divide(len(y), present * counts, out=np.zeros(num_classes), where=counts > 0)


def weighted_cross_entropy(weights: np.ndarray):
    """A loss function ``(logits (n, C), y (n,)) -> (loss, dlogits)``: the softmax
    cross-entropy of each row weighted by ``weights[y]``, summed and divided by n."""
    weights = np.asarray(weights, np.float64)  # (C,)

    def loss_fn(logits, y):
        z = logits - logits.max(axis=1, keepdims=True)  # (n, C)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))  # (n, C) log-softmax
        rows, w = np.arange(len(y)), weights[y]  # (n,), (n,)
        loss = float(-np.sum(w * log_p[rows, y], dtype=np.float64) / len(y))
        grad = np.exp(log_p)  # (n, C) softmax
        grad[rows, y] -= 1.0
        grad *= (w / len(y)).astype(grad.dtype)[:, None]
        return loss, grad

    return loss_fn


def feature_mismatch(expected: list[str], data: SequenceSet, data_as: str = "the data has",
                     expected_as: str = "the model reads") -> str | None:
    """Why ``data`` cannot be read as the features ``expected`` (None when it can): another
    count, or named columns other than the expected ones. The ``.ts`` reader's positional
    names (``dim_0``, ``dim_1``, ...) match any names of the right count, so a model trained
    on a ``.ts`` file reads a CSV and the other way round; two sets of column names must
    agree, else one column would be read as another (``acc_z`` for ``acc_y``)."""
    got = list(data.features)
    if len(got) != len(expected):
        return (f"{data_as} {len(got)} feature(s) per step ({', '.join(got)}), {expected_as} "
                f"{len(expected)} ({', '.join(expected)})")
    if sorted(got) == sorted(expected) or _positional(got) or _positional(expected):
        return None
    absent = [f for f in expected if f not in got]
    return (f"{data_as} the features {', '.join(got)}, {expected_as} {', '.join(expected)}: "
            f"no {', '.join(absent)}")


def _positional(features: list[str]) -> bool:
    return list(features) == [f"dim_{j}" for j in range(len(features))]


def _check_set(data) -> None:
    if not isinstance(data, SequenceSet):  # arrays have no feature names, ids or labels here
        raise TypeError(f"data must be a SequenceSet (from read_sequences, or "
                        f"SequenceSet(x, labels, ids, features)), got {type(data).__name__}; "
                        f"for arrays, lstmlab.sklearn.LSTMClassifier takes (n, T, D)")


def _config_class(architecture: str):
    return LSTMFCNConfig if architecture == "lstm-fcn" else SequenceNetConfig


def _build(config, rng):
    return LSTMFCN(config, rng=rng) if isinstance(config, LSTMFCNConfig) else SequenceNet(config, rng=rng)


def _refuse_unused_settings(cell: str, **settings) -> None:
    """A ValueError naming the first of ``settings`` that ``cell`` does not use and that
    differs from its default (None; 1, 0 or False for num_layers, dropout, bidirectional)."""
    neutral = {"num_layers": 1, "dropout": 0, "bidirectional": False}
    for name, value in settings.items():
        if cell in SETTING_MODELS[name]:
            continue
        default = neutral.get(name)
        if value is None or (default is not None and not isinstance(value, str)
                             and np.ndim(value) == 0 and value == default):
            continue
        users = SETTING_MODELS[name]
        those = "that cell" if len(users) == 1 else "one of those"
        raise ValueError(f"{name}={value!r} is not a setting of cell={cell!r}, which would "
                         f"ignore it: it is for cell {' or '.join(map(repr, users))}; leave "
                         f"{name} out, or choose {those}")


class SequenceClassifier:
    """Trained networks (one, or an ensemble) with their classes and feature scaler."""

    def __init__(self, net, classes: list[str], features: list[str],
                 mean: np.ndarray, std: np.ndarray, fit_config: FitConfig | None = None,
                 meta: dict | None = None, znorm: bool = False):
        self.nets = list(net) if isinstance(net, (list, tuple)) else [net]
        self.net = self.nets[0] if self.nets else None  # None only while train() builds them
        self.classes, self.features = list(classes), list(features)
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)  # (D,)
        self.fit_config = fit_config or FitConfig()
        self.meta = dict(meta or {})
        self.znorm = bool(znorm)

    @property
    def architecture(self) -> str:
        if isinstance(self.net, LSTMFCN):
            return "lstm-fcn" if self.net.config.lstm_branch else "fcn"
        return self.net.config.cell

    # -- data -> network ------------------------------------------------------------------
    def _prepare(self, data: SequenceSet) -> SequenceSet:
        """``data`` with each sequence z-normalised when the model does that."""
        if not self.znorm:
            return data
        out = data.subset(range(len(data)))
        out.x = [znormalise(s) for s in data.x]
        return out

    def _encode_x(self, data: SequenceSet) -> tuple[np.ndarray, np.ndarray]:
        _check_set(data)
        problem = feature_mismatch(self.features, data)
        if problem:
            raise SequenceDataError(problem)
        if len(data) == 0:
            raise SequenceDataError("there are no sequences")
        check_feature_range(data, spread=False)  # NaN or inf, named as such
        if list(data.features) != self.features and sorted(data.features) == sorted(self.features):
            order = [list(data.features).index(f) for f in self.features]  # the same columns,
            data = SequenceSet([s[:, order] for s in data.x], data.labels, data.ids,  # by name
                               list(self.features), data.source, data.notes, data.lines)
        raw = data
        data = self._prepare(data)
        x, lengths = data.padded(np.float64)  # (T, n, D)
        x = (x - self.mean) / self.std
        x[np.arange(x.shape[0])[:, None] >= lengths[None, :]] = 0.0  # padding stays 0
        with np.errstate(over="ignore"):  # an overflow to inf is caught just below
            x = x.astype(self.net.dtype)
        if not np.isfinite(x).all():
            t, i, j = np.argwhere(~np.isfinite(x))[0]
            raise SequenceDataError(f"{raw.source + ': ' if raw.source else ''}"
                                    f"{raw.where(i, t)}, feature "
                                    f"{self.features[j]!r}: {raw.x[i][t, j]:.3g} is too far from "
                                    f"the training data to scale (it falls outside "
                                    f"{self.net.dtype} after standardisation with the training "
                                    f"mean and standard deviation)")
        return x, lengths

    def encode_labels(self, labels) -> np.ndarray:
        """The class index of each of ``labels`` (strings, as the classes are)."""
        check_label_strings(labels)
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({lab for lab in labels if lab not in index})
        if unknown:
            raise SequenceDataError(f"labels {unknown[:5]} were not seen in training "
                                    f"(classes: {', '.join(self.classes)})"
                                    f"{same_number_hint(unknown, self.classes)}")
        return np.array([index[lab] for lab in labels], np.int64)

    # -- training --------------------------------------------------------------------------
    @classmethod
    def train(cls, data: SequenceSet, rng: np.random.Generator, readout: str | None = None,
              hidden_size: int | None = None, num_layers: int = 1, cell: str = "lstm",
              dropout: float = 0.0, dtype: str = "float32", val_fraction: float | None = None,
              fit_config: FitConfig | None = None, on_epoch=None,
              should_stop=None, znorm: bool | None = None, ensemble: int = 1,
              filters: tuple | None = None, bidirectional: bool = False,
              class_weight: str | None = None) -> "SequenceClassifier":
        """Fit on ``data`` (see the module docstring). ``cell`` is "lstm", "gru", "rnn"
        (``hidden_size``, default 64, ``readout``, default "last", ``num_layers`` and
        ``dropout``), "lstm-fcn" (``hidden_size``, the LSTM branch's width, default 64,
        ``filters``, the three convolution blocks', default ``FILTERS``, and
        ``bidirectional``) or "fcn" (LSTM-FCN without its LSTM branch: ``filters`` only).
        A setting the cell does not use is a ValueError naming it, as on the command line,
        rather than silently dropped; its default (None; for ``num_layers``, ``dropout``
        and ``bidirectional`` 1, 0 and False, true of every cell) is not. ``class_weight`` is
        None or "balanced" (module docstring). ``val_fraction`` is None (the rule of the
        module docstring) or a number in [0, 1), ``znorm`` None (univariate data only), True
        or False. With ``fit_config.checkpoint == "train-loss"``
        nothing is held out (``val_fraction`` None or 0).
        ``on_epoch`` and ``should_stop`` are passed to
        :func:`~lstmlab.training.supervised.fit_sequence_net`; ``on_epoch`` records carry the
        ensemble member's index as ``member``."""
        rng = generator(rng)  # an int seed would fail deep inside the split
        _check_set(data)
        if data.labels is None:
            raise SequenceDataError("training needs labelled sequences")
        if len(data) == 0:
            raise SequenceDataError("the training data has no sequences")
        classes = sorted(set(data.labels))
        if len(classes) < 2:
            raise SequenceDataError(f"the training data has only one class ({classes[0]!r}); a "
                                    f"classifier needs at least two classes")
        if cell not in MODELS:
            raise ValueError(f"cell must be one of {MODELS}, got {cell!r}")
        bidirectional = true_or_false(bidirectional, "bidirectional")
        _refuse_unused_settings(cell, hidden_size=hidden_size, readout=readout,
                                num_layers=num_layers, dropout=dropout, filters=filters,
                                bidirectional=bidirectional)
        readout = "last" if readout is None else readout
        hidden_size = 64 if hidden_size is None else hidden_size
        filters = FILTERS if filters is None else filters
        if readout not in ("last", "mean"):
            raise ValueError(f"readout must be 'last' or 'mean', got {readout!r}")
        if isinstance(ensemble, bool) or not isinstance(ensemble, (int, np.integer)) or ensemble < 1:
            raise ValueError(f"ensemble must be an integer >= 1, got {ensemble!r}")
        if class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced', got {class_weight!r}")
        if val_fraction is not None:  # (-0.1 held nothing out, NaN failed inside the split)
            val_fraction = probability(val_fraction, "val_fraction")
        if znorm is not None:  # bool() would take "no" for True
            znorm = true_or_false(znorm, "znorm")
        check_callables(on_epoch=on_epoch, should_stop=should_stop)  # called after an epoch
        if fit_config is None:
            fit_config = FitConfig()
        check_config(fit_config, FitConfig, FIT_CONFIG_EXAMPLE, "fit_config")
        if fit_config.checkpoint == "train-loss":
            if val_fraction:
                raise ValueError(f"val_fraction must be 0 or None with the train-loss "
                                 f"checkpoint (the epoch is chosen on the training loss, so "
                                 f"nothing is held out), got {val_fraction!r}")
            val_fraction = 0.0
        if cell in ("lstm-fcn", "fcn") and fit_config.weight_decay:
            raise ValueError(f"weight decay is not available for {cell}: AdamW would shrink "
                             "the batch-norm running statistics too (use weight_decay 0)")
        check_feature_range(data)
        if znorm is None:
            znorm = data.num_features == 1
        if val_fraction is None:
            val_fraction = 0.15 if len(data) >= AUTO_VAL_MIN else 0.0
        keep, held = stratified_split(data.labels, val_fraction, rng)
        model = cls([], classes, data.features, np.zeros(data.num_features),
                    np.ones(data.num_features), fit_config, znorm=znorm)
        train_set = model._prepare(data.subset(keep))
        model.znorm = False  # train_set is z-normalised already; the scaler is fitted on it
        model.mean, model.std = mean_std(np.concatenate(train_set.x, axis=0), axis=0)
        if cell in ("lstm-fcn", "fcn"):
            config = LSTMFCNConfig(input_size=data.num_features, output_size=len(classes),
                                   length=int(data.lengths.max()), hidden_size=hidden_size,
                                   filters=tuple(filters), bidirectional=bidirectional,
                                   dtype=dtype, lstm_branch=cell == "lstm-fcn")
        else:
            config = SequenceNetConfig(input_size=data.num_features, output_size=len(classes),
                                       hidden_size=hidden_size, num_layers=num_layers, cell=cell,
                                       readout=readout, dropout=dropout, dtype=dtype)
        member_rngs = [rng] if ensemble == 1 else rng.spawn(int(ensemble))
        nets = [_build(config, r) for r in member_rngs]
        model.nets, model.net = nets, nets[0]
        x, lengths = model._encode_x(train_set)
        y = model.encode_labels(train_set.labels)
        weights = (balanced_class_weights(y, len(classes)) if class_weight == "balanced"
                   else None)
        loss_fn = softmax_cross_entropy if weights is None else weighted_cross_entropy(weights)
        val = None
        if len(held):
            model.znorm = znorm
            val_set = data.subset(held)
            xv, lv = model._encode_x(val_set)
            val = (xv, model.encode_labels(val_set.labels), lv)
        model.znorm = znorm
        summaries = []
        for k, (net, r) in enumerate(zip(nets, member_rngs)):
            def record(rec, k=k):
                if on_epoch is not None:
                    on_epoch({**rec, "member": k} if ensemble > 1 else rec)
            summaries.append(fit_sequence_net(net, x, y, loss_fn, fit_config, r,
                                              lengths=lengths, val=val, on_epoch=record,
                                              should_stop=should_stop))
            if summaries[-1]["status"] == "interrupted":
                # a member stopped part-way would pull the average of the finished ones
                # toward its half-trained guesses: it is left out, unless it is the first
                model.nets = nets[:k] if k else nets[:1]
                model.net = model.nets[0]
                break
        summary = dict(summaries[0])
        summary["seconds"] = float(sum(s["seconds"] for s in summaries))
        if any(s["status"] == "interrupted" for s in summaries):
            summary["status"] = "interrupted"
        if ensemble > 1:
            summary["members"] = summaries
        model.meta = {"data": {"source": data.source, "n_train": int(len(keep)),
                               "n_val": int(len(held)), "notes": data.notes},
                      "summary": summary,
                      "class_weights": None if weights is None else weights.tolist(),
                      "class_counts": np.bincount(model.encode_labels(data.labels),
                                                  minlength=len(classes)).tolist()}
        return model

    # -- prediction ------------------------------------------------------------------------
    def member_proba(self, data: SequenceSet) -> np.ndarray:
        """``(K, n, C)`` class probabilities of each ensemble member."""
        x, lengths = self._encode_x(data)
        return np.stack([softmax(net.predict(x, lengths).astype(np.float64)) for net in self.nets])

    def predict_proba(self, data: SequenceSet) -> np.ndarray:
        """``(n, C)`` class probabilities (the members' mean for an ensemble)."""
        return self.member_proba(data).mean(axis=0)

    def predict(self, data: SequenceSet) -> list[str]:
        return [self.classes[i] for i in np.argmax(self.predict_proba(data), axis=1)]

    def evaluate(self, data: SequenceSet) -> dict:
        """Accuracy, confusion matrix and the majority-class baseline on labelled ``data``;
        for an ensemble also each member's accuracy (``member_accuracies``)."""
        if data.labels is None:
            raise SequenceDataError("evaluation needs labels")
        truth = self.encode_labels(data.labels)
        members = self.member_proba(data)  # (K, n, C)
        pred = np.argmax(members.mean(axis=0), axis=1)
        cm = confusion_matrix(truth, pred, len(self.classes))
        train_counts = self.meta.get("class_counts")
        majority = (int(np.argmax(train_counts)) if train_counts
                    else int(np.bincount(truth, minlength=len(self.classes)).argmax()))
        return {"accuracy": float(np.mean(pred == truth)), "n": int(len(truth)),
                "confusion": cm, "majority_accuracy": float(np.mean(truth == majority)),
                "pred": pred,
                "member_accuracies": [float(np.mean(p.argmax(axis=1) == truth)) for p in members]}

    # -- checkpoints -----------------------------------------------------------------------
    def save(self, path, extra: dict | None = None) -> None:
        """Write the checkpoint ``path``; ``extra`` adds JSON fields of the caller's, beside
        the model's own, which it may not replace: the file would not load, or not as this
        model."""
        own = {"kind": KIND, "model": self.net.config.to_json(), "fit": self.fit_config.to_json(),
               "classes": self.classes, "features": self.features,
               "scaler": {"mean": self.mean.tolist(), "std": self.std.tolist()}}
        if extra is not None and not isinstance(extra, dict):
            raise TypeError(f"extra must be a dict of JSON fields or None, got "
                            f"{type(extra).__name__}")
        clash = sorted(set(extra or {}) & (set(own) | {"architecture", "znorm", "members"}))
        if clash:
            raise ValueError(f"extra must not hold the model's own fields, got "
                             f"{', '.join(map(repr, clash))}")
        meta = {**own, **self.meta, **(extra or {})}
        if isinstance(self.net, LSTMFCN):  # the FCN alone too: its config says lstm_branch false
            meta["architecture"] = "lstm-fcn"
        if self.znorm:
            meta["znorm"] = True
        if len(self.nets) > 1:
            meta["members"] = len(self.nets)
        module = self.net if len(self.nets) == 1 else _Members(self.nets)
        save_checkpoint(path, meta, param_arrays(module))

    @classmethod
    def load(cls, path) -> "SequenceClassifier":
        meta, arrays = load_checkpoint(path, expect_kind=KIND)
        try:
            config = _config_class(meta.get("architecture", "seqnet")).from_json(meta["model"])
            fit_config = FitConfig.from_json(meta["fit"])
            classes, features = list(meta["classes"]), list(meta["features"])
            mean, std = meta["scaler"]["mean"], meta["scaler"]["std"]
            members, znorm = int(meta.get("members", 1)), bool(meta.get("znorm", False))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} has a broken description: {exc}") from None
        nets = [_build(config, np.random.default_rng(0)) for _ in range(members)]
        restore_params(nets[0] if members == 1 else _Members(nets), arrays, path)
        for net in nets:
            net.eval()
        rest = {k: meta[k] for k in ("data", "summary", "class_counts", "class_weights",
                                     "csv_options")
                if k in meta}
        return cls(nets, classes, features, mean, std, fit_config, rest, znorm)
