"""`lstmlab explore` without a browser: its numbers against direct computation, the server's
routes and limits, and the command's errors. The page in a browser: test_explore_browser.py."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from seq_helpers import running

from lstmlab.cli import main
from lstmlab.data.text import Vocab
from lstmlab.explore import Explorer, analysis, save_page, start_server
from lstmlab.insight.units import text_signals
from lstmlab.layers.model import CharLM, CharLMConfig
from lstmlab.training.checkpoint import save_checkpoint

TEXT = 'def f(x, y=("a", [1, 2])):\n    # note (x)\n    if x:\n        return [x, "b(c"]\n'


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _model(cell, H, L, seed=0, text=TEXT):
    vocab = Vocab.from_text(text + "?")
    cfg = CharLMConfig(vocab_size=len(vocab), hidden_size=H, num_layers=L, embed_dim=3,
                       cell=cell, dtype="float64", forget_bias=0.4)
    model = CharLM(cfg, rng=np.random.default_rng(seed)).eval()
    return model, vocab


def _direct(model, vocab, text):
    """The lecture's equations, one character at a time, from the parameters."""
    p = model.params()
    L, H = model.config.num_layers, model.config.hidden_size
    cell = model.config.cell
    h, c = np.zeros((L, H)), np.zeros((L, H))
    names = {"lstm": ("f", "i", "o", "C̃", "C", "h"), "gru": ("r", "z", "n", "h"), "rnn": ("h",)}
    out = {k: np.zeros((L, len(text), H)) for k in names[cell]}
    probs = []
    for t, ch in enumerate(text):
        x = p["embed.weight"][vocab.encode(ch, unknown="replace")[0]]
        for l in range(L):
            if cell == "gru":  # PyTorch's GRU; b = b_r, b_z, b_in, b_hn
                gx, gh, b = x @ p[f"rnn.Wx_l{l}"], h[l] @ p[f"rnn.Wh_l{l}"], p[f"rnn.b_l{l}"]
                r = _sigmoid(gx[:H] + gh[:H] + b[:H])
                zg = _sigmoid(gx[H:2 * H] + gh[H:2 * H] + b[H:2 * H])
                n = np.tanh(gx[2 * H:] + b[2 * H:3 * H] + r * (gh[2 * H:] + b[3 * H:]))
                h[l] = (1 - zg) * n + zg * h[l]
                for k, v in zip(("r", "z", "n"), (r, zg, n)):
                    out[k][l, t] = v
                out["h"][l, t] = h[l]
                x = h[l]
                continue
            z = x @ p[f"rnn.Wx_l{l}"] + h[l] @ p[f"rnn.Wh_l{l}"] + p[f"rnn.b_l{l}"]
            if cell == "lstm":
                f, i, o = _sigmoid(z[:H]), _sigmoid(z[H:2 * H]), _sigmoid(z[2 * H:3 * H])
                g = np.tanh(z[3 * H:])
                c[l] = f * c[l] + i * g
                h[l] = o * np.tanh(c[l])
                for k, v in zip(("f", "i", "o", "C̃", "C"), (f, i, o, g, c[l])):
                    out[k][l, t] = v
            else:
                h[l] = np.tanh(z)
            out["h"][l, t] = h[l]
            x = h[l]
        logits = h[-1] @ p["head.weight"].T + p["head.bias"]
        e = np.exp(logits - logits.max())
        probs.append(e / e.sum())
    return out, np.array(probs)


@pytest.mark.parametrize("cell,H,L,T", [("lstm", 3, 2, 1), ("lstm", 5, 1, 17), ("rnn", 4, 2, 1),
                                        ("rnn", 2, 3, 23), ("gru", 3, 2, 1), ("gru", 4, 3, 19)])
def test_trace_is_the_lecture_step_by_step(cell, H, L, T):
    model, vocab = _model(cell, H, L, seed=T)
    text = (TEXT * 2)[:T]
    tr = analysis.trace_text(model, vocab, text)
    want, probs = _direct(model, vocab, text)
    assert list(tr.fields) == list(want)
    for k in want:
        np.testing.assert_allclose(tr.fields[k], want[k], rtol=1e-10, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(tr.probs, probs, rtol=1e-10, atol=1e-12)
    assert tr.gates == {"lstm": ("f", "i", "o"), "gru": ("r", "z"), "rnn": ()}[cell]
    # unit_values / values address layer l, unit u as column l*H + u
    np.testing.assert_array_equal(tr.unit_values("h", L - 1, H - 1), tr.fields["h"][L - 1, :, H - 1])


def test_a_layer_without_a_recorder_shows_its_state(monkeypatch):
    """The path every other cell takes (its state, stepped): on an LSTM it gives h and C."""
    model, vocab = _model("lstm", 3, 2, seed=2)
    full = analysis.trace_text(model, vocab, TEXT)
    monkeypatch.setattr(analysis, "RECORDERS", {})
    states = analysis.trace_text(model, vocab, TEXT)
    assert list(states.fields) == ["h", "C"] and states.gates == ()
    for k in ("h", "C"):
        np.testing.assert_allclose(states.fields[k], full.fields[k], rtol=1e-10, atol=1e-12)
    assert model.rnn.backend == "auto"  # put back after the reference steps


def test_unknown_characters_are_read_as_the_replacement_and_listed():
    model, vocab = _model("lstm", 3, 1)
    tr = analysis.trace_text(model, vocab, "x€y")
    ref = analysis.trace_text(model, vocab, "x?y")
    assert tr.replaced == ("€",)
    np.testing.assert_array_equal(tr.fields["C"], ref.fields["C"])
    with pytest.raises(ValueError, match="empty"):
        analysis.trace_text(model, vocab, "")
    with pytest.raises(ValueError, match="field must be one of"):
        tr.values("q")
    with pytest.raises(ValueError, match=r"unit must be an integer in \[0, 2\]"):
        tr.unit_values("h", 0, 3)


def test_top_predictions_are_the_largest_probabilities():
    model, vocab = _model("lstm", 4, 2)
    tr = analysis.trace_text(model, vocab, TEXT)
    top = analysis.top_predictions(tr, vocab, k=3)
    for t in (0, 10, len(TEXT) - 1):
        order = np.argsort(-tr.probs[t])[:3]
        assert [ch for ch, _ in top[t]] == [vocab.chars[j] for j in order]
        np.testing.assert_allclose([p for _, p in top[t]], tr.probs[t, order])


def test_separation_matches_pairwise_counting_and_pearson():
    rng = np.random.default_rng(3)
    T, N = 40, 6
    values = rng.normal(size=(T, N))
    values[:, 2] = np.round(values[:, 2])  # ties
    values[:, 3] = 1.0  # constant: AUC 0.5, r 0
    sel = rng.random(T) < 0.3
    auc, r = analysis.separation(values, sel)
    for j in range(N):
        pos, neg = values[sel, j], values[~sel, j]
        gt = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        assert auc[j] == pytest.approx(gt, abs=1e-12)
        want = 0.0 if j == 3 else np.corrcoef(values[:, j], sel)[0, 1]
        assert r[j] == pytest.approx(want, abs=1e-12)
    with pytest.raises(ValueError, match="select some characters"):
        analysis.separation(values, np.zeros(T, bool))
    with pytest.raises(ValueError, match="not all of them"):
        analysis.separation(values, np.ones(T, bool))


def _trace(fields, text):
    first = next(iter(fields.values()))
    return analysis.Trace(text, "lstm", fields, ("f",) if "f" in fields else (),
                          np.full((first.shape[1], 2), 0.5))


def test_rank_units_finds_a_planted_unit_and_orders_by_separation():
    rng = np.random.default_rng(4)
    T, L, H = 60, 2, 5
    text = "".join(rng.choice(list("ab\n")) for _ in range(T))
    C = rng.normal(size=(L, T, H))
    spans = [[5, 12], [30, 34]]
    mask = analysis.spans_mask(T, spans)
    C[1, :, 3] = -3.0 * mask + 0.1 * rng.normal(size=T)  # drops on the selection
    ranked = analysis.rank_units(_trace({"C": C}, text), "C", spans, top=4)
    assert (ranked[0].layer, ranked[0].unit) == (1, 3) and ranked[0].auc == 0.0
    assert ranked[0].r < -0.9
    auc, _ = analysis.separation(C.transpose(1, 0, 2).reshape(T, -1), mask)
    want = np.sort(np.abs(auc - 0.5))[::-1][:4]
    np.testing.assert_allclose([abs(x.auc - 0.5) for x in ranked], want)
    for bad in ([[3, 3]], [[-1, 2]], [[0, T + 1]], [[0.5, 2]], [7]):
        with pytest.raises(ValueError, match="each span must be"):
            analysis.spans_mask(T, bad)


def test_hypotheses_report_the_best_pearson_r_of_each_property():
    model, vocab = _model("lstm", 6, 2, seed=5)
    text = TEXT * 3
    tr = analysis.trace_text(model, vocab, text)
    signals = text_signals(text)
    found = analysis.hypotheses(tr, "C", per_signal=2)
    assert {m.signal for m in found} == {k for k, v in signals.items() if np.ptp(v) > 0}
    for m in found:
        r = np.corrcoef(tr.fields["C"][m.layer, :, m.unit], signals[m.signal])[0, 1]
        assert m.r == pytest.approx(r, abs=1e-10)
        all_r = [abs(np.corrcoef(tr.fields["C"][l, :, u], signals[m.signal])[0, 1])
                 for l in range(2) for u in range(6)]
        assert abs(m.r) >= sorted(all_r)[-2] - 1e-12  # among the two best


def test_match_windows_against_a_brute_force_search():
    rng = np.random.default_rng(6)
    T, N = 50, 3
    values = rng.normal(size=(T, N)) * [1.0, 50.0, 0.1] + [0.0, 7.0, -3.0]
    values[30:36] = values[10:16] + 0.01 * values.std(axis=0)  # a planted look-alike
    found = analysis.match_windows(values, 10, 16, count=4)
    assert found[0].start == 30 and found[0].distance < 0.02
    values = (values - values.mean(axis=0)) / values.std(axis=0)  # distances in std units
    taken = set(range(10, 16))
    dists = {s: np.sqrt(((values[s:s + 6] - values[10:16]) ** 2).mean()) for s in range(T - 5)}
    for m in found:  # each is the closest window that overlaps neither query nor earlier ones
        free = [s for s in dists if not taken & set(range(s, s + 6))]
        best = min(free, key=lambda s: (dists[s], s))
        assert m.start == best and m.distance == pytest.approx(dists[best], abs=1e-12)
        taken |= set(range(m.start, m.start + 6))
    assert len(analysis.match_windows(values[:8], 0, 8)) == 0  # no room for another window
    with pytest.raises(ValueError, match="the query must be"):
        analysis.match_windows(values, 5, 5)


def test_match_windows_memory_stays_bounded_for_a_wide_query():
    # all window differences at once are (T-W+1)·N·W numbers: 46 MB here, 13 GB for half
    # of 10,000 characters and 64 units, a request the page sends when a span is that wide
    import tracemalloc

    values = np.random.default_rng(8).normal(size=(1200, 16))
    tracemalloc.start()
    try:
        found = analysis.match_windows(values, 0, 600, count=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 30e6
    z = (values - values.mean(axis=0)) / values.std(axis=0)
    want = np.sqrt(((z[600:] - z[:600]) ** 2).mean())  # the one window beside the query
    assert found[0].start == 600 and found[0].distance == pytest.approx(want, abs=1e-12)


def test_counts_of_the_analysis_must_be_positive_integers():
    model, vocab = _model("lstm", 3, 1)
    tr = analysis.trace_text(model, vocab, TEXT)
    values = np.random.default_rng(7).normal(size=(40, 2))
    calls = {"k": lambda v: analysis.top_predictions(tr, vocab, k=v),
             "top": lambda v: analysis.rank_units(tr, "h", [[0, 5]], top=v),
             "count": lambda v: analysis.match_windows(values, 0, 4, count=v)}
    for name, call in calls.items():
        for bad in (0, -1, 2.5):  # -1 gave all but one, 0 every window (count)
            with pytest.raises(ValueError, match=f"{name} must be a positive integer, got {bad}"):
                call(bad)
    assert len(analysis.match_windows(values, 0, 4, count=2)) == 2
    assert len(analysis.rank_units(tr, "h", [[0, 5]], top=2)) == 2


def test_saturation_counts_values_beyond_the_thresholds():
    rng = np.random.default_rng(7)
    f = rng.random((2, 30, 4))
    sat = analysis.saturation(_trace({"f": f, "h": f - 0.5}, "x" * 30))
    assert list(sat) == ["f"]
    left, right = sat["f"]
    for l in range(2):
        for u in range(4):
            assert left[l, u] == sum(v < 0.1 for v in f[l, :, u]) / 30
            assert right[l, u] == sum(v > 0.9 for v in f[l, :, u]) / 30
    assert analysis.saturation(_trace({"h": f}, "x" * 30)) == {}


# -- the server -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served():
    model, vocab = _model("lstm", 4, 2, seed=8)
    explorer = Explorer(model, vocab, TEXT, "test", max_chars=300)
    server, url = start_server(explorer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield explorer, server.port
    server.shutdown()
    server.server_close()
    thread.join()


def _request(port, method, path, body=None, host=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if host:
        headers["Host"] = host
    conn.request(method, path, None if body is None else json.dumps(body).encode(), headers)
    res = conn.getresponse()
    data = res.read()
    conn.close()
    return res.status, data


def test_the_server_serves_its_page_and_files_only(served):
    _, port = served
    status, page = _request(port, "GET", "/")
    assert status == 200 and b"/static/app.js" in page
    assert _request(port, "GET", "/static/style.css")[0] == 200
    for path in ("/static/../__init__.py", "/static/..%2f__init__.py", "/static/%2e%2e/server.py",
                 "/../../../etc/passwd", "/static/../../cli.py", "/static/index.html/..",
                 "/static/", "/static/analysis.py", "/server.py", "/api/../static/app.js",
                 "/static/..\\server.py", "/%2e%2e/%2e%2e/etc/passwd"):
        assert _request(port, "GET", path)[0] == 404, path
    assert _request(port, "POST", "/api/nothing", {})[0] == 404
    assert _request(port, "GET", "/api/info")[0] == 405
    assert _request(port, "GET", "/", host="evil.example:80")[0] == 403


def test_the_api_answers_with_the_models_numbers(served):
    explorer, port = served
    status, data = _request(port, "POST", "/api/view", {"text": "if x:\n", "units": [[1, 2], [0, 0]]})
    assert status == 200
    view = json.loads(data)
    tr = analysis.trace_text(explorer.model, explorer.vocab, "if x:\n")
    for f in ("f", "i", "o", "C̃", "C", "h"):
        np.testing.assert_allclose(view["values"][f][0], tr.fields[f][1, :, 2], rtol=1e-5)
        np.testing.assert_allclose(view["values"][f][1], tr.fields[f][0, :, 0], rtol=1e-5)
    assert [c for c, _ in view["top"][3]] == [c for c, _ in analysis.top_predictions(tr, explorer.vocab)[3]]
    status, data = _request(port, "POST", "/api/rank", {"text": TEXT, "field": "C", "spans": [[4, 9]]})
    ranked = analysis.rank_units(analysis.trace_text(explorer.model, explorer.vocab, TEXT), "C", [[4, 9]])
    assert status == 200 and json.loads(data)["units"] == [[r.layer, r.unit] for r in ranked]
    info = json.loads(_request(port, "POST", "/api/info", {})[1])
    assert info["fields"] == ["f", "i", "o", "C̃", "C", "h"] and info["text"] == TEXT


@pytest.mark.parametrize("path,body,message", [
    ("/api/view", {"text": "x" * 301, "units": [[0, 0]]}, "the text has 301 characters; the limit is 300"),
    ("/api/view", {"text": "", "units": [[0, 0]]}, "the text is empty"),
    ("/api/view", {"text": "x", "units": [[2, 0]]}, "layer must be an integer in [0, 1]"),
    ("/api/view", {"text": "x", "units": []}, "units must be a list"),
    ("/api/rank", {"text": "xy", "field": "C", "spans": [[0, 2]]}, "not all of them"),
    ("/api/rank", {"text": "xy", "field": "Z", "spans": [[0, 1]]}, "field must be one of"),
    ("/api/match", {"text": "xyz", "field": "h", "units": [[0, 1]], "span": [2, 9]}, "the query must be"),
])
def test_bad_requests_get_a_clear_error(served, path, body, message):
    status, data = _request(served[1], "POST", path, body)
    assert status == 400 and message in json.loads(data)["error"]


def test_an_error_quotes_a_huge_bad_value_in_a_few_characters(served):
    # the answer echoed the whole offending value: a field name of a megabyte came back whole
    for body in ({"text": "xy", "field": "Z" * 1_000_000, "spans": [[0, 1]]},
                 {"text": "x", "units": [[0, "u" * 1_000_000]]}):
        status, data = _request(served[1], "POST",
                                "/api/rank" if "field" in body else "/api/view", body)
        assert status == 400 and len(json.loads(data)["error"]) < 400


def test_the_text_limit_counts_characters_not_utf16_units(served):
    # 300 emoji are 300 characters (600 UTF-16 units, as the page's JavaScript counts them):
    # within the limit of 300, sent as raw UTF-8 or as JSON's surrogate-pair escapes alike
    port = served[1]
    for ascii_only in (False, True):
        for n, status in ((300, 200), (301, 400)):
            body = json.dumps({"text": "\U0001F642" * n, "units": [[0, 0]]},
                              ensure_ascii=ascii_only).encode()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/api/view", body, {"Content-Type": "application/json"})
            res = conn.getresponse()
            answer = json.loads(res.read())
            conn.close()
            assert res.status == status, answer
            if status == 200:
                assert answer["text"] == "\U0001F642" * n and len(answer["values"]["h"][0]) == n
            else:
                assert "the text has 301 characters; the limit is 300" in answer["error"]


def test_unknown_characters_without_a_replacement_get_advice_for_the_page():
    # a vocabulary with none of U+FFFD, "?", " " (Chinese text, say): the page said "pass
    # replacement=<a character in the vocabulary>", a parameter it does not have
    vocab = Vocab.from_text("中文字")
    model = CharLM(CharLMConfig(vocab_size=len(vocab), hidden_size=2, num_layers=1, embed_dim=2,
                                dtype="float64"), rng=np.random.default_rng(0)).eval()
    explorer = Explorer(model, vocab, "中文", "t")
    with pytest.raises(ValueError, match=r"'x' \(U\+0078\) at position 2 \(1 time\); none of "
                                         r"U\+FFFD, '\?', ' ' is in the vocabulary to replace "
                                         r"them with, remove them from the text$"):
        explorer.view({"text": "中文x", "units": [[0, 0]]})


def test_every_api_error_is_json(served):
    port = served[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for body in (b"not json", b"[1, 2]"):
        conn.request("POST", "/api/view", body, {"Content-Type": "application/json"})
        res = conn.getresponse()
        assert res.status == 400 and res.getheader("Content-Type") == "application/json"
        assert json.loads(res.read())["error"] == "the request body must be a JSON object"
    conn.close()
    for method, path, status in (("POST", "/api/nothing", 404), ("GET", "/api/info", 405)):
        code, data = _request(port, method, path)
        assert code == status and json.loads(data)["error"]
    code, page = _request(port, "GET", "/static/nothing.js")
    assert code == 404 and b"<title>" in page  # the page's own files keep werkzeug's HTML


def _post_raw(port, path, body: bytes, content_type="application/json"):
    """POST ``body`` as it is: ``(status, the JSON answer)``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body, {} if content_type is None else
                 {"Content-Type": content_type})
    res = conn.getresponse()
    answer = json.loads(res.read())
    conn.close()
    return res.status, answer


def test_a_body_over_the_limit_is_named_with_its_size(served):
    # werkzeug's words: "The data value transmitted exceeds the capacity limit."
    body = json.dumps({"text": "x" * (5 << 20)}).encode()
    assert _post_raw(served[1], "/api/view", body) == (413, {"error": (
        f"the request body has {len(body):,} bytes; the API takes at most 4,194,304 bytes "
        f"(4 MiB)")})


def test_a_json_body_without_its_content_type_is_named(served):
    # curl -d '{"text": "x"}' sends a form type: the answer said the body was not a JSON object
    for ctype in ("application/x-www-form-urlencoded", "text/plain", None):
        assert _post_raw(served[1], "/api/saturation", b'{"text": "xyz"}', ctype) == (
            400, {"error": f"the request body must be JSON sent with Content-Type: "
                           f"application/json, got {ctype or 'no Content-Type'}"})


def test_a_deeply_nested_request_body_is_a_400_in_json(served):
    # nested past Python's recursion limit the parser, or an error message's repr of the
    # value, raised RecursionError: werkzeug's HTML 500 page
    for depth in (4, 995, 100_000):
        deep = "[" * depth + "]" * depth
        for path, body in (("/api/view", f'{{"text": "xyz", "units": [[0, {deep}]]}}'),
                           ("/api/rank", f'{{"text": "xyz", "field": {deep}, "spans": [[0, 1]]}}'),
                           ("/api/saturation", f'{{"text": {deep}}}')):
            status, answer = _post_raw(served[1], path, body.encode())
            assert status == 400, (path, depth, answer)
            assert answer["error"].startswith("the request body nests lists or objects more "
                                              "than 3 deep")


def test_the_server_listens_on_the_loopback_address_only():
    model, vocab = _model("rnn", 2, 1)
    server, url = start_server(Explorer(model, vocab, TEXT))
    try:
        assert server.server_address == ("127.0.0.1", server.port)
        assert url == f"http://127.0.0.1:{server.port}/" and server.port > 0
    finally:
        server.server_close()


def test_a_port_in_use_is_named(served):
    explorer, port = served
    with pytest.raises(OSError, match=f"127.0.0.1:{port} is already in use"):
        start_server(explorer, port)


def test_an_rnn_has_h_only_and_no_saturation():
    model, vocab = _model("rnn", 3, 2)
    explorer = Explorer(model, vocab, TEXT)
    assert explorer.info({})["fields"] == ["h"] and explorer.gates == []
    assert explorer.saturation({"text": TEXT})["gates"] == {}
    assert explorer.hypotheses({"text": TEXT, "field": "h"})["rows"]


# -- the command ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("explore")
    (d / "code.py").write_text(TEXT * 20)
    assert main(["train", str(d / "code.py"), "--out", str(d / "run"), "--steps", "1", "--hidden", "4",
                 "--layers", "1", "--embed", "3", "--seq-len", "10", "--batch-size", "2",
                 "--quiet"]) == 0
    return d / "run" / "last.ckpt", d / "code.py"


def test_save_writes_one_self_contained_page(checkpoint, tmp_path, capsys):
    ckpt, text = checkpoint
    out = tmp_path / "page.html"
    assert main(["explore", str(ckpt), str(text), "--save", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert 'id="saved-data"' in page and "/static/" not in page and "<link" not in page
    assert not re.search(r"\b(src|href)\s*=", page)  # nothing loaded from anywhere
    assert set(re.findall(r"https?://[^\"' ]+", page)) == {"http://www.w3.org/2000/svg"}  # a name
    data = json.loads(page.split('id="saved-data">')[1].split("</script>")[0].replace("<\\/", "</"))
    assert data["view"]["text"] == (TEXT * 20)[:2000] and len(data["view"]["units"]) == 4
    # a text held whole was said to be cut: "the first 1,560 characters", "the first 1 characters"
    assert capsys.readouterr().out == f"wrote {out} (the whole text, 1,560 characters)\n"
    (tmp_path / "one.txt").write_text("x")
    (tmp_path / "long.txt").write_text(TEXT * 40)
    assert main(["explore", str(ckpt), str(tmp_path / "one.txt"), "--save", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out} (the whole text, 1 character)\n"
    assert main(["explore", str(ckpt), str(tmp_path / "long.txt"), "--save", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out} (the first 2,000 of its 3,120 characters)\n"


def test_a_cut_never_ends_between_the_two_characters_of_a_crlf(checkpoint, tmp_path, capsys):
    # a text cut after the "\r" of "\r\n" ended in a lone "\r", which the page's text box
    # turns into a line break of its own: the text no longer read as CRLF lines
    line = "if x:\r\n"
    path = tmp_path / "windows.txt"
    path.write_bytes((line * 400).encode())
    page = tmp_path / "page.html"
    assert main(["explore", str(checkpoint[0]), str(path), "--max-chars", "13", "--save",
                 str(page)]) == 0
    data = json.loads(page.read_text(encoding="utf-8").split('id="saved-data">')[1].split("</script>")[0])
    assert data["info"]["text"] == line + "if x:"  # 12 characters, not the "\r" of 13
    text = "x" + "ab\r\n" * 600  # its 2000th character (SAVE_CHARS) is a "\r"
    model, vocab = _model("lstm", 3, 1, text=text)
    save_page(Explorer(model, vocab, text, "w"), page)
    data = json.loads(page.read_text(encoding="utf-8").split('id="saved-data">')[1].split("</script>")[0])
    assert data["view"]["text"] == text[:1999]


def test_a_saved_page_keeps_html_in_its_text_inside_the_data_block(tmp_path):
    # An HTML file's "<!-- <script>" in the text put the parser into a state in which the
    # data block's "</script>" did not end it: the page's own script was swallowed (Chromium
    # showed a blank page).
    text = 'x = "<!-- <script>"\ny = "</script>"\n'
    model, vocab = _model("lstm", 3, 1, text=text)
    save_page(Explorer(model, vocab, text, "t.html"), tmp_path / "page.html")
    page = (tmp_path / "page.html").read_text(encoding="utf-8")
    block = page.split('id="saved-data">')[1].split("</script>")[0]
    assert "<" not in block  # nothing in it that an HTML parser reads as markup
    assert json.loads(block)["view"]["text"] == text
    assert page.count("<script") == page.count("</script>") == 2  # data, then the app


def test_a_text_cut_at_max_chars_is_said_with_both_lengths(checkpoint, tmp_path, capsys):
    ckpt, _ = checkpoint
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_bytes(b"\xef\xbb\xbf" + "# caf\u00e9 \u2192 \U0001f600\n".encode() * 10)  # 11 each
    second.write_text("x = 1\n" * 5, encoding="utf-8")  # 30 characters
    out = tmp_path / "page.html"
    argv = ["explore", str(ckpt), str(first), str(second), "--save", str(out)]
    assert main(argv + ["--max-chars", "50"]) == 0
    err = capsys.readouterr().err
    assert "the text is cut to its first 50 of 140 characters; --max-chars 140 shows all" in err
    assert main(argv + ["--max-chars", "140"]) == 0
    assert "cut" not in capsys.readouterr().err


def test_the_commands_bad_inputs(checkpoint, tmp_path, capsys):
    ckpt, text = checkpoint
    other = tmp_path / "forecaster.ckpt"
    save_checkpoint(other, {"kind": "forecaster"}, {})
    empty, binary = tmp_path / "empty.txt", tmp_path / "bin.txt"
    empty.write_bytes(b"")
    binary.write_bytes(b"abc\x00\x01\x02")
    cases = [([str(other), "--no-browser"], "needs a 'charlm' model"),
             ([str(ckpt), str(empty), "--no-browser"], "is empty"),
             ([str(ckpt), str(binary), "--no-browser"], "looks like a binary file"),
             ([str(ckpt), "--save", str(tmp_path / "p.html")], "--save needs a TEXT_FILE"),
             ([str(ckpt), "--port", "70000", "--no-browser"], "--port must be an integer in [0, 65535]")]
    for argv, message in cases:
        capsys.readouterr()
        assert main(["explore"] + argv) == 2
        assert message in capsys.readouterr().err, argv
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        assert main(["explore", str(ckpt), "--port", str(port), "--no-browser"]) == 2
        assert f"127.0.0.1:{port} is already in use" in capsys.readouterr().err
    finally:
        busy.close()


def test_a_max_chars_whose_trace_cannot_fit_in_memory_is_refused(checkpoint, capsys):
    model, vocab = _model("lstm", 4, 2)
    huge = 10 ** 15  # characters: petabytes of gates and states
    with pytest.raises(ValueError, match=f"max_chars {huge:,}: a trace of that many characters "
                                         f"of this model takes .* PiB, more than the"):
        Explorer(model, vocab, TEXT, max_chars=huge)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="max_chars must be a positive integer"):
            Explorer(model, vocab, TEXT, max_chars=bad)
    ckpt, text = checkpoint
    capsys.readouterr()
    assert main(["explore", str(ckpt), "--max-chars", str(huge), "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert f"--max-chars {huge:,}: a trace" in err and "choose a smaller --max-chars" in err


@pytest.mark.skipif(os.name != "posix", reason="Windows cannot send SIGINT to one process")
def test_the_command_serves_until_interrupted(checkpoint):
    ckpt, text = checkpoint
    src = str(Path(__file__).resolve().parents[1] / "src")
    with running([sys.executable, "-m", "lstmlab", "explore", str(ckpt), str(text),
                  "--no-browser"], env=dict(os.environ, PYTHONPATH=src), stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True) as proc:
        line = proc.stdout.readline()
        port = int(re.search(r"at http://127\.0\.0\.1:(\d+)/ ", line).group(1))
        status, page = _request(port, "GET", "/")
        assert status == 200 and b"<title>lstmlab explore</title>" in page
        info = json.loads(_request(port, "POST", "/api/info", {})[1])
        assert info["text"] == text.read_text() and info["cell"] == "lstm"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped" in out, err
