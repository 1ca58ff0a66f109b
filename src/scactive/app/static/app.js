// scactive annotate: the page. No framework, no network beyond this server; every text that
// comes from data is set with textContent, never parsed as HTML.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"];
let state = null;
let cells = null;          // embedding table: {cell: [...], x: [...], y: [...], ...}
let selected = 0;          // index in the visible batch
let lastBatchKey = "";
let picked = null;         // a cell picked on the map, to label or relabel outside the batch
let toCanvas = null;       // embedding -> canvas coordinates, set by drawMap

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

function drawMap() {
  if (!cells) return;
  const canvas = document.getElementById("map");
  const ctx = canvas.getContext("2d");
  const mode = document.getElementById("colour").value;
  const xs = cells.x, ys = cells.y, n = xs.length;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    x0 = Math.min(x0, xs[i]); x1 = Math.max(x1, xs[i]);
    y0 = Math.min(y0, ys[i]); y1 = Math.max(y1, ys[i]);
  }
  const pad = 10, w = canvas.width - 2 * pad, h = canvas.height - 2 * pad;
  const px = (v) => pad + (v - x0) / (x1 - x0 || 1) * w;
  const py = (v) => pad + (1 - (v - y0) / (y1 - y0 || 1)) * h;
  toCanvas = { px, py };
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const radius = n > 10000 ? 1.2 : 2;
  for (let i = 0; i < n; i++) {
    let colour = "#d0d0d0";
    if (mode === "label" && cells.label[i]) colour = colourOf(cells.label[i]);
    if (mode === "predicted" && cells.predicted[i]) colour = colourOf(cells.predicted[i]);
    if (mode === "confidence" && cells.confidence[i] !== null) {
      const c = Math.round(255 * (1 - cells.confidence[i]));
      colour = `rgb(${c},${c},255)`;
    }
    ctx.fillStyle = colour;
    ctx.fillRect(px(xs[i]) - radius, py(ys[i]) - radius, 2 * radius, 2 * radius);
  }
  // labeled cells ringed; the batch's cells as black crosses
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 0.6;
  for (let i = 0; i < n; i++) {
    if (cells.label[i]) {
      ctx.beginPath(); ctx.arc(px(xs[i]), py(ys[i]), 3, 0, 2 * Math.PI); ctx.stroke();
    }
  }
  const batch = shown();
  ctx.lineWidth = 2;
  batch.forEach((cell, j) => {
    const i = cells.index[cell];
    if (i === undefined) return;
    ctx.strokeStyle = j === selected ? "#d62728" : "#000";
    const x = px(xs[i]), y = py(ys[i]);
    ctx.beginPath(); ctx.moveTo(x - 6, y); ctx.lineTo(x + 6, y); ctx.moveTo(x, y - 6);
    ctx.lineTo(x, y + 6); ctx.stroke();
  });
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  if (mode !== "confidence" && state) {
    for (const label of state.vocabulary) {
      const item = el("span", label);
      const swatch = el("i"); swatch.style.background = colourOf(label);
      item.prepend(swatch); legend.append(item);
    }
  }
}

function renderProgress() {
  const s = state;
  const cv = s.cv_accuracy_history || [];
  const last = cv.length ? cv[cv.length - 1] : null;
  const prev = cv.length > 1 ? cv[cv.length - 2] : null;
  let text = `${s.n_labeled} of ${s.n_cells} cells labeled · round ${s.round}`;
  if (last !== null && last !== undefined) {
    text += ` · estimated accuracy ${(100 * last).toFixed(1)}%`;
    if (prev !== null && prev !== undefined) {
      const delta = 100 * (last - prev);
      text += ` (${delta >= 0 ? "+" : ""}${delta.toFixed(1)})`;
    }
  }
  document.getElementById("progress").textContent = text;
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

function renderVocabulary() {
  const box = document.getElementById("vocabulary");
  box.replaceChildren();
  state.vocabulary.forEach((label, i) => {
    const button = el("button", (i < 9 ? `${i + 1} ` : "") + label);
    button.addEventListener("click", () => answerSelected("label", label));
    box.append(button);
  });
  for (const [kind, text] of [["unsure", "u unsure"], ["doublet", "d doublet / low quality"],
    ["skip", "s skip"]]) {
    const button = el("button", text);
    button.addEventListener("click", () => answerSelected(kind));
    box.append(button);
  }
  const add = el("button", "n new type…");
  add.addEventListener("click", newType);
  box.append(add);
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
  box.append(predictions, genes, markers, neighbours);
}

function select(j) {
  if (!state || j < 0 || j >= shown().length) return;
  selected = j;
  document.querySelectorAll("#batch li").forEach((item, i) => {
    item.classList.toggle("selected", i === selected);
    if (i === selected) item.scrollIntoView({ block: "nearest" });
  });
  drawMap();
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

function answerSelected(kind, label) {
  const cell = shown()[selected];
  if (!cell) return Promise.resolve();
  return inOrder(async () => {
    try {
      const reply = await api("api/answer", { cell, kind, label });
      setMyAnswers([...myAnswers(), reply.id]);
      if (cell === picked) { picked = null; cells = null; }  // done: redraw the map's labels
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
  const size = document.getElementById("batch-size");
  if (!size.dataset.synced) { size.value = state.batch_size; size.dataset.synced = "1"; }
  if (state.error) setStatus("Retraining failed: " + state.error, false, true);
  else if (state.training) {
    const elapsed = (state.running_seconds || 0).toFixed(1);
    setStatus(`Retraining on ${state.n_labeled} labels and picking the next batch… ${elapsed} s`,
      true);
  }
  else if (!state.pending.length) setStatus("Batch done.", false);
  else setStatus(`${state.pending.length} of ${state.batch.length} cells left in this batch.`);
  renderProgress();
  renderVocabulary();
  await renderBatch();
  if (state.round !== (cells && cells.round)) {
    cells = await api("api/embedding");
    cells.index = Object.fromEntries(cells.cell.map((c, i) => [c, i]));
  }
  drawMap();
  if (state.training) setTimeout(refresh, 500);
}

document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
  if (!state) return;
  const key = event.key;
  if (/^[1-9]$/.test(key) && state.vocabulary[Number(key) - 1] !== undefined) {
    answerSelected("label", state.vocabulary[Number(key) - 1]);
  } else if (key === "u") answerSelected("unsure");
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
document.getElementById("colour").addEventListener("change", drawMap);
// click the map to pick any cell (labeled or not) and answer or relabel it
document.getElementById("map").addEventListener("click", (event) => {
  if (!cells || !toCanvas) return;
  const canvas = event.currentTarget;
  const rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left) * canvas.width / rect.width;
  const y = (event.clientY - rect.top) * canvas.height / rect.height;
  let best = -1, bestDistance = 100;  // within 10 px
  for (let i = 0; i < cells.x.length; i++) {
    const d = (toCanvas.px(cells.x[i]) - x) ** 2 + (toCanvas.py(cells.y[i]) - y) ** 2;
    if (d < bestDistance) { best = i; bestDistance = d; }
  }
  if (best < 0) return;
  picked = cells.cell[best];
  lastBatchKey = "";
  renderBatch().then(() => select(shown().indexOf(picked)));
});
refresh().catch((err) => setStatus(err.message, false, true));
