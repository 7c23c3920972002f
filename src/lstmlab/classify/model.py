"""The sequence classifier: standardised features -> SequenceNet ("last" or "mean" readout)
-> class logits, trained with the fused softmax cross-entropy; accuracy and confusion matrix.

Dimensions: n sequences, T longest length, D features per step, C classes.

Variable lengths go through the network's ``lengths`` path: the "last" readout takes each
sequence's state at its own last step, the "mean" readout averages the top layer's outputs
over its valid steps; padding never reaches the loss or the gradients.

Classes are the sorted distinct training labels (so the class order, and a checkpoint, do
not depend on the order of the rows). The feature scaler (mean and standard deviation per
feature over all valid training steps) is fitted on the training sequences only and stored
in the checkpoint (``kind = "classifier"``). A feature whose values float64 cannot
standardise (beyond ±1e150, or varying by less than 1e-150; see ``lstmlab._scaling``), and
data the fitted scaler maps outside the network's dtype, are errors naming the case and
feature.
"""

from __future__ import annotations

import numpy as np

from .._scaling import mean_std, range_problem
from ..layers.seqnet import SequenceNet, SequenceNetConfig
from ..training.checkpoint import (CheckpointError, load_checkpoint, param_arrays, restore_params,
                                   save_checkpoint)
from ..training.losses import softmax, softmax_cross_entropy
from ..training.supervised import FitConfig, fit_sequence_net
from .data import SequenceDataError, SequenceSet

KIND = "classifier"


def stratified_split(labels, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, held_out)`` index arrays: about ``fraction`` of each class held out (at least
    one per class when a class has two or more members)."""
    labels = np.asarray(labels)
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
    """A ``SequenceDataError`` naming the case and feature when a feature of ``data`` cannot
    be standardised in float64 (non-finite, beyond ±1e150, or — with ``spread``, for the data
    a scaler is fitted on — varying by less than 1e-150)."""
    if len(data) == 0:
        return
    steps = np.concatenate(data.x, axis=0)  # (sum T_i, D)
    case = np.repeat(np.arange(len(data)), data.lengths)  # (sum T_i,) the case of each step

    def where(i: int) -> str:
        k = int(case[i])
        return f"case {data.ids[k]!r} (step {i - int(data.lengths[:k].sum())})"

    for j, name in enumerate(data.features):
        problem = range_problem(steps[:, j], name, where, spread)
        if problem:
            raise SequenceDataError(f"{data.source}: feature {problem}")


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` counts: row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(truth), np.asarray(pred)), 1)
    return cm


def format_confusion(cm: np.ndarray, classes: list[str]) -> str:
    """The confusion matrix as text, rows = truth, columns = prediction."""
    names = [str(c) for c in classes]
    w = max(4, *(len(n) for n in names), len(str(int(cm.max(initial=0)))))  # value columns
    corner = "truth \\ pred"
    first = max(len(corner), *(len(n) for n in names))  # the row-label column
    lines = [f"{corner:<{first}}" + "".join(f"{n:>{w + 1}}" for n in names)]
    for i, n in enumerate(names):
        lines.append(f"{n:<{first}}" + "".join(f"{int(v):>{w + 1}}" for v in cm[i]))
    return "\n".join(lines)


class SequenceClassifier:
    """A trained network with its classes and feature scaler."""

    def __init__(self, net: SequenceNet, classes: list[str], features: list[str],
                 mean: np.ndarray, std: np.ndarray, fit_config: FitConfig | None = None,
                 meta: dict | None = None):
        self.net, self.classes, self.features = net, list(classes), list(features)
        self.mean, self.std = np.asarray(mean, np.float64), np.asarray(std, np.float64)  # (D,)
        self.fit_config = fit_config or FitConfig()
        self.meta = dict(meta or {})

    # -- data -> network ------------------------------------------------------------------
    def _encode_x(self, data: SequenceSet) -> tuple[np.ndarray, np.ndarray]:
        if data.num_features != len(self.features):
            raise SequenceDataError(f"the model reads {len(self.features)} feature(s) per step "
                                    f"({', '.join(self.features)}); the data has "
                                    f"{data.num_features} ({', '.join(data.features)})")
        if len(data) == 0:
            raise SequenceDataError("there are no sequences")
        x, lengths = data.padded(np.float64)  # (T, n, D)
        x = (x - self.mean) / self.std
        x[np.arange(x.shape[0])[:, None] >= lengths[None, :]] = 0.0  # padding stays 0
        with np.errstate(over="ignore"):  # an overflow to inf is caught just below
            x = x.astype(self.net.dtype)
        if not np.isfinite(x).all():
            t, i, j = np.argwhere(~np.isfinite(x))[0]
            raise SequenceDataError(f"case {data.ids[i]!r}, step {t}, feature "
                                    f"{self.features[j]!r}: {data.x[i][t, j]:.3g} is too far from "
                                    f"the training data to scale (it falls outside "
                                    f"{self.net.dtype} after standardisation with the training "
                                    f"mean and standard deviation)")
        return x, lengths

    def encode_labels(self, labels) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = sorted({lab for lab in labels if lab not in index})
        if unknown:
            raise SequenceDataError(f"labels {unknown[:5]} were not seen in training "
                                    f"(classes: {', '.join(self.classes)})")
        return np.array([index[lab] for lab in labels], np.int64)

    # -- training --------------------------------------------------------------------------
    @classmethod
    def train(cls, data: SequenceSet, rng: np.random.Generator, readout: str = "last",
              hidden_size: int = 64, num_layers: int = 1, cell: str = "lstm",
              dropout: float = 0.0, dtype: str = "float32", val_fraction: float = 0.15,
              fit_config: FitConfig | None = None, on_epoch=None,
              should_stop=None) -> "SequenceClassifier":
        """Fit on ``data`` (see the module docstring); ``on_epoch`` and ``should_stop`` are
        passed to :func:`~lstmlab.training.supervised.fit_sequence_net`."""
        if data.labels is None:
            raise SequenceDataError("training needs labelled sequences")
        classes = sorted(set(data.labels))
        if len(classes) < 2:
            raise SequenceDataError(f"the training data has only one class ({classes[0]!r}); a "
                                    f"classifier needs at least two classes")
        if readout not in ("last", "mean"):
            raise ValueError(f"readout must be 'last' or 'mean', got {readout!r}")
        fit_config = fit_config or FitConfig()
        check_feature_range(data)
        keep, held = stratified_split(data.labels, val_fraction, rng)
        train_set = data.subset(keep)
        steps = np.concatenate(train_set.x, axis=0)  # (sum T_i, D)
        mean, std = mean_std(steps, axis=0)
        net = SequenceNet(SequenceNetConfig(input_size=data.num_features, output_size=len(classes),
                                            hidden_size=hidden_size, num_layers=num_layers,
                                            cell=cell, readout=readout, dropout=dropout,
                                            dtype=dtype), rng=rng)
        model = cls(net, classes, data.features, mean, std, fit_config)
        x, lengths = model._encode_x(train_set)
        y = model.encode_labels(train_set.labels)
        val = None
        if len(held):
            val_set = data.subset(held)
            xv, lv = model._encode_x(val_set)
            val = (xv, model.encode_labels(val_set.labels), lv)
        summary = fit_sequence_net(net, x, y, softmax_cross_entropy, fit_config, rng,
                                   lengths=lengths, val=val, on_epoch=on_epoch,
                                   should_stop=should_stop)
        model.meta = {"data": {"source": data.source, "n_train": int(len(keep)),
                               "n_val": int(len(held)), "notes": data.notes},
                      "summary": summary,
                      "class_counts": np.bincount(model.encode_labels(data.labels),
                                                  minlength=len(classes)).tolist()}
        return model

    # -- prediction ------------------------------------------------------------------------
    def predict_proba(self, data: SequenceSet) -> np.ndarray:
        """``(n, C)`` class probabilities."""
        x, lengths = self._encode_x(data)
        return softmax(self.net.predict(x, lengths).astype(np.float64))

    def predict(self, data: SequenceSet) -> list[str]:
        return [self.classes[i] for i in np.argmax(self.predict_proba(data), axis=1)]

    def evaluate(self, data: SequenceSet) -> dict:
        """Accuracy, confusion matrix and the majority-class baseline on labelled ``data``."""
        if data.labels is None:
            raise SequenceDataError("evaluation needs labels")
        truth = self.encode_labels(data.labels)
        pred = np.argmax(self.predict_proba(data), axis=1)
        cm = confusion_matrix(truth, pred, len(self.classes))
        train_counts = self.meta.get("class_counts")
        majority = (int(np.argmax(train_counts)) if train_counts
                    else int(np.bincount(truth, minlength=len(self.classes)).argmax()))
        return {"accuracy": float(np.mean(pred == truth)), "n": int(len(truth)),
                "confusion": cm, "majority_accuracy": float(np.mean(truth == majority)),
                "pred": pred}

    # -- checkpoints -----------------------------------------------------------------------
    def save(self, path, extra: dict | None = None) -> None:
        meta = {"kind": KIND, "model": self.net.config.to_json(), "fit": self.fit_config.to_json(),
                "classes": self.classes, "features": self.features,
                "scaler": {"mean": self.mean.tolist(), "std": self.std.tolist()},
                **self.meta, **(extra or {})}
        save_checkpoint(path, meta, param_arrays(self.net))

    @classmethod
    def load(cls, path) -> "SequenceClassifier":
        meta, arrays = load_checkpoint(path, expect_kind=KIND)
        try:
            config = SequenceNetConfig.from_json(meta["model"])
            fit_config = FitConfig.from_json(meta["fit"])
            classes, features = list(meta["classes"]), list(meta["features"])
            mean, std = meta["scaler"]["mean"], meta["scaler"]["std"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} has a broken description: {exc}") from None
        net = SequenceNet(config, rng=np.random.default_rng(0))
        restore_params(net, arrays, path)
        net.eval()
        rest = {k: meta[k] for k in ("data", "summary", "class_counts") if k in meta}
        return cls(net, classes, features, mean, std, fit_config, rest)
