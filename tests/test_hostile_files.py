"""Hostile files, each probed as a user and an attacker would.

Every kind of hostile file is a case here: the CLI answers with one line on stderr and
exit code 2, the library with its own exception (CheckpointError, DataError, SeriesError,
OnnxImportError), never a traceback. ``test_memory_of_each_hostile_file`` runs each case in
a subprocess whose address space may grow by at most 200 MB (RLIMIT_AS) and asserts that it
still ends in the clean error: no MemoryError, no kill. The files are made by
``hostile_files.py`` from a small checkpoint trained here.
"""

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import hostile_files as hf
from lstmlab import _files
from lstmlab.cli import main
from lstmlab.data.text import DataError, read_text_files
from lstmlab.forecast.data import SeriesError, read_csv_table, read_series
from lstmlab.training import checkpoint
from lstmlab.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lstmlab.training.lm import load_charlm

SRC = str(Path(__file__).resolve().parents[1] / "src")
HERE = Path(__file__).resolve().parent
MEMORY_LIMIT_MB = 200
CORPUS = "the cell state forgets and the gate opens.\n" * 400
LINUX = sys.platform.startswith("linux")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trained char-LM run (LSTM 1x16, with optimizer buffers and the carried state)."""
    d = tmp_path_factory.mktemp("hostile")
    (d / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    assert main(["train", str(d / "corpus.txt"), "--out", str(d / "run"), "--steps", "2",
                 "--hidden", "16", "--layers", "1", "--embed", "8", "--seq-len", "10",
                 "--batch-size", "4", "--quiet"]) == 0
    return d


def good(run) -> Path:
    return run / "run" / "last.ckpt"


def resume_dir(run, name, ckpt) -> Path:
    d = run / name
    d.mkdir(exist_ok=True)
    (d / "last.ckpt").write_bytes(Path(ckpt).read_bytes())
    return d


# Each case: (id, make(run) -> argv of the CLI, pattern of the one-line error).
CASES = [
    ("num_layers_million",
     lambda r: ["generate", str(hf.num_layers_million(good(r), r / "layers.ckpt"))],
     r"num_layers=1000000.*implies [\d,]+ parameters, but its param/ arrays hold 2,025"),
    ("hidden_8000",
     lambda r: ["generate", str(hf.hidden_8000(good(r), r / "hidden.ckpt"))],
     r"hidden_size=8000.*implies [\d,]+ parameters"),
    ("npy_bomb_generate",
     lambda r: ["generate", str(hf.npy_bomb(good(r), r / "bomb.ckpt"))],
     r"declares 1,07[\d,]+ bytes of contents in a file of [\d,]+; .*zip bomb"),
    ("npy_bomb_export",
     lambda r: ["export", str(hf.npy_bomb(good(r), r / "bomb.ckpt")), "--format", "torch",
                "--out", str(r / "x.safetensors")],
     r"zip bomb"),
    ("meta_bomb",
     lambda r: ["generate", str(hf.meta_bomb(good(r), r / "metabomb.ckpt"))],
     r"declares 31[\d,]+ bytes of contents"),
    ("train_dev_zero", lambda r: ["train", "/dev/zero", "--out", str(r / "o1"), "--steps", "1"],
     r"'/dev/zero' is a character device, not a text file"),
    ("train_dev_zero_max_chars",
     lambda r: ["train", "/dev/zero", "--out", str(r / "o2"), "--max-chars", "100"],
     r"'/dev/zero' is a character device"),
    ("evaluate_dev_zero", lambda r: ["evaluate", str(good(r)), "/dev/zero"],
     r"'/dev/zero' is a character device, not a text file"),
    ("generate_dev_zero", lambda r: ["generate", "/dev/zero"],
     r"'/dev/zero' is a character device, not a checkpoint"),
    ("inspect_file_dev_zero",
     lambda r: ["inspect", str(good(r)), "--file", "/dev/zero", "--out", str(r / "insp")],
     r"'/dev/zero' is a character device, not a text file"),
    ("forecast_train_dev_zero", lambda r: ["forecast", "train", "/dev/zero", "--target", "y",
                                                 "--out", str(r / "f")],
     r"'/dev/zero' is a character device, not a CSV file"),
    ("classify_train_dev_zero", lambda r: ["classify", "train", "/dev/zero", "--out", str(r / "c")],
     r"'/dev/zero' is a character device, not a CSV file"),
    ("deep_meta", lambda r: ["generate", str(hf.deep_meta(good(r), r / "deep.ckpt"))],
     r"meta.json nests too deeply"),
    ("compression_method_99",
     lambda r: ["generate", str(hf.unknown_method(good(r), r / "m99.ckpt"))],
     r"member 'arrays/param/embed.weight.npy' uses compression method 99"),
    ("encrypted_member", lambda r: ["generate", str(hf.encrypted(good(r), r / "enc.ckpt"))],
     r"member 'arrays/param/embed.weight.npy' is encrypted"),
    ("no_train_key",
     lambda r: ["evaluate", str(hf.without_key(good(r), r / "notrain.ckpt", "train")),
                str(r / "corpus.txt")],
     r"the description has no 'train'"),
    ("no_data_key",
     lambda r: ["train", str(r / "corpus.txt"), "--resume", "--out",
                str(resume_dir(r, "nodata", hf.without_key(good(r), r / "nodata.ckpt", "data")))],
     r"the description has no 'data'"),
    ("text_length_not_a_number",
     lambda r: ["train", str(r / "corpus.txt"), "--resume", "--out",
                str(resume_dir(r, "nochars", hf.with_meta(
                    good(r), r / "nochars.ckpt", lambda m: m["data"].update(train_chars="17"))))],
     r"'train_chars' must be an integer >= 1, got '17'"),
    ("nan_param_generate",
     lambda r: ["generate", str(hf.non_finite_param(good(r), r / "nan.ckpt"))],
     r"nan.ckpt holds parameters .*: parameter 'head.weight' contains NaN or inf "
     r"\(first at index \(0, 0\)\)"),
    ("inf_param_evaluate",
     lambda r: ["evaluate", str(hf.non_finite_param(good(r), r / "inf.ckpt",
                                                    "arrays/param/rnn.Wh_l0.npy", float("inf"))),
                str(r / "corpus.txt")],
     r"parameter 'rnn.Wh_l0' contains NaN or inf"),
    ("nan_param_resume",
     lambda r: ["train", str(r / "corpus.txt"), "--resume", "--out",
                str(resume_dir(r, "nanres", hf.non_finite_param(good(r), r / "nanres.ckpt")))],
     r"parameter 'head.weight' contains NaN or inf"),
    # the optimizer's section, edited by hand: named as the checkpoint's, not as an option
    ("optimizer_lr_resume",
     lambda r: ["train", str(r / "corpus.txt"), "--resume", "--out",
                str(resume_dir(r, "optlr", hf.with_meta(
                    good(r), r / "optlr.ckpt", lambda m: m["optimizer"].update(lr="fast"))))],
     r"^lstmlab train: error: checkpoint .*optlr/last.ckpt: 'optimizer': lr must be a finite "
     r"real number, got 'fast'$"),
    ("optimizer_betas_resume",
     lambda r: ["train", str(r / "corpus.txt"), "--resume", "--out",
                str(resume_dir(r, "optbetas", hf.with_meta(
                    good(r), r / "optbetas.ckpt",
                    lambda m: m["optimizer"]["hyperparameters"].update(betas="x"))))],
     r"checkpoint .*optbetas/last.ckpt: 'optimizer': betas must be a pair"),
]

NEEDS_DEV_ZERO = {c[0] for c in CASES if "dev_zero" in c[0]}


def _skip_without_dev_zero(case_id):
    if case_id in NEEDS_DEV_ZERO and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this platform")


def _one_clean_line(err: str, pattern: str):
    import re
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("case_id,make,pattern", CASES, ids=[c[0] for c in CASES])
def test_cli_refuses_with_one_line(run, capsys, case_id, make, pattern):
    _skip_without_dev_zero(case_id)
    argv = make(run)
    capsys.readouterr()
    assert main(argv) == 2
    _one_clean_line(capsys.readouterr().err, pattern)


@pytest.mark.parametrize("maker", [hf.num_layers_million, hf.hidden_8000, hf.npy_bomb,
                                   hf.meta_bomb, hf.deep_meta, hf.unknown_method, hf.encrypted])
def test_library_raises_checkpoint_error(run, tmp_path, maker):
    path = maker(good(run), tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        load_charlm(path)


# -- ONNX -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onnx_files(run):
    onnx = pytest.importorskip("onnx")
    path = run / "m.onnx"
    assert main(["export", str(good(run)), "--format", "onnx", "--out", str(path)]) == 0
    raw = path.read_bytes()
    files = {"model": path}
    files["corrupt"] = run / "corrupt.onnx"
    files["corrupt"].write_bytes(raw[: len(raw) // 2] + b"\xff" * 64)
    m = onnx.load(path)
    nodes = list(m.graph.node)[::-1]
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    files["order"] = run / "order.onnx"
    onnx.save(m, files["order"])
    m = onnx.load(path)
    for p in m.metadata_props:
        if p.key == "vocab":
            p.value = "[not json"
    files["vocab"] = run / "vocab.onnx"
    onnx.save(m, files["vocab"])
    return files


ONNX_CASES = [("corrupt", "is corrupt: not a valid protobuf"),
              ("order", r"input 'lstm_out_\d+' is neither a graph input, a constant nor the "
                        r"output of an earlier node"),
              ("vocab", r"metadata_props\['vocab'\] is not valid JSON")]


@pytest.mark.parametrize("name,pattern", ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_onnx_import_raises_onnx_import_error(onnx_files, name, pattern):
    from lstmlab.interop import OnnxImportError, import_onnx
    with pytest.raises(OnnxImportError, match=pattern):
        import_onnx(onnx_files[name]).run({"tokens": np.zeros((3, 1), np.int64)})


def test_onnx_corrupt_bytes_and_special_files(onnx_files, tmp_path):
    from lstmlab.interop import OnnxImportError, import_onnx
    with pytest.raises(OnnxImportError, match="the bytes are not an ONNX model"):
        import_onnx(onnx_files["corrupt"].read_bytes())
    with pytest.raises(OnnxImportError, match="is a directory, not an ONNX model"):
        import_onnx(tmp_path)
    with pytest.raises(OnnxImportError, match="does not exist"):
        import_onnx(tmp_path / "missing.onnx")
    assert import_onnx(onnx_files["model"]).vocab  # the good one still imports


@pytest.mark.parametrize("source", ["bytes", "file"])
def test_an_empty_onnx_model_is_refused_on_import(tmp_path, source):
    # protobuf parses empty input as a model with no fields: the import succeeded and the
    # first use said "the model has no LSTM, RNN or GRU node"
    pytest.importorskip("onnx")
    from lstmlab.interop import OnnxImportError, import_onnx
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(OnnxImportError, match="no graph in .*empty or truncated"):
        import_onnx(b"" if source == "bytes" else path)


# -- memory ------------------------------------------------------------------------------------

def bounded(cases: dict, warm_ckpt, limit_mb=MEMORY_LIMIT_MB) -> dict:
    """Run each of ``cases`` (name -> argv of lstmlab's CLI, import-onnx or allocate-mb) in
    one fresh interpreter, each under an address-space limit of ``limit_mb`` beyond what
    was in use when it started (see hostile_files.py)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, str(HERE)]),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    proc = subprocess.run([sys.executable, str(HERE / "hostile_files.py"), str(limit_mb),
                           str(warm_ckpt), json.dumps(cases)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _sparse_gib(path) -> Path:
    """A 1 GiB file of NUL bytes that takes no disk space."""
    with open(path, "wb") as f:
        f.truncate(1 << 30)
    return path


MEMORY_CASES = CASES + [
    ("train_sparse_gib_of_nul",
     lambda r: ["train", str(_sparse_gib(r / "nul.txt")), "--out", str(r / "o3")],
     r"looks like a binary file \(NUL byte at byte offset 0\)"),
    ("onnx_corrupt", lambda r: ["import-onnx", str(r / "corrupt.onnx")], "not a valid protobuf"),
    ("onnx_order", lambda r: ["import-onnx", str(r / "order.onnx")], "topological order"),
    ("onnx_vocab", lambda r: ["import-onnx", str(r / "vocab.onnx")], "is not valid JSON"),
]


@pytest.fixture(scope="module")
def memory_results(run, request):
    """Every memory case's outcome, from one bounded interpreter."""
    if not LINUX:
        pytest.skip("measures with /proc and RLIMIT_AS (Linux)")
    cases = {}
    for case_id, make, _ in MEMORY_CASES:
        if case_id in NEEDS_DEV_ZERO and not os.path.exists("/dev/zero"):
            continue
        if case_id.startswith("onnx"):
            try:
                request.getfixturevalue("onnx_files")
            except pytest.skip.Exception:
                continue
        cases[case_id] = make(run)
    cases["allocate_400"] = ["allocate-mb", "400"]
    cases["allocate_100"] = ["allocate-mb", "100"]
    return bounded(cases, good(run))


@pytest.mark.parametrize("case_id,make,pattern", MEMORY_CASES, ids=[c[0] for c in MEMORY_CASES])
def test_memory_of_each_hostile_file(memory_results, case_id, make, pattern):
    if case_id not in memory_results:
        pytest.skip("needs /dev/zero or onnx")
    result = memory_results[case_id]
    assert result["exception"] is None and not result["memory_error"], result
    assert result["rc"] == 2, result
    _one_clean_line(result["stderr"], pattern)
    assert result["peak_mb"] < MEMORY_LIMIT_MB


def test_the_memory_limit_does_catch_a_blow_up(memory_results):
    """The measurement can fail: 400 MB allocated under the 200 MB limit is a MemoryError,
    and 100 MB is not."""
    assert memory_results["allocate_400"]["memory_error"]
    result = memory_results["allocate_100"]
    assert result["rc"] == 0 and 95 <= result["peak_mb"] < 110, result


# -- more checkpoint limits ------------------------------------------------------------------

def test_stored_meta_json_over_the_limit(run, tmp_path):
    members = hf.read_members(good(run))
    members["meta.json"] = members["meta.json"] + b" " * checkpoint.MAX_META_BYTES
    path = hf.write_zip(tmp_path / "m.ckpt", [hf.stored(n, d) for n, d in members.items()])
    with pytest.raises(CheckpointError, match=r"meta.json declares [\d,]+ bytes; a checkpoint's "
                                              r"is at most 4,194,304"):
        load_checkpoint(path)


def test_zip_directory_over_the_limit(tmp_path):
    members = [hf.stored("meta.json", b"{}")]
    members += [hf.stored(f"junk/{i:06d}", b"") for i in range(25_000)]
    path = hf.write_zip(tmp_path / "many.ckpt", members)
    with pytest.raises(CheckpointError, match=r"zip directory of [\d,]+ bytes \(25,001 members\)"):
        load_checkpoint(path)


def test_consistent_but_inflated_checkpoint_is_refused(run, tmp_path):
    """A description and arrays that agree (an all-zero 4 MB embedding) but inflate ~1000x:
    the ratio of contents to file size refuses it before anything is read."""
    members = hf.read_members(good(run))
    meta = json.loads(members["meta.json"])
    V = meta["model"]["vocab_size"]
    E = (4 << 20) // (4 * V)
    meta["model"]["embed_dim"] = E
    members["meta.json"] = json.dumps(meta).encode()
    name = "arrays/param/embed.weight.npy"
    parts = [hf.stored(n, d) for n, d in members.items() if n != name]
    bomb = hf.deflated(name, hf.npy_header((V, E)) + bytes(4 * V * E))
    path = hf.write_zip(tmp_path / "c.ckpt", parts + [bomb])
    with pytest.raises(CheckpointError, match="more than 32 times its size"):
        load_checkpoint(path)


@pytest.mark.parametrize("header,message", [
    (hf.npy_header((10 ** 6,)), r"declares shape \(1000000,\) of float32 \(4,000,000 bytes\) "
                                r"but holds [\d,]+ bytes"),
    (hf.npy_header((2,), "|O"), "has dtype object"),
    (hf.npy_header((2,), "<U3"), "has dtype <U3"),
    (b"\x93NUMPY\x03\x00" + b"\x00" * 60, "npy format version"),
    (b"not an npy file at all", "is not a valid .npy array"),
])
def test_lying_npy_headers(run, tmp_path, header, message):
    members = hf.read_members(good(run))
    name = "arrays/param/head.bias.npy"
    members[name] = header + b"\x00" * 64
    path = hf.write_zip(tmp_path / "h.ckpt", [hf.stored(n, d) for n, d in members.items()])
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_a_deflated_checkpoint_still_loads(run, tmp_path):
    """lstmlab writes stored members; a checkpoint re-zipped with deflate loads the same."""
    path = tmp_path / "deflated.ckpt"
    with zipfile.ZipFile(good(run)) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
    meta0, arrays0 = load_checkpoint(good(run))
    meta1, arrays1 = load_checkpoint(path)
    assert meta0 == meta1 and arrays0.keys() == arrays1.keys()
    for k in arrays0:
        np.testing.assert_array_equal(arrays0[k], arrays1[k])
        assert arrays0[k].dtype == arrays1[k].dtype


def test_a_flipped_byte_in_a_deflated_member_is_corrupt(run, tmp_path):
    members = hf.read_members(good(run))
    name = "arrays/param/rnn.Wh_l0.npy"
    _, data, method, size, crc, flags = hf.deflated(name, members[name])
    data = bytearray(data)
    data[len(data) // 2] ^= 0x55
    parts = [(name, bytes(data), method, size, crc, flags) if n == name else hf.stored(n, d)
             for n, d in members.items()]
    path = hf.write_zip(tmp_path / "flip.ckpt", parts)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


@pytest.mark.parametrize("change,message", [
    (lambda m: m["model"].update(cell="transformer"), "'model' is not a valid CharLMConfig: cell must be"),
    (lambda m: m["model"].update(dtype="complex64"), "'model' is not a valid CharLMConfig"),
    (lambda m: m["model"].update(dtype=["f4"]), "'model' is not a valid CharLMConfig"),
    (lambda m: m.update(model=[1, 2]), "'model' must be a JSON object, got list"),
    (lambda m: m.update(vocab="abc"), "'vocab' is not a valid vocabulary"),
    (lambda m: m.update(vocab=m["vocab"][:-1]),
     r"'vocab' has \d+ characters, but model.vocab_size"),
    (lambda m: m["train"].update(seq_len="long"), "'train' is not a valid TrainConfig"),
    (lambda m: m.update(step=-1), "'step' must be an integer >= 0, got -1"),
    (lambda m: m.update(step="x" * 10_000), r"'step' must be an integer >= 0, got 'xxx[x]*\.\.\.$"),
    (lambda m: m.update(rng={"bit_generator": "os.system"}), "'rng' must be the state"),
    (lambda m: m.update(rng={"bit_generator": "PCG64", "state": 3}), "'rng' is not a valid PCG64"),
    (lambda m: m.update(has_state="yes"), "'has_state' must be true or false"),
    (lambda m: m["train"].update(batch_size=5), r"array state/0 must have shape \(1, 5, 16\)"),
    (lambda m: m["data"].update(fingerprint=None), "'data.fingerprint' must be a string"),
    (lambda m: m.update(best_val="low"), "'best_val' must be a number or null"),
    # float32 weights under a float64 description were read and widened without a word
    (lambda m: m["model"].update(dtype="float64"),
     "its param/ arrays are float32, but its model description says dtype 'float64'"),
])
def test_charlm_description_is_checked_field_by_field(run, tmp_path, change, message):
    path = hf.with_meta(good(run), tmp_path / "m.ckpt", change)
    with pytest.raises(CheckpointError, match=message):
        load_charlm(path)


def test_param_counts_match_the_layers():
    """checkpoint_kinds counts parameters without building a model; the layers' own
    registries must agree, for every cell and several shapes."""
    from lstmlab.layers.model import CharLM, CharLMConfig
    from lstmlab.layers.seqnet import SequenceNet, SequenceNetConfig
    from lstmlab.training.checkpoint_kinds import charlm_param_count, seqnet_param_count
    rng = np.random.default_rng(0)
    for cell in ("lstm", "rnn", "gru"):
        for _ in range(4):
            V, E, H, L, D, O = (int(v) for v in rng.integers(1, 9, size=6))
            cfg = CharLMConfig(vocab_size=V, embed_dim=E, hidden_size=H, num_layers=L, cell=cell)
            assert charlm_param_count(cfg) == CharLM(cfg, rng=rng).num_params()
            if cell == "gru":  # SequenceNet has no GRU
                continue
            scfg = SequenceNetConfig(input_size=D, output_size=O, hidden_size=H, num_layers=L,
                                     cell=cell)
            assert seqnet_param_count(scfg) == SequenceNet(scfg, rng=rng).num_params()


def test_forecaster_and_classifier_descriptions_are_checked(tmp_path):
    from lstmlab.classify.model import SequenceClassifier
    from lstmlab.forecast.model import Forecaster
    from lstmlab.layers.seqnet import SequenceNet, SequenceNetConfig
    net = SequenceNet(SequenceNetConfig(input_size=2, output_size=3, hidden_size=4),
                      rng=np.random.default_rng(0))
    arrays = checkpoint.param_arrays(net)
    huge = {**net.config.to_json(), "hidden_size": 10 ** 6}
    save_checkpoint(tmp_path / "c.ckpt", {"kind": "classifier", "model": huge, "fit": {},
                                          "classes": ["a", "b", "c"], "features": ["x", "y"],
                                          "scaler": {"mean": [0, 0], "std": [1, 1]}}, arrays)
    with pytest.raises(CheckpointError, match=r"hidden_size=1000000.*implies"):
        SequenceClassifier.load(tmp_path / "c.ckpt")
    save_checkpoint(tmp_path / "c2.ckpt", {"kind": "classifier", "model": net.config.to_json(),
                                           "fit": {}, "classes": ["a", "b"], "features": ["x", "y"],
                                           "scaler": {"mean": [0, 0], "std": [1, 1]}}, arrays)
    with pytest.raises(CheckpointError, match=r"'classes' must list 3 names"):
        SequenceClassifier.load(tmp_path / "c2.ckpt")
    # a forecaster's float32 weights under a float64 description (a resumed or predicting
    # run would have continued in the other precision without a word)
    save_checkpoint(tmp_path / "f64.ckpt", {"kind": "forecaster",
                                            "model": {**net.config.to_json(), "dtype": "float64"}},
                    arrays)
    with pytest.raises(CheckpointError, match=r"param/ arrays are float32, but its model "
                                              r"description says dtype 'float64'"):
        Forecaster.load(tmp_path / "f64.ckpt")
    save_checkpoint(tmp_path / "f.ckpt", {"kind": "forecaster", "model": huge}, arrays)
    with pytest.raises(CheckpointError, match=r"hidden_size=1000000.*implies"):
        Forecaster.load(tmp_path / "f.ckpt")


@pytest.mark.parametrize("change, message", [
    ({"csv_options": 5}, r"'csv_options' must be a JSON object, got int"),
    ({"csv_options": {"id_col": 5}}, r"'csv_options.id_col' must be a string, got int"),
    ({"csv_options": {"features": "x"}}, r"'csv_options.features' must be a list of strings"),
    ({"csv_options": {"missing": "zap"}}, r"'csv_options.missing' must be 'refuse', 'ffill'"),
    ({"csv_options": {"features_given": "no"}},
     r"'csv_options.features_given' must be true or false, got 'no'"),
    ({"znorm": "false"}, r"'znorm' must be true or false, got 'false'"),
    ({"class_counts": [1]}, r"'class_counts' must be null or a list of 3 integers >= 0"),
    ({"model": {"output_size": 3, "hidden_size": 4}},
     r"'model' is not a valid SequenceNetConfig: SequenceNetConfig.from_json: missing field "
     r"'input_size'; SequenceNetConfig takes the fields input_size \(required\), "),
    ({"model": {"input_size": 1, "output_size": 3, "hidden_size": 4, "layers": 2}},
     r"'model' is not a valid SequenceNetConfig: SequenceNetConfig.from_json: unknown field "
     r"'layers'; "),
], ids=["csv_options", "id_col", "features", "missing", "features_given", "znorm",
        "class_counts", "model_field_missing", "model_field_unknown"])
def test_a_classifiers_description_edited_by_hand_names_the_field(tmp_path, capsys, change,
                                                                   message):
    # csv_options that were not an object stopped classify predict with a traceback
    # (AttributeError), a wrong column name's type was reported as if an option were wrong,
    # and znorm "false" was read as true
    from lstmlab.classify.model import SequenceClassifier
    from lstmlab.layers.seqnet import SequenceNet, SequenceNetConfig
    net = SequenceNet(SequenceNetConfig(input_size=1, output_size=3, hidden_size=4),
                      rng=np.random.default_rng(0))
    path = tmp_path / "c.ckpt"
    save_checkpoint(path, {"kind": "classifier", "model": net.config.to_json(), "fit": {},
                           "classes": ["a", "b", "c"], "features": ["x"],
                           "scaler": {"mean": [0], "std": [1]}, **change},
                    checkpoint.param_arrays(net))
    with pytest.raises(CheckpointError, match=message):
        SequenceClassifier.load(path)
    data = tmp_path / "d.csv"
    data.write_text("id,x\n" + "".join(f"{i // 3},{i}\n" for i in range(6)))
    assert main(["classify", "predict", str(path), str(data)]) == 2
    _one_clean_line(capsys.readouterr().err, f"checkpoint {re.escape(str(path))}: " + message)


# -- text, CSV and .ts -------------------------------------------------------------------------

def test_max_chars_bounds_the_read(tmp_path):
    """Reading stops at --max-chars: a NUL byte 3 MiB in, past the limit, is never reached."""
    path = tmp_path / "long.txt"
    path.write_bytes(b"ab" * (3 << 19) + b"\x00")
    assert read_text_files(path, max_chars=10) == "ababababab"
    with pytest.raises(DataError, match="NUL byte at byte offset 3145728"):
        read_text_files(path)
    # several files: the limit spans them, and later files are not opened
    other = tmp_path / "other.txt"
    other.write_text("xyz", encoding="utf-8")
    assert read_text_files([other, path], max_chars=5) == "xyzab"
    assert read_text_files([other, tmp_path / "missing.txt"], max_chars=3) == "xyz"


def test_max_chars_on_the_command_line(run, tmp_path, capsys):
    path = tmp_path / "long.txt"
    path.write_bytes(CORPUS.encode() * 100 + b"\x00")
    assert main(["train", str(path), "--out", str(tmp_path / "o"), "--max-chars", "5000",
                 "--steps", "1", "--hidden", "8", "--layers", "1", "--seq-len", "10",
                 "--batch-size", "2"]) == 0
    assert "4,750 training and 250 validation characters" in capsys.readouterr().err


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 1 << 20])
def test_utf8_errors_are_placed_exactly_across_chunks(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(_files, "CHUNK_BYTES", chunk)
    path = tmp_path / "t.txt"
    text = "héllo\nwörld\n€uro\n"
    path.write_bytes("\ufeff".encode() + text.encode())
    assert read_text_files(path) == text
    assert read_text_files(path, max_chars=7) == text[:7]
    raw = text.encode()
    cut = raw.index("€".encode()) + 1  # inside the euro sign's three bytes
    path.write_bytes(raw[:cut] + b"\xff" + raw[cut + 1:])
    with pytest.raises(DataError, match=rf"byte 0xe2 at byte offset {cut - 1} \(line 3\)"):
        read_text_files(path)
    path.write_bytes(raw + b"\xe2\x82")  # a character cut off at the end
    with pytest.raises(DataError, match=rf"byte offset {len(raw)} \(line 4\).*unexpected end"):
        read_text_files(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifos_are_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match=r"is a FIFO \(named pipe\), not a text file"):
        read_text_files(fifo)
    with pytest.raises(SeriesError, match="is a FIFO"):
        read_csv_table(fifo)
    with pytest.raises(CheckpointError, match="is a FIFO"):
        load_checkpoint(fifo)


def test_csv_module_errors_are_series_errors(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("t,y\n1," + "9" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(SeriesError, match=r"wide\.csv'?, line 2: field larger than field limit"):
        read_csv_table(path)


def test_repeated_names_in_a_wide_header(tmp_path):
    """200,000 columns: the repeated-name check is linear (a quadratic one takes ~40 s)."""
    path = tmp_path / "dupes.csv"
    path.write_text(",".join(["a"] * 200_000) + "\n" + ",".join(["1"] * 200_000) + "\n",
                    encoding="utf-8")
    with pytest.raises(SeriesError, match=r"has 200000 columns of that name"):
        read_series(path, "a")


# -- what the fuzz suite found (kept as plain regression tests) -----------------------------

def test_a_csv_of_separators_only_is_empty(tmp_path):
    path = tmp_path / "commas.csv"
    path.write_text(",\n,,\n", encoding="utf-8")
    with pytest.raises(SeriesError, match=r"is empty \(no header, no rows\)"):
        read_csv_table(path)


@pytest.mark.parametrize("change,message", [
    (lambda m: m.update(kind=["charlm"]), None),  # not a kind: read, but checked as no kind
    (lambda m: m["model"].update(forget_bias=None), "forget_bias must be a finite number"),
    (lambda m: m["model"].update(forget_bias=float("inf")), "forget_bias must be a finite"),
])
def test_odd_kind_and_forget_bias(run, tmp_path, change, message):
    path = hf.with_meta(good(run), tmp_path / "m.ckpt", change)
    if message is None:
        meta, _ = load_checkpoint(path)
        assert meta["kind"] == ["charlm"]
        with pytest.raises(CheckpointError, match=r"holds a \['charlm'\] model"):
            load_charlm(path)
    else:
        with pytest.raises(CheckpointError, match=message):
            load_charlm(path)


def test_npy_header_that_numpy_cannot_tokenize(run, tmp_path):
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,"
    text += " " * (64 - (10 + len(text) + 1) % 64) + "\n"
    members = hf.read_members(good(run))
    members["arrays/param/head.bias.npy"] = (b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little")
                                             + text.encode())
    path = hf.write_zip(tmp_path / "t.ckpt", [hf.stored(n, d) for n, d in members.items()])
    with pytest.raises(CheckpointError, match="is not a valid .npy array"):
        load_checkpoint(path)


def test_onnx_tensors_and_inputs_found_by_fuzzing(onnx_files):
    import onnx
    from onnx import TensorProto

    from lstmlab.interop import OnnxImportError, import_onnx
    m = onnx.load(onnx_files["model"])
    complex_one = next(t for t in m.graph.initializer if t.name == "one")
    complex_one.data_type = TensorProto.COMPLEX128  # its 8 bytes read as half a complex
    with pytest.raises(OnnxImportError, match="initializer 'one'"):
        import_onnx(m)
    m = onnx.load(onnx_files["model"])
    absent = next(a.g for n in m.graph.node if n.op_type == "If"  # h0 when it is not fed
                  for a in n.attribute if a.name == "else_branch")
    shape = next(n for n in absent.node if n.op_type == "Shape")
    shape.input[0] = ""  # a required input left out
    with pytest.raises(OnnxImportError, match=f"Shape node '{shape.name}' failed"):
        import_onnx(m).run({"tokens": np.zeros((3, 1), np.int64)})
    m = onnx.load(onnx_files["model"])
    table = next(t for t in m.graph.initializer if t.name == "embedding_weight")
    table.data_type = TensorProto.INT32  # same 4-byte items, now integers
    with pytest.raises(OnnxImportError, match="the embedding table 'embedding_weight' must be"):
        import_onnx(m).pieces()


def test_a_zip_member_of_an_unknown_version_is_a_corrupt_checkpoint(tmp_path):
    """zipfile raises NotImplementedError for a version (or method) it does not know: a
    damaged byte in the central directory gives that, and it is a corrupt file to us."""
    path = tmp_path / "x.ckpt"
    save_checkpoint(path, {"kind": "test"}, {"w": np.zeros(3)})
    data = bytearray(path.read_bytes())
    at = data.rindex(b"PK\x01\x02")  # the last central directory entry
    data[at + 6] = 64  # "version needed to extract": 6.4
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
