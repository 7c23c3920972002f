"""The classify command on the edges a user meets: where its output goes, odd files and
labels, checkpoints of the wrong kind."""

import csv
import re

import numpy as np
import pytest
from seq_helpers import double_ctrl_c_after_each_epoch, one_blas_thread, toy_ts, write  # noqa: F401

from lstmlab.classify import SequenceClassifier, synthetic_sequences
from lstmlab.cli import main
from lstmlab.training.supervised import FitConfig


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch LSTM classifier over one feature column 'x', classes 'period_*'."""
    data = synthetic_sequences(24, np.random.default_rng(0), min_len=6, max_len=10)
    data.features = ["x"]
    model = SequenceClassifier.train(data, np.random.default_rng(0), hidden_size=4,
                                     fit_config=FitConfig(epochs=1, batch_size=8))
    path = tmp_path_factory.mktemp("clf") / "model.ckpt"
    model.save(path, extra={"csv_options": {"id_col": "id", "label_col": "label",
                                            "time_col": None, "features": ["x"]}})
    rows = "".join(f"{sid},{v:.4f},{lab}\n" for sid, s, lab in zip(data.ids, data.x, data.labels)
                   for v in s[:, 0])
    csv_path = write(path.parent / "data.csv", "id,x,label\n" + rows)
    return path, csv_path, data


@pytest.mark.parametrize("field, value, message", [
    ("classes", ["period_16", "period_16", "period_8"],
     "'classes' must name each once, got 'period_16' more than once"),
    ("scaler", {"mean": [0.0], "std": [0.0]}, r"'scaler.std' must hold numbers > 0, got \[0.0\]")])
def test_predict_refuses_a_checkpoint_with_repeated_classes_or_a_zero_scale(
        trained, tmp_path, capsys, field, value, message):
    # repeated classes labelled sequences with one name for two outputs (columns p_period_16
    # twice, "no accuracy" for the class left out); a zero std divided by zero
    from lstmlab.training.checkpoint import load_checkpoint, save_checkpoint

    ckpt, data_csv, _ = trained
    meta, arrays = load_checkpoint(ckpt)
    save_checkpoint(tmp_path / "m.ckpt", {**meta, field: value}, arrays)
    assert main(["classify", "predict", str(tmp_path / "m.ckpt"), str(data_csv)]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_predict_to_stdout_keeps_stdout_a_csv(trained, capsys):
    # with labels in DATA and no --out, the accuracy and the confusion matrix were printed
    # to stdout after the CSV, so `predict ... > labels.csv` wrote them into the file
    ckpt, data_csv, data = trained
    assert main(["classify", "predict", str(ckpt), str(data_csv)]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.reader(out.splitlines()))
    assert rows[0][:3] == ["id", "predicted", "label"]
    assert len(rows) == len(data) + 1 and all(len(r) == len(rows[0]) for r in rows)
    assert "accuracy" in err and "truth \\ pred" in err


def test_train_refuses_test_labels_the_training_data_lacks_before_training(tmp_path, capsys):
    # the unknown test label used to stop the command after training, with no model written
    train = write(tmp_path / "train.csv", "id,x,label\n" + "".join(
        f"{i},{t * (i % 2)},{'ab'[i % 2]}\n" for i in range(8) for t in range(4)))
    test = write(tmp_path / "test.csv", "id,x,label\n" + "".join(
        f"{i},{t},{'ac'[i % 2]}\n" for i in range(4) for t in range(4)))
    out = tmp_path / "run"
    assert main(["classify", "train", str(train), "--test", str(test), "--model", "lstm",
                 "--no-select", "--epochs", "1", "--quiet", "--no-baselines",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "test.csv has labels that the training data does not have: 'c'" in err
    assert "training on" not in err and not out.exists()


def test_ts_case_without_a_label_is_refused(tmp_path):
    # with no @classLabel values declared, an empty label became a class named ''
    from lstmlab.classify import SequenceDataError, read_ts

    path = write(tmp_path / "x.ts", "@problemName x\n@classLabel true\n@data\n"
                 "1,2,3:a\n1,2,3:\n1,2:b\n")
    with pytest.raises(SequenceDataError, match=r"x.ts, line 5: case 1 has no class label"):
        read_ts(path)


@pytest.mark.parametrize("label", ["?", "NA", "NaN"])
def test_labels_spelled_like_missing_values_are_labels(tmp_path, label):
    # '?', 'NA' and 'NaN' labels were read as missing: a training file using one as a class
    # was refused ("has no class label"), and predict took a labelled file as one to label
    from lstmlab.classify import read_sequence_csv, read_ts

    ts = write(tmp_path / "x.ts", f"@problemName x\n@classLabel true a {label}\n@data\n"
               f"1,2,3:a\n1,2,3:{label}\n1,2:{label}\n")
    assert read_ts(ts).labels == ["a", label, label]
    assert read_ts(ts, require_labels=False).labels == ["a", label, label]
    rows = "".join(f"{i},{t},{['a', label][i % 2]}\n" for i in range(4) for t in range(3))
    csv_path = write(tmp_path / "x.csv", "id,x,label\n" + rows)
    for require in (True, False):
        got = read_sequence_csv(csv_path, require_labels=require).labels
        assert got == ["a", label, "a", label]


def test_ts_case_with_a_label_and_no_values_says_so(tmp_path):
    # the message was "the dimensions of this case have different lengths []"
    from lstmlab.classify import SequenceDataError, read_ts

    path = write(tmp_path / "x.ts", "@problemName x\n@classLabel true a b\n@data\n1,2:a\nb\n")
    with pytest.raises(SequenceDataError, match=r"line 5: the case has no values before its "
                                                r"label 'b'"):
        read_ts(path)


@pytest.mark.parametrize("which", ["CKPT", "DATA"])
def test_predict_refuses_an_out_that_is_its_own_input(trained, tmp_path, capsys, which):
    # `--out` naming the checkpoint replaced the model with the predictions CSV
    import shutil

    ckpt = shutil.copy(trained[0], tmp_path / "model.ckpt")
    data = shutil.copy(trained[1], tmp_path / "data.csv")
    target = ckpt if which == "CKPT" else data
    before = target.read_bytes()
    assert main(["classify", "predict", str(ckpt), str(data), "--out", str(target)]) == 2
    assert f"is the {which} this command reads" in capsys.readouterr().err
    assert target.read_bytes() == before


@pytest.mark.parametrize("option", [["--features", "dim_1"], ["--id", "case"],
                                    ["--time", "t"], ["--label", "y"]])
def test_csv_column_options_with_ts_data_are_refused(tmp_path, capsys, option):
    # silently ignored, --features dim_1 left the user believing the model read one dimension
    data = write(tmp_path / "x.ts", "@problemName x\n@classLabel true a b\n@data\n"
                 + "".join(f"{i},{i + 1}:{i % 3},1:{'ab'[i % 2]}\n" for i in range(8)))
    out = tmp_path / "run"
    assert main(["classify", "train", str(data), "--model", "lstm", "--no-select", "--epochs",
                 "1", "--quiet", "--no-baselines", "--out", str(out), *option]) == 2
    assert f"error: {option[0]} names a CSV column, but" in capsys.readouterr().err
    assert not out.exists()


def test_predict_reads_the_training_columns_by_name(tmp_path, capsys):
    # trained without --features, the checkpoint kept no column names, and predict took
    # "every other column" in the new file's order: swapped columns were read swapped
    rng = np.random.default_rng(0)
    rows = []
    for i in range(16):
        k = i % 2
        for t in range(5):
            rows.append((f"s{i}", t, (1.0 if k else -1.0) * t + rng.normal(0, .1),
                         rng.normal(), "ab"[k]))
    train = write(tmp_path / "train.csv", "id,t,x,y,label\n"
                  + "".join(f"{a},{b},{c:.3f},{d:.3f},{e}\n" for a, b, c, d, e in rows))
    swapped = write(tmp_path / "swapped.csv", "id,t,y,x,notes,label\n"
                    + "".join(f"{a},{b},{d:.3f},{c:.3f},n,{e}\n" for a, b, c, d, e in rows))
    out = tmp_path / "run"
    assert main(["classify", "train", str(train), "--test", str(train), "--time", "t",
                 "--model", "lstm", "--no-select", "--hidden", "4", "--epochs", "2", "--quiet",
                 "--no-baselines", "--out", str(out)]) == 0
    for name, data in (("same", train), ("swapped", swapped)):
        assert main(["classify", "predict", str(out / "model.ckpt"), str(data),
                     "--out", str(tmp_path / f"pred_{name}.csv")]) == 0
    assert (tmp_path / "pred_same.csv").read_text() == (tmp_path / "pred_swapped.csv").read_text()


def test_the_model_reads_features_by_name_when_they_come_in_another_order():
    # a set with the training features in another column order was read by position
    from lstmlab.classify import SequenceSet

    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(6, 2)) for _ in range(8)]
    labels = ["a", "b"] * 4
    data = SequenceSet(xs, labels, [str(i) for i in range(8)], ["u", "v"])
    model = SequenceClassifier.train(data, np.random.default_rng(0), hidden_size=4,
                                     fit_config=FitConfig(epochs=1, batch_size=8))
    swapped = SequenceSet([x[:, ::-1] for x in xs], labels, data.ids, ["v", "u"])
    np.testing.assert_array_equal(model.predict_proba(swapped), model.predict_proba(data))


def test_predict_labels_a_file_whose_label_column_is_empty(trained, tmp_path, capsys):
    # a file to label, with its label column left empty, was refused: "sequence ... has no label"
    ckpt, _, data = trained
    rows = "".join(f"{sid},{v:.4f},\n" for sid, s in zip(data.ids, data.x)
                   for v in s[:, 0])
    path = write(tmp_path / "new.csv", "id,x,label\n" + rows)
    assert main(["classify", "predict", str(ckpt), str(path)]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.reader(out.splitlines()))
    assert rows[0][:2] == ["id", "predicted"] and "label" not in rows[0]
    assert len(rows) == len(data) + 1 and "accuracy" not in err
    # some labels there and some missing: refused, naming the first sequence without one
    text = path.read_text().splitlines()
    text[1:] = [r[: r.rindex(",")] + ",period_4" if r.startswith("0,") else r for r in text[1:]]
    write(path, "\n".join(text) + "\n")
    assert main(["classify", "predict", str(ckpt), str(path)]) == 2
    assert "sequence '1' has no label, but other sequences have labels" in capsys.readouterr().err


def test_ts_file_to_label_has_empty_labels_or_none(tmp_path):
    from lstmlab.classify import SequenceDataError, read_ts

    path = write(tmp_path / "x.ts", "@problemName x\n@classLabel true a b\n@data\n"
                 "1,2,3:\n4,5:\n")
    assert read_ts(path, require_labels=False).labels is None
    write(path, "@problemName x\n@classLabel false\n@data\n1,2,3\n4,5\n")
    assert read_ts(path, require_labels=False).labels is None
    # '?' is a label, one the header does not declare
    write(path, "@problemName x\n@classLabel true a b\n@data\n1,2,3:?\n4,5:?\n")
    with pytest.raises(SequenceDataError, match=r"line 4: the label '\?' is not among the "
                       r"declared classes: @classLabel true a b \(line 2\) \('\?' is a label "
                       r"like any other: a file to label declares @classLabel false, or leaves "
                       r"the label empty\)"):
        read_ts(path, require_labels=False)


def test_a_run_folder_given_as_the_checkpoint_names_the_checkpoints_inside(trained, capsys):
    # the hint was always FOLDER/best.ckpt, a file a classify run does not write
    ckpt = trained[0]
    assert main(["classify", "predict", str(ckpt.parent), str(trained[1])]) == 2
    err = capsys.readouterr().err
    assert f"pass a .ckpt file inside it ({ckpt})" in err and "best.ckpt" not in err


def test_one_class_training_data_with_a_test_set_names_the_one_class(tmp_path, capsys):
    train = write(tmp_path / "train.csv", "id,x,label\n" + "".join(
        f"{i},{t},a\n" for i in range(4) for t in range(3)))
    test = write(tmp_path / "test.csv", "id,x,label\n" + "".join(
        f"{i},{t},{'ab'[i % 2]}\n" for i in range(4) for t in range(3)))
    assert main(["classify", "train", str(train), "--test", str(test), "--quiet",
                 "--out", str(tmp_path / "run")]) == 2
    assert "the training data has only one class ('a')" in capsys.readouterr().err


def test_train_refuses_a_test_set_of_another_width_before_training(tmp_path, capsys):
    # the mismatch surfaced in the evaluation after training, and no model was written
    header = "@problemName x\n@classLabel true a b\n@data\n"
    train = write(tmp_path / "x_TRAIN.ts", header + "".join(
        f"{i},{i + 1},{i % 3}:{'ab'[i % 2]}\n" for i in range(8)))
    test = write(tmp_path / "y_TEST.ts", header + "".join(
        f"{i},{i + 1}:{i},1:{'ab'[i % 2]}\n" for i in range(4)))
    out = tmp_path / "run"
    assert main(["classify", "train", str(train), "--test", str(test), "--model", "lstm",
                 "--no-select", "--epochs", "1", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "has 2 feature(s) per step (dim_0, dim_1), the training data 1 (dim_0)" in err
    assert "training on" not in err and not out.exists()


def test_other_feature_columns_of_the_right_count_are_refused(trained, tmp_path, capsys):
    # a test set with 'acc_z' where training read 'acc_y' was scored without a word, one
    # column read as the other; so was a SequenceSet of other names given to the model
    from lstmlab.classify import SequenceClassifier, SequenceDataError, SequenceSet

    rows = "".join(f"{i},{t},{t * (i % 2)},{i % 3},{'ab'[i % 2]}\n" for i in range(8)
                   for t in range(4))
    train = write(tmp_path / "train.csv", "id,t,acc_x,acc_y,label\n" + rows)
    test = write(tmp_path / "test.csv", "id,t,acc_x,acc_z,label\n" + rows)
    out = tmp_path / "run"
    assert main(["classify", "train", str(train), "--test", str(test), "--time", "t", "--model",
                 "lstm", "--no-select", "--epochs", "1", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert (f"feature column 'acc_y' is not in {str(test)!r}; its columns are: id, t, acc_x, "
            f"acc_z, label; the test set is read by the training data's features (acc_x, "
            f"acc_y), taken by name") in err
    assert "training on" not in err and not out.exists()
    model = SequenceClassifier.load(trained[0])
    data = trained[2]
    renamed = SequenceSet(data.x, data.labels, data.ids, ["y"])
    with pytest.raises(SequenceDataError, match="the data has the features y, the model reads "
                                                "x: no x"):
        model.predict_proba(renamed)
    positional = SequenceSet(data.x, data.labels, data.ids, ["dim_0"])  # as a .ts file names
    np.testing.assert_array_equal(model.predict_proba(positional), model.predict_proba(data))

def test_test_set_feature_named_twice_names_the_training_features_other_faults_do_not(
        tmp_path, capsys):
    # the training data's features, taken by name, are the reason a test set's feature
    # column is read: its message says so; a fault of the file itself needs no such word
    rows = "".join(f"{i},{t},{t * (i % 2)},{'ab'[i % 2]}\n" for i in range(8) for t in range(4))
    train = write(tmp_path / "train.csv", "id,t,x,label\n" + rows)
    twice = write(tmp_path / "twice.csv", "id,t,x,x,label\n" + "".join(
        f"{i},{t},1,2,{'ab'[i % 2]}\n" for i in range(4) for t in range(3)))
    text = write(tmp_path / "text.csv", "id,t,x,label\n0,0,one,a\n1,0,2,b\n")
    run = ["classify", "train", str(train), "--time", "t", "--model", "lstm", "--no-select",
           "--epochs", "1", "--quiet", "--test"]
    assert main(run + [str(twice)]) == 2
    err = capsys.readouterr().err
    assert (f"feature column 'x': CSV file {str(twice)!r} has 2 columns of that name (columns "
            f"3, 4); rename all but one of them in the header; the test set is read by the "
            f"training data's features (x), taken by name") in err
    assert main(run + [str(text)]) == 2
    err = capsys.readouterr().err
    assert "'one' is not a number" in err and "taken by name" not in err


def test_predict_with_an_empty_time_keeps_the_row_order_of_a_file_without_it(tmp_path, capsys):
    # a model trained with --time could not label a file without that column: an empty
    # --time fell back to the stored column
    rows = "".join(f"{i},{t},{t * (i % 2)},{'ab'[i % 2]}\n" for i in range(8) for t in range(4))
    train = write(tmp_path / "train.csv", "id,t,x,label\n" + rows)
    out = tmp_path / "run"
    assert main(["classify", "train", str(train), "--test", str(train), "--time", "t",
                 "--model", "lstm", "--no-select", "--hidden", "4", "--epochs", "1", "--quiet",
                 "--no-baselines", "--out", str(out)]) == 0
    plain = write(tmp_path / "plain.csv", "id,x\n" + "".join(
        f"{i},{t * (i % 2)}\n" for i in range(8) for t in range(4)))
    capsys.readouterr()
    assert main(["classify", "predict", str(out / "model.ckpt"), str(plain), "--time", ""]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 9


@pytest.mark.parametrize("option, roles", [
    (["--label", "id"], "'id' is given as both the sequence-id column and the label"),
    (["--time", "id"], "'id' is given as both the sequence-id column and the time"),
    (["--time", "label"], "'label' is given as both the time column and the label"),
    # a feature in another role was "['label'] cannot be both a feature and the
    # id/time/label column", a list and no word of which role
    (["--features", "x,label"], "'label' is given as both a feature column and the label"),
    (["--features", "id"], "'id' is given as both a feature column and the sequence-id")])
def test_one_column_in_two_roles_is_refused(tmp_path, capsys, option, roles):
    # --label id read the real label column as a feature: "'a' is not a number"
    data = write(tmp_path / "d.csv", "id,x,label\n" + "".join(
        f"{i},{t},{'ab'[i % 2]}\n" for i in range(6) for t in range(3)))
    assert main(["classify", "train", str(data), *option, "--out", str(tmp_path / "r")]) == 2
    assert f"{roles} column; they must be different columns" in capsys.readouterr().err


def test_test_fraction_with_a_test_set_is_refused(tmp_path, capsys):
    # ignored without a word: the user believed a share was held out for the test
    rows = "".join(f"{i},{t},{'ab'[i % 2]}\n" for i in range(8) for t in range(3))
    train = write(tmp_path / "train.csv", "id,x,label\n" + rows)
    out = tmp_path / "run"
    assert main(["classify", "train", str(train), "--test", str(train), "--test-fraction",
                 "0.3", "--quiet", "--out", str(out)]) == 2
    assert "--test-fraction 0.3 cannot go with a test set" in capsys.readouterr().err
    assert not out.exists()


def test_plateau_epochs_without_the_plateau_schedule_is_refused(tmp_path, capsys):
    # with the default cosine schedule, --plateau-epochs did nothing, without a word
    data = write(tmp_path / "d.csv", "id,x,label\n" + "".join(
        f"{i},{t},{'ab'[i % 2]}\n" for i in range(6) for t in range(3)))
    out = tmp_path / "r"
    assert main(["classify", "train", str(data), "--plateau-epochs", "5", "--out", str(out)]) == 2
    assert ("--plateau-epochs 5 is an option of --lr-schedule plateau"
            in capsys.readouterr().err)
    assert not out.exists()


def test_dtw_window_with_no_baselines_is_refused(tmp_path, capsys):
    # the band of a baseline that is skipped did nothing, without a word
    data = write(tmp_path / "d.csv", "id,x,label\n" + "".join(
        f"{i},{t},{'ab'[i % 2]}\n" for i in range(6) for t in range(3)))
    out = tmp_path / "r"
    assert main(["classify", "train", str(data), "--dtw-window", "3", "--no-baselines",
                 "--out", str(out)]) == 2
    assert "--dtw-window 3 sets the 1NN-DTW baseline's band" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(features="xy"), "features must be a list of column names or None, got 'xy'"),
    (dict(features=5), "features must be a list of column names or None, got 5"),
    (dict(id_col=None), "id_col must be a column name, got None")])
def test_read_sequence_csv_names_a_column_argument_of_the_wrong_type(tmp_path, kwargs, message):
    # features="xy" was read letter by letter as the columns x and y; id_col=None was an
    # AttributeError from inside the reader
    from lstmlab.classify import read_sequence_csv

    path = write(tmp_path / "d.csv", "id,x,y,xy,label\n1,1,2,3,a\n")
    with pytest.raises(TypeError, match=message):
        read_sequence_csv(path, **kwargs)


@pytest.mark.parametrize("name", ["data.csv", "data.ts"])
def test_read_sequences_refuses_a_require_labels_that_is_not_a_bool(tmp_path, name):
    # "no" is truthy: a file to label without its label column was refused as unlabelled
    from lstmlab.classify import read_sequences

    path = write(tmp_path / name, "id,x\n1,1\n" if name.endswith(".csv") else
                 "@problemName t\n@univariate true\n@classLabel false\n@data\n1,2\n")
    with pytest.raises(TypeError, match="require_labels must be True or False, got 'no'"):
        read_sequences(path, require_labels="no")
    assert read_sequences(path, require_labels=False).labels is None


def test_read_sequence_csv_refuses_an_empty_feature_list(tmp_path):
    # [] read every column besides id and label, as None does, and a text column with them
    from lstmlab.classify import read_sequence_csv

    path = write(tmp_path / "d.csv", "id,x,y,label\n1,1,2,a\n")
    with pytest.raises(ValueError, match="features must name at least one column, got an "
                                         "empty list; None reads every column"):
        read_sequence_csv(path, features=[])
    assert read_sequence_csv(path, features=np.array(["y"])).features == ["y"]


def test_a_sequence_set_of_the_wrong_shapes_is_refused_where_it_is_made():
    # a (T,) array failed inside the feature check ("too many indices"), a short label list
    # inside padding ("list index out of range")
    from lstmlab.classify import SequenceDataError, SequenceSet

    with pytest.raises(SequenceDataError, match=r"x\[1\] must have shape \(T, D\).*got \(5,\)"):
        SequenceSet([np.zeros((5, 1)), np.zeros(5)], ["a", "b"], ["0", "1"], ["x"])
    with pytest.raises(SequenceDataError, match="labels has 1 entries for 2 sequences"):
        SequenceSet([np.zeros((5, 1))] * 2, ["a"], ["0", "1"], ["x"])
    # a model trained on features ["u", "u"] could label no file: a reader refuses the name
    # twice in a header
    with pytest.raises(SequenceDataError, match=r"^SequenceSet: features name 'u' more than "
                                                r"once; a model reads its features by name$"):
        SequenceSet([np.zeros((5, 3))], ["a"], ["0"], ["u", "v", "u"])


@pytest.mark.parametrize("x, labels, features, message", [
    ([[[1.0]], [[2.0]]], [1, 2], ["x"], r"labels\[0\] is 1 \(int\); class labels are strings"),
    ([[[1.0]], [[2.0]]], ["a", None], ["x"], r"labels\[1\] is None \(NoneType\)"),
    ([[[1.0]]], "a", ["x"], "labels must be a list, one entry per sequence, got 'a'"),
    ([np.array([["1.5"]])], ["a"], ["x"], r"x\[0\] holds <U3 values; a sequence holds real "
                                          r"numbers \(np.asarray\(values, float\)"),
    ([np.array([[None]])], ["a"], ["x"], r"x\[0\] holds object values"),
    ([np.ones((2, 1), complex)], ["a"], ["x"], r"x\[0\] holds complex128 values"),
    ([[[1.0, 2.0]]], ["a"], "xy", "features must be a list of names .*, got 'xy'"),
    ([[[1.0]]], ["a"], None, "features must be a list of names .*, got None"),
    (3, [], ["x"], "x must be a list of .T, D. arrays, one per sequence, got int"),
    ([[[1.0]]], ["a"], ["x"], "ids must be a list, one entry per sequence, got None")],
    ids=["int", "none", "str", "text", "object", "complex", "features_str", "features_none",
         "x_int", "ids_none"])
def test_a_sequence_set_of_the_wrong_types_is_refused_where_it_is_made(x, labels, features,
                                                                       message):
    # int labels trained, but the model saved a checkpoint that did not load ('classes'
    # must be strings) and evaluate failed in a regex; mixed or None labels failed in
    # sorted(); text values failed in the scaler, None ones as a format error in predict;
    # complex values lost their imaginary part; features "xy" read as two names; ids None
    # failed where a message named a sequence
    from lstmlab.classify import SequenceSet

    ids = None if "ids" in message else [str(i) for i in range(len(labels))]
    with pytest.raises(TypeError, match=rf"^SequenceSet: {message}"):
        SequenceSet(x, labels, ids, features)


def test_train_names_a_hook_that_cannot_be_called_and_save_keeps_the_models_fields(
        trained, tmp_path):
    # on_epoch=3 failed after the first epoch ("'int' object is not callable"); extra
    # {"classes": ...} replaced the model's classes and wrote a checkpoint that did not load
    from lstmlab.classify import SequenceSet

    two = SequenceSet([np.zeros((3, 1)), np.ones((3, 1))], ["a", "b"], ["0", "1"], ["x"])
    with pytest.raises(TypeError, match=r"^on_epoch must be a function, or None, got int 3$"):
        SequenceClassifier.train(two, np.random.default_rng(0), on_epoch=3)
    model = SequenceClassifier.load(trained[0])
    with pytest.raises(ValueError, match=r"^extra must not hold the model's own fields, got "
                                         r"'classes', 'scaler'$"):
        model.save(tmp_path / "m.ckpt", extra={"scaler": {}, "classes": ["z"], "note": 1})
    with pytest.raises(TypeError, match=r"^extra must be a dict of JSON fields or None, got "
                                        r"list$"):
        model.save(tmp_path / "m.ckpt", extra=[1])
    assert not (tmp_path / "m.ckpt").exists()
    model.save(tmp_path / "m.ckpt", extra={"note": 1})
    assert SequenceClassifier.load(tmp_path / "m.ckpt").classes == model.classes


def test_encode_labels_names_a_label_that_is_not_a_string(trained):
    # [1, "a"] failed in sorted() ("'<' not supported between instances of 'str' and 'int'")
    model = SequenceClassifier.load(trained[0])
    with pytest.raises(TypeError, match=r"^labels\[0\] is 1 \(int\); class labels are "
                                        r"strings, as read from a file: pass "
                                        r"\[str\(v\) for v in labels\]$"):
        model.encode_labels([1, "a"])
    assert model.encode_labels(model.classes[::-1]).tolist() == [2, 1, 0]


def test_subset_takes_a_boolean_mask_and_names_an_index_outside():
    # a mask was read as the indices 1 and 0 (np.array([True, False]) took both sequences,
    # swapped); an index outside was "list index out of range"; an empty set had no padding
    from lstmlab.classify import SequenceSet

    data = SequenceSet([np.zeros((2, 1)), np.ones((3, 1)), np.full((1, 1), 2.0)],
                       ["a", "b", "a"], ["p", "q", "r"], ["x"])
    assert data.subset(np.array([True, False, True])).ids == ["p", "r"]
    assert data.subset([2, 0]).ids == ["r", "p"]
    with pytest.raises(ValueError, match=r"^a boolean mask must have shape \(3,\), one entry "
                                         r"per sequence, got \(2,\)$"):
        data.subset(np.array([True, False]))
    with pytest.raises(IndexError, match=r"^index 5 is outside the set's 3 sequences$"):
        data.subset([0, 5])
    x, lengths = data.subset([]).padded()
    assert x.shape == (0, 0, 1) and lengths.shape == (0,)


def test_train_and_predict_name_an_empty_set_a_fit_config_of_another_type_and_nan(trained):
    # an empty set was an IndexError, a dict as fit_config an AttributeError, NaN in
    # predict "too far from the training data to scale"
    from lstmlab.classify import SequenceDataError, SequenceSet

    rng = np.random.default_rng(0)
    with pytest.raises(SequenceDataError, match="^the training data has no sequences$"):
        SequenceClassifier.train(SequenceSet([], [], [], ["x"]), rng)
    two = SequenceSet([np.zeros((3, 1)), np.ones((3, 1))], ["a", "b"], ["0", "1"], ["x"])
    with pytest.raises(TypeError, match=r"^fit_config must be a FitConfig \(.*got dict$"):
        SequenceClassifier.train(two, rng, fit_config={"epochs": 1})
    model = SequenceClassifier.load(trained[0])
    nan = SequenceSet([np.array([[0.0], [np.nan]])], None, ["s"], ["x"])
    with pytest.raises(SequenceDataError, match=r"^feature column 'x' holds nan at case 's' "
                                                r"\(step 1\): values must be finite"):
        model.predict(nan)


def test_a_set_without_a_source_is_named_by_its_case_alone():
    # the message of a set made in Python (no source) began ": feature column ..."
    from lstmlab.classify import SequenceDataError, SequenceSet
    from lstmlab.classify.model import check_feature_range

    data = SequenceSet([np.zeros((3, 1)), np.array([[1.0], [np.inf], [0.0]])], ["a", "b"],
                       ["0", "1"], ["x"])
    with pytest.raises(SequenceDataError, match=r"^feature column 'x' holds inf at case '1' "
                                                r"\(step 1\)"):
        check_feature_range(data)


def test_ts_reader_skips_the_archives_percent_comments(tmp_path):
    # the UCR archive's files (sktime's UnitTest among them) open with '%' comment lines,
    # which were refused: "expected an @tag before @data"
    from lstmlab.classify import read_ts

    path = write(tmp_path / "x.ts", "%# a cut-down problem\n%\n@problemName x\n"
                 "@classLabel true 1 2\n@data\n1,2,3:1\n4,5,6:2\n")
    assert read_ts(path).labels == ["1", "2"]


def test_csv_column_options_without_data_are_refused(tmp_path, capsys):
    # with no DATA (the digits), --features was ignored and stored in the checkpoint
    pytest.importorskip("sklearn")
    out = tmp_path / "run"
    assert main(["classify", "train", "--features", "col_1", "--out", str(out)]) == 2
    assert ("--features names a CSV column, but the data is scikit-learn's digits"
            in capsys.readouterr().err)
    assert not out.exists()


def test_an_arff_file_is_refused_pointing_at_the_ts_version(tmp_path, capsys):
    # read as a CSV, the ARFF header gave "line 3: 2 fields, but the header has 1"
    data = write(tmp_path / "X_TRAIN.arff", "@RELATION x\n@ATTRIBUTE a NUMERIC\n"
                 "@ATTRIBUTE class {1,2}\n@DATA\n1.0,1\n2.0,2\n")
    assert main(["classify", "train", str(data), "--out", str(tmp_path / "r")]) == 2
    assert "is an ARFF file, which is not read" in capsys.readouterr().err


def test_train_names_an_rng_that_is_not_a_generator():
    # an int seed failed inside the split: "'int' object has no attribute 'permutation'"
    data = synthetic_sequences(12, np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator .*got int"):
        SequenceClassifier.train(data, 42, hidden_size=4, fit_config=FitConfig(epochs=1))


def test_predict_names_data_that_is_not_a_sequence_set(trained):
    # an array failed with "'numpy.ndarray' object has no attribute 'num_features'"
    model = SequenceClassifier.load(trained[0])
    with pytest.raises(TypeError, match="data must be a SequenceSet .*got ndarray"):
        model.predict(np.zeros((3, 5, 1)))


def test_an_empty_unnamed_column_from_trailing_commas_is_not_a_feature(tmp_path):
    # every line ending in ',' made a feature named '' with no values: "column '' has no
    # values at all"
    from lstmlab.classify import SequenceDataError, read_sequence_csv

    rows = "".join(f"{i},{t},{'ab'[i % 2]},\n" for i in range(4) for t in range(3))
    data = read_sequence_csv(write(tmp_path / "d.csv", "id,x,label,\n" + rows))
    assert data.features == ["x"] and len(data) == 4
    with pytest.raises(SequenceDataError, match="column 4 has no name in the header but holds"):
        read_sequence_csv(write(tmp_path / "e.csv", "id,x,label,\n1,1,a,5\n1,2,a,\n"))


def test_constant_training_sequences_under_znorm_are_pointed_out(tmp_path, capsys):
    # classes told apart by level alone: z-normalised, the constant sequences became zeros
    # and the model scored chance on them without a word
    rows = "".join(f"{i},{i % 2 + (0.1 * t if i % 4 > 1 else 0)},{'ab'[i % 2]}\n"
                   for i in range(12) for t in range(4))
    data = write(tmp_path / "d.csv", "id,x,label\n" + rows)
    assert main(["classify", "train", str(data), "--model", "lstm", "--no-select", "--epochs",
                 "1", "--quiet", "--no-baselines", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "training sequences are constant, and z-normalisation turns each into zeros" in err


def test_every_training_sequence_constant_under_znorm_is_refused(tmp_path, capsys):
    # all of them zeros after z-normalisation: the run trained for its whole budget a model
    # that could only guess, with a note; under --force it had cleared the run in --out first
    rows = "".join(f"{i},{i % 2},{'ab'[i % 2]}\n" for i in range(12) for t in range(4))
    data = write(tmp_path / "d.csv", "id,x,label\n" + rows)
    kept = write((tmp_path / "r").mkdir() or tmp_path / "r" / "report.json", "{}")
    assert main(["classify", "train", str(data), "--model", "lstm", "--no-select", "--epochs",
                 "1", "--quiet", "--no-baselines", "--force", "--out", str(tmp_path / "r")]) == 2
    assert ("every training sequence is constant (10 of 10), and z-normalisation (--znorm auto) "
            "turns each into zeros" in capsys.readouterr().err)
    assert kept.read_text() == "{}"
    assert main(["classify", "train", str(data), "--model", "lstm", "--no-select", "--epochs",
                 "1", "--quiet", "--no-baselines", "--znorm", "off", "--out",
                 str(tmp_path / "off")]) == 0


def test_train_does_not_overwrite_a_report_of_the_users_own(tmp_path, capsys):
    # only a model.ckpt stopped the run; a report.json or predictions.csv without one was
    # replaced without a word
    rows = "".join(f"{i},{t},{'ab'[i % 2]}\n" for i in range(8) for t in range(3))
    data = write(tmp_path / "d.csv", "id,x,label\n" + rows)
    out = tmp_path / "results"
    out.mkdir()
    mine = write(out / "report.json", '{"mine": 1}')
    argv = ["classify", "train", str(data), "--model", "lstm", "--no-select", "--epochs", "1",
            "--quiet", "--no-baselines", "--out", str(out)]
    assert main(argv) == 2
    assert "already holds report.json, which this run writes" in capsys.readouterr().err
    assert mine.read_text() == '{"mine": 1}'
    assert main(argv + ["--force"]) == 0


def test_force_stopped_at_once_leaves_no_model_of_the_replaced_run(tmp_path, monkeypatch,
                                                                   capsys):
    # a double Ctrl-C in training over a run replaced with --force left that run's
    # model.ckpt and reports beside the new run's metrics.jsonl
    rows = "".join(f"{i},{t},{'ab'[i % 2]}\n" for i in range(8) for t in range(3))
    data = write(tmp_path / "d.csv", "id,x,label\n" + rows)
    out = tmp_path / "run"
    argv = ["classify", "train", str(data), "--model", "lstm", "--no-select", "--epochs", "2",
            "--quiet", "--no-baselines", "--out", str(out)]
    assert main(argv) == 0
    double_ctrl_c_after_each_epoch(monkeypatch)
    capsys.readouterr()
    assert main(argv + ["--force"]) == 130
    assert "--force: removed model.ckpt, report.json, predictions.csv, metrics.jsonl from " \
        in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


def test_patience_without_a_validation_loss_is_refused(tmp_path, capsys):
    # below 300 training sequences nothing is held out, and --patience did nothing, silently
    rows = "".join(f"{i},{t},{'ab'[i % 2]}\n" for i in range(8) for t in range(3))
    data = write(tmp_path / "d.csv", "id,x,label\n" + rows)
    common = ["classify", "train", str(data), "--model", "lstm", "--no-select", "--epochs", "1",
              "--quiet", "--no-baselines"]
    assert main(common + ["--patience", "5", "--out", str(tmp_path / "a")]) == 2
    assert "--patience 5 stops training on the validation loss, but nothing is held out" in \
        capsys.readouterr().err
    assert main(common + ["--patience", "5", "--val-fraction", "0.3",
                          "--out", str(tmp_path / "b")]) == 0


def test_a_csv_of_one_series_per_row_is_told_the_long_format(tmp_path, capsys):
    # a UCR-style CSV (label, then the values) got "sequence-id column 'id' is not in ...",
    # which does not say that the file has the wrong shape, nor what shape to give it
    p = tmp_path / "wide.csv"
    p.write_text("label,t0,t1,t2\n1,0.5,0.1,0.2\n2,0.3,0.4,0.9\n")
    assert main(["classify", "train", str(p), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "sequence-id column 'id' is not in" in err
    assert "one row per time step and a column naming its sequence (--id)" in err
    assert "one series per row" in err and ".ts file" in err
    p.write_text("ID,x,label\na,1,p\n")  # a name in another case keeps its own hint
    assert main(["classify", "train", str(p), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'ID'" in err and "one series per row" not in err


def test_a_text_column_taken_as_a_feature_by_default_names_features(tmp_path, capsys):
    # a metadata column ('subject') was only "'alice' is not a number", without saying
    # that it was read because every other column is a feature unless --features says
    p = tmp_path / "m.csv"
    p.write_text("id,t,subject,x,label\na,0,alice,1,p\na,1,alice,2,p\nb,0,bob,3,q\n")
    assert main(["classify", "train", str(p), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "line 2, column 'subject': 'alice' is not a number" in err
    assert "name the features with --features to leave 'subject' out" in err


def test_ctrl_c_during_the_baselines_keeps_the_model_and_reports_what_finished(tmp_path,
                                                                              monkeypatch,
                                                                              capsys):
    # Ctrl-C during the 1NN baselines (1NN-DTW can take minutes) raised out of the command
    # before model.ckpt was written, throwing the trained model away; inside the compiled
    # DTW search the signal's exception could crash the interpreter
    import signal

    from lstmlab.classify import baselines

    euclidean = baselines.euclidean_distances

    def ctrl_c_then_euclidean(a, b):
        signal.raise_signal(signal.SIGINT)
        return euclidean(a, b)

    monkeypatch.setattr(baselines, "euclidean_distances", ctrl_c_then_euclidean)
    data = write(tmp_path / "d.csv", "id,x,label\n" + "".join(
        f"{i},{t * (i % 2) + 0.1 * (i % 3)},{'ab'[i % 2]}\n" for i in range(12) for t in range(5)))
    out = tmp_path / "run"
    assert main(["classify", "train", str(data), "--model", "lstm", "--hidden", "4",
                 "--no-select", "--epochs", "1", "--quiet", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted (SIGINT) during the nearest-neighbour baselines" in err, err
    assert SequenceClassifier.load(out / "model.ckpt").classes == ["a", "b"]
    import json
    report = json.loads((out / "report.json").read_text())
    assert report["baselines"] == {"1nn_euclidean": report["baselines"]["1nn_euclidean"]}


def test_ctrl_c_while_choosing_keeps_the_chosen_candidate(tmp_path, monkeypatch, capsys):
    # stopped while choosing --hidden/--readout, the run wrote a final model stopped before
    # its first epoch: its initial weights, reported as "the best epoch so far (0)"
    import json
    import signal

    from lstmlab.classify import selection

    split = selection.stratified_split

    def ctrl_c_then_split(*args):
        signal.raise_signal(signal.SIGINT)
        return split(*args)

    monkeypatch.setattr(selection, "stratified_split", ctrl_c_then_split)
    data = write(tmp_path / "d.csv", "id,x,label\n" + "".join(
        f"{i},{t * (i % 2) + 0.1 * (i % 3)},{'ab'[i % 2]}\n" for i in range(24) for t in range(5)))
    out = tmp_path / "run"
    assert main(["classify", "train", str(data), "--model", "lstm", "--epochs", "2", "--quiet",
                 "--no-baselines", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted (SIGINT) while choosing: the model is the chosen candidate" in err, err
    report = json.loads((out / "report.json").read_text())
    assert report["n_train"] == report["selection"]["n_fit"] < 24 * 0.8
    assert report["training"]["epochs_run"] >= 1 and report["training"]["best_epoch"] >= 1
    assert SequenceClassifier.load(out / "model.ckpt").classes == ["a", "b"]


@pytest.mark.parametrize("quiet", [False, True])
def test_each_candidate_is_named_as_it_starts(tmp_path, capsys, quiet):
    # classify train printed nothing while it trained the widths and readouts to choose from
    data = write(tmp_path / "d.csv", "id,x,label\n" + "".join(
        f"{i},{t * (i % 2) + 0.1 * (i % 3)},{'ab'[i % 2]}\n" for i in range(12) for t in range(4)))
    assert main(["classify", "train", str(data), "--model", "lstm", "--hidden", "4",
                 "--epochs", "1", "--no-baselines", "--out", str(tmp_path / "run")]
                + ["--quiet"] * quiet) == 0
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line.startswith("candidate ")]
    assert lines == ([] if quiet else [
        "candidate 1 of 2: --readout last --hidden 4 (6 sequences, 1 epoch)",
        "candidate 2 of 2: --readout mean --hidden 4 (6 sequences, 1 epoch)"])


def _numbered_classes_csv(path):
    """A CSV of 18 sequences labelled 1, 2 and 10, the class readable from the level."""
    return write(path, "id,x,label\n" + "".join(
        f"{i},{[1, 2, 10][i % 3] + 0.1 * t},{[1, 2, 10][i % 3]}\n" for i in range(18)
        for t in range(4)))


def test_classes_are_in_text_order_and_messages_list_numbers_by_value(tmp_path, capsys):
    # the documented order of the classes (the network's outputs, the confusion matrix, the
    # p_ columns) is the labels' text order; messages that list labels list numbers by value
    import json

    from lstmlab.classify.data import class_order

    data = _numbered_classes_csv(tmp_path / "d.csv")
    out = tmp_path / "run"
    assert main(["classify", "train", str(data), "--model", "lstm", "--no-select", "--hidden",
                 "4", "--epochs", "1", "--quiet", "--no-baselines", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "truth \\ pred    1   10    2" in printed
    assert json.loads((out / "report.json").read_text())["classes"] == ["1", "10", "2"]
    with open(out / "predictions.csv", newline="") as f:
        assert next(csv.reader(f))[3:] == ["p_1", "p_10", "p_2"]
    assert class_order(["period_16", "period_4", "b", "10", "-1", "0.5", "2", "1e3", "1.0",
                        "1", "a10", "a9"]) == ["-1", "0.5", "1", "1.0", "2", "10", "1e3", "a9",
                                               "a10", "b", "period_4", "period_16"]


def test_a_checkpoint_keeps_the_class_order_it_was_trained_with(tmp_path, capsys):
    # a model saved with its classes in another order names its outputs by that order
    data = _numbered_classes_csv(tmp_path / "d.csv")
    out = tmp_path / "run"
    assert main(["classify", "train", str(data), "--model", "lstm", "--no-select", "--hidden",
                 "4", "--epochs", "1", "--quiet", "--no-baselines", "--out", str(out)]) == 0
    model = SequenceClassifier.load(out / "model.ckpt")
    model.classes = ["2", "1", "10"]  # as a checkpoint of classes in that order holds them
    model.save(tmp_path / "old.ckpt", extra={"csv_options": model.meta["csv_options"]})
    capsys.readouterr()
    assert main(["classify", "predict", str(tmp_path / "old.ckpt"), str(data)]) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0][3:] == ["p_2", "p_1", "p_10"]
    for row in rows[1:]:
        p = [float(v) for v in row[3:]]
        assert row[1] == ["2", "1", "10"][p.index(max(p))]


def test_an_ensembles_progress_names_each_member(tmp_path, capsys):
    # each member's epochs counted again from "epoch 1/2", with nothing saying a second
    # network had started: it read as the first network's training starting over
    data = _numbered_classes_csv(tmp_path / "d.csv")
    assert main(["classify", "train", str(data), "--model", "lstm", "--no-select", "--hidden",
                 "4", "--epochs", "2", "--ensemble", "2", "--no-baselines",
                 "--out", str(tmp_path / "run")]) == 0
    lines = [ln.strip() for ln in capsys.readouterr().err.splitlines()]
    start = lines.index("member 1 of 2")
    assert [ln.split("  ")[0] for ln in lines[start:start + 6]] == [
        "member 1 of 2", "epoch 1/2", "epoch 2/2", "member 2 of 2", "epoch 1/2", "epoch 2/2"]


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(val_fraction=-0.1), ValueError, r"val_fraction must be a number in \[0, 1\), got -0.1"),
    (dict(val_fraction=float("nan")), ValueError, r"val_fraction must be .*got nan"),
    (dict(val_fraction="0.2"), ValueError, r"val_fraction must be .*got '0.2'"),
    (dict(val_fraction=1.0), ValueError, r"val_fraction must be .*got 1.0"),
    (dict(znorm="no"), TypeError, r"znorm must be True or False, got 'no'"),
])
def test_train_names_a_validation_fraction_or_znorm_it_cannot_take(kwargs, exc, message):
    # -0.1 held nothing out and "no" z-normalised, silently; NaN and "0.2" failed inside the
    # split ("cannot convert float NaN to integer")
    data = synthetic_sequences(12, np.random.default_rng(0))
    with pytest.raises(exc, match=message):
        SequenceClassifier.train(data, np.random.default_rng(0), hidden_size=4,
                                 fit_config=FitConfig(epochs=1), **kwargs)


def test_predict_out_dash_is_stdout(trained, tmp_path, capsys, monkeypatch):
    # --out - wrote the CSV into a file named '-' in the working folder
    ckpt, data_csv, data = trained
    monkeypatch.chdir(tmp_path)
    assert main(["classify", "predict", str(ckpt), str(data_csv), "--out", "-"]) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0][:3] == ["id", "predicted", "label"] and len(rows) == len(data) + 1
    assert not (tmp_path / "-").exists()


def test_an_ensemble_stopped_in_a_later_member_keeps_the_finished_ones(tmp_path, capsys,
                                                                       monkeypatch):
    # Ctrl-C in member 3's third epoch kept it in the average, trained 3 epochs of 30, and
    # the message spoke of member 1: "interrupted (SIGINT) in epoch 30: kept the best epoch
    # so far (30)"
    import json
    import os
    import signal

    from lstmlab.task_cli import Progress

    log_epoch = Progress.__call__

    def ctrl_c_in_the_third_member(progress, record):
        log_epoch(progress, record)
        if record.get("member") == 2 and record["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Progress, "__call__", ctrl_c_in_the_third_member)
    out = tmp_path / "run"
    assert main(["classify", "train", str(_numbered_classes_csv(tmp_path / "d.csv")), "--model",
                 "lstm", "--no-select", "--hidden", "4", "--epochs", "6", "--ensemble", "3",
                 "--quiet", "--no-baselines", "--out", str(out)]) == 130
    assert ("interrupted (SIGINT) in epoch 3 of ensemble member 3, which is left out: the "
            "ensemble keeps the 2 members trained to the end" in capsys.readouterr().err)
    report = json.loads((out / "report.json").read_text())
    assert len(report["member_accuracies"]) == 2
    assert [m["status"] for m in report["training"]["members"]] == ["finished", "finished",
                                                                    "interrupted"]
    assert len(SequenceClassifier.load(out / "model.ckpt").nets) == 2


def test_quiet_train_prints_the_result_alone(tmp_path, capsys):
    # --quiet still printed the choice of --readout, the candidates' header and the training
    # line on stderr; a script reading the run wants the result and errors only
    data = toy_ts(tmp_path / "Toy_TRAIN.ts", n=12)
    assert main(["classify", "train", str(data), "--model", "lstm", "--hidden", "2",
                 "--epochs", "1", "--quiet", "--no-baselines",
                 "--out", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "chose --readout" in out and "test accuracy:" in out


@pytest.mark.parametrize("argv, name, what", [
    (["classify", "train", "-", "--out", "{tmp}/run"], "DATA", "data"),
    (["classify", "train", "{csv}", "--test", "-", "--out", "{tmp}/run"], "--test", "test set"),
    (["classify", "predict", "{ckpt}", "-"], "DATA", "data"),
])
def test_dash_for_data_says_the_command_reads_files(trained, tmp_path, monkeypatch, capsys,
                                                    argv, name, what):
    # 'cat data.csv | lstmlab classify predict CKPT -' said "CSV file '-' does not exist",
    # where 'evaluate CKPT -' reads standard input
    import io

    ckpt, csv_path, _ = trained
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(csv_path.read_bytes())))
    assert main([a.format(tmp=tmp_path, csv=csv_path, ckpt=ckpt) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert err.endswith(f": error: {name} '-': this command reads files, not standard input; "
                        f"save the {what} to a file and pass that (a file named '-' is ./-)\n")
    assert out == "" and list(tmp_path.iterdir()) == []


def test_the_choice_and_its_scores_are_printed_once(tmp_path, capsys):
    # at a terminal the line of every candidate's scores came twice: on stderr when the
    # choice was made and on stdout in the result
    data = toy_ts(tmp_path / "Toy_TRAIN.ts", n=12)
    assert main(["classify", "train", str(data), "--model", "lstm", "--hidden", "2",
                 "--epochs", "1", "--no-baselines", "--out", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert "chose --readout" in err and "accuracy (cross-entropy)" not in err
    assert (out + err).count("accuracy (cross-entropy): --readout last --hidden 2") == 1


def test_predict_refuses_a_label_column_the_file_lacks(trained, tmp_path, capsys):
    # `classify predict CKPT data.csv --label Label` read the file as one to label and
    # printed no accuracy, without a word about the column it was asked to read
    ckpt, data_csv, _ = trained
    out = tmp_path / "p.csv"
    assert main(["classify", "predict", str(ckpt), str(data_csv), "--label", "Label",
                 "--out", str(out)]) == 2
    assert "label column 'Label' is not in" in capsys.readouterr().err and not out.exists()
    unlabelled = write(tmp_path / "u.csv", "id,x\na,1\na,2\n")  # no --label: a file to label
    assert main(["classify", "predict", str(ckpt), str(unlabelled), "--out", str(out)]) == 0


@pytest.mark.parametrize("command", ["train", "predict"])
@pytest.mark.parametrize("flag", ["--id", "--label"])
def test_an_empty_column_option_is_refused(trained, tmp_path, capsys, command, flag):
    # `--label ''` fell back to the column 'label' (or the checkpoint's) without a word
    ckpt, data_csv, _ = trained
    args = [str(data_csv)] if command == "train" else [str(ckpt), str(data_csv)]
    with pytest.raises(SystemExit) as stop:
        main(["classify", command, *args, flag, "", "--out", str(tmp_path / "out")])
    assert stop.value.code == 2
    assert f"argument {flag}: expected a column name, got ''" in capsys.readouterr().err


def test_labels_that_are_trained_labels_written_as_other_numbers_are_named(tmp_path, capsys):
    # a test set or a file to label with 1.0, 2.0 where training had 1, 2 was refused, or
    # given no accuracy, as unknown labels with no word of why
    def labelled(path, labels):
        return write(path, "id,x,label\n" + "".join(
            f"{i},{t * (i % 2)},{labels[i % 2]}\n" for i in range(8) for t in range(4)))

    train = labelled(tmp_path / "train.csv", ["1", "2"])
    floats = labelled(tmp_path / "floats.csv", ["1.0", "2.0"])
    hint = ("as numbers they are the same ('1.0' is '1', '2.0' is '2'), but a label is read "
            "as written: write them as the training data does")
    options = ["--model", "lstm", "--no-select", "--hidden", "4", "--epochs", "1", "--quiet",
               "--no-baselines"]
    assert main(["classify", "train", str(train), "--test", str(floats), *options,
                 "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "has labels that the training data does not have: '1.0', '2.0'" in err and hint in err
    out = tmp_path / "run"
    assert main(["classify", "train", str(train), *options, "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["classify", "predict", str(out / "model.ckpt"), str(floats),
                 "--out", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    assert "no accuracy: 8 of 8 sequences have labels the model was not trained on" in err
    assert hint in err
    from lstmlab.classify import SequenceDataError, read_sequences
    with pytest.raises(SequenceDataError, match=r"as numbers they are the same \('1.0' is '1'"):
        SequenceClassifier.load(out / "model.ckpt").evaluate(read_sequences(floats))


def test_a_value_that_cannot_be_scaled_is_named_by_its_file_line(trained, tmp_path, capsys):
    # a value too large to standardise is named by its file line first: its case and step
    # alone would have the user count rows in the file (after they are sorted by --time)
    from lstmlab.classify import SequenceDataError, read_sequences, read_ts
    from lstmlab.classify.model import check_feature_range

    ckpt, data_csv, data = trained
    rows = data_csv.read_text().splitlines()
    sid, _, label = rows[5].split(",")  # line 6: case '0', step 4
    rows[5] = f"{sid},1e300,{label}"
    huge = write(tmp_path / "huge.csv", "\n".join(rows) + "\n")
    assert main(["classify", "predict", str(ckpt), str(huge)]) == 2
    assert (f"{huge}: feature column 'x' holds 1e+300 at line 6, case '0' (step 4): values "
            f"beyond") in capsys.readouterr().err
    ts = write(tmp_path / "x.ts", "@problemName x\n@classLabel true a b\n@data\n"
               "1,2,3:a\n3,2,1:b\n1,1e300,3:a\n")
    with pytest.raises(SequenceDataError, match=r"holds 1e\+300 at line 6, case '2' \(step 1\)"):
        check_feature_range(read_ts(ts))
    train = write(tmp_path / "train.csv", "id,t,x,label\n" + "".join(
        f"s{i},{t},{t * (i % 2)},{'ab'[i % 2]}\n" for i in range(6) for t in range(3)))
    model = SequenceClassifier.train(read_sequences(train, time_col="t"),
                                     np.random.default_rng(0), hidden_size=3, znorm=False,
                                     fit_config=FitConfig(epochs=1))
    far = write(tmp_path / "far.csv", "id,t,x,label\ns0,1,0,a\ns0,0,0,a\ns1,1,1e100,b\n"
                "s1,0,0,b\n")  # line 4: step 1 of 's1' once sorted by t
    with pytest.raises(SequenceDataError, match=r"far.csv: line 4, case 's1' \(step 1\), "
                                                r"feature 'x': 1e\+100 is too far"):
        model.predict(read_sequences(far, time_col="t"))


def test_a_test_value_the_scaler_cannot_map_keeps_the_trained_model(tmp_path, capsys):
    # the fitted scaler maps a test value outside float32 only once training is over: the
    # error names it, and the trained model is written all the same
    train = write(tmp_path / "train.csv", "id,t,x,label\n" + "".join(
        f"s{i},{t},{t * (i % 2) + 0.1 * i},{'ab'[i % 2]}\n" for i in range(8) for t in range(3)))
    test = write(tmp_path / "test.csv", "id,t,x,label\nq0,0,0,a\nq0,1,1e40,a\nq1,0,1,b\n"
                 "q1,1,2,b\n")
    out = tmp_path / "run"
    assert main(["classify", "train", str(train), "--test", str(test), "--time", "t",
                 "--epochs", "1", "--hidden", "3", "--dtype", "float32", "--znorm", "off",
                 "--no-baselines", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "line 3, case 'q0' (step 1), feature 'x': 1e+40 is too far" in err
    assert f"the trained model is written to {out / 'model.ckpt'}, without a test score" in err
    assert main(["classify", "predict", str(out / "model.ckpt"), str(train)]) == 0


def test_extra_columns_of_a_test_set_or_a_file_to_label_are_left_out_with_a_note(tmp_path,
                                                                                  capsys):
    # train --test refused a test set with a column the training data lacked, while predict
    # left such a column out without a word; both read the trained features by name and
    # name the columns left out (when training read every column besides id, time, label)
    rows = [(i, t, t * (i % 2), "ab"[i % 2]) for i in range(8) for t in range(4)]
    train = write(tmp_path / "train.csv", "id,t,x,label\n"
                  + "".join(f"{i},{t},{x},{y}\n" for i, t, x, y in rows))
    extra = write(tmp_path / "extra.csv", "id,subject,t,x,z,label\n"
                  + "".join(f"{i},ann,{t},{x},7,{y}\n" for i, t, x, y in rows))
    note = "the columns 'subject', 'z' are not read: the features are the training data's (x)"
    out = tmp_path / "run"
    assert main(["classify", "train", str(train), "--test", str(extra), "--time", "t",
                 "--model", "lstm", "--no-select", "--hidden", "4", "--epochs", "1", "--quiet",
                 "--no-baselines", "--out", str(out)]) == 0
    assert f"{extra}: {note}" in capsys.readouterr().err
    assert main(["classify", "predict", str(out / "model.ckpt"), str(extra),
                 "--out", str(tmp_path / "p.csv")]) == 0
    assert note in capsys.readouterr().err
    assert main(["classify", "predict", str(out / "model.ckpt"), str(extra), "--features", "x",
                 "--out", str(tmp_path / "p.csv")]) == 0  # the columns chosen: nothing to note
    assert "not read" not in capsys.readouterr().err
