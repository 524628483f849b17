// Kernel-sections explorer: the twin of KernelSectionsExplorer.state in Python.
function state(values) {
  var i = Math.round(values.width);
  return {width: data.widths[i], n: data.anchors.length, rms: data.rms[i], norm: data.norm[i],
          index: i};
}
function draw(f, s) {
  var ctx = f.ctx, grid = data.grid, alpha = data.alphas[s.index], width = s.width;
  var total = grid.map(function () { return 0; });
  data.anchors.forEach(function (a, j) {
    var section = grid.map(function (g, k) {
      var v = alpha[j] * Math.exp(-(g - a) * (g - a) / (2 * width * width));
      total[k] += v;
      return v;
    });
    polyline(f, grid, section, data.colors.section, 1.2);
  });
  polyline(f, grid, data.target, data.colors.target, 1.5, [6, 4]);
  polyline(f, grid, total, data.colors.sum, 2.5);
  ctx.fillStyle = data.colors.target;
  data.anchors.forEach(function (a) {
    ctx.beginPath(); ctx.moveTo(f.X(a), f.bottom - 7); ctx.lineTo(f.X(a) + 4, f.bottom);
    ctx.lineTo(f.X(a) - 4, f.bottom); ctx.closePath(); ctx.fill();
  });
}
