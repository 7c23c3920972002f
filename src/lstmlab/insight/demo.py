"""``lstmlab demo``: the lecture end to end, as numbers, figures and one HTML report.

The sections follow the lecture's order:

1. *RNN, the problem* — fresh networks, the loss on the last step: how much gradient reaches
   each earlier step (``||dL/dh_t||``, and ``||dL/dC_t||`` through the LSTM's cell state) and
   the Jacobian norms ``||∂h_T/∂h_t||_F``.
2. *The fix, LSTM* — a vanilla RNN and an LSTM trained on the adding problem at one length,
   same budget, same data stream; then the gradient of their predictions after training.
3. *The five steps* — the trained LSTM's gates f, i, C̃, C, o, h over one sequence, and
   which cells hold the sum, how their gates behave at the marked pairs and in between.
4. *Summary* — the claims and the measured numbers (also printed).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from .._checks import finite_float, positive_int, true_or_false
from ..training.checkpoint import atomic_write_text
from .experiments import (ExperimentConfig, check_seed, held_out, initial_net, make_task,
                          train_run)
from .gates import record_gates
from .lecture import (adding_exact_length, adding_flow, flow_at_init, gate_statistics,
                      vanishing_gradients)
from .report import Report


# The settings ``lstmlab demo`` takes as options, by field.
DEMO_OPTIONS = {"length": "--length", "hidden": "--hidden", "batch": "--batch",
                "adding_length": "--adding-length", "budget": "--budget"}


REPORT_TITLE = "The lecture, measured: RNN vs LSTM"  # report.html's title


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs (``quick`` is the tiny version the tests use)."""

    out: str = "lstmlab-demo"  # output directory (report.html, summary.json)
    seed: int = 0
    length: int = 100  # T of the gradient-flow section
    hidden: int = 64  # H of the gradient-flow section
    batch: int = 32  # sequences in the gradient-flow batch
    forget_biases: tuple = (0.0, 1.0, 3.0, 5.0)  # the LSTMs of the gradient-flow section
    adding_length: int = 100  # T of the adding problem
    adding_hidden: int = 32  # H of the adding networks
    budget: int = 128_000  # training sequences per model (the LSTM stops once solved)
    lr: float = 3e-3
    forget_bias: float = 5.0  # LSTM forget-gate bias at init: f = 0.993 (docs/lecture.md)
    input_bias: float = -5.0  # LSTM input-gate bias at init: i = 0.007
    eval_every: int = 4_000
    eval_size: int = 2_000
    quick: bool = False

    def __post_init__(self):
        """Every field checked before any section runs: a length of 1 would report the
        gradient 0 steps back (1.0) as the vanished one, and a bad training setting would
        stop the demo only after section 1."""
        for name in ("length", "hidden", "batch", "adding_length", "adding_hidden", "budget",
                     "eval_every", "eval_size"):
            positive_int(getattr(self, name), name)
        check_seed(self.seed)
        if self.length < 2:
            raise ValueError(f"length must be at least 2, got {self.length}: section 1 measures "
                             f"the gradient k >= 1 steps back, and one step has none before it")
        if self.adding_length < 11:
            raise ValueError(f"adding_length must be at least 11, got {self.adding_length}: the "
                             f"adding problem's first mark lies in the first ten pairs, before "
                             f"the last one")
        if isinstance(self.forget_biases, (str, bytes)) or not isinstance(self.forget_biases,
                                                                          (tuple, list)) \
                or not self.forget_biases:
            raise ValueError(f"forget_biases must be a non-empty tuple of numbers (the LSTMs "
                             f"of section 1), got {self.forget_biases!r}")
        object.__setattr__(self, "forget_biases",
                           tuple(finite_float(b, "forget_biases") for b in self.forget_biases))
        true_or_false(self.quick, "quick", ValueError)
        self.adding_config()  # the training settings, checked by the experiment's own rules

    def adding_config(self) -> ExperimentConfig:
        """Section 2's experiment: RNN and LSTM at ``adding_length``, one seed."""
        return ExperimentConfig(task="adding", lengths=(self.adding_length,),
                                models=("rnn", "lstm"), seeds=(self.seed,), budget=self.budget,
                                hidden=self.adding_hidden, lr=self.lr,
                                forget_bias=self.forget_bias, input_bias=self.input_bias,
                                eval_every=self.eval_every, eval_size=self.eval_size)

    def command(self) -> str:
        """What reruns this demo (``out`` aside): the ``lstmlab demo`` command line, or the
        Python call when a setting has no option on the command line (``lr``, say)."""
        base = DemoConfig.quick_version() if self.quick else DemoConfig()
        differs = [f.name for f in fields(self) if getattr(self, f.name) != getattr(base, f.name)
                   and f.name not in ("out", "seed", "quick")]
        if any(name not in DEMO_OPTIONS for name in differs):
            return f"run_demo({self!r})"
        words = ["lstmlab", "demo"] + ["--quick"] * self.quick + ["--seed", str(self.seed)]
        for name in differs:
            words += [DEMO_OPTIONS[name], str(getattr(self, name))]
        return " ".join(words)

    def short_training(self) -> str | None:
        """What to say under the summary when the adding problem's training is shorter than
        the default's, where the claims about it need not show; None at the default."""
        if self.budget >= DemoConfig.budget:
            return None
        return (f"A budget of {self.budget:,} sequences (the default is {DemoConfig.budget:,}) "
                f"is too short for the adding-problem rows to show their claims: read them as "
                f"measurements only.")

    @classmethod
    def quick_version(cls, **kw) -> "DemoConfig":
        base = dict(length=30, hidden=8, batch=4, adding_length=12, adding_hidden=8,
                    budget=256, eval_every=128, eval_size=100, quick=True)
        base.update(kw)
        return cls(**base)


def _sci(v: float) -> str:
    return f"{v:.1e}"


def run_demo(cfg: DemoConfig, log=None) -> dict:
    """Run every section, write ``cfg.out/summary.json`` and ``report.html``; return the
    summary (what summary.json holds, plus the table rows the CLI prints). The earlier
    report.html is removed before the new pair is written: a failure between the two writes
    leaves no report of another run beside the summary."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t_start = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rep = Report(REPORT_TITLE,
                 f"{cfg.command()}; Python {platform.python_version()}, NumPy {np.__version__}")
    summary: dict = {"config": asdict(cfg)}
    rows, ks, flows = _section_gradients(cfg, rep, summary, log)
    results, nets = _section_adding(cfg, rep, summary, log)
    stats = _section_gates(cfg, rep, nets["lstm"], summary, log)
    claims = _claims(rows, ks, flows, results, stats, cfg.adding_length)
    seconds = time.perf_counter() - t_start
    rep.section("4. Summary", "summary")
    rep.table(["claim", "measured", "value"], [list(c) for c in claims])
    if cfg.short_training():
        rep.text(cfg.short_training(), note=True)
    rep.text(f"Wall time {seconds:.0f} s. Reproduce with: {cfg.command()}. The longer "
             "experiments and their exact commands are in docs/lecture.md.", note=True)
    summary.update(claims=[dict(zip(("claim", "measured", "value"), c)) for c in claims],
                   seconds=seconds)
    # A failure or kill between the writes leaves one summary alone, never a mismatched pair;
    # summary.json goes first as it tells demo's report from another command's (insight_cli).
    (out / "report.html").unlink(missing_ok=True)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    rep.write(out / "report.html")
    summary["rows"], summary["ks"], summary["claims_rows"] = rows, ks, claims
    return summary


def _section_gradients(cfg: DemoConfig, rep: Report, summary: dict, log):
    """1. Fresh networks, loss on the last step: the vanishing-gradient table and figure."""
    from . import plots  # matplotlib: imported only when the demo draws

    log(f"[1/3] gradient flow at initialisation (T={cfg.length}, H={cfg.hidden})")
    T = cfg.length
    flows = flow_at_init(T=T, batch=cfg.batch, hidden=cfg.hidden,
                         forget_biases=cfg.forget_biases, seed=cfg.seed)
    rows, ks = vanishing_gradients(T=T, seed=cfg.seed, flows=flows)
    summary["vanishing"] = [{"model": m, "path": p, **{f"k={k}": v for k, v in rel.items()}}
                            for m, p, rel in rows]
    summary["flow_at_init"] = {  # per model: relative norms, index k = steps back
        name: {"gradient": {p: v[::-1].tolist() for p, v in flow.decay().items()},
               "jacobian": {p: v[::-1].tolist() for p, v in jac.mean().items()}}
        for name, flow, jac in flows}
    rep.section("1. RNN: the problem of vanishing gradients", "rnn")
    rep.text("The lecture: h_t = tanh(W [h_{t-1}, x_t]), so the gradient that reaches a step k "
             "steps back has passed through k factors diag(tanh') W — \"so many tanh\". Below, "
             "fresh networks (PyTorch's initialisation) read the same random sequence and the "
             "loss sits on the last step only. The table gives ||dL/d(state at T-k)|| relative "
             "to k = 0: through the hidden state h, and for the LSTM also through the cell "
             "state C, whose own factor per step is just the forget gate f_t.")
    rep.table(["model", "path"] + [f"k={k}" for k in ks],
              [[m, p] + [_sci(rel[k]) for k in ks] for m, p, rel in rows])
    curves_g, curves_j = [], []
    colors = ["#d62728", "#ff7f0e", "#9467bd", "#1f77b4", "#2ca02c", "#8c564b"]
    for (name, flow, jac), color in zip(flows, colors):
        dec, jm = flow.decay(), jac.mean()
        for path, ls in (("h", "-"), ("C", "--")):
            if path in dec:
                curves_g.append((f"{name}, {path}", dec[path][::-1], ls, color))
                curves_j.append((f"{name}, {path}", jm[path][::-1], ls, color))
    rep.figure(plots.gradient_flow_figure([
        ("gradient of a last-step loss", "||dL/d state_{T-k}|| / ||dL/d state_T||", curves_g),
        (f"Jacobian, {flows[0][2].probes} random projections", "||∂h_T/∂ state_{T-k}||_F",
         curves_j)]),
        "Left: how much of a last-step loss's gradient reaches k steps back (log scale), "
        "through h (solid) and the LSTM's cell state C (dashed). Right: the same seen as the "
        "Frobenius norm of the Jacobian from each step's state to h_T, estimated with random "
        "projections (E||J^T v||^2 = ||J||_F^2 for v ~ N(0, I)).")
    return rows, ks, flows


def _section_adding(cfg: DemoConfig, rep: Report, summary: dict, log):
    """2. RNN and LSTM on the adding problem, same budget and data; gradient flow after."""
    from . import plots

    TA = cfg.adding_length
    exp = cfg.adding_config()
    log(f"[2/3] adding problem, T={TA}: RNN and LSTM, at most {cfg.budget:,} sequences each")
    task = make_task("adding", TA)
    eval_data = held_out(task, cfg.eval_size)
    x_flow, _ = adding_exact_length(4 if cfg.quick else 32, TA,
                                    np.random.default_rng([cfg.seed, TA, 5]))
    results, nets, fresh, trained = {}, {}, {}, {}
    for model in ("rnn", "lstm"):
        fresh[model] = adding_flow(initial_net(exp, model, TA, cfg.seed), x_flow)
        results[model], nets[model] = train_run(exp, model, TA, cfg.seed, eval_data, log)
        trained[model] = adding_flow(nets[model], x_flow)
    summary["adding"] = {m: r.to_json() for m, r in results.items()}
    summary["adding_flow"] = {m: {"fresh": fresh[m].decay()["h"][::-1].tolist(),
                                  "trained": trained[m].decay()["h"][::-1].tolist()}
                              for m in nets}

    rep.section("2. The fix: LSTM carries information across long time lags", "adding")
    rep.text(f"The adding problem (Hochreiter & Schmidhuber 1997): pairs (value, marker), "
             f"length {TA} to {TA + TA // 10}; the target is 0.5 + (X1 + X2)/4 for the two marked "
             f"values, the first within the first 10 pairs and the second within the first "
             f"{TA // 2 - 1}; a sequence is solved when |error| < 0.04. Predicting the mean "
             f"scores MSE 1/24 ≈ 0.042. Both networks: one layer of {cfg.adding_hidden} units, "
             f"Adam lr {cfg.lr:g}, clip 1, batch 32, the same stream of training sequences, "
             f"at most {cfg.budget:,} of them (a network stops once solved), judged on "
             f"{cfg.eval_size:,} held-out sequences. The LSTM starts with its forget gate open "
             f"(bias {cfg.forget_bias:+g}, f ≈ {1 / (1 + np.exp(-cfg.forget_bias)):.3f}) and its "
             f"input gate nearly shut (bias {cfg.input_bias:+g}), as Hochreiter & Schmidhuber "
             f"started theirs: keep by default, write only what matters (docs/lecture.md "
             f"measures the alternatives).")
    rep.table(["model", "held-out MSE", "fraction solved", "sequences until solved",
               "sequences seen", "seconds"],
              [[m.upper(), f"{r.error:.4f}", f"{r.score:.3f}",
                f"{r.solved_at:,}" if r.solved_at else "not solved", f"{r.seen:,}",
                f"{r.seconds:.0f}"] for m, r in results.items()])
    rep.figure(plots.learning_curves_figure(list(results.values()), task.baseline, "MSE",
                                            "fraction solved", exp.target),
               "Held-out error (left, the dotted line is the constant predictor) and fraction "
               "solved (right) while training.")
    curves = []
    for m in ("rnn", "lstm"):
        curves.append((f"{m.upper()} fresh", fresh[m].decay()["h"][::-1], "--"))
        curves.append((f"{m.upper()} trained", trained[m].decay()["h"][::-1], "-"))
    rep.figure(plots.gradient_flow_figure([
        (f"adding problem, T={TA}", "||∂ŷ/∂h_{T-k}|| / ||∂ŷ/∂h_T||", curves)]),
        "The gradient of the prediction with respect to each step's hidden state, relative to "
        "the last step, before and after training (sequences of length exactly T). The marked "
        "pairs lie k ≥ T/2 steps back.")
    return results, nets


def _section_gates(cfg: DemoConfig, rep: Report, lstm_net, summary: dict, log):
    """3. The trained LSTM's gates over one sequence, and which cells hold the sum."""
    from . import plots

    log("[3/3] the trained LSTM's gates")
    TA = cfg.adding_length
    n_stats = 20 if cfg.quick else 200
    stats = gate_statistics(lstm_net, TA, n=n_stats, seed=cfg.seed)
    summary["gates"] = stats
    x1, y1 = adding_exact_length(1, TA, np.random.default_rng([cfg.seed, TA, 9]))
    trace = record_gates(lstm_net.rnn, x1)[-1].sequence(0)
    first = [s["unit"] for s in stats]  # the cells holding the sum, then the busiest others
    show = first + [int(u) for u in np.argsort(-np.ptp(trace.cell, axis=0)) if u not in first]
    show = show[:16]
    marks = list(np.flatnonzero(x1[:, 0, 1] == 1.0))
    rep.section("3. Inside the LSTM: the five steps, on one sequence", "gates")
    rep.text("Steps 1-5 of the lecture: the forget gate f_t removes from C_{t-1}, the input gate "
             "i_t and the candidate C̃_t write into it, C_t = f_t*C_{t-1} + i_t*C̃_t, and "
             "h_t = o_t*tanh(C_t) is passed on. The heatmaps show the gates of the trained "
             "LSTM's cells (rows; the cells whose final C_T follows the target come first) over "
             "one held-out sequence (columns); the dashed lines are the two marked pairs, and "
             "the top strip is the input (value, marker).")
    pred = float(lstm_net.predict(x1)[0, 0])
    rep.figure(plots.gates_figure(trace, units=show, marks=marks, inputs=x1[:, 0, :],
                                  title=f"target {float(y1[0]):.3f}, prediction {pred:.3f}"),
               "Gates and states of the trained LSTM over one adding-problem sequence: "
               "f (forget), i (input gate), C̃ (candidate), C (cell state), o (output gate), "
               "h (hidden state).")
    rep.text(f"Over {n_stats} held-out sequences of length {TA}: the cells whose final state C_T "
             "correlates best with the target; their mean input gate i_t and the mean size of "
             "what step 2 writes into the cell, |i_t C̃_t|, at the two marked pairs and at the "
             "others; and their mean forget gate after the first mark.")
    rep.table(["cell", "corr(C_T, target)", "i_t at marks", "i_t elsewhere", "|i_t C̃_t| at marks",
               "|i_t C̃_t| elsewhere", "f_t after 1st mark"],
              [[s["unit"], f"{s['r']:+.3f}", f"{s['input_marked']:.3f}", f"{s['input_other']:.3f}",
                f"{s['write_marked']:.4f}", f"{s['write_other']:.4f}",
                f"{s['forget_after_mark']:.4f}"] for s in stats])
    return stats


def _claims(rows, ks, flows, results, stats, TA):
    """The summary table: (claim, what was measured, value)."""
    rnn_row = next(rel for m, p, rel in rows if m.startswith("RNN"))
    lstm_c = [rel for m, p, rel in rows if m.startswith("LSTM") and p == "C"]
    k = ks[-1]
    back = f"{k} step{'' if k == 1 else 's'} back"
    lstm = results["lstm"]
    claims = [
        ("RNN gradient vanishes", f"||dL/dh|| {back}, RNN at init", _sci(rnn_row[k])),
        ("LSTM cell state carries it",
         f"||dL/dC|| {back}, LSTM forget bias {flows[-1][0].split()[-1]}",
         _sci(lstm_c[-1][k]) if lstm_c else "-"),
        ("RNN fails at long lags", f"adding T={TA}: RNN held-out fraction solved",
         f"{results['rnn'].score:.3f}"),
        ("LSTM succeeds", f"adding T={TA}: LSTM held-out fraction solved",
         f"{lstm.score:.3f}" + (f" after {lstm.solved_at:,} sequences" if lstm.solved_at else "")),
    ]
    if stats:
        best = stats[0]
        claims.append(("the cell holds the sum", f"corr(C_T of cell {best['unit']}, target)",
                       f"{best['r']:+.3f}"))
        claims.append(("gates write at the marks",
                       f"|i_t C̃_t| of cell {best['unit']} at marked / other pairs",
                       f"{best['write_marked']:.4f} / {best['write_other']:.4f}"))
        claims.append(("gates keep in between",
                       f"forget gate of cell {best['unit']} after the first mark",
                       f"{best['forget_after_mark']:.4f}"))
    return claims
