"""Hostile input files, made from a good checkpoint with the standard library only.

Each maker writes one file and returns its path. The zip archives are assembled by hand
(:func:`write_zip`) because ``zipfile`` cannot write what an attacker writes: a declared size
far beyond the data, a member already deflated, an unknown compression method, the
encryption flag without encryption.

The zip bomb's deflate stream is one compressed MiB of zeros repeated: a block that ends
with a full flush is byte-aligned and refers to nothing before it, so copies of it in a row
are a valid stream that inflates to that many MiB (1 GiB from about 1 MB).
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

MiB = 1 << 20
MB = 10 ** 6  # the memory limits and measurements are in MB
STORED, DEFLATED = 0, 8


def read_members(path) -> dict[str, bytes]:
    """The decompressed members of an ordinary zip file, in order."""
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def write_zip(path, members) -> Path:
    """Write ``members``: ``(name, data, method, size, crc, flags)`` tuples, where ``data`` is
    written as it is (already compressed for DEFLATED) and ``size``/``crc`` are what the
    headers declare for the decompressed member."""
    path = Path(path)
    local, central = bytearray(), bytearray()
    for name, data, method, size, crc, flags in members:
        fname = name.encode()
        offset = len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21,
                             crc, len(data), size, len(fname), 0) + fname + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 0x21,
                               crc, len(data), size, len(fname), 0, 0, 0, 0, 0,
                               offset) + fname
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                      len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path


def stored(name: str, data: bytes, flags: int = 0, method: int = STORED):
    return (name, data, method, len(data), zlib.crc32(data), flags)


def deflated(name: str, data: bytes):
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (name, co.compress(data) + co.flush(), DEFLATED, len(data), zlib.crc32(data), 0)


def deflated_padding(name: str, head: bytes, mib: int, fill: bytes = b"\0"):
    """A deflated member: ``head`` followed by ``mib`` MiB of ``fill`` bytes (one byte
    value), with the sizes and CRC of the whole, built without holding it in memory."""
    block = fill * MiB
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = co.compress(head) + co.flush(zlib.Z_FULL_FLUSH)
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    repeat = co.compress(block) + co.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    data = first + repeat * mib + b"\x03\x00"  # an empty final block ends the stream
    return (name, data, DEFLATED, len(head) + mib * MiB, crc, 0)


def npy_header(shape, descr: str = "<f4") -> bytes:
    """The .npy (version 1.0) header of a C-order array; the data would follow it."""
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    pad = 64 - (10 + len(text) + 1) % 64
    text = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def with_meta(good, out, change) -> Path:
    """A copy of checkpoint ``good`` whose meta.json is ``change(meta)`` (edited in place)."""
    members = read_members(good)
    meta = json.loads(members["meta.json"])
    change(meta)
    members["meta.json"] = json.dumps(meta).encode()
    return write_zip(out, [stored(n, d) for n, d in members.items()])


def _replace(good, out, name, member) -> Path:
    members = read_members(good)
    assert name in members, (name, sorted(members))
    return write_zip(out, [member if n == name else stored(n, d) for n, d in members.items()])


# -- the hostile files --------------------------------------------------------------------

def num_layers_million(good, out):
    return with_meta(good, out, lambda m: m["model"].update(num_layers=10**6))


def hidden_8000(good, out):
    return with_meta(good, out, lambda m: m["model"].update(hidden_size=8000))


def npy_bomb(good, out, member="arrays/param/embed.weight.npy", gib: int = 1):
    """A deflated .npy member that declares ``gib`` GiB of float32 zeros (about 1 MB)."""
    n = gib * 1024 * MiB // 4
    return _replace(good, out, member, deflated_padding(member, npy_header((n,)), gib * 1024))


def meta_bomb(good, out, mib: int = 300):
    """A meta.json that inflates to ``mib`` MiB: the real description, then spaces."""
    head = read_members(good)["meta.json"]
    return _replace(good, out, "meta.json", deflated_padding("meta.json", head, mib, b" "))


def deep_meta(good, out, depth: int = 200_000):
    return _replace(good, out, "meta.json", stored("meta.json", b"[" * depth))


def unknown_method(good, out, member="arrays/param/embed.weight.npy", method: int = 99):
    data = read_members(good)[member]
    return _replace(good, out, member, stored(member, data, method=method))


def encrypted(good, out, member="arrays/param/embed.weight.npy"):
    data = read_members(good)[member]
    return _replace(good, out, member, stored(member, data, flags=0x1))


def without_key(good, out, key):
    return with_meta(good, out, lambda m: m.pop(key))


def non_finite_param(good, out, member="arrays/param/head.weight.npy", value=float("nan")):
    """A copy of ``good`` whose parameter ``member`` holds ``value`` at its first element, in
    a well-formed .npy (a diverged run's weights, or a damaged file that still parses)."""
    import io

    import numpy as np
    arr = np.load(io.BytesIO(read_members(good)[member]), allow_pickle=False).copy()
    arr.flat[0] = value
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return _replace(good, out, member, stored(member, buf.getvalue()))


# -- running commands under a memory limit --------------------------------------------------
#
# ``python hostile_files.py LIMIT_MB WARM_CKPT CASES_JSON`` runs each case of CASES_JSON
# (name -> argv) as ``lstmlab ARGV`` (or ``import-onnx FILE``, see :func:`import_onnx_main`,
# or ``allocate-mb N``, which allocates N MB as a check of the harness itself), one after
# the other in this process, each under a limit on the address space (RLIMIT_AS) of
# LIMIT_MB beyond what was in use when it started. A warm-up first (loading WARM_CKPT and
# generating from it) imports every module and compiles every kernel the commands use, so
# the limit bounds what a command does with its input, not the imports. Prints one JSON
# object: per case the exit code, stderr, whether a MemoryError was raised, any other
# exception, and the peak resident memory of the command itself (VmHWM, reset before each
# case). Linux only (/proc).

def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def import_onnx_main(argv: list[str]) -> int:
    """``import-onnx FILE``: import FILE and run it on three tokens, as a command would;
    OnnxImportError is the clean error (exit code 2)."""
    import sys

    import numpy as np

    from lstmlab.interop import OnnxImportError, import_onnx
    try:
        import_onnx(argv[0]).run({"tokens": np.zeros((3, 1), np.int64)})
    except OnnxImportError as exc:
        print(f"import-onnx: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_case(argv: list[str]) -> int:
    import numpy as np

    from lstmlab.cli import main
    if argv[0] == "import-onnx":
        return import_onnx_main(argv[1:])
    if argv[0] == "allocate-mb":
        return int(np.ones(int(argv[1]) * MB, np.uint8).sum() == 0)
    return main(argv)


def _bounded(limit_mb: int, argv: list[str]) -> dict:
    import contextlib
    import io
    import resource

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := the current resident size, so it measures this case alone
    rss0 = _status("VmRSS")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _status("VmSize") + limit_mb * MB
    out = {"rc": None, "stderr": "", "memory_error": False, "exception": None}
    err = io.StringIO()
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            out["rc"] = _run_case(argv)
    except MemoryError:
        out["memory_error"] = True
    except Exception as exc:  # reported, so that the test names it
        out["exception"] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    out["stderr"] = err.getvalue()
    out["peak_mb"] = round((_status("VmHWM") - rss0) / MB, 1)
    return out


def _bounded_cases(limit_mb: int, warm_ckpt: str, cases: dict) -> dict:
    import contextlib
    import io

    import lstmlab.interop.onnx_import  # noqa: F401  (imports onnx if installed)
    from lstmlab.cli import main
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["generate", warm_ckpt, "--length", "3", "--seed", "0"]) == 0
    return {name: _bounded(limit_mb, argv) for name, argv in cases.items()}


if __name__ == "__main__":
    import sys

    limit_mb, warm, cases = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    print(json.dumps(_bounded_cases(limit_mb, warm, cases)))
