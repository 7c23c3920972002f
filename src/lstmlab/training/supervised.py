"""Minibatch training of a SequenceNet on whole sequences: regression and classification.

Dimensions: T time, n sequences, D features per step, O outputs.

The forecasting and classification tasks (and their scikit-learn-style estimators) all fit
``SequenceNet`` the same way: shuffle the n training sequences each epoch (with the
``Generator`` passed in), cut them into minibatches, forward, a loss that returns its own
gradient, backward, global-norm clipping, an Adam/AdamW update.

The learning rate (``FitConfig.schedule``) either follows a cosine from ``lr`` to ``lr/10``
over all the updates ("cosine"), or starts at ``lr`` and is divided by ∛2 whenever
``plateau_epochs`` epochs pass without a lower training loss, down to ``lr/10`` ("plateau":
Keras's ``ReduceLROnPlateau`` on the training loss, the schedule of the LSTM-FCN authors).

Which epoch's parameters are kept (``FitConfig.checkpoint``): "auto" keeps, with a
validation set, those of the epoch with the lowest validation loss (and stops after
``patience`` epochs without improvement), without one the last epoch's; "train-loss" keeps
those of the epoch with the lowest training loss (the mean of its batches' losses, as Keras
logs it; the LSTM-FCN authors' checkpoint) and runs every epoch, a validation set then being
only logged. Training also ends early, with status "interrupted",
on Ctrl-C (``KeyboardInterrupt``) or when ``should_stop()`` turns true between batches (the
commands connect it to :func:`lstmlab.training.signals.stop_signals`); a second signal's
:class:`~lstmlab.training.signals.StopNow` passes through, as that module promises.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass

import numpy as np

from .._config import JsonConfig, check_config
from .._checks import (as_float_array, as_lengths, as_numpy, generator, is_real,
                       positive_int, short_repr)
from .optim import Adam, AdamW, Cosine, clip_grad_norm
from .signals import StopNow


SCHEDULES = ("cosine", "plateau")
CHECKPOINTS = ("auto", "train-loss")
PLATEAU_FACTOR = 2 ** (-1 / 3)  # the LSTM-FCN authors' 1/∛2 per plateau

FIT_CONFIG_EXAMPLE = "FitConfig(epochs=..., lr=...)"  # how an error shows to build one


@dataclass(frozen=True)
class FitConfig(JsonConfig):
    """How to fit (stored in checkpoints beside the model config)."""

    epochs: int = 300  # most passes over the training set
    batch_size: int = 32  # sequences per update
    lr: float = 3e-3  # Adam's starting learning rate, lowered to lr/10 by the schedule
    weight_decay: float = 0.0  # AdamW's decoupled weight decay (0: plain Adam)
    clip: float = 1.0  # global gradient-norm limit; 0 disables clipping
    patience: int = 50  # epochs without validation improvement before stopping (0: never)
    schedule: str = "cosine"  # "cosine" or "plateau" (see the module docstring)
    plateau_epochs: int = 100  # "plateau": epochs without a lower training loss per cut
    checkpoint: str = "auto"  # "auto" or "train-loss" (see the module docstring)

    def __post_init__(self):
        positive_int(self.epochs, "epochs")
        positive_int(self.batch_size, "batch_size")
        if not (is_real(self.lr) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        for name in ("weight_decay", "clip"):
            v = getattr(self, name)
            if not (is_real(v) and v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        check_decay(self.lr, self.weight_decay)
        if (isinstance(self.patience, bool) or not isinstance(self.patience, numbers.Integral)
                or self.patience < 0):
            raise ValueError(f"patience must be an integer >= 0, got {self.patience!r}")
        positive_int(self.plateau_epochs, "plateau_epochs")
        for name, allowed in (("schedule", SCHEDULES), ("checkpoint", CHECKPOINTS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")



def check_decay(lr: float, weight_decay: float) -> None:
    """Refuse ``lr · weight_decay >= 1``: AdamW multiplies the weights by
    ``1 - lr · weight_decay`` at every update, so they would flip sign and grow until the
    loss overflows, and the divergence error would blame the learning rate alone."""
    if lr * weight_decay >= 1:
        raise ValueError(f"weight_decay (--weight-decay) times lr (--lr) must be below 1, "
                         f"got {weight_decay!r} x {lr!r} = {weight_decay * lr:g}: AdamW "
                         f"multiplies the weights by 1 - lr * weight_decay at every update, "
                         f"so the weights would flip sign and grow until the loss overflows")


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the message suggests what to change. The network
    holds the weights training would have kept up to the last whole epoch before it (the
    best epoch so far, or that last epoch), if there was one; ``summary`` describes them
    as :func:`fit_sequence_net` would (``status`` "diverged"). The commands exit with
    ``exit_code``."""

    exit_code = 3

    def __init__(self, message: str, summary: dict | None = None) -> None:
        super().__init__(message)
        self.summary = summary


def _take(lengths, idx):
    return None if lengths is None else lengths[idx]


def _per_step(net) -> bool:
    """Whether ``net`` outputs every step, ``(T, B, O)`` (a SequenceNet with readout "all"):
    its targets are then time-major too, ``(T, n, ...)``, sequence ``i`` at ``[:, i]``."""
    return getattr(getattr(net, "config", None), "readout", None) == "all"


def _take_targets(target, idx, per_step: bool):
    return target[:, idx] if per_step else target[idx]


def _check_pairs(x, target, lengths, names=("x", "target", "lengths"),
                 per_step: bool = False) -> None:
    """``x (T, n, D)`` against ``target`` (first axis n; with ``per_step``, ``(T, n, ...)``
    as the net's output) and ``lengths (n,)``: the loop pairs sequence ``i`` (``x[:, i]``)
    with ``target[i]`` (``target[:, i]``), so a batch-first ``x (n, T, D)`` would pair
    targets with other samples without a word, or fail deep inside with an IndexError.
    ``names`` are how the errors call the three."""
    xn, tn, ln = names
    if np.ndim(x) != 3:
        raise ValueError(f"{xn} must have shape (T, n, D), time-major, got {np.shape(x)}")
    T, n = np.shape(x)[:2]
    if per_step and np.shape(target)[:2] != (T, n):
        raise ValueError(f"{tn} must have shape ({T}, {n}, ...), a target per step of each "
                         f"sequence of {xn} (T, n, D), time-major as the net's output "
                         f"(readout 'all'), got shape {np.shape(target)}")
    if not per_step and (np.ndim(target) == 0 or np.shape(target)[0] != n):
        raise ValueError(f"{tn} must have one row per sequence of {xn} (T, n, D), n = {n}, "
                         f"got shape {np.shape(target)}; a batch-first (n, T, D) array goes "
                         f"in as {xn}.transpose(1, 0, 2)")
    if lengths is not None and np.shape(lengths) != (n,):
        raise ValueError(f"{ln} must have shape ({n},), one length per sequence of {xn}, "
                         f"got {np.shape(lengths)}")


def _valid_steps_loss(loss_fn, out, target, lengths, per_step: bool):
    """``loss_fn(out, target) -> (loss, dout)``; for a net that outputs every step, given
    ``lengths``, on the valid steps only: the steps past a sequence's length are padding,
    where the output is the head's bias and the target whatever filled the gap, and a loss
    over them would train the head towards the padding (``loss_fn`` sees no lengths to mask
    them). ``loss_fn`` then receives the valid steps as rows, ``(steps, ...)``, and their
    gradient goes back in place, zero at the padding."""
    if not per_step or lengths is None:
        return _loss(loss_fn, out, target)
    valid = np.arange(out.shape[0])[:, None] < np.asarray(lengths)[None, :]  # (T, b)
    loss, dvalid = _loss(loss_fn, out[valid], np.asarray(target)[valid])
    dout = np.zeros(out.shape, np.asarray(dvalid).dtype)
    dout[valid] = dvalid
    return loss, dout


def _loss(loss_fn, out, target):
    """``loss_fn(out, target)``, refused unless it is a pair ``(loss, dout)`` whose loss is
    a number: the loop unpacks it and tests the loss, where Python's error ("cannot unpack
    non-iterable float object") would name neither ``loss_fn`` nor what it must return."""
    result = loss_fn(out, target)
    if not (isinstance(result, (tuple, list)) and len(result) == 2 and np.ndim(result[0]) == 0
            and np.asarray(result[0]).dtype.kind in "fiu"):
        raise TypeError(f"loss_fn must return a pair (loss, dout), a number and the gradient "
                        f"of out, as mse_loss does; got {type(result).__name__} "
                        f"{short_repr(result)}")
    return result


def evaluate_loss(net, x, target, loss_fn, lengths=None, batch_size: int = 1024) -> float:
    """Mean loss of ``net`` (eval mode) over all n sequences (over their valid steps, for a
    net that outputs every step given ``lengths``)."""
    out = net.predict(x, lengths, batch_size=batch_size)
    loss, _ = _valid_steps_loss(loss_fn, out, target, lengths, _per_step(net))
    return loss


def fit_sequence_net(net, x: np.ndarray, target: np.ndarray, loss_fn, cfg: FitConfig,
                     rng: np.random.Generator, lengths=None, val=None, on_epoch=None,
                     should_stop=None) -> dict:
    """Train ``net`` on ``x (T, n, D)`` and ``target`` (first axis n), in place. A net that
    outputs every step (a SequenceNet with readout "all") takes ``target (T, n, ...)``,
    time-major as its output; with ``lengths`` its loss covers the valid steps only, the
    padded ones being neither scored nor trained on. Arrays, lists and tensors are all read
    as arrays.

    ``loss_fn(out, target) -> (loss, dout)`` (mean over the batch); ``val`` is ``(x, target,
    lengths)`` or None; ``on_epoch(record)`` receives each epoch's numbers (for progress and
    metrics logs); ``should_stop()``, asked after every batch, ends training when true.
    Returns a summary: epochs run, best epoch and losses, stop reason, seconds. A NaN or
    infinite training loss raises :class:`TrainingDiverged`, ``net`` holding the weights
    kept up to the last whole epoch.

    Whatever the net or the loss would refuse in the training set or in ``val`` (NaN or inf
    in x, another feature width, lengths outside ``[1, T]``, targets the loss refuses) is
    refused before the first update, ``net`` unchanged, the error naming the validation set
    when it is its; this costs an elementwise pass over the arrays, not a pass of the net.
    """
    rng = generator(rng)
    check_config(cfg, FitConfig, FIT_CONFIG_EXAMPLE, "cfg")  # read deep inside the loop
    _check_net(net)
    check_callables(loss_fn=loss_fn, on_epoch=on_epoch, should_stop=should_stop)
    per_step = _per_step(net)
    x, target = as_numpy(x, "x"), as_numpy(target, "target")
    lengths = None if lengths is None else as_numpy(lengths, "lengths")
    _check_pairs(x, target, lengths, per_step=per_step)
    if val is not None:
        if not (isinstance(val, (tuple, list)) and len(val) == 3):
            raise TypeError("val must be a triple (x, target, lengths) or None")
        val = tuple(None if v is None else as_numpy(v, f"val[{i}]") for i, v in enumerate(val))
        _check_pairs(*val, names=("val[0]", "val[1]", "val[2]"), per_step=per_step)
        if np.shape(val[0])[1] == 0:
            raise ValueError(f"val[0] has no sequences (shape {np.shape(val[0])}); pass "
                             f"val=None to train without a validation set")
        _check_val(net, val, loss_fn, per_step)
    n = x.shape[1]
    if n == 0:
        raise ValueError("there are no training sequences")
    x, lengths = _check_set(net, x, target, lengths, loss_fn, per_step)
    B = min(cfg.batch_size, n)
    batches_per_epoch = math.ceil(n / B)
    params = net.params()
    opt = (AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay) if cfg.weight_decay
           else Adam(params, lr=cfg.lr))
    schedule = Cosine(cfg.lr, cfg.epochs * batches_per_epoch, min_lr=cfg.lr / 10)
    plateau = {"lr": cfg.lr, "best": math.inf, "wait": 0}  # schedule "plateau"
    by_train = cfg.checkpoint == "train-loss"
    best = {"loss": math.inf, "epoch": 0, "params": None}  # the watched loss
    chose = by_train or val is not None
    last_whole = None  # without a watched loss: the weights after the last whole epoch
    status, epoch, t0 = "finished", 0, time.perf_counter()
    train_loss = math.nan
    net.train()
    # Divergence overflows to inf and NaN; the loss check stops training with a message, so
    # NumPy's overflow warnings on the way would only repeat it.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            for epoch in range(1, cfg.epochs + 1):
                order = rng.permutation(n)
                total = 0.0
                stopped = False
                for s in range(0, n, B):
                    idx = order[s:s + B]
                    out = net.forward(x[:, idx], _take(lengths, idx))
                    loss, dout = _valid_steps_loss(loss_fn, out,
                                                   _take_targets(target, idx, per_step),
                                                   _take(lengths, idx), per_step)
                    if not math.isfinite(loss) and opt.step_count == 0:
                        _unfit_for_the_loss(loss, target)
                    if not math.isfinite(loss):
                        watched = "train" if by_train else "val" if val is not None else None
                        _diverged(net, loss, epoch, best if chose else last_whole, watched,
                                  train_loss, t0)
                    net.backward(dout)
                    grads = net.grads()
                    if cfg.clip > 0:
                        clip_grad_norm(grads, cfg.clip)
                    opt.lr = (schedule(opt.step_count) if cfg.schedule == "cosine"
                              else plateau["lr"])
                    opt.step(grads)
                    total += loss * len(idx)
                    if should_stop is not None and should_stop():
                        stopped = True
                        break
                if stopped:
                    status = "interrupted"
                    break
                train_loss = total / n
                record = {"epoch": epoch, "train_loss": train_loss, "lr": opt.lr}
                if val is not None:
                    record["val_loss"] = evaluate_loss(net, val[0], val[1], loss_fn, val[2])
                watched = train_loss if by_train else record.get("val_loss", math.nan)
                if watched < best["loss"]:
                    best = {"loss": watched, "epoch": epoch,
                            "params": {k: p.copy() for k, p in params.items()}}
                if not chose:
                    last_whole = {"loss": math.nan, "epoch": epoch,
                                  "params": {k: p.copy() for k, p in params.items()}}
                if cfg.schedule == "plateau":
                    _plateau_step(plateau, train_loss, cfg)
                if on_epoch is not None:
                    on_epoch(record)
                if (val is not None and not by_train and cfg.patience
                        and epoch - best["epoch"] >= cfg.patience):
                    status = "early-stopped"
                    break
        except StopNow:  # a second signal: stop at once, nothing more written
            raise
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            net.eval()
    if best["params"] is not None:
        net.load_params(best["params"])
    return {"status": status, "epochs_run": epoch, "train_loss": train_loss,
            "best_epoch": best["epoch"] if chose else epoch,
            "best_val_loss": best["loss"] if val is not None and not by_train else None,
            "best_train_loss": best["loss"] if by_train else None,
            "seconds": time.perf_counter() - t0}


def _check_val(net, val, loss_fn, per_step: bool) -> None:
    """Refuse before training what scoring ``val`` after the first epoch would refuse
    (:func:`_check_set`), the error saying it is the validation set's: the net and the loss
    name their own arguments (``x``, ``target``), which read as the training set's."""
    try:
        _check_set(net, val[0], as_numpy(val[1], "target"), val[2], loss_fn, per_step)
    except (ValueError, TypeError) as exc:
        if type(exc) not in (ValueError, TypeError):
            raise
        raise type(exc)(f"the validation set val = (x, target, lengths) is refused: "
                        f"{exc}") from None


def _check_set(net, x, target, lengths, loss_fn, per_step: bool):
    """``x`` and ``lengths`` as the net reads them, once everything the net or the loss
    would refuse in a set has been refused: NaN, inf or values beyond the net's dtype in
    ``x`` and lengths outside ``[1, T]`` (checked whole, elementwise, so that the error gives
    the set's index, not a shuffled batch's), another feature width and targets the loss
    refuses (:func:`_check_targets`). No pass of the net over the whole set is made."""
    x = as_float_array(x, "x", getattr(net, "dtype", None), ndim=3)
    if x.shape[0] == 0:  # (the net's own error would give the one-sequence probe's shape)
        raise ValueError(f"x must have at least one time step, got shape {x.shape}")
    lengths = as_lengths(lengths, x.shape[0], x.shape[1])
    _check_targets(net, x, target, lengths, loss_fn, per_step)
    return x, lengths


def _check_targets(net, x, target, lengths, loss_fn, per_step: bool,
                   chunk: int = 4096) -> None:
    """Give ``loss_fn`` every training target once, beside outputs of zeros of the net's
    shape, before any update: a target it refuses (a label out of range, another width) in
    the last batch would otherwise stop the run after earlier batches had changed the
    weights in place. One sequence's forward in eval mode (``net.predict``, which draws
    nothing from the Generator) gives the output's shape; a net without it goes unchecked."""
    if not hasattr(net, "predict"):
        return
    probe = net.predict(x[:, :1], _take(lengths, slice(0, 1)))
    for i in range(0, x.shape[1], chunk):
        idx = slice(i, min(i + chunk, x.shape[1]))
        part = _take_targets(target, idx, per_step)
        shape = ((probe.shape[0], part.shape[1]) if per_step else (len(part),)) + \
            probe.shape[(2 if per_step else 1):]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            _valid_steps_loss(loss_fn, np.zeros(shape, probe.dtype), part, _take(lengths, idx),
                              per_step)


# What the loop calls on ``net``: a SequenceNet or an LSTMFCN has every one of them.
NET_METHODS = ("forward", "backward", "predict", "params", "grads", "load_params", "train",
               "eval")


def _check_net(net) -> None:
    """Refuse, before any training, a ``net`` that lacks a method the loop calls; a
    recurrent layer alone (its ``forward`` returns ``(y, state)``, not one output array) is
    told to go into a SequenceNet."""
    missing = [m for m in NET_METHODS if not callable(getattr(net, m, None))]
    if not missing:
        return
    what = "None" if net is None else type(net).__name__
    hint = ("; a recurrent layer alone returns (y, state) from forward: put it in a "
            "SequenceNet (lstmlab.layers.SequenceNet), which adds the readout and the head"
            if callable(getattr(net, "step", None)) else "")
    raise TypeError(f"net must be a model with the methods {', '.join(NET_METHODS)}, such as "
                    f"a SequenceNet; {what} lacks {', '.join(missing)}{hint}")


def check_callables(**functions) -> None:
    """Refuse, before any training, a ``loss_fn``, ``on_epoch`` or ``should_stop`` that
    cannot be called (a loss's name as a string, a flag): the loop calls them only after a
    batch or a whole epoch, and Python's error there names none of them."""
    for name, f in functions.items():
        if not (callable(f) or (f is None and name != "loss_fn")):
            what = ("a function (out, target) -> (loss, dout), such as mse_loss" if
                    name == "loss_fn" else "a function, or None")
            raise TypeError(f"{name} must be {what}, got {type(f).__name__} {short_repr(f)}")


def _unfit_for_the_loss(loss: float, target) -> None:
    """A NaN or infinite loss before any update: the data, not the training, is the cause
    (a target whose square overflows, say), so the error says that instead of blaming the
    learning rate."""
    top = float(np.max(np.abs(target))) if np.size(target) else 0.0
    raise ValueError(f"the training loss is {loss} on the first batch, before any update, so "
                     f"no learning rate or clipping can help: the targets (largest magnitude "
                     f"{top:.3g}) or the inputs are too large for the loss; rescale them")


def _diverged(net, loss: float, epoch: int, kept: dict | None, watched: str | None,
              train_loss: float, t0: float) -> None:
    """Raise :class:`TrainingDiverged` for a non-finite ``loss`` in ``epoch``, with ``net``
    set back to the weights of ``kept`` (the best epoch so far by the ``watched`` loss,
    "val" or "train", or the last whole epoch; None when no epoch gave any)."""
    kept = kept if kept is not None and kept["params"] is not None else None
    if kept is not None:
        net.load_params(kept["params"])
        where = f"the network holds the weights of epoch {kept['epoch']}"
    else:
        where = "no epoch gave weights to keep"
    found = kept["loss"] if kept is not None else None
    summary = {"status": "diverged", "epochs_run": epoch, "train_loss": train_loss,
               "best_epoch": kept["epoch"] if kept is not None else 0,
               "best_val_loss": found if watched == "val" else None,
               "best_train_loss": found if watched == "train" else None,
               "seconds": time.perf_counter() - t0}
    raise TrainingDiverged(f"the training loss became {loss} in epoch {epoch} ({where}); try "
                           f"a lower learning rate (--lr) or clipping (--clip)", summary)


def _plateau_step(state: dict, train_loss: float, cfg: FitConfig) -> None:
    """The "plateau" schedule after an epoch: the rate for the next one in ``state["lr"]``
    (Keras's ReduceLROnPlateau on the training loss with cooldown 0: the count of epochs
    without a new lowest loss restarts at each cut)."""
    if train_loss < state["best"]:
        state["best"], state["wait"] = train_loss, 0
        return
    state["wait"] += 1
    if state["wait"] >= cfg.plateau_epochs:
        state["lr"] = max(state["lr"] * PLATEAU_FACTOR, cfg.lr / 10)
        state["wait"] = 0
