// scactive annotate: the selected cell's dot plot (GET api/dotplot) and why the model's
// sections are empty (GET api/model-needs). Loaded after app.js: uses api, el, state, shown,
// selected and positionOf. Text from data is set with textContent.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const REDS = ["#fff5f0", "#fcbba1", "#fb6a4a", "#cb181d", "#67000d"];  // scanpy's default cmap
function redsColour(t) {  // t in [0, 1] -> "#rrggbb" along REDS
  const x = Math.min(Math.max(Number.isFinite(t) ? t : 0, 0), 1) * (REDS.length - 1);
  const k = Math.min(Math.floor(x), REDS.length - 2), f = x - k;
  const a = parseInt(REDS[k].slice(1), 16), b = parseInt(REDS[k + 1].slice(1), 16);
  const mix = (s) => Math.round(((a >> s) & 255) * (1 - f) + ((b >> s) & 255) * f);
  return "#" + [16, 8, 0].map((s) => mix(s).toString(16).padStart(2, "0")).join("");
}
function svgNode(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// -- why the predictions and the nearest labeled cells are empty ---------------------------
let needs = null;  // the last reply of api/model-needs
async function refreshNeeds() {
  try { needs = await api("api/model-needs"); } catch (err) { needs = null; }
  showNeeds();
}
function showNeeds() {  // every card's empty sections, now and after each refresh
  for (const [kind, text] of [["predictions", needs && needs.predictions],
    ["neighbours", needs && needs.neighbours]]) {
    document.querySelectorAll(`.why-${kind}`).forEach((node) => {
      const empty = node.dataset.empty === "1";
      node.textContent = empty && text ? text : "";
      node.hidden = !(empty && text);
    });
  }
}

// -- the dot plot ---------------------------------------------------------------------------
let dotplotKey = "", dotplotRequest = 0;
function refreshDotplot() {
  if (!state) return;
  const cell = shown()[selected];
  const position = cell === undefined ? undefined : positionOf[cell];
  const box = document.getElementById("dotplot");
  if (position === undefined) { box.replaceChildren(); dotplotKey = ""; return; }
  const key = `${position}:${state.round}:${state.n_labeled}:${state.n_answered}`;
  if (key === dotplotKey) return;
  dotplotKey = key;
  const mine = ++dotplotRequest;
  api("api/dotplot?cell=" + position).then((plot) => {
    if (mine === dotplotRequest) drawDotplot(box, plot);
  }).catch((err) => {
    if (mine === dotplotRequest) box.replaceChildren(el("p", err.message, "error"));
  });
}

function drawDotplot(box, plot) {
  const { genes, groups, mean, fraction, cell } = plot;
  const heading = el("h3", `Marker evidence for ${cell.cell}`);
  const note = el("p", (plot.grouping === "types"
    ? "Rows: the types (labeled cells, else the model's call)"
    : "Rows: the Leiden clusters (fewer than 2 types labeled)") +
    "; colour: mean log expression, size: fraction of cells expressing (> 0); " +
    "the selected cell's own values under its row.", "help");
  if (!genes.length || !groups.length) {
    box.replaceChildren(heading, el("p", "No genes or groups to show yet.", "help"));
    return;
  }
  // the rows: each group, and the selected cell right below its own group (else last)
  const rows = [];
  groups.forEach((g, k) => {
    rows.push({ name: `${g.name} (${g.n_cells})`, group: k });
    if (k === cell.group) rows.push({ name: "this cell", own: true });
  });
  if (cell.group === null) rows.push({ name: "this cell", own: true });
  const top = Math.max(...genes.map((g) => g.length)) * 6 + 12, left = 130;
  const step = 22, radius = 9, width = left + genes.length * step + 10;
  const height = top + rows.length * step + 70;
  const svg = svgNode("svg", { width, height, viewBox: `0 0 ${width} ${height}`,
    role: "img", "aria-label": "Dot plot of marker genes" });
  const scale = Math.max(plot.max_mean, ...cell.values, 1e-9);
  genes.forEach((gene, j) => {
    const x = left + j * step + step / 2;
    const label = svgNode("text", { x, y: top - 6, transform: `rotate(-60 ${x} ${top - 6})`,
      class: "gene " + plot.gene_sources[j] }, gene);
    label.append(svgNode("title", {}, `${gene} (${plot.gene_sources[j]})`));
    svg.append(label);
  });
  rows.forEach((row, i) => {
    const y = top + i * step + step / 2;
    svg.append(svgNode("text", { x: left - 6, y: y + 4, "text-anchor": "end",
      class: row.own || row.group === cell.group ? "own" : "" }, row.name));
    genes.forEach((gene, j) => {
      const x = left + j * step + step / 2;
      let dot, tip;
      if (row.own) {
        const v = cell.values[j];
        dot = svgNode("rect", { x: x - 5, y: y - 5, width: 10, height: 10,
          fill: redsColour(v / scale), stroke: "#333", class: "own-value" });
        tip = `${gene}: this cell ${v.toFixed(2)}`;
      } else {
        const m = mean[row.group][j], f = fraction[row.group][j];
        dot = svgNode("circle", { cx: x, cy: y, r: Math.max(radius * Math.sqrt(f || 0), 0.5),
          fill: redsColour(m / scale), stroke: "#999", class: "dot" });
        tip = `${gene} in ${groups[row.group].name}: mean ${Number(m).toFixed(2)}, ` +
          `${(100 * f).toFixed(0)}% expressing`;
      }
      dot.dataset.gene = gene;
      dot.append(svgNode("title", {}, tip));
      svg.append(dot);
    });
  });
  // the legend: dot sizes for fractions, and the colour bar of the mean
  const y0 = top + rows.length * step + 22;
  svg.append(svgNode("text", { x: 4, y: y0 - 6, class: "legend" }, "fraction expressing"));
  [0.25, 0.5, 0.75, 1].forEach((f, k) => {
    const x = 14 + k * 30;
    svg.append(svgNode("circle", { cx: x, cy: y0 + 10, r: radius * Math.sqrt(f), fill: "#999" }));
    svg.append(svgNode("text", { x: x - 8, y: y0 + 34, class: "legend" }, `${100 * f}%`));
  });
  const gradient = svgNode("linearGradient", { id: "dotplot-reds" });
  REDS.forEach((c, k) => gradient.append(svgNode("stop",
    { offset: `${(100 * k) / (REDS.length - 1)}%`, "stop-color": c })));
  const defs = svgNode("defs");
  defs.append(gradient);
  svg.append(defs);
  const bx = 150;
  svg.append(svgNode("text", { x: bx, y: y0 - 6, class: "legend" }, "mean log expression"));
  svg.append(svgNode("rect", { x: bx, y: y0 + 4, width: 120, height: 10,
    fill: "url(#dotplot-reds)", stroke: "#999" }));
  svg.append(svgNode("text", { x: bx, y: y0 + 30, class: "legend" }, "0"));
  svg.append(svgNode("text", { x: bx + 120, y: y0 + 30, "text-anchor": "end", class: "legend" },
    scale.toFixed(2)));
  box.replaceChildren(heading, note, svg);
}
