// Nadaraya-Watson explorer: the twin of NadarayaWatsonExplorer.state in Python.
var queryInput = root.querySelector("input[name=query]");
var grid = linspace(data.domain[0], data.domain[1], 241);

function weights(q, h) {
  var s = data.x.map(function (x) { return -(q - x) * (q - x) / (2 * h * h); });
  var top = Math.max.apply(null, s), total = 0;
  var w = s.map(function (v) { var e = Math.exp(v - top); total += e; return e; });
  return w.map(function (v) { return v / total; });
}
function estimate(w) {
  var sum = 0;
  for (var i = 0; i < w.length; i++) { sum += w[i] * data.y[i]; }
  return sum;
}
function state(values) {
  var q = values.query, h = Math.pow(10, values.log10_bandwidth), w = weights(q, h);
  var sorted = w.slice().sort(function (a, b) { return b - a; }), acc = 0, carrying = 0;
  while (acc < 0.9 && carrying < sorted.length) { acc += sorted[carrying]; carrying += 1; }
  return {query: q, bandwidth: h, estimate: estimate(w), largest: sorted[0],
          carrying: carrying, n: w.length, weights: w};
}
function draw(f, s) {
  var ctx = f.ctx, q = s.query, h = s.bandwidth, floor = data.bell[0], height = data.bell[1];
  ctx.beginPath(); ctx.moveTo(f.X(grid[0]), f.Y(floor));
  grid.forEach(function (g) {
    ctx.lineTo(f.X(g), f.Y(floor + height * Math.exp(-(g - q) * (g - q) / (2 * h * h))));
  });
  ctx.lineTo(f.X(grid[grid.length - 1]), f.Y(floor)); ctx.closePath();
  ctx.globalAlpha = 0.35; ctx.fillStyle = data.colors.kernel; ctx.fill(); ctx.globalAlpha = 1;
  polyline(f, grid, grid.map(function (g) { return estimate(weights(g, h)); }),
           data.colors.curve, 2);
  ctx.setLineDash([2, 3]); ctx.strokeStyle = data.colors.kernel; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(f.X(q), f.top); ctx.lineTo(f.X(q), f.bottom); ctx.stroke();
  ctx.setLineDash([]);
  ctx.globalAlpha = 0.75; ctx.fillStyle = data.colors.data; ctx.strokeStyle = "#ffffff";
  data.x.forEach(function (x, i) {
    ctx.beginPath();
    ctx.arc(f.X(x), f.Y(data.y[i]), 1.5 + 9.5 * Math.sqrt(s.weights[i] / s.largest), 0,
            2 * Math.PI);
    ctx.fill(); ctx.stroke();
  });
  ctx.globalAlpha = 1;
  var px = f.X(q), py = f.Y(s.estimate);
  ctx.beginPath(); ctx.moveTo(px, py - 7); ctx.lineTo(px + 6, py); ctx.lineTo(px, py + 7);
  ctx.lineTo(px - 6, py); ctx.closePath();
  ctx.fillStyle = data.colors.kernel; ctx.fill(); ctx.strokeStyle = "#000000"; ctx.stroke();
}

// Dragging on the chart moves the query.
var dragging = false;
function dragTo(event) {
  if (!lastFrame) { return; }
  var rect = canvas.getBoundingClientRect();
  setSlider(queryInput, lastFrame.invX(event.clientX - rect.left));
}
canvas.addEventListener("pointerdown", function (e) {
  dragging = true; canvas.setPointerCapture(e.pointerId); dragTo(e);
});
canvas.addEventListener("pointermove", function (e) { if (dragging) { dragTo(e); } });
canvas.addEventListener("pointerup", function () { dragging = false; });
canvas.addEventListener("pointercancel", function () { dragging = false; });
