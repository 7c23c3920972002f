"""Choosing the readout and width on held-out training data: the candidates, the rule
(accuracy, then cross-entropy, then the first), the same part and seed for every candidate,
and the command line (open choices are chosen and reported; given flags are kept)."""

import json

import numpy as np
import pytest

from lstmlab.classify.data import SequenceSet, synthetic_sequences
from lstmlab.classify.selection import candidates, choose, flags
from lstmlab.cli import main


def test_candidates_are_the_open_choices():
    assert candidates("lstm-fcn", None, None) == [{"hidden_size": 8}, {"hidden_size": 64}]
    assert candidates("lstm-fcn", 16, "mean") == [{"hidden_size": 16}]
    assert candidates("fcn", None, None) == [{}]
    assert candidates("lstm", None, "mean") == [{"readout": "mean", "hidden_size": 32},
                                                {"readout": "mean", "hidden_size": 64}]
    assert len(candidates("rnn", None, None)) == 4
    assert candidates("lstm", 5, "last") == [{"readout": "last", "hidden_size": 5}]
    assert flags({"readout": "mean", "hidden_size": 32}) == "--readout mean --hidden 32"


class _Scored:
    """A stand-in classifier whose held-out probabilities are given: class 0 with ``p0``."""

    classes = ["a", "b"]

    def __init__(self, p0_by_label):
        self.p0_by_label = p0_by_label
        self.meta = {"summary": {"seconds": 0.0}}

    def encode_labels(self, labels):
        return np.array([self.classes.index(lab) for lab in labels])

    def predict_proba(self, data):
        p0 = np.array([self.p0_by_label[lab] for lab in data.labels])
        return np.stack([p0, 1 - p0], axis=1)


def _two_classes(n):
    return SequenceSet([np.full((3, 1), float(i)) for i in range(n)],
                       ["a" if i % 2 else "b" for i in range(n)], [str(i) for i in range(n)], ["x"])


@pytest.mark.parametrize("scores, want", [
    # (p(a) for a-cases, p(a) for b-cases) per candidate -> the index chosen
    ([(0.4, 0.4), (0.9, 0.1)], 1),  # more accurate
    ([(0.6, 0.4), (0.9, 0.1)], 1),  # equally accurate, lower cross-entropy
    ([(0.9, 0.1), (0.9, 0.1)], 0),  # a tie keeps the first
    ([(0.9, 0.1), (0.6, 0.4), (0.9, 0.6)], 0),
])
def test_the_rule_is_accuracy_then_cross_entropy_then_the_first(scores, want):
    data = _two_classes(30)
    options = [{"hidden_size": 8 * (k + 1)} for k in range(len(scores))]
    calls = []

    def train(part, generator, settings):
        calls.append((sorted(part.ids), generator.integers(10**9), settings))
        pa, pb = scores[options.index(settings)]
        return _Scored({"a": pa, "b": pb})

    sel = choose(data, np.random.default_rng(0), options, train)
    assert sel.chosen == options[want]
    assert [c[2] for c in calls] == options
    assert all(c[0] == calls[0][0] and c[1] == calls[0][1] for c in calls)  # same part, seed
    assert sel.n_held == 10 and sel.n_fit == 20  # a third of a small set, by class
    assert len(calls[0][0]) == 20 and sel.to_json()["chosen"] == options[want]
    accs = [c["accuracy"] for c in sel.scores]
    assert accs[want] == max(accs)
    assert flags(options[want]) in sel.describe()


def test_a_choice_among_interrupted_candidates_says_so():
    # after Ctrl-C in the first candidate, the second trained one batch and the line read as
    # an ordinary choice between two settings
    def train(part, generator, settings):
        model = _Scored({"a": 0.9, "b": 0.1} if settings["hidden_size"] == 8 else
                        {"a": 0.5, "b": 0.5})
        model.meta["summary"]["status"] = "interrupted"
        return model

    sel = choose(_two_classes(30), np.random.default_rng(0),
                 [{"hidden_size": 8}, {"hidden_size": 64}], train)
    text = sel.describe()
    assert "--hidden 8: 1.000 (0.105) interrupted" in text
    assert text.endswith("the choice was interrupted, so it compares candidates trained "
                         "partly or not at all")
    assert [c["status"] for c in sel.to_json()["candidates"]] == ["interrupted"] * 2


def test_a_large_set_holds_out_fifteen_percent():
    sel = choose(_two_classes(400), np.random.default_rng(1), [{"hidden_size": 1}, {"hidden_size": 2}],
                 lambda part, g, s: _Scored({"a": 0.9, "b": 0.1}))
    assert (sel.n_fit, sel.n_held) == (340, 60)


def _write_ts(path, data):
    lines = [",".join(f"{v:.4f}" for v in s[:, 0]) + f":{lab}" for s, lab in zip(data.x, data.labels)]
    path.write_text("@problemName Syn\n@timeStamps false\n@missing false\n@univariate true\n"
                    "@equalLength false\n@classLabel true " + " ".join(sorted(set(data.labels)))
                    + "\n@data\n" + "\n".join(lines) + "\n")


def test_cli_chooses_what_is_not_given_and_keeps_what_is(tmp_path, capsys):
    folder = tmp_path / "Syn"
    folder.mkdir()
    _write_ts(folder / "Syn_TRAIN.ts", synthetic_sequences(30, np.random.default_rng(0)))
    _write_ts(folder / "Syn_TEST.ts", synthetic_sequences(12, np.random.default_rng(1)))
    common = [str(folder), "--epochs", "2", "--filters", "2,2,2", "--quiet", "--no-baselines"]
    assert main(["classify", "train", *common, "--out", str(tmp_path / "a")]) == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    sel = report["selection"]
    assert [c["settings"] for c in sel["candidates"]] == [{"hidden_size": 8}, {"hidden_size": 64}]
    assert (sel["n_fit"], sel["n_held_out"]) == (20, 10)  # a third of each class
    assert report["hidden_size"] == sel["chosen"]["hidden_size"]
    assert f"chose --hidden {report['hidden_size']} on 10 held-out" in capsys.readouterr().out

    assert main(["classify", "train", *common, "--hidden", "3", "--out", str(tmp_path / "b")]) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["selection"] is None and report["hidden_size"] == 3
    assert "chose" not in capsys.readouterr().out

    assert main(["classify", "train", *common, "--no-select", "--out", str(tmp_path / "d")]) == 0
    report = json.loads((tmp_path / "d" / "report.json").read_text())
    assert report["selection"] is None and report["hidden_size"] == 8

    plain = [a for a in common if a not in ("--filters", "2,2,2")]  # lstm has no filters
    assert main(["classify", "train", *plain, "--model", "lstm", "--hidden", "3",
                 "--out", str(tmp_path / "c")]) == 0
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert [c["settings"]["readout"] for c in report["selection"]["candidates"]] == ["last", "mean"]
    assert report["readout"] == report["selection"]["chosen"]["readout"]


def test_a_set_with_nothing_to_hold_out_says_what_to_do():
    one_each = SequenceSet([np.zeros((3, 1)), np.ones((3, 1))], ["a", "b"], ["0", "1"], ["x"])
    with pytest.raises(ValueError, match="--no-select"):
        choose(one_each, np.random.default_rng(0), [{"hidden_size": 1}, {"hidden_size": 2}],
               lambda part, g, s: _Scored({"a": 0.9, "b": 0.1}))
