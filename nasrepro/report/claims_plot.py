"""Claimed vs reproduced, one figure per paper table: one panel per metric, one pair of
points per judged claim (claimed ± its std, reproduced ± the std over seeds)."""

from __future__ import annotations

import re
from pathlib import Path

from nasrepro.report.analysis import ClaimRow
from nasrepro.report.files import save_figure


def claims_figure_name(suite: str, table: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", table).strip("-").lower() or "table"
    return f"{suite}__claims__{slug}.png"


def plot_claims(rows: list[ClaimRow], out_file: Path, suite: str, table: str) -> bool:
    """False (nothing written) when no claim of the table has a full-budget verdict."""
    judged = [r for r in rows if r.judgement is not None]
    if not judged:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = sorted({r.claim.metric for r in judged})
    per_metric = {m: [r for r in judged if r.claim.metric == m] for m in metrics}
    widest = max(len(v) for v in per_metric.values())
    fig = Figure(figsize=(max(4.0, 0.45 * widest + 2.0) * len(metrics), 3.6), dpi=70)
    FigureCanvasAgg(fig)
    fig.suptitle(f"{suite}, {table}: claimed vs reproduced (full budget)", fontsize=10)
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        rs = per_metric[metric]
        xs = list(range(len(rs)))
        claimed = [r.claim.judged_value for r in rs]
        claimed_err = [r.claim.std or 0.0 for r in rs]
        stats = [r.judgement.reproduced for r in rs if r.judgement is not None]
        ax.errorbar(
            [x - 0.12 for x in xs], claimed, yerr=claimed_err, fmt="o", label="claimed", capsize=3
        )
        ax.errorbar(
            [x + 0.12 for x in xs],
            [s.value for s in stats],
            yerr=[s.std or 0.0 for s in stats],
            fmt="s",
            label="reproduced",
            capsize=3,
        )
        ax.set_xticks(xs)
        ax.set_xticklabels(
            [f"{r.claim.row[:18]}\n{r.claim.dataset}" for r in rs], rotation=60, fontsize=6
        )
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 0.93))
    save_figure(fig, out_file)
    return True
