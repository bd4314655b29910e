"""Claimed vs reproduced, one figure per paper table, readable at a glance.

One row per judged claim, one panel per metric (units differ): the claim is the zero line,
the shaded bar its ±margin, the marker the reproduced statistic at Δ = reproduced − claimed
with the confidence interval of Δ as its bar (the verdict asks the interval to fit inside
the margin), shaped and coloured by verdict, and the right-hand label says "claimed →
reproduced" and the verdict in words. Search cost is a ratio on a log axis.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from nasrepro.report.analysis import ClaimRow
from nasrepro.report.files import save_figure

WIDTH_IN, DPI = 11.0, 100  # 1100 px wide
FONT = 10  # points: every label at least this (titles larger)
LABEL_CHARS = 46  # left-hand claim labels wrap here
STYLE = {  # verdict -> (marker, colour, mark)
    "reproduced": ("o", "#1a7f37", "✓"),
    "not reproduced": ("X", "#cf222e", "✗"),
    "inconclusive": ("D", "#bf8700", "?"),
}


def claims_figure_name(suite: str, table: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", table).strip("-").lower() or "table"
    return f"{suite}__claims__{slug}.png"


def _style(verdict: str) -> tuple[str, str, str]:
    base = next((v for v in STYLE if verdict == v or verdict.startswith(v + " (")), None)
    return STYLE[base] if base else ("s", "#57606a", "")


def _metric_label(metric: str) -> str:
    from nasrepro.report.render import metric_text

    return metric_text(metric)


def _left_label(row: ClaimRow) -> str:
    c = row.claim
    text = f"{c.id}: {c.row} · {c.dataset}"
    return "\n".join(textwrap.wrap(text, LABEL_CHARS, break_on_hyphens=False)[:3])


def _right_label(row: ClaimRow) -> str:
    from nasrepro.report.render import _claimed_num, fmt

    j = row.judgement
    assert j is not None
    c = row.claim
    claimed = c.judged_text or _claimed_num(c.judged_value)
    _, _, mark = _style(row.verdict)
    return f"{claimed} → {fmt(c.metric, j.reproduced.value)}  {mark} {row.label}"


def claims_figure(rows: list[ClaimRow], suite: str, table: str) -> Any | None:
    """The figure of one table (None when no claim of it has a full-budget verdict)."""
    judged = [r for r in rows if r.judgement is not None]
    if not judged:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from nasrepro.report.render import margin_of

    metrics = list(dict.fromkeys(r.claim.metric for r in judged))  # table order
    per_metric = {m: [r for r in judged if r.claim.metric == m] for m in metrics}
    row_in = 0.62
    heights = [max(1.6, row_in * len(rs) + 0.9) for rs in per_metric.values()]
    fig = Figure(figsize=(WIDTH_IN, sum(heights) + 0.6), dpi=DPI)
    FigureCanvasAgg(fig)
    title = f"{suite} · {table}: claimed vs reproduced (full budget)"
    fig.suptitle("\n".join(textwrap.wrap(title, 90)), fontsize=FONT + 3, fontweight="bold")
    grid = fig.add_gridspec(len(metrics), 1, height_ratios=heights)
    for i, metric in enumerate(metrics):
        rs = per_metric[metric]
        ax = fig.add_subplot(grid[i])
        ys = list(range(len(rs)))[::-1]  # the table's first row on top
        cost = rs[0].judgement is not None and rs[0].judgement.kind == "cost"
        for y, r in zip(ys, rs, strict=True):
            j = r.judgement
            assert j is not None
            marker, colour, _ = _style(r.verdict)
            margin = margin_of(j)
            if cost:
                x, err, band = j.ratio or 0.0, None, (1.0 / margin, margin)
            else:  # the bar is Δ's confidence interval: the verdict asks it to fit the band
                lo, hi = j.ci_low, j.ci_high
                exact = lo is None or hi is None or lo == hi  # counts: no interval
                err = None if exact else (j.delta - float(lo or 0.0), float(hi or 0.0) - j.delta)
                x, band = j.delta, (-margin, margin)
            ax.barh(y, band[1] - band[0], left=band[0], height=0.55, color="#d0d7de", zorder=1)
            ax.errorbar(
                [x],
                [y],
                xerr=None if err is None else [[err[0]], [err[1]]],
                fmt=marker,
                color=colour,
                markersize=9,
                capsize=4,
                zorder=3,
            )
        ax.axvline(1.0 if cost else 0.0, color="#24292f", linewidth=1.2, zorder=2)
        if cost:
            ax.set_xscale("log")
            ax.set_xlabel("reproduced / claimed (shaded: the margin, a ratio either way)")
        else:
            ax.set_xlabel(
                f"Δ = reproduced − claimed, {_metric_label(metric)} "
                "(bar: confidence interval of Δ; shaded: ±margin)"
            )
        ax.xaxis.label.set_fontsize(FONT)
        ax.set_yticks(ys)
        ax.set_yticklabels([_left_label(r) for r in rs], fontsize=FONT)
        ax.set_ylim(-0.7, len(rs) - 0.3)
        ax.tick_params(axis="x", labelsize=FONT)
        ax.set_title(_metric_label(metric), fontsize=FONT + 1, loc="left")
        ax.grid(axis="x", alpha=0.3)
        right = ax.twinx()
        right.set_ylim(ax.get_ylim())
        right.set_yticks(ys)
        right.set_yticklabels([_right_label(r) for r in rs], fontsize=FONT)
        right.tick_params(axis="y", length=0)
        if not cost:  # symmetric around the claim, wide enough for every bar and marker
            reach = [
                max(abs(j.delta), abs(j.ci_low or 0.0), abs(j.ci_high or 0.0), margin_of(j))
                for j in (r.judgement for r in rs)
                if j is not None
            ]
            lim = 1.15 * max(reach) or 1.0
            ax.set_xlim(-lim, lim)
    fig.tight_layout()  # makes room for the suptitle too
    return fig


def plot_claims(rows: list[ClaimRow], out_file: Path, suite: str, table: str) -> bool:
    """False (nothing written) when no claim of the table has a full-budget verdict."""
    fig = claims_figure(rows, suite, table)
    if fig is None:
        return False
    save_figure(fig, out_file)
    return True
