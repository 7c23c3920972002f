"""Reading input files with bounded work: regular files only, text streamed in chunks.

Every reader of a user's file (text corpora, CSV and ``.ts`` tables, checkpoints, ONNX models)
opens it here, so that a device, a FIFO or a directory is refused up front with a message
naming it, instead of being read forever (``/dev/zero``) or blocking (a FIFO with no writer).

Text is read in chunks: a NUL byte is reported from the chunk it is in (the first one, for
nearly every binary file), invalid UTF-8 with its byte offset and line, and reading stops
once ``max_chars`` characters are in hand, so a limit on characters bounds the bytes read.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from typing import BinaryIO

# Bytes per read: large enough that reading a corpus costs a few hundred system calls per
# GB, small enough that the first chunk (where a binary file shows its NUL bytes) is cheap.
CHUNK_BYTES = 1 << 20

_UTF8_BOM = "\ufeff"

# The byte-order marks that begin a text file in another Unicode encoding (UTF-32's first:
# its little-endian mark begins with UTF-16's).
_OTHER_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
               (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"))


# The line breaks of a text file: LF, CRLF and a lone CR (a classic Mac file's).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def text_lines(text: str) -> list[str]:
    """``text``'s lines without their endings, broken at LF, CRLF and CR only, as a text
    editor numbers them. ``str.splitlines`` also breaks at U+2028, U+2029, NEL, form feed and
    a few other control characters: a cell holding one would be cut in two, and every line
    below it numbered one too far."""
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":  # the break that ends the last line starts no line of its own
        lines.pop()
    return lines


def shown_path(path) -> str:
    """``path`` as text that can be written to any UTF-8 page or stream: the bytes of a name
    that are not UTF-8 (a file named in Latin-1), which Python holds as lone surrogates, as
    ``\\xe9`` escapes; any other path as it is."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_left_beside_data(name: str) -> bool:
    """Whether a file ``name`` in a folder of data is one a system or an editor leaves beside
    the data rather than data: hidden ones (``._X.csv``, macOS's resource fork of a copied
    file) and ``~$X.csv`` (the lock file Excel keeps while a file is open)."""
    return name.startswith((".", "~$"))


def _a(what: str) -> str:
    """``what`` with its indefinite article: "a checkpoint", "an ONNX model"."""
    return f"{'an' if what[:1].upper() in 'AEIOU' else 'a'} {what}"


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, for a message: "a directory", "a FIFO", ..."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _tilde_note(path) -> str:
    """For a missing ``path`` that begins with ``~``: that a program sees no home folder
    there (the shell expands ``~`` only at the start of a word, so ``--file=~/x`` keeps it)."""
    if not str(path).startswith("~"):
        return ""
    return (f" (a leading ~ is the home folder only where the shell expands it: here it is a "
            f"folder named ~; write {os.path.expanduser(str(path))!r})")


def open_regular_file(path, what: str, error: type[Exception]) -> BinaryIO:
    """``path`` opened for binary reading, if it is a regular file.

    Anything else raises ``error`` with a message naming ``what`` and the path: a missing
    file, a directory, a device, a FIFO, a socket, a file that cannot be opened. The file is
    opened without blocking and checked with ``fstat`` on the open descriptor, so a FIFO is
    refused rather than waited on, and the file checked is the file read.
    """
    shown = repr(str(path))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{what} {shown} does not exist{_tilde_note(path)}") from None
    except OSError as exc:
        # Windows refuses to open a folder with "Permission denied", not "Is a directory".
        if isinstance(exc, IsADirectoryError) or os.path.isdir(path):
            raise error(f"{shown} is a directory, not {_a(what)}") from None
        raise error(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise error(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"{shown} is {file_kind(mode)}, not {_a(what)} (only regular files are read)")
    return os.fdopen(fd, "rb")


def small_json(path, limit: int = 1 << 24):
    """The JSON value in the regular file ``path``, or None where there is none to read:
    absent, no regular file (a FIFO is not waited on), larger than ``limit`` bytes (left
    unread), unreadable, not UTF-8 or not JSON. For telling a file that a command wrote from
    another of the same name before writing over it."""
    import json

    try:
        with open_regular_file(path, "file", OSError) as f:
            data = f.read(limit + 1)
        return json.loads(data.decode("utf-8")) if len(data) <= limit else None
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def _refuse_other_unicode(head: bytes, shown: str, error: type[Exception]) -> None:
    """Name a file that begins with a UTF-16 or UTF-32 byte-order mark as such text, rather
    than as binary (its NUL bytes) or as bad UTF-8 (the mark's bytes)."""
    for bom, name in _OTHER_BOMS:
        if head.startswith(bom):
            raise error(f"{shown} is {name} text (it begins with {name}'s byte-order mark); "
                        f"expected UTF-8: re-save the file as UTF-8")


def _as_cp1252(bad: bytes, exc: UnicodeDecodeError) -> str:
    """What the byte ``bad`` that is not UTF-8 reads as in Windows-1252 (the encoding of a
    plain 'CSV' saved by Excel on Windows, and of most Latin-1 text), as a hint naming the
    file's likely encoding; nothing for a file cut inside a character (its last bytes
    begin a UTF-8 character that the cut left unfinished)."""
    if exc.reason == "unexpected end of data":
        return ""
    try:
        char = bad.decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d: no character there
        return ""
    return (f" (it reads as {char!r} in Windows-1252, the encoding of Excel's plain 'CSV' "
            f"on Windows: the file looks written in it)")


def _utf16_without_mark(chunk: bytes) -> str | None:
    """``"UTF-16LE"`` or ``"UTF-16BE"`` when the file's first bytes read as ASCII text in
    UTF-16 without a byte-order mark: every other byte NUL, the bytes between them not (the
    first 64 bytes are looked at); else None."""
    head = chunk[: min(64, len(chunk) // 2 * 2)]  # whole code units
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if not odd.strip(b"\x00") and b"\x00" not in even:
        return "UTF-16LE"
    if not even.strip(b"\x00") and b"\x00" not in odd:
        return "UTF-16BE"
    return None


def read_utf8(path, what: str, error: type[Exception], max_chars: int | None = None) -> str:
    """The UTF-8 text of the regular file ``path``, read in chunks; a leading byte-order mark
    is dropped, and with ``max_chars`` the text is cut to that many characters and reading
    stops there.

    Raises ``error`` naming ``what`` and the path when the file is not a regular file, is
    empty, is UTF-16 or UTF-32 text (named by its byte-order mark, or for UTF-16 text that
    begins with ASCII characters, by its NUL bytes), holds a NUL byte (a binary file;
    reported by its byte offset) or is not valid UTF-8 (reported by byte offset and line).
    """
    with open_regular_file(path, what, error) as f:
        return _read_utf8_stream(f, repr(str(path)), what, error, max_chars)


def read_utf8_stdin(what: str, error: type[Exception], max_chars: int | None = None) -> str:
    """The UTF-8 text of standard input (given as the file ``-``), read in chunks, bytes not
    the interpreter's text layer (whose encoding is the locale's), with the checks and the
    ``max_chars`` bound of :func:`read_utf8`. A terminal is told first that it is read and
    how to end it (:func:`note_terminal_stdin`)."""
    import sys

    from ._streams import note_terminal_stdin
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise error(f"cannot read {what} '-' (standard input): this process has no standard "
                    f"input")
    note_terminal_stdin(what)
    return _read_utf8_stream(stream, "'-' (standard input)", what, error, max_chars)


def _read_utf8_stream(f: BinaryIO, shown: str, what: str, error: type[Exception],
                      max_chars: int | None) -> str:
    """:func:`read_utf8` of an open binary stream, named ``shown`` in errors."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    parts: list[str] = []
    chars = offset = lines = 0  # characters decoded; bytes and newlines before this chunk
    while max_chars is None or chars < max_chars + 1:  # + 1: room for a leading BOM
        try:
            chunk = f.read(CHUNK_BYTES)
        except OSError as exc:
            raise error(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
        if offset == 0:
            _refuse_other_unicode(chunk, shown, error)
        # NUL never occurs in real UTF-8 text but is everywhere in binaries and UTF-16
        # files; checked before decoding because NUL is itself valid UTF-8.
        nul = chunk.find(b"\x00")
        utf16 = _utf16_without_mark(chunk) if nul >= 0 and offset == 0 else None
        if utf16:
            raise error(f"{shown} looks like {utf16} text without a byte-order mark "
                        f"(every other byte is NUL); expected UTF-8: re-save the file "
                        f"as UTF-8")
        if nul >= 0:
            raise error(f"{shown} looks like a binary file (NUL byte at byte offset "
                        f"{offset + nul}); expected UTF-8 text")
        pending = len(decoder.getstate()[0])  # bytes of a character split across chunks
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            at = exc.start - pending  # into this chunk (negative: in the carried bytes)
            line = lines + chunk.count(b"\n", 0, max(at, 0)) + 1
            bad = (decoder.getstate()[0] + chunk)[exc.start:exc.start + 1]
            raise error(f"{shown} is not valid UTF-8: byte 0x{bad.hex()} at byte offset "
                        f"{offset + at} (line {line}) ({exc.reason}){_as_cp1252(bad, exc)}; "
                        f"re-save the file as UTF-8") from None
        if not chunk:
            break
        parts.append(text)
        chars += len(text)
        offset += len(chunk)
        lines += chunk.count(b"\n")
    text = "".join(parts)
    if not text and offset == 0:
        raise error(f"{what} {shown} is empty")
    if text.startswith(_UTF8_BOM):  # an encoding artefact, not a character of the text
        text = text[1:]
        if not text:
            raise error(f"{what} {shown} is empty (only a byte-order mark)")
    return text if max_chars is None else text[:max_chars]
