"""What differs between Linux, macOS and Windows, x86-64 and arm64, checked here on any of
them: the encoding and line ends of redirected output, the errors a platform's files and
pipes give, Ctrl-C and BLAS threads in a data-parallel run, what pip and make install."""

import errno
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from seq_helpers import without_compile_notice
from test_cli_user_edges import _charlm

from lstmlab.cli import main

SRC = str(Path(__file__).resolve().parents[1] / "src")


class _Redirected(io.TextIOWrapper):
    """Standard output or error redirected to a file in a Windows code page, as Python sets
    it up there (``lstmlab generate > out.txt``); ``.data`` is the bytes written."""

    def __init__(self, encoding="cp1252", errors="strict", tty=False, newline=None):
        self.raw_bytes, self.tty = io.BytesIO(), tty
        super().__init__(self.raw_bytes, encoding=encoding, errors=errors, newline=newline)

    def isatty(self):
        return self.tty

    @property
    def data(self) -> bytes:
        self.flush()
        return self.raw_bytes.getvalue()


@pytest.fixture(scope="module")
def charlm_accents(tmp_path_factory):
    # ✓ is outside cp1252; é is in it, as byte 0xe9 (not UTF-8)
    return _charlm(tmp_path_factory.mktemp("lm"), "café, thé ✓ et crème; " * 60)


def test_generate_redirected_in_a_code_page_writes_utf8(charlm_accents, monkeypatch):
    # on Windows, 'lstmlab generate > out.txt' wrote 'é' as cp1252's byte 0xe9, a file that
    # 'lstmlab evaluate' refused as not UTF-8, and ended on '✓' with "cp1252 cannot write"
    monkeypatch.delenv("PYTHONIOENCODING", raising=False)
    out = _Redirected()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["generate", str(charlm_accents), "--prompt", "é ✓", "--length", "0"]) == 0
    assert out.data.decode("utf-8") == "é ✓\n"
    assert out.encoding == "cp1252"  # the stream is left as it was found


def test_an_error_redirected_in_a_code_page_is_written_in_utf8(tmp_path, monkeypatch):
    # on Windows, '2> log.txt' had the path of the message as '\u2713' escapes
    monkeypatch.delenv("PYTHONIOENCODING", raising=False)
    err = _Redirected(errors="backslashreplace")
    monkeypatch.setattr(sys, "stderr", err)
    missing = tmp_path / "crème ✓.ckpt"
    assert main(["generate", str(missing)]) == 2
    assert str(missing) in err.data.decode("utf-8")


def test_utf8_when_redirected_lives_with_the_other_stream_helpers(monkeypatch):
    # the helper sat in the command line's module, away from the stream helpers it belongs
    # with; used alone, it makes a redirected stream UTF-8 with LF and restores it after
    from lstmlab._streams import utf8_when_redirected

    monkeypatch.delenv("PYTHONIOENCODING", raising=False)
    monkeypatch.setattr(os, "linesep", "\r\n")
    out, terminal = _Redirected(), _Redirected(tty=True)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", terminal)
    with utf8_when_redirected():
        print("é ✓")
        assert terminal.encoding == "cp1252"
    assert out.data == "é ✓\n".encode("utf-8") and out.encoding == "cp1252"


def _code_page_stdouts(monkeypatch):
    """Standard output in cp1252 as a terminal, then as a pipe under PYTHONIOENCODING=cp1252:
    each stream, once it is sys.stdout."""
    for stream, environ in ((_Redirected(tty=True), {}),
                            (_Redirected(), {"PYTHONIOENCODING": "cp1252"})):
        monkeypatch.delenv("PYTHONIOENCODING", raising=False)
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(sys, "stdout", stream)
        yield stream


def test_a_terminal_and_pythonioencoding_keep_their_encoding(charlm_accents, monkeypatch,
                                                             capsys):
    for stream in _code_page_stdouts(monkeypatch):
        assert main(["generate", str(charlm_accents), "--prompt", "é", "--length", "0"]) == 0
        assert stream.data == b"\xe9\n"


def test_a_character_outside_a_terminals_code_page_is_written_as_a_question_mark(
        charlm_accents, tmp_path, monkeypatch):
    # a POSIX terminal in a Latin-1 locale (or PYTHONIOENCODING=cp1252) ended the command
    # with UnicodeEncodeError at the first character it lacks, as the C̃ of demo's summary;
    # here evaluate's line naming a stand-in character (generated text stays strict)
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("café → thé\n", encoding="utf-8")
    for stream in _code_page_stdouts(monkeypatch):
        assert main(["evaluate", str(charlm_accents), str(held_out), "--unknown",
                     "replace"]) == 0
        assert b"'?' (U+2192)" in stream.data
        assert stream.errors == "strict"  # restored after the command


def _opening_a_folder_is_refused(monkeypatch):
    """``os.open`` as on Windows, where opening a folder fails with EACCES."""
    real_open = os.open

    def windows_open(path, flags, *args, **kwargs):
        if os.path.isdir(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", windows_open)


@pytest.mark.parametrize("argv, said", [
    (["generate", "{ckpt}", "--prompt-file", "{d}"], "'{d}' is a directory, not a text file"),
    (["evaluate", "{ckpt}", "{d}"], "'{d}' is a directory, not a text file"),
])
def test_a_folder_given_for_a_file_is_named_as_a_folder_on_windows(
        charlm_accents, tmp_path, monkeypatch, capsys, argv, said):
    # on Windows it said "cannot read text file 'notes': Permission denied"
    _opening_a_folder_is_refused(monkeypatch)
    names = {"d": str(tmp_path), "ckpt": str(charlm_accents)}
    assert main([a.format(**names) for a in argv]) == 2
    assert said.format(**names) in capsys.readouterr().err


def _in_an_ascii_locale(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a Python whose default text encoding is the C locale's ASCII (the
    default that Windows sets to its code page), not UTF-8."""
    env = dict(os.environ, PYTHONPATH=SRC, PYTHONUTF8="0", LC_ALL="C", PYTHONCOERCECLOCALE="0")
    env.pop("PYTHONIOENCODING", None)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          encoding="utf-8", errors="replace")


def test_an_experiments_results_file_is_read_as_utf8_in_any_locale(tmp_path):
    # a results.json annotated by hand in UTF-8 was "not a readable lstmlab experiment
    # ('ascii' codec can't decode byte 0xc3 ...)" where the locale is not UTF-8
    from lstmlab.insight.experiments import ExperimentConfig, save_results

    cfg = ExperimentConfig(task="copy", lengths=(5,))
    path = tmp_path / "results.json"
    save_results(path, cfg, [])
    stored = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**stored, "note": "réglé ✓"}, ensure_ascii=False),
                    encoding="utf-8")
    run = _in_an_ascii_locale(
        "from lstmlab.insight.experiments import ExperimentConfig, load_results; "
        f"print(load_results({str(path)!r}, ExperimentConfig(task='copy', lengths=(5,))))")
    assert (run.returncode, run.stdout, run.stderr) == (0, "[]\n", "")


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
@pytest.mark.parametrize("system, python, venv_python", [
    ("Windows_NT", "python", ".venv/Scripts/python.exe"),
    (None, "python3", ".venv/bin/python"),
])
def test_make_demo_finds_the_venvs_python_on_each_system(tmp_path, system, python, venv_python):
    # on Windows 'make demo' created .venv, then ran .venv/bin/python, which a Windows venv
    # does not have (its interpreter is .venv/Scripts/python.exe)
    root = Path(SRC).parent
    for name in ("Makefile", "pyproject.toml", "requirements/run.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items()  # (not a sub-make of `make test`'s)
           if k not in ("OS", "PYTHON", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    if system:
        env["OS"] = system  # as Windows sets it in every process's environment
    run = subprocess.run(["make", "--no-print-directory", "-n", "demo"], cwd=tmp_path, env=env,
                         capture_output=True, encoding="utf-8")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"{python} -m venv .venv"
    assert lines[-1] == f"{venv_python} -m lstmlab demo"


class _ClosedPipeOnWindows:
    """stdout whose reader has gone away (``lstmlab generate ... | more``, quit early), as
    Windows may report it: OSError EINVAL rather than BrokenPipeError."""

    def __init__(self, room):
        self.room = room  # characters the reader takes before it goes

    def write(self, text):
        if len(text) > self.room:
            raise OSError(errno.EINVAL, "Invalid argument")
        self.room -= len(text)
        return len(text)

    def flush(self):
        pass


def test_a_reader_that_goes_away_stops_the_output_quietly_on_windows(charlm_accents,
                                                                     monkeypatch, capsys):
    # on Windows it said "lstmlab generate: error: [Errno 22] Invalid argument", exit 2
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(sys, "stdout", _ClosedPipeOnWindows(3))
    argv = ["generate", str(charlm_accents), "--prompt", "thé", "--length", "50", "--seed", "0"]
    assert main(argv) == 141
    assert without_compile_notice(capsys.readouterr().err) == ""


def test_ctrl_c_on_windows_leaves_the_processes_of_a_run_to_stop_themselves(monkeypatch):
    # the console gives Ctrl-C to the launcher and to each process; the launcher's own
    # KeyboardInterrupt killed the processes before they wrote their checkpoint
    import signal
    import time

    from lstmlab.training.distributed import _forward_signals

    monkeypatch.setattr(sys, "platform", "win32")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with _forward_signals([proc]):
            signal.raise_signal(signal.SIGINT)  # the launcher's share of the console's Ctrl-C
            time.sleep(0.1)
            assert proc.poll() is None  # left to stop on its own Ctrl-C, not killed
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        proc.kill()
        proc.wait()


def test_the_processes_of_a_run_share_the_cores_with_any_blas(monkeypatch):
    # each process got the core count's share for OpenBLAS and MKL, but Accelerate (NumPy's
    # BLAS on macOS arm64) kept one thread per core in every process
    from lstmlab.training import distributed

    started = []

    class Done:
        returncode = 0

        def __init__(self, argv, env, **kwargs):
            started.append(env)

        def poll(self):
            return 0

    monkeypatch.setattr(distributed.subprocess, "Popen", Done)
    monkeypatch.setattr(distributed, "usable_cores", lambda: 8)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    assert distributed.launch(["train"], 2) == 0
    for env in started:
        assert {env[v] for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                 "VECLIB_MAXIMUM_THREADS")} == {"4"}


def test_generate_redirected_on_windows_writes_the_models_own_line_ends(tmp_path, monkeypatch):
    # a model trained on a Windows (CRLF) text wrote its '\r\n' as '\r\r\n' to a file, and
    # a model of LF text wrote CRLF, which 'lstmlab evaluate' reads as an unknown '\r'
    ckpt = _charlm(tmp_path, "one line\r\nanother line\r\n" * 60)
    monkeypatch.delenv("PYTHONIOENCODING", raising=False)
    monkeypatch.setattr(os, "linesep", "\r\n")
    out = _Redirected(encoding="utf-8", newline="\r\n")  # as Python sets up stdout on Windows
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["generate", str(ckpt), "--prompt", "line\r\n", "--length", "0"]) == 0
    assert out.data == b"line\r\n\n"


def _text_files_as_on_windows(monkeypatch):
    """``open`` as on Windows, where a text file opened without ``newline`` writes each
    "\\n" as "\\r\\n"."""
    import builtins

    real_open = builtins.open

    def windows_open(file, mode="r", *args, **kwargs):
        if "b" not in mode and "newline" not in kwargs and len(args) < 3:
            kwargs["newline"] = "\r\n"
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", windows_open)


def test_metrics_logs_have_lf_line_ends_on_every_system(tmp_path, monkeypatch):
    # on Windows a char-LM's metrics.jsonl had CRLF lines, and after a --resume LF ones (the
    # kept lines) followed by CRLF ones; forecast and classify logs had CRLF
    from lstmlab.task_cli import Progress

    _text_files_as_on_windows(monkeypatch)
    _charlm(tmp_path / "lm", "one line\nanother line\n" * 60)
    progress = Progress(tmp_path / "metrics.jsonl", 2, quiet=True)  # forecast's and classify's
    for epoch in (1, 2):
        progress({"epoch": epoch, "train_loss": 1.0})
    progress.close()
    for log in (tmp_path / "lm" / "metrics.jsonl", tmp_path / "metrics.jsonl"):
        raw = log.read_bytes()
        assert raw.count(b"\n") >= 2 and b"\r" not in raw, log


def test_a_folder_of_series_reads_in_the_same_order_on_every_system(tmp_path, monkeypatch):
    # on Windows, whose paths sort ignoring case, 'South.csv' came after 'north.csv', and a
    # global model met its series in another order than on Linux and macOS
    from lstmlab.forecast import panel
    from lstmlab.forecast.panel import read_panel

    class WindowsOrder(type(Path())):
        """A path that sorts as Windows' paths do: ignoring case."""

        def __lt__(self, other):
            return [p.lower() for p in self.parts] < [p.lower() for p in other.parts]

    for name, rows in (("north", "1,3\n2,4\n"), ("South", "1,7\n2,8\n"), ("west", "1,5\n2,6\n")):
        (tmp_path / f"{name}.csv").write_text("t,y\n" + rows, encoding="utf-8")
    monkeypatch.setattr(panel, "Path", WindowsOrder)
    assert read_panel(tmp_path, "y", time="t").names() == ["South", "north", "west"]


def test_a_file_another_program_holds_open_on_windows_is_written_once_it_is_let_go(
        tmp_path, monkeypatch):
    # Windows refuses to replace a file another program has open (a virus scanner for a
    # moment, a spreadsheet showing a CSV): the first refusal ended the write
    from lstmlab.training import checkpoint

    target = tmp_path / "forecasts.csv"
    target.write_text("old\n", encoding="utf-8")
    replace, refusals = os.replace, []

    def held(src, dst):
        if len(refusals) < 3:
            refusals.append(dst)
            raise PermissionError(13, "Access is denied")
        replace(src, dst)

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(checkpoint.os, "replace", held)
    monkeypatch.setattr(checkpoint.time, "sleep", lambda s: None)
    checkpoint.atomic_write_text(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n" and len(refusals) == 3

    def always_held(src, dst):
        raise PermissionError(13, "Access is denied")

    monkeypatch.setattr(checkpoint.os, "replace", always_held)
    with pytest.raises(PermissionError, match=r"cannot write .*forecasts.csv: Access is denied "
                                              r"\(is it open in another program\?"):
        checkpoint.atomic_write_text(target, "newer\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["forecasts.csv"]  # no temporary left
