"""`lstmlab explore` in a real headless Chromium, driven over the DevTools protocol: type text,
hover a character, select a span, click a ranked unit, ask for look-alikes; every number the
page shows is compared with the same computation in Python. Skipped where no Chromium is
installed (.ci/run installs Debian's)."""

import json
import re
import threading
import time

import numpy as np
import pytest

from cdp import CHROMIUM, Chromium
from lstmlab.data.text import Vocab
from lstmlab.explore import Explorer, analysis, save_page, start_server
from lstmlab.layers.model import CharLM, CharLMConfig

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed")

START = 'x = f(a, [b, "c"])\n'
# The emoji is one character to Python and two UTF-16 units to JavaScript: every position
# after it must still be the server's.
TYPED = 'def g(y):  # \U0001F642\n    # see (y)\n    return [y, "s(t"]\n' * 3


def _explorer(cell, text=START):
    vocab = Vocab.from_text(TYPED + START + "?")
    cfg = CharLMConfig(vocab_size=len(vocab), hidden_size=5, num_layers=2, embed_dim=4,
                       cell=cell, dtype="float64")
    model = CharLM(cfg, rng=np.random.default_rng(11)).eval()
    return Explorer(model, vocab, text, "test text", max_chars=500)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Chromium(tmp_path_factory.mktemp("chromium"))
    yield b
    b.close()


def _serve(explorer):
    server, url = start_server(explorer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, url


def _stop(server, thread):
    server.shutdown()
    server.server_close()
    thread.join()


def _settled(b, text):
    """Wait until the page shows ``text`` coloured and has no request in flight."""
    b.wait(f"document.documentElement.dataset.ready === '1'"
           f" && document.documentElement.dataset.busy === '0'"
           f" && document.getElementById('chars').children.length === {len(text)}"
           f" && document.getElementById('chars').textContent.replaceAll('↵', '') === {json.dumps(text)}")


def _rgba(css):
    """``rgb(r, g, b)`` or ``rgba(r, g, b, a)`` as four numbers."""
    v = [float(x) for x in re.findall(r"[\d.]+", css)]
    return v if len(v) == 4 else v + [1.0]


def test_the_page_shows_the_models_numbers(browser):
    b = browser
    explorer = _explorer("lstm")
    server, thread, url = _serve(explorer)
    try:
        b.goto(url)
        _settled(b, START)
        # type: replace the text box's content as a user pasting or typing would
        b.eval("(() => { const t = document.getElementById('text'); t.focus(); t.select(); })()")
        b.type(TYPED)
        _settled(b, TYPED)
        tr = analysis.trace_text(explorer.model, explorer.vocab, TYPED)

        # colours: the default field is C; the unit shown is the one in the controls
        field, unit = b.eval("[chars.dataset.field, chars.dataset.unit]")
        layer, u = map(int, unit.split("/"))
        assert field == "C"
        shown = b.eval("[...chars.children].map(s => [Number(s.dataset.v), "
                       "getComputedStyle(s).backgroundColor])")
        want = tr.unit_values("C", layer, u)
        np.testing.assert_allclose([v for v, _ in shown], want, rtol=1e-5, atol=1e-9)
        mean = want.mean()  # states are coloured by their distance from their mean
        scale = np.abs(want - mean).max()
        for (v, css), w in zip(shown, want):
            r, g, bl, a = _rgba(css)
            assert (r, g, bl) == ((214, 39, 40) if w >= mean else (31, 119, 180))
            assert a == pytest.approx(min(1, abs(w - mean) / scale), abs=0.01)

        # a gate: green, as opaque as its value
        b.eval("(() => { const f = document.getElementById('field'); f.value = 'f';"
               " f.dispatchEvent(new Event('change')); })()")
        b.wait("chars.dataset.field === 'f' && document.documentElement.dataset.busy === '0'")
        shown = b.eval("[...chars.children].map(s => getComputedStyle(s).backgroundColor)")
        for css, w in zip(shown, tr.unit_values("f", layer, u)):
            assert _rgba(css) == pytest.approx([44, 160, 44, w], abs=0.01)
        b.eval("(() => { const f = document.getElementById('field'); f.value = 'C';"
               " f.dispatchEvent(new Event('change')); })()")
        b.wait("chars.dataset.field === 'C' && document.documentElement.dataset.busy === '0'")

        # hover: the next-character predictions after that character
        k = 14
        b.hover(f"#chars span[data-i='{k}']")
        b.wait(f"document.getElementById('tip').dataset.i === '{k}'")
        preds = b.eval("[...document.querySelectorAll('#tip .pred')].map(p => [p.dataset.ch, Number(p.dataset.p)])")
        top = analysis.top_predictions(tr, explorer.vocab, 5)[k]
        assert [c for c, _ in preds] == [c for c, _ in top]
        np.testing.assert_allclose([p for _, p in preds], [p for _, p in top], atol=1e-4)
        row = b.eval(f"[...document.querySelectorAll('#tip tr[data-unit=\"{unit}\"] td')]"
                     f".map(td => [td.dataset.field, Number(td.textContent)])")
        for f, v in row:
            assert v == pytest.approx(tr.unit_values(f, layer, u)[k], abs=6e-4)
        start = max(0, min(k - 60, len(TYPED) - 120))  # the stacked view centres the hovered one
        assert b.eval("document.getElementById('stack').dataset.start") == str(start)

        # select a span in the text box with the keyboard, add it: the ranking is rank_units'
        a, z = TYPED.index("# see"), TYPED.index("(y)\n")
        b.click("#text")
        b.press("Home", b.CTRL)
        b.press("ArrowRight", times=a)
        b.press("ArrowRight", b.SHIFT, times=z - a)
        utf16 = [len(TYPED[:i].encode("utf-16-le")) // 2 for i in (a, z)]
        assert b.eval("[text.selectionStart, text.selectionEnd]") == utf16 != [a, z]
        b.click("#add-span")
        b.wait("document.querySelectorAll('#ranked tr.pick').length === 10"
               " && document.documentElement.dataset.busy === '0'")
        ranked = analysis.rank_units(tr, "C", [[a, z]])
        rows = b.eval("[...document.querySelectorAll('#ranked tr.pick')].map(r => "
                      "[r.dataset.unit, Number(r.querySelector('.auc').textContent), "
                      "Number(r.querySelector('.r').textContent)])")
        assert [r[0] for r in rows] == [f"{x.layer}/{x.unit}" for x in ranked]
        np.testing.assert_allclose([r[1] for r in rows], [x.auc for x in ranked], atol=6e-4)
        np.testing.assert_allclose([r[2] for r in rows], [x.r for x in ranked], atol=6e-4)
        assert b.eval("document.querySelectorAll('#chars span.sel').length") == z - a

        # click the best unit: the text and the stacked view of f, i, o, C̃, C, h follow it
        b.click("#ranked tr.pick")
        best = ranked[0]
        b.wait(f"chars.dataset.unit === '{best.layer}/{best.unit}'"
               " && document.documentElement.dataset.busy === '0'")
        assert b.eval("[...document.querySelectorAll('#stack svg[data-field]')].map(s => s.dataset.field)") == \
            ["f", "i", "o", "C̃", "C", "h"]
        v = b.eval("[...chars.children].map(s => Number(s.dataset.v))")
        np.testing.assert_allclose(v, tr.unit_values("C", best.layer, best.unit), rtol=1e-5, atol=1e-9)

        # look-alikes of the span under the five best units
        b.click("#find-matches")
        b.wait("document.querySelectorAll('#matches tr.pick').length > 1"
               " && document.documentElement.dataset.busy === '0'")
        H = tr.hidden_size
        cols = tr.values("C")[:, [x.layer * H + x.unit for x in ranked[:5]]]
        want = [m.start for m in analysis.match_windows(cols, a, z)]
        got = b.eval("[...document.querySelectorAll('#matches tr.pick')].map(r => Number(r.dataset.start))")
        assert got == [a] + want

        # hypotheses and saturation of the typed text
        hyp = b.eval("[...document.querySelectorAll('#hyp tr.pick')].map(r => "
                     "[r.dataset.signal, r.dataset.unit, Number(r.querySelector('.r').textContent)])")
        found = analysis.hypotheses(tr, "C")
        assert [(h[0], h[1]) for h in hyp] == [(m.signal, f"{m.layer}/{m.unit}") for m in found]
        np.testing.assert_allclose([h[2] for h in hyp], [m.r for m in found], atol=6e-4)
        assert b.eval("[...document.querySelectorAll('#sat figure')].map(f => "
                      "[f.dataset.gate, f.querySelectorAll('circle').length])") == \
            [["f", 10], ["i", 10], ["o", 10]]

        # over-long input: the text box keeps the server's limit
        b.eval("(() => { const t = document.getElementById('text'); t.focus(); t.select(); })()")
        b.type("y" * 501)
        _settled(b, "y" * 500)
        assert b.eval("document.getElementById('error').hidden")
    finally:
        _stop(server, thread)


def test_an_answer_about_a_text_typed_over_is_not_drawn(browser):
    # answers come back in any order: a slow one about an older text was drawn over the newer
    # text's, and the page showed the old text while the box held the new one
    b = browser
    explorer = _explorer("lstm")
    slow, fast = 'x = f(a, "b")\n', "y = [a]\n"
    asked, view = threading.Event(), explorer.view

    def slow_view(body):
        if body.get("text") == slow:
            asked.set()
            time.sleep(0.6)
        return view(body)

    explorer.view = slow_view
    server, thread, url = _serve(explorer)
    try:
        b.goto(url)
        _settled(b, START)
        for text in (slow, fast):
            b.eval("(() => { const t = document.getElementById('text'); t.focus(); t.select(); })()")
            b.type(text)
            assert text == fast or asked.wait(10)
        time.sleep(0.4)  # past the typing pause: the newer text's requests are sent
        b.wait("document.documentElement.dataset.busy === '0'", seconds=20)
        shown = b.eval("document.getElementById('chars').textContent.replaceAll('↵', '')")
        assert shown == fast and b.eval("document.getElementById('error').hidden")
    finally:
        _stop(server, thread)


def test_a_view_asked_for_a_unit_chosen_over_is_not_drawn(browser):
    # the answer for the unit chosen first came back last: the page looked up the unit chosen
    # since in it, found nothing, and showed "values is not iterable"
    b = browser
    explorer = _explorer("lstm")
    asked, view = threading.Event(), explorer.view

    def slow_view(body):
        if body.get("units", [None])[0] == [0, 1]:
            asked.set()
            time.sleep(0.6)
        return view(body)

    explorer.view = slow_view
    server, thread, url = _serve(explorer)
    choose = ("(() => { const u = document.getElementById('unit'); u.value = %d;"
              " u.dispatchEvent(new Event('change')); })()")
    try:
        b.goto(url)
        _settled(b, START)
        b.eval(choose % 1)
        assert asked.wait(10)
        b.eval(choose % 2)
        time.sleep(0.7)  # both answers are back
        b.wait("document.documentElement.dataset.busy === '0'", seconds=20)
        assert b.eval("document.getElementById('chars').dataset.unit") == "0/2"
        assert b.eval("document.getElementById('error').hidden")
    finally:
        _stop(server, thread)


def test_an_rnn_page_and_a_saved_page(browser, tmp_path):
    b = browser
    server, thread, url = _serve(_explorer("rnn"))
    try:
        b.goto(url)
        _settled(b, START)
        assert b.eval("[...document.getElementById('field').options].map(o => o.value)") == ["h"]
        assert b.eval("[...document.querySelectorAll('#stack svg[data-field]')].map(s => s.dataset.field)") == ["h"]
        assert "has no gates" in b.eval("document.getElementById('sat').textContent")
    finally:
        _stop(server, thread)
    explorer = _explorer("lstm", TYPED)
    save_page(explorer, tmp_path / "page.html")
    b.goto((tmp_path / "page.html").as_uri())
    _settled(b, TYPED)
    tr = analysis.trace_text(explorer.model, explorer.vocab, TYPED)
    layer, u = map(int, b.eval("chars.dataset.unit").split("/"))
    v = b.eval("[...chars.children].map(s => Number(s.dataset.v))")
    np.testing.assert_allclose(v, tr.unit_values("C", layer, u), rtol=1e-5, atol=1e-9)
    assert b.eval("document.getElementById('hyp').querySelectorAll('tr.pick').length") > 0
    assert b.eval("document.getElementById('text').readOnly")


def test_the_text_box_limit_counts_characters_as_the_server_does(browser):
    # max_chars 12: twelve emoji fit (24 UTF-16 units, which a textarea's maxLength would
    # stop at six), a thirteenth is not taken, and an insertion is cut to the room left
    b = browser
    explorer = _explorer("lstm")
    explorer.max_chars = 12
    explorer.corpus = "\U0001F642" * 10
    server, thread, url = _serve(explorer)
    try:
        b.goto(url)
        _settled(b, explorer.corpus)
        b.eval("(() => { const t = document.getElementById('text'); t.focus();"
               " t.setSelectionRange(t.value.length, t.value.length); })()")
        b.type("\U0001F600\U0001F600\U0001F600")
        want = "\U0001F642" * 10 + "\U0001F600" * 2
        _settled(b, want)
        assert b.eval("document.getElementById('text').value") == want
        assert b.eval("document.getElementById('count').textContent") == "12 / 12 characters"
        b.eval("(() => { const t = document.getElementById('text'); t.setSelectionRange(2, 2); })()")
        b.type("ab")
        assert b.eval("document.getElementById('text').value") == want
        b.eval("(() => { const t = document.getElementById('text'); t.setSelectionRange(0, 4); })()")
        b.type("abc")  # two emoji selected, three characters typed over them: two fit
        want = "ab" + "\U0001F642" * 8 + "\U0001F600" * 2
        _settled(b, want)
        assert b.eval("[text.value, text.selectionStart]") == [want, 2]
    finally:
        _stop(server, thread)


def test_a_text_with_windows_line_endings_reaches_the_model_as_it_is(browser):
    # a textarea holds "\r\n" as "\n": the page sent the text without its carriage returns,
    # so the model read another text than the file's
    b = browser
    text = 'x = f(a, [b, "c"])\r\n' * 2
    explorer = _explorer("lstm", text)
    server, thread, url = _serve(explorer)
    try:
        b.goto(url)
        b.wait("document.documentElement.dataset.ready === '1'"
               " && document.documentElement.dataset.busy === '0'")
        assert b.eval("document.getElementById('count').textContent") == f"{len(text)} / 500 characters"
        shown = b.eval("[...chars.children].map(s => [s.textContent, Number(s.dataset.v)])")
        assert "".join(t for t, _ in shown) == text.replace("\r", "␍").replace("\n", "↵\n")
        layer, u = map(int, b.eval("chars.dataset.unit").split("/"))
        tr = analysis.trace_text(explorer.model, explorer.vocab, text)
        np.testing.assert_allclose([v for _, v in shown], tr.unit_values("C", layer, u),
                                   rtol=1e-5, atol=1e-9)
        # a selection after a line break is a span of the model's text, "\r" counted
        a = text.index("f", 10)
        b.eval(f"(() => {{ const t = document.getElementById('text'); t.focus();"
               f" t.setSelectionRange({a - 1}, {a + 2}); }})()")  # the box has one "\r" less
        b.click("#add-span")
        b.wait("document.querySelectorAll('#chars span.sel').length === 3"
               " && document.documentElement.dataset.busy === '0'")
        sel = b.eval("[...document.querySelectorAll('#chars span.sel')].map(s => Number(s.dataset.i))")
        assert sel == [a, a + 1, a + 2]
    finally:
        _stop(server, thread)
