"""Long time lags, measured: RNN against LSTM on the adding problem and the copy task.

Dimensions: T the task's lag (its ``T``), B batch, n held-out sequences.

One *run* trains one model (``"rnn"`` or ``"lstm"``, a :class:`~lstmlab.layers.seqnet.SequenceNet`)
on one task at one length from one seed, for at most ``budget`` training sequences, and
evaluates it every ``eval_every`` sequences on a fixed held-out set. An *experiment* is the
grid lengths x models x seeds under one :class:`ExperimentConfig`, so every model sees the
same budget, and for a given seed and length the same training sequences in the same order
(the data stream's generator depends on seed and length only, not on the model).

What a run reports:

* adding problem (Hochreiter & Schmidhuber 1997): the held-out mean squared error and the
  fraction of held-out sequences *solved* (``|error| < 0.04``). The run counts as solved
  when that fraction reaches ``target`` (0.95). A constant prediction scores MSE ≈ 1/24.
* copy task (Arjovsky et al. 2016): the held-out cross-entropy per step, next to the
  memoryless baseline ``10 ln 8 / (T + 20)``, and the accuracy on the ten recalled symbols
  (chance 1/8). The run counts as solved when that accuracy reaches ``target``.

"Sequences seen until solved" is the count at the first evaluation that met the target;
with ``stop_when_solved`` (the default) the run ends there, which saves time and changes
nothing the table shows.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._argtypes import repeated
from .._config import config_from_json
from .._checks import finite_float, is_real, positive_int
from ..data.tasks import N_CATEGORIES, adding_problem, copy_memory, copy_memory_baseline, solved
from ..layers.seqnet import SequenceNet, SequenceNetConfig
from ..training.checkpoint import atomic_write_bytes, atomic_write_text
from ..training.losses import mse_loss, softmax_cross_entropy
from ..training.optim import Adam, clip_grad_norm

TASKS = ("adding", "copy")
MODELS = ("rnn", "lstm")


def check_seed(seed, what: str = "seed must be an integer") -> int:
    """``seed`` when it can seed a Generator, an integer >= 0; else a ValueError saying
    ``what`` (NumPy's own says only "expected non-negative integer")."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{what} >= 0, got {seed!r}")
    return seed


def _exact(x: float) -> str:
    """``x`` written short (``0.003``, ``5``) when that reads back as ``x``, else in full
    (``0.001234567``, where ``:g`` gives 0.00123457): a command that reruns another value
    would not continue its experiment."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


def _check_run(cfg, model: str, seed) -> None:
    """The arguments of one run, named, before its held-out set is drawn."""
    if not isinstance(cfg, ExperimentConfig):
        raise TypeError(f"cfg must be an ExperimentConfig, got {type(cfg).__name__}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    check_seed(seed)


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: the grid and how every run in it trains (stored with the results)."""

    task: str  # "adding" or "copy"
    lengths: tuple[int, ...]  # the T values
    models: tuple[str, ...] = MODELS  # "rnn" and/or "lstm"
    seeds: tuple[int, ...] = (0, 1, 2)  # one run per seed, per model, per length
    budget: int = 128_000  # training sequences per run (the defaults: lstmlab experiment's)
    hidden: int = 32  # H, hidden units of the one recurrent layer
    batch: int = 32  # B, sequences per optimizer step
    lr: float = 3e-3  # Adam learning rate (constant)
    clip: float = 1.0  # global gradient-norm clip (0 = off)
    forget_bias: float = 5.0  # LSTM forget-gate bias at init: start by remembering (f = 0.993)
    input_bias: float = -5.0  # LSTM input-gate bias at init: start by writing little (i = 0.007)
    eval_every: int = 4_000  # training sequences between held-out evaluations
    eval_size: int = 2_000  # held-out sequences (the same for every model and seed)
    target: float = 0.95  # held-out fraction solved (adding) / recall accuracy (copy)
    stop_when_solved: bool = True  # end a run at the evaluation that meets the target

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        for name in ("lengths", "models", "seeds"):  # tuples: a config equals its JSON's
            v = getattr(self, name)
            if isinstance(v, (str, bytes)) or not isinstance(v, (tuple, list)):
                raise ValueError(f"{name} must be a tuple (or a list), got {v!r}")
            object.__setattr__(self, name, tuple(v))
        if not self.lengths or not self.models or not self.seeds:
            raise ValueError("an experiment needs at least one length, one model and one seed")
        for name in ("lengths", "models", "seeds"):  # a repeat would count one run twice
            twice = repeated(getattr(self, name))
            if twice:
                raise ValueError(f"{name} must not repeat: {', '.join(map(str, twice))} "
                                 f"given more than once (the same run would count twice in "
                                 f"the table)")
        low = 11 if self.task == "adding" else 1
        for T in self.lengths:
            if isinstance(T, bool) or not isinstance(T, int) or T < low:
                raise ValueError(f"{self.task} lengths must be integers >= {low}, got {T!r}"
                                 + (" (the adding problem's first mark lies in the first ten "
                                    "pairs, before the last one)" if self.task == "adding" else ""))
        for m in self.models:
            if m not in MODELS:
                raise ValueError(f"models must be among {MODELS}, got {m!r}")
        for seed in self.seeds:
            check_seed(seed, "seeds must be integers")
        for name in ("budget", "hidden", "batch", "eval_every", "eval_size"):
            positive_int(getattr(self, name), name)
        for name in ("lr", "clip", "target", "forget_bias", "input_bias"):
            finite_float(getattr(self, name), name)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not self.clip >= 0:
            raise ValueError(f"clip must be >= 0 (0 = off), got {self.clip!r}")
        if not 0 < self.target <= 1:
            raise ValueError(f"target must lie in (0, 1], got {self.target!r}")

    def to_json(self) -> dict:
        return asdict(self)

    def command(self) -> str:
        """The ``lstmlab experiment`` command line that runs exactly this configuration."""
        words = ["lstmlab", "experiment", self.task, "--lengths", *map(str, self.lengths),
                 "--models", *self.models, "--seeds", *map(str, self.seeds),
                 "--budget", str(self.budget), "--hidden", str(self.hidden),
                 "--batch", str(self.batch), "--lr", _exact(self.lr), "--clip", _exact(self.clip),
                 "--forget-bias", _exact(self.forget_bias),
                 "--input-bias", _exact(self.input_bias), "--eval-every", str(self.eval_every),
                 "--eval-size", str(self.eval_size), "--target", _exact(self.target)]
        return " ".join(words + ([] if self.stop_when_solved else ["--no-stop"]))

    @classmethod
    def from_json(cls, d: dict) -> "ExperimentConfig":
        return config_from_json(cls, d)  # the lists of JSON become tuples in __post_init__


@dataclass
class RunResult:
    """One model at one length from one seed."""

    task: str
    model: str  # "rnn" or "lstm"
    T: int
    seed: int
    seen: int  # training sequences seen when the run ended
    solved_at: int | None  # sequences seen at the first evaluation meeting the target
    error: float  # final held-out error: MSE (adding) or cross-entropy per step (copy)
    score: float  # final held-out fraction solved (adding) or recall accuracy (copy)
    baseline: float  # the error of the best memoryless predictor (1/24 or 10 ln 8 / (T+20))
    seconds: float  # wall time of the run
    curve: list = field(default_factory=list)  # [seen, error, score] at every evaluation

    @property
    def solved(self) -> bool:
        return self.solved_at is not None

    def to_json(self) -> dict:
        return asdict(self)


# -- the two tasks ---------------------------------------------------------------------------

class AddingTask:
    """Regression of the last step: SequenceNet readout "last", one output, MSE."""

    name = "adding"
    error_name, score_name = "MSE", "solved"

    def __init__(self, T: int):
        self.T = T
        self.baseline = 1.0 / 24.0  # variance of 0.5 + (X1 + X2) / 4, X ~ U(-1, 1)

    def net_config(self, cfg: ExperimentConfig, cell: str) -> SequenceNetConfig:
        return SequenceNetConfig(input_size=2, output_size=1, hidden_size=cfg.hidden, cell=cell,
                                 readout="last", forget_bias=cfg.forget_bias)

    def sample(self, n: int, rng: np.random.Generator):
        x, lengths, y = adding_problem(n, self.T, rng)  # (T_max, n, 2), (n,), (n,)
        return x, lengths, y

    def loss_and_backward(self, net: SequenceNet, batch) -> float:
        x, lengths, y = batch
        pred = net.forward(x, lengths)  # (B, 1)
        loss, dpred = mse_loss(pred[:, 0], y)
        net.backward(dpred[:, None])
        return loss

    def evaluate(self, net: SequenceNet, data) -> tuple[float, float]:
        x, lengths, y = data
        pred = net.predict(x, lengths, batch_size=500)[:, 0]  # (n,)
        return float(np.mean((pred.astype(np.float64) - y) ** 2)), float(solved(pred, y).mean())


class CopyTask:
    """Every step labelled: one-hot tokens in, SequenceNet readout "all", cross-entropy."""

    name = "copy"
    error_name, score_name = "CE", "recall"

    def __init__(self, T: int):
        self.T = T
        self.baseline = copy_memory_baseline(T)

    def net_config(self, cfg: ExperimentConfig, cell: str) -> SequenceNetConfig:
        return SequenceNetConfig(input_size=N_CATEGORIES, output_size=N_CATEGORIES,
                                 hidden_size=cfg.hidden, cell=cell, readout="all",
                                 forget_bias=cfg.forget_bias)

    def sample(self, n: int, rng: np.random.Generator):
        tokens, y = copy_memory(n, self.T, rng)  # (T+20, n) each
        x = np.eye(N_CATEGORIES, dtype=np.float32)[tokens]  # (T+20, n, 10) one-hot
        return x, None, y

    def loss_and_backward(self, net: SequenceNet, batch) -> float:
        x, _, y = batch
        logits = net.forward(x)  # (T+20, B, 10)
        loss, dlogits = softmax_cross_entropy(logits, y)
        net.backward(dlogits)
        return loss

    def evaluate(self, net: SequenceNet, data) -> tuple[float, float]:
        x, _, y = data
        logits = net.predict(x, batch_size=500)  # (T+20, n, 10)
        ce, _ = softmax_cross_entropy(logits, y)
        recall = slice(self.T + 10, None)  # the ten steps that reproduce the symbols
        acc = float((logits[recall].argmax(axis=-1) == y[recall]).mean())
        return ce, acc


def make_task(name: str, T: int):
    if name == "adding":
        return AddingTask(T)
    if name == "copy":
        return CopyTask(T)
    raise ValueError(f"task must be one of {TASKS}, got {name!r}")


def held_out(task, n: int):
    """The evaluation set of a task at its length: fixed, whatever the seed or model."""
    return task.sample(n, np.random.default_rng([20_240_601, task.T]))


# -- one run ----------------------------------------------------------------------------------

def initial_net(cfg: ExperimentConfig, model: str, T: int, seed: int) -> SequenceNet:
    """The network a run starts from (its weights depend on seed, T and model only).

    The LSTM's gate biases start shifted: ``forget_bias`` on f (via the layer) and
    ``input_bias`` on i (here), as Hochreiter & Schmidhuber (1997) started their input gates
    negative so that the cells do not fill up with the inputs before they learn what to keep.
    """
    _check_run(cfg, model, seed)
    task = make_task(cfg.task, T)
    net = SequenceNet(task.net_config(cfg, model),
                      rng=np.random.default_rng([seed, T, 2, MODELS.index(model)]))
    if model == "lstm" and cfg.input_bias:
        H = cfg.hidden
        for name, b in net.rnn.params().items():
            if name.startswith("b_"):
                b[H:2 * H] += b.dtype.type(cfg.input_bias)  # block 1 is the input gate i
    return net


def train_run(cfg: ExperimentConfig, model: str, T: int, seed: int, eval_data=None,
              log=None) -> tuple[RunResult, SequenceNet]:
    """Train ``model`` on ``cfg.task`` at length ``T`` from ``seed``; the result and the net.

    The data stream depends on ``(seed, T)`` only, the initial weights on ``(seed, T, model)``.
    ``log(msg)`` receives a progress line at the evaluation that solves the task, at the last
    one, and otherwise at most every 10 seconds.
    """
    _check_run(cfg, model, seed)
    task = make_task(cfg.task, T)
    if eval_data is None:
        eval_data = held_out(task, cfg.eval_size)
    data_rng = np.random.default_rng([seed, T, 1])
    net = initial_net(cfg, model, T, seed)
    opt = Adam(net.params(), lr=cfg.lr)
    seen, next_eval, solved_at, curve = 0, cfg.eval_every, None, []
    t0 = last_log = time.perf_counter()
    error = score = float("nan")
    while seen < cfg.budget:
        n = min(cfg.batch, cfg.budget - seen)
        loss = task.loss_and_backward(net, task.sample(n, data_rng))
        grads = net.grads()
        norm = clip_grad_norm(grads, cfg.clip) if cfg.clip > 0 else 0.0
        if math.isfinite(loss) and math.isfinite(norm):
            opt.step(grads)
            _refuse_diverged(net, cfg, model, T, seed, seen + n)
        seen += n
        if seen >= next_eval or seen >= cfg.budget:
            next_eval += cfg.eval_every
            error, score = task.evaluate(net, eval_data)
            curve.append([seen, error, score])
            first_solve = solved_at is None and score >= cfg.target
            if first_solve:
                solved_at = seen
            now = time.perf_counter()
            if log is not None and (first_solve or seen >= cfg.budget or now - last_log > 10):
                last_log = now
                log(f"  {cfg.task} T={T} {model} seed {seed}: {seen:>8,} seen  "
                    f"{task.error_name} {error:.4f}  {task.score_name} {score:.3f}"
                    f"  ({time.perf_counter() - t0:.0f} s)")
            if solved_at is not None and cfg.stop_when_solved:
                break
    return RunResult(cfg.task, model, T, seed, seen, solved_at, error, score, task.baseline,
                     time.perf_counter() - t0, curve), net


def _refuse_diverged(net, cfg: ExperimentConfig, model: str, T: int, seed: int, seen: int) -> None:
    """Stop a run whose weights an update made infinite or NaN (a learning rate far too
    large): every later step would fail inside the network on its NaN activations."""
    if all(np.isfinite(w).all() for w in net.params().values()):
        return
    raise ValueError(f"the {model} run at T={T}, seed {seed} diverged after {seen:,} training "
                     f"sequences: an update made its weights infinite or NaN (lr={cfg.lr:g}, "
                     f"clip={cfg.clip:g}); a smaller learning rate keeps them finite")


def run_experiment(cfg: ExperimentConfig, log=None, on_result=None, done=()) -> list[RunResult]:
    """Every run of the grid, length by length. ``on_result(result)`` is called after each
    (to save partial results); runs listed in ``done`` (RunResults) are kept, not redone."""
    have = {(r.model, r.T, r.seed): r for r in done}
    results = []
    for T in cfg.lengths:
        eval_data = None
        for model in cfg.models:
            for seed in cfg.seeds:
                if (model, T, seed) in have:
                    results.append(have[(model, T, seed)])
                    continue
                if eval_data is None:
                    eval_data = held_out(make_task(cfg.task, T), cfg.eval_size)
                result, _ = train_run(cfg, model, T, seed, eval_data, log)
                results.append(result)
                if on_result is not None:
                    on_result(result)
    return results


# -- summaries ------------------------------------------------------------------------------

@dataclass
class Summary:
    """The runs of one model at one length, over seeds."""

    model: str
    T: int
    runs: int
    n_solved: int  # runs that met the target
    error_mean: float
    error_std: float  # population standard deviation over seeds (0 for one seed)
    score_mean: float
    score_min: float
    score_max: float
    solved_at_median: float | None  # over the solved runs
    baseline: float
    seconds: float  # total wall time of the runs


def summarize(results: list[RunResult]) -> list[Summary]:
    """One :class:`Summary` per (model, T) over its seeds, ordered by T, then model."""
    groups: dict[tuple[str, int], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.model, r.T), []).append(r)
    out = []
    for (model, T), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], MODELS.index(kv[0][0]))):
        err = np.array([r.error for r in rs])
        sc = np.array([r.score for r in rs])
        at = [r.solved_at for r in rs if r.solved_at is not None]
        out.append(Summary(model, T, len(rs), len(at), float(err.mean()), float(err.std()),
                           float(sc.mean()), float(sc.min()), float(sc.max()),
                           float(np.median(at)) if at else None, rs[0].baseline,
                           float(sum(r.seconds for r in rs))))
    return out


def _count(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1000:.0f}k" if n >= 10_000 else f"{n:,.0f}"


def format_table(cfg: ExperimentConfig, rows: list[Summary]) -> str:
    """A plain-text table (also valid Markdown) of the summaries."""
    if cfg.task == "adding":
        head = ["T", "model", "held-out MSE", "fraction solved", "runs solved",
                "sequences until solved"]
    else:
        head = ["T", "model", "held-out CE", "baseline CE", "recall accuracy", "runs solved",
                "sequences until solved"]
    lines = []
    for s in rows:
        spread = f"{s.score_mean:.3f} [{s.score_min:.3f}, {s.score_max:.3f}]" if s.runs > 1 \
            else f"{s.score_mean:.3f}"
        err = f"{s.error_mean:.4f} ± {s.error_std:.4f}" if s.runs > 1 else f"{s.error_mean:.4f}"
        cells = [str(s.T), s.model.upper(), err]
        if cfg.task == "copy":
            cells.append(f"{s.baseline:.4f}")
        cells += [spread, f"{s.n_solved}/{s.runs}", _count(s.solved_at_median)]
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h)
              for i, h in enumerate(head)]
    fmt = "| " + " | ".join(f"{{:<{w}}}" for w in widths) + " |"
    out = [fmt.format(*head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt.format(*c) for c in lines]
    return "\n".join(out)


def table_notes(cfg: ExperimentConfig) -> str:
    what = ("fraction of the held-out sequences with |error| < 0.04" if cfg.task == "adding"
            else "accuracy on the ten recalled symbols (chance 0.125)")
    return (f"{len(cfg.seeds)} seed(s) per cell, mean ± std over seeds (the score: mean "
            f"[min, max]); score = {what}; a run is solved when the score reaches "
            f"{cfg.target:g} on {cfg.eval_size:,} held-out sequences; sequences until solved "
            f"is the median over solved runs, evaluated every {cfg.eval_every:,}; budget "
            f"{cfg.budget:,} training sequences per run; H={cfg.hidden}, batch {cfg.batch}, "
            f"Adam lr {cfg.lr:g}, clip {cfg.clip:g}, LSTM gate biases at init: forget "
            f"{cfg.forget_bias:+g}, input {cfg.input_bias:+g}.")


# -- files ----------------------------------------------------------------------------------

def load_results(path, cfg: ExperimentConfig) -> list[RunResult]:
    """The runs stored in ``path`` (a results.json) for exactly ``cfg``; [] when there is none."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        theirs = ExperimentConfig.from_json(stored["config"])
        runs = _stored_runs(stored["runs"], theirs)
    except (ValueError, KeyError, TypeError, OSError) as exc:  # OSError: a folder, unreadable
        raise ValueError(f"{path} is not a readable lstmlab experiment ({exc}); choose another "
                         f"--out") from None
    if theirs != cfg:  # the options that differ, as the two commands write them
        ours, stored_words = _options(cfg.command()), _options(theirs.command())
        differ = [(f"the {stored_words[flag]} task" if flag == "task" else
                   f"{flag} {stored_words[flag]}".strip()) if flag in stored_words else
                  f"without {flag}" for flag in dict.fromkeys([*stored_words, *ours])
                  if stored_words.get(flag) != ours.get(flag)]
        raise ValueError(f"{path} holds an experiment with other settings ({', '.join(differ)} "
                         f"there): rerun its command to continue it ({theirs.command()}), or "
                         f"choose another --out (nothing was overwritten)")
    return runs


def _stored_runs(runs, cfg: ExperimentConfig) -> list[RunResult]:
    """The runs of a results.json of the experiment ``cfg``, each checked field by field and
    against the grid, once each: a file edited by hand or damaged is refused by what is
    wrong in it (ValueError), rather than failing deep inside the table, or being redone
    beside the stored run (a seed written as "0")."""
    if not isinstance(runs, list):
        raise ValueError(f"'runs' must be a list, got {type(runs).__name__}")
    out, seen = [], set()
    for i, r in enumerate(runs):
        where = f"runs[{i}]"
        if not isinstance(r, dict):
            raise ValueError(f"{where} must be a JSON object, got {type(r).__name__}")
        run = RunResult(**r)  # a missing or unknown field: TypeError
        grid = {"task": [cfg.task], "model": cfg.models, "T": cfg.lengths, "seed": cfg.seeds}
        for name, values in grid.items():
            if getattr(run, name) not in values or isinstance(getattr(run, name), bool):
                raise ValueError(f"{where}: {name} {getattr(run, name)!r} is not one of the "
                                 f"experiment's ({', '.join(map(repr, values))})")
        if (run.model, run.T, run.seed) in seen:
            raise ValueError(f"{where}: model {run.model!r}, T {run.T}, seed {run.seed} is "
                             f"stored twice")
        seen.add((run.model, run.T, run.seed))
        for name in ("seen", "solved_at"):
            value = getattr(run, name)
            if not (value is None and name == "solved_at") and not (
                    isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise ValueError(f"{where}: {name} must be an integer >= 0"
                                 + (" or null" if name == "solved_at" else "")
                                 + f", got {value!r}")
        for name in ("error", "score", "baseline", "seconds"):
            if not is_real(getattr(run, name)):
                raise ValueError(f"{where}: {name} must be a number, got "
                                 f"{getattr(run, name)!r}")
        if not isinstance(run.curve, list) or not all(
                isinstance(c, list) and len(c) == 3 and all(map(is_real, c)) for c in run.curve):
            raise ValueError(f"{where}: curve must be a list of [seen, error, score] numbers")
        out.append(run)
    return out


def _options(command: str) -> dict[str, str]:
    """``--flag value ...`` of an :meth:`ExperimentConfig.command` line, by flag (the task
    under ``task``; a flag without a value, ``--no-stop``, maps to '')."""
    words = command.split()[2:]
    out, flag = {"task": words[0]}, None
    for w in words[1:]:
        if w.startswith("--"):
            flag = w
            out[flag] = ""
        else:
            out[flag] = (out[flag] + " " + w).strip()
    return out


def save_results(path, cfg: ExperimentConfig, results: list[RunResult]) -> None:
    atomic_write_text(path, json.dumps({"config": cfg.to_json(), "command": cfg.command(),
                                        "runs": [r.to_json() for r in results]}, indent=1))


REPORT_TITLE = "lstmlab experiment"  # report.html's title: this, then the task


def remove_report(cfg: ExperimentConfig, out) -> None:
    """Remove ``out/TASK.png`` and ``out/report.html``: they show the runs of a results.json
    that is about to change, and would otherwise be left beside runs they do not show."""
    for path in (Path(out) / f"{cfg.task}.png", Path(out) / "report.html"):
        path.unlink(missing_ok=True)


def write_report(cfg: ExperimentConfig, results: list[RunResult], out) -> tuple:
    """``out/report.html`` and ``out/TASK.png`` (the summary figure in it); returns the paths
    (figure, report). The earlier pair is removed first, and the report, which holds the
    figure, is written first: a failure between the writes leaves the new report alone."""
    from . import plots
    from .report import Report

    if not results:  # the figures and the table have nothing to show
        raise ValueError("results is empty: there are no runs to report (run_experiment(cfg) "
                         "returns them)")
    out = Path(out)
    table = format_table(cfg, summarize(results))
    png = plots.experiment_figure(cfg.task, results, cfg.target, cfg.budget)
    adding = cfg.task == "adding"
    rep = Report(f"{REPORT_TITLE} {cfg.task}", cfg.command())
    rep.section("Results")
    rep.pre(table)
    rep.text(table_notes(cfg), note=True)
    rep.figure(png, "Left: final held-out score per run (dots) and the mean over seeds (line). "
                    "Right: training sequences until solved; x = not solved within the budget.")
    rep.figure(plots.learning_curves_figure(
        results, 1 / 24 if adding else max(r.baseline for r in results), "MSE" if adding else "CE",
        "fraction solved" if adding else "recall accuracy", cfg.target),
        "Held-out error and score of every run while training"
        + ("." if adding else " (dotted: the memoryless baseline of the shortest T)."))
    remove_report(cfg, out)
    rep.write(out / "report.html")
    atomic_write_bytes(out / f"{cfg.task}.png", png)
    return out / f"{cfg.task}.png", out / "report.html"
