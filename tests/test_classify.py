"""Sequence classification: readers, bad input, a known-answer set, digits, the command."""

import csv
import json
import re

import numpy as np
import pytest
from seq_helpers import TS_HEADER, one_blas_thread, toy_ts, write  # noqa: F401

from lstmlab.classify import (SequenceClassifier, SequenceDataError, confusion_matrix,
                              format_confusion, read_sequence_csv, read_ts, stratified_split,
                              synthetic_sequences)
from lstmlab.cli import main
from lstmlab.training.supervised import FitConfig


def test_ts_reader_variable_lengths_and_labels(tmp_path):
    data = read_ts(toy_ts(tmp_path / "Toy_TRAIN.ts", n=6))
    assert len(data) == 6 and data.features == ["dim_0", "dim_1"]
    assert data.labels[:2] == ["up", "down"]
    x, lengths = data.padded()
    assert x.shape == (lengths.max(), 6, 2)
    i = int(np.argmin(lengths))
    assert np.all(x[lengths[i]:, i] == 0)  # zero padding after the end


def test_ts_reader_errors(tmp_path):
    with pytest.raises(SequenceDataError, match="is empty"):
        read_ts(write(tmp_path / "e.ts", ""))
    with pytest.raises(SequenceDataError, match="no @data line"):
        read_ts(write(tmp_path / "n.ts", "@problemName x\n"))
    with pytest.raises(SequenceDataError, match="line 10: 'abc' is not a number"):
        read_ts(write(tmp_path / "t.ts", TS_HEADER + "1,abc:1,2:up\n"))
    # a line separator (U+2028) in a comment is a character of its line, not a line break
    with pytest.raises(SequenceDataError, match="line 11: 'abc' is not a number"):
        read_ts(write(tmp_path / "s.ts", "# a\u2028b\n" + TS_HEADER + "1,abc:1,2:up\n"))
    with pytest.raises(SequenceDataError, match="not among the declared"):
        read_ts(write(tmp_path / "l.ts", TS_HEADER + "1,2:1,2:sideways\n"))
    with pytest.raises(SequenceDataError, match="different lengths"):
        read_ts(write(tmp_path / "d.ts", TS_HEADER + "1,2,3:1,2:up\n"))
    with pytest.raises(SequenceDataError, match="time-stamped"):
        read_ts(write(tmp_path / "s.ts", TS_HEADER.replace("timeStamps false", "timeStamps true")
                      + "(0,1):(0,2):up\n"))
    nan = write(tmp_path / "m.ts", TS_HEADER + "1,?,3:1,2,3:up\n1,2,3:1,2,3:down\n")
    with pytest.raises(SequenceDataError, match="dim_0.*1 missing value"):
        read_ts(nan)
    assert read_ts(nan, missing="interpolate").x[0][:, 0].tolist() == [1, 2, 3]


def test_ts_missing_values_are_named_by_their_place_in_the_case(tmp_path):
    # a case is one line: the messages said "(lines 10, 10)" and advised dropping a row
    gaps = write(tmp_path / "g.ts", TS_HEADER + "?,2,?:1,2,3:up\n1,2,3:1,2,3:down\n")
    with pytest.raises(SequenceDataError, match=r"line 10\): column 'dim_0' has 2 missing "
                                                r"values \(values 1, 3\); pass --missing"):
        read_ts(gaps)
    with pytest.raises(SequenceDataError) as err:
        read_ts(gaps, missing="ffill")
    assert str(err.value).endswith("starts with 1 missing value (value 1): there is nothing to "
                                   "carry forward; use --missing interpolate")
    assert read_ts(gaps, missing="interpolate").notes == [
        "case 0, column 'dim_0': 2 missing values at values 1, 3: interpolated linearly (gaps "
        "at the ends take the nearest value)"]



UNIVARIATE = """@problemName U
@timeStamps false
@missing false
@univariate true
@equalLength true
@seriesLength 3
@classLabel true a b
@data
"""


@pytest.mark.parametrize("cases, error", [
    ("1,2,3:a\n1,2,3:c\n", r"line 10: the label 'c' is not among the declared classes: "
                            r"@classLabel true a b \(line 7\)"),
    ("1,2,3:a\n1,2,3:4,5,6:b\n", r"line 10: the case has 2 dimension\(s\), but the header "
                                r"declares @univariate true \(line 4\)"),
    ("1,2,3:a\n1,2,3,4:b\n", r"line 10: the case has 4 value\(s\) per dimension, but the "
                             r"header declares @seriesLength 3 \(line 6\)"),
    ("1,?,3:a\n", r"line 9: the case has a missing value \('\?' or NaN\), but the header "
                  r"declares @missing false \(line 3\)"),
])
def test_ts_cases_contradicting_the_header_are_refused(tmp_path, cases, error):
    # each of these files loaded without a word: the header was read for the labels only
    with pytest.raises(SequenceDataError, match=error):
        read_ts(write(tmp_path / "x.ts", UNIVARIATE + cases), missing="interpolate")


def test_ts_unequal_lengths_and_dimensions_contradicting_the_header_are_refused(tmp_path):
    header = UNIVARIATE.replace("@seriesLength 3\n", "").replace("@univariate true",
                                                                  "@dimensions 2")
    with pytest.raises(SequenceDataError, match=r"line 9: the case has 2 value\(s\) per "
                       r"dimension, the case on line 8 3, but the header declares "
                       r"@equalLength true \(line 5\)"):
        read_ts(write(tmp_path / "x.ts", header + "1,2,3:1,2,3:a\n1,2:1,2:b\n"))
    with pytest.raises(SequenceDataError, match=r"line 8: the case has 1 dimension\(s\), but "
                       r"the header declares @dimensions 2 \(line 4\)"):
        read_ts(write(tmp_path / "x.ts", header + "1,2,3:a\n"))
    assert len(read_ts(write(tmp_path / "x.ts", header + "1,2,3:1,2,3:a\n4,5,6:4,5,6:b\n"))) == 2


@pytest.mark.parametrize("swap, error", [
    (("@univariate true", "@univariate yes"), r"line 4: @univariate takes true or false, got "
                                              r"'yes'"),
    (("@seriesLength 3", "@seriesLength three"), r"line 6: @seriesLength takes a whole number "
                                                 r"of at least 1, got 'three'"),
    (("@missing false", "@missing false\n@missing true"), r"line 4: '@missing true' "
                                                           r"contradicts @missing false \(line 3\)"),
    (("@univariate true", "@univariate true\n@dimensions 2"),
     r"@univariate true \(line 4\) contradicts @dimensions 2 \(line 5\)"),
    (("@equalLength true", "@equalLength false"),
     r"@equalLength false \(line 5\) contradicts @seriesLength 3 \(line 6\)"),
])
def test_ts_header_values_that_cannot_hold_are_refused(tmp_path, swap, error):
    with pytest.raises(SequenceDataError, match=error):
        read_ts(write(tmp_path / "x.ts", UNIVARIATE.replace(*swap) + "1,2,3:a\n"))


def test_ts_problem_named_twice_is_read_as_the_archive_writes_it(tmp_path):
    # UnitTest_TEST.ts (shipped with sktime) names its problem twice, UnitTest then Chinatown
    header = UNIVARIATE.replace("@problemName U\n", "@problemName U\n@problemName V\n")
    data = read_ts(write(tmp_path / "x.ts", header + "1,2,3:a\n4,5,6:b\n"))
    assert data.labels == ["a", "b"] and data.source.endswith("(V)")


@pytest.mark.parametrize("header, case, error", [
    ("@classLabel false\n", "1,2,3:a", r"line 4: 'a' is not a number; the header declares "
     r"@classLabel false \(line 2\), so every part of a case holds values: a file with "
     r"labels declares @classLabel true <labels>"),
    ("", "1,2,3:a", r"line 3: 'a' is not a number; the header has no @classLabel line"),
    ("@classLabel true a b\n", "1,2,3", r"line 4: the case has no label after its values "
     r"\(no ':'\); under @classLabel true a b \(line 2\) a case is 'v1,v2,...:label'"),
])
def test_ts_labels_the_header_does_not_announce_say_so(tmp_path, header, case, error):
    # the messages were "'a' is not a number" and "the case has no values before its label
    # '1,2,3'"
    with pytest.raises(SequenceDataError, match=error):
        read_ts(write(tmp_path / "x.ts", f"@problemName x\n{header}@data\n{case}\n"))


CSV_TEXT = """id,t,x,label
a,2,0.3,walk
a,0,0.1,walk
a,1,0.2,walk
b,0,1.0,run
b,1,0.5,run
"""


def test_csv_reader_groups_and_sorts_by_time(tmp_path):
    data = read_sequence_csv(write(tmp_path / "s.csv", CSV_TEXT), time_col="t")
    assert data.ids == ["a", "b"] and data.labels == ["walk", "run"]
    assert data.x[0][:, 0].tolist() == [0.1, 0.2, 0.3]
    assert data.features == ["x"] and data.lengths.tolist() == [3, 2]


def test_ids_that_differ_only_in_case_are_named_in_a_note(tmp_path, capsys):
    # 'a' and 'A' became two sequences without a word
    rows = "".join(f"{sid},{t},{t * (k % 2)},{'ab'[k % 2]}\n"
                   for k, sid in enumerate(["s1", "s2", "S1", "s3", "s4", "s5", "s6", "s7"])
                   for t in range(4))
    data = write(tmp_path / "s.csv", "id,t,x,label\n" + rows)
    assert main(["classify", "train", str(data), "--time", "t", "--model", "lstm", "--hidden",
                 "4", "--no-select", "--epochs", "1", "--quiet", "--no-baselines",
                 "--out", str(tmp_path / "run")]) == 0
    assert ("the id column 'id' holds ids that differ only in case or spacing ('s1', 'S1'): "
            "each is read as a sequence of its own; write them alike if they name one "
            "sequence") in capsys.readouterr().err
    assert read_sequence_csv(data, time_col="t").ids[:3] == ["s1", "s2", "S1"]


@pytest.mark.parametrize("labels, note", [
    # 'Walk' beside 'walk' became a class of its own without a word
    (["walk", "run", "Walk", "run", "walk", "sit  down", "Sit down", "run"],
     "differ only in case or spacing ('walk', 'Walk'; 'sit  down', 'Sit down')"),
    # '1' beside '1.0' (two sources joined) became two classes of one number without a word
    (["1", "2", "1.0", "2", "01", "3", "+3", "10"],
     "are one number written differently ('1', '1.0', '01'; '3', '+3')"),
])
def test_labels_that_look_alike_are_named_in_a_note(tmp_path, labels, note):
    rows = "".join(f"s{k},{t},{lab}\n" for k, lab in enumerate(labels) for t in range(3))
    data = read_sequence_csv(write(tmp_path / "s.csv", "id,x,activity\n" + rows),
                             label_col="activity")
    assert data.notes == [f"the label column 'activity' holds labels that {note}: each is read "
                          f"as a class of its own; write them alike if they name one class"]
    assert data.labels == labels  # each is a class of its own
    plain = "".join(f"s{k},{t},{'ab'[k % 2]}\n" for k in range(4) for t in range(3))
    assert read_sequence_csv(write(tmp_path / "p.csv", "id,x,label\n" + plain)).notes == []


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("id,x\na,1\n", "label column 'label' is not in"),
    ("id,x,label\na,1,u\na,zz,u\n", "line 3, column 'x': 'zz' is not a number"),
    ("id,x,label\na,1,u\na,2,v\n", "sequence 'a' has more than one label: 'u' \\(line 2\\), 'v' \\(line 3\\)"),
    ("id,x,label\na,1,u\na,,u\na,3,u\n", "sequence 'a'.*1 missing value"),
    ("id,t,x,label\na,0,1,u\na,0,2,u\n", "line 3: the time .0. occurs twice"),
    ("id,x,label\na,1,u\n,2,u\n", "line 3: the sequence-id column 'id' is empty"),
    # as text 't10' sorts before 't2': labels of several widths are not ordered as text
    ("id,t,x,label\na,t1,1,u\na,t2,2,u\na,t10,3,u\n",
     "sequence 'a': the time column 't' cannot be ordered \\('t1', 't10'"),
    # one width, but 'Feb 2000' sorts before 'Jan 2000' as text: only year-first dates are
    ("id,t,x,label\na,Jan 2000,1,u\na,Feb 2000,2,u\n",
     "sequence 'a': the time column 't' cannot be ordered \\('Jan 2000': not numbers, nor ISO"),
    # without --time, an id given to two sequences made one sequence of both
    ("id,x,label\na,1,u\na,2,u\nb,1,v\nb,2,v\na,3,u\na,4,u\n",
     "rows of sequence 'a' on lines 3 and 6 have the whole of sequence 'b' \\(lines 4-5\\)"),
    # a file of one series per row with an id column trained on one-step sequences
    ("id,label,t0,t1,t2\na,u,1,2,3\nb,v,4,5,6\n",
     "every sequence has one row, so each would be a single time step of 3 features"),
])
def test_csv_reader_bad_input(tmp_path, text, message):
    with pytest.raises(SequenceDataError, match=message):
        read_sequence_csv(write(tmp_path / "bad.csv", text), time_col="t" if ",t," in text else None)


def test_csv_rows_interleaved_step_by_step_are_read_without_a_time_column(tmp_path):
    text = "id,x,label\na,1,u\nb,10,v\na,2,u\nb,20,v\na,3,u\n"
    data = read_sequence_csv(write(tmp_path / "s.csv", text))
    assert data.ids == ["a", "b"] and data.labels == ["u", "v"]
    assert data.x[0][:, 0].tolist() == [1, 2, 3] and data.x[1][:, 0].tolist() == [10, 20]


def test_single_class_is_refused():
    data = synthetic_sequences(10, np.random.default_rng(0))
    data.labels = ["same"] * 10
    with pytest.raises(SequenceDataError, match="only one class"):
        SequenceClassifier.train(data, np.random.default_rng(0))


def test_stratified_split_and_confusion():
    keep, held = stratified_split(["a"] * 10 + ["b"] * 5, 0.2, np.random.default_rng(0))
    assert len(held) == 3 and len(keep) == 12 and not set(keep) & set(held)
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


@pytest.mark.parametrize("call, message", [
    (lambda: confusion_matrix([0, 3], [0, 1], 2),
     r"^truth holds the class index 3, outside \[0, 2\) for num_classes=2$"),
    (lambda: confusion_matrix([0, 1], [0, -1], 2), r"^pred holds the class index -1, outside"),
    (lambda: confusion_matrix([0.5, 1.0], [0, 1], 2),
     r"^truth must be a 1-D array of class indices \(integers\), got shape \(2,\), "
     r"dtype float64$"),
    (lambda: confusion_matrix([0, 1, 1], [0, 1], 2),
     r"^truth and pred must hold one class index per sequence each, got 3 and 2$"),
    (lambda: confusion_matrix([0], [0], 0), r"^num_classes must be a positive integer, got 0$"),
    (lambda: format_confusion(np.zeros((2, 2), int), ["a", "b", "c"]),
     r"^cm must have shape \(3, 3\), a row and a column per class of classes \(3 given\), "
     r"got \(2, 2\)$"),
    (lambda: format_confusion(np.zeros((2, 2), int), ["a"]), r"^cm must have shape \(1, 1\)"),
    (lambda: format_confusion(np.array([[np.nan, 1], [0, 1]]), ["a", "b"]),
     r"^cm must hold counts \(whole numbers >= 0\), got dtype float64$"),
    (lambda: format_confusion(np.zeros((0, 0), int), []),
     r"^classes must name at least one class$"),
    (lambda: stratified_split(["a", "b"] * 2, float("nan"), np.random.default_rng(0)),
     r"^fraction must be a number in \[0, 1\), got nan$"),
    (lambda: stratified_split(["a", "b"] * 2, 2, np.random.default_rng(0)),
     r"^fraction must be a number in \[0, 1\), got 2$"),
    (lambda: stratified_split([["a"], ["b"]], 0.5, np.random.default_rng(0)),
     r"^labels must be a list of class labels, one per sequence, got shape \(2, 1\)$"),
    (lambda: synthetic_sequences(-1, np.random.default_rng(0)),
     r"^n must be a non-negative integer, got -1$"),
    (lambda: synthetic_sequences(4, np.random.default_rng(0), min_len=10, max_len=3),
     r"^max_len must be >= min_len, got min_len=10, max_len=3$"),
], ids=["cm_index", "cm_negative", "cm_float", "cm_lengths", "cm_no_class", "fmt_more_names",
        "fmt_fewer_names", "fmt_nan", "fmt_empty", "split_nan", "split_2", "split_2d",
        "synthetic_n", "synthetic_lengths"])
def test_the_classify_helpers_name_an_argument_they_cannot_use(call, message):
    # these failed inside NumPy (IndexError, "low >= high", "cannot convert float NaN"),
    # or gave a wrong answer without a word: index -1 counted as the last class, a matrix
    # of more classes than names printed cut to the names, fraction 2 held out all but one
    with pytest.raises(ValueError, match=message):
        call()
    with pytest.raises(TypeError, match="^rng must be a numpy.random.Generator"):
        synthetic_sequences(4, 0)


def test_known_answer_synthetic_set(tmp_path):
    """Three sine periods (16, 8, 4 steps), lengths 8..24: the class is always visible."""
    rng = np.random.default_rng(0)
    train, test = synthetic_sequences(300, rng), synthetic_sequences(200, rng)
    assert len(set(len(s) for s in train.x)) > 10  # really variable lengths
    model = SequenceClassifier.train(train, np.random.default_rng(1), hidden_size=16,
                                     dtype="float64", fit_config=FitConfig(epochs=30, lr=1e-2,
                                                                           patience=10))
    res = model.evaluate(test)
    assert res["accuracy"] >= 0.95, res["accuracy"]
    assert res["confusion"].sum() == 200 and res["majority_accuracy"] < 0.5
    model.save(tmp_path / "c.ckpt")
    back = SequenceClassifier.load(tmp_path / "c.ckpt")
    np.testing.assert_array_equal(back.predict_proba(test), model.predict_proba(test))
    assert back.classes == ["period_16", "period_4", "period_8"]


def test_digits_row_by_row():
    pytest.importorskip("sklearn")
    from lstmlab.classify import digits_sequences

    d = digits_sequences()
    assert len(d) == 1797 and d.x[0].shape == (8, 8)
    keep, held = stratified_split(d.labels, 0.2, np.random.default_rng(0))
    model = SequenceClassifier.train(d.subset(keep), np.random.default_rng(0), hidden_size=32,
                                     val_fraction=0.0,
                                     fit_config=FitConfig(epochs=10, lr=1e-2, batch_size=64))
    assert model.evaluate(d.subset(held))["accuracy"] >= 0.9


def _toy_folder(tmp_path, n_train: int, n_test: int):
    """A UCR-style folder Toy/ with Toy_TRAIN.ts and Toy_TEST.ts of toy sequences."""
    folder = tmp_path / "Toy"
    folder.mkdir()
    toy_ts(folder / "Toy_TRAIN.ts", n=n_train, seed=0)
    toy_ts(folder / "Toy_TEST.ts", n=n_test, seed=1)
    return folder


def test_cli_train_on_a_ucr_folder_then_predict(tmp_path, capsys):
    folder = _toy_folder(tmp_path, 60, 30)
    out = tmp_path / "run"
    rc = main(["classify", "train", str(folder), "--hidden", "8", "--epochs", "15", "--quiet",
               "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "test: accuracy" in text and "on 30 sequences" in text and "truth \\ pred" in text
    report = json.loads((out / "report.json").read_text())
    assert report["n_test"] == 30 and sorted(report["classes"]) == ["down", "up"]
    assert report["accuracy"] >= 0.8
    rc = main(["classify", "predict", str(out / "model.ckpt"), str(folder / "Toy_TEST.ts"),
               "--out", str(tmp_path / "p.csv")])
    assert rc == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").read_text().splitlines()))
    assert len(rows) == 30 and set(rows[0]) == {"id", "predicted", "label", "p_down", "p_up"}
    # the probabilities were rounded to 4 decimals: rows summing to 0.9999, small ones 0
    proba = SequenceClassifier.load(out / "model.ckpt").predict_proba(
        read_ts(folder / "Toy_TEST.ts"))
    written = np.array([[float(r[f"p_{c}"]) for c in ("down", "up")] for r in rows])
    np.testing.assert_array_equal(written, proba[:, [report["classes"].index("down"),
                                                     report["classes"].index("up")]])
    assert "accuracy" in capsys.readouterr().out
    # the folder itself: its NAME_TEST.ts is what gets labelled
    assert main(["classify", "predict", str(out / "model.ckpt"), str(folder),
                 "--out", str(tmp_path / "f.csv")]) == 0
    assert (tmp_path / "f.csv").read_text() == (tmp_path / "p.csv").read_text()
    capsys.readouterr()
    # a label the model never saw: the predictions, and why there is no accuracy
    text = (folder / "Toy_TEST.ts").read_text().splitlines()
    text = [t + " flat" if t.startswith("@classLabel") else t for t in text]
    text[-1] = text[-1].rsplit(":", 1)[0] + ":flat"
    write(tmp_path / "new.ts", "\n".join(text) + "\n")
    assert main(["classify", "predict", str(out / "model.ckpt"), str(tmp_path / "new.ts")]) == 0
    out_text, err = capsys.readouterr()
    assert len(out_text.splitlines()) == 31 and "accuracy" not in out_text
    assert "no accuracy: 1 of 30 sequences has labels the model was not trained on ('flat'" in err


def test_ucr_folder_names_match_in_any_case(tmp_path):
    from lstmlab.classify.data import ucr_pair
    upper = tmp_path / "upper"
    upper.mkdir()
    toy_ts(upper / "X_TRAIN.TS", n=4)
    toy_ts(upper / "X_TEST.TS", n=4)
    assert ucr_pair(upper) == (upper / "X_TRAIN.TS", upper / "X_TEST.TS")
    lower = tmp_path / "lower"
    lower.mkdir()
    toy_ts(lower / "x_train.ts", n=4)
    (lower / "notes.txt").write_text("not a .ts file\n")
    assert ucr_pair(lower) == (lower / "x_train.ts", None)
    toy_ts(lower / "X_Test.ts", n=4)
    assert ucr_pair(lower) == (lower / "x_train.ts", lower / "X_Test.ts")
    # a copied folder's macOS resource forks were two more files for each role
    (lower / "._x_train.ts").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    (lower / "._X_Test.ts").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    assert ucr_pair(lower) == (lower / "x_train.ts", lower / "X_Test.ts")
    # two files for one role: refused, naming both, whatever the file system's case rule
    two = tmp_path / "two"
    two.mkdir()
    toy_ts(two / "A_TRAIN.ts", n=4)
    toy_ts(two / "B_train.ts", n=4)
    with pytest.raises(SequenceDataError, match=r"2 files for the training set.*"
                                                r"A_TRAIN\.ts, B_train\.ts"):
        ucr_pair(two)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SequenceDataError, match=r"no \*_TRAIN\.ts file.*found: no \.ts files"):
        ucr_pair(empty)
    with pytest.raises(SequenceDataError, match="not a folder"):
        ucr_pair(tmp_path / "missing")
    # one test-set name in two spellings, where the file system keeps both apart
    toy_ts(upper / "x_test.ts", n=4)
    if len(list(upper.iterdir())) == 3:
        with pytest.raises(SequenceDataError, match=r"2 files for the test set.*X_TEST\.TS, "
                                                    r"x_test\.ts"):
            ucr_pair(upper)


def test_predict_labels_a_folder_that_holds_only_the_test_set(tmp_path, capsys):
    # a folder with NAME_TEST.ts alone (what is left to label) was refused for lacking the
    # NAME_TRAIN.ts that predict never reads, by a message calling the test file optional
    from lstmlab.classify.data import ucr_test
    problem, labelled = tmp_path / "Toy", tmp_path / "ToyTest"
    problem.mkdir()
    labelled.mkdir()
    toy_ts(problem / "Toy_TRAIN.ts", n=12)
    toy_ts(problem / "Toy_TEST.ts", n=6, seed=1)
    (labelled / "toy_test.TS").write_bytes((problem / "Toy_TEST.ts").read_bytes())
    assert ucr_test(labelled) == labelled / "toy_test.TS"
    assert ucr_test(problem) == problem / "Toy_TEST.ts"
    out = tmp_path / "run"
    assert main(["classify", "train", str(problem), "--model", "lstm", "--hidden", "4",
                 "--no-select", "--epochs", "1", "--quiet", "--no-baselines",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["classify", "predict", str(out / "model.ckpt"), str(labelled)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1 + 6
    toy_ts(labelled / "Other_TEST.ts", n=6)  # two, and no training file to pick by
    with pytest.raises(SequenceDataError, match=r"2 files for the test set.*Other_TEST\.ts, "
                                                r"toy_test\.TS; keep one"):
        ucr_test(labelled)


@pytest.mark.parametrize("model, option", [("lstm", ["--bidirectional"]),
                                           ("fcn", ["--bidirectional"]),
                                           ("lstm-fcn", ["--readout", "mean"]),
                                           ("fcn", ["--hidden", "8"]),
                                           ("lstm-fcn", ["--layers", "2"]),
                                           ("fcn", ["--dropout", "0.5"]),
                                           ("lstm", ["--filters", "8,8,8"]),
                                           ("lstm-fcn", ["--weight-decay", "0.1"])])
def test_cli_an_option_the_model_has_no_use_for_is_refused(tmp_path, capsys, model, option):
    # silently dropped, --bidirectional with --model lstm trained a one-way LSTM
    data = write(tmp_path / "d.csv", "id,x,label\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(6)))
    out = tmp_path / "r"
    assert main(["classify", "train", str(data), "--model", model, *option, "--out", str(out)]) == 2
    assert (f"error: {option[0]} is not an option of --model {model}"
            in capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("cell, setting", [("lstm", {"bidirectional": True}),
                                           ("gru", {"filters": (8, 8, 8)}),
                                           ("lstm-fcn", {"readout": "last"}),
                                           ("fcn", {"hidden_size": 8}),
                                           ("lstm-fcn", {"num_layers": 2}),
                                           ("fcn", {"dropout": 0.5})])
def test_train_refuses_a_setting_the_cell_does_not_use(cell, setting):
    # silently dropped, bidirectional=True with cell="lstm" trained a one-way LSTM
    data = synthetic_sequences(6, np.random.default_rng(0))
    (name, value), = setting.items()
    with pytest.raises(ValueError, match=rf"^{re.escape(f'{name}={value!r}')} is not a "
                                         rf"setting of cell='{cell}'.*leave {name} out"):
        SequenceClassifier.train(data, np.random.default_rng(0), cell=cell, **setting,
                                 fit_config=FitConfig(epochs=1))


def test_train_takes_the_defaults_of_settings_the_cell_does_not_use():
    data = synthetic_sequences(6, np.random.default_rng(0))
    one = FitConfig(epochs=1)
    fcn = SequenceClassifier.train(data, np.random.default_rng(0), cell="fcn", num_layers=1,
                                   dropout=0.0, bidirectional=False, filters=(2, 2, 2),
                                   fit_config=one)
    assert fcn.architecture == "fcn" and fcn.net.config.filters == (2, 2, 2)
    gru = SequenceClassifier.train(data, np.random.default_rng(0), cell="gru",
                                   bidirectional=False, hidden_size=2, fit_config=one)
    assert gru.architecture == "gru" and gru.net.config.readout == "last"
    with pytest.raises(TypeError, match="bidirectional must be True or False, got 'no'"):
        SequenceClassifier.train(data, np.random.default_rng(0), cell="lstm-fcn",
                                 bidirectional="no", fit_config=one)


def test_cli_single_class_and_empty_file(tmp_path, capsys):
    one = write(tmp_path / "one.csv", "id,x,label\n" + "".join(f"{i},{i},same\n" for i in range(6)))
    assert main(["classify", "train", str(one), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "only one class" in capsys.readouterr().err
    # one sequence per class: the default --test-fraction holds none out, which is not 0
    two = write(tmp_path / "two.csv", "id,x,label\n" + "".join(f"{i},{t},{'ab'[i]}\n"
                                                              for i in range(2) for t in range(3)))
    assert main(["classify", "train", str(two), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert ("every class has a single sequence (2 sequences), so --test-fraction 0.2 holds "
            "none out" in capsys.readouterr().err)
    empty = write(tmp_path / "empty.csv", "")
    assert main(["classify", "train", str(empty), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.startswith("lstmlab classify train: error: ")


def test_train_names_the_file_of_each_note(tmp_path, capsys):
    # a training and a test file both filled: the notes did not say which file they were about
    def gappy(name, gap_in):
        rows = ["id,x,label"]
        for i in range(8):
            rows += [f"s{i},{'' if i == gap_in and t == 2 else t * (i % 2 * 2 - 1)},"
                     f"{'ab'[i % 2]}" for t in range(5)]
        return write(tmp_path / name, "\n".join(rows) + "\n")

    train, test = gappy("train.csv", 1), gappy("test.csv", 6)
    assert main(["classify", "train", str(train), "--test", str(test), "--missing", "ffill",
                 "--model", "lstm", "--no-select", "--hidden", "2", "--epochs", "1", "--quiet",
                 "--no-baselines", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert (f"{train}: sequence 's1', column 'x': 1 missing value at line 9: carried" in err
            and f"{test}: sequence 's6', column 'x': 1 missing value at line 34: carried" in err)


def test_train_takes_a_problem_folder_as_its_test_set_as_predict_does(tmp_path, capsys):
    # --test FOLDER was refused as "not a CSV file", where predict labels a folder's _TEST.ts
    (tmp_path / "P").mkdir()
    (tmp_path / "Q").mkdir()
    toy_ts(tmp_path / "P" / "P_TRAIN.ts")
    toy_ts(tmp_path / "Q" / "Q_TRAIN.ts", seed=2)
    toy_ts(tmp_path / "Q" / "Q_TEST.ts", seed=3)
    argv = ["classify", "train", str(tmp_path / "P" / "P_TRAIN.ts"), "--model", "lstm",
            "--no-select", "--hidden", "2", "--epochs", "1", "--quiet", "--no-baselines"]
    assert main([*argv, "--test", str(tmp_path / "Q"), "--out", str(tmp_path / "a")]) == 0
    assert main([*argv, "--test", str(tmp_path / "Q" / "Q_TEST.ts"),
                 "--out", str(tmp_path / "b")]) == 0
    reports = [json.loads((tmp_path / r / "report.json").read_text()) for r in "ab"]
    for key in ("n_test", "accuracy", "confusion"):
        assert reports[0][key] == reports[1][key]
    assert main([*argv, "--test", str(tmp_path / "P"), "--out", str(tmp_path / "c")]) == 2
    assert "--test" in capsys.readouterr().err


def test_train_says_when_its_test_set_is_the_training_file(tmp_path, capsys):
    # --test DATA trained and "tested" on the same sequences without a word
    rows = "".join(f"s{i},{t},{'ab'[i % 2]}\n" for i in range(8) for t in range(3))
    data = write(tmp_path / "d.csv", "id,x,label\n" + rows)
    folder = tmp_path / "P"
    folder.mkdir()
    toy_ts(folder / "P_TRAIN.ts")
    toy_ts(folder / "P_TEST.ts", seed=1)
    stratified = "hold out a stratified --test-fraction"
    folders_test = f"test on {folder / 'P_TEST.ts'}"
    for given, test, instead in ((data, tmp_path / "." / "d.csv", stratified),
                                 (folder, folder / "P_TRAIN.ts", folders_test)):
        assert main(["classify", "train", str(given), "--test", str(test), "--model", "lstm",
                     "--no-select", "--hidden", "2", "--epochs", "1", "--quiet",
                     "--no-baselines", "--out", str(tmp_path / "run"), "--force"]) == 0
        err = capsys.readouterr().err
        assert f"note: --test {test} is the training data itself" in err
        assert f"the test accuracy is measured on the sequences trained on; leave --test out " \
               f"to {instead}" in err


def test_predict_says_a_missing_column_was_named_by_the_checkpoint(tmp_path, capsys):
    # "time column 't' is not in 'new.csv'" for a --time the user never gave to predict
    rows = "".join(f"s{i},{t},{t * (i % 2)},{'ab'[i % 2]}\n" for i in range(8) for t in range(3))
    data = write(tmp_path / "d.csv", "id,t,x,label\n" + rows)
    out = tmp_path / "run"
    assert main(["classify", "train", str(data), "--time", "t", "--model", "lstm", "--no-select",
                 "--hidden", "2", "--epochs", "1", "--quiet", "--no-baselines",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    no_t = "id,x,label\n" + "".join(f"s{i},{t},a\n" for i in range(2) for t in range(3))
    no_x = "id,t,v,label\n" + "".join(f"s{i},{t},{t},a\n" for i in range(2) for t in range(3))
    for text, flag, name, what in ((no_t, "--time", "t", "column"),
                                   (no_x, "--features", "x", "columns")):
        new = write(tmp_path / "new.csv", text)
        assert main(["classify", "predict", str(out / "model.ckpt"), str(new)]) == 2
        assert (f"{name!r} is the model's {flag}, stored in its checkpoint at training: pass "
                f"{flag} to name this file's {what}") in capsys.readouterr().err
    assert main(["classify", "predict", str(out / "model.ckpt"), str(new), "--features",
                 "zz"]) == 2  # typed here: the message needs no word on the checkpoint
    assert "stored in its checkpoint" not in capsys.readouterr().err


def test_predict_treats_missing_values_as_training_did_unless_told(tmp_path, capsys):
    rng = np.random.default_rng(3)
    rows = ["id,t,x,label"]
    for i in range(60):
        up = i % 2 == 0
        for t in range(8):
            v = "" if t == 3 and i % 5 == 0 else f"{(t if up else -t) + rng.normal(0, 0.1):.3f}"
            rows.append(f"s{i},{t},{v},{'up' if up else 'down'}")
    data = write(tmp_path / "gaps.csv", "\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["classify", "train", str(data), "--time", "t", "--missing", "interpolate",
                 "--hidden", "4", "--epochs", "2", "--quiet", "--no-baselines",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["classify", "predict", str(out / "model.ckpt"), str(data),
                 "--out", str(tmp_path / "p.csv")]) == 0  # interpolated, as in training
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 61
    # what was filled is said, as in training
    assert ("sequence 's0', column 'x': 1 missing value at line 5: interpolated"
            in capsys.readouterr().err)
    assert main(["classify", "predict", str(out / "model.ckpt"), str(data), "--missing",
                 "refuse"]) == 2  # what is given wins
    assert "missing" in capsys.readouterr().err
    assert main(["classify", "train", "--missing", "ffill", "--out", str(tmp_path / "d")]) == 2
    assert "--missing says how to treat missing values in DATA, but no DATA is given" in \
        capsys.readouterr().err


def test_cli_says_before_a_long_dtw_baseline_that_it_is_coming(tmp_path, capsys, monkeypatch):
    import lstmlab.classify.cli as classify_cli

    folder = tmp_path / "Toy"
    folder.mkdir()
    toy_ts(folder / "Toy_TRAIN.ts", n=20, seed=0)
    toy_ts(folder / "Toy_TEST.ts", n=10, seed=1)
    argv = ["classify", "train", str(folder), "--model", "lstm", "--hidden", "4", "--epochs",
            "1", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    assert "1NN-DTW baseline:" not in capsys.readouterr().err  # little work: no word of it
    monkeypatch.setattr(classify_cli, "DTW_NOTICE_CELLS", 1)  # as if the sequences were long
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "1NN-DTW baseline:" in err and "(10 test x 20 training sequences" in err
    assert "--no-baselines skips the baselines" in err


def test_cli_a_gru_stack_trains_and_predicts(tmp_path, capsys):
    # --model took lstm-fcn, fcn, lstm and rnn; a GRU stack runs the recurrent models' path
    folder = _toy_folder(tmp_path, 30, 10)
    out = tmp_path / "run"
    assert main(["classify", "train", str(folder), "--model", "gru", "--no-select",
                 "--hidden", "4", "--epochs", "2", "--quiet", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "gru" and report["readout"] == "last"
    assert SequenceClassifier.load(out / "model.ckpt").net.config.cell == "gru"
    assert main(["classify", "predict", str(out / "model.ckpt"), str(folder / "Toy_TEST.ts"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 11
