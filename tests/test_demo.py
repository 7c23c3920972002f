"""`lstmlab demo --quick` end to end: the printed summary, summary.json, and a report whose
sections follow the lecture and whose figures are real PNGs."""

import base64
import json
import os
import re
import stat

import pytest

from lstmlab._columns import width
from lstmlab.cli import main
from lstmlab.insight.demo import DemoConfig


def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "lecture"
    assert main(["demo", "--quick", "--out", str(out), "--seed", "1", "--length", "20"]) == 0
    printed = capsys.readouterr().out
    for part in ("1. Vanishing gradients", "2. Adding problem, T=12", "3. Summary", "RNN (tanh)",
                 "LSTM, forget bias 3", "report:"):
        assert part in printed
    # the summary's value column lines up on screen, also after the combining tilde of C̃
    claims = printed.split("3. Summary\n")[1].split("\n\n")[0].splitlines()
    assert len(claims) == 7 and any("\u0303" in line for line in claims)
    # a budget this short cannot show the adding-problem claims, and the run says so
    note = "too short for the adding-problem rows to show their claims"
    assert note in printed and DemoConfig().short_training() is None
    starts = {width(line[:list(re.finditer(" {2,}", line))[-1].end()]) for line in claims}
    assert len(starts) == 1, claims
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["quick"] is True and summary["config"]["seed"] == 1
    assert set(summary["adding"]) == {"rnn", "lstm"}
    assert summary["adding"]["rnn"]["seen"] == summary["adding"]["rnn"]["curve"][-1][0]
    assert len(summary["claims"]) == 7 and summary["gates"]

    html = (out / "report.html").read_text(encoding="utf-8")
    sections = re.findall(r"<h2[^>]*>(.*?)</h2>", html)
    assert [s.split(".")[0] for s in sections] == ["1", "2", "3", "4"]
    assert "vanishing" in sections[0] and "LSTM" in sections[1] and "five steps" in sections[2]
    images = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    assert len(images) == html.count("<img") == 4
    for data in images:
        assert base64.b64decode(data, validate=True).startswith(b"\x89PNG\r\n\x1a\n")
    assert note in html
    assert "http://" not in html and "https://" not in html  # self-contained
    # the command that reruns it, with the option given (it said 'lstmlab demo --quick --seed 1')
    assert "Reproduce with: lstmlab demo --quick --seed 1 --length 20." in html
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_demo_refuses_an_adding_length_the_task_does_not_define(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path), "--adding-length", "10"]) == 2
    assert "at least 11" in capsys.readouterr().err


def test_demo_refuses_a_gradient_flow_length_with_no_step_back(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path / "one"), "--length", "1"]) == 2
    assert "--length must be at least 2" in capsys.readouterr().err
    assert not (tmp_path / "one").exists()
    assert main(["demo", "--quick", "--out", str(tmp_path / "two"), "--length", "2"]) == 0
    assert "||dL/dh|| 1 step back," in capsys.readouterr().out  # not "1 steps back"


def test_demo_refuses_a_folder_where_it_writes_a_file_before_running(tmp_path, capsys):
    (tmp_path / "summary.json").mkdir()
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "holds a folder named summary.json" in captured.err
    assert "gradient flow" not in captured.err  # refused before the first section ran
    assert not (tmp_path / "report.html").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_demo_refuses_a_fifo_where_it_writes_its_report(tmp_path, capsys):
    # the report's rename replaced the FIFO (or, as root in /dev, a device) by a file
    (tmp_path / "summary.json").write_text('{"config": {"adding_length": 12}}')
    os.mkfifo(tmp_path / "report.html")
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 2
    assert "holds a FIFO (named pipe) named report.html" in capsys.readouterr().err
    assert stat.S_ISFIFO((tmp_path / "report.html").stat().st_mode)


def test_demo_help_gives_the_defaults_of_both_versions(capsys):
    from lstmlab.insight.demo import DemoConfig

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # the help's lines joined
    full, quick = DemoConfig(), DemoConfig.quick_version()
    for flag, field in (("--length", "length"), ("--hidden", "hidden"), ("--batch", "batch"),
                        ("--adding-length", "adding_length"), ("--budget", "budget")):
        said = re.search(rf"{flag} {field.upper()} [^(]*\(default (\d+); (\d+) with --quick\)", text)
        assert said, flag
        assert (int(said[1]), int(said[2])) == (getattr(full, field), getattr(quick, field)), flag


def test_demo_config_refuses_settings_the_demo_cannot_measure(tmp_path):
    from lstmlab.insight.demo import DemoConfig, run_demo

    cases = {"length must be at least 2": dict(length=1),
             "adding_length must be at least 11": dict(adding_length=10),
             "adding_hidden must be a positive integer": dict(adding_hidden=0),
             "seed must be an integer >= 0": dict(seed=-1),
             "forget_biases must be a non-empty tuple": dict(forget_biases=()),
             "forget_biases must be a finite number": dict(forget_biases=(float("nan"),)),
             "lr must be a positive number": dict(lr=0.0),
             "quick must be True or False": dict(quick="no")}
    for message, kwargs in cases.items():
        with pytest.raises(ValueError, match=message):
            run_demo(DemoConfig.quick_version(out=str(tmp_path / "d"), **kwargs))
    assert not (tmp_path / "d").exists()  # refused before anything ran or was written


def test_a_failed_report_write_leaves_no_mismatched_pair(tmp_path, capsys, monkeypatch):
    # summary.json was written, then report.html failed: the new summary stood beside the
    # report of the earlier run, which it does not describe
    from lstmlab.insight import plots
    from lstmlab.insight.report import Report

    out = tmp_path / "lecture"
    out.mkdir()
    (out / "summary.json").write_text('{"config": {"adding_length": 12}}')  # an earlier demo's
    (out / "report.html").write_text("the earlier report")
    monkeypatch.setattr(plots, "_png", lambda fig: b"\x89PNG\r\n\x1a\n")  # fast: no drawing

    def full_disk(self, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(Report, "write", full_disk)
    args = ["demo", "--quick", "--out", str(out), "--seed", "3", "--length", "2", "--hidden",
            "2", "--batch", "1", "--budget", "16"]
    assert main(args) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]  # no report of another run
    assert json.loads((out / "summary.json").read_text())["config"]["seed"] == 3
    monkeypatch.undo()
    monkeypatch.setattr(plots, "_png", lambda fig: b"\x89PNG\r\n\x1a\n")
    assert main(args) == 0  # its own folder still: no --force needed
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "summary.json"]


def test_demo_does_not_overwrite_a_summary_json_of_the_users_own(tmp_path, capsys):
    # demo knew its folder by the name summary.json alone: a user's summary.json and
    # report.html in --out were overwritten unasked
    for name, summary in (("mine", '{"total": 3}'), ("list", "[1, 2]"), ("text", "notes")):
        out = tmp_path / name
        out.mkdir()
        (out / "summary.json").write_text(summary)
        (out / "report.html").write_text("my report")
        assert main(["demo", "--quick", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"--out {out} holds a summary.json that is not a demo's" in err and "--force" in err
        assert (out / "summary.json").read_text() == summary
        assert (out / "report.html").read_text() == "my report"
