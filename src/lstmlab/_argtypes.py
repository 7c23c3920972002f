"""Argument types shared by every ``lstmlab`` command: each rejects bad numbers with a
message that says what was expected (argparse then names the option).

Every float option is finite: ``nan``, ``inf`` and texts that overflow to infinity
(``1e999``) are refused here, so no command has to guess what an infinite learning rate,
clip or temperature would mean.

Input paths expand a leading ``~`` as the shell would have. Output paths are checked here
too, before any work (argparse also checks a default): a
run directory that is a file, a file path that is a directory, a path below a file or in
a folder this user cannot write, and on Windows a name it cannot create (a device name such
as ``NUL``, a ``?``, a trailing dot). Nothing is created; the command creates what it writes.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import stat
import tempfile
from pathlib import Path


def _shown(text: str) -> str:
    """``text`` for an error message, cut to a readable length (a 5000-digit number is
    still named, not pasted)."""
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


def _int(text: str, expected: str) -> int:
    try:
        return int(text)
    except ValueError:  # also: more digits than int() converts (sys.get_int_max_str_digits)
        raise argparse.ArgumentTypeError(f"expected {expected}, got {_shown(text)}") from None


def _finite_float(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {_shown(text)}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {_shown(text)} (not a finite "
                                         f"number)")
    return value


def _int_from(text: str, low: int, expected: str) -> int:
    value = _int(text, expected)
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_from(text, 1, "a positive integer")


def nonneg_int(text: str) -> int:
    return _int_from(text, 0, "an integer >= 0")


def seed(text: str) -> int:
    """A random seed: an integer >= 0 (what ``numpy.random.default_rng`` accepts)."""
    return _int_from(text, 0, "an integer >= 0 as the seed")


def gate_bias(text: str) -> float:
    """An initial gate bias, in [-100, 100]: a gate at ±100 is already shut or open for good
    (sigmoid(-100) = 4e-44, sigmoid(100) rounds to 1 in float64), so a larger bias changes
    nothing but can overflow (past 3.4e38 it is not a float32 at all)."""
    value = _finite_float(text, "a number in [-100, 100]")
    if not -100 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a number in [-100, 100], got {text}")
    return value


def nonneg_float(text: str) -> float:
    value = _finite_float(text, "a number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def pos_float(text: str) -> float:
    value = _finite_float(text, "a number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


YEAR_SECONDS = 365 * 24 * 3600


def timeout_seconds(text: str) -> float:
    """A wait in seconds, in (0, one year]: torch.distributed keeps its timeouts in
    nanoseconds of a 64-bit clock, which overflows near 9.2e9 s (a timeout of 1e10 s
    fails at once, one of 1e15 s cannot be made), and no run waits a year for a peer."""
    expected = f"a number of seconds > 0 and at most {YEAR_SECONDS} (a year)"
    value = _finite_float(text, expected)
    if not 0 < value <= YEAR_SECONDS:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def fraction(text: str) -> float:
    """A share in [0, 1): dropout, a validation or test fraction, SGD momentum."""
    value = _finite_float(text, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value}")
    return value


def pos_fraction(text: str) -> float:
    """A share in (0, 1): a fraction that must leave something on both sides."""
    value = _finite_float(text, "a number in (0, 1)")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value}")
    return value


def unit_score(text: str) -> float:
    """A score threshold in (0, 1]: a fraction solved, an accuracy."""
    value = _finite_float(text, "a number in (0, 1]")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value


def repeated(values) -> list:
    """The values that occur more than once in ``values``, each once, in first-seen order
    (for options and configs whose entries must be distinct)."""
    values = list(values)
    return [v for i, v in enumerate(values) if values.count(v) > 1 and values.index(v) == i]


def utf8_text(text: str) -> str:
    """Text typed on the command line, which must have come as UTF-8. Python decodes the
    bytes of an argument that are not UTF-8 (an é typed in a Latin-1 terminal) as lone
    surrogates U+DC80..U+DCFF; they are named here as the bytes they were, not later as
    the unknown character U+DCE9, or as a failure to write the text."""
    at = next((i for i, ch in enumerate(text) if "\ud800" <= ch <= "\udfff"), None)
    if at is None:
        return text
    cp = ord(text[at])
    what = f"the byte 0x{cp - 0xDC00:02x}" if 0xDC80 <= cp <= 0xDCFF else f"U+{cp:04X}"
    raise argparse.ArgumentTypeError(f"expected UTF-8 text, got {what} at character {at}, "
                                     f"which is not UTF-8 (is the terminal set to UTF-8?)")


def column_name(text: str) -> str:
    """One CSV column's name: an empty one is refused, as an option left empty would else
    fall back, without a word, to the default column or the checkpoint's."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a column name, got {text!r}")
    return text


def column_names(text: str) -> list[str]:
    """Comma-separated CSV column names, each once (a column given twice would be read as
    two inputs holding the same values)."""
    cols = [c.strip() for c in text.split(",") if c.strip()]
    if not cols:
        raise argparse.ArgumentTypeError("expected comma-separated column names")
    twice = repeated(cols)
    if twice:
        raise argparse.ArgumentTypeError(f"expected each column once, got {', '.join(twice)} "
                                         f"more than once")
    return cols


def _write_problem(folder: Path) -> str | None:
    """Why no file can be created in the existing ``folder``, or None: found by creating
    (and at once removing) a temporary file there, which answers for permission bits, access
    control lists (which ``os.access`` does not read on Windows), read-only mounts and full
    quotas alike."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


WINDOWS_DEVICES = frozenset(["CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                             *(f"LPT{i}" for i in range(1, 10))])
WINDOWS_FORBIDDEN = '<>:"|?*'


def windows_name_problem(text: str, os_name: str | None = None) -> str | None:
    """Why Windows cannot create the path ``text``, or None (always None when ``os_name``,
    by default this system's ``os.name``, is not "nt"): a part that is a device name (CON,
    PRN, AUX, NUL, COM1-9, LPT1-9, with any extension: ``nul.txt`` is the null device), that
    holds a character Windows refuses in a name (``<>:"|?*`` or a control character), or
    that ends in a dot or a space (which Windows drops, writing another name than the one
    given). Found when the options are read, not when the first file is due, after the
    work."""
    if (os.name if os_name is None else os_name) != "nt":
        return None
    from pathlib import PureWindowsPath

    path = PureWindowsPath(text)
    for part in path.parts[1:] if path.anchor else path.parts:
        if part in (".", ".."):
            continue
        if part.split(".")[0].rstrip(" ").upper() in WINDOWS_DEVICES:
            return (f"{part!r} is a name Windows keeps for a device (CON, PRN, AUX, NUL, "
                    f"COM1-9, LPT1-9, with any extension); choose another name")
        bad = next((ch for ch in part if ch in WINDOWS_FORBIDDEN or ord(ch) < 32), None)
        if bad is not None:
            return (f"{part!r} holds {bad!r}, which Windows does not allow in a file name "
                    f"(none of {' '.join(WINDOWS_FORBIDDEN)} or control characters)")
        if part[-1] in ". ":
            return (f"{part!r} ends in {'a dot' if part[-1] == '.' else 'a space'}, which "
                    f"Windows drops from a file name; leave it out")
    return None


def _refuse_windows_names(text: str) -> None:
    problem = windows_name_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"cannot create {text!r} on Windows: {problem}")


def _creatable(path: Path, text: str) -> None:
    """Refuse ``path`` when its nearest existing folder is a file or not writable."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"cannot create {text!r}: {str(parent)!r} "
                                                 f"is a file, not a directory")
            problem = _write_problem(parent)
            if problem:
                raise argparse.ArgumentTypeError(f"cannot create {text!r}: cannot write in "
                                                 f"{str(parent)!r} ({problem})")
            return


def _home_expanded(text: str) -> str:
    """``text`` with a leading ``~`` or ``~user`` made the home folder it names. A shell
    expands it only at the start of a word, so ``--out=~/runs/x`` arrives as typed and would
    otherwise create a folder named ``~`` in the current one (where ``rm -rf ~`` is one
    slip from deleting the home folder); ``./~`` still names such a folder."""
    return os.path.expanduser(text) if text.startswith("~") else text


def input_path(text: str) -> str:
    """A file or folder to read, as given, with a leading ``~`` made the home folder as for
    the outputs: ``--test=~/x.csv`` reaches the command as typed, the shell expanding ``~``
    only at the start of a word. Whether it exists the reader says, naming what it expected."""
    return _home_expanded(text)


def output_dir(text: str) -> str:
    """A run directory to write in: an existing directory, or one that can be created. An
    empty name (an unset shell variable, most often) would be the current folder: refused,
    where ``.`` says so. A leading ``~`` is the home folder."""
    if not text:
        raise argparse.ArgumentTypeError("expected a directory name, got '' (write . for the "
                                         "current folder)")
    text = _home_expanded(text)
    _refuse_windows_names(text)
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a directory, got {text!r}, which is "
                                         f"a file")
    if not path.exists():
        _creatable(path, text)
    elif problem := _write_problem(path):  # found now, not when the first file is due
        raise argparse.ArgumentTypeError(f"cannot write in {text!r}: {problem}")
    return text


def output_file(text: str) -> str:
    """A file to write: not a directory, in a folder that exists or can be created. A
    leading ``~`` is the home folder."""
    if not text:
        raise argparse.ArgumentTypeError("expected a file name, got ''")
    text = _home_expanded(text)
    _refuse_windows_names(text)
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a file name, got {text!r}, which is a "
                                         f"directory")
    _refuse_special_file(path, text)
    _creatable(path, text)
    return text


def _refuse_special_file(path: Path, text: str) -> None:
    """Refuse an existing ``path`` that is no regular file (``/dev/null``, a FIFO, a socket):
    the outputs are written to a temporary file renamed over ``path``, which would replace
    the device or pipe itself by a plain file (for root, ``/dev/null`` for every program)."""
    from ._files import file_kind

    try:
        mode = path.stat().st_mode
    except OSError:  # absent (or unreadable): the writer says what is wrong
        return
    if not stat.S_ISREG(mode):
        raise argparse.ArgumentTypeError(
            f"expected a regular file's name, got {text!r}, which is {file_kind(mode)}: the file "
            f"is written beside it and renamed over it, which would replace it; give a file "
            f"name")


def refuse_idle_dropout(dropout: float, layers: int) -> None:
    """--dropout acts between stacked layers: with --layers 1 it would change nothing."""
    if dropout > 0 and layers == 1:
        raise ValueError(f"--dropout {dropout:g} acts between stacked layers and --layers 1 has "
                         f"none, so it would change nothing; give --layers 2 or more, or leave "
                         f"--dropout out")


def refuse_overwriting_inputs(out, flag: str, inputs: dict) -> None:
    """Refuse an output file ``out`` (given as ``flag``) that is one of the command's input
    files (``inputs``: what each is called, e.g. ``{"CKPT": path}``): writing the result
    there would destroy the model or data it was computed from. Raises ValueError."""
    if out is None or not Path(out).exists():
        return
    for name, path in inputs.items():
        if path is not None and Path(path).exists() and os.path.samefile(out, path):
            raise ValueError(f"{flag} {str(out)!r} is the {name} this command reads "
                             f"({str(path)!r}); writing there would overwrite it, so choose "
                             f"another {flag}")


def refuse_standard_input(files, name: str, what: str = "the data", why: str = "") -> None:
    """A command that reads ``files`` (the arguments named ``name``) as files only refuses
    ``-``, which elsewhere (``evaluate CKPT -``) is standard input, saying to save ``what``
    (the text, the test set) to a file and pass that (``why``: what else that file is good
    for), rather than saying that a file named '-' does not exist. Raises ValueError."""
    if "-" in files:
        raise ValueError(f"{name} '-': this command reads files, not standard input; save "
                         f"{what} to a file and pass that{', ' + why if why else ''} (a file "
                         f"named '-' is ./-)")


def in_flags(message: str, flags: dict[str, str]) -> str:
    """A library's error ``message`` as a command-line user reads it: the Python parameter
    names of ``flags`` (``{"seq_len": "--seq-len", ...}``) become the options the user typed.

    ``name=value`` becomes ``--flag value`` for every name; a bare name becomes the flag only
    when it has an underscore (``seq_len``), since ``steps`` or ``dropout`` alone is also an
    ordinary word. A name inside a path or a quoted file name (``runs/seq_len``,
    ``'seq_len'``) is left alone.
    """
    if not flags:
        return message
    names = "|".join(re.escape(n) for n in sorted(flags, key=len, reverse=True))
    pattern = (rf"(?<![\w./\\'\"-])({names})"
               rf"(?:=('[^']*'|\"[^\"]*\"|[^\s,;:)]*[^\s,;:).])|(?![\w/\\'\"-]|\.\w))")

    def replace(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if value is not None:
            return f"{flags[name]} {value.strip(chr(39) + chr(34))}"
        return flags[name] if "_" in name else name

    return re.sub(pattern, replace, message)
