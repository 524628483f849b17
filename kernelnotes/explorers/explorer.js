(function (root) {
"use strict";
// kernelnotes explorers: the script of every figure. Python inlines it with the explorer's
// own script in place of the EXPLORER SCRIPT line and the figure's id in place of ROOT_ID.
// The explorer script defines two functions, found here by name:
//   state(values): the numbers the texts name, from the slider values {name: number}
//                  (the same numbers as the Python class's `state`);
//   draw(f, s):    draws state s on the frame f returned by frame().
var data = JSON.parse(root.querySelector(".kn-data").textContent);
var canvas = root.querySelector("canvas");
var statusLine = root.querySelector(".kn-status");
var sliders = Array.prototype.slice.call(root.querySelectorAll("input[type=range]"));
var lastFrame = null;

// Python's format(value, spec) for the specs the templates use: "" (3 significant
// digits, Python's ".3g"), ".Nf" (N decimals) and "d" (an integer).
function stripZeros(text) {
  return text.indexOf(".") < 0 ? text : text.replace(/0+$/, "").replace(/\.$/, "");
}
function formatNumber(value, spec) {
  var fixed = /^\.(\d+)f$/.exec(spec);
  if (fixed) { return value.toFixed(Number(fixed[1])); }
  if (spec === "d") { return String(Math.round(value)); }
  if (value === 0) { return "0"; }
  var parts = value.toExponential(2).split("e"), exponent = Number(parts[1]);
  if (exponent < -4 || exponent >= 3) {
    var size = Math.abs(exponent);
    return stripZeros(parts[0]) + "e" + (exponent < 0 ? "-" : "+") + (size < 10 ? "0" : "") + size;
  }
  return stripZeros(value.toFixed(2 - exponent));
}
// Fill a template such as "x = {query}" or "{share:.2f}" with the numbers of a state.
function fill(template, s) {
  return template.replace(/\{(\w+)(?::([^}]*))?\}/g, function (_, name, spec) {
    return formatNumber(s[name], spec || "");
  });
}

function linspace(lo, hi, n) {
  var out = [];
  for (var i = 0; i < n; i++) { out.push(lo + (hi - lo) * i / (n - 1)); }
  return out;
}
// A fresh, sized canvas with axes and grid for data.domain x data.ylim; the returned
// frame maps data to pixels (X, Y, invX) and clips drawing to the plot area.
function frame() {
  var dpr = window.devicePixelRatio || 1;
  var w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) { return null; }
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  var ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, w, h);
  var m = {l: 44, r: 12, t: 8, b: 26};
  var xl = data.domain, yl = data.ylim;
  var f = {
    ctx: ctx, left: m.l, right: w - m.r, top: m.t, bottom: h - m.b,
    X: function (x) { return m.l + (x - xl[0]) / (xl[1] - xl[0]) * (w - m.l - m.r); },
    Y: function (y) { return h - m.b - (y - yl[0]) / (yl[1] - yl[0]) * (h - m.t - m.b); },
    invX: function (px) { return xl[0] + (px - m.l) / (w - m.l - m.r) * (xl[1] - xl[0]); }
  };
  ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  ctx.lineWidth = 1; ctx.strokeStyle = "#e6e8eb"; ctx.fillStyle = "#57606a";
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  data.xticks.forEach(function (t) {
    var px = f.X(t);
    ctx.beginPath(); ctx.moveTo(px, f.top); ctx.lineTo(px, f.bottom); ctx.stroke();
    ctx.fillText(String(Number(t.toPrecision(4))), px, f.bottom + 5);
  });
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  data.yticks.forEach(function (t) {
    var py = f.Y(t);
    ctx.beginPath(); ctx.moveTo(f.left, py); ctx.lineTo(f.right, py); ctx.stroke();
    ctx.fillText(String(Number(t.toPrecision(4))), f.left - 6, py);
  });
  ctx.strokeStyle = "#8c959f";
  ctx.strokeRect(f.left, f.top, f.right - f.left, f.bottom - f.top);
  ctx.save();
  ctx.beginPath(); ctx.rect(f.left, f.top, f.right - f.left, f.bottom - f.top); ctx.clip();
  return f;
}
function polyline(f, xs, ys, color, width, dash) {
  var ctx = f.ctx;
  ctx.beginPath();
  ctx.moveTo(f.X(xs[0]), f.Y(ys[0]));
  for (var i = 1; i < xs.length; i++) { ctx.lineTo(f.X(xs[i]), f.Y(ys[i])); }
  ctx.setLineDash(dash || []); ctx.strokeStyle = color; ctx.lineWidth = width; ctx.stroke();
  ctx.setLineDash([]);
}

// Read the sliders, compute the state, write every text from the templates, redraw.
function update() {
  var values = {};
  sliders.forEach(function (input) { values[input.name] = Number(input.value); });
  var s = state(values);
  root.dataset.state = JSON.stringify(s);
  sliders.forEach(function (input) {
    var text = fill(data.templates[input.name], s);
    input.setAttribute("aria-valuetext", text);
    root.querySelector("output[for='" + input.id + "']").textContent = text;
  });
  statusLine.textContent = fill(data.templates.status, s);
  lastFrame = frame();
  if (lastFrame) { draw(lastFrame, s); lastFrame.ctx.restore(); }
}
function setSlider(input, value) {
  var lo = Number(input.min), hi = Number(input.max);
  input.value = String(Math.min(hi, Math.max(lo, value)));
  update();
}

// Swap the still image (what an untrusted notebook shows) for the live canvas.
function start() {
  var still = root.querySelector(".kn-still"), note = root.querySelector(".kn-note");
  if (still) { still.remove(); }
  if (note) { note.remove(); }
  canvas.hidden = false;
  sliders.forEach(function (input) {
    input.disabled = false;
    input.addEventListener("input", update);
    // Arrow, Home and End keys belong to the slider, not to the page around it
    // (JupyterLab would otherwise move the notebook's cell selection).
    input.addEventListener("keydown", function (event) { event.stopPropagation(); });
  });
  if (window.ResizeObserver) { new ResizeObserver(function () { update(); }).observe(canvas); }
  else { window.addEventListener("resize", update); }
  update();
}

// EXPLORER SCRIPT

start();
})((document.currentScript && document.currentScript.closest(".kn-explorer")) ||
   document.getElementById("ROOT_ID"));
