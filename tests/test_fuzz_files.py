"""Property-based fuzzing of every reader of a user's file.

Random and mutated inputs give either a result or the reader's documented exception —
never another exception type, a hang or more memory than stated:

* ``load_checkpoint``, ``load_charlm``, ``Forecaster.load``, ``SequenceClassifier.load``:
  ``CheckpointError``
* ``import_onnx``: ``OnnxImportError`` (and ``run`` on what imports: a ``ValueError``)
* ``read_csv_table``, ``read_series``: ``SeriesError``; ``read_sequence_csv``,
  ``read_ts``: ``SequenceDataError``; ``read_text_files``: ``DataError``

The memory bound is 64 MB of traced allocations (tracemalloc sees NumPy's too) per call.
The inputs are a few KB, so that is far above what a correct reader needs and far below
what a size read from the input and trusted would cost. A hang shows as Hypothesis'
deadline (seconds, for calls that take milliseconds). Each test draws at most a few
hundred examples; the whole file runs in about half a minute.
"""

import io
import json
import os
import tracemalloc
import zipfile
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import hostile_files as hf  # noqa: E402
from lstmlab import _files  # noqa: E402
from lstmlab.classify.data import SequenceDataError, read_sequence_csv, read_ts  # noqa: E402
from lstmlab.cli import main  # noqa: E402
from lstmlab.data.text import DataError, read_text_files  # noqa: E402
from lstmlab.forecast.data import SeriesError, read_csv_table, read_series  # noqa: E402
from lstmlab.training.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from lstmlab.training.lm import load_charlm  # noqa: E402

MEMORY_BOUND = 64 * 10 ** 6

# The same examples on every run, so the suite is deterministic; LSTMLAB_FUZZ_EXAMPLES=2000
# explores with that many fresh random examples per test instead.
EXPLORE = int(os.environ.get("LSTMLAB_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXPLORE or 150, derandomize=not EXPLORE, database=None,
                deadline=timedelta(seconds=5),
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
FEW = settings(FUZZ, max_examples=EXPLORE or 60)


@contextmanager
def memory_bound(limit=MEMORY_BOUND):
    """Fails when the block's peak of traced allocations (NumPy's included) exceeds ``limit``."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield
    finally:
        peak = tracemalloc.get_traced_memory()[1] - base
        if started:
            tracemalloc.stop()
    assert peak < limit, f"peak {peak:,} bytes"


def result_or(error, fn, *args, **kwargs):
    """``fn(*args)``: its result, or None when it raised ``error``; any other exception fails."""
    with memory_bound():
        try:
            return fn(*args, **kwargs)
        except error:
            return None


# -- checkpoints ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz_ckpt")
    (d / "corpus.txt").write_text("the forget gate keeps the cell state.\n" * 300)
    assert main(["train", str(d / "corpus.txt"), "--out", str(d / "run"), "--steps", "2",
                 "--hidden", "8", "--layers", "2", "--embed", "4", "--seq-len", "10",
                 "--batch-size", "4", "--quiet"]) == 0
    return d


def _good(d) -> Path:
    return d / "run" / "last.ckpt"


def _load_every_way(path):
    meta_arrays = result_or(CheckpointError, load_checkpoint, path)
    loaded = result_or(CheckpointError, load_charlm, path)
    if loaded is not None:  # whatever loads, works
        model, vocab, _ = loaded
        logits, _ = model.forward(np.zeros((2, 1), np.int64))
        assert logits.shape == (2, 1, len(vocab))
    return meta_arrays


edits = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                 max_size=8)


@FUZZ
@given(edits=edits, cut=st.none() | st.floats(0, 1), tail=st.binary(max_size=64))
def test_mutated_checkpoint_bytes(ckpt_dir, edits, cut, tail):
    raw = bytearray(_good(ckpt_dir).read_bytes())
    for where, value in edits:
        raw[int(where * len(raw))] = value
    if cut is not None:
        raw = raw[: int(cut * len(raw))] + tail
    path = ckpt_dir / "mutated.ckpt"
    path.write_bytes(bytes(raw))
    _load_every_way(path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12)


def _paths(meta, prefix=()):
    """Every (key path) into the nested dicts of ``meta``."""
    for k, v in meta.items():
        yield prefix + (k,)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


def _parent(meta, path):
    """The dict of ``meta`` that holds the last key of ``path``; None where an earlier
    change left no dict on the way to it."""
    parent = meta
    for k in path[:-1]:
        parent = parent.get(k) if isinstance(parent, dict) else None
    return parent if isinstance(parent, dict) else None


@FUZZ
@given(data=st.data())
def test_mutated_checkpoint_descriptions(ckpt_dir, data):
    """A field of meta.json (any depth) replaced by a random JSON value, or removed; model
    sizes pushed to the extremes."""
    members = hf.read_members(_good(ckpt_dir))
    meta = json.loads(members["meta.json"])
    paths = sorted(_paths(meta))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = _parent(meta, path)
        if parent is None:
            continue
        how = data.draw(st.sampled_from(["value", "delete", "size"]))
        if how == "delete":
            parent.pop(path[-1], None)
        elif how == "size":
            parent[path[-1]] = data.draw(st.sampled_from([0, 1, 2, 10 ** 6, 2 ** 31, 2 ** 63, -1]))
        else:
            parent[path[-1]] = data.draw(json_values)
    members["meta.json"] = json.dumps(meta).encode()
    path = hf.write_zip(ckpt_dir / "meta.ckpt", [hf.stored(n, d) for n, d in members.items()])
    _load_every_way(path)


member_names = st.sampled_from(["meta.json", "arrays/param/embed.weight.npy",
                                "arrays/param/head.bias.npy", "arrays/x.npy", "other"])


@FUZZ
@given(members=st.lists(st.tuples(member_names, st.binary(max_size=300),
                                  st.sampled_from([0, 8, 12, 14, 99]),
                                  st.integers(0, 2 ** 32 - 1), st.booleans(),
                                  st.sampled_from([0, 1, 8, 0x41])),
                        max_size=5))
def test_random_zip_archives(ckpt_dir, members):
    """Hand-made archives: any member names, methods, declared sizes, CRCs and flags."""
    parts = []
    for name, data, method, size, honest, flags in members:
        if honest:
            part = hf.deflated(name, data) if method == 8 else hf.stored(name, data, flags)
        else:
            part = (name, data, method, size, 0, flags)
        parts.append(part)
    path = hf.write_zip(ckpt_dir / "zip.ckpt", parts)
    _load_every_way(path)


npy_dicts = st.fixed_dictionaries({
    "descr": st.sampled_from(["<f4", "<f8", "|b1", "<i8", "|O", "<U2", "<c8", "V8",
                              "[('a', '<f4')]", "<M8[s]", ">f4", "|u1"]),
    "fortran_order": st.booleans() | st.integers(),
    "shape": st.lists(st.integers(-3, 2 ** 40), max_size=4).map(tuple) | st.text(max_size=5),
})


@FUZZ
@given(header=npy_dicts, junk=st.binary(max_size=16), extra=st.integers(0, 64))
def test_random_npy_headers(ckpt_dir, header, junk, extra):
    """A param array replaced by a .npy member with any header and some data."""
    text = repr(header).replace('"', "")
    text = text + " " * (64 - (10 + len(text) + 1) % 64) + "\n"
    raw = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode() + junk
    raw += bytes(extra)
    members = hf.read_members(_good(ckpt_dir))
    members["arrays/param/head.bias.npy"] = raw
    path = hf.write_zip(ckpt_dir / "npy.ckpt", [hf.stored(n, d) for n, d in members.items()])
    _load_every_way(path)


@pytest.fixture(scope="module")
def other_kinds(tmp_path_factory):
    """A classifier and a forecaster checkpoint (tiny, untrained)."""
    from lstmlab.classify.model import SequenceClassifier
    from lstmlab.forecast.model import ForecastConfig, Forecaster
    from lstmlab.forecast.windows import Split, WindowScaler
    from lstmlab.layers.seqnet import SequenceNet, SequenceNetConfig
    from lstmlab.training.supervised import FitConfig
    d = tmp_path_factory.mktemp("fuzz_kinds")
    rng = np.random.default_rng(0)
    net = SequenceNet(SequenceNetConfig(input_size=2, output_size=3, hidden_size=4), rng=rng)
    SequenceClassifier(net, ["a", "b", "c"], ["x", "y"], np.zeros(2), np.ones(2)).save(
        d / "classifier.ckpt")
    fnet = SequenceNet(SequenceNetConfig(input_size=1, output_size=2, hidden_size=3), rng=rng)
    scaler = WindowScaler(x_mean=np.zeros(1), x_std=np.ones(1), y_mean=np.zeros(2),
                          y_std=np.ones(2))
    Forecaster(fnet, scaler, ForecastConfig(lookback=4, horizon=2), ["y"], None,
               Split(20, 12, 4, 4), FitConfig()).save(d / "forecaster.ckpt")
    return d


@FEW
@given(kind=st.sampled_from(["classifier", "forecaster"]), data=st.data())
def test_mutated_classifier_and_forecaster_descriptions(other_kinds, kind, data):
    from lstmlab.classify.model import SequenceClassifier
    from lstmlab.forecast.model import Forecaster
    members = hf.read_members(other_kinds / f"{kind}.ckpt")
    meta = json.loads(members["meta.json"])
    paths = sorted(_paths(meta))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        parent = _parent(meta, path)
        if parent is not None:
            parent[path[-1]] = data.draw(json_values | st.sampled_from([0, 10 ** 6, 2 ** 62]))
    members["meta.json"] = json.dumps(meta).encode()
    path = hf.write_zip(other_kinds / "m.ckpt", [hf.stored(n, d) for n, d in members.items()])
    loader = SequenceClassifier.load if kind == "classifier" else Forecaster.load
    result_or(CheckpointError, loader, path)


# -- ONNX -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onnx_model(ckpt_dir):
    pytest.importorskip("onnx")
    path = ckpt_dir / "m.onnx"
    assert main(["export", str(_good(ckpt_dir)), "--format", "onnx", "--out", str(path)]) == 0
    return path.read_bytes()


def _import_and_run(model):
    from lstmlab.interop import OnnxImportError, import_onnx
    imported = result_or(OnnxImportError, import_onnx, model)
    if imported is not None and imported.inputs == ["tokens"]:
        result_or(ValueError, imported.run, {"tokens": np.zeros((3, 1), np.int64)})


@FUZZ
@given(edits=edits, cut=st.none() | st.floats(0, 1), tail=st.binary(max_size=64))
def test_mutated_onnx_bytes(onnx_model, edits, cut, tail):
    raw = bytearray(onnx_model)
    for where, value in edits:
        raw[int(where * len(raw))] = value
    if cut is not None:
        raw = raw[: int(cut * len(raw))] + tail
    _import_and_run(bytes(raw))


@FUZZ
@given(data=st.data())
def test_mutated_onnx_graphs(onnx_model, data):
    """Structural edits: nodes dropped or swapped, inputs renamed, attributes and
    initializer dims, types and data replaced, metadata rewritten."""
    import onnx
    from onnx import helper
    m = onnx.load_model_from_string(onnx_model)
    g = m.graph
    names = sorted({i for n in g.node for i in n.input} | {o for n in g.node for o in n.output})
    for _ in range(data.draw(st.integers(1, 4))):
        how = data.draw(st.sampled_from(["drop", "swap", "rename", "attr", "dims", "dtype",
                                         "raw", "meta"]))
        if how == "drop" and len(g.node):
            del g.node[data.draw(st.integers(0, len(g.node) - 1))]
        elif how == "swap" and len(g.node) > 1:
            i, j = data.draw(st.lists(st.integers(0, len(g.node) - 1), min_size=2, max_size=2))
            a, b = onnx.NodeProto(), onnx.NodeProto()
            a.CopyFrom(g.node[i])
            b.CopyFrom(g.node[j])
            g.node[i].CopyFrom(b)
            g.node[j].CopyFrom(a)
        elif how == "rename" and len(g.node):
            node = g.node[data.draw(st.integers(0, len(g.node) - 1))]
            if len(node.input):
                k = data.draw(st.integers(0, len(node.input) - 1))
                node.input[k] = data.draw(st.sampled_from(names + ["", "nowhere"]))
        elif how == "attr" and len(g.node):
            node = g.node[data.draw(st.integers(0, len(g.node) - 1))]
            key = data.draw(st.sampled_from(["hidden_size", "direction", "layout", "clip",
                                             "activations", "axis", "perm", "axes", "to",
                                             "input_forget", "bogus"]))
            value = data.draw(st.integers(-3, 2 ** 40) | st.floats(allow_nan=True)
                              | st.text(max_size=12)
                              | st.lists(st.integers(-4, 4), min_size=1, max_size=4)
                              | st.lists(st.sampled_from(["Tanh", "Sigmoid", "Relu", "x"]),
                                         min_size=1, max_size=6))
            kept = [a for a in node.attribute if a.name != key]
            del node.attribute[:]
            node.attribute.extend(kept)
            node.attribute.append(helper.make_attribute(key, value))
        elif how in ("dims", "dtype", "raw") and len(g.initializer):
            t = g.initializer[data.draw(st.integers(0, len(g.initializer) - 1))]
            if how == "dims":
                del t.dims[:]
                t.dims.extend(data.draw(st.lists(st.integers(-2, 2 ** 40), max_size=4)))
            elif how == "dtype":
                t.data_type = data.draw(st.integers(0, 30))
            else:
                t.raw_data = data.draw(st.binary(max_size=64))
        elif how == "meta":
            del m.metadata_props[:]
            for key in data.draw(st.lists(st.sampled_from(["vocab", "lstmlab_config"]),
                                          max_size=2, unique=True)):
                p = m.metadata_props.add()
                p.key, p.value = key, data.draw(st.sampled_from(
                    ['["a"]', "[1, 2]", "{", "[" * 5000, '{"batch_first": 1}', "[]", "null"]))
    _import_and_run(m)
    from lstmlab.interop import OnnxImportError, import_onnx
    imported = result_or(OnnxImportError, import_onnx, m)
    if imported is not None and imported.nodes:
        result_or(OnnxImportError, imported.to_layer)
        result_or(OnnxImportError, imported.pieces)


# -- CSV, .ts and text ------------------------------------------------------------------------

csv_text = st.text(alphabet=st.sampled_from(list('ab,\n\r"0123456789.-e NAna?tyidlx\t\x00')),
                   max_size=300)


@FUZZ
@given(text=csv_text, raw=st.booleans(), junk=st.binary(max_size=40))
def test_csv_readers(tmp_path_factory, text, raw, junk):
    path = tmp_path_factory.getbasetemp() / "fuzz.csv"
    path.write_bytes(junk if raw else text.encode())
    table = result_or(SeriesError, read_csv_table, path)
    if table is not None:
        header, rows, lines = table
        assert all(len(r) == len(header) for r in rows) and len(rows) == len(lines)
    for target in ("y", "a"):
        result_or(SeriesError, read_series, path, target, time="t", missing="interpolate")
    result_or(SequenceDataError, read_sequence_csv, path, time_col="t")
    result_or(SequenceDataError, read_sequence_csv, path, label_col=None, missing="ffill")


ts_lines = st.sampled_from([
    "@problemName p", "@univariate true", "@classLabel true a b", "@classLabel false",
    "@classLabel true", "@timeStamps true", "@targetLabel true", "@data", "@dimensions 2",
    "1,2,3:a", "1,2:3,4:b", "?,1:a", "1:2:3", ":a", "a", "", "# c", "(1,2):a", "1,,2:b",
    "nan,1e400:a", "1," * 50 + "1:b", "x", ":", "@",
])


@FUZZ
@given(lines=st.lists(ts_lines, max_size=12), crlf=st.booleans())
def test_ts_reader(tmp_path_factory, lines, crlf):
    path = tmp_path_factory.getbasetemp() / "fuzz.ts"
    path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode())
    for missing in ("refuse", "interpolate"):
        data = result_or(SequenceDataError, read_ts, path, missing=missing, require_labels=False)
        if data is not None:
            assert len(data.x) == len(data.ids) and data.x
            assert all(s.ndim == 2 and s.shape[1] == data.num_features for s in data.x)


def _reference_text(raw: bytes) -> str | None:
    """What the whole-file reader made of ``raw``: its text, or None for an error."""
    if not raw or b"\x00" in raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text[1:] if text.startswith("\ufeff") else text
    return text or None


@FUZZ
@given(raw=st.binary(max_size=64)
       | st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
       bom=st.booleans(), chunk=st.integers(1, 9), max_chars=st.none() | st.integers(1, 50))
def test_text_reader_in_chunks_agrees_with_reading_whole(tmp_path_factory, raw, bom, chunk,
                                                          max_chars):
    """Chunked reading gives what decoding the whole file gives (or stops at max_chars),
    and errors name the same byte offset, whatever the chunk size."""
    raw = (b"\xef\xbb\xbf" if bom else b"") + raw
    path = tmp_path_factory.getbasetemp() / "fuzz.txt"
    path.write_bytes(raw)
    with mock.patch.object(_files, "CHUNK_BYTES", chunk):
        got = result_or(DataError, read_text_files, path, max_chars=max_chars)
        if max_chars is None:
            assert got == _reference_text(raw)
        elif got is not None:
            assert _reference_text(raw) is None or _reference_text(raw)[:max_chars] == got
        if got is None and max_chars is None:
            try:
                read_text_files(path)
            except DataError as exc:
                msg = str(exc)
            # the first problem in reading order: a NUL byte is found in its chunk before
            # the chunk is decoded, so either may come first
            if "NUL byte" in msg:
                assert f"byte offset {raw.index(0)})" in msg
            elif "not valid UTF-8" in msg:
                start = _decode_error_start(raw)
                assert f"at byte offset {start} " in msg, (msg, start)
            else:
                assert not raw.removeprefix(b"\xef\xbb\xbf") and "is empty" in msg, msg


def _decode_error_start(raw: bytes) -> int:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    raise AssertionError("decodes")


def test_the_memory_bound_can_fail():
    """``memory_bound`` sees NumPy's allocations."""
    with pytest.raises(AssertionError, match="peak"):
        with memory_bound(10 ** 6):
            np.ones(10 ** 6)


def test_zip_reader_reads_what_zipfile_reads(ckpt_dir):
    """The checked reader gives the arrays NumPy's own reader gives."""
    _, arrays = load_checkpoint(_good(ckpt_dir))
    with zipfile.ZipFile(_good(ckpt_dir)) as zf:
        for name, arr in arrays.items():
            ref = np.lib.format.read_array(io.BytesIO(zf.read(f"arrays/{name}.npy")))
            np.testing.assert_array_equal(arr, ref)
            assert arr.dtype == ref.dtype and arr.shape == ref.shape
