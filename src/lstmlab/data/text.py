"""Character-level language-model data: reading text, a vocabulary, and truncated-BPTT batches.

Dimensions: N tokens in the whole stream, B batch (parallel streams), S steps per chunk
(``seq_len``), V vocabulary size. Batches are time-major: ``(S, B)``.

The pipeline is ``text -> Vocab.encode -> ids (N,) -> split_train_val -> LMBatcher``.
``LMBatcher`` does the classic truncated-BPTT layout (Zaremba et al. 2014; Karpathy's
char-rnn): the stream is cut into B equal contiguous streams laid side by side as the columns
of a ``(N // B, B)`` matrix, and chunk k is rows ``[k*S, k*S + S)`` with targets one row
later. Column b of chunk k+1 continues exactly where column b of chunk k stopped, so the
final hidden state of one chunk is the right initial state for the next.

Everything here is deterministic: vocabularies are sorted by code point (never
``set`` order), and the default corpus is read in sorted path order.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .._checks import positive_int, probability
from .._files import CHUNK_BYTES, open_regular_file, read_utf8


class DataError(ValueError):
    """Text data that cannot be used: unreadable, empty, binary, badly encoded, too short."""


# -- reading files --------------------------------------------------------------------------

def _read_one(path: Path, max_chars: int | None = None) -> str:
    """One file's text (at most ``max_chars`` characters, read no further); every way it can
    be unusable becomes a DataError naming the file."""
    return read_utf8(path, "text file", DataError, max_chars)


def read_text_files(paths, max_chars: int | None = None) -> str:
    """The UTF-8 text of ``paths`` (one path or several), concatenated in the given order.

    The text is returned exactly as stored (line endings untouched) except that a leading
    UTF-8 byte-order mark is dropped. With ``max_chars`` the text is cut to its first
    ``max_chars`` characters and reading stops there (later files are not opened). Files
    are read in chunks. Raises :class:`DataError` naming the file when a file is missing, a
    directory, a device or another special file, unreadable, empty, binary (contains a NUL
    byte) or not valid UTF-8 (the message gives the byte offset and line of the first bad
    byte).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError("no text files given")
    if max_chars is not None:
        max_chars = positive_int(max_chars, "max_chars")
    parts: list[str] = []
    left = max_chars
    for p in paths:
        if left is not None and left <= 0:
            break
        parts.append(_read_one(p, left))
        if left is not None:
            left -= len(parts[-1])
    return "".join(parts)


def count_text_chars(paths) -> int:
    """The number of characters :func:`read_text_files` returns for ``paths`` without a
    limit, counted in chunks without keeping or decoding the text (for saying how much a
    ``max_chars`` cut left out). In UTF-8 every byte except a continuation byte
    (``10xxxxxx``) starts a character; a leading byte-order mark is not counted. Exact for
    valid UTF-8. Raises :class:`DataError` naming a file that is missing or not a regular
    file."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    total = 0
    for p in paths:
        with open_regular_file(p, "text file", DataError) as f:
            head = True
            while chunk := f.read(CHUNK_BYTES):
                b = np.frombuffer(chunk, np.uint8)
                total += len(b) - int(np.count_nonzero((b & 0xC0) == 0x80))
                if head and chunk.startswith(b"\xef\xbb\xbf"):
                    total -= 1
                head = False
    return total


# -- the default corpus ---------------------------------------------------------------------

# Directory names whose .py files are left out of the default corpus: installed third-party
# code (not the standard library) and test suites (which carry odd encodings, huge literal
# tables and deliberately broken code).
_SKIP_DIRS = frozenset({"site-packages", "dist-packages", "test", "tests", "idle_test",
                        "__pycache__"})


def stdlib_source_files() -> list[Path]:
    """The standard library's ``.py`` files that make up :func:`default_corpus`, sorted.

    Found under ``sysconfig.get_paths()["stdlib"]``; skips ``site-packages`` and test
    directories (``test``, ``tests``, ``idlelib/idle_test``). Sorted by the path relative to
    the library root, written with ``/``, so the order is the same on every run.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise DataError(f"the standard library directory {str(root)!r} does not exist")
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]  # prune in place
        for name in filenames:
            if name.endswith(".py"):
                full = Path(dirpath) / name
                found.append((full.relative_to(root).as_posix(), full))
    found.sort()
    return [full for _, full in found]


def default_corpus(max_chars: int | None = None) -> tuple[str, str]:
    """``(text, description)``: the Python standard library's own sources as a corpus.

    A corpus that exists on every machine with Python, needs no download and is large
    (tens of MB). Files come from :func:`stdlib_source_files` in its sorted order; files that
    are empty or not valid UTF-8 are skipped. Each file's text is followed by a newline if
    it does not end with one, so files never run into each other. With ``max_chars`` the
    text is cut to its first ``max_chars`` characters (and reading stops there).

    The result depends only on the installed Python, so it is the same on every call on a
    given machine.
    """
    if max_chars is not None:
        max_chars = positive_int(max_chars, "max_chars")
    root = sysconfig.get_paths()["stdlib"]
    parts: list[str] = []
    total = used = skipped = 0
    for path in stdlib_source_files():
        if max_chars is not None and total >= max_chars:
            break
        try:
            text = _read_one(path)
        except DataError:
            skipped += 1
            continue
        if not text.endswith("\n"):
            text += "\n"
        parts.append(text)
        total += len(text)
        used += 1
    if not parts:
        raise DataError(f"no readable .py files found under the standard library at {root!r}")
    corpus = "".join(parts)
    truncated = max_chars is not None and len(corpus) > max_chars
    if truncated:
        corpus = corpus[:max_chars]
    version = ".".join(str(v) for v in sys.version_info[:3])
    description = (f"Python {version} standard library sources from {root}: {used} .py files "
                   f"in sorted path order ({skipped} skipped as empty or not UTF-8; "
                   f"site-packages and test directories excluded), {len(corpus)} characters"
                   + (f" (cut at max_chars={max_chars})" if truncated else ""))
    return corpus, description


# -- vocabulary -----------------------------------------------------------------------------

# Tried in this order when unknown="replace" is asked for without a replacement.
_DEFAULT_REPLACEMENTS = ("\ufffd", "?", " ")


def _code_points(text: str) -> np.ndarray:
    """``text`` as an array of code points, (len(text),) uint32, without a Python loop."""
    # surrogatepass: a str may hold lone surrogates; they must map to themselves, not fail.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


class Vocab:
    """A character vocabulary: character ``chars[i]`` has id ``i``.

    Build one with :meth:`from_text` (characters sorted by code point, so the same text
    always gives the same ids) and save it with :meth:`to_json` (the list of characters,
    in id order); :meth:`from_json` restores exactly that order.
    """

    def __init__(self, chars: Iterable[str]):
        chars = list(chars)
        if not chars:
            raise DataError("a vocabulary needs at least one character")
        for i, ch in enumerate(chars):
            if not isinstance(ch, str) or len(ch) != 1:
                raise DataError(f"vocabulary entries must be single characters; entry {i} is "
                                f"{ch!r}")
        if len(set(chars)) != len(chars):
            dups = sorted(c for c, count in Counter(chars).items() if count > 1)
            raise DataError(f"vocabulary has repeated characters: {dups!r}")
        self._chars = tuple(chars)
        self._index = {c: i for i, c in enumerate(chars)}
        cps = _code_points("".join(chars)).astype(np.int64)  # (V,)
        # encode() looks code points up in a dense table (one gather per character, much
        # faster than hashing each one); the extra last entry catches every larger code point.
        # At most 0x110000 entries, 4.4 MB, and far less for ordinary text.
        self._table = np.full(int(cps.max()) + 2, -1, dtype=np.int32)  # (max_cp + 2,)
        self._table[cps] = np.arange(len(chars), dtype=np.int32)
        self._char_array = np.array(self._chars, dtype="<U1")  # (V,) for vectorised decode

    @classmethod
    def from_text(cls, text: str) -> "Vocab":
        """The vocabulary of every distinct character in ``text``, sorted by code point."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if not text:
            raise DataError("cannot build a vocabulary from empty text")
        return cls(sorted(set(text)))

    # -- properties -------------------------------------------------------------------
    @property
    def chars(self) -> tuple[str, ...]:
        """The characters in id order."""
        return self._chars

    def __len__(self) -> int:
        return len(self._chars)

    def __contains__(self, ch: object) -> bool:
        return ch in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._chars == other._chars

    def __hash__(self) -> int:
        return hash(self._chars)

    def __repr__(self) -> str:
        more = "..." if len(self) > 40 else ""
        return f"Vocab(V={len(self)}, chars={''.join(self._chars[:40])!r}{more})"

    # -- encode / decode --------------------------------------------------------------
    def encode(self, text: str, unknown: str = "error", replacement: str | None = None
               ) -> np.ndarray:
        """``text`` as ids, an int64 array (len(text),).

        Characters not in the vocabulary raise :class:`DataError` naming them and where they
        occur, unless ``unknown="replace"``: then each one is encoded as ``replacement``,
        which must be in the vocabulary. Without an explicit ``replacement`` the first of
        U+FFFD (the Unicode replacement character), ``"?"`` and ``" "`` that is in the
        vocabulary is used; if none is, the unknown characters are an error after all.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if unknown not in ("error", "replace"):
            raise ValueError(f"unknown must be 'error' or 'replace', got {unknown!r}")
        cps = _code_points(text)  # (N,)
        ids = self._table[np.minimum(cps, len(self._table) - 1)].astype(np.int64)  # (N,) -1 unknown
        if ids.size == 0 or ids.min() >= 0:
            return ids
        bad_at = np.flatnonzero(ids < 0)
        if unknown == "replace":
            rep_id = self._replacement_id(replacement)
            if rep_id is not None:
                ids[bad_at] = rep_id
                return ids
        raise DataError(self._unknown_message(text, bad_at, unknown, replacement))

    def _replacement_id(self, replacement: str | None) -> int | None:
        if replacement is not None:
            if replacement not in self._index:
                raise DataError(f"replacement character {replacement!r} is not in the vocabulary")
            return self._index[replacement]
        for ch in _DEFAULT_REPLACEMENTS:
            if ch in self._index:
                return self._index[ch]
        return None

    def _unknown_message(self, text: str, bad_at: np.ndarray, unknown: str,
                         replacement: str | None) -> str:
        # Group positions by character so one message covers many occurrences readably.
        by_char: dict[str, list[int]] = {}
        for p in bad_at.tolist():
            by_char.setdefault(text[p], []).append(p)
        shown = []
        for ch, where in list(by_char.items())[:8]:
            places = ", ".join(str(p) for p in where[:5]) + (", ..." if len(where) > 5 else "")
            shown.append(f"{ch!r} (U+{ord(ch):04X}) at position{'s' if len(where) > 1 else ''} "
                         f"{places} ({len(where)} time{'s' if len(where) > 1 else ''})")
        more = f"; and {len(by_char) - 8} more distinct characters" if len(by_char) > 8 else ""
        if "\r" in by_char and "\n" in self._index:  # the one unknown a user cannot see
            more += ("; '\\r' ends the lines of a Windows (CRLF) text and the vocabulary's "
                     "text had LF line endings: convert the text's line endings to LF")
        form = self._normal_form_that_fits(text)
        if form:
            how = ("accents as combining characters of their own" if form == "NFD"
                   else "accented letters as single characters")
            more += (f"; in Unicode normal form {form} ({how}, as in the vocabulary's text) "
                     f"every character of the text is in the vocabulary: normalise the text "
                     f"to {form}")
        hint = ("; none of U+FFFD, '?', ' ' is in the vocabulary to replace them with, pass "
                "replacement=<a character in the vocabulary>" if unknown == "replace"
                else "; pass unknown='replace' to map them to a replacement character")
        return (f"{len(bad_at)} character{'s' if len(bad_at) > 1 else ''} not in the vocabulary "
                f"(V={len(self)}): " + "; ".join(shown) + more + hint)

    def _normal_form_that_fits(self, text: str) -> str | None:
        """"NFC" or "NFD" when ``text`` in that Unicode normal form, and not as it is, has
        only characters of the vocabulary: the same letters, composed (é as one character)
        or decomposed (e and a combining accent) the other way; else None."""
        for form in ("NFC", "NFD"):
            normal = unicodedata.normalize(form, text)
            if normal != text and set(normal) <= self._index.keys():
                return form
        return None

    def decode(self, ids) -> str:
        """The text of ``ids`` (any integer array-like, flattened in C order)."""
        arr = np.asarray(ids)
        if arr.size == 0:  # (an empty list is float64 to NumPy: no ids, no text)
            return ""
        if arr.dtype.kind not in "iu":
            raise TypeError(f"ids must be integers, got dtype {arr.dtype}")
        arr = arr.reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() >= len(self)):
            bad = int(np.flatnonzero((arr < 0) | (arr >= len(self)))[0])
            raise DataError(f"id {int(arr[bad])} at position {bad} is outside the vocabulary "
                            f"(ids must lie in [0, {len(self) - 1}])")
        return self._char_array[arr].tobytes().decode("utf-32-le", "surrogatepass")

    # -- persistence ------------------------------------------------------------------
    def to_json(self) -> list[str]:
        """The characters in id order: a JSON-serialisable list that :meth:`from_json` reads."""
        return list(self._chars)

    @classmethod
    def from_json(cls, data) -> "Vocab":
        """The vocabulary saved by :meth:`to_json` (a list of single-character strings)."""
        if isinstance(data, str):
            # A str is itself a sequence of characters; refusing it avoids silently reading
            # JSON text such as '["a", "b"]' as the characters '[', '"', 'a', ...
            raise TypeError("from_json takes the list from to_json(); parse JSON text with "
                            "json.loads first")
        if not isinstance(data, (list, tuple)):
            raise DataError(f"a saved vocabulary must be a list of characters, got "
                            f"{type(data).__name__}")
        return cls(data)


# -- splitting and batching -----------------------------------------------------------------

def _as_ids(ids, name: str = "ids") -> np.ndarray:
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one token stream), got shape {arr.shape}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be non-negative token ids, got {int(arr.min())}")
    if arr.size and arr.max() > np.iinfo(np.int64).max:  # uint64: would wrap to negative
        raise ValueError(f"{name} must be token ids below 2**63, got {int(arr.max())}")
    return arr.astype(np.int64, copy=False)


def split_train_val(ids, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``(train, val)``: the first and last parts of the stream, in order (no shuffling).

    A chronological split, so validation text is never interleaved with training text.
    ``val`` has ``round(N * val_fraction)`` tokens (at least one when ``val_fraction > 0``);
    ``val_fraction == 0`` gives an empty ``val``. Both are views of ``ids`` as int64.
    """
    arr = _as_ids(ids)
    frac = probability(val_fraction, "val_fraction")
    n = arr.shape[0]
    n_val = 0 if frac == 0.0 else max(1, int(round(n * frac)))
    if n - n_val < 1:
        raise DataError(f"cannot split {n} tokens with val_fraction={frac}: nothing would be "
                        f"left for training")
    return arr[:n - n_val], arr[n - n_val:]


class LMBatcher:
    """Truncated-BPTT chunks of one token stream: ``(inputs (S, B), targets (S, B))`` int64.

    The stream of N tokens is cut into ``batch_size`` contiguous streams of
    ``L = N // batch_size`` tokens each (the ``N % batch_size`` tail is dropped); stream b
    is ``ids[b*L:(b+1)*L]``. Chunk k holds steps ``[k*S, k*S + S)`` of every stream, and the
    targets are the same steps shifted one token ahead. There are ``(L - 1) // S`` chunks
    per epoch, all full length (the remainder of fewer than S steps is dropped, so every
    chunk has the same shape). Stream b of chunk k+1 starts at the token where stream b of
    chunk k stopped, so carry the hidden state across chunks in order.

    ``chunk(k)`` returns chunk k directly: resuming at global step s is
    ``epoch_chunks(start=s % len(batcher))``.
    """

    def __init__(self, ids, batch_size: int, seq_len: int):
        arr = _as_ids(ids)
        self.batch_size = positive_int(batch_size, "batch_size")
        self.seq_len = positive_int(seq_len, "seq_len")
        B, S, N = self.batch_size, self.seq_len, arr.shape[0]
        need = B * (S + 1)  # every stream needs S inputs plus the one target beyond them
        if N < need:
            raise DataError(f"corpus too short for batch_size={B}, seq_len={S}: one chunk needs "
                            f"at least batch_size * (seq_len + 1) = {need} characters, there "
                            f"are {N}; use a longer text or a smaller batch_size or seq_len")
        L = N // B
        self.stream_length = L
        # Column b is stream b; rows are time. Contiguous so chunk slices are cheap.
        self._data = np.ascontiguousarray(arr[:B * L].reshape(B, L).T)  # (L, B)
        self._n_chunks = (L - 1) // S

    def __len__(self) -> int:
        """Chunks per epoch."""
        return self._n_chunks

    @property
    def chunks_per_epoch(self) -> int:
        return self._n_chunks

    @property
    def tokens_per_epoch(self) -> int:
        """Target tokens seen per epoch: ``len(self) * seq_len * batch_size``."""
        return self._n_chunks * self.seq_len * self.batch_size

    def chunk(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunk ``k`` of the epoch (0-based): ``(inputs (S, B), targets (S, B))``, fresh copies."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"chunk index must be an integer, got {type(k).__name__}")
        if not 0 <= k < self._n_chunks:
            raise IndexError(f"chunk index {k} out of range: there are {self._n_chunks} chunks "
                             f"per epoch (0 to {self._n_chunks - 1})")
        t0 = int(k) * self.seq_len
        inputs = self._data[t0:t0 + self.seq_len].copy()  # (S, B)
        targets = self._data[t0 + 1:t0 + self.seq_len + 1].copy()  # (S, B) one step ahead
        return inputs, targets

    def epoch_chunks(self, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Chunks ``start, start+1, ..., len(self)-1`` in order (``start > 0`` resumes an epoch)."""
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)) \
                or not 0 <= start <= self._n_chunks:
            raise ValueError(f"start must be an integer in [0, {self._n_chunks}], got {start!r}")
        # A plain function returning a generator, so a bad start fails here, not at next().
        return (self.chunk(k) for k in range(int(start), self._n_chunks))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return self.epoch_chunks()

    def __repr__(self) -> str:
        return (f"LMBatcher(batch_size={self.batch_size}, seq_len={self.seq_len}, "
                f"chunks_per_epoch={self._n_chunks})")
