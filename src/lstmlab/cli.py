"""Command-line interface: ``lstmlab <command>``; ``main(argv) -> int`` so tests call it.

This module holds what the commands share: the parser (:func:`build_parser`), :func:`main`
with its exit codes and its one-line errors, and the small helpers of several commands (a
text read from a file or ``-``, a note on stderr). Each command's help text, parser and work
live in its own module:

* :mod:`lstmlab.charlm_cli` — ``train``, ``generate``, ``evaluate`` (the character model);
* :mod:`lstmlab.insight_cli` — ``demo``, ``experiment``, ``inspect``, ``explore``;
* :mod:`lstmlab.export_cli` — ``export``;
* :mod:`lstmlab.forecast.cli`, :mod:`lstmlab.classify.cli` — ``forecast``, ``classify``,
  with what these two share (network options, run folder, progress) in :mod:`lstmlab.task_cli`.

Those modules import the shared helpers from here, so this module imports them inside
:func:`build_parser` and not at its top.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import sys

from ._argtypes import in_flags
from ._extras import MissingExtra, require
from ._files import shown_path
from ._streams import dash_hint, sturdy_stderr, to_null_device, utf8_when_redirected
from ._words import counted
from . import __version__


def reads_dash(parser: argparse.ArgumentParser, action: argparse.Action) -> argparse.Action:
    """Record ``action`` (the return of ``add_argument`` on ``parser`` or one of its groups)
    as an argument of ``parser`` that reads ``-`` as standard input, for the hint of
    :class:`_Parser` when it is missing."""
    parser.dash_names.append(action.option_strings[0] if action.option_strings
                             else action.metavar)
    return action


class _Parser(argparse.ArgumentParser):
    """argparse's parser (and, through ``add_subparsers``, each command's), whose error for
    a missing argument that reads ``-`` (:func:`reads_dash`) adds, when standard input is a
    pipe or a file, that ``-`` reads it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dash_names: list[str] = []

    def error(self, message: str):
        if "required" in message:
            for name in self.dash_names:
                if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", message):
                    message += dash_hint(name)
                    break
        super().error(message)


def build_parser(train_defaults: dict | None = None) -> argparse.ArgumentParser:
    """The command line; ``train_defaults`` replaces defaults of ``lstmlab train`` (how
    :func:`lstmlab.charlm_cli._train_options_given` tells an option written out from one left
    out)."""
    # Imported here: the command modules import this module's shared helpers.
    from . import charlm_cli, export_cli, insight_cli
    from .classify.cli import add_classify_parser
    from .forecast.cli import add_forecast_parser

    parser = _Parser(
        prog="lstmlab",
        description="The lecture's RNN and LSTM in NumPy: exact, fast, and explained.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="run 'lstmlab COMMAND --help' for a command's options and examples")
    parser.add_argument("--version", action="version", version=f"lstmlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    insight_cli.add_demo_parser(sub)
    charlm_cli.add_train_parser(sub).set_defaults(**(train_defaults or {}))
    add_forecast_parser(sub)
    add_classify_parser(sub)
    insight_cli.add_experiment_parser(sub)
    insight_cli.add_inspect_parser(sub)
    insight_cli.add_explore_parser(sub)
    charlm_cli.add_generate_parser(sub)
    charlm_cli.add_evaluate_parser(sub)
    export_cli.add_export_parser(sub)
    return parser


def _needed_extra(args) -> tuple[str, str] | None:
    """``(extra, what)`` when the parsed command needs an optional extra, else None."""
    from .export_cli import EXPORT_EXTRAS

    if args.command == "export" and args.format in EXPORT_EXTRAS:
        return EXPORT_EXTRAS[args.format], f"export --format {args.format}"
    if args.command == "classify" and getattr(args, "classify_command", None) == "train" \
            and getattr(args, "data", None) is None:
        return "sklearn", "classify train without DATA (the scikit-learn digits)"
    return None


# Library messages name keyword arguments; on the command line the same advice is an option.
CLI_HINTS = {"pass unknown='replace'": "pass --unknown replace",
             "pass replacement=<a character in the vocabulary>": "remove them from the input"}


def say(message: str) -> None:
    """A note on stderr, flushed so that it shows at once among the command's output."""
    print(message, file=sys.stderr, flush=True)


def read_text_arg(path: str) -> str:
    """The text of the file ``path``, or of standard input for ``-`` (as UTF-8 bytes, with a
    file's checks): how a command reads the one text it is given."""
    from .data.text import DataError, read_text_files
    if path == "-":
        from ._files import read_utf8_stdin
        return read_utf8_stdin("text file", DataError)
    return read_text_files([path])


def text_name(path: str) -> str:
    return "standard input" if path == "-" else shown_path(path)


def replaced_note(text: str, vocab) -> str:
    """What --unknown replace changed in ``text``: a score of a text with stand-ins is not
    the text's score, so the count and the characters are said beside it ("" if none)."""
    unknown = sorted(set(text) - set(vocab.chars))
    if not unknown:
        return ""
    count = sum(text.count(ch) for ch in unknown)
    shown = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in unknown[:5])
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    return (f"{counted(count, 'character', grouped=True)} outside the vocabulary read as "
            f"a stand-in, --unknown replace: {shown}{more}")


def _blas_on_one_thread():
    """While a command runs on the compiled kernels, NumPy's BLAS (embedding, linear heads,
    losses, optimizer: small products) runs on one thread. OpenBLAS's idle threads busy-wait
    after each call, and a busy-waiting thread takes a core from the kernels' team, which
    meets at a barrier every time step; the team already uses every core. Through
    threadpoolctl's documented limit, restored when the command ends. Without the compiled
    kernels (the NumPy reference runs on BLAS) or without threadpoolctl: no change."""
    from .kernels import fast
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas") if fast.available() else contextlib.nullcontext()


# Options that set how much memory a command takes, named in its out-of-memory error when
# the command has them (by their argparse names).
_SIZE_OPTIONS = ("hidden", "layers", "embed", "batch_size", "batch", "seq_len", "lookback",
                 "horizon", "length", "adding_length", "lengths", "eval_size", "max_chars",
                 "filters")


def _closed_pipe_on_windows(exc: BaseException) -> bool:
    """Whether ``exc`` is what Windows may raise instead of BrokenPipeError when the reader
    of a pipe has gone away: an OSError EINVAL that names no file (CPython issue 79935; an
    EINVAL of a file operation, a name Windows refuses, names its file)."""
    return (sys.platform == "win32" and type(exc) is OSError and exc.errno == errno.EINVAL
            and exc.filename is None)


def _reader_gone() -> int:
    """The end of a command whose reader of stdout is gone (``| head``): not an error of the
    command; it stops quietly, as a program killed by SIGPIPE does, with stdout pointed at
    the null device so that the interpreter's final flush does not fail on the closed pipe
    again."""
    to_null_device(sys.stdout)
    return 128 + 13  # SIGPIPE's number on every POSIX system; Windows has no signal


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code: 0 done, 2 a bad argument or input (one line on
    stderr, no traceback), 3 training diverged, 4 a process of a data-parallel run was lost
    (see ``--dist-timeout``), 128 + N stopped by signal N (130 Ctrl-C,
    143 SIGTERM, 129 a closed terminal's SIGHUP during training, 141 the reader of the output
    went away, as in ``lstmlab generate | head``).

    Ctrl-C anywhere in here, also while the heavy modules are still being imported (they are
    imported by the commands, not by ``import lstmlab.cli``), is the one line
    "interrupted" and exit 130. Output that goes to a file or a pipe is UTF-8 with LF line
    ends on every platform (see :func:`lstmlab._streams.utf8_when_redirected`).

    Standard error that fails or is closed (``2>&1 | head``, a closed terminal, ``2>&-``)
    stops nothing: what cannot be written there is dropped (:mod:`lstmlab._streams`), so a
    training run goes on and writes its files.
    """
    with utf8_when_redirected(), sturdy_stderr():
        return _run(argv)


def _command_name(args) -> str:
    """The command as typed, with its action for a command that has actions
    (``lstmlab classify train``), as argparse names it in its own errors."""
    action = getattr(args, f"{args.command}_command", None)
    return f"lstmlab {args.command}" + (f" {action}" if isinstance(action, str) else "")


def _run(argv: list[str] | None) -> int:
    """:func:`main` in the streams it sets up."""
    command, flags, args = "lstmlab", {}, None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        flags = getattr(args, "flags", {})  # a command's flags by the library's names for them
        if args.command is None:
            parser.print_help()
            return 2
        command = _command_name(args)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # for --nproc's processes
        if args.command != "train" and os.environ.get("WORLD_SIZE", "1").strip() not in ("", "0", "1"):
            # torchrun would start N copies writing the same files: refuse in each of them.
            raise ValueError(f"only 'lstmlab train' (the char-LM) trains data-parallel; run "
                             f"'{command}' as one process, without torchrun (WORLD_SIZE is "
                             f"{os.environ['WORLD_SIZE']})")
        if args.command == "train":  # before the kernels (and numba) are first imported
            from .training import distributed
            if distributed.in_process_group():
                distributed.own_kernel_cache()
        needed = _needed_extra(args)
        if needed:
            require(*needed)
        with _blas_on_one_thread():
            return args.func(args)
    except MissingExtra as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"{command}: interrupted", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    except MemoryError as exc:
        detail = f" ({exc})" if str(exc) else ""
        sizes = [f"--{name.replace('_', '-')}" for name in _SIZE_OPTIONS
                 if args is not None and name in vars(args)]
        hint = f"; choose smaller sizes ({', '.join(sizes)})" if sizes else ""
        print(f"{command}: error: out of memory{detail}{hint}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return _reader_gone()
    except (ValueError, TypeError, OSError) as exc:
        if _closed_pipe_on_windows(exc):
            return _reader_gone()
        message = str(exc)
        for library, cli in CLI_HINTS.items():
            message = message.replace(library, cli)
        message = in_flags(message, flags)
        print(f"{command}: error: {message}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # 3: training diverged (TrainingDiverged)


if __name__ == "__main__":
    raise SystemExit(main())
