"""A self-contained HTML report: text, tables and figures in one file, images inline.

Figures are PNGs embedded as ``data:image/png;base64`` URIs, so the file can be mailed or
opened offline. A few lines of script, run when the page has loaded, record on the root
element how many figures decoded (``data-figures="decoded/total"``); the rendering test
reads that back from headless Chromium. The file is written atomically.
"""

from __future__ import annotations

import base64
import html

from ..training.checkpoint import atomic_write_text

_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.note { color: #555; font-size: 0.9em; }
.chars { font: 13px/1.6 ui-monospace, monospace; white-space: pre-wrap; word-break: break-all;
         background: #fafafa; padding: 0.6em; border: 1px solid #eee; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (im) { return im.complete && im.naturalWidth > 0; });
  document.documentElement.setAttribute("data-figures", ok.length + "/" + imgs.length);
});
"""


class Report:
    """Build the page part by part, then :meth:`write` it (or take :meth:`html`)."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title = title
        self.parts = [f"<h1>{html.escape(title)}</h1>"]
        if subtitle:
            self.parts.append(f"<p class='note'>{html.escape(subtitle)}</p>")
        self.figures = 0

    def section(self, title: str, anchor: str | None = None) -> None:
        a = f" id='{html.escape(anchor)}'" if anchor else ""
        self.parts.append(f"<h2{a}>{html.escape(title)}</h2>")

    def text(self, text: str, note: bool = False) -> None:
        """A paragraph of plain text (escaped); ``note`` sets it in small grey type."""
        cls = " class='note'" if note else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def pre(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def raw(self, fragment: str) -> None:
        """Trusted HTML made by this package (e.g. coloured characters)."""
        self.parts.append(fragment)

    def table(self, head: list[str], rows: list[list]) -> None:
        out = ["<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in head) + "</tr>"]
        for row in rows:
            out.append("<tr>" + "".join(f"<td{_num_class(c)}>{html.escape(str(c))}</td>"
                                        for c in row) + "</tr>")
        self.parts.append("".join(out) + "</table>")

    def figure(self, png: bytes, caption: str, alt: str | None = None) -> None:
        if not png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError("Report.figure takes PNG bytes")
        self.figures += 1
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(
            f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(alt or caption)}'>"
            f"<figcaption>Figure {self.figures}. {html.escape(caption)}</figcaption></figure>")

    def html(self) -> str:
        return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style>"
                f"<script>{_SCRIPT}</script></head><body>\n" + "\n".join(self.parts)
                + "\n</body></html>\n")

    def write(self, path) -> None:
        atomic_write_text(path, self.html())


def _num_class(cell) -> str:
    """Numbers are right-aligned: ``" class='num'"`` for a cell made of a number (with a
    spread such as ``± 0.01`` or ``[0.2, 0.9]``, or a count such as ``48k``) and nothing else."""
    text = str(cell).strip()
    if any(ch.isdigit() for ch in text) and all(ch in "0123456789.,+-e ±[]/k" for ch in text):
        return " class='num'"
    return ""


def _visible(ch: str) -> str:
    """A character of the coloured text as the page shows it: itself, or for a control
    character other than newline and tab a visible stand-in, its Unicode control picture
    (``␍`` for a carriage return, ``␀`` for NUL) or, beyond U+007F, its escape (``\\x85``).
    Written as they are, an HTML parser turns a carriage return into a second line break
    (a CRLF text would show every line twice spaced) and NUL into U+FFFD."""
    cp = ord(ch)
    if ch in "\n\t" or not (cp < 0x20 or 0x7F <= cp < 0xA0):
        return ch
    if cp < 0x20:
        return chr(0x2400 + cp)
    return "\u2421" if cp == 0x7F else repr(ch)[1:-1]


def colored_chars(text: str, values, scale: float | None = None) -> str:
    """``text`` as HTML, every character's background coloured by its value (blue < 0 < red),
    in the style of Karpathy et al.'s cell visualisations. ``scale``: the value shown at
    full colour (default: the largest ``|value|``)."""
    import numpy as np

    v = np.asarray(values, np.float64)
    if v.shape != (len(text),):  # zip would cut the longer one short: characters lost
        raise ValueError(f"values must hold one number per character of text, shape "
                         f"({len(text)},), got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"values must be finite, got {v[~np.isfinite(v)][0]} at character "
                         f"{int(np.flatnonzero(~np.isfinite(v))[0])}")
    s = scale or float(np.abs(v).max(initial=0.0)) or 1.0
    out = []
    for ch, x in zip(text, v):
        a = min(1.0, abs(x) / s)
        rgb = "214,39,40" if x > 0 else "31,119,180"
        shown = "⏎\n" if ch == "\n" else html.escape(_visible(ch))
        out.append(f"<span style='background:rgba({rgb},{a:.2f})' title='{x:+.3f}'>{shown}</span>")
    return "<div class='chars'>" + "".join(out) + "</div>"
