"""Screenshots of every view of ``lstmlab explore`` for docs/explore.md.

    python tests/explore_screenshots.py CKPT TEXT_FILE [--out docs/explore]

Serves the checkpoint with the text file on 127.0.0.1, drives the page in headless Chromium
(tests/cdp.py): shows the unit that follows a built-in hypothesis best, hovers the first short string
literal, selects it as a span, asks for look-alikes; writes one PNG per view.
"""

import argparse
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from cdp import Chromium  # noqa: E402

from lstmlab.data.text import read_text_files  # noqa: E402
from lstmlab.explore import Explorer, start_server  # noqa: E402
from lstmlab.insight.units import text_signals  # noqa: E402
from lstmlab.training.lm import load_charlm  # noqa: E402


def first_string(text: str, shortest: int = 6, longest: int = 40) -> tuple[int, int]:
    """The first run of ``shortest`` to ``longest`` characters inside quotes."""
    inside = np.r_[0, text_signals(text)["inside quotes"], 0]
    edges = np.flatnonzero(np.diff(inside))
    for a, z in zip(edges[::2], edges[1::2]):
        if shortest <= z - a <= longest:
            return int(a), int(z)
    raise SystemExit("no string literal in the text to select")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("text_file")
    ap.add_argument("--out", default="docs/explore")
    ap.add_argument("--max-chars", type=int, default=3000)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, vocab, _ = load_charlm(args.checkpoint)
    text = read_text_files([args.text_file], max_chars=args.max_chars)
    server, url = start_server(Explorer(model, vocab, text, Path(args.text_file).name,
                                       max_chars=args.max_chars))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as profile:
        b = Chromium(Path(profile), width=1150, height=1000)
        try:
            b.goto(url)
            idle = "document.documentElement.dataset.busy === '0'"
            b.wait(f"document.documentElement.dataset.ready === '1' && {idle}", 300)
            a, z = first_string(text)
            best = b.eval("[...document.querySelectorAll('#hyp tr.pick')].sort((p, q) => "
                          "Math.abs(q.querySelector('.r').textContent) - "
                          "Math.abs(p.querySelector('.r').textContent))[0].dataset.signal")
            b.click(f"#hyp tr[data-signal='{best}']")  # the closest match colours the text
            b.wait(idle, 300)
            b.hover(f"#chars span[data-i='{a + 1}']")
            b.screenshot(out / "type.png", "#type")
            b.screenshot(out / "cell.png", "#cell")
            b.eval(f"document.getElementById('text').setSelectionRange({a}, {z})")
            b.click("#add-span")
            b.wait(f"document.querySelector('#ranked tr.pick') && {idle}", 300)
            b.screenshot(out / "select.png", "#select")
            b.click("#find-matches")
            b.wait(f"document.querySelector('#matches tr.pick') && {idle}", 300)
            b.screenshot(out / "match.png", "#match")
            b.screenshot(out / "hypotheses.png", "#hypotheses")
            b.screenshot(out / "saturation.png", "#saturation")
        finally:
            b.close()
            server.shutdown()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
