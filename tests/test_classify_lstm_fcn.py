"""LSTM-FCN against the same network in PyTorch float64; the classifier's ensemble, per-series
z-normalisation, validation scheme and checkpoints; `classify predict` reading the CSV
columns from the checkpoint; the FCN alone (``--model fcn``, the LSTM branch left out)."""

import json

import numpy as np
import pytest

from lstmlab.classify import SequenceClassifier, synthetic_sequences
from lstmlab.classify.lstm_fcn import LSTMFCN, LSTMFCNConfig, lstmfcn_param_count
from lstmlab.cli import main
from lstmlab.training.supervised import FitConfig

torch = pytest.importorskip("torch")


def torch_twin(net: LSTMFCN):
    """The same network in PyTorch (weights copied from ``net``)."""
    c = net.config
    widths = (c.input_size,) + c.filters
    convs = [torch.nn.Conv1d(widths[i], widths[i + 1], c.kernels[i], padding="same").double()
             for i in range(3)]
    bns = [torch.nn.BatchNorm1d(f).double() for f in c.filters]
    lstm = torch.nn.LSTM(c.length, c.hidden_size, bidirectional=c.bidirectional).double()
    head = torch.nn.Linear(net.head.in_features, c.output_size).double()
    with torch.no_grad():
        for ours, conv in zip(net.convs, convs):
            conv.weight.copy_(torch.from_numpy(ours.weight))
            conv.bias.copy_(torch.from_numpy(ours.bias))
        for ours, bn in zip(net.bns, bns):
            bn.weight.copy_(torch.from_numpy(ours.weight))
            bn.bias.copy_(torch.from_numpy(ours.bias))
        head.weight.copy_(torch.from_numpy(net.head.weight))
        head.bias.copy_(torch.from_numpy(net.head.bias))
    net.lstm.load_torch_state_dict(lstm.state_dict())

    def forward(x):  # x (T, B, D)
        T = x.shape[0]
        h = x.permute(1, 2, 0)  # (B, D, T)
        for conv, bn in zip(convs, bns):
            h = torch.relu(bn(conv(h)))
        pooled = h.mean(dim=2)
        shuffled = torch.nn.functional.pad(x.permute(2, 1, 0), (0, c.length - T))  # (D, B, L)
        _, (h_n, _) = lstm(shuffled)
        return head(torch.cat(list(h_n) + [pooled], dim=1))

    modules = dict(conv=convs, bn=bns, lstm=lstm, head=head)
    return forward, modules


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("T,B,bidirectional", [(1, 2, False), (5, 1, True), (9, 3, False),
                                               (6, 4, True)])
def test_lstm_fcn_matches_torch(T, B, bidirectional):
    rng = np.random.default_rng([T, B, bidirectional])
    D, C = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    config = LSTMFCNConfig(D, C, length=T + 2, hidden_size=3, filters=(4, 5, 3),
                           kernels=(4, 3, 2), lstm_dropout=0.0, bidirectional=bidirectional,
                           dtype="float64")
    net = LSTMFCN(config, rng=rng)
    for bn in net.bns:  # non-trivial affine parameters
        bn.weight[...] = rng.normal(1, 0.3, bn.num_features)
        bn.bias[...] = rng.normal(0, 0.5, bn.num_features)
    forward, mods = torch_twin(net)
    for p in mods["lstm"].parameters():  # non-zero LSTM biases (two different ones in torch)
        with torch.no_grad():
            p.copy_(torch.from_numpy(rng.normal(0, 0.5, tuple(p.shape))))
    net.lstm.load_torch_state_dict(mods["lstm"].state_dict())
    x = rng.standard_normal((T, B, D))
    dout = rng.standard_normal((B, C))
    xt = torch.tensor(x)
    yt = forward(xt)
    yt.backward(torch.tensor(dout))
    y = net.forward(x)
    net.backward(dout)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = net.grads()

    def same(ours, theirs):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-9, atol=1e-12)

    for i in range(3):
        same(g[f"conv{i + 1}.weight"], mods["conv"][i].weight)
        same(g[f"conv{i + 1}.bias"], mods["conv"][i].bias)
        same(g[f"bn{i + 1}.weight"], mods["bn"][i].weight)
        same(g[f"bn{i + 1}.bias"], mods["bn"][i].bias)
    same(g["head.weight"], mods["head"].weight)
    same(g["head.bias"], mods["head"].bias)
    ours = net.lstm.torch_state_dict(grads=True)
    for name, p in mods["lstm"].named_parameters():
        if name.startswith("weight"):
            same(ours[name], p)
    # the two biases of torch get the same gradient; ours is their sum's
    np.testing.assert_allclose(ours["bias_ih_l0"], mods["lstm"].bias_ih_l0.grad.numpy(),
                               rtol=1e-9, atol=1e-12)


def _fit(**kw):
    return FitConfig(epochs=kw.pop("epochs", 30), batch_size=16, lr=1e-2, patience=0)


def test_ensemble_averages_its_members_and_survives_a_checkpoint(tmp_path):
    data = synthetic_sequences(60, np.random.default_rng(0))
    test = synthetic_sequences(45, np.random.default_rng(1))
    model = SequenceClassifier.train(data, np.random.default_rng(0), cell="lstm-fcn",
                                     hidden_size=4, filters=(8, 8, 8), ensemble=3,
                                     fit_config=_fit(epochs=20))
    assert len(model.nets) == 3 and len(model.meta["summary"]["members"]) == 3
    members = model.member_proba(test)
    np.testing.assert_allclose(model.predict_proba(test), members.mean(axis=0))
    res = model.evaluate(test)
    assert len(res["member_accuracies"]) == 3 and res["accuracy"] >= 0.9
    assert not np.allclose(members[0], members[1]) and not np.allclose(members[1], members[2])
    model.save(tmp_path / "m.ckpt")
    back = SequenceClassifier.load(tmp_path / "m.ckpt")
    np.testing.assert_array_equal(back.predict_proba(test), model.predict_proba(test))


@pytest.mark.parametrize("cell", ["lstm-fcn", "lstm"])
def test_znormalised_model_ignores_offset_and_scale_of_each_series(cell):
    data = synthetic_sequences(40, np.random.default_rng(2))
    size = dict(hidden_size=4, **({"filters": (4, 4, 4)} if cell == "lstm-fcn" else {}))
    model = SequenceClassifier.train(data, np.random.default_rng(0), cell=cell, **size,
                                     fit_config=_fit(epochs=2))
    moved = data.subset(range(len(data)))
    moved.x = [3.0 * s - 20.0 for s in data.x]
    np.testing.assert_allclose(model.predict_proba(moved), model.predict_proba(data), atol=1e-5)
    raw = SequenceClassifier.train(data, np.random.default_rng(0), cell=cell, **size,
                                   fit_config=_fit(epochs=2), znorm=False)
    assert not np.allclose(raw.predict_proba(moved), raw.predict_proba(data), atol=1e-3)
    assert model.znorm and not raw.znorm


def test_znormalisation_by_default_for_univariate_data_only():
    data = synthetic_sequences(20, np.random.default_rng(4))
    two = data.subset(range(len(data)))
    two.x, two.features = [np.hstack([s, s ** 2]) for s in data.x], ["x", "x2"]
    kw = dict(cell="lstm", hidden_size=2, fit_config=_fit(epochs=1))
    assert SequenceClassifier.train(data, np.random.default_rng(0), **kw).znorm
    assert not SequenceClassifier.train(two, np.random.default_rng(0), **kw).znorm


def test_validation_hold_out_only_for_large_training_sets():
    rng = np.random.default_rng(0)
    small = SequenceClassifier.train(synthetic_sequences(60, rng), rng, cell="lstm",
                                     hidden_size=2, fit_config=_fit(epochs=1))
    assert small.meta["data"]["n_val"] == 0 and small.meta["summary"]["best_val_loss"] is None
    large = SequenceClassifier.train(synthetic_sequences(300, rng), rng, cell="lstm",
                                     hidden_size=2, fit_config=_fit(epochs=1))
    assert large.meta["data"]["n_val"] == 45
    chosen = SequenceClassifier.train(synthetic_sequences(60, rng), rng, cell="lstm",
                                      hidden_size=2, val_fraction=0.2, fit_config=_fit(epochs=1))
    assert 10 <= chosen.meta["data"]["n_val"] <= 14  # 20 % of each class, rounded


def test_lstm_fcn_refuses_weight_decay_and_resamples_longer_sequences():
    data = synthetic_sequences(20, np.random.default_rng(3), min_len=8, max_len=10)
    with pytest.raises(ValueError, match="weight decay is not available for lstm-fcn"):
        SequenceClassifier.train(data, np.random.default_rng(0), cell="lstm-fcn",
                                 fit_config=FitConfig(epochs=1, weight_decay=0.1))
    config = LSTMFCNConfig(1, 2, length=5, hidden_size=2, filters=(2, 2, 2),
                           lstm_dropout=0.0, dtype="float64")
    net = LSTMFCN(config, rng=np.random.default_rng(0)).eval()
    ramp = np.linspace(0.0, 1.0, 9)  # 9 steps, resampled to 5 for the LSTM branch
    x = np.zeros((9, 2, 1))
    x[:, 0, 0] = ramp
    x[:4, 1, 0] = ramp[:4]  # a short sequence in the same batch: zero-padded, as ever
    _, (h_long, _) = net.lstm.forward(np.linspace(0.0, 1.0, 5)[None, None, :])
    _, (h_short, _) = net.lstm.forward(np.r_[ramp[:4], 0.0][None, None, :])
    net.forward(x, lengths=np.array([9, 4]))
    feats = net.head._cache.x  # the head's input: the LSTM branch's states come first
    np.testing.assert_allclose(feats[0, :2], h_long[0, 0], rtol=1e-12)
    np.testing.assert_allclose(feats[1, :2], h_short[0, 0], rtol=1e-12)


def test_predict_reads_the_csv_columns_from_the_checkpoint(tmp_path, capsys):
    rng = np.random.default_rng(5)
    rows = ["trial,t,v,activity"]
    for i in range(40):
        kind = i % 2
        for t in range(int(rng.integers(6, 10))):
            v = np.sin(t * (0.5 + kind)) + 0.05 * rng.standard_normal()
            rows.append(f"s{i},{t},{v:.4f},{'walk' if kind else 'run'}")
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["classify", "train", str(tmp_path / "d.csv"), "--id", "trial", "--time", "t",
                 "--label", "activity", "--epochs", "2", "--hidden", "2", "--filters", "2,2,2",
                 "--quiet", "--no-baselines", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["classify", "predict", str(out / "model.ckpt"), str(tmp_path / "d.csv")]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("id,predicted,label,p_run,p_walk\ns0,")
    assert "accuracy" in captured.out + captured.err


def test_fcn_without_the_lstm_branch_trains_and_survives_a_checkpoint(tmp_path, capsys):
    data = synthetic_sequences(60, np.random.default_rng(6))
    test = synthetic_sequences(45, np.random.default_rng(7))
    model = SequenceClassifier.train(data, np.random.default_rng(0), cell="fcn",
                                     filters=(8, 8, 8), fit_config=_fit(epochs=20))
    assert model.architecture == "fcn"
    assert not any(name.startswith("lstm.") for name in model.net.params())
    assert model.net.head.in_features == 8  # the pooled convolution features only
    sizes = [v.size for v in model.net.params().values()]
    assert lstmfcn_param_count(model.net.config) == sum(sizes)
    assert model.evaluate(test)["accuracy"] >= 0.9  # chance is 1/3
    model.save(tmp_path / "m.ckpt")
    back = SequenceClassifier.load(tmp_path / "m.ckpt")
    assert back.architecture == "fcn"
    np.testing.assert_array_equal(back.predict_proba(test), model.predict_proba(test))
    # the command line: --model fcn is a choice, and the report names it
    rows = ["id,v,label"] + [f"s{i},{v:.4f},{lab}"
                             for i, (s, lab) in enumerate(zip(data.x, data.labels))
                             for v in s[:, 0]]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["classify", "train", str(tmp_path / "d.csv"), "--model", "fcn", "--epochs", "2",
                 "--filters", "2,2,2", "--quiet", "--no-baselines", "--out", str(out)]) == 0
    assert json.loads((out / "report.json").read_text())["model"] == "fcn"
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["classify", "train", str(tmp_path / "d.csv"), "--model", "cnn", "--out", str(out)])
    err = capsys.readouterr().err
    assert "--model" in err and "invalid choice: 'cnn'" in err and "'fcn'" in err
