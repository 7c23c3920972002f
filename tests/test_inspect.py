"""Looking inside: gate traces against the lecture's equations, the Jacobian view against
finite differences, the text properties, the unit search, and `lstmlab inspect`."""

import numpy as np
import pytest
from seq_helpers import kernel_forward, numerical_gradient, without_compile_notice

import lstmlab
from lstmlab.cli import main
from lstmlab.insight.gates import FIELDS, record_gates
from lstmlab.insight.gradflow import jacobian_norms
from lstmlab.insight.units import correlations, find_units, text_signals


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("T,B,D,H,L", [(1, 1, 2, 3, 1), (6, 3, 4, 5, 2), (4, 1, 3, 2, 3)])
def test_gate_traces_follow_the_lecture_step_by_step(T, B, D, H, L):
    rng = np.random.default_rng(T * 100 + B)
    layer = lstmlab.LSTM(D, H, num_layers=L, dtype=np.float64, forget_bias=0.7, rng=rng)
    x = rng.normal(size=(T, B, D))
    h0, c0 = rng.normal(size=(L, B, H)), rng.normal(size=(L, B, H))
    traces = record_gates(layer, x, state=(h0, c0))
    assert len(traces) == L
    inp = x
    for l, tr in enumerate(traces):
        Wx, Wh, b = layer._layer_params(f"l{l}")
        W = np.vstack([Wh, Wx])  # the lecture's W acting on [h_{t-1}, x_t]
        h, c = h0[l], c0[l]
        for t in range(T):
            z = np.concatenate([h, inp[t]], axis=1) @ W + b  # (B, 4H), blocks f, i, o, C̃
            f = _sigmoid(z[:, :H])
            i = _sigmoid(z[:, H:2 * H])
            o = _sigmoid(z[:, 2 * H:3 * H])
            g = np.tanh(z[:, 3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            for name, want in zip(FIELDS, (f, i, g, c, o, h)):
                np.testing.assert_allclose(getattr(tr, name)[t], want, rtol=1e-12, atol=1e-14,
                                           err_msg=f"layer {l} step {t} {name}")
        inp = tr.hidden
    y, (h_n, c_n) = layer.forward(x, (h0, c0))  # whichever kernel the layer runs
    np.testing.assert_allclose(traces[-1].hidden, y, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.stack([tr.cell[-1] for tr in traces]), c_n, rtol=1e-12, atol=1e-14)


def test_gate_traces_hold_state_past_a_sequence_end():
    rng = np.random.default_rng(1)
    layer = lstmlab.LSTM(2, 3, dtype=np.float64, rng=rng)
    x = rng.normal(size=(5, 2, 2))
    tr = record_gates(layer, x, lengths=[5, 2])[0]
    _, (h_n, c_n) = layer.forward(x, lengths=[5, 2])
    np.testing.assert_allclose(tr.cell[1, 1], c_n[0, 1], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(tr.cell[4, 1], tr.cell[1, 1])


def test_record_gates_refuses_what_has_no_gates():
    with pytest.raises(TypeError, match="no gates"):
        record_gates(lstmlab.RNN(2, 3, rng=np.random.default_rng(0)), np.zeros((2, 1, 2), np.float32))
    with pytest.raises(TypeError) as err:  # a GRU has gates, only not the LSTM's
        record_gates(lstmlab.GRU(2, 3, rng=np.random.default_rng(0)),
                     np.zeros((2, 1, 2), np.float32))
    assert "no gates" not in str(err.value) and "GRU's gates are r, z" in str(err.value)
    with pytest.raises(ValueError, match="unidirectional"):
        record_gates(lstmlab.LSTM(2, 3, bidirectional=True, rng=np.random.default_rng(0)),
                     np.zeros((2, 1, 2), np.float32))


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_jacobian_view_matches_finite_differences(kind):
    """The estimate is sqrt(mean_k ||J_t^T v_k||^2) for the probes v_k it draws; rebuild the
    same probes and J_t^T v_k = d(v_k · h_T)/dh_t by central differences."""
    rng = np.random.default_rng(2)
    T, B, D, H, K = 5, 2, 3, 4, 3
    layer = (lstmlab.LSTM if kind == "lstm" else lstmlab.RNN)(D, H, dtype=np.float64, rng=rng)
    x = rng.normal(size=(T, B, D))
    est = jacobian_norms(layer, x, probes=K, rng=np.random.default_rng(5))
    g = np.random.default_rng(5)
    probes = [g.normal(size=(B, H)) for _ in range(K)]
    p = layer._layer_params("l0")
    zeros = np.zeros((B, H))
    cache = kernel_forward(p, x, zeros, zeros if kind == "lstm" else None)[2]

    def h_last(t, h_t, c_t):
        rest = x[t + 1:]
        return kernel_forward(p, rest, h_t, c_t)[1] if len(rest) else h_t

    eps = 1e-6
    for t in range(T):
        h_t = cache.h[t + 1].copy()
        c_t = cache.c[t + 1].copy() if kind == "lstm" else None
        sq = np.zeros(B)
        for v in probes:
            num = numerical_gradient(lambda: (v * h_last(t, h_t, c_t)).sum(), h_t, eps)
            sq += (num ** 2).sum(axis=1)
        np.testing.assert_allclose(est.dh[t], np.sqrt(sq / K), rtol=1e-6)
    # at the last step the Jacobian is the identity: the estimate is the probes' own norm
    np.testing.assert_allclose(est.dh[-1], np.sqrt(sum((v ** 2).sum(axis=1) for v in probes) / K))


def test_text_signals_name_quotes_brackets_lines_and_indentation():
    text = 'f(a, "x(")  # c(\n    return [1]\n'
    s = text_signals(text)
    at = {name: dict(zip(range(len(text)), v)) for name, v in s.items()}
    q = text.index('"')
    assert at["inside quotes"][q] == 1 and at["inside quotes"][q + 2] == 1  # the ( inside
    assert at["inside quotes"][text.index('")') + 1] == 0
    assert at["bracket depth"][text.index('x(') + 1] == 1  # a ( in a string does not count
    assert at["inside brackets"][text.index(")  #")] == 0
    assert at["inside comment"][text.index("c(")] == 1 and at["inside comment"][text.index("\n")] == 0
    r = text.index("return")
    assert at["indentation"][r] == 4 and at["position in line"][r] == 5
    assert at["bracket depth"][text.index("1]")] == 1
    assert all(len(v) == len(text) for v in s.values())


def test_triple_quotes_and_escapes():
    text = "x = '''a\n'b'\n''' + 'it\\'s'\n"
    s = text_signals(text)["inside quotes"]
    assert s[text.index("a")] == 1 and s[text.index("b")] == 1  # spans lines
    assert s[text.index(" +")] == 0
    assert s[text.index("s'")] == 1  # the escaped quote did not close the string


def test_the_unit_search_finds_a_planted_cell():
    rng = np.random.default_rng(3)
    text = ("def f(x):\n    return [x, 'a']\n" * 30)
    sig = text_signals(text)
    cells = rng.normal(size=(len(text), 8))
    cells[:, 5] = 2.0 * sig["inside quotes"] - 1 + 0.05 * rng.normal(size=len(text))
    cells[:, 2] = -0.1 * sig["position in line"]
    matches = find_units([rng.normal(size=(len(text), 4)), cells], sig, per_signal=1)
    best = {m.signal: m for m in matches}
    assert (best["inside quotes"].layer, best["inside quotes"].unit) == (1, 5)
    assert best["inside quotes"].r > 0.99
    assert (best["position in line"].unit, round(best["position in line"].r, 6)) == (2, -1.0)
    assert "inside comment" not in best  # no comment in the text: a constant signal is skipped
    r = correlations(np.ones((len(text), 2)), sig)
    assert np.all(r == 0)  # a constant cell correlates with nothing


def test_inspect_text_names_counts_that_are_not_positive(tmp_path):
    from lstmlab.data.text import Vocab
    from lstmlab.insight.inspection import inspect_text

    text = "def f(x):\n    return (x + 1)  # c\n"
    vocab = Vocab(sorted(set(text)))
    model = lstmlab.CharLM(lstmlab.CharLMConfig(vocab_size=len(vocab), embed_dim=4,
                                                hidden_size=3), rng=np.random.default_rng(0))
    for name, value in (("heat_chars", 0), ("units", 0), ("per_signal", -1), ("per_signal", 0)):
        with pytest.raises(ValueError, match=f"{name} must be a positive integer, got {value}"):
            inspect_text(model, vocab, text, tmp_path, **{name: value})
    matches, path = inspect_text(model, vocab, text, tmp_path / "new" / "dir", per_signal=1)
    assert path.is_file() and len(matches) == len({m.signal for m in matches})


def test_inspect_cli_end_to_end(tmp_path, capsys):
    corpus = tmp_path / "code.py"
    corpus.write_text("def f(x):\n    return [x, 'a(b)']  # done\n" * 60)
    run = tmp_path / "run"
    assert main(["train", str(corpus), "--out", str(run), "--steps", "3", "--hidden", "8",
                 "--layers", "2", "--embed", "4", "--seq-len", "20", "--batch-size", "2",
                 "--eval-every", "3", "--quiet"]) == 0
    capsys.readouterr()
    out = tmp_path / "look"
    assert main(["inspect", str(run / "last.ckpt"), "--file", str(corpus), "--out", str(out),
                 "--heat-chars", "40", "--units", "4"]) == 0
    printed = capsys.readouterr().out
    assert "inside quotes" in printed and "indentation" in printed
    html = (out / "inspect.html").read_text(encoding="utf-8")
    assert html.count("<img") == 2  # one heatmap figure per layer
    assert html.count("class='chars'") >= 3  # the text coloured by each property's best cell
    # --text with \n escapes; a character outside the vocabulary is refused, then replaced
    assert main(["inspect", str(run / "last.ckpt"), "--text", "def f(x):\\n    z", "--out", str(out)]) == 2
    assert "z" in capsys.readouterr().err
    assert main(["inspect", str(run / "last.ckpt"), "--text", "def f(x):\\n    z", "--out", str(out),
                 "--unknown", "replace"]) == 0
    assert "short text" in capsys.readouterr().out
    assert main(["inspect", str(run / "last.ckpt"), "--text", "d", "--out", str(out)]) == 0
    assert "1 character from" in capsys.readouterr().out  # one, not "1 characters"


def test_inspect_refuses_an_rnn_checkpoint(tmp_path, capsys):
    corpus = tmp_path / "t.txt"
    corpus.write_text("abc abc abc\n" * 50)
    assert main(["train", str(corpus), "--out", str(tmp_path / "r"), "--model", "rnn", "--steps", "1",
                 "--hidden", "4", "--layers", "1", "--embed", "2", "--seq-len", "8",
                 "--batch-size", "2", "--quiet"]) == 0
    assert main(["inspect", str(tmp_path / "r" / "last.ckpt"), "--text", "abc", "--out",
                 str(tmp_path / "o")]) == 2
    assert "no gates" in capsys.readouterr().err


def test_inspect_and_explore_name_a_layer_norm_checkpoint(tmp_path, capsys):
    corpus = tmp_path / "t.txt"
    corpus.write_text("abc abc abc\n" * 50)
    assert main(["train", str(corpus), "--out", str(tmp_path / "r"), "--layer-norm", "--steps",
                 "1", "--hidden", "4", "--layers", "1", "--embed", "2", "--seq-len", "8",
                 "--batch-size", "2", "--quiet"]) == 0
    ckpt = str(tmp_path / "r" / "last.ckpt")
    for argv in (["inspect", ckpt, "--text", "abc", "--out", str(tmp_path / "o")],
                 ["explore", ckpt, str(corpus), "--save", str(tmp_path / "page.html"),
                  "--max-chars", "5"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "a layer-normalised LSTM (trained with --layer-norm)" in err, err
        assert "--max-chars" not in err  # no advice on a text that cannot be looked at
        assert "record_gates" not in err and "peepholes" not in err  # not the library's words


def test_gates_figure_names_a_trace_units_or_labels_that_do_not_fit():
    pytest.importorskip("matplotlib")
    from lstmlab.insight import plots

    layer = lstmlab.LSTM(1, 2, rng=np.random.default_rng(0))
    trace = record_gates(layer, np.ones((3, 2, 1)))[0]
    one = trace.sequence(0)
    cases = {r"trace must be the trace of one sequence, arrays \(T, H\), got \(3, 2, 2\): "
             r"pass trace.sequence\(b\)": dict(trace=trace),
             r"units must be a non-empty list of cell indices in \[0, 1\], got \[2\]":
                 dict(trace=one, units=[2]),
             r"units must be a non-empty list of cell indices in \[0, 1\], got \[\]":
                 dict(trace=one, units=[]),
             r"chars must label the 3 steps of the trace, got 2 characters":
                 dict(trace=one, chars="ab"),
             r"inputs must have the trace's 3 steps in its first dimension, got shape \(5, 1\)":
                 dict(trace=one, inputs=np.ones((5, 1)))}
    for message, kwargs in cases.items():
        with pytest.raises(ValueError, match=message):
            plots.gates_figure(**kwargs)
    png = plots.gates_figure(one, units=[1], chars="abc", inputs=np.ones((3, 1)))
    assert png.startswith(b"\x89PNG")


def test_gates_figure_labels_characters_its_font_cannot_draw_without_warnings():
    # a CRLF file's carriage return, CJK, an emoji, NUL: labelled by code point, where the
    # font has no glyph, instead of a box and a UserWarning on stderr per character
    pytest.importorskip("matplotlib")
    import warnings

    from lstmlab.insight import plots

    chars = "a\r日\U0001F642\x00e\u0301\n"
    layer = lstmlab.LSTM(1, 2, rng=np.random.default_rng(0))
    one = record_gates(layer, np.ones((len(chars), 1, 1)))[0].sequence(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = plots.gates_figure(one, chars=chars)
    assert png.startswith(b"\x89PNG")


def test_gates_figure_numbers_the_axis_when_the_characters_cannot_be_written():
    # 3,000 labels in 2,400 pixels overprinted one another, their ticks merged into a black
    # bar under every panel, and drawing them took 35 s (lstmlab inspect --heat-chars 3000)
    pytest.importorskip("matplotlib")
    from lstmlab.insight import plots

    layer = lstmlab.LSTM(1, 1, rng=np.random.default_rng(0))
    one = record_gates(layer, np.ones((401, 1, 1)))[0].sequence(0)  # 2,400 pixels wide
    pngs = [plots.gates_figure(one, chars=c * 401) for c in "ab"]
    assert pngs[0] == pngs[1]  # no character is drawn


def test_text_signals_and_correlations_name_what_they_cannot_read():
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        text_signals(b"def f(x): pass")
    with pytest.raises(ValueError, match="signals is empty: give at least one property"):
        correlations(np.ones((3, 2)), {})
    with pytest.raises(ValueError, match="signals is empty"):
        find_units([np.ones((3, 2))], {})


@pytest.fixture(scope="module")
def code_checkpoint(tmp_path_factory):
    """A one-step char-LM whose vocabulary has what Python source holds: tabs, backslashes."""
    d = tmp_path_factory.mktemp("inspect")
    corpus = d / "code.py"
    corpus.write_text('def f(x):\n\treturn x + "a\\n"  # (b)\n' * 30)
    assert main(["train", str(corpus), "--out", str(d / "run"), "--steps", "1", "--hidden", "4",
                 "--layers", "1", "--embed", "2", "--seq-len", "10", "--batch-size", "2",
                 "--quiet"]) == 0
    return d / "run" / "last.ckpt"


def test_inspect_text_reads_newline_tab_and_backslash_escapes(code_checkpoint, tmp_path, capsys):
    capsys.readouterr()
    # As a shell passes them on: \n and \t are a newline and a tab, and \\ is a backslash,
    # so Python's "a\n" (a backslash, then n, inside quotes) can be written as "a\\n".
    typed = 'def f(x):\\n\\treturn x + "a\\\\n"'
    assert main(["inspect", str(code_checkpoint), "--text", typed, "--out", str(tmp_path)]) == 0
    meant = 'def f(x):\n\treturn x + "a\\n"'
    assert f"{len(meant)} characters from --text" in capsys.readouterr().out
    html = (tmp_path / "inspect.html").read_text(encoding="utf-8")
    assert html.count("⏎") == html.count("class='chars'")  # one newline in each coloured text
    assert main(["inspect", str(code_checkpoint), "--text", "a\\x", "--unknown", "replace",
                 "--out", str(tmp_path)]) == 0
    assert "3 characters from --text" in capsys.readouterr().out  # other backslashes stay


def test_inspect_says_when_max_chars_cuts_the_text(code_checkpoint, tmp_path, capsys):
    # "20 characters from f.py" read as the whole file: the cut went unsaid
    capsys.readouterr()
    path = tmp_path / "f.py"
    path.write_text("f(x)\n" * 10)
    for given, total in ((["--file", str(path)], 50), (["--text", "(x)" * 30], 90)):
        small = ["--heat-chars", "3", "--units", "1", "--out", str(tmp_path)]
        assert main(["inspect", str(code_checkpoint), *given, "--max-chars", "20", *small]) == 0
        out, err = capsys.readouterr()
        assert out.startswith("20 characters from ")
        assert without_compile_notice(err) == (f"lstmlab inspect: the text is cut to its first 20 of {total} characters; "
                       f"--max-chars {total} shows all of it\n")
        assert main(["inspect", str(code_checkpoint), *given, "--max-chars", str(total),
                     *small]) == 0
        assert without_compile_notice(capsys.readouterr().err) == ""  # nothing cut


def test_inspect_file_dash_reads_standard_input_as_evaluate_does(code_checkpoint, tmp_path,
                                                                  monkeypatch, capsys):
    # 'git show HEAD:f.py | lstmlab inspect CKPT --file -' said "text file '-' does not exist",
    # where generate --prompt-file - and evaluate CKPT - read standard input
    import io

    capsys.readouterr()
    small = ["--heat-chars", "3", "--units", "1", "--out", str(tmp_path)]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"f(x)\n" * 10)))
    assert main(["inspect", str(code_checkpoint), "--file", "-", "--max-chars", "20",
                 *small]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("20 characters from standard input")
    assert "cut to its first 20 of 50 characters" in err
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["inspect", str(code_checkpoint), "--file", "-", *small]) == 2
    assert "text file '-' (standard input) is empty" in capsys.readouterr().err


def test_inspect_says_when_no_property_varies(code_checkpoint, tmp_path, capsys):
    # blank lines: the table of cells came out empty, with no word why
    capsys.readouterr()
    assert main(["inspect", str(code_checkpoint), "--text", "\\n\\n\\n", "--heat-chars", "3",
                 "--units", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "  (none of the properties varies over this text, so no cell can follow one" in out
    assert "None of the properties varies" in (tmp_path / "inspect.html").read_text(encoding="utf-8")


def test_inspect_names_an_empty_text_flag(code_checkpoint, tmp_path, capsys):
    capsys.readouterr()
    assert main(["inspect", str(code_checkpoint), "--text", "", "--out", str(tmp_path)]) == 2
    assert "--text is empty" in capsys.readouterr().err


def test_the_unit_search_refuses_states_that_are_not_finite():
    signals = text_signals("f(x)\n")
    cells = np.random.default_rng(0).normal(size=(5, 3))
    cells[2, 1] = np.nan  # a model whose training diverged
    with pytest.raises(ValueError, match="states must be finite, got nan"):
        find_units([cells], signals)
    with pytest.raises(ValueError, match="signals must be finite, got inf"):
        correlations(np.ones((5, 2)), {"x": [0, 1, np.inf, 0, 1]})
