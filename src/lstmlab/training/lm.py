"""Training character-level language models: truncated BPTT, evaluation, checkpoints, resume.

Dimensions: S steps per chunk (seq_len), B batch (parallel streams), V vocabulary.

One training step (:func:`train_step`) is: forward a chunk ``(S, B)`` from the state the
previous chunk left, fused softmax cross-entropy, backward, global-norm clipping, one
optimizer update; the final state is carried to the next chunk (truncated BPTT: gradients
stop at the chunk boundary, the state does not). It resets to zeros at the start of every
epoch, where the streams restart.

The :class:`LMTrainer` wraps that in a run: a schedule for the learning rate, evaluation on a
held-out split, best-model tracking and early stopping, a progress line, a metrics log
(JSON lines) and checkpoints (``last.ckpt``, ``best.ckpt``) from which ``resume`` continues
with exactly the loss trajectory an uninterrupted run would have had: the checkpoint holds
the parameters, the optimizer's buffers, the carried state, the step and the RNG state.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._config import JsonConfig
from .._streams import rewritten
from .._checks import (float_dtype, generator, is_real, non_negative_int, positive_int,
                       probability, true_or_false)
from .._words import counted
from ..data.text import LMBatcher, Vocab
from ..layers.model import CharLM, CharLMConfig
from .distributed import (GradientSum, PeerLost, check_supported, dropout_in_use,
                          stream_range)
from .checkpoint import (CheckpointError, atomic_write_text, load_checkpoint, param_arrays,
                         restore_params, save_checkpoint)
from .losses import softmax_cross_entropy
from .optim import SGD, Adam, AdamW, Constant, Cosine, StepDecay, Warmup, clip_grad_norm
from .signals import StopNow, stop_signals

LN2 = math.log(2.0)
KIND = "charlm"


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    """How to train (stored in checkpoints; a resumed run uses the stored values)."""

    seq_len: int = 100  # S, characters per chunk (truncated-BPTT length)
    batch_size: int = 32  # B, parallel streams
    steps: int = 2000  # optimizer steps in the whole run
    lr: float = 2e-3  # peak learning rate
    optimizer: str = "adam"  # "sgd", "adam" or "adamw"
    momentum: float = 0.9  # SGD momentum
    nesterov: bool = False  # SGD Nesterov momentum
    weight_decay: float = 0.0  # L2 (sgd, adam) or decoupled (adamw) weight decay
    clip: float = 5.0  # global gradient-norm limit; 0 disables clipping
    schedule: str = "cosine"  # "constant", "cosine" (to lr/10) or "step" (x0.5 every steps/4)
    warmup: int = 0  # linear warm-up steps before the schedule
    eval_every: int = 200  # steps between evaluations on the validation split
    eval_chunks: int = 20  # validation chunks per evaluation (0 = the whole split)
    checkpoint_every: int = 200  # steps between checkpoints
    patience: int = 0  # stop after this many evaluations without improvement (0 = never)
    val_fraction: float = 0.05  # share of the text (its end) held out for validation

    def __post_init__(self):
        for name in ("seq_len", "batch_size", "steps", "eval_every", "checkpoint_every"):
            positive_int(getattr(self, name), name)
        for name in ("lr", "momentum", "weight_decay", "clip"):  # before comparing them
            v = getattr(self, name)
            if not is_real(v) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {v!r}")
        true_or_false(self.nesterov, "nesterov", ValueError)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if self.optimizer not in ("sgd", "adam", "adamw"):
            raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw', got {self.optimizer!r}")
        if self.schedule not in ("constant", "cosine", "step"):
            raise ValueError(f"schedule must be 'constant', 'cosine' or 'step', got {self.schedule!r}")
        if not self.clip >= 0:
            raise ValueError(f"clip must be >= 0 (0 disables clipping), got {self.clip!r}")
        for name in ("warmup", "eval_chunks", "patience"):
            non_negative_int(getattr(self, name), name)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        probability(self.val_fraction, "val_fraction")
        if self.val_fraction == 0:
            raise ValueError("val_fraction must be > 0: a validation split is needed")



def make_optimizer(cfg: TrainConfig, params: dict):
    if cfg.optimizer == "sgd":
        return SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                   weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_schedule(cfg: TrainConfig):
    if cfg.schedule == "constant":
        base = Constant(cfg.lr)
    elif cfg.schedule == "cosine":
        base = Cosine(cfg.lr, max(1, cfg.steps - cfg.warmup), min_lr=cfg.lr / 10)
    else:
        base = StepDecay(cfg.lr, step_size=max(1, cfg.steps // 4), gamma=0.5)
    return Warmup(base, cfg.warmup, start_factor=0.0) if cfg.warmup else base


def train_step(model: CharLM, optimizer, inputs: np.ndarray, targets: np.ndarray, state,
               clip: float, share=None):
    """One truncated-BPTT step. Returns ``(loss, grad_norm, final_state)``.

    ``loss`` is the mean cross-entropy in nats per character of this chunk, computed before
    the update; ``grad_norm`` the global gradient norm before clipping.

    ``share`` (a :class:`~.distributed.GradientSum`) makes this a data-parallel step: the
    chunk is this process's streams, and the loss and gradient are those of the global
    chunk, summed over processes before clipping.
    """
    logits, final = model.forward(inputs, state)  # (S, B, V)
    if share is not None:
        loss = share.loss_and_gradients(model, logits, targets)
        if not math.isfinite(loss):
            return loss, float("nan"), final
    elif not np.isfinite(logits).all():  # diverged: report it, leave the weights alone
        return float("nan"), float("nan"), final
    else:
        loss, dlogits = softmax_cross_entropy(logits, targets)
        model.backward(dlogits)
    grads = model.grads()
    if clip > 0:
        norm = clip_grad_norm(grads, clip)
    else:
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
    if math.isfinite(loss) and math.isfinite(norm):
        optimizer.step(grads)
    return loss, norm, final


def evaluate_lm(model: CharLM, ids: np.ndarray, seq_len: int, batch_size: int,
                max_chunks: int = 0) -> tuple[float, int]:
    """Mean cross-entropy (nats per character) of ``model`` on the token stream ``ids``, in
    eval mode, carrying the state across chunks, the first ``max_chunks`` chunks (0: all).
    Returns ``(loss, characters scored)``."""
    total, count = score_lm(model, ids, seq_len, batch_size, max_chunks)
    return total / count, count


def score_lm(model: CharLM, ids: np.ndarray, seq_len: int, batch_size: int,
             max_chunks: int = 0, part: tuple[int, int] = (0, 1)) -> tuple[float, int]:
    """The summed cross-entropy (nats) and the number of characters of :func:`evaluate_lm`,
    over the streams that process ``part = (rank, processes)`` owns (see
    :func:`.distributed.stream_range`; ``(0, 0)`` when it owns none)."""
    positive_int(seq_len, "seq_len")
    positive_int(batch_size, "batch_size")
    non_negative_int(max_chunks, "max_chunks")
    was_training = model.training
    model.eval()
    try:
        B = max(1, min(batch_size, (len(ids) - 1) // (seq_len + 1)))
        lo, hi = stream_range(B, *part)
        batcher = LMBatcher(ids, B, seq_len)
        n = len(batcher) if max_chunks <= 0 else min(max_chunks, len(batcher))
        state, total, count = None, 0.0, 0
        for k in range(n if hi > lo else 0):
            x, y = batcher.chunk(k)
            x, y = x[:, lo:hi], y[:, lo:hi]  # (S, hi - lo)
            logits, state = model.forward(x, state)
            loss, _ = softmax_cross_entropy(logits, y, reduction="sum")
            total += loss
            count += y.size
        return total, count
    finally:
        model.train(was_training)


def evaluate_text(model: CharLM, ids: np.ndarray, seq_len: int) -> tuple[float, int]:
    """Mean cross-entropy (nats per character) of ``model`` on the whole token stream ``ids``:
    every token after the first is scored once, predicted from all the tokens before it.

    One stream read in chunks of ``seq_len`` (the last one shorter when ``len(ids) - 1`` is
    not a multiple), the state carried from chunk to chunk, in eval mode; ``seq_len`` bounds
    the memory only, the result is the same to round-off for every ``seq_len``. Returns
    ``(loss, characters scored)`` with ``characters scored = len(ids) - 1``.
    """
    positive_int(seq_len, "seq_len")
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) < 2:
        raise ValueError(f"ids must be one stream of at least 2 tokens, got shape {ids.shape}")
    was_training = model.training
    model.eval()
    try:
        state, total, n = None, 0.0, len(ids) - 1
        for start in range(0, n, seq_len):
            stop = min(start + seq_len, n)
            logits, state = model.forward(ids[start:stop, None], state)
            loss, _ = softmax_cross_entropy(logits, ids[start + 1:stop + 1, None], reduction="sum")
            total += loss
        return total / n, n
    finally:
        model.train(was_training)


def fingerprint(ids: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).hexdigest()[:16]


def _format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


class TrainingStopped(Exception):
    """The run stopped early for a reason the user must see (NaN loss)."""


class LMTrainer:
    """A training run of a CharLM, writing into ``out_dir``.

    ``out_dir`` receives ``last.ckpt`` (at step 0, every ``checkpoint_every`` steps and at
    the end),
    ``best.ckpt`` (the lowest validation loss so far) and ``metrics.jsonl``.

    With ``group`` (a :class:`~.distributed.Group`) this is one process of a data-parallel
    run: it trains on its share of the batch streams, every step sums the gradient over the
    processes, and only rank 0 writes files and progress; checkpoints hold the whole batch's
    carried state, so a run resumes with any number of processes.

    ``engine="torch"`` trains the model's torch twin instead (:mod:`.torch_engine`, on
    ``device``); the CharLM and optimizer here then hold the run's state at each evaluation
    and checkpoint, so the checkpoints are the same as the NumPy engine's.
    """

    def __init__(self, model: CharLM, vocab: Vocab, train_ids, val_ids, cfg: TrainConfig,
                 out_dir, rng: np.random.Generator, data_description: str = "",
                 log=None, progress: bool = True, group=None, engine: str = "numpy",
                 device: str = "cpu"):
        for name, value, cls, hint in (
                ("vocab", vocab, Vocab, "Vocab.from_text(text)"),
                ("cfg", cfg, TrainConfig, "TrainConfig(steps=..., lr=...)")):
            if not isinstance(value, cls):  # read deep inside the run otherwise
                raise TypeError(f"{name} must be a {cls.__name__} ({hint}), got "
                                f"{type(value).__name__}")
        if model.config.vocab_size != len(vocab):  # the embedding and the head are V wide
            raise ValueError(f"the model's vocab_size ({model.config.vocab_size}) is not the "
                             f"vocabulary's size ({len(vocab)}): build the model with "
                             f"CharLMConfig(vocab_size=len(vocab))")
        for name, ids in (("train_ids", train_ids), ("val_ids", val_ids)):
            arr = np.asarray(ids)
            if arr.dtype.kind in "iu" and arr.size and arr.max() >= len(vocab):
                raise ValueError(f"{name} must be ids of the vocabulary, in [0, {len(vocab)}), "
                                 f"got {int(arr.max())} (encode the text with vocab.encode)")
        self.model, self.vocab, self.cfg = model, vocab, cfg
        self.train_ids, self.val_ids = train_ids, val_ids
        self.out_dir = Path(out_dir)
        self.rng = generator(rng)
        self.data_description = data_description
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.progress = progress
        self.batcher = LMBatcher(train_ids, cfg.batch_size, cfg.seq_len)
        self.group = group
        self.leader = group is None or group.leader  # writes files, metrics and progress
        self.streams = (0, cfg.batch_size)  # [lo, hi): the batch streams this process trains
        # The object whose per-step all-reduce carries the stop flag (several processes only).
        self.share = None
        if group is not None:
            check_supported(group.world, cfg.batch_size, dropout_in_use(model.config))
            self.streams = stream_range(cfg.batch_size, group.rank, group.world)
            if engine == "numpy":
                self.share = GradientSum(group, model, cfg.seq_len * cfg.batch_size)
        if len(val_ids) < cfg.seq_len + 1:  # score_lm reads one stream of one chunk at least
            raise ValueError(f"the validation split has {len(val_ids)} characters, fewer than one "
                             f"chunk of seq_len + 1 = {cfg.seq_len + 1}; raise val_fraction or "
                             f"lower seq_len")
        self.optimizer = make_optimizer(cfg, model.params())
        self.schedule = make_schedule(cfg)
        if engine not in ("numpy", "torch"):
            raise ValueError(f"engine must be 'numpy' or 'torch', got {engine!r}")
        if engine == "numpy" and device != "cpu":
            raise ValueError(f"device={device!r} needs engine='torch': lstmlab's own kernels "
                             f"run on the CPU")
        self.engine = None
        if engine == "torch":
            from .torch_engine import TorchEngine
            self.engine = TorchEngine(model, self.optimizer, device, group,
                                      cfg.seq_len * cfg.batch_size)
            if group is not None:
                self.share = self.engine
        self.step = 0
        self.state = None
        self.best_val = math.inf
        self.best_step = -1
        self.evals_since_best = 0
        # The validation loss and step of the model in best.ckpt: the run's own best, or a
        # lower one that a resumed run found on disk (see _adopt_best_on_disk).
        self.kept_val, self.kept_step = math.inf, -1
        self.data_fp = fingerprint(np.concatenate([train_ids, val_ids]))
        self._saved_step = None  # the step last.ckpt holds, for the message of a hard stop

    # -- checkpoints ----------------------------------------------------------------------
    def _meta(self) -> dict:
        opt_meta, _ = self.optimizer.state_dict()
        return {
            "kind": KIND,
            "model": self.model.config.to_json(),
            "vocab": self.vocab.to_json(),
            "train": self.cfg.to_json(),
            "optimizer": opt_meta,
            "step": self.step,
            "rng": self.rng.bit_generator.state,
            "best_val": None if math.isinf(self.best_val) else self.best_val,
            "best_step": self.best_step,
            "evals_since_best": self.evals_since_best,
            "data": {"fingerprint": self.data_fp, "description": self.data_description,
                     "train_chars": int(len(self.train_ids)), "val_chars": int(len(self.val_ids))},
            "has_state": self.state is not None,
        }

    def _arrays(self) -> dict:
        arrays = param_arrays(self.model)
        _, opt_arrays = self.optimizer.state_dict()
        arrays.update({f"optim/{k}": v for k, v in opt_arrays.items()})
        if self.state is not None:
            arrays.update({f"state/{i}": s for i, s in enumerate(self._whole_state())})
        return arrays

    def _whole_state(self) -> tuple[np.ndarray, ...]:
        """The carried state of all B streams (each process holds its own streams' columns)."""
        state = self.state if self.engine is None else self.engine.state_arrays(self.state)
        if self.group is None:
            return state
        lo, hi = self.streams
        return tuple(self.group.gather_streams(s, lo, hi, self.cfg.batch_size) for s in state)

    def save(self, name: str) -> Path:
        """Write checkpoint ``name``; every process of a data-parallel run calls this (the
        carried state is gathered) and rank 0 writes."""
        path = self.out_dir / name
        self._sync_from_engine()
        arrays = self._arrays()
        if self.leader:
            save_checkpoint(path, self._meta(), arrays)
        return path

    def restore(self, path) -> None:
        """Continue from a checkpoint of this same run (same data, model and settings)."""
        meta, arrays = load_checkpoint(path, expect_kind=KIND)
        if meta["data"]["fingerprint"] != self.data_fp:
            raise CheckpointError(f"checkpoint {path} was trained on other data "
                                  f"({meta['data']['description'] or 'unknown'}); resume needs "
                                  f"the same text files")
        if Vocab.from_json(meta["vocab"]) != self.vocab:
            raise CheckpointError(f"checkpoint {path} has another vocabulary")
        restore_params(self.model, arrays, path)
        opt_arrays = {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}
        try:
            self.optimizer.load_state_dict(meta["optimizer"], opt_arrays)
        except ValueError as exc:  # a hand-edited or damaged optimizer section
            raise CheckpointError(f"checkpoint {path}: 'optimizer': {exc}") from None
        self.step = int(meta["step"])
        self.rng.bit_generator.state = meta["rng"]
        self.best_val = math.inf if meta["best_val"] is None else float(meta["best_val"])
        self.best_step = int(meta["best_step"])
        self.evals_since_best = int(meta["evals_since_best"])
        if meta["has_state"]:
            n = 2 if self.model.is_lstm else 1
            lo, hi = self.streams
            self.state = tuple(np.ascontiguousarray(arrays[f"state/{i}"][:, lo:hi],
                                                    dtype=self.model.dtype) for i in range(n))
        else:
            self.state = None
        if self.engine is not None:
            self.engine.load_from(self.model, self.optimizer)
        self.kept_val, self.kept_step = self.best_val, self.best_step
        self._adopt_best_on_disk()
        if self.leader:
            self._truncate_metrics(self.step)

    def _adopt_best_on_disk(self) -> None:
        """Take the loss that ``best.ckpt`` in ``out_dir`` records as the one to beat, when it
        is lower than the restored run's best.

        A run killed after writing ``best.ckpt`` but before ``last.ckpt`` resumes from an
        earlier step than its best model, and its own best (stored in ``last.ckpt``) is
        that earlier step's: without this, the first evaluations after resuming would replace
        the better model. The run's own best still counts the evaluations for ``patience``,
        so a resumed run stops where the uninterrupted one would have. A ``best.ckpt`` that
        cannot be read, or of other data, is replaced by the run's next best model.
        """
        path = self.out_dir / "best.ckpt"
        if not path.exists():
            return
        try:
            meta, _ = load_checkpoint(path, expect_kind=KIND)
        except CheckpointError as exc:
            if self.leader:
                self.log(f"note: {exc}; the run's next best model replaces it")
            return
        if meta["data"]["fingerprint"] != self.data_fp or meta["best_val"] is None:
            return
        if float(meta["best_val"]) < self.kept_val:
            self.kept_val, self.kept_step = float(meta["best_val"]), int(meta["best_step"])

    # -- metrics ------------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.out_dir / "metrics.jsonl"

    def _truncate_metrics(self, step: int) -> None:
        """Drop log lines past ``step`` (written after the checkpoint a resume starts from),
        and lines that are not a record of a step: cut short by a kill, or damaged (bytes
        that are not UTF-8, a value that is not a JSON object, a step that is not a number)."""
        if not self.metrics_path.exists():
            return
        keep = []
        text = self.metrics_path.read_bytes().decode("utf-8", errors="replace")
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            done = record.get("step", 0) if isinstance(record, dict) else None
            if isinstance(done, int) and not isinstance(done, bool) and done <= step:
                keep.append(line)
        atomic_write_text(self.metrics_path, "".join(line + "\n" for line in keep))

    def _write_metrics(self, record: dict) -> None:
        with open(self.metrics_path, "a", encoding="utf-8", newline="\n") as f:
            f.write(json.dumps(record) + "\n")

    # -- the loop -----------------------------------------------------------------------
    def _sync_from_engine(self) -> None:
        if self.engine is not None:
            self.engine.store_into(self.model, self.optimizer)

    def _evaluate(self) -> float:
        self._sync_from_engine()
        part = (0, 1) if self.group is None else (self.group.rank, self.group.world)
        total, count = score_lm(self.model, self.val_ids, self.cfg.seq_len, self.cfg.batch_size,
                                self.cfg.eval_chunks, part)
        if self.group is not None:  # each process scored its streams: add them up
            sums = np.array([total, count], np.float64)
            self.group.all_reduce(sums)
            total, count = sums
        return float(total / count)

    def run(self) -> dict:
        """Train until ``cfg.steps`` (or early stopping, a stop signal, NaN). Returns a summary.

        A run that starts at step 0 first writes ``last.ckpt`` at step 0 (and clears any
        ``metrics.jsonl`` of an earlier run there), so a folder holding metrics always holds
        a checkpoint to resume from, however early the run is stopped or killed.

        Ctrl-C or SIGTERM (see :mod:`.signals`): the step in progress finishes, ``last.ckpt``
        is written, and the summary has ``status = "interrupted"`` and ``signal`` (the
        number); a second signal raises :class:`~.signals.StopNow` at once, leaving the
        checkpoints as they were.
        """
        last_path = self.out_dir / "last.ckpt"
        self._saved_step = self.step if last_path.exists() else None
        try:
            return self._run(last_path)
        except PeerLost as exc:
            held = (f"{last_path} holds step {self._saved_step}; continue with --resume (with "
                    f"any number of processes)" if self._saved_step is not None
                    else "no checkpoint was written")
            raise PeerLost(f"{exc}; the run stopped; {held}") from None
        except StopNow as exc:
            held = (f"{last_path} holds step {self._saved_step}" if self._saved_step is not None
                    else "no checkpoint was written")
            self.log(f"\nstopped at once by a second {exc.args[0]}: nothing more saved; {held}"
                     + ("; continue with --resume" if self._saved_step is not None else ""))
            raise

    def _patience_spent(self) -> bool:
        """Whether the last ``patience`` evaluations brought no improvement: the run stops
        (and a resumed one takes no step)."""
        return bool(self.cfg.patience) and self.evals_since_best >= self.cfg.patience

    def _run(self, last_path: Path) -> dict:
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.model.train()
        chars_per_step = cfg.seq_len * cfg.batch_size
        t_start = time.perf_counter()
        start_step = self.step
        last_print = 0.0
        status = "finished"
        last_loss = float("nan")
        # A diverging run (too high a learning rate, say) overflows to inf and NaN; the loop's
        # own check stops it with a message naming the step, so NumPy's warnings on the way
        # would only repeat that, as noise on stderr.
        if self.group is not None:  # every process has checked --out before rank 0 writes there
            self.group.barrier()
        with stop_signals() as stop, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.step == 0:
                if self.leader:
                    self._truncate_metrics(0)
                self.save("last.ckpt")
                self._saved_step = 0
            if self._patience_spent() and self.step < cfg.steps:  # a resumed early-stopped run
                status = "early-stopped"
                if self.leader:
                    self.log(f"early stop: the run stopped at step {self.step} after "
                             f"{counted(cfg.patience, 'evaluation')} without improvement; "
                             f"nothing to continue")
            while self.step < cfg.steps and status == "finished":
                # Several processes stop together: after the step in which any of them saw
                # the signal (the flag rides on the step's all-reduce).
                stopping = stop.requested if self.share is None else self.share.stop_agreed
                if stopping:
                    status = "interrupted"
                    break
                k = self.step % len(self.batcher)
                if k == 0:
                    self.state = None  # a new epoch: the streams restart from their beginnings
                inputs, targets = self.batcher.chunk(k)
                lo, hi = self.streams
                inputs, targets = inputs[:, lo:hi], targets[:, lo:hi]  # (S, hi - lo)
                self.optimizer.lr = self.schedule(self.step)
                if self.share is not None:
                    self.share.stop_requested = stop.requested
                if self.engine is not None:
                    loss, norm, final = self.engine.step(inputs, targets, self.state, cfg.clip,
                                                         self.optimizer.lr)
                else:
                    loss, norm, final = train_step(self.model, self.optimizer, inputs, targets,
                                                   self.state, cfg.clip, self.share)
                if not (math.isfinite(loss) and math.isfinite(norm)):
                    where = (f"the last good checkpoint is {last_path}" if last_path.exists()
                             else "no checkpoint was written yet")
                    raise TrainingStopped(
                        f"the loss became {loss} (gradient norm {norm}) at step {self.step + 1}; "
                        f"stopped without updating the weights; {where}. Try a lower --lr or "
                        f"a --clip value.")
                self.state = final
                self.step += 1
                last_loss = loss
                elapsed = time.perf_counter() - t_start
                done = self.step - start_step
                cps = done * chars_per_step / max(elapsed, 1e-9)
                record = {"step": self.step, "loss": loss, "bpc": loss / LN2,
                          "lr": self.optimizer.lr, "grad_norm": norm,
                          "chars_per_sec": round(cps, 1)}
                if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                    val = self._evaluate()
                    record.update(val_loss=val, val_bpc=val / LN2)
                    if val < self.best_val:
                        self.best_val, self.best_step, self.evals_since_best = val, self.step, 0
                    else:
                        self.evals_since_best += 1
                    if val < self.kept_val:
                        self.kept_val, self.kept_step = val, self.step
                        self.save("best.ckpt")
                if self.leader:
                    self._write_metrics(record)
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    self.save("last.ckpt")
                    self._saved_step = self.step
                now = time.perf_counter()
                final_step = self.step == cfg.steps
                tty = sys.stderr.isatty()
                interval = 0.5 if tty else 10.0  # a log file gets a line every 10 s, not a flood
                if self.leader and self.progress and (now - last_print > interval or final_step
                                      or "val_loss" in record):
                    eta = (cfg.steps - self.step) * elapsed / max(done, 1)
                    line = (f"step {self.step}/{cfg.steps}  loss {loss:.3f}  bpc {loss / LN2:.3f}"
                            f"  {cps / 1000:.1f}k chars/s  ETA {_format_duration(eta)}")
                    if "val_loss" in record:
                        line += f"  | val bpc {record['val_bpc']:.3f}"
                    if tty:
                        end = "\n" if "val_loss" in record or final_step else ""
                        print(rewritten(line, kept=end == "\n"), end=end, file=sys.stderr,
                              flush=True)
                    else:
                        print(line, file=sys.stderr, flush=True)
                    last_print = now
                if self._patience_spent():
                    status = "early-stopped"
                    if self.leader:
                        self.log(f"early stop: no validation improvement in "
                                 f"{counted(cfg.patience, 'evaluation')}")
                    break
            if status != "finished" or self.step % cfg.checkpoint_every:
                path = self.save("last.ckpt")
                if status == "interrupted" and self.leader:
                    self.log(f"\ninterrupted: saved {path} at step {self.step} "
                             f"({stop.name or 'another process was stopped'}); "
                             f"continue with --resume")
        # A process told to stop by another one's signal exits as if it had seen SIGTERM.
        signum = (stop.signum or signal.SIGTERM) if status == "interrupted" else None
        return {"status": status, "step": self.step, "last_loss": last_loss,
                "best_val": self.kept_val, "best_step": self.kept_step,
                "signal": signum,
                "seconds": time.perf_counter() - t_start}


def load_charlm(path, dtype=None) -> tuple[CharLM, Vocab, dict]:
    """Rebuild a CharLM and its vocabulary from a checkpoint (for generate/evaluate/export).
    ``dtype`` (float32 or float64, as NumPy or torch spells it; None: the checkpoint's) is
    the model's, checked before the file is read."""
    if dtype is not None:
        dtype = float_dtype(dtype)
    meta, arrays = load_checkpoint(path, expect_kind=KIND)
    try:
        config = CharLMConfig.from_json(meta["model"])
        vocab = Vocab.from_json(meta["vocab"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has a broken model description: {exc}") from None
    if dtype is not None:
        config = CharLMConfig(**{**config.to_json(), "dtype": dtype.name})
    model = CharLM(config, rng=np.random.default_rng(0))
    restore_params(model, arrays, path)
    model.eval()
    return model, vocab, meta


def sample_next(logits: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator,
                top_p: float = 1.0) -> int:
    """One token from ``logits (V,)``: argmax at temperature 0, else softmax(logits / T)
    restricted to the ``top_k`` largest (0 = all), then to the nucleus of ``top_p``
    (1 = all): the smallest set of the likeliest tokens whose probability reaches ``top_p``
    (Holtzman et al. 2020), ties taken in token order; the kept probabilities are
    renormalised.

    The largest logit is subtracted before dividing by T, so the exponents are <= 0 for any
    T > 0: a tiny T (even a subnormal one like 1e-310) sends the others to -inf and gives
    the limit T -> 0, the argmax (ties shared equally), never NaN probabilities.
    """
    logits = np.asarray(logits, np.float64)
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits - logits.max()
    if 0 < top_k < len(z):
        cut = np.partition(z, -top_k)[-top_k]
        z = np.where(z >= cut, z, -np.inf)
    with np.errstate(over="ignore"):  # (z / T) -> -inf is the limit meant here
        p = np.exp(z / temperature)
    p /= p.sum()
    if top_p < 1:
        p = _nucleus(p, top_p)
    cdf = np.cumsum(p)
    # u at or above cdf[-1] (its last bits rounded down) takes the last token that can come
    return int(min(np.searchsorted(cdf, rng.random(), side="right"), np.flatnonzero(p)[-1]))


def _nucleus(p: np.ndarray, top_p: float) -> np.ndarray:
    """``p (V,)`` kept on its nucleus of ``top_p`` and renormalised: the likeliest tokens
    (ties in token order) while the probability before each is below ``top_p``."""
    order = np.argsort(-p, kind="stable")  # (V,) likeliest first
    before = np.concatenate(([0.0], np.cumsum(p[order])[:-1]))  # (V,) mass ahead of each
    keep = order[(before < top_p) & (p[order] > 0)]
    out = np.zeros_like(p)
    out[keep] = p[keep]
    return out / out.sum()


def generate(model: CharLM, vocab: Vocab, prompt: str, length: int, temperature: float = 1.0,
             top_k: int = 0, rng: np.random.Generator | None = None, on_char=None,
             unknown: str = "error", top_p: float = 1.0) -> str:
    """Continue ``prompt`` by ``length`` characters with the single-step path, each sampled
    by :func:`sample_next` at ``temperature`` among the ``top_k`` likeliest (0 = all) and
    within the nucleus of ``top_p`` (a number in (0, 1]; 1 = all).

    ``on_char(ch)`` is called for each new character as it is produced (streaming).
    """
    for name, value, cls in (("model", model, CharLM), ("vocab", vocab, Vocab)):
        if not isinstance(value, cls):  # (load_charlm returns both)
            raise TypeError(f"{name} must be a {cls.__name__} (model, vocab, meta = "
                            f"load_charlm(path)), got {type(value).__name__}")
    if not (is_real(temperature) and temperature >= 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a number >= 0 (0 = greedy), got {temperature!r}")
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    if on_char is not None and not callable(on_char):  # else it fails after the prompt is read
        raise TypeError(f"on_char must be a function of one character, or None, got "
                        f"{type(on_char).__name__}")
    if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0:
        raise ValueError(f"top_k must be a non-negative integer (0 = no limit), got {top_k!r}")
    if not (is_real(top_p) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1] (1 = no limit), got {top_p!r}")
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
        raise ValueError(f"length must be an integer >= 0, got {length!r}")
    if not prompt:
        raise ValueError("prompt must not be empty: the model needs at least one character to start from")
    rng = generator(rng)
    ids = vocab.encode(prompt, unknown=unknown)
    state = None
    logits = None
    for t in ids:  # read the prompt
        logits, state = model.step(np.array([t]), state)
    out = []
    for _ in range(length):
        nxt = sample_next(logits[0], temperature, top_k, rng, top_p)
        ch = vocab.decode([nxt])
        out.append(ch)
        if on_char is not None:
            on_char(ch)
        logits, state = model.step(np.array([nxt]), state)
    return "".join(out)
