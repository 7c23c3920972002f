"""The demo's report.html renders in headless Chromium with every figure decoded.

The page's own script writes ``data-figures="decoded/total"`` on <html> once loaded; Chromium's
--dump-dom prints the DOM after the load event. Skipped where no Chromium is installed
(.ci/run installs Debian's chromium first, so CI runs it).
"""

import base64
import html as htmllib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lstmlab.insight.report import Report, colored_chars

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def _png(w=3, h=2) -> bytes:
    import io
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w, h), dpi=50)
    fig.subplots().plot(np.arange(5) ** 2)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _rendered(path: Path, tmp_path: Path) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--no-first-run", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
           "--dump-dom", path.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _figures_attr(dom: str) -> tuple[int, int]:
    m = re.search(r'<html[^>]*data-figures="(\d+)/(\d+)"', dom)
    assert m, "the page's load script did not run"
    return int(m.group(1)), int(m.group(2))


def test_report_parts_are_escaped_and_figures_must_be_png(tmp_path):
    rep = Report("a <b> & c", "sub")
    rep.section("1. <x>", "one")
    rep.text("5 < 6")
    rep.table(["a", "b"], [["<i>", 1]])
    with pytest.raises(ValueError, match="PNG"):
        rep.figure(b"GIF89a", "not a png")
    rep.figure(_png(), "a <caption>")
    rep.raw(colored_chars("a\n<", [0.5, -1.0, 0.0]))
    page = rep.html()
    assert "<b>" not in page.split("<body>")[1].split("<span")[0]
    assert "5 &lt; 6" in page and "&lt;i&gt;" in page and "Figure 1. a &lt;caption&gt;" in page
    assert "rgba(31,119,180,1.00)" in page  # the -1 character at full blue
    rep.write(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == page


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed")
def test_the_demo_report_renders_with_every_figure(tmp_path):
    from lstmlab.insight.demo import DemoConfig, run_demo

    out = tmp_path / "demo"
    run_demo(DemoConfig.quick_version(out=str(out)), log=lambda msg: None)
    page = (out / "report.html").read_text(encoding="utf-8")
    n = page.count("<img")
    assert n >= 4
    dom = _rendered(out / "report.html", tmp_path)
    assert _figures_attr(dom) == (n, n)
    titles = [htmllib.unescape(t) for t in re.findall(r"<h2[^>]*>(.*?)</h2>", dom)]
    assert len(titles) == 4 and titles[0].startswith("1. RNN") and titles[3] == "4. Summary"


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed")
def test_a_broken_figure_is_caught(tmp_path):
    rep = Report("broken")
    rep.figure(_png(), "fine")
    rep.figure(_png(), "broken")
    page = rep.html()
    good = base64.b64encode(_png()).decode()
    i = page.rindex("base64,") + len("base64,")
    page = page[:i] + "AAAA" + page[i + 4:]  # corrupt the second image's PNG signature
    assert good[:4] != "AAAA"
    (tmp_path / "b.html").write_text(page)
    assert _figures_attr(_rendered(tmp_path / "b.html", tmp_path)) == (1, 2)


def test_colored_chars_shows_control_characters_as_visible_stand_ins():
    # raw in the page, a CRLF text's carriage returns would be parsed as line breaks (every
    # line twice spaced) and NUL as U+FFFD; one span per character either way
    import html
    import re

    text = "a\r\n\x00\t\x7f\x85é\u0301b"
    page = colored_chars(text, np.linspace(-1, 1, len(text)))
    spans = [html.unescape(t) for t in re.findall(r"<span[^>]*>(.*?)</span>", page, re.S)]
    assert spans == ["a", "\u240d", "⏎\n", "\u2400", "\t", "\u2421", "\\x85", "é", "\u0301", "b"]
    assert "\r" not in page and "\x00" not in page


def test_colored_chars_names_values_that_do_not_fit_the_text():
    with pytest.raises(ValueError, match=r"one number per character of text, shape \(3,\), "
                                         r"got \(2,\)"):
        colored_chars("abc", [0.5, -1.0])  # the "c" would be lost from the page
    with pytest.raises(ValueError, match=r"one number per character of text, shape \(1,\), "
                                         r"got \(2,\)"):
        colored_chars("a", [0.5, -1.0])
    with pytest.raises(ValueError, match="values must be finite, got nan at character 1"):
        colored_chars("ab", [0.5, np.nan])
    assert colored_chars("", []) == "<div class='chars'></div>"
    assert colored_chars("ab", [0.0, 0.0]).count("<span") == 2
