"""The equivalence margin of a claim: a property of the claim, read from the paper.

A reproduction is "the same result" when Δ's confidence interval lies inside ±margin. The
margin comes from the paper's own numbers, never from the reproduction:

- the paper's own spread: 2σ of the claim (σ at least half a unit of its printed digit);
- the gaps the paper ranks: the margin is at most half the distance to every row the paper
  ranks against this one in the same table column, so the two rows' equivalence regions
  never overlap and no reproduction can pass as both (a margin that cannot separate DARTS-
  from DARTS on the paper's own numbers is too wide). The rows are the claim's comparisons
  (`better`/`worse`); a claim in none is ranked against the paper's own rows of that column;
- a per-suite floor (`verdict.margin_floor`, points), below which printed digits and table
  lookups stop meaning anything.

margin = max(floor, min(2σ, gap/2)); without σ, gap/2; without either, the floor. Params
and FLOPs: max(relative_floor·|claimed|, half a unit of the printed digit, 2σ). A claim's own
`margin:` replaces all of this. Search cost: the suite's cost ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasrepro.report.verdict import default_margin, effective_std
from nasrepro.suite import Claim, Suite, metric_kind


@dataclass(frozen=True)
class Margin:
    value: float
    basis: str  # how it was derived, one line
    gap: float | None = None  # the smallest ranked gap
    nearest: str | None = None  # the claim id at that gap
    separates: bool = True  # False: the floor is not below the nearest ranked gap


def ranked_partners(suite: Suite, claim: Claim) -> list[Claim]:
    """The rows the paper ranks against `claim` in its table column: its comparisons'
    other sides, or (a claim in no comparison) the paper's own rows of that column."""
    by_id = {c.id: c for c in suite.claims}
    linked = [
        by_id[other]
        for comp in suite.comparisons
        for mine, other in ((comp.better, comp.worse), (comp.worse, comp.better))
        if mine == claim.id and other in by_id
    ]
    if not linked:
        own = {comp.better for comp in suite.comparisons}
        linked = [
            by_id[i]
            for i in sorted(own)
            if i in by_id and by_id[i].method != claim.method and i != claim.id
        ]
    return [
        c
        for c in linked
        if (c.table, c.dataset, c.metric) == (claim.table, claim.dataset, claim.metric)
    ]


def claim_margin(suite: Suite, claim: Claim) -> Margin:
    """The margin a claim is judged with (module docstring)."""
    cfg = suite.verdict
    kind = metric_kind(claim.metric)
    if claim.margin is not None:
        return Margin(claim.margin, f"the claim's own margin {claim.margin:g}")
    if kind == "cost":
        return Margin(cfg.cost_ratio, f"cost ratio ×{cfg.cost_ratio:g}")
    value = claim.judged_value
    if kind == "complexity":
        m = default_margin(
            value, claim.metric, cfg, claim.std, claim.std_text, claim.judged_text
        )
        return Margin(m, "max(relative floor, half a unit of the printed digit, 2σ)")
    sigma = effective_std(claim.std, claim.std_text)
    partners = ranked_partners(suite, claim)
    gaps = sorted((abs(value - p.judged_value), p.id) for p in partners)
    gap, nearest = gaps[0] if gaps else (None, None)
    terms = []
    if sigma is not None:
        terms.append((2.0 * sigma, f"2σ {2.0 * sigma:.3g}"))
    if gap is not None:
        terms.append((gap / 2.0, f"half the gap {gap:.3g} to {nearest}"))
    floor = cfg.margin_floor
    if not terms:
        return Margin(floor, f"floor {floor:g} (no std, no ranked row)")
    bound, why = min(terms)
    if bound < floor:
        separates = gap is None or floor < gap / 2.0
        return Margin(floor, f"floor {floor:g} (above {why})", gap, nearest, separates)
    return Margin(bound, why, gap, nearest, True)
