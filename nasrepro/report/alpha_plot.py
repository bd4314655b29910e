"""softmax(α) trajectories of an experiment's records, one PNG per (experiment, budget)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from nasrepro.report.files import save_figure


def _labels(space: str, n_ops: int) -> list[str]:
    """Op names of the space (from its registry entry) when they match the α width."""
    try:
        from nasrepro import catalog

        ops = list(getattr(catalog.get("space", space), "ops", ()))
    except (KeyError, ImportError):
        ops = []
    if len(ops) == n_ops:
        return ops
    if "none" in ops and len(ops) == n_ops + 1:  # the 7-op DARTS space without `none`
        return [op for op in ops if op != "none"]
    if n_ops == 1:  # PC-DARTS edge-normalization β: one weight per edge
        return ["β"]
    return [f"op {k}" for k in range(n_ops)]  # per-edge op sets (S1): see the space


def _alpha_series(
    recs: list[dict[str, Any]],
) -> tuple[list[str], dict[str, list[int]], dict[str, list[list[list[list[float]]]]], int]:
    """Per α tensor: epochs, and per epoch the seeds' softmax(α) matrices [seed][row][op].

    Only seeds whose tensor shapes match the first seed's are used (returned as count).
    """
    shapes: dict[str, tuple[int, int]] = {}
    per_epoch: dict[str, dict[int, list[list[list[float]]]]] = defaultdict(dict)
    used = 0
    for rec in recs:
        history = (rec.get("search") or {}).get("history") or []
        alphas = [(h["epoch"], h["alpha"]) for h in history if h.get("alpha")]
        if not alphas:
            continue
        shape_of = {k: (len(m), len(m[0]) if m else 0) for k, m in alphas[0][1].items()}
        if shapes and shape_of != shapes:
            continue
        shapes = shape_of
        used += 1
        for epoch, alpha in alphas:
            for name, matrix in alpha.items():
                per_epoch[name].setdefault(int(epoch), []).append(matrix)
    names = sorted(per_epoch)
    epochs = {n: sorted(per_epoch[n]) for n in names}
    series = {n: [per_epoch[n][e] for e in epochs[n]] for n in names}
    return names, epochs, series, used


def plot_alpha(
    recs: list[dict[str, Any]], out_file: Path, suite: str, experiment: str, budget: str
) -> bool:
    """softmax(α) over epochs, one panel per α row (edge), one line per op: mean over seeds,
    band = min..max over seeds. False (nothing written) when no record holds an α history."""
    names, epochs, series, used = _alpha_series(recs)
    if not names:
        return False
    # Object-oriented Agg: no pyplot, no global backend switch for the caller's process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [(name, row) for name in names for row in range(len(series[name][0][0]))]
    # α tensors differ in width (PC-DARTS' β has one entry per edge): labels per tensor
    widths = {name: len(series[name][0][0][0]) for name in names}
    space = str(recs[0].get("space", ""))
    # DARTS-space cells have 14 edges per α tensor: small panels keep the page (and the
    # repository, which commits reports/) light.
    small = len(panels) > 12
    ncols = min(7 if small else 3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    width, height = (2.4, 1.9) if small else (4.2, 2.8)
    fig = Figure(figsize=(width * ncols, height * nrows + 1.0), dpi=60 if small else 80)
    FigureCanvasAgg(fig)
    label = f"{budget} budget" + (" (smoke)" if budget == "smoke" else "")
    seeds = f"mean over {used} seeds, band = min–max" if used > 1 else "1 seed"
    fig.suptitle(f"{suite} / {experiment}: softmax(α), {label}; {seeds}")
    for i, (name, row) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        xs = epochs[name]
        ops = _labels(space, widths[name])
        for k in range(widths[name]):
            per_epoch = [[m[row][k] for m in seeds] for seeds in series[name]]
            mean = [math.fsum(v) / len(v) for v in per_epoch]
            (line,) = ax.plot(xs, mean, label=ops[k], linewidth=1.4)
            if used > 1:
                ax.fill_between(
                    xs,
                    [min(v) for v in per_epoch],
                    [max(v) for v in per_epoch],
                    color=line.get_color(),
                    alpha=0.15,
                    linewidth=0,
                )
        ax.set_title(f"{name} edge {row}", fontsize=9)
        ax.set_ylim(0.0, 1.0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("softmax(α)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    widest = max(range(len(panels)), key=lambda i: widths[panels[i][0]])
    handles, labels = fig.axes[widest].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), fontsize=8)
    fig.tight_layout(rect=(0.0, 0.06, 1.0, 0.95))
    save_figure(fig, out_file)
    return True


def alpha_figure_name(suite: str, experiment: str, budget: str) -> str:
    return f"{suite}__{experiment}__{budget}.png"
