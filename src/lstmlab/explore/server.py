"""``lstmlab explore``'s web application: a Werkzeug WSGI app on 127.0.0.1 and its JSON API.

The page (``static/``, shipped with the package) asks the API for numbers and draws them; the
server keeps no per-user state, only the last CACHED traces (a trace is a pure function
of the text). Every route:

    GET  /                   the page
    GET  /static/<name>      one of the page's own files (STATIC_FILES); anything else 404
    POST /api/info           the model, the fields it has, the limits, the given text
    POST /api/view           {text, units: [[layer, unit], ...]} -> every field of those
                             units over the text and the top next-character predictions
    POST /api/rank           {text, field, spans: [[start, stop], ...]} -> units ranked by
                             how they separate the selected characters
    POST /api/hypotheses     {text, field} -> the built-in hypotheses' best units
    POST /api/match          {text, field, units, span} -> look-alike places
    POST /api/saturation     {text} -> per gate and layer, each unit's saturated fractions

Requests whose Host is not this server's loopback address are refused (a page on another
site cannot reach the API through DNS rebinding); bodies are limited to MAX_BODY bytes.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from importlib import resources

import numpy as np
from werkzeug.exceptions import (BadRequest, Forbidden, HTTPException, NotFound,
                                 RequestEntityTooLarge)
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .._checks import positive_int, short_repr
from .._memory import UNKNOWN_MEMORY, format_bytes, machine_memory
from ..data.text import DataError
from ..insight.units import SIGNAL_DOCS
from . import analysis

# Vocab.encode's advice when no replacement character is in the vocabulary.
_LIBRARY_HINT = "pass replacement=<a character in the vocabulary>"
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
MAX_BODY = 4 << 20  # bytes of one API request
TOP_K = 5  # next-character predictions shown on hover
MAX_UNITS = 64  # units one view request may ask for
RANKED = 10  # units listed for a selection
MAX_DEPTH = 3  # nesting of a request body: {"units": [[layer, unit], ...]}
CACHED = 2  # traces kept: one of 10,000 characters of a 2x256 float32 LSTM is 123 MB


def static_text(name: str) -> str:
    """One of the page's files, from the installed package."""
    return (resources.files(__package__) / "static" / name).read_text("utf-8")


def _units(trace, units) -> list[tuple[int, int]]:
    if not isinstance(units, list) or not 1 <= len(units) <= MAX_UNITS:
        raise ValueError(f"units must be a list of 1 to {MAX_UNITS} [layer, unit] pairs")
    out = []
    for u in units:
        if not isinstance(u, list) or len(u) != 2:
            raise ValueError(f"each unit must be a [layer, unit] pair, got {short_repr(u)}")
        trace.check_unit(*u)
        out.append((u[0], u[1]))
    return out


def _rounded(a) -> list:
    """Floats with 6 significant digits: what the page shows, at a third of the bytes."""
    return [float(f"{x:.6g}") for x in np.asarray(a, np.float64).ravel()]


class Explorer:
    """The model, its vocabulary and the given text, and the API's answers as plain dicts."""

    def __init__(self, model, vocab, corpus: str = "", source: str = "", max_chars: int = 5000):
        self.model, self.vocab = model, vocab
        self.corpus, self.source = corpus, source
        self.max_chars = positive_int(max_chars, "max_chars")
        self._lock = threading.Lock()  # one computation at a time: the machine is small
        self._traces: OrderedDict[str, analysis.Trace] = OrderedDict()
        one = analysis.trace_text(self.model, self.vocab, self.vocab.chars[0])
        self.fields, self.gates = list(one.fields), list(one.gates)
        self._check_memory(one)

    def _check_memory(self, one: analysis.Trace) -> None:
        """Refuse a ``max_chars`` whose trace cannot fit in this machine's memory (``one``: the
        trace of one character): a text that long would end the server in a MemoryError or
        the system's out-of-memory killer, after the page had been promised it."""
        per_char = sum(a.nbytes for a in one.fields.values()) + one.probs.nbytes
        need, limit = per_char * self.max_chars, machine_memory() or UNKNOWN_MEMORY
        if need > limit:
            raise ValueError(f"max_chars {self.max_chars:,}: a trace of that many characters "
                             f"of this model takes {format_bytes(need)}, more than the "
                             f"{format_bytes(limit)} of memory here; choose a smaller max_chars")

    def trace(self, text) -> analysis.Trace:
        if not isinstance(text, str):
            raise ValueError("text must be a string")
        limit = max(self.max_chars, len(self.corpus))
        if len(text) > limit:
            raise ValueError(f"the text has {len(text):,} characters; the limit is {limit:,} "
                             f"(lstmlab explore --max-chars)")
        with self._lock:
            if text in self._traces:
                self._traces.move_to_end(text)
                return self._traces[text]
            try:
                tr = analysis.trace_text(self.model, self.vocab, text)
            except DataError as exc:  # the library's advice names a parameter the page lacks
                raise DataError(str(exc).replace(_LIBRARY_HINT, "remove them from the text")
                                ) from None
            self._traces[text] = tr
            if len(self._traces) > CACHED:
                self._traces.popitem(last=False)
            return tr

    def _field(self, body) -> str:
        field = body.get("field", "h")
        if field not in self.fields:
            raise ValueError(f"field must be one of {self.fields}, got {short_repr(field)}")
        return field

    # -- the API ---------------------------------------------------------------------------
    def info(self, body) -> dict:
        c = self.model.config
        return {"cell": c.cell, "layers": c.num_layers, "hidden": c.hidden_size,
                "vocab": len(self.vocab), "fields": self.fields, "gates": self.gates,
                "max_chars": self.max_chars, "text": self.corpus, "source": self.source,
                "low": analysis.LOW, "high": analysis.HIGH}

    def view(self, body) -> dict:
        tr = self.trace(body.get("text"))
        units = _units(tr, body.get("units"))
        values = {f: [_rounded(tr.unit_values(f, l, u)) for l, u in units] for f in tr.fields}
        top = [[[ch, round(p, 4)] for ch, p in row]
               for row in analysis.top_predictions(tr, self.vocab, TOP_K)]
        return {"text": tr.text, "units": [list(u) for u in units], "values": values,
                "top": top, "replaced": list(tr.replaced)}

    def rank(self, body) -> dict:
        tr = self.trace(body.get("text"))
        field = self._field(body)
        spans = body.get("spans")
        if not isinstance(spans, list) or not spans:
            raise ValueError("spans must be a non-empty list of [start, stop) pairs")
        ranked = analysis.rank_units(tr, field, spans, top=RANKED)
        return {"field": field, "units": [[r.layer, r.unit] for r in ranked],
                "auc": [r.auc for r in ranked], "r": [r.r for r in ranked],
                "values": [_rounded(tr.unit_values(field, r.layer, r.unit)) for r in ranked]}

    def hypotheses(self, body) -> dict:
        tr = self.trace(body.get("text"))
        field = self._field(body)
        rows = [{"signal": m.signal, "doc": SIGNAL_DOCS[m.signal], "layer": m.layer,
                 "unit": m.unit, "r": m.r} for m in analysis.hypotheses(tr, field)]
        return {"field": field, "chars": len(tr.text), "rows": rows}

    def match(self, body) -> dict:
        tr = self.trace(body.get("text"))
        field = self._field(body)
        units = _units(tr, body.get("units"))
        span = body.get("span")
        if not isinstance(span, list) or len(span) != 2:
            raise ValueError("span must be a [start, stop) pair")
        H = tr.hidden_size
        cols = tr.values(field)[:, [l * H + u for l, u in units]]  # (T, N)
        found = analysis.match_windows(cols, span[0], span[1])
        return {"field": field, "span": span, "width": span[1] - span[0],
                "matches": [{"start": m.start, "distance": m.distance} for m in found]}

    def saturation(self, body) -> dict:
        tr = self.trace(body.get("text"))
        sat = analysis.saturation(tr)
        return {"chars": len(tr.text),
                "gates": {g: {"left": [_rounded(x) for x in left],
                              "right": [_rounded(x) for x in right]}
                          for g, (left, right) in sat.items()}}


def _depth(value) -> int:
    """How deep lists and objects nest in the JSON value ``value`` (a number or string: 0),
    counted without recursion, and no further than one past :data:`MAX_DEPTH`."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            if d <= MAX_DEPTH:
                stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _api_message(exc: HTTPException, request: Request) -> str:
    """The error of ``exc`` for the API: werkzeug's own, except for a body over the limit,
    whose words ("exceeds the capacity limit") name neither the limit nor the size."""
    if not isinstance(exc, RequestEntityTooLarge):
        return exc.description
    limit = f"{MAX_BODY:,} bytes ({MAX_BODY >> 20} MiB)"
    if request.content_length:
        return (f"the request body has {request.content_length:,} bytes; the API takes at "
                f"most {limit}")
    return f"the request body is larger than the API's limit of {limit}"


def _json_error(message: str, status: int) -> Response:
    return Response(json.dumps({"error": message}), status=status, mimetype="application/json")


API = ("info", "view", "rank", "hypotheses", "match", "saturation")


class App:
    """The WSGI application: the page, its files and the API of an :class:`Explorer`."""

    def __init__(self, explorer: Explorer):
        self.explorer = explorer
        self.port = None  # set once bound: the Host header must name it
        self.urls = Map([Rule("/", endpoint="page", methods=["GET"]),
                         Rule("/static/<name>", endpoint="static", methods=["GET"]),
                         Rule("/api/<name>", endpoint="api", methods=["POST"])])

    def _check_host(self, request: Request) -> None:
        allowed = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        if self.port is not None and request.host not in allowed:
            raise Forbidden(f"this server answers only requests for 127.0.0.1:{self.port}")

    def dispatch(self, request: Request) -> Response:
        self._check_host(request)
        endpoint, args = self.urls.bind_to_environ(request.environ).match()
        if endpoint == "page":
            return Response(static_text("index.html"), mimetype="text/html")
        if endpoint == "static":
            if args["name"] not in STATIC_FILES:
                raise NotFound()
            return Response(static_text(args["name"]), mimetype=STATIC_FILES[args["name"]])
        if args["name"] not in API:
            raise NotFound()
        too_deep = BadRequest(f"the request body nests lists or objects more than "
                              f"{MAX_DEPTH} deep; the deepest the API reads is units: "
                              f"[[layer, unit], ...]")
        if not request.is_json:  # (a page elsewhere can post text/plain without asking)
            raise BadRequest(f"the request body must be JSON sent with Content-Type: "
                             f"application/json, got {request.mimetype or 'no Content-Type'}")
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # the parser went past Python's recursion limit
            raise too_deep from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        if _depth(body) > MAX_DEPTH:  # an error message's repr of it would recurse too
            raise too_deep
        try:
            answer = getattr(self.explorer, args["name"])(body)
        except (ValueError, TypeError) as exc:  # bad input (DataError is a ValueError)
            return _json_error(str(exc), 400)
        return Response(json.dumps(answer), mimetype="application/json")

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.max_content_length = MAX_BODY
        try:
            response = self.dispatch(request)
        except HTTPException as exc:
            response = exc.get_response(environ)  # its status and headers (Allow on a 405)
            if request.path.startswith("/api/"):  # the API answers every error in JSON
                response.set_data(json.dumps({"error": _api_message(exc, request)}))
                response.mimetype = "application/json"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)
