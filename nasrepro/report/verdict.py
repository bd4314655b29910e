"""The verdict rule: one claimed number against the reproduced seeds' values.

A pure function of numbers, so the rule can be tested by hand and quoted in every report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run", "other budget")

# Quoted verbatim in judge()'s docstring and in every report header (a test keeps them equal).
RULE = (
    'Reproduced statistic = mean of the values (or max for "best", where higher is better, '
    "min for error metrics); SE = sqrt(claim_std²/claim_n + s²/n) with missing stds taken as "
    "0 and claim_n defaulting to n; tolerance = max(z·SE, abs_tolerance); "
    '|Δ| ≤ tolerance → "reproduced"; otherwise "not reproduced" when n ≥ 2, '
    '"inconclusive" when n = 1 (one seed cannot separate a miss from seed variance). '
    "Δ = reproduced − claimed; s = sample std (ddof=1) of the n reproduced values. "
    'The metric direction only matters for "best".'
)

# Reported numbers carry two decimals; without this slack 55.30 vs 54.30 would give
# |Δ| = 1.0000000000000142 > 1.0 and fail an exact abs_tolerance of 1.0.
_EPS = 1e-9


@dataclass(frozen=True)
class Judgement:
    """Outcome of judge(). `reproduced` is the statistic compared with the claim (the mean,
    or the best value for "best"); `reproduced_mean` is always the plain mean."""

    verdict: str
    reproduced: float
    reproduced_mean: float
    reproduced_std: float | None
    n: int
    delta: float
    tolerance: float
    statistic: str


def judge(
    claim_value: float,
    claim_std: float | None,
    claim_n: int | None,
    values: list[float],
    statistic: str = "mean",
    abs_tolerance: float = 1.0,
    z: float = 2.0,
    *,
    higher_is_better: bool = True,
) -> Judgement:
    """Judge a claim against reproduced values.

    Reproduced statistic = mean of the values (or max for "best", where higher is better,
    min for error metrics); SE = sqrt(claim_std²/claim_n + s²/n) with missing stds taken as
    0 and claim_n defaulting to n; tolerance = max(z·SE, abs_tolerance);
    |Δ| ≤ tolerance → "reproduced"; otherwise "not reproduced" when n ≥ 2,
    "inconclusive" when n = 1 (one seed cannot separate a miss from seed variance).
    Δ = reproduced − claimed; s = sample std (ddof=1) of the n reproduced values.
    The metric direction only matters for "best".

    `higher_is_better` is False for error metrics; raises ValueError for no values or an
    unknown statistic.
    """
    if not values:
        raise ValueError("judge() needs at least one reproduced value")
    if statistic not in ("mean", "best"):
        raise ValueError(f"unknown statistic {statistic!r} (known: mean, best)")
    vals = [float(v) for v in values]
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"non-finite reproduced value in {vals}")
    n = len(vals)
    mean = math.fsum(vals) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1)) if n >= 2 else None
    if statistic == "best":
        reproduced = max(vals) if higher_is_better else min(vals)
    else:
        reproduced = mean
    c_n = claim_n if claim_n else n
    se = math.sqrt((claim_std or 0.0) ** 2 / c_n + (std or 0.0) ** 2 / n)
    tolerance = max(z * se, abs_tolerance)
    delta = reproduced - claim_value
    if abs(delta) <= tolerance + _EPS:
        verdict = "reproduced"
    elif n >= 2:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    return Judgement(verdict, reproduced, mean, std, n, delta, tolerance, statistic)
