"""Plot ``results/cpu_linear.csv`` (written by ``linear_attention_cpu.py``) as
``results/cpu_linear.png``: for each kind of call (causal or not, forward or forward plus
backward), every method's rate as a share of this CPU's ``torch.mm`` rate on the same number
of threads, configuration by configuration. Higher is better; 100 % would be the matrix-multiply
limit. Usage::

    python benchmarks/plot_cpu_linear.py [path/to/cpu_linear.csv]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parent / "results"
PANELS = [("False", "fwd"), ("False", "fwd+bwd"), ("True", "fwd"), ("True", "fwd+bwd")]
# colour-blind-safe (Okabe-Ito), one per method in the order first seen
COLOURS = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#CC79A7"]
MARKERS = ["o", "s", "^", "D", "v", "P"]


def configuration(row: dict) -> str:
    return (f"T {int(row['seq']) // 1024}K, d {row['dim']}, B {row['batch']}, "
            f"{row['threads']} thread{'s' if row['threads'] != '1' else ''}")


def main(path: Path = RESULTS / "cpu_linear.csv") -> Path:
    rows = list(csv.DictReader(path.read_text().splitlines()))
    methods = list(dict.fromkeys(row["method"] for row in rows))
    style = {method: (MARKERS[i % len(MARKERS)], COLOURS[i % len(COLOURS)])
             for i, method in enumerate(methods)}
    figure, axes = plt.subplots(2, 2, figsize=(13, 15), sharex=True)
    for ax, (causal, direction) in zip(axes.flat, PANELS, strict=True):
        chosen = [row for row in rows if row["causal"] == causal and row["pass"] == direction]
        labels = list(dict.fromkeys(configuration(row) for row in chosen))
        for method in methods:
            points = [(float(row["% of mm"]), labels.index(configuration(row)))
                      for row in chosen if row["method"] == method and row["% of mm"]]
            if points:
                x, y = zip(*points, strict=True)
                marker, colour = style[method]
                ax.plot(x, y, marker, color=colour, label=method,
                        markersize=8 if method == "kernelnotes" else 6)
        ax.set_yticks(range(len(labels)), labels, fontsize=11)
        ax.invert_yaxis()
        ax.set_title(f"{'causal' if causal == 'True' else 'non-causal'}, {direction}",
                     fontsize=13)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("rate as % of torch.mm on as many threads", fontsize=12)
    handles = {method: handle for ax in axes.flat
               for handle, method in zip(*ax.get_legend_handles_labels(), strict=True)}
    figure.legend(handles.values(), handles.keys(), ncol=len(handles), loc="upper center",
                  fontsize=12, frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    out = path.with_suffix(".png")
    figure.savefig(out, dpi=90)
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1])) if len(sys.argv) > 1 else main())
