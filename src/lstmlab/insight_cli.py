"""``lstmlab demo|experiment|inspect|explore``: the lecture's claims measured, and the
inside of a trained character model shown.

Their help texts, parsers and commands; the work is in :mod:`lstmlab.insight` (demo,
experiment, inspect) and :mod:`lstmlab.explore` (the served page).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ._argtypes import gate_bias as _gate_bias
from ._argtypes import input_path as _input_path
from ._argtypes import nonneg_float as _nonneg_float
from ._argtypes import nonneg_int as _nonneg_int
from ._argtypes import output_dir as _output_dir
from ._argtypes import output_file as _output_file
from ._argtypes import pos_float as _pos_float
from ._argtypes import positive_int as _positive
from ._argtypes import refuse_overwriting_inputs, refuse_standard_input
from ._argtypes import seed as _seed
from ._argtypes import unit_score as _unit_score
from ._argtypes import utf8_text as _utf8_text
from . import _columns
from ._files import shown_path
from ._words import counted
from .cli import read_text_arg, reads_dash, replaced_note, say, text_name


DEMO_HELP = """\
The lecture, end to end, in well under a minute on a laptop CPU; writes OUT/report.html (one
self-contained page, figures inline) and OUT/summary.json, and prints a summary.

  1. RNN, the problem: fresh networks read a random sequence with the loss on the last step;
     how much gradient reaches k steps back (through h, and the LSTM's cell state C), and
     the Jacobian norms ||dh_T/dh_t|| from random projections.
  2. The fix, LSTM: a vanilla RNN and an LSTM trained on the adding problem (Hochreiter &
     Schmidhuber 1997) with the same budget and data; the RNN fails, the LSTM solves it.
  3. The five steps: the trained LSTM's gates f, i, C~, C, o, h over one sequence.

examples:
  lstmlab demo                          # about 15 seconds on 2 cores (docs/lecture.md)
  lstmlab demo --out /tmp/lecture --seed 1
  lstmlab demo --quick                  # seconds: tiny networks, tiny budget (for tests)
"""


def add_demo_parser(sub):
    p = sub.add_parser("demo", help="the lecture's claims, measured", description=DEMO_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="lstmlab-demo", type=_output_dir,
                   help="output directory (default lstmlab-demo)")
    p.add_argument("--quick", action="store_true", help="tiny networks and budget: seconds, not minutes")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--length", type=_positive, default=None,
                   help="T of the gradient-flow section, at least 2 (default 100; 30 with --quick)")
    p.add_argument("--hidden", type=_positive, default=None,
                   help="H of the gradient-flow section (default 64; 8 with --quick)")
    p.add_argument("--batch", type=_positive, default=None,
                   help="sequences in the gradient-flow batch (default 32; 4 with --quick)")
    p.add_argument("--adding-length", type=_positive, default=None,
                   help="T of the adding problem, at least 11 (default 100; 12 with --quick)")
    p.add_argument("--budget", type=_positive, default=None,
                   help="training sequences per network; a network stops once solved (default "
                        "128000; 256 with --quick)")
    p.add_argument("--force", action="store_true",
                   help="overwrite the report of another command, or a summary.json no demo "
                        "wrote, in --out")
    p.set_defaults(func=cmd_demo)


def _refuse_another_report(out, own: str, other_title: str, force: bool) -> None:
    """Stop before writing OUT/report.html over the report of another command: demo and
    experiment both write one, and each knows its own by the file beside it (``own``), and
    the other's by its title (``other_title``), as both files can be in one folder (a demo
    run where an experiment was interrupted). Call it once the report is known to be a
    regular file: it is read."""
    import html

    report = Path(out) / "report.html"
    if force or not report.exists():
        return
    if not (Path(out) / own).exists():
        why = f"report.html without {own}"
    else:
        try:
            with open(report, "rb") as f:  # the title is in the first hundred bytes
                head = f.read(4096).decode("utf-8", "replace")
        except OSError:
            return
        if f"<title>{html.escape(other_title)}" not in head:
            return
        why = f"its title begins {other_title!r}"
    raise ValueError(f"--out {out} holds the report of another command ({why}); choose another "
                     f"--out or pass --force to overwrite it (nothing was overwritten)")


def _refuse_a_summary_not_the_demos(out, force: bool) -> None:
    """Stop before replacing an OUT/summary.json that no demo wrote (a file of the user's, a
    common name): demo knows its folder by that file, and would overwrite it and the
    report.html beside it unasked."""
    from ._files import small_json

    path = Path(out) / "summary.json"
    if force or not path.is_file():
        return
    summary = small_json(path)
    config = summary.get("config") if isinstance(summary, dict) else None
    if not (isinstance(config, dict) and "adding_length" in config):
        raise ValueError(f"--out {out} holds a summary.json that is not a demo's (no demo "
                         f"settings under \"config\"); choose another --out or pass --force to "
                         f"overwrite it (nothing was overwritten)")


def _refuse_non_files_in_place(out, names) -> None:
    """Stop before the work when a file the command writes in ``out`` (``names``) is there as
    a folder, FIFO, device or socket: a folder would end the run's minutes of work in "cannot
    write", a FIFO would block the read of results.json, and the rest would be replaced."""
    import stat

    from ._files import file_kind

    for name in names:
        try:
            mode = (Path(out) / name).stat().st_mode
        except OSError:  # absent (or a dangling link): written as a new file
            continue
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else file_kind(mode)
            raise ValueError(f"--out {out} holds {kind} named {name}, where this command "
                             f"writes its file {name}; choose another --out or move it away")


def cmd_demo(args) -> int:
    from .insight.demo import DemoConfig, run_demo
    from .insight.experiments import REPORT_TITLE as EXPERIMENT_TITLE

    _refuse_non_files_in_place(args.out, ("summary.json", "report.html"))
    _refuse_a_summary_not_the_demos(args.out, args.force)
    _refuse_another_report(args.out, "summary.json", EXPERIMENT_TITLE, args.force)

    given = {k: v for k, v in (("seed", args.seed), ("length", args.length),
                               ("hidden", args.hidden), ("batch", args.batch),
                               ("adding_length", args.adding_length), ("budget", args.budget))
             if v is not None}
    given["out"] = args.out
    if given.get("length", 2) < 2:
        raise ValueError("--length must be at least 2: the gradient-flow section measures how "
                         "much gradient reaches k >= 1 steps back, and one step has none before "
                         "it (its summary would report 1.0 as the vanished gradient)")
    if given.get("adding_length", 11) < 11:
        raise ValueError("--adding-length must be at least 11 (the first mark lies in the "
                         "first ten pairs, before the last one)")
    cfg = DemoConfig.quick_version(**given) if args.quick else DemoConfig(**given)
    from ._compile_notice import first_compile

    # The demo's kernels compile inside it on a first run (its section times include that).
    with first_compile(say):
        s = run_demo(cfg)
    rows, ks, T = s["rows"], s["ks"], cfg.length
    print(f"1. Vanishing gradients at initialisation (T={T}, B={cfg.batch}, H={cfg.hidden}, "
          f"seed {cfg.seed})")
    print("Loss on the last step only; each column: ||dL/d(state at step T-k)|| / ||dL/d(state at T)||")
    print()
    head = f"{'model':<26}{'path':<6}" + "".join(f"{'k=' + str(k):>10}" for k in ks)
    print(head)
    print("-" * len(head))
    for name, path, rel in rows:
        print(f"{name:<26}{path:<6}" + "".join(f"{rel[k]:>10.1e}" for k in ks))
    print("h: through the hidden state; C: through the LSTM's cell state.")
    print()
    TA = cfg.adding_length
    print(f"2. Adding problem, T={TA}: same budget ({cfg.budget:,} sequences), same data, "
          f"{cfg.eval_size:,} held-out sequences")
    print(f"{'model':<8}{'held-out MSE':>14}{'solved':>9}{'until solved':>14}{'seen':>10}{'seconds':>9}")
    for m in ("rnn", "lstm"):
        r = s["adding"][m]
        until = f"{r['solved_at']:,}" if r["solved_at"] else "-"
        print(f"{m.upper():<8}{r['error']:>14.4f}{r['score']:>9.3f}{until:>14}{r['seen']:>10,}"
              f"{r['seconds']:>9.0f}")
    print("(constant prediction: MSE 0.0417; solved = fraction with |error| < 0.04)")
    print()
    print("3. Summary")
    width = max(_columns.width(c[1]) for c in s["claims_rows"])
    for claim, measured, value in s["claims_rows"]:
        print(f"  {_columns.pad(claim, 28)}{_columns.pad(measured, width + 2)}{value}")
    print()
    if cfg.short_training():
        print(f"({cfg.short_training()})")
    print(f"report: {Path(cfg.out) / 'report.html'}  ({s['seconds']:.0f} s)")
    return 0


EXPERIMENT_HELP = """\
Train each model at each length with the same budget and seeds on a long-time-lag task, and
print a table: held-out error, fraction solved (adding) or recall accuracy (copy), runs solved,
training sequences until solved. Writes OUT/results.json (after every run; rerunning the same
command continues an interrupted experiment), OUT/TASK.png and OUT/report.html.

  adding  Hochreiter & Schmidhuber (1997): solved when |error| < 0.04 on >= 95% of the
          held-out sequences
  copy    Arjovsky et al. (2016): ten symbols, T blanks, reproduce them; compared with the
          memoryless baseline 10 ln 8 / (T + 20); solved at >= 95% recall accuracy

examples:
  lstmlab experiment adding --lengths 20 50 100 200 --models rnn lstm --seeds 0 1 2
  lstmlab experiment copy --lengths 10 50 100 --budget 200000 --hidden 64
  lstmlab experiment adding --lengths 20 --budget 2000 --seeds 0 --out /tmp/try
"""


def add_experiment_parser(sub):
    p = sub.add_parser("experiment", help="RNN vs LSTM on the adding problem or the copy task",
                       description=EXPERIMENT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=["adding", "copy"])
    p.add_argument("--lengths", type=_positive, nargs="+", required=True, metavar="T",
                   help="task lengths T (adding: at least 11)")
    p.add_argument("--models", nargs="+", choices=["rnn", "lstm"], default=["rnn", "lstm"],
                   help="models compared (default: rnn lstm)")
    p.add_argument("--seeds", type=_seed, nargs="+", default=[0, 1, 2],
                   help="one run per seed, model and length (default: 0 1 2)")
    p.add_argument("--budget", type=_positive, default=128_000,
                   help="training sequences per run (default 128000)")
    p.add_argument("--hidden", type=_positive, default=32, help="hidden units (default 32)")
    p.add_argument("--batch", type=_positive, default=32, help="sequences per step (default 32)")
    p.add_argument("--lr", type=_pos_float, default=3e-3, help="Adam learning rate (default 3e-3)")
    p.add_argument("--clip", type=_nonneg_float, default=1.0, help="gradient-norm clip, 0 = off (default 1)")
    p.add_argument("--forget-bias", type=_gate_bias, default=5.0,
                   help="LSTM forget-gate bias at init (default 5: f = 0.993, a memory half-life "
                        "of about 100 steps)")
    p.add_argument("--input-bias", type=_gate_bias, default=-5.0,
                   help="LSTM input-gate bias at init (default -5: i = 0.007, the cells start "
                        "nearly closed to input)")
    p.add_argument("--eval-every", type=_positive, default=4000,
                   help="training sequences between evaluations (default 4000)")
    p.add_argument("--eval-size", type=_positive, default=2000, help="held-out sequences (default 2000)")
    p.add_argument("--target", type=_unit_score, default=0.95,
                   help="score that counts as solved, in (0, 1] (default 0.95)")
    p.add_argument("--no-stop", action="store_true", help="train the whole budget even once solved")
    p.add_argument("--out", default=None, type=_output_dir,
                   help="output directory (default runs/experiment-TASK)")
    p.add_argument("--force", action="store_true",
                   help="overwrite the report of another command, or a TASK.png without "
                        "results.json, in --out")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_experiment, flags={"lr": "--lr", "clip": "--clip"})


def cmd_experiment(args) -> int:
    from .insight.demo import REPORT_TITLE as DEMO_TITLE
    from .insight.experiments import (ExperimentConfig, format_table, load_results, remove_report,
                                      run_experiment, save_results, summarize, table_notes,
                                      write_report)

    try:
        cfg = ExperimentConfig(task=args.task, lengths=tuple(args.lengths),
                               models=tuple(args.models), seeds=tuple(args.seeds),
                               budget=args.budget, hidden=args.hidden, batch=args.batch,
                               lr=args.lr, clip=args.clip, forget_bias=args.forget_bias,
                               input_bias=args.input_bias, eval_every=args.eval_every,
                               eval_size=args.eval_size, target=args.target,
                               stop_when_solved=not args.no_stop)
    except ValueError as exc:  # "seeds must ...", "adding lengths must ...": name the option
        setting = re.match(r"(?:(?:adding|copy) )?(\w+) must", str(exc))
        if setting is None or not hasattr(args, setting.group(1)):
            raise
        flag = "--" + setting.group(1).replace("_", "-")
        raise ValueError(f"{flag} {str(exc)[setting.end(1) + 1:]}") from None
    if args.out is None:  # argparse checks a --out given; this default depends on the task
        default = f"runs/experiment-{args.task}"
        try:
            args.out = _output_dir(default)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"--out (default {default}): {exc}") from None
    out = Path(args.out)
    _refuse_non_files_in_place(out, ("results.json", f"{args.task}.png", "report.html"))
    _refuse_another_report(out, "results.json", DEMO_TITLE, args.force)
    results_path, png = out / "results.json", out / f"{args.task}.png"
    if png.exists() and not results_path.exists() and not args.force:  # no experiment's
        raise ValueError(f"--out {out} holds {png.name} without results.json, a figure that no "
                         f"experiment wrote there; choose another --out or pass --force to "
                         f"overwrite it (nothing was overwritten)")
    try:
        done = load_results(results_path, cfg)
    except ValueError as exc:  # given --force, the user meant to overwrite: say what it does
        if not args.force:
            raise
        raise ValueError(f"{exc}; --force overwrites the report of another command, never the "
                         f"runs of an experiment: delete {results_path} to start this one "
                         f"afresh") from None
    if done:
        print(f"continuing {results_path}: {counted(len(done), 'run')} already done",
              file=sys.stderr)
    finished = list(done)

    def save(result):
        finished.append(result)
        save_results(results_path, cfg, finished)

    if len(done) < len(cfg.lengths) * len(cfg.models) * len(cfg.seeds):
        remove_report(cfg, out)  # it shows other runs than results.json will: before the work
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    results = run_experiment(cfg, log=log, on_result=save, done=done)
    print(format_table(cfg, summarize(results)))
    print()
    print(table_notes(cfg))
    png, report = write_report(cfg, results, out)
    print(f"\nresults: {results_path}; figure: {png}; report: {report}")
    return 0


INSPECT_HELP = """\
Look inside a character LSTM checkpoint (from 'lstmlab train'): heatmaps of its gates and cell
state over the characters of a text, and the cells whose state follows something nameable —
inside quotes, inside brackets, bracket depth, inside a comment, position in the line,
indentation (after Karpathy, Johnson & Fei-Fei 2015). Writes OUT/inspect.html and prints the
cells found. The search needs a few thousand characters to be meaningful: pass --file.

examples:
  lstmlab inspect runs/stdlib/best.ckpt --text "def f(x):\\n    return [x, 'a(b']\\n"
  lstmlab inspect runs/stdlib/best.ckpt --file some_module.py --max-chars 5000
"""


def add_inspect_parser(sub):
    p = sub.add_parser("inspect", help="gates and nameable cells of a character LSTM",
                       description=INSPECT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", type=_input_path)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--text", type=_utf8_text, help="the text to read; \\n, \\t and \\\\ in it stand for a newline, "
                                  "a tab and a backslash (shells pass them on as typed)")
    reads_dash(p, g.add_argument("--file", type=_input_path,
                                 help="read the text from this UTF-8 file; - reads standard input"))
    p.add_argument("--max-chars", type=_positive, default=20_000, help="use at most this many characters (default 20000)")
    p.add_argument("--heat-chars", type=_positive, default=120, help="characters in the heatmaps (default 120)")
    p.add_argument("--units", type=_positive, default=16, help="cells per heatmap (default 16)")
    p.add_argument("--per-signal", type=_positive, default=2, help="cells listed per property (default 2)")
    p.add_argument("--unknown", choices=["error", "replace"], default="error",
                   help="characters outside the vocabulary: stop with an error (default) or replace them")
    p.add_argument("--out", default="lstmlab-inspect", type=_output_dir,
                   help="output directory (default lstmlab-inspect)")
    p.set_defaults(func=cmd_inspect)


_TEXT_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def _unescape_text(text: str) -> str:
    """``--text`` as meant: a shell passes ``\\n`` on as a backslash and an n, so ``\\n``,
    ``\\t`` and ``\\\\`` stand for a newline, a tab and a backslash, read in one pass from the
    left (``\\\\n`` is a backslash, then n: the way to write Python's ``"\\n"``); any other
    backslash stays as typed."""
    return re.sub(r"\\([nt\\])", lambda m: _TEXT_ESCAPES[m.group(1)], text)


def _say_cut(command: str, kept: int, total: int) -> None:
    """On stderr, that --max-chars cut the text to its first ``kept`` of ``total`` characters,
    so that a cut text is not taken for the whole file."""
    print(f"lstmlab {command}: the text is cut to its first {kept:,} of {total:,} characters; "
          f"--max-chars {total} shows all of it", file=sys.stderr)


def cmd_inspect(args) -> int:
    from .insight.inspection import NOTHING_VARIES, inspect_text
    from .training.lm import load_charlm

    model, vocab, _ = load_charlm(args.checkpoint)
    if args.file == "-":  # a pipe is read once: all of it, to say what a cut leaves out
        text, source = read_text_arg("-"), text_name("-")
        if len(text) > args.max_chars:
            _say_cut("inspect", args.max_chars, len(text))
            text = text[: args.max_chars]
    elif args.file:
        from .data.text import count_text_chars, read_text_files
        text = read_text_files([args.file], max_chars=args.max_chars + 1)  # + 1: is there more?
        source = shown_path(args.file)
        if len(text) > args.max_chars:
            text = text[: args.max_chars]
            _say_cut("inspect", len(text), count_text_chars([args.file]))
    else:
        text, source = _unescape_text(args.text), "--text"
        if not text:
            raise ValueError("--text is empty: give the characters to read (or --file)")
        if len(text) > args.max_chars:
            _say_cut("inspect", args.max_chars, len(text))
            text = text[: args.max_chars]
    matches, path = inspect_text(model, vocab, text, args.out, heat_chars=args.heat_chars,
                                 units=args.units, per_signal=args.per_signal,
                                 unknown=args.unknown, source=source)
    print(f"{counted(len(text), 'character', grouped=True)} from {source}"
          + "".join(f"; {note}" for note in [replaced_note(text, vocab)] if note)
          + "; cells whose state C_t follows a property (Pearson r):")
    print(f"  {'property':<18}{'layer':>6}{'cell':>6}{'r':>8}")
    for m in matches:
        print(f"  {m.signal:<18}{m.layer:>6}{m.unit:>6}{m.r:>+8.3f}")
    if not matches:
        print(f"  ({NOTHING_VARIES})")
    if len(text) < 1000:
        print("(a short text: these correlations are noisy; pass --file with a few thousand characters)")
    print(f"report: {path}")
    return 0


EXPLORE_HELP = """\
Look inside a character model checkpoint (from 'lstmlab train') in the browser: a local web
page, served on 127.0.0.1 only, where each character you type is coloured by a unit's gate or
state, hovering shows the next-character predictions, selected spans rank the units that
separate them (LSTMVis), built-in hypotheses (quotes, brackets, comments, position in the
line, indentation) find the units that follow them, look-alike places are found, and the
gates' saturation is plotted. The TEXT_FILEs fill the text box. Runs until Ctrl-C.
See docs/explore.md.

examples:
  lstmlab explore runs/stdlib/best.ckpt some_module.py
  lstmlab explore runs/stdlib/best.ckpt --port 8765 --no-browser
  lstmlab explore runs/stdlib/best.ckpt some_module.py --save page.html   # a static page
"""


def add_explore_parser(sub):
    p = sub.add_parser("explore", help="look inside a character model in the browser",
                       description=EXPLORE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CKPT", type=_input_path)
    p.add_argument("files", nargs="*", default=[], metavar="TEXT_FILE", type=_input_path, help="UTF-8 text for the text box")
    p.add_argument("--port", type=_nonneg_int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="print the address, open no browser")
    p.add_argument("--max-chars", type=_positive, default=10_000,
                   help="longest text read from the files or typed (default 10000)")
    p.add_argument("--save", metavar="PAGE.html", type=_output_file,
                   help="write a static, self-contained page of the views instead of serving")
    p.set_defaults(func=cmd_explore, flags={"max_chars": "--max-chars"})


def cmd_explore(args) -> int:
    try:
        from .explore import Explorer, cut_text, save_page, start_server
    except ModuleNotFoundError as exc:
        print(f"lstmlab explore: error: needs the package {exc.name!r}, a dependency of "
              f"lstmlab: pip install {exc.name}", file=sys.stderr)
        return 2
    from .insight.gates import refuse_layer_norm_charlm
    from .training.lm import load_charlm

    refuse_standard_input(args.files, "TEXT_FILE", "the text",
                          "or paste it into the text box of the served page")
    for name, path in [("CKPT", args.checkpoint)] + [("TEXT_FILE", f) for f in args.files]:
        refuse_overwriting_inputs(args.save, "--save", {name: path})
    model, vocab, _ = load_charlm(args.checkpoint)
    refuse_layer_norm_charlm(model)  # before the files are read and their length reported
    text = ""
    if args.files:
        from .data.text import count_text_chars, read_text_files
        text = read_text_files(args.files, max_chars=args.max_chars + 1)  # + 1: is there more?
        if len(text) > args.max_chars:
            text = cut_text(text, args.max_chars)
            _say_cut("explore", len(text), count_text_chars(args.files))
    explorer = Explorer(model, vocab, text, ", ".join(map(shown_path, args.files)),
                        max_chars=args.max_chars)
    if args.save:
        n = save_page(explorer, args.save)
        held = (f"the whole text, {counted(n, 'character', grouped=True)}" if n == len(text)
                else f"the first {n:,} of its {len(text):,} characters")
        print(f"wrote {args.save} ({held})")
        return 0
    server, url = start_server(explorer, args.port)
    print(f"lstmlab explore: serving {args.checkpoint} at {url} (Ctrl-C stops)", flush=True)
    if not args.no_browser:
        import webbrowser
        webbrowser.open(url)
    try:
        server.serve_forever()  # returns on Ctrl-C (Werkzeug's server catches it)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print("stopped")
    return 0
