"""The LSTM-FCN authors' training protocol as options: the training-loss checkpoint, the
plateau learning-rate schedule and balanced class weights (library and command line)."""

import json

import numpy as np
import pytest
from seq_helpers import one_blas_thread, write  # noqa: F401

from lstmlab.classify import SequenceClassifier
from lstmlab.classify.data import SequenceSet
from lstmlab.classify.model import balanced_class_weights, weighted_cross_entropy
from lstmlab.cli import main
from lstmlab.layers.seqnet import SequenceNet, SequenceNetConfig
from lstmlab.training.losses import softmax_cross_entropy
from lstmlab.training.supervised import FitConfig, fit_sequence_net


def _problem(seed: int, n: int = 24, T: int = 5, classes: int = 3):
    """Random sequences with random labels (the loss goes up and down at a high rate)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(T, n, 2))
    y = rng.integers(0, classes, size=n)
    net = SequenceNet(SequenceNetConfig(input_size=2, output_size=classes, hidden_size=6,
                                        dtype="float64"), rng=np.random.default_rng(seed))
    return net, x, y


def test_plateau_schedule_cuts_by_cube_root_of_two_after_epochs_without_a_lower_loss():
    net, x, y = _problem(0)
    cfg = FitConfig(epochs=40, batch_size=8, lr=0.6, schedule="plateau", plateau_epochs=2)
    records = []
    fit_sequence_net(net, x, y, softmax_cross_entropy, cfg, np.random.default_rng(0),
                     on_epoch=records.append)
    lrs = [r["lr"] for r in records]
    assert lrs[0] == 0.6
    lr, best, wait, cuts = 0.6, np.inf, 0, 0
    for rec, used in zip(records, lrs):
        assert used == pytest.approx(lr, rel=1e-12)  # the rate this epoch's updates used
        if rec["train_loss"] < best:
            best, wait = rec["train_loss"], 0
            continue
        wait += 1
        if wait == 2:
            lr, wait, cuts = max(lr / 2 ** (1 / 3), 0.06), 0, cuts + 1
    assert cuts >= 3 and min(lrs) >= 0.06 and all(b <= a for a, b in zip(lrs, lrs[1:]))


def test_train_loss_checkpoint_keeps_the_epoch_of_lowest_training_loss_and_runs_every_epoch():
    net, x, y = _problem(0)
    rng = np.random.default_rng(2)
    val = (rng.normal(size=(5, 6, 2)), rng.integers(0, 3, size=6), None)
    snapshots, records = [], []

    def on_epoch(rec):
        records.append(rec)
        snapshots.append({k: v.copy() for k, v in net.params().items()})

    # a constant rate (no plateau of 100 epochs in 40) that makes the loss jump
    cfg = FitConfig(epochs=40, batch_size=8, lr=0.6, patience=1, checkpoint="train-loss",
                    schedule="plateau")
    summary = fit_sequence_net(net, x, y, softmax_cross_entropy, cfg, np.random.default_rng(0),
                               val=val, on_epoch=on_epoch)
    losses = [r["train_loss"] for r in records]
    best = int(np.argmin(losses))
    assert len(records) == 40 and summary["status"] == "finished"  # patience does not apply
    assert best < 39  # the last epoch is not the lowest, so the choice is visible
    assert summary["best_epoch"] == best + 1 and summary["best_train_loss"] == losses[best]
    for k, v in net.params().items():
        np.testing.assert_array_equal(v, snapshots[best][k])


def test_weighted_cross_entropy_is_the_weighted_batch_mean_with_its_gradient():
    rng = np.random.default_rng(3)
    n, C = int(rng.integers(1, 7)), 4
    z = rng.normal(size=(n, C)) * 3
    y = rng.integers(0, C, size=n)
    same = weighted_cross_entropy(np.ones(C))(z, y)
    ref = softmax_cross_entropy(z, y)
    assert same[0] == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(same[1], ref[1], rtol=1e-12)
    w = rng.uniform(0.5, 3, size=C)
    loss, grad = weighted_cross_entropy(w)(z, y)
    per_row = [softmax_cross_entropy(z[i:i + 1], y[i:i + 1])[0] for i in range(n)]
    assert loss == pytest.approx(np.dot(w[y], per_row) / n, rel=1e-12)
    eps, numeric = 1e-6, np.zeros_like(z)
    for idx in np.ndindex(*z.shape):
        hi, lo = z.copy(), z.copy()
        hi[idx] += eps
        lo[idx] -= eps
        numeric[idx] = (weighted_cross_entropy(w)(hi, y)[0]
                        - weighted_cross_entropy(w)(lo, y)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=1e-8)
    np.testing.assert_allclose(balanced_class_weights(np.array([0, 0, 0, 1]), 3), [2 / 3, 2, 0])


def test_balanced_class_weights_predict_equal_odds_when_the_inputs_say_nothing():
    """Constant inputs: the plain classifier learns the class frequencies (3 to 1), the
    balanced one equal probabilities."""
    data = SequenceSet(x=[np.zeros((3, 1)) for _ in range(40)], labels=["a"] * 30 + ["b"] * 10,
                       ids=[str(i) for i in range(40)], features=["v"])
    fit = FitConfig(epochs=150, batch_size=40, lr=0.05)
    for weight, p_b in ((None, 0.25), ("balanced", 0.5)):
        model = SequenceClassifier.train(data, np.random.default_rng(0), cell="lstm",
                                         hidden_size=4, dtype="float64", fit_config=fit,
                                         val_fraction=0.0, class_weight=weight)
        assert model.predict_proba(data)[:, 1] == pytest.approx(p_b, abs=0.02), weight
    with pytest.raises(ValueError, match="class_weight"):
        SequenceClassifier.train(data, np.random.default_rng(0), class_weight="inverse")


TS = """@problemName Toy
@timeStamps false
@univariate true
@equalLength true
@classLabel true a b
@data
"""


def _toy(path, n, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = int(i % 3 == 0)  # 1 in 3 is class b
        v = np.sin(np.arange(12) * (0.5 + k)) + 0.2 * rng.normal(size=12)
        rows.append(",".join(f"{a:.3f}" for a in v) + ":" + "ab"[k])
    return write(path, TS + "\n".join(rows) + "\n")


def test_cli_authors_protocol_options(tmp_path, capsys):
    folder = tmp_path / "Toy"
    folder.mkdir()
    _toy(folder / "Toy_TRAIN.ts", 30, 0)
    _toy(folder / "Toy_TEST.ts", 15, 1)
    out = tmp_path / "run"
    rc = main(["classify", "train", str(folder), "--filters", "4,4,4", "--hidden", "4",
               "--epochs", "8", "--lr-schedule", "plateau", "--plateau-epochs", "1",
               "--checkpoint", "train-loss", "--class-weight", "balanced", "--no-baselines",
               "--quiet", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["fit"]["schedule"] == "plateau" and report["fit"]["checkpoint"] == "train-loss"
    assert report["class_weights"] == pytest.approx([30 / (2 * 20), 30 / (2 * 10)])
    losses = [json.loads(line)["train_loss"]
              for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert report["n_val"] == 0 and report["training"]["best_train_loss"] == min(losses)
    capsys.readouterr()
    rc = main(["classify", "train", str(folder), "--checkpoint", "train-loss", "--val-fraction",
               "0.2", "--out", str(tmp_path / "r2")])
    assert rc == 2 and "--val-fraction 0.2 cannot go with --checkpoint train-loss" in \
        capsys.readouterr().err
