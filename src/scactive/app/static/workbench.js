// scactive annotate: the map as a workbench. Colourings (genes, clusters, obs columns, the
// answers), their legends, hover, zoom and pan, and selections (lasso, box, a cluster)
// labeled in one action. Loaded before app.js, whose globals (cells, state, api...) it uses
// only when called. Every text from data is set with textContent.
"use strict";

// -- binary frames: magic, uint32 header length, JSON header, padding to 4 bytes, arrays --
function readFrame(buffer, magic) {
  const bytes = new Uint8Array(buffer);
  if (String.fromCharCode(...bytes.subarray(0, 4)) !== magic) {
    throw new Error("The server sent data this page cannot read; reload the page.");
  }
  const view = new DataView(buffer);
  const headerLength = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const n = header.n;
  let offset = (8 + headerLength + 3) & ~3;
  const take = (Type, width) => {  // the next n values of Type, little-endian
    let array;
    if (littleEndian || width === 1) array = new Type(buffer, offset, n);
    else {  // a big-endian machine: copy through a DataView
      array = new Type(n);
      const get = { 2: "getUint16", 4: Type === Float32Array ? "getFloat32" : "getUint32" }[width];
      for (let i = 0; i < n; i++) array[i] = view[get](offset + i * width, true);
    }
    offset += n * width;
    return array;
  };
  return { header, take };
}

// -- colourings ---------------------------------------------------------------------------
// mode: "label", "predicted", "confidence" (from the map), "clusters", "gene", "obs:<name>"
const loaded = Object.create(null);  // mode -> a colouring read from the server
let highlight = 0;                    // the category code highlighted in the legend (0: none)
let colourVersion = 0;                // bumps when a colouring or the highlight changes
const RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];  // viridis' stops

function rampColour(t) {  // t in [0, 1] -> "#rrggbb" along RAMP
  const x = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1), k = Math.min(Math.floor(x), 3);
  const a = parseInt(RAMP[k].slice(1), 16), b = parseInt(RAMP[k + 1].slice(1), 16), f = x - k;
  const mix = (shift) => Math.round(((a >> shift) & 255) * (1 - f) + ((b >> shift) & 255) * f);
  return "#" + [16, 8, 0].map((s) => mix(s).toString(16).padStart(2, "0")).join("");
}
let rampTable = null;  // codes 0-254 along the ramp, 255 none (made on first use)
function rampCodes() {
  if (!rampTable) {
    rampTable = new Uint32Array(256).fill(NONE);
    for (let c = 0; c < 255; c++) rampTable[c] = packHex(rampColour(c / 254));
  }
  return rampTable;
}

function parseColouring(buffer) {
  const { header, take } = readFrame(buffer, "SCV1");
  if (header.kind === "values") {
    const values = take(Float32Array, 4), codes = new Uint8Array(header.n);
    const span = header.max - header.min;
    for (let i = 0; i < header.n; i++) {
      const v = values[i];
      codes[i] = Number.isFinite(v) ? Math.round(254 * (span > 0 ? (v - header.min) / span : 0))
        : 255;
    }
    return { ...header, values, codes };
  }
  const Codes = { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array }[header.code_bytes];
  return { ...header, codes: take(Codes, header.code_bytes) };
}

function colouringKey(mode) { return `${mode}:${colourVersion}`; }

// the codes and colour table of a colouring (a faded table but for the highlighted code)
function cellColours(map, mode) {
  let codes, colours;
  if (mode === "confidence") {
    codes = map.confidence;  // the same byte layout: 0-254, none 255
    colours = rampCodes();
  } else if (mode === "label" || mode === "predicted") {
    codes = mode === "label" ? map.label : map.predicted;
    colours = new Uint32Array(map.categories.length + 1);
    colours[0] = NONE;
    map.categories.forEach((label, k) => { colours[k + 1] = packHex(colourOf(label)); });
  } else if (loaded[mode] && loaded[mode].n === map.n) {
    const c = loaded[mode];
    codes = c.codes;
    if (c.kind === "values") colours = rampCodes();
    else {
      colours = new Uint32Array(c.categories.length + 1);
      colours[0] = NONE;
      c.categories.forEach((_, k) => { colours[k + 1] = packHex(palette[k % palette.length]); });
    }
  } else {  // not loaded yet: grey
    return { codes: new Uint8Array(map.n), colours: new Uint32Array([NONE]) };
  }
  if (highlight && highlight < colours.length && mode !== "confidence" && mode !== "gene") {
    const keep = colours[highlight];
    colours = new Uint32Array(colours.length).fill(packHex("#ececec"));
    colours[highlight] = keep;
  }
  return { codes, colours };
}

function categoryList(map, mode) {  // [{code, name, colour, count}] of a categorical colouring
  if (mode === "label" || mode === "predicted") {
    const codes = mode === "label" ? map.label : map.predicted;
    const counts = new Int32Array(map.categories.length + 1);
    for (let i = 0; i < map.n; i++) counts[codes[i]]++;
    return map.categories.map((name, k) => ({ code: k + 1, name, colour: colourOf(name),
      count: counts[k + 1] })).filter((c) => c.count > 0);
  }
  const c = loaded[mode];
  return c.categories.map((name, k) => ({ code: k + 1, name, colour: palette[k % palette.length],
    count: c.counts[k] }));
}

function renderLegend(map, mode) {
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  const loading = !["label", "predicted", "confidence"].includes(mode) && !loaded[mode];
  if (loading) { legend.append(el("span", "Loading the colouring…")); return; }
  const c = loaded[mode];
  const title = mode === "gene" ? c.name : mode === "clusters" ? "Leiden clusters"
    : mode.startsWith("obs:") ? mode.slice(4) : { label: "human label",
      predicted: "predicted label", confidence: "confidence" }[mode];
  legend.append(el("strong", title, "legend-title"));
  if (mode === "gene" || mode === "confidence") {
    const low = mode === "gene" ? c.min : 0, high = mode === "gene" ? c.max : 1;
    const bar = el("i", null, "colour-bar");
    bar.style.background = `linear-gradient(to right, ${RAMP.join(", ")})`;
    legend.append(el("span", low.toFixed(2), "bar-min"), bar, el("span", high.toFixed(2), "bar-max"));
    return;
  }
  for (const item of categoryList(map, mode)) {
    const name = mode === "clusters" ? `cluster ${item.name}` : item.name;
    const entry = el("span", `${name} (${item.count})`, "category");
    entry.dataset.code = item.code;
    entry.classList.toggle("highlighted", highlight === item.code);
    const swatch = el("i"); swatch.style.background = item.colour;
    entry.prepend(swatch);
    entry.title = "Click to highlight these cells";
    entry.addEventListener("click", () => {
      highlight = highlight === item.code ? 0 : item.code;
      colourVersion++; drawMap();
    });
    if (mode === "clusters") {
      const choose = el("button", "select", "select-cluster");
      choose.dataset.cluster = item.name;
      choose.title = `Select the ${item.count} cells of cluster ${item.name}, to label them at once`;
      choose.addEventListener("click", (event) => {
        event.stopPropagation();
        selectCodes(c.codes, item.code, { cluster: Number(item.name) }, `cluster ${item.name}`);
      });
      entry.append(choose);
    }
    legend.append(entry);
  }
}

let colourRequest = 0;
async function useColouring(mode, path) {
  const mine = ++colourRequest;
  highlight = 0; colourVersion++;
  drawMap();
  try {
    const c = parseColouring(await apiBytes(path));
    loaded[mode] = c;
    if (mine !== colourRequest) return;
    colourVersion++;
    drawMap();
  } catch (err) { setStatus(err.message, false, true); }
}

function colourChanged() {
  const mode = document.getElementById("colour").value;
  if (mode === "clusters") useColouring(mode, "api/colour/clusters");
  else if (mode.startsWith("obs:")) {
    useColouring(mode, "api/colour/obs/" + encodeURIComponent(mode.slice(4)));
  } else if (mode === "gene" && !loaded.gene) document.getElementById("gene").focus();
  else { highlight = 0; colourVersion++; drawMap(); }
}

function addColourOptions(s) {  // the clusters and the input's obs columns, once
  const menu = document.getElementById("colour");
  if (menu.dataset.filled) return;
  menu.dataset.filled = "1";
  menu.append(new Option("clusters (Leiden)", "clusters"));
  for (const column of s.obs_columns || []) {
    menu.append(new Option(`obs: ${column.name}`, "obs:" + column.name));
  }
}

// the gene search: completion from the server, the gene's values as one binary reply
async function completeGenes(text) {
  const list = document.getElementById("gene-options");
  if (!text.trim()) { list.replaceChildren(); return; }
  const reply = await api("api/genes?q=" + encodeURIComponent(text));
  if (document.getElementById("gene").value !== text) return;  // typed on meanwhile
  list.replaceChildren(...reply.genes.map((g) => new Option(g, g)));
}

async function colourByGene(name) {
  if (!name.trim()) return;
  const menu = document.getElementById("colour");
  let option = menu.querySelector('option[value="gene"]');
  if (!option) { option = new Option("gene", "gene"); menu.append(option); }
  delete loaded.gene;
  menu.value = "gene";
  await useColouring("gene", "api/colour/gene/" + encodeURIComponent(name.trim()));
  if (loaded.gene) option.textContent = "gene: " + loaded.gene.name;
}

// -- zoom and pan -------------------------------------------------------------------------
const mapView = { zoom: 1, x: 0, y: 0 };  // canvas pixels: zoom about the origin, then shift
function viewKey() { return `${mapView.zoom}:${mapView.x}:${mapView.y}`; }
function canvasPoint(event) {
  const canvas = document.getElementById("map"), rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * canvas.width / rect.width,
    (event.clientY - rect.top) * canvas.height / rect.height];
}
let frame = 0;
function redrawSoon() {
  if (!frame) frame = requestAnimationFrame(() => { frame = 0; drawMap(); });
}

// -- tools: pick (click a cell, drag to pan), lasso, box ------------------------------------
let tool = "pick";
let drag = null;       // {start: [x, y], points: [[x, y]...], moved}
let lastDragMoved = false;
let selection = null;  // {positions: Int32Array, cluster?, shape?, what}
function clickPicks() { return tool === "pick" && !lastDragMoved; }

function setTool(name) {
  tool = name;
  document.querySelectorAll("#tools button").forEach((b) => {
    b.classList.toggle("active", b.dataset.tool === name);
  });
  document.getElementById("map").style.cursor = name === "pick" ? "crosshair" : "cell";
}

function insidePolygon(x, y, points) {  // ray casting
  let inside = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i], [xj, yj] = points[j];
    if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function selectShape(points, shape) {
  const { cx, cy } = cells.layout;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const found = [];
  for (let i = 0; i < cells.n; i++) {
    const x = cx[i], y = cy[i];
    if (x < x0 || x > x1 || y < y0 || y > y1) continue;
    if (shape === "box" || insidePolygon(x, y, points)) found.push(i);
  }
  setSelection({ positions: Int32Array.from(found), shape, what: shape });
}

function selectCodes(codes, code, extra, what) {
  const found = [];
  for (let i = 0; i < codes.length; i++) if (codes[i] === code) found.push(i);
  setSelection({ positions: Int32Array.from(found), ...extra, what });
}

function setSelection(chosen) {
  selection = chosen && chosen.positions.length ? chosen : null;
  renderSelection();
  drawMap();
}

function renderSelection() {
  const box = document.getElementById("selection");
  box.replaceChildren();
  box.hidden = !selection;
  if (!selection) return;
  box.append(el("span", `${selection.positions.length} cells selected (${selection.what})`,
    "selection-count"));
  const menu = el("select"); menu.id = "selection-label";
  for (const { label, depth } of vocabularyTree()) {  // app.js: subtypes indented
    menu.append(new Option("\u00a0\u00a0".repeat(depth) + label, label));
  }
  menu.append(new Option("new type…", ""));
  const go = el("button", "Label them"); go.id = "label-selection";
  go.addEventListener("click", () => labelSelection(menu.value));
  const clear = el("button", "Clear"); clear.id = "clear-selection";
  clear.addEventListener("click", () => setSelection(null));
  box.append(menu, go, clear);
}

function drawSelection(ctx) {
  if (drag && drag.points.length > 1) {  // the shape being drawn
    ctx.strokeStyle = "#d62728"; ctx.lineWidth = 1.5; ctx.setLineDash([4, 3]);
    ctx.beginPath();
    if (tool === "box") {
      const [[a, b], [c, d]] = [drag.start, drag.points[drag.points.length - 1]];
      ctx.rect(Math.min(a, c), Math.min(b, d), Math.abs(c - a), Math.abs(d - b));
    } else {
      drag.points.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.closePath();
    }
    ctx.stroke(); ctx.setLineDash([]);
  }
  if (!selection || !cells || !cells.layout) return;
  const { cx, cy } = cells.layout;
  ctx.fillStyle = "#000";
  ctx.beginPath();
  for (const i of selection.positions) if (cx[i] >= 0) ctx.rect(cx[i] - 1.5, cy[i] - 1.5, 3, 3);
  ctx.fill();
}

// one action for the whole selection; undo (z) takes all of it back
function labelSelection(chosen) {
  const label = chosen || (prompt("New cell type:") || "").trim();
  if (!label || !selection) return Promise.resolve();
  const body = { label, annotator: annotatorName() };
  if (selection.cluster !== undefined) body.cluster = selection.cluster;
  else { body.positions = Array.from(selection.positions); body.shape = selection.shape; }
  return inOrder(async () => {
    try {
      const reply = await api("api/label-selection", body);
      if (reply.first_id !== null) setMyAnswers([...myAnswers(), reply.first_id]);
      setStatus(`Labeled ${reply.n_labeled} cells as ${label} in one action` +
        (reply.n_unchanged ? ` (${reply.n_unchanged} had that label already).` : "."));
      mapChanges++;
      setSelection(null);
    } catch (err) { setStatus(err.message, false, true); return; }
    await refresh();
  });
}

// -- hover: the cell under the pointer --------------------------------------------------
const described = new Map();  // position -> what /api/map/cells/<position> said, this map
let hoverAt = -1, hoverBusy = false, describedKey = "";
async function hover(event) {
  if (!cells || !cells.layout) return;
  const [x, y] = canvasPoint(event);
  const i = nearestCell(cells, x, y, 6);
  const tip = document.getElementById("hover");
  if (describedKey !== mapKey) { described.clear(); describedKey = mapKey; }
  hoverAt = i;
  if (i < 0) { tip.hidden = true; return; }
  tip.style.left = `${event.clientX + 14}px`; tip.style.top = `${event.clientY + 10}px`;
  if (!described.has(i)) {
    if (hoverBusy) return;  // one request at a time; the latest position follows
    hoverBusy = true;
    try { described.set(i, await api("api/map/cells/" + i)); }
    catch (err) { hoverBusy = false; return; }
    hoverBusy = false;
    if (hoverAt !== i) { if (hoverAt >= 0) hover(event); return; }
  }
  const d = described.get(i);
  const lines = [d.cell, d.cluster === null ? "" : `cluster ${d.cluster}`,
    d.label ? `label: ${d.label}` : d.kind ? `answer: ${d.kind}` : "",
    d.predicted ? `predicted: ${d.predicted} (${(100 * d.confidence).toFixed(0)}%)` : ""];
  tip.replaceChildren(...lines.filter(Boolean).map((line) => el("div", line)));
  tip.hidden = false;
}

// -- the canvas's pointer events ------------------------------------------------------------
(() => {
  const canvas = document.getElementById("map");
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [x, y] = canvasPoint(event);
    const factor = Math.exp(-event.deltaY * 0.0015);
    const zoom = Math.min(Math.max(mapView.zoom * factor, 0.5), 200), f = zoom / mapView.zoom;
    mapView.x = x - (x - mapView.x) * f; mapView.y = y - (y - mapView.y) * f;
    mapView.zoom = zoom;
    redrawSoon();
  }, { passive: false });
  canvas.addEventListener("mousedown", (event) => {
    if (event.button !== 0) return;
    const point = canvasPoint(event);
    drag = { start: point, points: [point], last: point, moved: false };
  });
  window.addEventListener("mousemove", (event) => {
    if (!drag) { if (event.target === canvas) hover(event); return; }
    const point = canvasPoint(event);
    if (Math.hypot(point[0] - drag.start[0], point[1] - drag.start[1]) > 3) drag.moved = true;
    if (tool === "pick") {
      mapView.x += point[0] - drag.last[0]; mapView.y += point[1] - drag.last[1];
    } else drag.points.push(point);
    drag.last = point;
    redrawSoon();
  });
  window.addEventListener("mouseup", () => {
    if (!drag) return;
    const done = drag;
    drag = null;
    lastDragMoved = done.moved;
    if (tool !== "pick" && done.moved && cells && cells.layout) {
      const points = tool === "box" ? boxCorners(done.start, done.last) : done.points;
      selectShape(points, tool);
    } else redrawSoon();
  });
  canvas.addEventListener("mouseleave", () => { document.getElementById("hover").hidden = true; });
  document.querySelectorAll("#tools button").forEach((b) => {
    b.addEventListener("click", () => setTool(b.dataset.tool));
  });
  document.getElementById("reset-view").addEventListener("click", () => {
    Object.assign(mapView, { zoom: 1, x: 0, y: 0 }); drawMap();
  });
  const gene = document.getElementById("gene");
  gene.addEventListener("input", () => completeGenes(gene.value).catch(() => {}));
  gene.addEventListener("change", () => colourByGene(gene.value));
  gene.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); colourByGene(gene.value); }
  });
})();

function boxCorners([a, b], [c, d]) { return [[a, b], [c, b], [c, d], [a, d]]; }

// the batch's list scrolls to show the selected card; the page itself does not move
function keepInList(item) {
  const list = document.getElementById("batch");
  const top = item.offsetTop, bottom = top + item.offsetHeight;
  if (top < list.scrollTop) list.scrollTop = top;
  else if (bottom > list.scrollTop + list.clientHeight) list.scrollTop = bottom - list.clientHeight;
}
