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
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "lstmlab-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, corrupt, truncated or of another kind."""


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_checkpoint(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Save ``meta`` (JSON-able) and ``arrays`` (name -> ndarray) to ``path`` atomically."""
    buf = io.BytesIO()
    full_meta = {"format": FORMAT, "version": VERSION, **meta}
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("meta.json", json.dumps(full_meta, indent=1, sort_keys=True))
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            if arr.dtype == object:
                raise TypeError(f"array {name!r} has dtype object; checkpoints hold numeric arrays only")
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(f"arrays/{name}.npy", npy.getvalue())
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, expect_kind: str | None = None):
    """Read a checkpoint: ``(meta, arrays)``. Any problem is a :class:`CheckpointError`
    naming the file and what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory; pass the .ckpt file inside it "
                              f"(e.g. {path / 'best.ckpt'})")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise CheckpointError(f"checkpoint {path} is corrupt: member {bad} fails its CRC check")
            try:
                meta = json.loads(zf.read("meta.json").decode("utf-8"))
            except KeyError:
                raise CheckpointError(f"{path} is not an lstmlab checkpoint (no meta.json)") from None
            arrays = {}
            for info in zf.infolist():
                name = info.filename
                if name.startswith("arrays/") and name.endswith(".npy"):
                    with zf.open(info) as f:
                        arrays[name[len("arrays/"):-len(".npy")]] = np.lib.format.read_array(
                            io.BytesIO(f.read()), allow_pickle=False)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: "
                              f"{exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an lstmlab checkpoint (format tag missing)")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {meta.get('version')}; this "
                              f"lstmlab reads version {VERSION}")
    if expect_kind is not None and meta.get("kind") != expect_kind:
        raise CheckpointError(f"checkpoint {path} holds a {meta.get('kind')!r} model, but this "
                              f"command needs a {expect_kind!r} model")
    return meta, arrays


PARAM_PREFIX = "param/"


def param_arrays(module) -> dict[str, np.ndarray]:
    """A module's parameters as checkpoint arrays, under ``param/<name>``."""
    return {f"{PARAM_PREFIX}{k}": v for k, v in module.params().items()}


def restore_params(module, arrays: dict[str, np.ndarray], path) -> None:
    """Load the ``param/<name>`` arrays of a checkpoint into ``module``; a mismatch of names
    or shapes is a :class:`CheckpointError` naming the file."""
    params = {k[len(PARAM_PREFIX):]: v for k, v in arrays.items() if k.startswith(PARAM_PREFIX)}
    try:
        module.load_params(params)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path} does not match its own model description: "
                              f"{exc}") from None
