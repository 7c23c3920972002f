"""``lstmlab explore``: a local web page to look inside a trained character model.

* :mod:`.analysis` — the numbers: every unit's gates and states over a text, predictions,
  units ranked by a selection, built-in hypotheses, look-alike places, gate saturation.
* :mod:`.server` — the Werkzeug application serving the page (``static/``) and its JSON API.

:func:`start_server` binds it to 127.0.0.1; :func:`save_page` writes the same page as one
self-contained HTML file with the answers it needs stored inside.
"""

from __future__ import annotations

import errno
import json
import os
import socket

import numpy as np

from ..training.checkpoint import atomic_write_text
from . import analysis
from .server import API, App, Explorer, static_text

__all__ = ["API", "App", "Explorer", "analysis", "cut_text", "save_page", "start_server"]

SAVE_CHARS = 2000  # characters of the text a saved page holds
SAVE_UNITS = 16  # units a saved page holds: the hypotheses' best, then the most variable


def cut_text(text: str, n: int) -> str:
    """The first ``n`` characters of ``text``, one fewer when the last would be the ``\\r``
    of a ``\\r\\n`` pair: the page's text box turns a lone ``\\r`` into a line break of
    its own, and the cut text would then no longer read as Windows (CRLF) lines."""
    cut = text[:n]
    return cut[:-1] if cut.endswith("\r") and text[n:n + 1] == "\n" else cut


def _bound_socket(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port`` (0: a free one), with the errors named."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if os.name == "posix":  # a restart may reuse a port whose old connections linger in
        # TIME_WAIT; a port another program listens on stays refused. (On Windows the same
        # option would let two servers share a port, so it is left off there.)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OSError(f"--port {port}: 127.0.0.1:{port} is already in use by another "
                          f"program; choose another port, or leave --port out for a free "
                          f"one") from None
        raise OSError(f"--port {port}: cannot listen on 127.0.0.1:{port}: "
                      f"{exc.strerror or exc}") from None
    return sock


def start_server(explorer: Explorer, port: int = 0):
    """A threaded server for ``explorer`` on 127.0.0.1 (``port`` 0: a free port, chosen by the
    system). Returns ``(server, url)``; call ``server.serve_forever()`` to answer and
    ``server.shutdown()`` from another thread to stop."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, code="-", size="-"):  # no line per request on the terminal
            pass

    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"--port must be an integer in [0, 65535], got {port!r}")
    app = App(explorer)
    sock = _bound_socket(port)
    try:
        server = make_server("127.0.0.1", port, app, threaded=True, request_handler=Quiet,
                             fd=sock.fileno())
    finally:
        sock.close()  # the server holds its own duplicate of the socket
    app.port = server.port
    return server, f"http://127.0.0.1:{server.port}/"


def _saved_units(trace: analysis.Trace, field: str) -> list[list[int]]:
    units = []
    for m in analysis.hypotheses(trace, field, per_signal=1):
        if [m.layer, m.unit] not in units:
            units.append([m.layer, m.unit])
    H = trace.hidden_size
    for j in np.argsort(-trace.values(field).std(axis=0), kind="stable"):
        if len(units) >= SAVE_UNITS:
            break
        if [int(j // H), int(j % H)] not in units:
            units.append([int(j // H), int(j % H)])
    return units


def save_page(explorer: Explorer, path) -> int:
    """Write the page with the answers for the first :data:`SAVE_CHARS` characters of the
    given text stored inside (:data:`SAVE_UNITS` units; hypotheses, saturation): one file,
    no server needed. Returns the number of characters it holds."""
    text = cut_text(explorer.corpus, SAVE_CHARS)
    if not text:
        raise ValueError("--save needs a TEXT_FILE: the saved page shows the views of a text")
    info = explorer.info({})
    field = "C" if "C" in info["fields"] else "h"
    trace = explorer.trace(text)
    store = {"info": dict(info, text=text),
             "view": explorer.view({"text": text, "units": _saved_units(trace, field)}),
             "hypotheses": explorer.hypotheses({"text": text, "field": field}),
             "saturation": explorer.saturation({"text": text})}
    # Every "<" as the JSON escape \u003c: the block's own text can then neither end it early
    # ("</script>") nor switch the HTML parser into a script state in which "</script>" does
    # not end it ("<!--" followed by "<script", as an HTML file in the text box holds).
    data = json.dumps(store, ensure_ascii=False).replace("<", "\\u003c")
    page = static_text("index.html")
    page = page.replace('<link rel="stylesheet" href="/static/style.css">',
                        "<style>\n" + static_text("style.css") + "</style>")
    page = page.replace('<script src="/static/app.js"></script>',
                        f'<script type="application/json" id="saved-data">{data}</script>\n'
                        "<script>\n" + static_text("app.js").replace("</", "<\\/") +
                        "</script>")
    atomic_write_text(path, page)
    return len(text)
