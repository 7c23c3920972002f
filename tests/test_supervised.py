"""The supervised training loop (``training/supervised.py``) on bad input: errors that name
the argument before any training."""

import math

import numpy as np
import pytest

from lstmlab.layers.seqnet import SequenceNet, SequenceNetConfig
from lstmlab.training.losses import mse_loss, softmax_cross_entropy
from lstmlab.training.supervised import FitConfig, fit_sequence_net


def small_net(rng):
    return SequenceNet(SequenceNetConfig(input_size=1, output_size=1, hidden_size=3,
                                         dtype="float64"), rng=rng)


def test_fit_refuses_batch_first_x_instead_of_pairing_targets_with_other_samples():
    rng = np.random.default_rng(0)
    net = small_net(rng)
    before = {k: v.copy() for k, v in net.params().items()}
    x = rng.normal(size=(20, 6, 1))  # (n, T, D): batch-first, where (T, n, D) is expected
    y = rng.normal(size=(20, 1))
    with pytest.raises(ValueError, match=r"target must have one row per sequence of x .*n = 6.*"
                                         r"got shape \(20, 1\).*transpose\(1, 0, 2\)"):
        fit_sequence_net(net, x, y, mse_loss, FitConfig(epochs=1), rng)
    assert all(np.array_equal(v, before[k]) for k, v in net.params().items())


@pytest.mark.parametrize("val, message", [
    ((np.zeros((4, 3, 1)), np.zeros((5, 1)), None), r"val\[1\] must have one row per sequence of val\[0\]"),
    ((np.zeros((4, 3, 1)), np.zeros((3, 1)), np.ones(5, int)), r"val\[2\] must have shape \(3,\)"),
    ((np.zeros((4, 3)), np.zeros((3, 1)), None), r"val\[0\] must have shape \(T, n, D\)"),
    ((np.zeros((4, 3, 1)), np.zeros((3, 1))), r"val must be a triple"),
    # an empty validation set failed after the first epoch, as "x must have at least one
    # sequence", naming the training input
    ((np.zeros((4, 0, 1)), np.zeros((0, 1)), None), r"val\[0\] has no sequences .*val=None"),
    # nested lists of unequal lengths failed inside NumPy's shape, "inhomogeneous shape"
    (([[[1.0]], [[1.0], [2.0]]], np.zeros((1, 1)), None), r"val\[0\] must be an array or "
                                                         r"equally long nested lists"),
    ((np.zeros((4, 3, 1)), [[0.0], [1.0, 2.0], [0.0]], None), r"val\[1\] must be an array"),
])
def test_fit_names_what_is_wrong_with_the_validation_set(val, message):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 8, 1)), rng.normal(size=(8, 1))
    with pytest.raises((ValueError, TypeError), match=message):
        fit_sequence_net(small_net(rng), x, y, mse_loss, FitConfig(epochs=1), rng, val=val)


def test_fit_names_lengths_of_another_count_than_the_sequences():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 8, 1)), rng.normal(size=(8, 1))
    with pytest.raises(ValueError, match=r"lengths must have shape \(8,\), one length per "
                                         r"sequence of x, got \(5,\)"):
        fit_sequence_net(small_net(rng), x, y, mse_loss, FitConfig(epochs=1), rng,
                         lengths=np.full(5, 4))


@pytest.mark.parametrize("setting", ["lr", "weight_decay", "clip"])
def test_fit_config_takes_no_bool_for_a_number(setting):
    with pytest.raises(ValueError, match=rf"{setting} must be a (positive number|number >= 0), "
                                         rf"got True"):
        FitConfig(**{setting: True})


def test_ctrl_c_stops_training_with_the_best_epoch_and_a_second_signal_stops_at_once():
    import signal

    from lstmlab.training.signals import StopNow

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 8, 1)), rng.normal(size=(8, 1))

    def interrupt(error):
        def on_epoch(record):
            if record["epoch"] == 2:
                raise error
        return on_epoch

    summary = fit_sequence_net(small_net(rng), x, y, mse_loss, FitConfig(epochs=5), rng,
                               on_epoch=interrupt(KeyboardInterrupt()))
    assert summary["status"] == "interrupted" and summary["epochs_run"] == 2
    # a second signal means "now" (training/signals.py): the commands write nothing more
    with pytest.raises(StopNow):
        fit_sequence_net(small_net(rng), x, y, mse_loss, FitConfig(epochs=5), rng,
                         on_epoch=interrupt(StopNow(signal.SIGTERM)))


def test_fit_config_refuses_a_weight_decay_that_flips_the_weights():
    # lstmlab forecast train --weight-decay 1e6 trained until "the training loss became inf
    # ... try a lower learning rate (--lr) or clipping (--clip)", which named neither cause
    with pytest.raises(ValueError, match=r"weight_decay \(--weight-decay\) times lr \(--lr\) "
                                         r"must be below 1, got 1000000.0 x 0.003 = 3000"):
        FitConfig(lr=3e-3, weight_decay=1e6)
    assert FitConfig(lr=3e-3, weight_decay=300.0).weight_decay == 300.0


@pytest.mark.parametrize("command", [["forecast", "train"],
                                     ["classify", "train", "--model", "lstm"]])
def test_commands_refuse_a_flipping_weight_decay_before_any_work(command, tmp_path, capsys):
    from lstmlab.cli import main

    out = tmp_path / "run"
    assert main([*command, "--weight-decay", "1000", "--lr", "0.01", "--out", str(out)]) == 2
    assert "--weight-decay" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("with_val", [True, False])
def test_a_diverged_run_is_named_and_keeps_the_weights_of_its_last_good_epoch(with_val):
    # the loss turning NaN in epoch 4 raised with the network left at its mid-epoch-4
    # weights: the best epoch so far (or the last whole one) was lost
    from lstmlab.training.supervised import TrainingDiverged

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 8, 1)), rng.normal(size=(8, 1))
    net = small_net(rng)
    seen, epochs = {}, []

    def on_epoch(record):
        epochs.append(record.get("val_loss", record["epoch"]))
        seen[record["epoch"]] = {k: v.copy() for k, v in net.params().items()}

    def loss_fn(out, target):
        loss, dout = mse_loss(out, target)
        return (math.nan if len(epochs) == 3 else loss), dout

    val = (x, y, None) if with_val else None
    with pytest.raises(TrainingDiverged, match=r"the training loss became nan in epoch 4 "
                                               r"\(the network holds the weights of epoch \d\)"
                       ) as caught:
        fit_sequence_net(net, x, y, loss_fn, FitConfig(epochs=6, batch_size=4), rng, val=val,
                         on_epoch=on_epoch)
    summary = caught.value.summary
    assert summary["status"] == "diverged" and summary["epochs_run"] == 4
    kept = summary["best_epoch"]
    assert kept == (1 + int(np.argmin(epochs)) if with_val else 3)
    assert all(np.array_equal(v, seen[kept][k]) for k, v in net.params().items())
    assert caught.value.exit_code == 3


def test_a_loss_overflowing_before_any_update_blames_the_data_not_the_learning_rate():
    # targets of 1e200 square to inf in the first batch: the error said "try a lower
    # learning rate (--lr) or clipping (--clip)", neither of which can help
    from lstmlab.training.supervised import TrainingDiverged

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 8, 1)), np.full((8, 1), 1e200)
    with pytest.raises(ValueError, match=r"the training loss is inf on the first batch, before "
                                         r"any update.*largest magnitude 1e\+200.*rescale") as e:
        fit_sequence_net(small_net(rng), x, y, mse_loss, FitConfig(epochs=2), rng)
    assert not isinstance(e.value, TrainingDiverged)


def test_fit_reads_lists_as_arrays():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 8, 1)), rng.normal(size=(8, 1))
    lengths = [4, 3, 2, 4, 1, 4, 4, 2]
    given = {"arrays": (x, y, np.array(lengths)), "lists": (x.tolist(), y.tolist(), lengths)}
    fit = {}
    for kind, (xs, ys, ls) in given.items():
        net = small_net(np.random.default_rng(1))
        fit_sequence_net(net, xs, ys, mse_loss, FitConfig(epochs=2, batch_size=4),
                         np.random.default_rng(2), lengths=ls)
        fit[kind] = net.params()
    for k, v in fit["arrays"].items():
        np.testing.assert_array_equal(fit["lists"][k], v, err_msg=k)


def test_fit_pairs_a_per_step_net_with_time_major_targets():
    rng = np.random.default_rng(0)
    T, n = 4, 8
    x = rng.normal(size=(T, n, 1))
    y = np.cumsum(x, axis=0)  # the running sum: a target per step, (T, n, 1) as the output
    net = SequenceNet(SequenceNetConfig(input_size=1, output_size=1, hidden_size=3,
                                        readout="all", dtype="float64"), rng=rng)
    summary = fit_sequence_net(net, x, y, mse_loss, FitConfig(epochs=2, batch_size=4), rng,
                               val=(x, y, None))
    assert summary["status"] == "finished" and math.isfinite(summary["best_val_loss"])
    # (n, T, 1) targets are refused: with batch_size = T a batch has the output's shape, and
    # the loss would pair step t of sequence b with step b of sequence t
    with pytest.raises(ValueError, match=r"target must have shape \(4, 8, \.\.\.\), a target "
                                         r"per step .*got shape \(8, 4, 1\)"):
        fit_sequence_net(net, x, y.transpose(1, 0, 2), mse_loss,
                         FitConfig(epochs=1, batch_size=T), rng)


def test_configs_take_numpy_numbers_and_give_json_values():
    import json
    fit = FitConfig(epochs=np.int64(2), lr=np.float32(0.01), patience=np.int64(3))
    assert json.loads(json.dumps(fit.to_json())) == fit.to_json()
    assert FitConfig.from_json(fit.to_json()) == fit
    net = SequenceNetConfig(input_size=np.int64(3), output_size=1, dtype=np.float32)
    assert net.to_json()["dtype"] == "float32" and type(net.to_json()["input_size"]) is int
    assert SequenceNetConfig.from_json(json.loads(json.dumps(net.to_json()))).input_size == 3


@pytest.mark.parametrize("cfg", [{"epochs": 1}, None, 5])
def test_fit_names_a_config_that_is_not_a_fit_config(cfg):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 8, 1)), rng.normal(size=(8, 1))
    with pytest.raises(TypeError, match=rf"^cfg must be a FitConfig .*FitConfig.from_json\(d\) "
                                        rf"for a dict\), got {type(cfg).__name__}$"):
        fit_sequence_net(small_net(rng), x, y, mse_loss, cfg, rng)


@pytest.mark.parametrize("given", [None, [1, 2], "epochs=2"])
def test_configs_from_json_name_what_is_not_a_json_object(given):
    from lstmlab.training.lm import TrainConfig
    for cls in (FitConfig, SequenceNetConfig, TrainConfig):
        with pytest.raises(ValueError, match=rf"^{cls.__name__}.from_json reads a JSON object "
                                             rf"\(a dict of its fields\), got "
                                             rf"{type(given).__name__}$"):
            cls.from_json(given)


def _model_configs():
    """Each config class whose fields a JSON object must match, with a complete object."""
    from lstmlab.classify.lstm_fcn import LSTMFCNConfig
    from lstmlab.insight.experiments import ExperimentConfig
    from lstmlab.layers.model import CharLMConfig
    return [(CharLMConfig, {"vocab_size": 5}), (SequenceNetConfig, {"input_size": 2,
                                                                    "output_size": 3}),
            (LSTMFCNConfig, {"input_size": 1, "output_size": 2, "length": 8}),
            (ExperimentConfig, {"task": "copy", "lengths": [4]})]


def test_configs_from_json_name_a_missing_field_and_what_they_take():
    # a missing field was the constructor's bare TypeError ("__init__() missing 1 required
    # positional argument"), or a KeyError for an experiment's config
    for cls, d in _model_configs():
        name, first = cls.__name__, next(iter(d))
        with pytest.raises(ValueError, match=rf"^{name}.from_json: missing field '{first}'; "
                                             rf"{name} takes the fields {first} \(required\), "):
            cls.from_json({k: v for k, v in d.items() if k != first})
        assert cls.from_json(d) == cls(**d)
    with pytest.raises(ValueError, match=r"^LSTMFCNConfig.from_json: missing fields "
                                         r"'input_size', 'output_size', 'length'; "):
        _model_configs()[2][0].from_json({})


def test_configs_from_json_name_an_unknown_field():
    for cls, d in _model_configs():
        name = cls.__name__
        with pytest.raises(ValueError, match=rf"^{name}.from_json: unknown field 'layers'; "
                                             rf"{name} takes the fields "):
            cls.from_json({**d, "layers": 2})
    cls, d = _model_configs()[0]
    with pytest.raises(ValueError, match=r"^CharLMConfig.from_json: missing field 'vocab_size' "
                                         r"and unknown fields 'a', 'b', 'c', 'd', 'e' and 2 "
                                         r"more; CharLMConfig takes"):
        cls.from_json(dict.fromkeys("abcdefg", 1))


def test_settings_from_json_leave_out_an_unknown_field_and_check_a_value():
    # the training settings load from a later version's checkpoint, which has more of them
    assert FitConfig.from_json({"epochs": 3, "warmup": 5}) == FitConfig(epochs=3)
    with pytest.raises(ValueError, match=r"^epochs must be a positive integer, got '3'$"):
        FitConfig.from_json({"epochs": "3"})
    for cls, d in _model_configs():
        first = next(iter(d))
        with pytest.raises(ValueError, match=rf"^{first} must be "):
            cls.from_json({**d, first: "two"})


def test_models_name_a_config_that_is_not_their_config_class():
    from lstmlab import CharLM
    for make, given, name in ((SequenceNet, {"input_size": 3, "output_size": 1},
                               "SequenceNetConfig"), (CharLM, 5, "CharLMConfig"),
                              (CharLM, {"vocab_size": 5}, "CharLMConfig")):
        with pytest.raises(TypeError, match=rf"^config must be a {name} \(.*{name}.from_json\(d\) "
                                            rf"for a dict\), got {type(given).__name__}$"):
            make(given)


@pytest.mark.parametrize("name, value", [("loss_fn", "mse"), ("loss_fn", None),
                                         ("on_epoch", 1),
                                         ("should_stop", True)])
def test_fit_names_a_loss_or_hook_that_cannot_be_called_before_any_training(name, value):
    # the loop calls them only after a batch or an epoch: checked before it starts
    rng = np.random.default_rng(0)
    net = small_net(rng)
    before = {k: v.copy() for k, v in net.params().items()}
    kwargs = {"loss_fn": mse_loss, name: value}
    with pytest.raises(TypeError, match=f"^{name} must be a function"):
        fit_sequence_net(net, np.zeros((4, 3, 1)), np.zeros((3, 1)), cfg=FitConfig(epochs=1),
                         rng=rng, **kwargs)
    assert all(np.array_equal(v, before[k]) for k, v in net.params().items())


def test_a_per_step_net_with_lengths_is_neither_scored_nor_trained_on_the_padding():
    rng = np.random.default_rng(0)
    T, n = 5, 6
    lengths = np.array([5, 2, 3, 1, 4, 5])
    pad = np.arange(T)[:, None, None] >= lengths[None, :, None]  # (T, n, 1)
    x = np.where(pad, 0.0, rng.normal(size=(T, n, 1)))
    y = np.where(pad, 0.0, np.cumsum(x, axis=0))
    fitted = {}
    for filler in (0.0, 1e3):  # what stands in the targets' padding must change nothing
        target = np.where(pad, filler, y)
        net = SequenceNet(SequenceNetConfig(input_size=1, output_size=1, hidden_size=3,
                                            readout="all", dtype="float64"),
                          rng=np.random.default_rng(1))
        summary = fit_sequence_net(net, x, target, mse_loss, FitConfig(epochs=2, batch_size=3),
                                   np.random.default_rng(2), lengths=lengths,
                                   val=(x, target, lengths))
        fitted[filler] = summary["best_val_loss"], net.params()
    (loss0, p0), (loss1, p1) = fitted[0.0], fitted[1e3]
    assert loss0 == loss1 < 10
    for k, v in p0.items():
        np.testing.assert_array_equal(p1[k], v, err_msg=k)


def _last_sequence(value, x=np.zeros((4, 3, 1))):
    """``x`` with ``value`` in its last sequence only (the check must look past the first)."""
    x = x.copy()
    x[-1, -1, -1] = value
    return x


@pytest.mark.parametrize("val, message, loss_fn", [
    ((np.full((4, 3, 1), np.nan), np.zeros((3, 1)), None), r"x contains NaN", mse_loss),
    ((_last_sequence(np.nan), np.zeros((3, 1)), None), r"x contains NaN.*\(3, 2, 0\)",
     mse_loss),
    ((_last_sequence(np.inf), np.zeros((3, 1)), None), r"x contains NaN or inf", mse_loss),
    ((_last_sequence(1e300).astype(np.float64), np.zeros((3, 1)), None),
     r"x holds 1e\+300 .*beyond the range of float32", mse_loss),
    ((np.zeros((4, 3, 1), int), np.zeros((3, 1)), None), r"x must be a real floating-point",
     mse_loss),
    ((np.zeros((4, 3, 2)), np.zeros((3, 1)), None), r"x must have 1 features", mse_loss),
    ((np.zeros((4, 3, 1)), np.zeros((3, 2)), None), r"target must have the shape of pred",
     mse_loss),
    ((np.zeros((0, 3, 1)), np.zeros((3, 1)), None),
     r"x must have at least one time step, got shape \(0, 3, 1\)", mse_loss),
    ((np.zeros((4, 3, 1)), np.zeros((3, 1)), np.array([1, 5, 2])),
     r"lengths must lie in \[1, 4\]", mse_loss),
    ((np.zeros((4, 3, 1)), np.zeros((3, 1)), np.array([2, 1, 0])),
     r"lengths must lie in \[1, 4\]", mse_loss),
    ((np.zeros((4, 3, 1)), np.zeros((3, 1)), np.array([2.0, 1.5, 3.0])),
     r"lengths must be integers", mse_loss),
    ((np.zeros((4, 3, 1)), np.array([0, 0, 1]), None), r"targets must lie in \[0, 0\].*got 1",
     softmax_cross_entropy),
    ((np.zeros((4, 3, 1)), np.array([0, 0, -1]), None), r"targets must lie in \[0, 0\].*got -1",
     softmax_cross_entropy),
])
def test_fit_refuses_a_validation_set_the_net_or_loss_refuses_before_an_epoch(val, message,
                                                                              loss_fn):
    rng = np.random.default_rng(0)
    net = SequenceNet(SequenceNetConfig(input_size=1, output_size=1, hidden_size=3), rng=rng)
    before = {k: v.copy() for k, v in net.params().items()}
    epochs = []
    with pytest.raises((ValueError, TypeError),
                       match=r"^the validation set val = \(x, target, lengths\) "
                             r"is refused: " + message):
        fit_sequence_net(net, rng.normal(size=(4, 6, 1)), np.zeros((6, 1)), loss_fn,
                         FitConfig(epochs=2), rng, val=val, on_epoch=epochs.append)
    assert epochs == []
    assert all(np.array_equal(v, before[k]) for k, v in net.params().items())


@pytest.mark.parametrize("readout", ["last", "all"])
def test_a_target_the_loss_refuses_in_a_later_batch_stops_the_run_before_any_update(readout):
    # a label out of range in the last batch was found after the first batches had updated
    # the weights in place
    rng = np.random.default_rng(0)
    net = SequenceNet(SequenceNetConfig(2, 3, 4, readout=readout), rng=rng)
    x = rng.normal(size=(5, 40, 2)).astype(np.float32)
    y = np.array([0, 1, 2, 0] * 10)
    y[-1] = 7
    y = y if readout == "last" else np.tile(y, (5, 1))  # per step: (T, n)
    before = {k: v.copy() for k, v in net.params().items()}
    with pytest.raises(ValueError, match="got 7"):
        fit_sequence_net(net, x, y, softmax_cross_entropy, FitConfig(batch_size=2, epochs=1),
                         rng)
    assert all(np.array_equal(before[k], v) for k, v in net.params().items())


def test_the_validation_set_is_scored_once_per_epoch_not_also_before_training():
    # its check before training scored it whole, the first epoch's score then repeating it
    class Counting(SequenceNet):
        def predict(self, x, lengths=None, batch_size=1024):
            self.seen.append(np.shape(x)[1])
            return super().predict(x, lengths, batch_size)

    rng = np.random.default_rng(0)
    net = Counting(SequenceNetConfig(input_size=1, output_size=1, hidden_size=3), rng=rng)
    net.seen = []
    val = (rng.normal(size=(4, 50, 1)), rng.normal(size=(50, 1)), None)
    fit_sequence_net(net, rng.normal(size=(4, 6, 1)), rng.normal(size=(6, 1)), mse_loss,
                     FitConfig(epochs=2), rng, val=val)
    assert net.seen.count(50) == 2  # the two epochs' scores
    assert sum(net.seen) <= 2 * 50 + 4  # besides them, single-sequence probes


@pytest.mark.parametrize("bad, message", [
    ("nan", r"x contains NaN or inf \(first at index \(3, 39, 0\)\)"),
    ("huge", r"x holds 1e\+300 at index \(3, 39, 0\), beyond the range of float32"),
    ("length", r"lengths must lie in \[1, 4\] \(T = 4\), got values from 1 to 9"),
])
def test_bad_input_in_the_last_training_sequence_stops_the_run_before_any_update(bad, message):
    # found by the forward of its shuffled batch, after earlier batches had changed the
    # weights, the error giving the index within that batch
    rng = np.random.default_rng(0)
    net = SequenceNet(SequenceNetConfig(input_size=1, output_size=1, hidden_size=3), rng=rng)
    x, lengths = rng.normal(size=(4, 40, 1)), np.arange(40) % 4 + 1
    if bad == "length":
        lengths[-1] = 9
    else:
        x[-1, -1, 0] = np.nan if bad == "nan" else 1e300
    before = {k: v.copy() for k, v in net.params().items()}
    with pytest.raises(ValueError, match=message):
        fit_sequence_net(net, x, rng.normal(size=(40, 1)), mse_loss,
                         FitConfig(epochs=1, batch_size=4), rng, lengths=lengths)
    assert all(np.array_equal(v, before[k]) for k, v in net.params().items())


@pytest.mark.parametrize("returned", [1.0, (np.array([1.0]), None), ("1.0", None), None])
@pytest.mark.parametrize("readout", ["last", "all"])
def test_a_loss_fn_that_returns_no_loss_and_gradient_is_named(returned, readout):
    # Python's own error at the unpacking ("cannot unpack non-iterable float object", "only
    # 0-dimensional arrays can be converted") named neither loss_fn nor its contract
    rng = np.random.default_rng(0)
    net = SequenceNet(SequenceNetConfig(input_size=1, output_size=1, hidden_size=3,
                                        readout=readout), rng=rng)
    x = rng.normal(size=(4, 6, 1))
    y = rng.normal(size=(6, 1) if readout == "last" else (4, 6, 1))
    before = {k: v.copy() for k, v in net.params().items()}
    with pytest.raises(TypeError, match=r"^loss_fn must return a pair \(loss, dout\), a number "
                                        r"and the gradient of out, as mse_loss does; got "):
        fit_sequence_net(net, x, y, lambda out, target: returned, FitConfig(epochs=1), rng,
                         lengths=np.full(6, 3))
    assert all(np.array_equal(v, before[k]) for k, v in net.params().items())


def test_training_sequences_of_no_steps_are_named_in_their_own_shape():
    # the error gave the shape of the one sequence the check runs, (0, 1, 1)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"^x must have at least one time step, got shape "
                                         r"\(0, 5, 1\)$"):
        fit_sequence_net(small_net(rng), np.zeros((0, 5, 1)), np.zeros((5, 1)), mse_loss,
                         FitConfig(epochs=1), rng)


def test_a_per_step_validation_target_the_loss_refuses_stops_the_run_before_an_epoch():
    rng = np.random.default_rng(0)
    net = SequenceNet(SequenceNetConfig(2, 3, 4, readout="all"), rng=rng)
    x = rng.normal(size=(5, 6, 2)).astype(np.float32)
    y = np.tile(np.arange(6) % 3, (5, 1))  # (T, n) labels per step
    bad = y.copy()
    bad[2, -1] = 7  # a valid step of the last sequence (length 3)
    before = {k: v.copy() for k, v in net.params().items()}
    with pytest.raises(ValueError, match=r"^the validation set val = \(x, target, lengths\) is "
                                         r"refused: targets must lie in \[0, 2\].*got 7"):
        fit_sequence_net(net, x, y, softmax_cross_entropy, FitConfig(epochs=1), rng,
                         val=(x, bad, np.full(6, 3)))
    assert all(np.array_equal(v, before[k]) for k, v in net.params().items())
    bad[2, -1], bad[4, -1] = 0, 7  # past the length: padding, neither scored nor refused
    fit_sequence_net(net, x, y, softmax_cross_entropy, FitConfig(epochs=1), rng,
                     val=(x, bad, np.full(6, 3)))


def test_a_net_without_the_models_methods_is_named_before_training():
    # named before training: without the check, None fails on its missing params() and a
    # bare LSTM (forward returns (y, state)) inside the loss ("pred must be an array")
    from lstmlab.layers import LSTM

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 6, 3)), rng.normal(size=(6, 2))
    with pytest.raises(TypeError, match=r"^net must be a model with the methods forward, "
                                        r"backward, predict, .*; None lacks forward"):
        fit_sequence_net(None, x, y, mse_loss, FitConfig(epochs=1), rng)
    lstm = LSTM(3, 2, rng=rng)
    before = {k: v.copy() for k, v in lstm.params().items()}
    with pytest.raises(TypeError, match=r"LSTM lacks predict; a recurrent layer alone returns "
                                        r"\(y, state\) from forward: put it in a SequenceNet"):
        fit_sequence_net(lstm, x, y, mse_loss, FitConfig(epochs=1), rng)
    assert all(np.array_equal(v, before[k]) for k, v in lstm.params().items())
