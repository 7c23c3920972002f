"""The RNN-vs-LSTM experiment runner on tiny budgets: determinism, same data for every model,
early stop, summaries, and `lstmlab experiment` with its resumable results file."""

import json
import os
import stat

import numpy as np
import pytest

from lstmlab.cli import main
from lstmlab.data.tasks import copy_memory_baseline
from lstmlab.insight.experiments import (AddingTask, CopyTask, ExperimentConfig, RunResult,
                                         format_table, initial_net, run_experiment, summarize,
                                         train_run)

TINY = dict(budget=64, hidden=4, batch=16, eval_every=32, eval_size=40)


def _tiny_adding_command(out, models=("rnn",)) -> list[str]:
    """`lstmlab experiment adding` at T=12, seed 0, in a fraction of a second, into ``out``."""
    return ["experiment", "adding", "--lengths", "12", "--models", *models, "--seeds", "0",
            "--budget", "16", "--hidden", "3", "--batch", "16", "--eval-every", "16",
            "--eval-size", "20", "--quiet", "--out", str(out)]


def test_config_refuses_what_the_tasks_do_not_define():
    with pytest.raises(ValueError, match="integers >= 11"):
        ExperimentConfig(task="adding", lengths=(10,))
    with pytest.raises(ValueError, match="models must be among"):
        ExperimentConfig(task="copy", lengths=(5,), models=("gru",))
    with pytest.raises(ValueError, match="task must be one of"):
        ExperimentConfig(task="parity", lengths=(5,))
    # a repeated seed, length or model is the same run counted twice ("2/2 solved", std 0)
    with pytest.raises(ValueError, match="seeds must not repeat: 0 given more than once"):
        ExperimentConfig(task="adding", lengths=(20,), seeds=(0, 1, 0))
    with pytest.raises(ValueError, match="lengths must not repeat: 20"):
        ExperimentConfig(task="adding", lengths=(20, 30, 20))
    with pytest.raises(ValueError, match="models must not repeat: lstm"):
        ExperimentConfig(task="copy", lengths=(5,), models=("lstm", "lstm"))
    cfg = ExperimentConfig(task="copy", lengths=(5, 7), seeds=(3,))
    assert ExperimentConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg


@pytest.mark.parametrize("task", ["adding", "copy"])
def test_a_run_is_deterministic_and_evaluated_on_schedule(task):
    cfg = ExperimentConfig(task=task, lengths=(12,), **TINY)
    a, net = train_run(cfg, "lstm", 12, seed=1)
    b, _ = train_run(cfg, "lstm", 12, seed=1)
    assert [row[:3] for row in a.curve] == [row[:3] for row in b.curve]
    assert [row[0] for row in a.curve] == [32, 64] and a.seen == 64
    assert a.error == a.curve[-1][1] and np.isfinite(a.error)
    assert 0 <= a.score <= 1
    assert a.baseline == (pytest.approx(1 / 24) if task == "adding" else copy_memory_baseline(12))
    c, _ = train_run(cfg, "lstm", 12, seed=2)
    assert c.curve != a.curve


def test_every_model_sees_the_same_training_sequences(monkeypatch):
    seen = []
    orig = AddingTask.sample

    def spy(self, n, rng):
        batch = orig(self, n, rng)
        seen.append(batch[2].copy())
        return batch

    monkeypatch.setattr(AddingTask, "sample", spy)
    cfg = ExperimentConfig(task="adding", lengths=(12,), **TINY)
    eval_data = orig(AddingTask(12), 8, np.random.default_rng(9))
    streams = {}
    for model in ("rnn", "lstm"):
        seen.clear()
        train_run(cfg, model, 12, seed=0, eval_data=eval_data)
        streams[model] = list(seen)
    assert len(streams["rnn"]) == len(streams["lstm"]) == 4
    for u, v in zip(streams["rnn"], streams["lstm"]):
        np.testing.assert_array_equal(u, v)


def test_a_solved_run_stops_at_the_evaluation_that_solved_it():
    cfg = ExperimentConfig(task="copy", lengths=(3,), target=0.01, **TINY)  # chance is 1/8
    r, _ = train_run(cfg, "rnn", 3, seed=0)
    assert r.solved_at == 32 and r.seen == 32 and len(r.curve) == 1
    cfg = ExperimentConfig(task="copy", lengths=(3,), target=0.01, stop_when_solved=False, **TINY)
    r, _ = train_run(cfg, "rnn", 3, seed=0)
    assert r.solved_at == 32 and r.seen == 64


def test_copy_task_scores_recall_on_the_last_ten_steps():
    task = CopyTask(5)
    x, _, y = task.sample(3, np.random.default_rng(0))
    assert x.shape == (25, 3, 10) and np.all(x.sum(axis=-1) == 1)

    class Oracle:  # predicts the targets perfectly
        def predict(self, x, batch_size=None):
            return np.where(np.eye(10)[y] > 0, 20.0, -20.0).astype(np.float32)

    ce, acc = task.evaluate(Oracle(), (x, None, y))
    assert acc == 1.0 and ce < 1e-6


def _result(model, T, seed, score, solved_at, error=0.01):
    return RunResult("adding", model, T, seed, seen=1000, solved_at=solved_at, error=error,
                     score=score, baseline=1 / 24, seconds=1.0, curve=[[1000, error, score]])


def test_summaries_give_mean_spread_and_solved_counts():
    rs = [_result("lstm", 50, 0, 0.99, 300), _result("lstm", 50, 1, 0.97, 500, 0.03),
          _result("lstm", 50, 2, 0.2, None, 0.04), _result("rnn", 50, 0, 0.1, None, 0.04)]
    rows = summarize(rs)
    assert [(s.model, s.T) for s in rows] == [("rnn", 50), ("lstm", 50)]
    lstm = rows[1]
    assert lstm.runs == 3 and lstm.n_solved == 2 and lstm.solved_at_median == 400
    assert lstm.score_mean == pytest.approx((0.99 + 0.97 + 0.2) / 3)
    assert (lstm.score_min, lstm.score_max) == (0.2, 0.99)
    assert lstm.error_std == pytest.approx(np.std([0.01, 0.03, 0.04]))
    cfg = ExperimentConfig(task="adding", lengths=(50,), **TINY)
    table = format_table(cfg, rows)
    assert "2/3" in table and "0/1" in table and "| RNN" in table


def test_run_experiment_keeps_finished_runs():
    cfg = ExperimentConfig(task="adding", lengths=(12,), models=("rnn",), seeds=(0, 1), **TINY)
    done = [_result("rnn", 12, 0, 0.5, None)]
    got = []
    results = run_experiment(cfg, on_result=got.append, done=done)
    assert results[0] is done[0] and len(results) == 2
    assert [(r.model, r.seed) for r in got] == [("rnn", 1)]


def test_experiment_cli_prints_a_table_and_continues_where_it_stopped(tmp_path, capsys):
    out = tmp_path / "exp"
    args = ["experiment", "adding", "--lengths", "12", "15", "--models", "rnn", "lstm", "--seeds",
            "0", "--budget", "32", "--hidden", "4", "--batch", "16", "--eval-every", "16",
            "--eval-size", "30", "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "fraction solved" in printed and printed.count("| LSTM") == 2
    stored = json.loads((out / "results.json").read_text())
    assert len(stored["runs"]) == 4
    assert stored["command"].startswith("lstmlab experiment adding --lengths 12 15")
    assert (out / "adding.png").read_bytes().startswith(b"\x89PNG")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("<img") == 2
    assert main(args) == 0  # the same command again: nothing to redo
    assert "4 runs already done" in capsys.readouterr().err
    assert main(args[:-1] + ["--budget", "48"]) == 2
    err = capsys.readouterr().err  # which setting differs, and the command that continues it
    assert "other settings (--budget 32 there): rerun its command to continue it (" \
        f"{stored['command']})" in err
    assert main(args[:-1] + ["--no-stop"]) == 2
    assert "other settings (without --no-stop there)" in capsys.readouterr().err
    # --force was silently of no use: the error told to choose another --out
    assert main(args[:-1] + ["--budget", "48", "--force"]) == 2
    assert ("; --force overwrites the report of another command, never the runs of an "
            f"experiment: delete {out / 'results.json'} to start this one afresh"
            in capsys.readouterr().err)


def test_the_lstm_starts_with_its_gate_biases_shifted():
    base = ExperimentConfig(task="adding", lengths=(12,), forget_bias=0.0, input_bias=0.0, **TINY)
    shifted = ExperimentConfig(task="adding", lengths=(12,), forget_bias=5.0, input_bias=-5.0, **TINY)
    b0 = initial_net(base, "lstm", 12, 0).rnn.params()["b_l0"]
    b1 = initial_net(shifted, "lstm", 12, 0).rnn.params()["b_l0"]
    H = TINY["hidden"]
    np.testing.assert_allclose(b1 - b0, np.r_[np.full(H, 5.0), np.full(H, -5.0), np.zeros(2 * H)],
                               atol=1e-6)  # blocks f, i, o, C̃
    r0 = initial_net(base, "rnn", 12, 0).rnn.params()
    r1 = initial_net(shifted, "rnn", 12, 0).rnn.params()
    assert all(np.array_equal(r0[k], r1[k]) for k in r0)  # the RNN has no gates to shift


def test_experiment_and_demo_keep_each_others_report_unless_forced(tmp_path, capsys):
    demo_run, experiment_run = tmp_path / "demo", tmp_path / "exp"
    owns = {demo_run: "summary.json", experiment_run: "results.json"}
    for folder, own in owns.items():
        folder.mkdir()
        (folder / own).write_text("{}")
        (folder / "report.html").write_text(f"the report of {folder.name}")
    args = _tiny_adding_command(demo_run)
    assert main(args) == 2
    assert "holds the report of another command" in capsys.readouterr().err
    assert main(["demo", "--quick", "--out", str(experiment_run)]) == 2
    assert "report.html without summary.json" in capsys.readouterr().err
    for folder in (demo_run, experiment_run):
        assert (folder / "report.html").read_text(encoding="utf-8") == f"the report of {folder.name}"
        assert sorted(p.name for p in folder.iterdir()) == sorted(["report.html", owns[folder]])
    assert main(args + ["--force"]) == 0
    assert "lstmlab experiment adding" in (demo_run / "report.html").read_text(encoding="utf-8")


def test_experiment_and_demo_tell_each_others_report_by_its_title(tmp_path, capsys):
    # an interrupted experiment's folder (results.json) where demo then ran holds both files
    # each command knows its folder by: the experiment, continued, overwrote demo's report
    from lstmlab.insight import demo, experiments
    from lstmlab.insight.report import Report

    cfg = ExperimentConfig(task="copy", lengths=(3,), seeds=(0,), **TINY)
    for name, title in (("demo", demo.REPORT_TITLE), ("exp", f"{experiments.REPORT_TITLE} copy")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text('{"config": {"adding_length": 12}}')
        experiments.save_results(tmp_path / name / "results.json", cfg, [])
        Report(title, "").write(tmp_path / name / "report.html")
    before = {name: (tmp_path / name / "report.html").read_text() for name in ("demo", "exp")}
    assert main(cfg.command().split()[1:] + ["--quiet", "--out", str(tmp_path / "demo")]) == 2
    assert ("holds the report of another command (its title begins 'The lecture, measured"
            in capsys.readouterr().err)
    assert main(["demo", "--quick", "--out", str(tmp_path / "exp")]) == 2
    assert ("holds the report of another command (its title begins 'lstmlab experiment')"
            in capsys.readouterr().err)
    assert {name: (tmp_path / name / "report.html").read_text() for name in before} == before


def test_a_failed_or_interrupted_experiment_leaves_no_report_of_other_runs(tmp_path, capsys,
                                                                           monkeypatch):
    # adding.png was written, then report.html failed: the new figure stood beside the
    # report of the earlier runs; an interrupted experiment left the report it replaces
    # (another command's, under --force) beside its new results.json
    from lstmlab.insight import experiments

    out = tmp_path / "exp"
    out.mkdir()
    (out / "summary.json").write_text("{}")  # a demo's folder, taken over with --force
    (out / "report.html").write_text("the demo's report")
    (out / "adding.png").write_bytes(b"an earlier figure")
    args = _tiny_adding_command(out, models=("rnn", "lstm")) + ["--force"]
    real_run = experiments.train_run

    def interrupted_at_the_second_run(cfg, model, *rest):
        if model == "lstm":
            raise KeyboardInterrupt
        return real_run(cfg, model, *rest)

    monkeypatch.setattr(experiments, "train_run", interrupted_at_the_second_run)
    assert main(args) == 130
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "summary.json"]
    assert len(json.loads((out / "results.json").read_text())["runs"]) == 1
    monkeypatch.undo()

    def full_disk(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(experiments, "atomic_write_bytes", full_disk)
    assert main(args) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.json", "summary.json"]
    assert "lstmlab experiment adding" in (out / "report.html").read_text(encoding="utf-8")


def test_config_names_seeds_numbers_and_grids_it_cannot_run(tmp_path):
    for kwargs, message in (({"seeds": (-1,)}, "seeds must be integers >= 0, got -1"),
                            ({"seeds": (1.5,)}, "seeds must be integers >= 0, got 1.5"),
                            ({"lengths": 5}, r"lengths must be a tuple \(or a list\), got 5"),
                            ({"models": "lstm"}, r"models must be a tuple \(or a list\), got 'lstm'"),
                            ({"lr": "x"}, "lr must be a finite number"),
                            ({"target": None}, "target must be a finite number")):
        with pytest.raises(ValueError, match=message):
            ExperimentConfig(**{"task": "copy", "lengths": (5,), **kwargs})
    # lists are read as tuples: the config equals the one stored with its results
    cfg = ExperimentConfig(task="copy", lengths=[5], models=["lstm"], seeds=[0], **TINY)
    assert ExperimentConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    from lstmlab.insight.experiments import load_results, save_results
    runs = run_experiment(cfg)
    save_results(tmp_path / "results.json", cfg, runs)
    assert len(load_results(tmp_path / "results.json", cfg)) == len(runs) == 1


def test_write_report_names_empty_results_and_writes_into_a_new_directory(tmp_path):
    from lstmlab.insight.experiments import write_report

    cfg = ExperimentConfig(task="copy", lengths=(3,), models=("lstm",), seeds=(0,), **TINY)
    with pytest.raises(ValueError, match="results is empty: there are no runs to report"):
        write_report(cfg, [], tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
    png, page = write_report(cfg, run_experiment(cfg), tmp_path / "new" / "dir")
    assert png.read_bytes().startswith(b"\x89PNG") and page.is_file()


def test_one_run_names_a_model_or_seed_it_cannot_run():
    cfg = ExperimentConfig(task="copy", lengths=(3,), models=("lstm",), seeds=(0,), **TINY)
    for args, message in ((("gru", 3, 0), r"model must be one of \('rnn', 'lstm'\), got 'gru'"),
                          (("lstm", 3, -1), "seed must be an integer >= 0, got -1"),
                          (("lstm", 3, True), "seed must be an integer >= 0, got True")):
        with pytest.raises(ValueError, match=message):
            train_run(cfg, *args)
    with pytest.raises(TypeError, match="cfg must be an ExperimentConfig, got dict"):
        train_run(cfg.to_json(), "lstm", 3, 0)


def test_the_stored_command_runs_exactly_its_configuration():
    from lstmlab.cli import build_parser

    cfg = ExperimentConfig(task="adding", lengths=(11, 20), models=("lstm",), seeds=(3,),
                           lr=0.001234567, clip=0.1234567, forget_bias=2.3456789,
                           input_bias=-1.0000001, target=0.9876543, stop_when_solved=False,
                           **TINY)
    words = cfg.command().split()
    assert words[:2] == ["lstmlab", "experiment"] and "--lr" in words
    a = build_parser().parse_args(words[1:])
    again = ExperimentConfig(task=a.task, lengths=tuple(a.lengths), models=tuple(a.models),
                             seeds=tuple(a.seeds), budget=a.budget, hidden=a.hidden,
                             batch=a.batch, lr=a.lr, clip=a.clip, forget_bias=a.forget_bias,
                             input_bias=a.input_bias, eval_every=a.eval_every,
                             eval_size=a.eval_size, target=a.target,
                             stop_when_solved=not a.no_stop)
    assert again == cfg
    assert "--lr 0.003 --clip 1 " in ExperimentConfig(task="copy", lengths=(3,)).command()


def test_experiment_help_gives_the_grids_defaults(capsys):
    from lstmlab.cli import build_parser

    with pytest.raises(SystemExit):
        main(["experiment", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    a = build_parser().parse_args(["experiment", "adding", "--lengths", "11"])
    assert f"(default: {' '.join(a.models)})" in text and "(default: rnn lstm)" in text
    assert f"(default: {' '.join(map(str, a.seeds))})" in text
    assert "(adding: at least 11)" in text


def test_a_run_whose_weights_diverge_is_named(tmp_path, capsys):
    # --lr 1e308: the first update made the weights infinite, and the next step failed inside
    # the network with "x contains NaN or inf"
    cfg = ExperimentConfig(task="copy", lengths=(1,), models=("lstm",), seeds=(0,),
                           **{**TINY, "hidden": 2, "lr": 1e308})
    with pytest.raises(ValueError, match=r"the lstm run at T=1, seed 0 diverged after 16 "
                                         r"training sequences: an update made its weights"):
        train_run(cfg, "lstm", 1, 0)
    assert main(["experiment", "copy", "--lengths", "1", "--models", "lstm", "--seeds", "0",
                 "--budget", "32", "--hidden", "2", "--eval-size", "4", "--lr", "1e308",
                 "--out", str(tmp_path), "--quiet"]) == 2
    assert "(--lr 1e+308, --clip 1)" in capsys.readouterr().err


def test_a_results_file_that_cannot_be_read_is_named(tmp_path):
    from lstmlab.insight.experiments import load_results

    cfg = ExperimentConfig(task="copy", lengths=(3,), models=("lstm",), seeds=(0,), **TINY)
    (tmp_path / "results.json").mkdir()
    with pytest.raises(ValueError, match=r"results.json is not a readable lstmlab experiment "
                                         r"\(.*Is a directory.*\); choose another --out"):
        load_results(tmp_path / "results.json", cfg)


def test_a_results_file_whose_config_lacks_a_field_names_the_file_and_the_field(tmp_path):
    # the stored config without its lengths was "not a readable lstmlab experiment ('lengths')"
    from lstmlab.insight.experiments import load_results, save_results

    cfg = ExperimentConfig(task="copy", lengths=(3,), models=("lstm",), seeds=(0,), **TINY)
    path = tmp_path / "results.json"
    save_results(path, cfg, [])
    stored = json.loads(path.read_text())
    del stored["config"]["lengths"]
    path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=r"results.json is not a readable lstmlab experiment "
                                         r"\(ExperimentConfig.from_json: missing field "
                                         r"'lengths'; ExperimentConfig takes the fields task "
                                         r"\(required\), lengths \(required\), "):
        load_results(path, cfg)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(error="x"), r"runs\[0\]: error must be a number, got 'x'"),
    (lambda r: r.update(score=None), r"runs\[0\]: score must be a number, got None"),
    (lambda r: r.update(curve=5), r"runs\[0\]: curve must be a list of \[seen, error, score\]"),
    (lambda r: r.update(seed="0"), r"runs\[0\]: seed '0' is not one of the experiment's \(0\)"),
    (lambda r: r.update(model="gru"), r"runs\[0\]: model 'gru' is not one of"),
    (lambda r: r.update(solved_at=True), r"runs\[0\]: solved_at must be an integer >= 0 or null"),
], ids=["error", "score", "curve", "seed", "model", "solved_at"])
def test_a_results_file_edited_by_hand_is_refused_by_what_is_wrong(tmp_path, change, message):
    # a run with a field of the wrong type failed deep inside the table ("len() of unsized
    # object", "unsupported operand type(s)"), without naming the file; a seed written as
    # "0" was run again beside the stored one
    from lstmlab.insight.experiments import RunResult, load_results, save_results

    cfg = ExperimentConfig(task="copy", lengths=(3,), models=("lstm",), seeds=(0,), **TINY)
    path = tmp_path / "results.json"
    run = RunResult("copy", "lstm", 3, 0, 32, None, 2.0, 0.1, 1.0, 0.5, [[32, 2.0, 0.1]])
    save_results(path, cfg, [run])
    assert load_results(path, cfg) == [run]
    stored = json.loads(path.read_text())
    change(stored["runs"][0])
    path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=r"results.json is not a readable lstmlab experiment \("
                                         + message):
        load_results(path, cfg)


def test_the_python_defaults_are_the_commands():
    from dataclasses import fields

    from lstmlab.cli import build_parser

    args = build_parser().parse_args(["experiment", "adding", "--lengths", "11"])
    cfg = ExperimentConfig(task="adding", lengths=(11,))
    for f in fields(cfg):
        if f.name in ("task", "lengths", "stop_when_solved"):
            continue
        given = getattr(args, f.name)
        assert (tuple(given) if isinstance(given, list) else given) == getattr(cfg, f.name), f.name
    assert cfg.stop_when_solved is not args.no_stop


@pytest.mark.parametrize("argv, message", [
    (["adding", "--lengths", "10"], "--lengths must be integers >= 11, got 10"),
    (["adding", "--lengths", "20", "--seeds", "0", "0"], "--seeds must not repeat: 0 given"),
    (["copy", "--lengths", "5", "5"], "--lengths must not repeat: 5 given"),
])
def test_experiment_errors_name_the_option_typed(argv, message, tmp_path, capsys):
    # the settings' checks named them as the Python API does ("adding lengths must ...")
    assert main(["experiment", *argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"lstmlab experiment: error: {message}" in err
    assert not (tmp_path / "x").exists()


def test_experiment_refuses_a_folder_where_it_writes_its_figure_before_running(tmp_path, capsys):
    (tmp_path / "copy.png").mkdir()
    assert main(["experiment", "copy", "--lengths", "5", "--seeds", "0", "--out",
                 str(tmp_path)]) == 2
    assert "holds a folder named copy.png" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()  # no run started


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_experiment_refuses_a_fifo_where_it_reads_its_results(tmp_path, capsys):
    # a FIFO named results.json: reading it for the runs done waited forever
    os.mkfifo(tmp_path / "results.json")
    assert main(["experiment", "copy", "--lengths", "5", "--seeds", "0", "--out",
                 str(tmp_path)]) == 2
    assert "holds a FIFO (named pipe) named results.json" in capsys.readouterr().err
    assert stat.S_ISFIFO((tmp_path / "results.json").stat().st_mode)


def test_experiment_does_not_overwrite_a_figure_of_the_users_own(tmp_path, capsys):
    # --out . where adding.png is the user's: replaced by the experiment's figure unasked
    (tmp_path / "adding.png").write_bytes(b"my figure")
    args = _tiny_adding_command(tmp_path)
    assert main(args) == 2
    assert "holds adding.png without results.json" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["adding.png"]
    assert (tmp_path / "adding.png").read_bytes() == b"my figure"
    assert main(args + ["--force"]) == 0
    assert (tmp_path / "adding.png").read_bytes().startswith(b"\x89PNG")


def test_experiment_checks_its_default_out_before_the_first_run(tmp_path, capsys, monkeypatch):
    # a file named runs where runs/experiment-copy goes: the first run's work ended in
    # "[Errno 20] Not a directory" and was lost
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("a file")
    assert main(["experiment", "copy", "--lengths", "3", "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert "--out (default runs/experiment-copy): cannot create 'runs/experiment-copy'" in err
    assert "is a file, not a directory" in err and "copy T=3" not in err  # no run started
