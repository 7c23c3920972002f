"""A layer describes itself: a one-line repr, a parameter table as text and as HTML (Jupyter)."""

import html
import re

import numpy as np

import lstmlab
from lstmlab.layers import CharLM, CharLMConfig


def small_charlm(seed: int = 0) -> CharLM:
    rng = np.random.default_rng(seed)
    return CharLM(CharLMConfig(vocab_size=int(rng.integers(5, 40)), hidden_size=int(rng.integers(2, 9)),
                               num_layers=2, embed_dim=int(rng.integers(1, 6))), rng=rng)


def test_summary_lists_every_parameter_with_its_shape_and_the_total():
    for seed in range(3):
        model = small_charlm(seed)
        text = model.summary()
        lines = text.splitlines()
        assert lines[0] == repr(model)
        for name, p in model.params().items():
            row = [line for line in lines if line.split()[:1] == [name]]
            assert len(row) == 1, (name, text)
            assert row[0].split() == [name, *str(p.shape).split(), p.dtype.name, f"{p.size:,}"]
        total = sum(p.size for p in model.params().values())
        assert lines[-1] == f"{total:,} parameters in {len(model.params())} arrays; training mode"
        assert model.eval().summary().endswith("; eval mode")


def test_repr_shows_children_and_leaf_shapes_and_keeps_the_recurrent_one_liners():
    lin = lstmlab.Linear(3, 5, rng=np.random.default_rng(1))
    assert repr(lin) == "Linear(weight (5, 3), bias (5,))"
    assert repr(lstmlab.Dropout(0.5)) == "Dropout()"
    model = small_charlm(1)  # a model says what it is in its own words, on one line
    c = model.config
    assert repr(model) == (f"CharLM(LSTM 2x{c.hidden_size}, vocabulary {c.vocab_size}, embedding "
                           f"{c.embed_dim}, {model.num_params():,} parameters, float32)")
    from lstmlab.layers.seqnet import SequenceNet, SequenceNetConfig
    net = SequenceNet(SequenceNetConfig(input_size=2, output_size=3, hidden_size=4),
                      rng=np.random.default_rng(0))  # a container: its children, on one line
    r = repr(net)
    assert "\n" not in r and r == f"SequenceNet(rnn={net.rnn!r}, head={net.head!r})"
    lstm = lstmlab.LSTM(3, 4, num_layers=2, dtype=np.float64)
    assert repr(lstm) == "LSTM(3, 4, num_layers=2, dtype=float64)"


def test_jupyter_html_is_the_same_table_escaped():
    model = small_charlm(2)
    page = model._repr_html_()
    cells = re.findall(r"<td[^>]*><code>(.*?)</code></td>", page)
    expected = [v for name, p in model.params().items()
                for v in (name, str(p.shape), p.dtype.name, f"{p.size:,}")]
    assert [html.unescape(c) for c in cells] == expected
    assert html.unescape(re.search(r"<div><code>(.*?)</code>", page).group(1)) == repr(model)
    # a parameter-free layer still renders a table, with a zero total
    assert "0 parameters in 0 arrays" in lstmlab.Dropout(0.1)._repr_html_()
