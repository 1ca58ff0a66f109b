// scactive annotate: the page. No framework, no network beyond this server; every text that
// comes from data is set with textContent, never parsed as HTML.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"];
let state = null;
let cells = null;          // the map (api/map): {n, round, x, y, label, predicted, confidence,
                           // categories, index, layout}; codes index categories (0: none)
let selected = 0;          // index in the visible batch
let lastBatchKey = "";
let picked = null;         // a cell picked on the map, to label or relabel outside the batch
let toCanvas = null;       // embedding -> canvas coordinates ({px, py}), set with the layout
// cell name <-> map position, for every cell the page has seen named (the batch, the answered
// cells, cells picked on the map): the map itself carries no names
const positionOf = Object.create(null);
const nameAt = new Map();
function remember(cell, position) { positionOf[cell] = position; nameAt.set(position, cell); }

// the cells on the list: the batch, after the cell picked on the map if any
function shown() {
  if (!state) return [];
  return picked && !state.batch.includes(picked) ? [picked, ...state.batch] : state.batch;
}

async function api(path, body) {
  const options = { headers: {} };
  if (token) options.headers.Authorization = "Bearer " + token;
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

async function apiBytes(path) {
  const options = { headers: {} };
  if (token) options.headers.Authorization = "Bearer " + token;
  const response = await fetch(path, options);
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    throw new Error(data.error || response.statusText);
  }
  return response.arrayBuffer();
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function colourOf(label) {
  const vocab = state ? state.vocabulary : [];
  const i = vocab.indexOf(label);
  return i < 0 ? "#999" : palette[i % palette.length];
}

function setStatus(text, busy, error) {
  const node = document.getElementById("status");
  node.textContent = text;
  node.className = (busy ? "busy " : "") + (error ? "error" : "");
}

// -- the map: a million cells as pixels ---------------------------------------------------
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
function pack(r, g, b, a = 255) {  // one RGBA pixel of ImageData as a Uint32Array word
  return littleEndian ? ((a << 24) | (b << 16) | (g << 8) | r) >>> 0
    : ((r << 24) | (g << 16) | (b << 8) | a) >>> 0;
}
function packHex(hex) {
  const v = parseInt(hex.slice(1), 16);
  return pack((v >> 16) & 255, (v >> 8) & 255, v & 255);
}
const NONE = packHex("#d0d0d0");

// api/map: a frame "SCM1" (readFrame) holding x, y (float32), label and predicted codes
// (code_bytes each), confidence (uint8); little-endian
function parseMap(buffer) {
  const { header, take } = readFrame(buffer, "SCM1");  // workbench.js
  const n = header.n, size = header.code_bytes;
  const Codes = { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array }[size];
  const map = {
    n, round: header.round, categories: header.categories, noConfidence: header.no_confidence,
    x: take(Float32Array, 4), y: take(Float32Array, 4),
    label: take(Codes, size), predicted: take(Codes, size), confidence: take(Uint8Array, 1),
    index: positionOf, layout: null, base: null,
  };
  header.answered.cells.forEach((cell, k) => remember(cell, header.answered.positions[k]));
  let labeled = 0;
  for (let i = 0; i < n; i++) if (map.label[i]) labeled++;
  map.labeled = new Int32Array(labeled);  // drawn last, so they stay visible
  for (let i = 0, k = 0; i < n; i++) if (map.label[i]) map.labeled[k++] = i;
  return map;
}

// canvas coordinates, pixel offsets and a uniform grid of every cell, once per map and size
function layoutMap(map, width, height) {
  const { x: xs, y: ys, n } = map;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = xs[i], y = ys[i];
    if (x < x0) x0 = x; if (x > x1) x1 = x;
    if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  if (!(x1 >= x0)) { x0 = 0; x1 = 1; }  // no finite cell
  if (!(y1 >= y0)) { y0 = 0; y1 = 1; }
  const pad = 10, z = mapView.zoom;  // the fitted map, zoomed and panned (workbench.js)
  const sx = z * (width - 2 * pad) / (x1 - x0 || 1), sy = z * (height - 2 * pad) / (y1 - y0 || 1);
  const ox = z * pad + mapView.x, oy = z * pad + mapView.y;
  const px = (v) => ox + (v - x0) * sx;
  const py = (v) => oy + (y1 - v) * sy;
  const cx = new Float32Array(n), cy = new Float32Array(n), pixel = new Int32Array(n);
  const cellSize = 8, cols = Math.ceil(width / cellSize), rows = Math.ceil(height / cellSize);
  const bucket = new Int32Array(n), start = new Int32Array(cols * rows + 1);
  for (let i = 0; i < n; i++) {
    let u = ox + (xs[i] - x0) * sx, v = oy + (y1 - ys[i]) * sy;
    if (!(u >= 0 && u < width && v >= 0 && v < height)) { u = -1e9; v = -1e9; }  // not finite
    cx[i] = u; cy[i] = v;
    const inside = u >= 0;
    pixel[i] = inside ? (v | 0) * width + (u | 0) : -1;
    const b = inside ? ((v / cellSize) | 0) * cols + ((u / cellSize) | 0) : -1;
    bucket[i] = b;
    if (b >= 0) start[b + 1]++;
  }
  for (let b = 0; b < cols * rows; b++) start[b + 1] += start[b];
  const fill = start.slice(0, cols * rows), items = new Int32Array(start[cols * rows]);
  for (let i = 0; i < n; i++) if (bucket[i] >= 0) items[fill[bucket[i]]++] = i;
  // a few pixels a cell while they are few, one pixel (the last drawn wins) when many
  const side = n <= 20000 ? 3 : n <= 150000 ? 2 : 1;
  const offsets = [];
  for (let dy = -((side - 1) >> 1); dy <= side >> 1; dy++) {
    for (let dx = -((side - 1) >> 1); dx <= side >> 1; dx++) offsets.push(dy * width + dx);
  }
  return { width, height, px, py, cx, cy, pixel, offsets: Int32Array.from(offsets), viewKey: viewKey(),
    grid: { cellSize, cols, rows, start, items } };
}

// the nearest cell within `radius` canvas pixels of (x, y), or -1: a look at the grid's few
// buckets around the point, not at every cell
function nearestCell(map, x, y, radius = 10) {
  const { cx, cy, grid } = map.layout;
  const { cellSize, cols, rows, start, items } = grid;
  const c0 = Math.max(0, Math.floor((x - radius) / cellSize));
  const c1 = Math.min(cols - 1, Math.floor((x + radius) / cellSize));
  const r0 = Math.max(0, Math.floor((y - radius) / cellSize));
  const r1 = Math.min(rows - 1, Math.floor((y + radius) / cellSize));
  let best = -1, bestDistance = radius * radius;
  for (let r = r0; r <= r1; r++) {
    for (let c = c0; c <= c1; c++) {
      const b = r * cols + c;
      for (let k = start[b]; k < start[b + 1]; k++) {
        const i = items[k], d = (cx[i] - x) ** 2 + (cy[i] - y) ** 2;
        if (d < bestDistance) { best = i; bestDistance = d; }
      }
    }
  }
  return best;
}

// the cells as pixels of an ImageData, then rings around the labeled ones: kept per colour
// mode, so selecting a cell redraws only the crosses
function paintBase(map, mode) {
  const { width, height, pixel, offsets, px, py } = map.layout;
  const image = new ImageData(width, height);
  const buffer = new Uint32Array(image.data.buffer);
  const { codes, colours } = cellColours(map, mode);  // workbench.js: any colouring
  const { n, label, labeled } = map;
  const one = offsets.length === 1;
  const put = (i) => {
    const p = pixel[i];
    if (p < 0) return;
    const colour = colours[codes[i]];
    for (let k = 0; k < offsets.length; k++) buffer[p + offsets[k]] = colour;
  };
  if (one) {
    for (let i = 0; i < n; i++) {
      if (label[i] === 0 && pixel[i] >= 0) buffer[pixel[i]] = colours[codes[i]];
    }
    for (let k = 0; k < labeled.length; k++) {
      const i = labeled[k];
      if (pixel[i] >= 0) buffer[pixel[i]] = colours[codes[i]];
    }
  } else {
    for (let i = 0; i < n; i++) if (label[i] === 0) put(i);
    for (let k = 0; k < labeled.length; k++) put(labeled[k]);
  }
  const canvas = document.createElement("canvas");
  canvas.width = width; canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.putImageData(image, 0, 0);
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 0.6;
  ctx.beginPath();  // one path for every ring: one stroke, however many labels
  for (let k = 0; k < labeled.length; k++) {
    const i = labeled[k], x = px(map.x[i]), y = py(map.y[i]);
    ctx.moveTo(x + 3, y); ctx.arc(x, y, 3, 0, 2 * Math.PI);
  }
  ctx.stroke();
  return canvas;
}

function drawMap() {
  const canvas = document.getElementById("map");
  const ctx = canvas.getContext("2d");
  if (!cells) {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = "#888";
    ctx.fillText(mapError || "Loading the map…", 20, 30);
    return;
  }
  const mode = document.getElementById("colour").value;
  const layout = cells.layout;
  if (!layout || layout.width !== canvas.width || layout.height !== canvas.height ||
      layout.viewKey !== viewKey()) {
    cells.layout = layoutMap(cells, canvas.width, canvas.height);
    cells.base = null;
  }
  const { px, py } = cells.layout;
  toCanvas = { px, py };
  const key = colouringKey(mode) + "\n" + (state ? state.vocabulary.join("\n") : "");
  if (!cells.base || cells.base.key !== key) cells.base = { key, canvas: paintBase(cells, mode) };
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(cells.base.canvas, 0, 0);
  // the batch's cells as black crosses, the selected one red
  ctx.lineWidth = 2;
  shown().forEach((cell, j) => {
    const i = positionOf[cell];
    if (i === undefined || i >= cells.n) return;
    ctx.strokeStyle = j === selected ? "#d62728" : "#000";
    const x = px(cells.x[i]), y = py(cells.y[i]);
    ctx.beginPath(); ctx.moveTo(x - 6, y); ctx.lineTo(x + 6, y); ctx.moveTo(x, y - 6);
    ctx.lineTo(x, y + 6); ctx.stroke();
  });
  drawSelection(ctx);
  renderLegend(cells, mode);
}

// The map is fetched when the round changes (or a picked cell was answered), in the
// background: the batch, the keys and the buttons keep working while it loads.
let mapKey = null;       // the round (and local change count) of the map shown
let mapChanges = 0;      // answers to picked cells since: their labels are on the next map
let mapLoading = false;
let mapError = "";
function ensureMap() {
  if (!state || mapLoading) return;
  const want = `${state.round}:${mapChanges}`;
  if (want === mapKey) return;
  mapLoading = true;
  const changes = mapChanges;
  apiBytes("api/map").then((buffer) => {
    cells = parseMap(buffer);
    mapKey = `${cells.round}:${changes}`;
    mapError = "";
    drawMap();
  }).catch((err) => {
    mapKey = want;  // not again until the round changes: no request storm on a failure
    mapError = "The map did not load: " + err.message;
    setStatus(mapError, false, true);
    if (!cells) drawMap();
  }).finally(() => {
    mapLoading = false;
    ensureMap();  // the round may have moved on while this one loaded
  });
}

// The estimate simulate records too: the model's expected macro-F1 on the unlabeled cells
// (no held-out labels), and the stopping rule's verdict on its predictions' stability.
function estimateText(s) {
  const e = s.estimate || {};
  if (e.estimated_f1 === null || e.estimated_f1 === undefined) {
    if (!(s.cv_history || []).length) {
      return "not enough labels to estimate macro-F1 (needs a model trained on 2 types)";
    }
    // a round trained by an older scactive, or no unlabeled cell left to estimate on
    return "macro-F1 not estimated for the last round";
  }
  const history = (s.estimated_f1_history || []).filter((v) => v !== null);
  const prev = history.length > 1 ? history[history.length - 2] : null;
  let text = `estimated macro-F1 ${(100 * e.estimated_f1).toFixed(1)}%`;
  if (e.low !== null && e.low !== undefined) {
    // the range simulated sessions found around the estimate at as many labels per type
    text += ` (likely ${(100 * e.low).toFixed(0)}–${(100 * e.high).toFixed(0)}%)`;
  }
  if (prev !== null) {
    const delta = 100 * (e.estimated_f1 - prev);
    text += ` ${delta >= 0 ? "+" : ""}${delta.toFixed(1)} since last round`;
  }
  const types = Math.max((s.vocabulary || []).length, e.n_types);
  if (types > e.n_types) {
    return text + ` over ${types} types (${types - e.n_types} without labels count as missed)`;
  }
  return text + ` over the ${e.n_types} labeled types`;
}

function stopAdvice(s) {
  const e = s.estimate || {};
  if (!e.stop) return "";
  return ` Predictions stable over the last ${e.window} rounds (agreement ≥ ${e.kappa}): ` +
    "labeling more is unlikely to change them; you may stop and export.";
}

function renderProgress() {
  const s = state;
  const text = `${s.n_labeled} of ${s.n_cells} cells labeled · round ${s.round} · ` +
    estimateText(s);
  const progress = document.getElementById("progress");
  progress.textContent = text;
  const e = s.estimate || {};
  progress.title = "The model's own expectation of its macro-F1 on the cells nobody labeled, " +
    "from its probabilities: no held-out labels are used. The range is where the truth was " +
    "in 8 of 10 rounds of simulated sessions (" + (e.band_model || "mlp2") + " on pbmc3k and " +
    "Kang) with as many labels per type" +
    (e.labels_per_type ? ` (${e.labels_per_type.toFixed(1)} here)` : "") +
    ". A type that nobody has labeled or added to the vocabulary is not counted.";
  const stats = document.getElementById("stats");
  stats.replaceChildren(el("h3", "Labels per type"));
  const table = el("table");
  for (const [label, count] of Object.entries(s.labels_per_type || {})) {
    const row = el("tr");
    row.append(el("td", label), el("td", count));
    table.append(row);
  }
  stats.append(table);
}

// The vocabulary in the order the page shows it: with a hierarchy (state.hierarchy, type ->
// parent, "" at the top), each type followed by its subtypes, siblings in vocabulary order.
function vocabularyTree() {
  const vocab = state ? state.vocabulary : [];
  const parents = (state && state.hierarchy) || {};
  const known = new Set(vocab);
  const children = new Map();
  for (const label of vocab) {
    const up = known.has(parents[label]) ? parents[label] : "";
    if (!children.has(up)) children.set(up, []);
    children.get(up).push(label);
  }
  const out = [];
  const walk = (up, depth) => {
    for (const label of children.get(up) || []) {
      out.push({ label, depth, parent: up, leaf: !children.has(label) });
      walk(label, depth + 1);
    }
  };
  walk("", 0);
  return out;
}

function renderVocabulary() {
  const box = document.getElementById("vocabulary");
  box.replaceChildren();
  const tree = vocabularyTree();
  const nested = tree.some((t) => t.depth > 0);
  box.classList.toggle("tree", nested);
  const holder = new Map([["", box]]);  // where each type's subtypes go
  tree.forEach(({ label, depth, parent, leaf }, i) => {
    const button = el("button", (i < 9 ? `${i + 1} ` : "") + label);
    button.dataset.label = label;
    button.addEventListener("click", () => answerSelected("label", label));
    if (nested) {
      button.title = `level ${depth + 1}` + (leaf ? "" : ": answer here when unsure of the subtype");
    }
    if (leaf) { holder.get(parent).append(button); return; }
    // a type with subtypes: a block, its subtypes indented beneath it
    const node = el("div", "", "vocab-node");
    const below = el("div", "", "vocab-children");
    node.append(button, below);
    holder.get(parent).append(node);
    holder.set(label, below);
  });
  const kinds = nested ? box.appendChild(el("div", "", "vocab-kinds")) : box;
  for (const [kind, text] of [["unsure", "u unsure"], ["doublet", "d doublet / low quality"],
    ["skip", "s skip"]]) {
    const button = el("button", text);
    button.addEventListener("click", () => answerSelected(kind));
    kinds.append(button);
  }
  const add = el("button", "n new type…");
  add.addEventListener("click", newType);
  kinds.append(add);
}

async function renderBatch() {
  const list = document.getElementById("batch");
  const cellsShown = shown();
  const key = cellsShown.join("\n");
  const answered = new Set(state.batch.filter((c) => !state.pending.includes(c)));
  if (key !== lastBatchKey) {
    lastBatchKey = key;
    selected = 0;
    list.replaceChildren();
    for (const cell of cellsShown) {
      const item = el("li");
      item.dataset.cell = cell;
      item.append(el("span", cell, "cell-id"), el("span", "", "answer"),
        el("div", "…", "evidence"));
      item.addEventListener("click", () => { select(shown().indexOf(cell)); });
      if (cell === picked) item.classList.add("picked");
      list.append(item);
      api("api/cells/" + encodeURIComponent(cell)).then((ev) => showEvidence(item, ev))
        .catch((err) => { item.querySelector(".evidence").textContent = err.message; });
    }
  }
  const labels = state.batch_answers || {};
  list.querySelectorAll("li").forEach((item, j) => {
    const cell = item.dataset.cell;
    item.classList.toggle("answered", answered.has(cell));
    item.classList.toggle("selected", j === selected);
    item.querySelector(".answer").textContent = labels[cell] || "";
  });
  if (answered.has(cellsShown[selected])) {
    const next = cellsShown.findIndex((c) => !answered.has(c));
    if (next >= 0) select(next);
  }
}

function showEvidence(item, ev) {
  const box = item.querySelector(".evidence");
  box.replaceChildren();
  if (ev.answer) {
    const given = el("div", "Answered: " + (ev.answer.label || ev.answer.kind));
    given.style.gridColumn = "1 / -1";
    box.append(given);
  }
  const predictions = el("div");
  predictions.append(el("h4", "Model's top predictions"));
  for (const p of ev.predictions || []) {
    predictions.append(el("div", `${p.label}: ${(100 * p.probability).toFixed(0)}%`));
  }
  predictions.append(whyEmpty("predictions", !(ev.predictions || []).length));
  const genes = el("div");
  genes.append(el("h4", "Most distinctive genes"));
  genes.append(el("div", (ev.top_genes || []).map((g) => g.gene).join(", ")));
  const markers = el("div");
  markers.append(el("h4", "Marker genes"));
  for (const [type, genes] of Object.entries(ev.markers || {})) {
    const text = genes.map((g) => `${g.gene} ${Number(g.expression).toFixed(1)}`);
    markers.append(el("div", `${type}: ${text.join(", ")}`));
  }
  const neighbours = el("div");
  neighbours.append(el("h4", "Nearest labeled cells"));
  neighbours.append(el("div", (ev.neighbours || []).map((n) => n.label).join(", ")));
  neighbours.append(whyEmpty("neighbours", !(ev.neighbours || []).length));
  box.append(predictions, genes, markers, neighbours);
  showNeeds();  // dotplot.js: the reasons, from api/model-needs
}

// where an empty section says why it is empty (filled by showNeeds, dotplot.js)
function whyEmpty(kind, empty) {
  const node = el("div", "", `why why-${kind}`);
  node.dataset.empty = empty ? "1" : "0";
  node.hidden = true;
  return node;
}

function select(j) {
  if (!state || j < 0 || j >= shown().length) return;
  selected = j;
  document.querySelectorAll("#batch li").forEach((item, i) => {
    item.classList.toggle("selected", i === selected);
    if (i === selected) keepInList(item);  // the list scrolls, never the page
  });
  drawMap();
  refreshDotplot();  // dotplot.js: the selected cell's marker evidence
}

// This tab's answers, newest last (kept over reloads): undo takes back this tab's own answer
// even when another tab answered since.
function myAnswers() { return JSON.parse(sessionStorage.getItem("scactive-answers") || "[]"); }
function setMyAnswers(ids) { sessionStorage.setItem("scactive-answers", JSON.stringify(ids)); }

// Answers and undos reach the server one after another, in the order they were made: an undo
// pressed while an answer is on its way waits for its id instead of taking an older one back.
let queue = Promise.resolve();
function inOrder(action) {
  const run = queue.then(action);
  queue = run.catch(() => {});
  return run;
}

// Who answers: the name field, kept in this browser over sessions; empty leaves the name to
// the server (annotate --annotator), which the field shows as its placeholder.
const nameField = document.getElementById("annotator");
nameField.value = localStorage.getItem("scactive-annotator") || "";
nameField.addEventListener("input", () => {
  localStorage.setItem("scactive-annotator", nameField.value.trim());
});
function annotatorName() { return nameField.value.trim() || undefined; }  // undefined: not sent

function answerSelected(kind, label) {
  const cell = shown()[selected];
  if (!cell) return Promise.resolve();
  const annotator = annotatorName();
  return inOrder(async () => {
    try {
      const reply = await api("api/answer", { cell, kind, label, annotator });
      setMyAnswers([...myAnswers(), reply.id]);
      if (cell === picked) { picked = null; mapChanges++; }  // done: fetch the map's labels
    } catch (err) { setStatus(err.message, false, true); return; }
    await refresh();
  });
}

function undo() {
  return inOrder(async () => {
    const ids = myAnswers();
    const id = ids.pop();
    if (id === undefined) {  // never another tab's answer: undo only what this tab answered
      setStatus("Nothing to undo: this tab has not answered yet.", false, true);
      return;
    }
    try {
      await api("api/undo", { id });
      setMyAnswers(ids);
    } catch (err) { setStatus(err.message, false, true); return; }
    await refresh();
  });
}

async function newType() {
  const label = prompt("New cell type:");
  if (label && label.trim()) await answerSelected("label", label.trim());
}

let generation = 0;  // the latest refresh; an older reply arriving later is dropped
async function refresh() {
  const mine = ++generation;
  const reply = await api("api/state");
  if (mine !== generation) return;  // a newer refresh is under way and will render
  state = reply;
  const strategy = document.getElementById("strategy");
  if (!strategy.options.length) {
    for (const name of state.strategies) strategy.append(new Option(name, name));
  }
  strategy.value = state.strategy;
  nameField.placeholder = state.annotator || "(none)";
  addColourOptions(state);
  const size = document.getElementById("batch-size");
  if (!size.dataset.synced) { size.value = state.batch_size; size.dataset.synced = "1"; }
  if (state.error) setStatus("Retraining failed: " + state.error, false, true);
  else if (state.training) {
    const elapsed = (state.running_seconds || 0).toFixed(1);
    setStatus(`Retraining on ${state.n_labeled} labels and picking the next batch… ${elapsed} s`,
      true);
  }
  else if (!state.pending.length) setStatus("Batch done." + stopAdvice(state), false);
  else {
    setStatus(`${state.pending.length} of ${state.batch.length} cells left in this batch.` +
      stopAdvice(state));
  }
  for (const [cell, position] of Object.entries(state.positions || {})) remember(cell, position);
  renderProgress();
  renderVocabulary();
  await renderBatch();
  refreshNeeds();  // dotplot.js: why the model's sections are empty, if they are
  refreshDotplot();
  ensureMap();
  drawMap();
  if (state.training) setTimeout(refresh, 500);
}

document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
  if (!state) return;
  const key = event.key;
  const keyed = /^[1-9]$/.test(key) ? vocabularyTree()[Number(key) - 1] : undefined;
  if (keyed !== undefined) answerSelected("label", keyed.label);  // in the order shown
  else if (key === "u") answerSelected("unsure");
  else if (key === "d") answerSelected("doublet");
  else if (key === "s") answerSelected("skip");
  else if (key === "n") newType();
  else if (key === "j" || key === "ArrowDown") select(selected + 1);
  else if (key === "k" || key === "ArrowUp") select(selected - 1);
  else if (key === "z") document.getElementById("undo").click();
  else return;
  event.preventDefault();
});

document.getElementById("undo").addEventListener("click", undo);
document.getElementById("next").addEventListener("click", async () => {
  const strategy = document.getElementById("strategy").value;
  const batchSize = Number(document.getElementById("batch-size").value);
  try { await api("api/next", { strategy, batch_size: batchSize }); await refresh(); }
  catch (err) { setStatus(err.message, false, true); }
});
document.getElementById("export").addEventListener("click", async () => {
  try {
    const result = await api("api/export", {});
    setStatus("Exported: " + result.written.join(", "));
  } catch (err) { setStatus(err.message, false, true); }
});
document.getElementById("colour").addEventListener("change", colourChanged);
// click the map to pick any cell (labeled or not) and answer or relabel it
document.getElementById("map").addEventListener("click", async (event) => {
  if (!cells || !cells.layout || !clickPicks()) return;  // workbench.js: tools and drags
  const canvas = event.currentTarget;
  const rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left) * canvas.width / rect.width;
  const y = (event.clientY - rect.top) * canvas.height / rect.height;
  const best = nearestCell(cells, x, y);  // within 10 px
  if (best < 0) return;
  let cell = nameAt.get(best);
  if (cell === undefined) {
    try { cell = (await api("api/map/cells/" + best)).cell; }
    catch (err) { setStatus(err.message, false, true); return; }
    remember(cell, best);
  }
  picked = cell;
  lastBatchKey = "";
  renderBatch().then(() => select(shown().indexOf(picked)));
});
refresh().catch((err) => setStatus(err.message, false, true));
