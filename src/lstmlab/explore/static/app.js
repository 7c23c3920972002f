// lstmlab explore: the page. It asks the server's JSON API (or, in a page written with
// --save, the answers stored in it) for numbers and draws them; it computes nothing about
// the model itself.
"use strict";

const SAVED = document.getElementById("saved-data");  // present only in a saved page
const STORE = SAVED ? JSON.parse(SAVED.textContent) : null;
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const state = {
  info: null, text: "", chars: [], field: "h", current: [0, 0], pinned: [],
  view: null, spans: [], ranked: null, busy: 0, hovered: -1, stackStart: 0,
};

// The server counts characters as Python does, by code point; a JavaScript string counts
// UTF-16 units, two for a character beyond U+FFFF (an emoji). Every position, length and
// slice of the text here goes through its code points, so character i is the server's i.
const codePoints = (s) => Array.from(s);
// A textarea holds every line break as "\n" (HTML turns "\r\n" into "\n"), so a given text
// with Windows line endings would reach the model without its "\r"s. When every line of the
// given text ends in "\r\n", the box's line breaks are sent as "\r\n": the text the model
// reads is the file's, and positions count the "\r"s.
let crlf = false;
const hasCRLF = (s) => s.includes("\r\n") && !/\r(?!\n)|(?<!\r)\n/.test(s);
const toModel = (s) => (crlf ? s.replaceAll("\n", "\r\n") : s);
const pointIndex = (s, unit) => codePoints(toModel(s.slice(0, unit))).length;  // box -> model

// -- talking to the server ----------------------------------------------------------------
async function api(name, body) {
  if (STORE) return fromStore(name, body);
  const res = await fetch("/api/" + name, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({error: res.status + " " + res.statusText}));
  if (!res.ok) throw new Error(answer.error || res.statusText);
  return answer;
}

function fromStore(name, body) {
  if (name === "view") {
    const have = STORE.view.units.map((u) => u.join(":"));
    const idx = body.units.map((u) => have.indexOf(u.join(":")));
    if (idx.some((i) => i < 0)) {
      throw new Error("this saved page holds the units " + have.join(", ").replaceAll(":", "/") +
                      " only; run lstmlab explore to see others");
    }
    const values = {};
    for (const f in STORE.view.values) values[f] = idx.map((i) => STORE.view.values[f][i]);
    return Object.assign({}, STORE.view, {units: body.units, values: values});
  }
  if (name in STORE) return STORE[name];
  throw new Error("a saved page shows what was computed when it was saved; run lstmlab " +
                  "explore for new selections and look-alikes");
}

function showError(err) {
  const box = $("error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

async function guarded(fn) {
  state.busy += 1;
  document.documentElement.dataset.busy = state.busy;
  try {
    showError(null);
    await fn();
  } catch (err) {
    showError(err);
  } finally {
    state.busy -= 1;
    document.documentElement.dataset.busy = state.busy;
  }
}

// -- colours ------------------------------------------------------------------------------
const isGate = (field) => state.info.gates.includes(field);

function scaleOf(values) {
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return m || 1;
}

// Gates (sigmoids, in [0, 1]) on white-to-green; states red above their mean over the text
// and blue below, full colour at the largest distance from it (a cell that drifts far from
// zero still shows what moves it, as the correlations see it).
function centre(values, field) {
  if (isGate(field)) return 0;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

function colour(v, field, mean, scale) {
  if (isGate(field)) return `rgba(44,160,44,${v.toFixed(3)})`;
  const a = Math.min(1, Math.abs(v - mean) / scale).toFixed(3);
  return v >= mean ? `rgba(214,39,40,${a})` : `rgba(31,119,180,${a})`;
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}

const unitName = (u) => `${u[0]}/${u[1]}`;
const shown = (ch) => (ch === "\n" ? "↵" : ch === " " ? "␣" : ch === "\t" ? "⇥" :
                       ch === "\r" ? "␍" : ch);

// -- 1. the coloured text and the hover box -----------------------------------------------
function unitIndex(u) {
  return state.view.units.findIndex((v) => v[0] === u[0] && v[1] === u[1]);
}

function drawChars() {
  const box = $("chars");
  box.textContent = "";
  const view = state.view;
  if (!view) return;
  const values = view.values[state.field][unitIndex(state.current)];
  const mean = centre(values, state.field);
  const scale = scaleOf(values.map((v) => v - mean));
  box.dataset.field = state.field;
  box.dataset.unit = unitName(state.current);
  box.dataset.mean = mean;
  const frag = document.createDocumentFragment();
  for (let i = 0; i < view.chars.length; i++) {
    const ch = view.chars[i];
    const s = el("span", {"data-i": i, "data-v": values[i]}, ch === "\n" ? "↵\n" : ch === "\r" ? "␍" : ch);
    s.style.background = colour(values[i], state.field, mean, scale);
    frag.appendChild(s);
  }
  box.appendChild(frag);
  markSpans();
}

function markSpans() {
  const spans = $("chars").children;
  for (const s of spans) s.classList.remove("sel");
  for (const [a, b] of state.spans) {
    for (let i = a; i < b && i < spans.length; i++) spans[i].classList.add("sel");
  }
}

function showTip(i) {
  const view = state.view;
  const tip = $("tip");
  tip.textContent = "";
  tip.dataset.i = i;
  const head = el("div");
  head.appendChild(el("b", {}, `after «${shown(view.chars[i])}» (character ${i}): `));
  head.appendChild(document.createTextNode("next "));
  for (const [ch, p] of view.top[i]) {
    head.appendChild(el("span", {class: "pred", "data-ch": ch, "data-p": p},
                        `«${shown(ch)}» ${(100 * p).toFixed(1)}%  `));
  }
  tip.appendChild(head);
  const table = el("table");
  const hr = el("tr");
  hr.appendChild(el("th", {}, "unit"));
  for (const f of state.info.fields) hr.appendChild(el("th", {}, f));
  table.appendChild(hr);
  view.units.forEach((u, k) => {
    const tr = el("tr", {"data-unit": unitName(u)});
    tr.appendChild(el("th", {}, unitName(u)));
    for (const f of state.info.fields) {
      tr.appendChild(el("td", {"data-field": f}, view.values[f][k][i].toFixed(3)));
    }
    table.appendChild(tr);
  });
  tip.appendChild(table);
}

function hover(ev) {
  const s = ev.target.closest("#chars span");
  if (!s || !state.view) return;
  for (const o of $("chars").querySelectorAll("span.hover")) o.classList.remove("hover");
  s.classList.add("hover");
  state.hovered = Number(s.dataset.i);
  state.stackStart = state.hovered - WINDOW / 2;
  showTip(state.hovered);
  drawStack();
}

// -- 2. one cell over time ----------------------------------------------------------------
const WINDOW = 120;  // characters in the stacked view: hovering a character centres it

function drawStack() {
  const box = $("stack");
  box.textContent = "";
  const view = state.view;
  if (!view) return;
  const k = unitIndex(state.current);
  const T = view.chars.length;
  const a = Math.max(0, Math.min(state.stackStart || 0, T - WINDOW));
  const b = Math.min(T, a + WINDOW);
  const W = Math.max(300, box.clientWidth - 70), Hh = 46;
  const dx = W / WINDOW, xs = (t) => (t - a + 0.5) * dx;
  box.dataset.start = a;
  box.appendChild(el("p", {class: "note"},
    `layer ${state.current[0]}, unit ${state.current[1]}; characters ${a}–${b - 1} ` +
    "(hover a character in the text to move the window)"));
  const rows = state.info.fields.map((f) => [f, view.values[f][k]]);
  rows.push(["", null]);  // the characters
  for (const [f, all] of rows) {
    const svg = svgEl("svg", {width: W, height: all ? Hh : 16});
    const row = el("div", {class: "stack-row"});
    row.appendChild(el("span", {class: "label"}, f));
    row.appendChild(svg);
    box.appendChild(row);
    if (!all) {
      for (let t = a; t < b; t++) {
        const c = svgEl("text", {x: xs(t), y: 12, "font-size": 10, "text-anchor": "middle",
                                 "font-family": "monospace"});
        c.textContent = shown(view.chars[t]);
        svg.appendChild(c);
      }
      continue;
    }
    svg.setAttribute("data-field", f);
    const v = all.slice(a, b);
    const gate = isGate(f);
    const m = gate ? 1 : scaleOf(v);  // states: the window's own scale
    const y = (x) => (gate ? Hh - 2 - x * (Hh - 4) : Hh / 2 - (x / m) * (Hh / 2 - 2));
    svg.appendChild(svgEl("rect", {x: 0, y: 0, width: W, height: Hh, fill: "#fafafa"}));
    svg.appendChild(svgEl("line", {x1: 0, x2: W, y1: y(0), y2: y(0), stroke: "#ccc"}));
    if (state.hovered >= a && state.hovered < b) {
      svg.appendChild(svgEl("line", {x1: xs(state.hovered), x2: xs(state.hovered), y1: 0, y2: Hh,
                                     stroke: "#e6a100"}));
    }
    const pts = v.map((x, i) => `${xs(a + i).toFixed(1)},${y(x).toFixed(1)}`).join(" ");
    svg.appendChild(svgEl("polyline", {points: pts, fill: "none", stroke: "#1f4e9a",
                                       "stroke-width": 1.3}));
    row.appendChild(el("span", {class: "note"}, gate ? "[0, 1]" : `±${m.toPrecision(3)}`));
  }
}

// -- units: current and pinned ------------------------------------------------------------
function viewUnits() {
  const all = [state.current].concat(state.pinned);
  const seen = new Set();
  return all.filter((u) => !seen.has(unitName(u)) && seen.add(unitName(u)));
}

function drawPinned() {
  const box = $("pinned");
  box.textContent = "";
  for (const u of state.pinned) {
    const chip = el("span", {class: "chip", "data-unit": unitName(u), title: "show; double-click: unpin"},
                    unitName(u));
    if (unitName(u) === unitName(state.current)) chip.classList.add("current");
    chip.addEventListener("click", () => choose(u));
    chip.addEventListener("dblclick", () => {
      state.pinned = state.pinned.filter((p) => unitName(p) !== unitName(u));
      drawPinned();
    });
    box.appendChild(chip);
  }
}

function choose(u, field) {
  state.current = [u[0], u[1]];
  if (field) state.field = field;
  $("layer").value = u[0];
  $("unit").value = u[1];
  $("field").value = state.field;
  return guarded(refreshView);
}

// An answer about another text than the box's (typing went on while it was computed, and
// answers can come back in any order) is dropped: the newer text's refresh draws the views.
// So is a view asked for another unit than the chosen one: choosing refreshes it.
const stale = (text) => text !== state.text;

async function refreshView() {
  const text = state.text, unit = unitName(state.current);
  const view = await api("view", {text: text, units: viewUnits()});
  if (stale(text) || unit !== unitName(state.current)) return;
  state.view = view;
  state.view.chars = codePoints(state.view.text);
  const rep = state.view.replaced;
  $("replaced").textContent = rep.length
    ? `not in the vocabulary, read as a replacement: ${rep.map(shown).join(" ")}` : "";
  drawChars();
  drawStack();
  drawPinned();
}

// -- 3. ranking by selection --------------------------------------------------------------
function drawSpans() {
  const box = $("spans");
  box.textContent = "";
  for (const [a, b] of state.spans) {
    box.appendChild(el("span", {class: "chip"}, `${a}–${b}: «${state.chars.slice(a, b).slice(0, 20).join("")}»`));
  }
  markSpans();
}

function sparkline(values, spans) {
  const W = 420, Hh = 28, m = scaleOf(values);
  const svg = svgEl("svg", {width: W, height: Hh});
  const dx = W / Math.max(1, values.length - 1);
  for (const [a, b] of spans) {
    svg.appendChild(svgEl("rect", {x: a * dx, y: 0, width: Math.max(1, (b - a) * dx),
                                   height: Hh, fill: "#ffe7a8"}));
  }
  const pts = values.map((v, i) => `${(i * dx).toFixed(1)},${(Hh / 2 - (v / m) * (Hh / 2 - 1)).toFixed(1)}`);
  svg.appendChild(svgEl("polyline", {points: pts.join(" "), fill: "none", stroke: "#1f4e9a"}));
  return svg;
}

async function rank() {
  const table = $("ranked");
  table.textContent = "";
  state.ranked = null;
  if (!state.spans.length) return;
  const text = state.text;
  const res = await api("rank", {text: text, field: state.field, spans: state.spans});
  if (stale(text)) return;
  state.ranked = res;
  const hr = el("tr");
  for (const h of ["#", "layer", "unit", "AUC", "r", `${res.field} over the text (spans shaded)`]) {
    hr.appendChild(el("th", {}, h));
  }
  table.appendChild(hr);
  res.units.forEach((u, k) => {
    const tr = el("tr", {class: "pick", "data-unit": unitName(u)});
    tr.appendChild(el("td", {class: "num"}, k + 1));
    tr.appendChild(el("td", {class: "num"}, u[0]));
    tr.appendChild(el("td", {class: "num"}, u[1]));
    tr.appendChild(el("td", {class: "num auc"}, res.auc[k].toFixed(3)));
    tr.appendChild(el("td", {class: "num r"}, res.r[k].toFixed(3)));
    const td = el("td");
    td.appendChild(sparkline(res.values[k], state.spans));
    tr.appendChild(td);
    tr.addEventListener("click", () => choose(u, res.field));
    table.appendChild(tr);
  });
}

// -- 4. match view ------------------------------------------------------------------------
async function findMatches() {
  const box = $("matches");
  box.textContent = "";
  if (!state.spans.length) throw new Error("add a span first (section 3)");
  const units = state.ranked ? state.ranked.units.slice(0, 5) : viewUnits();
  const span = state.spans[state.spans.length - 1];
  const text = state.text;
  const res = await api("match", {text: text, field: state.field, units: units, span: span});
  if (stale(text)) return;
  box.appendChild(el("p", {class: "note"},
    `${res.field} of ${units.map(unitName).join(", ")} on characters ${span[0]}–${span[1]}:`));
  const table = el("table", {class: "data"});
  const hr = el("tr");
  for (const h of ["at", "distance", "text (window marked)"]) hr.appendChild(el("th", {}, h));
  table.appendChild(hr);
  const addRow = (start, dist) => {
    const tr = el("tr", {class: "pick", "data-start": start});
    tr.appendChild(el("td", {class: "num"}, start));
    tr.appendChild(el("td", {class: "num"}, dist === null ? "query" : dist.toFixed(4)));
    const snip = el("td", {class: "snippet"});
    const a = Math.max(0, start - 15), stop = start + res.width;
    const part = (i, j) => state.chars.slice(i, j).join("").replaceAll("\n", "↵");
    const cut = res.width > 60 ? part(start, start + 60) + "…" : part(start, stop);
    snip.appendChild(document.createTextNode(part(a, start)));
    snip.appendChild(el("mark", {}, cut));
    snip.appendChild(document.createTextNode(part(stop, stop + 15)));
    tr.appendChild(snip);
    tr.addEventListener("click", () => markMatch(start, res.width));
    table.appendChild(tr);
  };
  addRow(span[0], null);
  for (const m of res.matches) addRow(m.start, m.distance);
  box.appendChild(table);
  for (const m of res.matches) markMatch(m.start, res.width, true);
}

function markMatch(start, width, keep) {
  const spans = $("chars").children;
  if (!keep) for (const s of spans) s.classList.remove("match");
  for (let i = start; i < start + width && i < spans.length; i++) spans[i].classList.add("match");
  if (!keep && spans[start]) spans[start].scrollIntoView({block: "nearest"});
}

// -- 5. hypotheses ------------------------------------------------------------------------
async function drawHypotheses() {
  const text = state.text;
  const res = await api("hypotheses", {text: text, field: state.field});
  if (stale(text)) return;
  const table = $("hyp");
  table.textContent = "";
  const hr = el("tr");
  for (const h of ["property", "definition", "layer", "unit", `r (${res.field})`]) {
    hr.appendChild(el("th", {}, h));
  }
  table.appendChild(hr);
  for (const row of res.rows) {
    const tr = el("tr", {class: "pick", "data-signal": row.signal, "data-unit": `${row.layer}/${row.unit}`});
    tr.appendChild(el("td", {}, row.signal));
    tr.appendChild(el("td", {class: "note"}, row.doc));
    tr.appendChild(el("td", {class: "num"}, row.layer));
    tr.appendChild(el("td", {class: "num"}, row.unit));
    tr.appendChild(el("td", {class: "num r"}, row.r.toFixed(3)));
    tr.addEventListener("click", () => choose([row.layer, row.unit], res.field));
    table.appendChild(tr);
  }
  if (!res.rows.length) table.appendChild(el("tr", {}, "no property varies over this text"));
}

// -- 6. saturation ------------------------------------------------------------------------
const LAYER_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

async function drawSaturation() {
  const box = $("sat");
  box.textContent = "";
  const text = state.text;
  const res = await api("saturation", {text: text});
  if (stale(text)) return;
  const gates = Object.keys(res.gates);
  if (!gates.length) {
    box.appendChild(el("p", {}, `a ${state.info.cell} cell has no gates: nothing saturates`));
    return;
  }
  const grid = el("div", {class: "sat-grid"});
  const S = 180, pad = 22;
  for (const g of gates) {
    const fig = el("figure", {"data-gate": g});
    const svg = svgEl("svg", {width: S + pad, height: S + pad});
    svg.appendChild(svgEl("rect", {x: pad, y: 0, width: S, height: S, fill: "#fafafa", stroke: "#ccc"}));
    svg.appendChild(svgEl("line", {x1: pad, y1: S, x2: pad + S, y2: 0, stroke: "#ddd"}));
    const lbl = (x, y, t, anchor) => {
      const e = svgEl("text", {x: x, y: y, "font-size": 10, "text-anchor": anchor || "middle"});
      e.textContent = t;
      svg.appendChild(e);
    };
    lbl(pad + S / 2, S + 16, "fraction left-saturated");
    const ylab = svgEl("text", {x: 0, y: 0, "font-size": 10, "text-anchor": "middle",
                                transform: `translate(${pad - 6},${S / 2}) rotate(-90)`});
    ylab.textContent = "fraction right-saturated";
    svg.appendChild(ylab);
    lbl(pad, S + 10, "0");
    lbl(pad + S, S + 10, "1");
    lbl(pad - 4, 10, "1", "end");
    res.gates[g].left.forEach((left, l) => {
      left.forEach((x, u) => {
        const y = res.gates[g].right[l][u];
        const c = svgEl("circle", {cx: pad + x * S, cy: S - y * S, r: 2.5, fill: LAYER_COLOURS[l % 6],
                                    "fill-opacity": 0.7, "data-unit": `${l}/${u}`});
        const t = svgEl("title", {});
        t.textContent = `layer ${l}, unit ${u}: left ${x.toFixed(3)}, right ${y.toFixed(3)}`;
        c.appendChild(t);
        svg.appendChild(c);
      });
    });
    fig.appendChild(svg);
    const cap = el("figcaption", {}, `${g}: `);
    res.gates[g].left.forEach((_, l) => {
      const key = el("span", {}, ` ● layer ${l} `);
      key.style.color = LAYER_COLOURS[l % 6];
      cap.appendChild(key);
    });
    fig.appendChild(cap);
    grid.appendChild(fig);
  }
  box.appendChild(grid);
}

// -- wiring -------------------------------------------------------------------------------
async function refreshAll() {
  state.text = toModel($("text").value);
  state.chars = codePoints(state.text);
  $("count").textContent = `${state.chars.length.toLocaleString()} / ` +
    `${state.info.max_chars.toLocaleString()} characters`;
  if (!state.text) {
    throw new Error("the text is empty: type or paste some characters");
  }
  state.spans = state.spans.filter(([a, b]) => b <= state.chars.length);
  drawSpans();
  await refreshView();
  await drawHypotheses();
  await drawSaturation();
  await rank();
}

// The text box's limit in characters (code points), the server's unit. A textarea's own
// maxLength counts UTF-16 units and would stop an emoji text at half its characters, so the
// limit is kept here instead, as maxLength keeps it: an insertion that would go past it is
// cut to the room left, the text around it stays. The server's limit also covers a given
// text longer than max_chars.
let accepted = "";
const cost = (chars) => codePoints(toModel(chars.join(""))).length;  // characters sent
function fit(chars, room) {  // the longest start of chars that costs at most room
  let n = 0;
  for (let spent = 0; n < chars.length && spent + cost([chars[n]]) <= room; n++) {
    spent += cost([chars[n]]);
  }
  return chars.slice(0, n);
}
function keepWithinLimit(ta) {
  const limit = Math.max(state.info.max_chars, codePoints(state.info.text || "").length);
  const now = codePoints(ta.value);
  if (cost(now) <= limit) {
    accepted = ta.value;
    return;
  }
  const before = codePoints(accepted);
  let head = 0;  // characters kept in front of the insertion, then behind it
  while (head < before.length && head < now.length && before[head] === now[head]) head++;
  let tail = 0;
  while (tail < before.length - head && tail < now.length - head &&
         before[before.length - 1 - tail] === now[now.length - 1 - tail]) tail++;
  const behind = now.slice(now.length - tail);
  const room = limit - cost(now.slice(0, head)) - cost(behind);
  const kept = now.slice(0, head).concat(fit(now.slice(head, now.length - tail), room));
  ta.value = fit(kept.concat(behind), limit).join("");
  const caret = Math.min(kept.join("").length, ta.value.length);
  ta.setSelectionRange(caret, caret);
  accepted = ta.value;
}

let timer = null;
function onType() {
  keepWithinLimit($("text"));
  clearTimeout(timer);
  timer = setTimeout(() => guarded(refreshAll), 250);
}

function currentFromControls() {
  choose([Number($("layer").value), Number($("unit").value)], $("field").value);
}

const SAMPLE = 'def f(x, y=("a", [1, 2])):\n    # a comment\n    if x:\n' +
               '        return [x, "b(c"]\n    return y\n';

async function start() {
  const info = await api("info", {});
  state.info = info;
  state.field = info.fields.includes("C") ? "C" : "h";
  $("model").textContent = `${info.cell.toUpperCase()}, ${info.layers} layer(s) of ` +
    `${info.hidden} units, ${info.vocab} characters` + (info.source ? `; text: ${info.source}` : "") +
    (STORE ? " — a saved page: the views as computed when saved" : "");
  for (const f of info.fields) $("field").appendChild(el("option", {value: f}, f));
  for (let l = 0; l < info.layers; l++) $("layer").appendChild(el("option", {value: l}, l));
  $("unit").max = info.hidden - 1;
  $("field").value = state.field;
  document.querySelectorAll(".low").forEach((e) => { e.textContent = info.low; });
  document.querySelectorAll(".high").forEach((e) => { e.textContent = info.high; });
  const ta = $("text");
  crlf = hasCRLF(info.text || "");
  ta.value = info.text || SAMPLE;
  accepted = ta.value;
  if (STORE) {
    ta.readOnly = true;
    state.current = STORE.view.units[0];
    state.pinned = STORE.view.units.slice(1);
    $("layer").value = state.current[0];
    $("unit").value = state.current[1];
  }
  ta.addEventListener("input", onType);
  $("field").addEventListener("change", () => guarded(async () => {
    state.field = $("field").value;
    drawChars();
    await drawHypotheses();
    await rank();
  }));
  $("layer").addEventListener("change", currentFromControls);
  $("unit").addEventListener("change", currentFromControls);
  $("pin").addEventListener("click", () => {
    if (!state.pinned.some((u) => unitName(u) === unitName(state.current))) {
      state.pinned.push(state.current);
    }
    drawPinned();
  });
  $("chars").addEventListener("mouseover", hover);
  $("add-span").addEventListener("click", () => guarded(async () => {
    const a = pointIndex(ta.value, ta.selectionStart), b = pointIndex(ta.value, ta.selectionEnd);
    if (b <= a) throw new Error("select some characters in the text box first");
    state.spans.push([a, b]);
    drawSpans();
    await rank();
  }));
  $("clear-spans").addEventListener("click", () => guarded(async () => {
    state.spans = [];
    drawSpans();
    await rank();
  }));
  $("find-matches").addEventListener("click", () => guarded(findMatches));
  await refreshAll();
  document.documentElement.dataset.ready = "1";
}

guarded(start);
