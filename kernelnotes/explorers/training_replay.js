// Training-replay explorer: the twin of TrainingReplayExplorer.state in Python.
function state(values) {
  var i = Math.round(values.step);
  return {step: data.steps[i], loss: data.eval_loss[i], accuracy: data.accuracy[i],
          control: data.control_accuracy[i], prev: data.prev_score[i],
          prefix: data.prefix_score[i], index: i};
}

// A panel: a box in pixels and linear maps from data coordinates into it.
function panel(f, x0, x1, y0, y1, xmax, ymax) {
  var ctx = f.ctx;
  ctx.strokeStyle = "#8c959f"; ctx.lineWidth = 1; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  return {x0: x0, x1: x1, y0: y0, y1: y1,
          X: function (x) { return x0 + x / xmax * (x1 - x0); },
          Y: function (y) { return y1 - y / ymax * (y1 - y0); }};
}
function line(ctx, p, xs, ys, color, dash) {
  ctx.beginPath(); ctx.moveTo(p.X(xs[0]), p.Y(ys[0]));
  for (var i = 1; i < xs.length; i++) { ctx.lineTo(p.X(xs[i]), p.Y(ys[i])); }
  ctx.setLineDash(dash || []); ctx.strokeStyle = color; ctx.lineWidth = 1.8; ctx.stroke();
  ctx.setLineDash([]);
}
function label(ctx, text, x, y, align, baseline) {
  ctx.fillStyle = data.colors.text; ctx.textAlign = align || "left";
  ctx.textBaseline = baseline || "bottom"; ctx.fillText(text, x, y);
}
function yTicks(ctx, p, ticks) {
  ticks.forEach(function (t) { label(ctx, String(t), p.x0 - 4, p.Y(t), "right", "middle"); });
}

// Where the four panels go: side by side on a wide canvas; stacked in one column on a
// narrow one (a phone), which then grows as tall as the column needs, keeping text legible.
var NARROW = 560;
function layout(f) {
  var w = f.right - f.left, left = f.left + 30;
  if (canvas.clientWidth >= NARROW) {
    var h = f.bottom - f.top, mid = f.top + h / 2, right = f.left + 0.6 * w;
    var side = Math.min(f.right - right - 16, h / 2 - 26), x = f.right - 8 - side;
    return {height: "", loss: [left, right, f.top + 18, mid - 8],
            score: [left, right, mid + 18, f.bottom - 18],
            maps: [[x, f.top + 18], [x, mid + 18]], side: side};
  }
  var full = f.right - 8, plot = Math.max(110, Math.round(0.5 * w));
  var mapSide = Math.min(full - left, 240), y = f.top + 18;
  var out = {loss: [left, full, y, y + plot], maps: [], side: mapSide};
  y += plot + 26;
  out.score = [left, full, y, y + plot];
  y += plot + 40;
  out.maps.push([left, y]);
  y += mapSide + 26;
  out.maps.push([left, y]);
  // the frame keeps 26 px below its plot area, which clips
  out.height = Math.ceil(y + mapSide + 8 + 26) + "px";
  return out;
}

function draw(f, s) {
  var ctx = f.ctx, c = data.colors, last = data.steps[data.steps.length - 1], at = layout(f);
  // a changed height resizes the canvas, and the resize observer draws it again
  if (canvas.style.height !== at.height) { canvas.style.height = at.height; }
  ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  var loss = panel(f, at.loss[0], at.loss[1], at.loss[2], at.loss[3], last, data.loss_top);
  var score = panel(f, at.score[0], at.score[1], at.score[2], at.score[3], last, 1);
  label(ctx, "training loss", loss.x0, loss.y0 - 3);
  label(ctx, "accuracy, scores", score.x0, score.y0 - 3);
  yTicks(ctx, loss, data.loss_ticks);
  yTicks(ctx, score, [0, 0.5, 1]);
  data.step_ticks.forEach(function (t) {
    label(ctx, String(t), score.X(t), score.y1 + 2, "center", "top");
  });
  line(ctx, loss, data.loss_steps, data.loss, c.model);
  line(ctx, loss, data.loss_steps, data.control_loss, c.control);
  line(ctx, score, data.steps, data.accuracy, c.model);
  line(ctx, score, data.steps, data.control_accuracy, c.control);
  line(ctx, score, data.steps, data.prefix_score, c.prefix, [6, 3]);
  line(ctx, score, data.steps, data.prev_score, c.prev, [2, 3]);
  [loss, score].forEach(function (p) {
    ctx.strokeStyle = c.cursor; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(p.X(s.step), p.y0); ctx.lineTo(p.X(s.step), p.y1); ctx.stroke();
  });
  [s.accuracy, s.control, s.prefix, s.prev].forEach(function (v, k) {
    ctx.fillStyle = [c.model, c.control, c.prefix, c.prev][k];
    ctx.beginPath(); ctx.arc(score.X(s.step), score.Y(v), 3.5, 0, 2 * Math.PI); ctx.fill();
  });
  // the two heads' attention at this checkpoint, lower triangle row by row
  var n = data.n, cell = at.side / n;
  data.labels.forEach(function (name, m) {
    var x0 = at.maps[m][0], y0 = at.maps[m][1], k = 0;
    label(ctx, name + ", step " + s.step, x0, y0 - 3);
    for (var i = 0; i < n; i++) {
      for (var j = 0; j <= i; j++, k++) {
        ctx.fillStyle = data.palette[Math.round(data.maps[s.index][m][k] / 10)];
        ctx.fillRect(x0 + j * cell, y0 + i * cell, Math.ceil(cell), Math.ceil(cell));
      }
    }
    ctx.strokeStyle = c.target; ctx.lineWidth = 1;
    data.targets.forEach(function (t) {
      ctx.beginPath();
      ctx.arc(x0 + (t[1] + 0.5) * cell, y0 + (t[0] + 0.5) * cell, cell / 2, 0, 2 * Math.PI);
      ctx.stroke();
    });
  });
}
