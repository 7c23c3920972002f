"""Standard error that cannot stop a command.

Progress lines, notes and warnings go to stderr while a command trains for minutes or hours.
The place they go can vanish under it: the reader of a pipe exits (``lstmlab train 2>&1 |
head -1``: EPIPE), the terminal closes (EIO), or the command starts with stderr closed
(``2>&-``, when Python has no ``sys.stderr`` at all and ``print(file=sys.stderr)`` writes to
stdout instead, into the text or CSV a command writes there). None of that is a reason to
lose the work: :func:`sturdy_stderr` makes stderr a stream whose writes never raise, and
which drops what it cannot write from the first failure on, so training goes on and writes
its files as it would have. :func:`utf8_when_redirected` makes stdout and stderr that go to a
file or a pipe write the UTF-8 with LF line ends of lstmlab's files.

Beside them: :func:`rewritten`, a progress line cut to the width of the terminal it is
rewritten on (:func:`stderr_columns`), :func:`require_stdout`, the error for a command
whose product is to go to a standard output that is closed, :func:`note_terminal_stdin`,
the line that says a command waits for text typed at the terminal, and
:func:`dash_hint`, what a usage error adds when the data waits on standard input.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import sys


class SturdyStream:
    """A text stream passing writes to ``stream`` until one fails with an ``OSError``, and
    dropping them from then on (``lost``); ``stream`` None (no stderr) is lost from the
    start. Other attributes (``isatty``, ``encoding``, ...) are the stream's."""

    def __init__(self, stream) -> None:
        self._stream = stream
        self.lost = stream is None

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                return self._stream.write(text)
            except OSError:
                self._lose()
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._stream.flush()
            except OSError:
                self._lose()

    def isatty(self) -> bool:
        return not self.lost and self._stream.isatty()

    def _lose(self) -> None:
        """From now on nothing is written; the stream's file descriptor goes to the null
        device, so that the interpreter's final flush of what is still buffered (and any
        other writer of the descriptor) does not fail on it again."""
        self.lost = True
        to_null_device(self._stream)

    def __getattr__(self, name):
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def to_null_device(stream) -> None:
    """Point ``stream``'s file descriptor at the null device, so that what is still buffered
    for it (the interpreter's final flush) and any other writer of the descriptor write into
    nothing instead of failing again on a reader that is gone; a stream with no file behind
    it (tests, notebooks) is left as it is."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


@contextlib.contextmanager
def sturdy_stderr():
    """``sys.stderr`` as a :class:`SturdyStream` for the body of a ``with``, restored after."""
    saved = sys.stderr
    sys.stderr = SturdyStream(saved)
    try:
        yield sys.stderr
    finally:
        sys.stderr = saved


def _redirected(stream) -> bool:
    """Whether ``stream`` (a text stream, or None under pythonw) goes to a file or a pipe
    rather than a terminal, and writes other bytes than lstmlab's files hold: an encoding
    other than UTF-8, or line ends other than LF (Windows' CRLF)."""
    try:
        return (hasattr(stream, "reconfigure") and not stream.isatty()
                and (codecs.lookup(stream.encoding).name != "utf-8" or os.linesep != "\n"))
    except (AttributeError, TypeError, LookupError, OSError, ValueError):  # closed, or no encoding
        return False


def _strict_narrow(stream) -> bool:
    """Whether ``stream`` stops at the first character its encoding lacks: an encoding that
    is not one of Unicode's (a POSIX terminal in a Latin-1 locale, PYTHONIOENCODING=cp1252)
    with the ``strict`` error handler."""
    try:
        return (hasattr(stream, "reconfigure") and stream.errors == "strict"
                and codecs.lookup(stream.encoding).name not in ("utf-8", "utf-16", "utf-32"))
    except (AttributeError, TypeError, LookupError, ValueError):  # closed, or no encoding
        return False


@contextlib.contextmanager
def utf8_when_redirected():
    """While a command runs, standard output and error that go to a file or a pipe write
    UTF-8 with LF line ends, the bytes of every file lstmlab writes (``--out``) and reads.
    Python's default there is the locale's encoding and, on Windows, CRLF: there ``lstmlab
    generate > out.txt`` would write a file in a code page (cp1252, say) that ``lstmlab
    evaluate`` refuses as not UTF-8, a character outside the code page (the ``C̃`` of
    ``lstmlab demo``'s summary, a class label in another script) would end the command,
    and a model's own ``\\r\\n`` would come out as ``\\r\\r\\n``. A terminal keeps its own
    encoding (Windows' console writes any character), as does every stream when
    PYTHONIOENCODING names one; where that encoding is not Unicode and stops at a character
    it lacks, the stream writes ``?`` for it instead, so a summary line cannot end a
    command. Encodings, error handlers and line ends are restored afterwards."""
    changed, relaxed = [], []
    for stream in (sys.stdout, sys.stderr):
        if not os.environ.get("PYTHONIOENCODING") and _redirected(stream):
            changed.append((stream, stream.encoding, stream.errors))
            stream.reconfigure(encoding="utf-8", errors=stream.errors, newline="\n")
        elif _strict_narrow(stream):
            relaxed.append(stream)
            stream.reconfigure(errors="replace")
    try:
        yield
    finally:
        for stream, encoding, errors in changed:
            try:  # newline None: the platform's line ends, as Python sets up its streams
                stream.reconfigure(encoding=encoding, errors=errors, newline=None)
            except (OSError, ValueError):  # closed, or a pipe whose reader is gone
                pass
        for stream in relaxed:
            try:
                stream.reconfigure(errors="strict")
            except (OSError, ValueError):
                pass


def stderr_columns() -> int:
    """The width of the terminal stderr writes to: ``COLUMNS`` when it is set to a positive
    number (as shells export it), else the terminal's own, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
        if columns > 0:
            return columns
    except ValueError:
        pass
    try:
        columns = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):  # not a terminal, or no file behind it
        columns = 0
    return columns if columns > 0 else 80


def rewritten(line: str, kept: bool = False, widest: int = 100) -> str:
    """``line`` to write over the line before it on a terminal: a carriage return, then the
    line padded with spaces to the terminal's width less one column (at most ``widest``), so
    that it covers a longer line before it, and cut to that width unless it is ``kept`` (a
    line the next one does not overwrite, which may wrap): on a terminal narrower than the
    line, each rewrite of a wrapped line would leave its first rows behind."""
    width = max(1, min(widest, stderr_columns() - 1))
    return "\r" + (line if kept else line[:width]).ljust(width)


def require_stdout(what: str, instead: str = "") -> None:
    """A clear error before any work when ``what`` (the text, a CSV) is to go to standard
    output and there is none: started with it closed (``>&-``), Python has no ``sys.stdout``,
    and the first write would fail as an ``AttributeError`` deep inside. ``instead`` says
    what to do (an option that writes a file)."""
    if sys.stdout is None:
        raise ValueError(f"standard output is closed, so {what} has nowhere to go"
                         f"{'; ' + instead if instead else ''}")


def end_of_input_keys(os_name: str = os.name) -> str:
    """The keys that end standard input typed at a terminal on the system ``os_name``."""
    return "Ctrl-Z then Enter" if os_name == "nt" else "Ctrl-D"


def _stdin_is_terminal() -> bool | None:
    """Whether standard input is a terminal; None when there is none to read (closed, or a
    stand-in without ``isatty``)."""
    try:
        return None if sys.stdin is None else bool(sys.stdin.isatty())
    except (ValueError, AttributeError):
        return None


def dash_hint(name: str) -> str:
    """What a usage error that misses the argument ``name`` (one that reads ``-`` as
    standard input) adds when standard input is a pipe or a file: ``lstmlab evaluate CKPT <
    held_out.txt`` means the data to be read, and ``-`` is the way to say so. Nothing when
    standard input is a terminal or closed."""
    if _stdin_is_terminal() is not False:
        return ""
    dash = f"{name} -" if name.startswith("-") else f"- as {name}"  # an option, a positional
    return f"; standard input is a pipe or a file here: pass {dash} to read it"


def note_terminal_stdin(what: str) -> None:
    """One line on stderr when ``what`` is to be read from standard input and that is a
    terminal: the command waits for text to be typed, and without the line it looks hung
    to a user who meant to pipe a file in, or did not know how to end what they typed.
    Nothing for a pipe or a file, which end by themselves."""
    if _stdin_is_terminal():
        print(f"reading the {what} from standard input (the terminal): type it, then "
              f"{end_of_input_keys()} at the start of a line to end it", file=sys.stderr,
              flush=True)
