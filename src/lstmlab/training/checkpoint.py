"""Checkpoints: NumPy arrays plus a JSON description in one zip file, written atomically.

Layout of a ``.ckpt`` file (an ordinary zip archive; ``unzip -p run/last.ckpt meta.json``
shows the description)::

    meta.json            format tag and version, model kind and config, vocabulary,
                         optimizer hyperparameters, step, RNG state, anything else
    arrays/<name>.npy    every array, in NumPy's .npy format (read with allow_pickle=False)

No pickle is written or read. The file is written to a temporary name in the same folder,
flushed to disk and renamed over the target, so a crash never leaves a half-written
checkpoint where a good one was.
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import struct
import sys
import time
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._checks import short_repr
from .._files import open_regular_file
from .checkpoint_kinds import check_meta

FORMAT = "lstmlab-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, corrupt, truncated or of another kind."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename.

    A failure raises the OSError's own type with a message naming ``path`` (not the
    temporary file, which the caller never named) and the reason: disk full, no permission.
    """
    path = Path(path)
    try:
        _write_through_temporary(path, data)
    except OSError as exc:
        raise type(exc)(f"cannot write {path}: {exc.strerror or exc}") from None


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new file beside ``path``, opened for writing: ``(fd, its path)``. Created with mode
    0o666 less the umask, as a plain open() would (mkstemp's 0600 would leave the result
    private, and reading the umask means setting it, which races with other threads)."""
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # another writer's name: draw again
            continue


def _write_through_temporary(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


REPLACE_TRIES = 20  # Windows: 2 s of retries while another program holds the file


def _replace(tmp: Path, path: Path) -> None:
    """``os.replace(tmp, path)``. On Windows a file that another program has open (a virus
    scanner or an indexer, briefly; a spreadsheet showing a CSV, for as long as it is open)
    cannot be replaced: the rename is tried again for a while, then refused with a message
    that says why."""
    for attempt in range(REPLACE_TRIES):
        try:
            os.replace(tmp, path)
            return
        except PermissionError as exc:
            if sys.platform != "win32" or not path.exists():
                raise
            if attempt == REPLACE_TRIES - 1:
                raise PermissionError(exc.errno, f"{exc.strerror or exc} (is it open in "
                                                 f"another program? close it and run again)"
                                      ) from None
            time.sleep(0.1)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Save ``meta`` (JSON-able) and ``arrays`` (name -> ndarray) to ``path`` atomically."""
    for name, value in (("meta", meta), ("arrays", arrays)):
        if not isinstance(value, dict):
            raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
    # Another 'format' or 'version' would replace the tag load_checkpoint reads the file by
    # (the same values, as a loaded meta holds them, are the tag itself).
    taken = [k for k, v in (("format", FORMAT), ("version", VERSION)) if k in meta and meta[k] != v]
    if taken:
        raise ValueError(f"meta must not hold {' or '.join(repr(k) for k in taken)}: the "
                         f"checkpoint's own format tag and version go there; store a version "
                         f"of your own under another key")
    buf = io.BytesIO()
    full_meta = {"format": FORMAT, "version": VERSION, **meta}
    try:
        meta_text = json.dumps(full_meta, indent=1, sort_keys=True)
    except (TypeError, ValueError):
        raise TypeError(f"meta must hold only JSON values (dicts with str keys, lists, str, "
                        f"int, float, bool, None): {_not_json(meta, 'meta')}") from None
    meta_bytes = meta_text.encode("utf-8")
    if len(meta_bytes) > MAX_META_BYTES:  # refused here rather than by load_checkpoint
        raise ValueError(f"meta takes {len(meta_bytes):,} bytes as JSON; a checkpoint's "
                         f"meta.json is at most {MAX_META_BYTES:,} (load_checkpoint refuses "
                         f"more): keep large data in arrays")
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("meta.json", meta_bytes)
        for name, arr in arrays.items():
            if not isinstance(name, str):  # written as its str(): it would load under another key
                raise TypeError(f"arrays has the key {short_repr(name)} "
                                f"({type(name).__name__}); array names are str")
            if "\0" in name:  # zip cuts a member's name at NUL: the array would not load
                raise ValueError(f"array name {short_repr(name)} holds a NUL character "
                                 f"('\\0'), which a zip member's name cannot hold")
            if "\\" in name:  # Python's zipfile reads it as '/' on Windows: another name there
                raise ValueError(f"array name {short_repr(name)} holds a backslash, which a "
                                 f"zip member's name read on Windows turns into '/'; use '/'")
            arr = np.asarray(arr)
            if arr.dtype.kind not in NPY_KINDS or arr.dtype.fields is not None:
                # refused here, before anything is written, rather than by load_checkpoint
                raise TypeError(f"array {name!r} has dtype {arr.dtype}; checkpoints hold "
                                f"boolean, integer and floating-point arrays only")
            npy = io.BytesIO()
            # (ascontiguousarray alone turns a 0-d array into shape (1,): reshaped back)
            np.lib.format.write_array(npy, np.ascontiguousarray(arr).reshape(arr.shape),
                                      allow_pickle=False)
            zf.writestr(f"arrays/{name}.npy", npy.getvalue())
    atomic_write_bytes(path, buf.getvalue())


def _not_json(value, where: str) -> str:
    """Where in ``value`` the first thing JSON cannot hold is, and its type (a NumPy
    number, a set, a key that is not a string): ``meta['step'] is numpy.int64``."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{where} has the key {k!r} ({type(k).__name__}), not a str"
            found = _not_json(v, f"{where}[{k!r}]")
            if found:
                return found
        return ""
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _not_json(v, f"{where}[{i}]")
            if found:
                return found
        return ""
    if value is None or isinstance(value, (str, int, float)):  # bool is an int
        return ""
    kind = type(value)
    return f"{where} is a {kind.__module__}.{kind.__qualname__}"


# -- reading: every size checked before it is allocated --------------------------------------
#
# A checkpoint is untrusted input: someone else's file, or a damaged one. The reader checks
# each number that sizes an allocation before allocating: the zip's directory, the declared
# size of every member, meta.json, each .npy header, and (in .checkpoint_kinds) the model the
# description asks for against the arrays that are really there. Every problem is one
# CheckpointError naming the file; memory stays within a small multiple of the file's size.

MiB = 1 << 20

# meta.json holds configs, the vocabulary, optimizer hyperparameters and the RNG state: a
# few KB, the vocabulary being the largest part (about 10 bytes per character, so 4 MiB
# holds more characters than Unicode assigns). Parsed JSON takes up to ~20x its text in
# Python objects, so this also keeps the parse under ~100 MB.
MAX_META_BYTES = 4 * MiB

# The zip's central directory (46 bytes plus the name per member) is read whole by zipfile,
# and each entry becomes a ZipInfo object of a few hundred bytes. 1 MiB is ~12,000 members;
# a char-LM with Adam has about 9 per layer.
MAX_DIRECTORY_BYTES = 1 * MiB

# lstmlab writes members uncompressed, but a re-zipped checkpoint may hold deflated ones:
# the members together may declare at most this multiple of the file's size (plus the
# slack, for small files of very regular members). Trained weights and optimizer buffers
# are noisy floats that deflate by ~10%; a zip bomb inflates ~1000-fold.
MAX_INFLATE_RATIO = 32
INFLATE_SLACK_BYTES = 1 * MiB

# .npy dtypes a checkpoint may hold: booleans, integers and floats (never objects, strings
# or records, which could need pickle or a parser).
NPY_KINDS = "biuf"

_ZIP_END = struct.Struct("<4s4H2LH")  # the end-of-central-directory record


def _directory_size(f, path) -> None:
    """Refuse a zip whose central directory is larger than MAX_DIRECTORY_BYTES, from its end
    record (found as zipfile finds it) before zipfile reads the directory into memory."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - _ZIP_END.size - 0xFFFF))  # the record plus the longest comment
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _ZIP_END.size:
        return  # no end record: zipfile says "not a zip file"
    *_, members, directory, _, _ = _ZIP_END.unpack_from(tail, at)
    if directory > MAX_DIRECTORY_BYTES:
        raise CheckpointError(f"checkpoint {path} has a zip directory of {directory:,} bytes "
                              f"({members:,} members); a checkpoint's is at most "
                              f"{MAX_DIRECTORY_BYTES:,}")
    f.seek(0)


def _check_members(zf: zipfile.ZipFile, path, file_size: int) -> None:
    """Names, methods, encryption and declared sizes of every member, before reading any."""
    names = set()
    declared = 0
    for info in zf.infolist():
        name = info.filename
        if name in names:
            raise CheckpointError(f"checkpoint {path} holds member {name!r} twice")
        names.add(name)
        if info.flag_bits & 0x1:
            raise CheckpointError(f"checkpoint {path}: member {name!r} is encrypted; "
                                  f"checkpoints are not")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise CheckpointError(f"checkpoint {path}: member {name!r} uses compression method "
                                  f"{info.compress_type}; checkpoints use stored or deflated "
                                  f"members")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise CheckpointError(f"checkpoint {path}: stored member {name!r} declares "
                                  f"{info.file_size:,} bytes but holds {info.compress_size:,}")
        declared += info.file_size
    limit = MAX_INFLATE_RATIO * file_size + INFLATE_SLACK_BYTES
    if declared > limit:
        raise CheckpointError(f"checkpoint {path} declares {declared:,} bytes of contents in a "
                              f"file of {file_size:,}; more than {MAX_INFLATE_RATIO} times its "
                              f"size is refused (a zip bomb?)")


def _read_exactly(f, n: int, what: str, path) -> bytearray:
    """``n`` bytes from the member stream ``f`` (zipfile stops at the declared size and
    checks the CRC when it gets there), in bounded chunks."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = f.readinto(view[got:got + MiB])
        if not k:
            raise CheckpointError(f"checkpoint {path} is truncated: {what} ends after "
                                  f"{got:,} of {n:,} bytes")
        got += k
    return buf


def _read_meta(zf: zipfile.ZipFile, path) -> dict:
    try:
        info = zf.getinfo("meta.json")
    except KeyError:
        raise CheckpointError(f"{path} is not an lstmlab checkpoint (no meta.json)") from None
    if info.file_size > MAX_META_BYTES:
        raise CheckpointError(f"checkpoint {path}: meta.json declares {info.file_size:,} bytes; "
                              f"a checkpoint's is at most {MAX_META_BYTES:,}")
    with zf.open(info) as f:
        raw = _read_exactly(f, info.file_size, "meta.json", path)
        f.read(1)  # at the declared end: zipfile checks the CRC
    try:
        meta = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise CheckpointError(f"checkpoint {path}: meta.json nests too deeply to be a "
                              f"checkpoint's description") from None
    except ValueError as exc:  # also UnicodeDecodeError, JSONDecodeError
        raise CheckpointError(f"checkpoint {path}: meta.json is not valid UTF-8 JSON "
                              f"({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an lstmlab checkpoint (format tag missing)")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version "
                              f"{short_repr(meta.get('version'))}; this lstmlab reads version "
                              f"{VERSION}")
    return meta


class ArrayHeader(NamedTuple):
    """What a member's .npy header declares, checked against the member's size."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int  # bytes before the data: the magic string, the header length and the header


def _read_header(f, info: zipfile.ZipInfo, path) -> ArrayHeader:
    """The header of the .npy member ``info`` (open as ``f``); its data must fill the rest of
    the member exactly."""
    what = f"member {info.filename!r}"
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"npy format version {version}; checkpoints use 1.0 or 2.0")
    except (ValueError, SyntaxError, RecursionError, tokenize.TokenError) as exc:
        # NumPy parses the header (a Python literal) with ast and tokenize
        raise CheckpointError(f"checkpoint {path}: {what} is not a valid .npy array "
                              f"({exc})") from None
    if dtype.kind not in NPY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise CheckpointError(f"checkpoint {path}: {what} has dtype {dtype}; checkpoints hold "
                              f"boolean, integer and floating-point arrays")
    if any(d < 0 for d in shape):
        raise CheckpointError(f"checkpoint {path}: {what} declares shape {shape}")
    offset = f.tell()
    nbytes = math.prod(shape) * dtype.itemsize
    if offset + nbytes != info.file_size:
        raise CheckpointError(f"checkpoint {path}: {what} declares shape {shape} of {dtype} "
                              f"({nbytes:,} bytes) but holds {info.file_size - offset:,} bytes "
                              f"of data")
    return ArrayHeader(tuple(shape), dtype, bool(fortran), offset)


def _read_array(zf: zipfile.ZipFile, info: zipfile.ZipInfo, header: ArrayHeader, path):
    with zf.open(info) as f:
        f.read(header.offset)
        data = _read_exactly(f, info.file_size - header.offset, f"member {info.filename!r}",
                             path)
        f.read(1)  # at the declared end: zipfile checks the CRC
    order = "F" if header.fortran_order else "C"
    return np.frombuffer(data, header.dtype).reshape(header.shape, order=order)


def load_checkpoint(path: str | os.PathLike, expect_kind: str | None = None):
    """Read a checkpoint: ``(meta, arrays)``. Any problem is a :class:`CheckpointError`
    naming the file and what is wrong with it.

    Before any array is read, the zip's structure and declared sizes are checked against the
    limits above, and a description of a known kind (``meta["kind"]``) against the arrays'
    headers (:mod:`.checkpoint_kinds`): every field its loader reads, and the parameter
    count its model implies. Memory stays within a small multiple of the file's size.
    """
    path = Path(path)
    if path.is_dir():  # a run folder: name the checkpoints it holds (model.ckpt, best.ckpt...)
        inside = sorted(p.name for p in path.glob("*.ckpt") if p.is_file())
        raise CheckpointError(f"checkpoint {path} is a directory; pass a .ckpt file inside it "
                              + (f"({', '.join(str(path / n) for n in inside)})" if inside
                                 else "(it holds none)"))
    with open_regular_file(path, "checkpoint", CheckpointError) as f:
        file_size = os.fstat(f.fileno()).st_size
        if file_size == 0:
            raise CheckpointError(f"checkpoint {path} is empty (0 bytes): nothing was written "
                                  f"to it, or it was cut off; use another checkpoint")
        head = f.read(16)
        if not head.startswith(b"PK"):  # as every zip begins: another file, not a damaged one
            raise CheckpointError(f"checkpoint {path} is not a checkpoint: a checkpoint is a "
                                  f"zip archive, which begins with b'PK', and this file begins "
                                  f"with {head!r} (a text or data file given in its place?)")
        f.seek(0)
        try:
            _directory_size(f, path)
            with zipfile.ZipFile(f) as zf:
                _check_members(zf, path, file_size)
                meta = _read_meta(zf, path)
                if expect_kind is not None and meta.get("kind") != expect_kind:
                    raise CheckpointError(f"checkpoint {path} holds a "
                                          f"{short_repr(meta.get('kind'))} model, but this "
                                          f"command needs a {expect_kind!r} model")
                members = {}
                for info in zf.infolist():
                    name = info.filename
                    if name.startswith("arrays/") and name.endswith(".npy"):
                        with zf.open(info) as m:
                            members[name[len("arrays/"):-len(".npy")]] = (
                                info, _read_header(m, info, path))
                try:
                    check_meta(meta, {k: h for k, (_, h) in members.items()})
                except ValueError as exc:
                    raise CheckpointError(f"checkpoint {path}: {exc}") from None
                arrays = {k: _read_array(zf, info, h, path) for k, (info, h) in members.items()}
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error,
                NotImplementedError) as exc:  # (zipfile's word for a version or method it lacks)
            raise CheckpointError(f"checkpoint {path} is corrupt or truncated "
                                  f"({type(exc).__name__}: {exc})") from None
    return meta, arrays


PARAM_PREFIX = "param/"


def param_arrays(module) -> dict[str, np.ndarray]:
    """A module's parameters as checkpoint arrays, under ``param/<name>``."""
    return {f"{PARAM_PREFIX}{k}": v for k, v in module.params().items()}


def restore_params(module, arrays: dict[str, np.ndarray], path) -> None:
    """Load the ``param/<name>`` arrays of a checkpoint into ``module``; a mismatch of names
    or shapes, or a NaN or inf in a parameter, is a :class:`CheckpointError` naming the file."""
    params = {k[len(PARAM_PREFIX):]: v for k, v in arrays.items() if k.startswith(PARAM_PREFIX)}
    try:
        module.load_params(params)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path} holds parameters its model cannot take: "
                              f"{exc}") from None
