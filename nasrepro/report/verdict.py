"""The verdict rules: a claim against reproduced values, and "A beats B" comparisons.

Pure functions of numbers, so each rule can be checked by hand and quoted in every report
(docs/verdicts.md). The statistic is the one the paper computed (its `protocol`), and the
tolerance depends on the kind of metric: accuracy points from standard errors, params and
FLOPs relative plus the rounding of the printed digits, search cost as a ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from nasrepro.suite import Verdict, metric_kind

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run", "other budget")
COMPARISON_VERDICTS = ("held", "not held", "inconclusive", "untested")

# Quoted verbatim on every report page and in docs/verdicts.md (a test keeps them equal).
RULE = (
    "Statistic by protocol: mean and retrain_k = mean of the n reproduced values; "
    "best_by_valid = the value of the seed with the highest select_by metric (ties: lowest "
    "seed), never the best test value; single = mean of the reproduced single runs; "
    "cell_property = the value of the published cell. s = sample std (ddof 1) of the n values. "
    "SE = sqrt(SE_claim² + SE_repro²) with SE_repro = s/√n (mean, retrain_k, single), s "
    "(best_by_valid: one draw) or 0 (cell_property), and SE_claim = claimed std/√claim_n "
    "(mean, retrain_k; s/√claim_n when the paper gives no std), the claimed std or s "
    "(single, best_by_valid) or 0 (cell_property). Tolerance: accuracy/error in points = "
    "max(z·SE, accuracy_floor); params/FLOPs = max(z·SE, relative_floor·|claimed|, half a "
    "unit of the claim's last printed digit); a claim's own `tolerance` replaces the computed "
    "one. Δ = reproduced − claimed (the corrected value for a known typo). |Δ| ≤ tolerance → "
    "reproduced; otherwise not reproduced when SE is known (n ≥ 2, or a deterministic "
    "cell_property) and inconclusive when it is not (one seed cannot separate a miss from "
    "seed variance). Search cost: reproduced when claimed/cost_ratio ≤ reproduced ≤ "
    "claimed·cost_ratio, only from records measured on a GPU (the device is shown)."
)
COMPARISON_RULE = (
    'A comparison "A beats B" uses the two claims\' reproduced statistics: d = A − B, sign '
    "flipped for error metrics, so d > 0 means A is better; SE_d = sqrt(SE_A² + SE_B²) with "
    "each side's SE_repro from the claim rule. held when d − z·SE_d > margin; not held when "
    "d + z·SE_d < margin (the records contradict the claim); inconclusive otherwise or when "
    "an SE is unknown (n < 2); untested when either claim has no full-budget reproduction."
)

# Reported numbers carry two decimals; without this slack 55.30 vs 54.30 would give
# |Δ| = 1.0000000000000142 > 1.0 and fail an exact tolerance of 1.0.
_EPS = 1e-9
_ONE_DRAW = ("best_by_valid", "single")


@dataclass(frozen=True)
class Sample:
    """One record's contribution: its seed, its value of the claim metric and (for
    best_by_valid) its value of the selection metric."""

    seed: int
    value: float
    select: float | None = None


@dataclass(frozen=True)
class Statistic:
    """The protocol's statistic of the reproduced values, with its standard error."""

    value: float
    mean: float
    std: float | None  # sample std (ddof 1); None for n = 1
    n: int
    se: float | None  # SE of `value`; None when it cannot be estimated
    chosen_seed: int | None = None  # best_by_valid


@dataclass(frozen=True)
class Judgement:
    verdict: str
    protocol: str
    kind: str  # accuracy | complexity | cost
    reproduced: Statistic
    claimed: float
    delta: float
    tolerance: float  # points / M for accuracy and complexity, the ratio for cost
    se: float | None  # SE of Δ (accuracy, complexity)
    ratio: float | None = None  # cost: reproduced / claimed


def _finite(values: list[float]) -> list[float]:
    vals = [float(v) for v in values]
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"non-finite reproduced value in {vals}")
    return vals


def reproduced_statistic(protocol: str, samples: list[Sample]) -> Statistic:
    """The statistic the paper computed, from the records' samples (see RULE)."""
    if not samples:
        raise ValueError("no reproduced values")
    vals = _finite([s.value for s in samples])
    n = len(vals)
    mean = math.fsum(vals) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1)) if n >= 2 else None
    if protocol in ("mean", "retrain_k", "single"):
        return Statistic(mean, mean, std, n, None if std is None else std / math.sqrt(n))
    if protocol == "cell_property":
        spread = max(vals) - min(vals)
        if spread > 1e-9 * max(1.0, abs(mean)):
            raise ValueError(f"a cell property must be deterministic, got values {vals}")
        return Statistic(vals[0], mean, std, n, 0.0)
    if protocol == "best_by_valid":
        ranked = [s for s in samples if s.select is not None and math.isfinite(s.select)]
        if not ranked:
            raise ValueError("best_by_valid: no record holds the selection metric")
        best = min(ranked, key=lambda s: (-float(s.select or 0.0), s.seed))
        return Statistic(float(best.value), mean, std, n, std, best.seed)
    raise ValueError(f"unknown protocol {protocol!r}")


def half_unit(text: str | None, value: float) -> float:
    """Half a unit of the last printed digit: '3.3' -> 0.05, '574' -> 0.5, '3.30' -> 0.005."""
    try:
        exponent = Decimal((text or repr(float(value))).strip()).as_tuple().exponent
    except InvalidOperation:
        exponent = Decimal(repr(float(value))).as_tuple().exponent
    return 0.5 * 10.0 ** int(exponent)


def _claim_se(
    protocol: str, claim_std: float | None, claim_n: int | None, stat: Statistic
) -> float | None:
    if protocol == "cell_property":
        return 0.0
    if protocol in _ONE_DRAW:
        return claim_std if claim_std is not None else stat.std
    if claim_std is not None:
        return claim_std / math.sqrt(claim_n or stat.n)
    return None if stat.std is None else stat.std / math.sqrt(claim_n or stat.n)


def judge(
    claim_value: float,
    samples: list[Sample],
    *,
    metric: str,
    protocol: str = "mean",
    claim_std: float | None = None,
    claim_n: int | None = None,
    claim_text: str | None = None,
    settings: Verdict | None = None,
    tolerance: float | None = None,
) -> Judgement:
    """Judge one claim (see RULE). `claim_value` is the value judged (the corrected one for a
    typo), `claim_text` its printed form, `tolerance` the claim's own override. Cost samples
    must come from GPU records (the caller filters them)."""
    cfg = settings or Verdict()
    kind = metric_kind(metric)
    stat = reproduced_statistic(protocol, samples)
    delta = stat.value - claim_value
    if kind == "cost":
        ratio_limit = tolerance or cfg.cost_ratio
        ratio = stat.value / claim_value if claim_value > 0 else math.inf
        inside = 1.0 / ratio_limit - _EPS <= ratio <= ratio_limit + _EPS
        verdict = "reproduced" if inside else "not reproduced"
        return Judgement(
            verdict, protocol, kind, stat, claim_value, delta, ratio_limit, None, ratio
        )
    c_se = _claim_se(protocol, claim_std, claim_n, stat)
    se = None if c_se is None or stat.se is None else math.hypot(c_se, stat.se)
    if kind == "complexity":
        floor = max(cfg.relative_floor * abs(claim_value), half_unit(claim_text, claim_value))
    else:
        floor = cfg.accuracy_floor
    tol = tolerance if tolerance is not None else max(cfg.z * (se or 0.0), floor)
    if abs(delta) <= tol + _EPS:
        verdict = "reproduced"
    elif se is not None:
        verdict = "not reproduced"
    else:
        verdict = "inconclusive"
    return Judgement(verdict, protocol, kind, stat, claim_value, delta, tol, se)


@dataclass(frozen=True)
class ComparisonJudgement:
    verdict: str
    difference: float | None  # d: > 0 when A (better) is ahead
    se: float | None
    margin: float


def judge_comparison(
    better: Statistic | None,
    worse: Statistic | None,
    *,
    higher_is_better: bool,
    margin: float = 0.0,
    z: float = 2.0,
) -> ComparisonJudgement:
    """Judge "A beats B by at least margin" (see COMPARISON_RULE)."""
    if better is None or worse is None:
        return ComparisonJudgement("untested", None, None, margin)
    sign = 1.0 if higher_is_better else -1.0
    d = sign * (better.value - worse.value)
    if better.se is None or worse.se is None:
        return ComparisonJudgement("inconclusive", d, None, margin)
    se = math.hypot(better.se, worse.se)
    if d - z * se > margin + _EPS:
        verdict = "held"
    elif d + z * se < margin - _EPS:
        verdict = "not held"
    else:
        verdict = "inconclusive"
    return ComparisonJudgement(verdict, d, se, margin)
