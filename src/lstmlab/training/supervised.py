"""Minibatch training of a SequenceNet on whole sequences: regression and classification.

Dimensions: T time, n sequences, D features per step, O outputs.

The forecasting and classification tasks (and their scikit-learn-style estimators) all fit
``SequenceNet`` the same way: shuffle the n training sequences each epoch (with the
``Generator`` passed in), cut them into minibatches, forward, a loss that returns its own
gradient, backward, global-norm clipping, an Adam/AdamW update with a cosine learning-rate
schedule. With a validation set, the parameters of the epoch with the lowest validation loss
are kept (and training stops after ``patience`` epochs without improvement); without one,
the last epoch's parameters are kept. Training also ends early, with status "interrupted",
on Ctrl-C (``KeyboardInterrupt``) or when ``should_stop()`` turns true between batches (the
commands connect it to :func:`lstmlab.training.signals.stop_signals`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .._config import JsonConfig
from .._checks import generator, positive_int
from .optim import Adam, AdamW, Cosine, clip_grad_norm


@dataclass(frozen=True)
class FitConfig(JsonConfig):
    """How to fit (stored in checkpoints beside the model config)."""

    epochs: int = 300  # most passes over the training set
    batch_size: int = 32  # sequences per update
    lr: float = 3e-3  # Adam's peak learning rate, cosine-decayed to lr/10
    weight_decay: float = 0.0  # AdamW's decoupled weight decay (0: plain Adam)
    clip: float = 1.0  # global gradient-norm limit; 0 disables clipping
    patience: int = 50  # epochs without validation improvement before stopping (0: never)

    def __post_init__(self):
        positive_int(self.epochs, "epochs")
        positive_int(self.batch_size, "batch_size")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        for name in ("weight_decay", "clip"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a number >= 0, got {v!r}")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {self.patience!r}")



class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the message suggests what to change."""


def _take(lengths, idx):
    return None if lengths is None else lengths[idx]


def evaluate_loss(net, x, target, loss_fn, lengths=None, batch_size: int = 1024) -> float:
    """Mean loss of ``net`` (eval mode) over all n sequences."""
    out = net.predict(x, lengths, batch_size=batch_size)
    loss, _ = loss_fn(out, target)
    return loss


def fit_sequence_net(net, x: np.ndarray, target: np.ndarray, loss_fn, cfg: FitConfig,
                     rng: np.random.Generator, lengths=None, val=None, on_epoch=None,
                     should_stop=None) -> dict:
    """Train ``net`` on ``x (T, n, D)`` and ``target`` (first axis n), in place.

    ``loss_fn(out, target) -> (loss, dout)`` (mean over the batch); ``val`` is ``(x, target,
    lengths)`` or None; ``on_epoch(record)`` receives each epoch's numbers (for progress and
    metrics logs); ``should_stop()``, asked after every batch, ends training when true.
    Returns a summary: epochs run, best epoch and losses, stop reason, seconds.
    """
    rng = generator(rng)
    n = x.shape[1]
    if n == 0:
        raise ValueError("there are no training sequences")
    B = min(cfg.batch_size, n)
    batches_per_epoch = math.ceil(n / B)
    params = net.params()
    opt = (AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay) if cfg.weight_decay
           else Adam(params, lr=cfg.lr))
    schedule = Cosine(cfg.lr, cfg.epochs * batches_per_epoch, min_lr=cfg.lr / 10)
    best = {"val": math.inf, "epoch": 0, "params": None}
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
                    loss, dout = loss_fn(out, target[idx])
                    if not math.isfinite(loss):
                        raise TrainingDiverged(f"the training loss became {loss} in epoch "
                                               f"{epoch}; try a lower learning rate (--lr) or "
                                               f"clipping (--clip)")
                    net.backward(dout)
                    grads = net.grads()
                    if cfg.clip > 0:
                        clip_grad_norm(grads, cfg.clip)
                    opt.lr = schedule(opt.step_count)
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
                    v = evaluate_loss(net, val[0], val[1], loss_fn, val[2])
                    record["val_loss"] = v
                    if v < best["val"]:
                        best = {"val": v, "epoch": epoch,
                                "params": {k: p.copy() for k, p in params.items()}}
                if on_epoch is not None:
                    on_epoch(record)
                if val is not None and cfg.patience and epoch - best["epoch"] >= cfg.patience:
                    status = "early-stopped"
                    break
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            net.eval()
    if best["params"] is not None:
        net.load_params(best["params"])
    return {"status": status, "epochs_run": epoch, "train_loss": train_loss,
            "best_epoch": best["epoch"] if val is not None else epoch,
            "best_val_loss": best["val"] if val is not None else None,
            "seconds": time.perf_counter() - t0}
