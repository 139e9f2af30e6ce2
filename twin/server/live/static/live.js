// The live view: follows /api/events (the state, whenever it changes) and loads the newest frames.
"use strict";

const query = new URLSearchParams(location.search);
let instance = query.get("instance");
let state = null;
let mapData = null;
const view = { cx: 0, cy: 0, scale: 0, chosen: false };  // map centre (m), pixels per metre; chosen: by the user

const SI = [[1e-10, "Å", 1e-10], [1e-9, "nm", 1e-9], [1e-6, "µm", 1e-6], [1e-3, "mm", 1e-3], [1, "m", 1]];

function length(metres) {  // "12.5 nm"
  const a = Math.abs(metres);
  let unit = SI[0];
  for (const u of SI) if (a >= u[0]) unit = u;
  return `${+(metres / unit[2]).toPrecision(3)} ${unit[1]}`;
}

function number(v, digits = 3) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-2) ? v.toExponential(digits - 1) : +v.toPrecision(digits);
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k} ${number(x)}`).join(", ");
  return String(v);
}

function api(path) {
  const q = new URLSearchParams();
  if (instance) q.set("instance", instance);
  return `${path}${path.includes("?") ? "&" : "?"}${q}`;
}

// --- pictures: one load at a time per figure, always the newest version (a slow page drops frames) ---
// A frame is rows and columns (two little-endian uint16), then 8-bit grey levels row by row.
function paint(canvas, buffer) {
  const header = new DataView(buffer, 0, 4);
  const rows = header.getUint16(0, true), columns = header.getUint16(2, true);
  const grey = new Uint8Array(buffer, 4, rows * columns);
  const image = new ImageData(columns, rows);
  for (let i = 0; i < grey.length; i++) {
    image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = grey[i];
    image.data[4 * i + 3] = 255;
  }
  canvas.width = columns;
  canvas.height = rows;
  canvas.getContext("2d").putImageData(image, 0, 0);
}

const loaders = {};
async function showPicture(id, token, url) {
  const figure = document.getElementById(id);
  const loader = loaders[id] || (loaders[id] = { busy: false, wanted: null });
  loader.wanted = { token, url };
  if (loader.busy || figure.dataset.version === String(token)) return;
  const next = loader.wanted;
  loader.busy = true;
  try {
    const response = await fetch(next.url);
    if (response.ok) {
      paint(figure.querySelector("canvas"), await response.arrayBuffer());
      figure.dataset.version = String(next.token);
    }
  } finally {
    loader.busy = false;
  }
  if (loader.wanted.token !== next.token) showPicture(id, loader.wanted.token, loader.wanted.url);
}

function scaleBar(figure, widthInUnits, unit) {
  const bar = figure.querySelector(".scalebar");
  if (!widthInUnits) { bar.hidden = true; return; }
  const reciprocal = unit === "1/m";
  const target = widthInUnits / 5;
  const power = Math.pow(10, Math.floor(Math.log10(target)));
  const nice = [1, 2, 5, 10].map((m) => m * power).filter((v) => v <= target).pop() || power;
  bar.hidden = false;
  bar.querySelector("span").textContent = reciprocal ? `${+(nice * 1e-9).toPrecision(3)} 1/nm` : length(nice);
  bar.style.setProperty("--bar", `${(nice / widthInUnits) * figure.querySelector(".frame").clientWidth}px`);
}

function showTem(tem) {
  const ids = { "tem.image": "tem-image", "tem.stem": "tem-stem", "tem.diffraction": "tem-diffraction" };
  for (const [channel, id] of Object.entries(ids)) {
    const image = tem.images[channel];
    if (!image) continue;
    const figure = document.getElementById(id);
    const c = image.conditions;
    const parts = [c.detector, c.voltage && `${c.voltage / 1000} kV`,
      c.magnification && `${number(c.magnification)}×`, c.camera_length && `camera length ${number(c.camera_length)} m`,
      c.defocus !== null && c.defocus !== undefined && `defocus ${length(c.defocus)}`,
      c.dose && `dose ${number(c.dose * 1e-20)} e⁻/Å²`, c.exposure && `${number(c.exposure)} s`, `frame ${c.frame}`];
    figure.querySelector(".conditions").textContent = parts.filter(Boolean).join(" · ");
    scaleBar(figure, image.pixel_size * image.shape[1], image.pixel_unit);
    showPicture(id, image.version, api(`/api/picture/${channel}?v=${image.version}`));
  }
}

function showAfm(afm) {
  const frame = afm.frame;
  if (!frame) return;
  const figure = document.getElementById("afm-frame");
  const signal = document.getElementById("afm-signal");
  if (!signal.options.length) {
    for (const c of frame.channels) signal.add(new Option(`${c.name} (${c.unit})`, c.index, false, c.name === "Topography"));
  }
  const trace = document.getElementById("afm-trace").value;
  const c = frame.conditions;
  figure.querySelector(".conditions").textContent = [`frame ${frame.frame} (${frame.direction})`,
    `line ${frame.lines_done}/${frame.lines}`, `setpoint ${number(c.z_controller.SetPoint)}`,
    `${number(c.line_time)} s/line`, c.tip && `tip ${length(c.tip.radius)}`].filter(Boolean).join(" · ");
  scaleBar(figure, frame.pixel_size * frame.points, "m");
  const token = `${frame.version}.${frame.lines_done}.${trace}.${signal.value}`;
  showPicture("afm-frame", token,
    api(`/api/picture/afm.frame?v=${token}&trace=${trace}&signal=${signal.value}`));
}

function showPanel(id, panel) {
  const table = document.getElementById(id);
  table.replaceChildren(...Object.entries(panel).map(([name, value]) => {
    const row = document.createElement("tr");
    row.innerHTML = "<td></td><td class=value></td>";
    row.cells[0].textContent = name;
    row.cells[1].textContent = number(value);
    return row;
  }));
}

function showScoreboard(rows) {
  const card = document.getElementById("scoreboard-card");
  card.hidden = rows === null;
  if (rows === null) return;
  const table = document.getElementById("scoreboard");
  table.tBodies[0].replaceChildren(...rows.map((r, i) => {
    const row = document.createElement("tr");
    const budgets = r.budgets ? Object.entries(r.budgets).filter(([, b]) => b.limit !== null)
      .map(([n, b]) => `${n} ${number(b.spent)}/${number(b.limit)}`).join(", ") : "–";
    for (const text of [i + 1, r.instance ?? "(hidden)", r.scenario, r.score === null ? "–" : r.score.toFixed(3),
      r.calls, budgets, r.over ? "answered" : "playing"]) {
      const cell = row.insertCell();
      cell.textContent = String(text);
    }
    return row;
  }));
  table.dataset.rows = String(rows.length);
}

// --- the map: stage travel, fields imaged (by dose), current fields, knocked-out atoms ------------
const canvas = document.getElementById("map");

function drawMap() {
  if (!mapData || !state || !state.tem) return;
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  const travel = mapData.travel.tem;
  if (!view.chosen) {  // until the user zooms or pans, the map shows everything imaged
    const rects = mapData.footprints.map((f) => f.slice(1, 5)).concat([state.tem.fov, state.afm.fov]);
    const x0 = Math.min(...rects.map((r) => r[0])), y0 = Math.min(...rects.map((r) => r[1]));
    const x1 = Math.max(...rects.map((r) => r[2])), y1 = Math.max(...rects.map((r) => r[3]));
    view.cx = (x0 + x1) / 2; view.cy = (y0 + y1) / 2;
    view.scale = 0.8 * Math.min(w / (x1 - x0 || 1e-8), h / (y1 - y0 || 1e-8));
  }
  const px = (x) => w / 2 + (x - view.cx) * view.scale, py = (y) => h / 2 - (y - view.cy) * view.scale;
  const rect = (r) => [px(r[0]), py(r[3]), (r[2] - r[0]) * view.scale, (r[3] - r[1]) * view.scale];
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#bbb"; ctx.strokeRect(...rect(travel));
  const top = Math.max(...mapData.footprints.map((f) => f[6]), 0);  // the most dose any place received
  for (const [instrument, x0, y0, x1, y1, , total] of mapData.footprints) {
    const r = rect([x0, y0, x1, y1]);
    if (instrument === "afm") {  // a frame: a faint blue area (it deposits no dose) with its outline
      ctx.fillStyle = "rgba(51, 102, 204, 0.12)"; ctx.fillRect(...r);
      ctx.strokeStyle = "#36c"; ctx.lineWidth = 1; ctx.strokeRect(...r);
      continue;
    }
    const shade = top > 0 ? 0.1 + 0.9 * total / top : 0.1;
    ctx.fillStyle = `rgba(204, 51, 51, ${shade * 0.7})`;
    ctx.fillRect(r[0], r[1], Math.max(r[2], 2), Math.max(r[3], 2));
  }
  ctx.fillStyle = "#000";
  for (const [x, y] of mapData.knocked || []) ctx.fillRect(px(x) - 1, py(y) - 1, 2, 2);
  ctx.lineWidth = 2; ctx.strokeStyle = "#090"; ctx.setLineDash([6, 4]);  // dashed: frames imaged show through
  for (const fov of [state.tem.fov, state.afm.fov]) {
    const r = rect(fov);
    ctx.strokeRect(r[0], r[1], Math.max(r[2], 3), Math.max(r[3], 3));
  }
  ctx.setLineDash([]); ctx.lineWidth = 1; ctx.fillStyle = "#333";
  ctx.fillText(`width ${length(w / view.scale)}; most dose at one place ${number(top * 1e-20)} e⁻/Å²`, 8, h - 8);
  document.getElementById("map-note").textContent = state.ground_truth ? "" :
    "(ground truth off: positions as the instruments report them, no atoms)";
}

const MAP_PERIOD = 1000;  // ms: the map (all the places imaged) is loaded at most once a second
let mapLoading = false, mapLoaded = 0, mapWanted = 0;
async function loadMap(version) {
  mapWanted = version;
  if (mapLoading) return;
  mapLoading = true;
  try {
    await new Promise((done) => setTimeout(done, Math.max(0, mapLoaded + MAP_PERIOD - Date.now())));
    const response = await fetch(api("/api/map"));
    if (response.ok) {
      mapData = await response.json();
      canvas.dataset.version = String(mapData.version);
      canvas.dataset.footprints = String(mapData.footprints.length);
      drawMap();
    }
  } finally {
    mapLoading = false;
    mapLoaded = Date.now();
  }
  if (mapData && mapData.version !== mapWanted) loadMap(mapWanted);
}

canvas.addEventListener("wheel", (event) => {
  event.preventDefault();
  view.scale *= event.deltaY < 0 ? 1.25 : 0.8;
  view.chosen = true;
  drawMap();
}, { passive: false });
let drag = null;
canvas.addEventListener("mousedown", (e) => { drag = [e.offsetX, e.offsetY]; });
window.addEventListener("mouseup", () => { drag = null; });
canvas.addEventListener("mousemove", (e) => {
  if (!drag || !view.scale) return;
  const k = canvas.width / canvas.clientWidth;
  view.cx -= (e.offsetX - drag[0]) * k / view.scale;
  view.cy += (e.offsetY - drag[1]) * k / view.scale;
  view.chosen = true;
  drag = [e.offsetX, e.offsetY];
  drawMap();
});
document.getElementById("map-fit").onclick = () => { view.chosen = false; drawMap(); };

// --- control (only when the server allows it) ---------------------------------------------------
async function act(action, value) {
  const response = await fetch("/api/control", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ instance, action, value }) });
  const answer = await response.json();
  document.getElementById("control-result").textContent = response.ok ? `${action}: done` : answer.error;
}
document.getElementById("move").onsubmit = (e) => {
  e.preventDefault();
  act("move_stage", { x: e.target.x.value * 1e-9, y: e.target.y.value * 1e-9 });
};
document.getElementById("focus").onsubmit = (e) => { e.preventDefault(); act("defocus", e.target.defocus.value * 1e-9); };
document.getElementById("acquire").onclick = () => act("acquire", null);
document.getElementById("scan").onclick = () => act("scan", null);

// --- the state stream --------------------------------------------------------------------------
function show(next) {
  const mapChanged = !state || state.map_version !== next.map_version;
  state = next;
  document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
  const choice = document.getElementById("instance");
  if (next.instances.length > 1 && !choice.options.length) {
    for (const name of next.instances) choice.add(new Option(name, name, false, name === next.instance));
    document.getElementById("instance-choice").hidden = false;
  }
  showScoreboard(next.scoreboard);
  document.getElementById("control").hidden = !next.control;
  for (const id of ["images", "map-card", "panels"]) document.getElementById(id).hidden = !next.tem;
  if (!next.tem) return;
  showTem(next.tem);
  showAfm(next.afm);
  showPanel("tem-panel", next.tem.panel);
  showPanel("afm-panel", next.afm.panel);
  if (mapChanged) loadMap(next.map_version); else drawMap();
}

document.getElementById("instance").onchange = (e) => {
  instance = e.target.value;
  history.replaceState(null, "", `?instance=${encodeURIComponent(instance)}`);
  location.reload();
};
for (const id of ["afm-signal", "afm-trace"]) document.getElementById(id).onchange = () => state && showAfm(state.afm);

const events = new EventSource(api("/api/events"));
const connection = document.getElementById("connection");
events.onopen = () => { connection.textContent = "live"; connection.className = "on"; };
events.onerror = () => { connection.textContent = "reconnecting…"; connection.className = "off"; };
events.onmessage = (message) => show(JSON.parse(message.data));
