"""The verdict rules: a claim against reproduced values, and "A beats B" comparisons.

Pure functions of numbers, so each rule can be checked by hand and quoted in every report
(docs/verdicts.md). A claim is judged for *equivalence*: the confidence interval of Δ =
reproduced − claimed, from both sides' uncertainty with t-quantiles, must lie inside ±margin,
and the margin belongs to the claim (nasrepro/report/margins.py), never to the reproduction.
A reproduced spread far beyond the claimed one is "not reproduced (unstable)". The statistic
is the one the paper computed (its `protocol`): a mean, one draw, the best of N by validation
or by test. Params and FLOPs of a published cell are exact counts, judged against the printed
digits under each FLOP counting convention (nasrepro/complexity.py).

`judge()` is what the reports, `nasrepro judge` and sequential seeding call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from nasrepro.suite import HIGHER_IS_BETTER, Verdict, metric_kind

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not run", "other budget")
COMPARISON_VERDICTS = ("held", "not held", "inconclusive", "untested")

# Quoted verbatim on every report page and in docs/verdicts.md (a test keeps them equal).
RULE = (
    "Statistic by protocol: mean and retrain_k = mean of the n reproduced values; single = "
    "their mean, compared with one draw; best_by_valid = the test value of the seed with the "
    "highest select_by metric among the first N seeds (N = the claim's n_seeds; ties: lowest "
    "seed); best_by_test = the best test value among the first N seeds, as the paper computed "
    "it, with best_by_valid shown beside it as the honest selection; cell_property = the "
    "value of the published cell. Δ = reproduced − claimed (the corrected value for a known "
    "typo). Equivalence: the level-% confidence interval of Δ combines the reproduced sample "
    "sd s (n − 1 df) and the claimed std σ (claim_n − 1 df; a side without a spread borrows "
    "the other's) with Welch–Satterthwaite df and t-quantiles; a mean has variance sd²/n, one "
    "draw sd² (single, best_by_valid), a best-of-N draw (d_N·sd)² with d_N the sd of the "
    "maximum of N standard normals. reproduced when the interval lies inside ±margin; not "
    "reproduced when it lies entirely outside; inconclusive otherwise, with the further seeds "
    "that would decide at the current spread. Stability: where the claim prints σ (taken as "
    "at least half a unit of its last printed digit), a one-sided F-test of s²/σ² at α = "
    "(1 − level)/2 that rejects makes the claim not reproduced (unstable), whatever the mean. "
    "Margin (a property of the claim): max(margin_floor, min(2σ, gap/2)), gap = the smallest "
    "distance to a row the paper ranks against this one in the same table column. Params and "
    "FLOPs of a published cell are exact counts: reproduced when |Δ| ≤ max(relative_floor·"
    "|claimed|, half a unit of the last printed digit), FLOPs under each counting convention "
    "(reproduced (convention X), or not reproduced under any convention). Search cost: "
    "reproduced when claimed/cost_ratio ≤ reproduced ≤ claimed·cost_ratio, only from records "
    "measured on a GPU (the device is shown)."
)
COMPARISON_RULE = (
    'A comparison "A beats B" uses the two claims\' reproduced statistics: d = A − B, sign '
    "flipped for error metrics, so d > 0 means A is better; SE_d = sqrt(SE_A² + SE_B²) with "
    "each side's standard error from the claim rule. held when d − z·SE_d > margin; not held "
    "when d + z·SE_d < margin (the records contradict the claim); inconclusive otherwise or "
    "when an SE is unknown (n < 2); untested when either claim has no full-budget "
    "reproduction."
)

# Reported numbers carry two decimals; without this slack 55.30 vs 54.30 would give
# |Δ| = 1.0000000000000142 > 1.0 and fail an exact margin of 1.0.
_EPS = 1e-9
_MAX_EXTRA_SEEDS = 200  # "further seeds that would decide": searched up to this many


@dataclass(frozen=True)
class Sample:
    """One record's contribution: its seed, its value of the claim metric, (best-of-N) its
    value of the selection metric and (FLOPs) its count under each counting convention."""

    seed: int
    value: float
    select: float | None = None
    conventions: tuple[tuple[str, float], ...] = ()
    # best_by_test on a metric other than the test accuracy/error (e.g. the params of a
    # "(best)" row): the seed's test accuracy, which picks the best seed
    rank: float | None = None


@dataclass(frozen=True)
class Statistic:
    """The protocol's statistic of the reproduced values, with its standard error."""

    value: float
    mean: float
    std: float | None  # sample std (ddof 1) of the seeds used; None for n = 1
    n: int  # seeds used (the first N for best-of-N claims)
    se: float | None  # SE of `value`; None when it cannot be estimated
    chosen_seed: int | None = None  # best_by_valid / best_by_test
    n_available: int | None = None  # all seeds recorded (when only the first N are used)


@dataclass(frozen=True)
class Judgement:
    """One claim's verdict and how it was reached. `verdict` is one of VERDICTS, `label` the
    text a page shows ("reproduced (convention thop)", "not reproduced (unstable)"), `reason`
    one line of why."""

    verdict: str
    protocol: str
    kind: str  # accuracy | complexity | cost
    reproduced: Statistic
    claimed: float
    delta: float
    margin: float  # points / M for accuracy and complexity, the ratio for cost
    se: float | None  # SE of Δ
    label: str = ""
    reason: str = ""
    ci_low: float | None = None  # the confidence interval of Δ (Δ itself for exact counts)
    ci_high: float | None = None
    level: float | None = None
    df: float | None = None
    seeds_to_decide: int | None = None  # inconclusive: further seeds that would decide
    unstable: bool = False
    spread_ratio: float | None = None  # reproduced sd / claimed σ (as taken)
    stability_p: float | None = None
    convention: str | None = None  # FLOPs: the convention the verdict reads
    conventions: dict[str, float] = field(default_factory=dict)  # FLOPs per convention
    rounding: str | None = None  # exact counts: "printed digit", "relative floor", "edge", "gap"
    best_by_test: float | None = None  # best-of-N side values
    best_by_valid: float | None = None
    ratio: float | None = None  # cost: reproduced / claimed

    @property
    def tolerance(self) -> float:
        """The margin (the name of earlier reports)."""
        return self.margin


def _finite(values: list[float]) -> list[float]:
    vals = [float(v) for v in values]
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"non-finite reproduced value in {vals}")
    return vals


def _sd(vals: list[float]) -> float | None:
    n = len(vals)
    if n < 2:
        return None
    mean = math.fsum(vals) / n
    return math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1))


def _first(samples: list[Sample], n_best: int | None) -> list[Sample]:
    """The first N seeds (by seed), as the paper's N runs; all of them when N is unknown or
    more than were recorded."""
    ordered = sorted(samples, key=lambda s: s.seed)
    return ordered[:n_best] if n_best else ordered


def _by_valid(samples: list[Sample]) -> Sample | None:
    ranked = [s for s in samples if s.select is not None and math.isfinite(s.select)]
    if not ranked:
        return None
    return min(ranked, key=lambda s: (-float(s.select or 0.0), s.seed))


def _by_test(samples: list[Sample], higher_is_better: bool) -> Sample:
    """The seed with the best test value (its `rank`, a test accuracy, when given)."""
    if all(s.rank is not None for s in samples):
        return min(samples, key=lambda s: (-float(s.rank or 0.0), s.seed))
    sign = -1.0 if higher_is_better else 1.0
    return min(samples, key=lambda s: (sign * s.value, s.seed))


def reproduced_statistic(
    protocol: str,
    samples: list[Sample],
    n_best: int | None = None,
    higher_is_better: bool = False,
) -> Statistic:
    """The statistic the paper computed, from the records' samples (see RULE)."""
    if not samples:
        raise ValueError("no reproduced values")
    vals = _finite([s.value for s in samples])
    n = len(vals)
    mean = math.fsum(vals) / n
    std = _sd(vals)
    if protocol in ("mean", "retrain_k", "single"):
        return Statistic(mean, mean, std, n, None if std is None else std / math.sqrt(n))
    if protocol == "cell_property":
        spread = max(vals) - min(vals)
        if spread > 1e-9 * max(1.0, abs(mean)):
            raise ValueError(f"a cell property must be deterministic, got values {vals}")
        return Statistic(vals[0], mean, std, n, 0.0)
    if protocol in ("best_by_valid", "best_by_test"):
        used = _first(samples, n_best)
        uvals = [s.value for s in used]
        umean, ustd = math.fsum(uvals) / len(uvals), _sd(uvals)
        if protocol == "best_by_valid":
            best = _by_valid(used)
            if best is None:
                raise ValueError("best_by_valid: no record holds the selection metric")
            se = ustd
        else:
            best = _by_test(used, higher_is_better)
            se = None if ustd is None else ustd * order_statistic(len(used))[1]
        return Statistic(float(best.value), umean, ustd, len(used), se, best.seed, n)
    raise ValueError(f"unknown protocol {protocol!r}")


@lru_cache(maxsize=64)
def order_statistic(n: int) -> tuple[float, float]:
    """(mean, sd) of the maximum of n independent standard normals: the best of n draws is
    mean ± e_n·σ with spread d_n·σ (n = 1: (0, 1); n = 4: (1.0294, 0.7012))."""
    from scipy import integrate
    from scipy.stats import norm

    if n < 1:
        raise ValueError(f"best of {n} draws")
    if n == 1:
        return 0.0, 1.0

    def pdf(x: float) -> float:
        return n * float(norm.pdf(x)) * float(norm.cdf(x)) ** (n - 1)

    m1 = integrate.quad(lambda x: x * pdf(x), -12, 12)[0]
    m2 = integrate.quad(lambda x: x * x * pdf(x), -12, 12)[0]
    return m1, math.sqrt(max(m2 - m1 * m1, 0.0))


def half_unit(text: str | None, value: float) -> float:
    """Half a unit of the last printed digit: '3.3' -> 0.05, '574' -> 0.5, '3.30' -> 0.005."""
    try:
        exponent = Decimal((text or repr(float(value))).strip()).as_tuple().exponent
    except InvalidOperation:
        exponent = Decimal(repr(float(value))).as_tuple().exponent
    if not isinstance(exponent, int):
        return 0.0
    return 0.5 * 10.0 ** int(exponent)


def effective_std(claim_std: float | None, claim_std_text: str | None) -> float | None:
    """The claimed σ as the verdict takes it: at least half a unit of its last printed digit,
    so a printed 0.00 (four searches at one value) is σ ≥ 0.005, not a zero spread."""
    if claim_std is None:
        return None
    return max(float(claim_std), half_unit(claim_std_text, float(claim_std)))


def default_margin(
    claim_value: float,
    metric: str,
    settings: Verdict,
    claim_std: float | None = None,
    claim_std_text: str | None = None,
    claim_text: str | None = None,
) -> float:
    """The margin from the claim alone (no ranked rows to bound it): accuracy max(floor,
    2σ); params/FLOPs max(relative_floor·|claimed|, half a unit of the printed digit, 2σ)."""
    sigma = effective_std(claim_std, claim_std_text)
    two_sigma = 2.0 * sigma if sigma is not None else 0.0
    if metric_kind(metric) == "complexity":
        rounding = max(
            settings.relative_floor * abs(claim_value), half_unit(claim_text, claim_value)
        )
        return max(rounding, two_sigma)
    return max(settings.margin_floor, two_sigma) if sigma is not None else settings.margin_floor


# ------------------------------------------------------------------------ the CI of Δ


@dataclass(frozen=True)
class _Spread:
    """Var(Δ) = a_r·v_r + a_c·v_c with the df of each variance estimate."""

    a_r: float
    v_r: float | None
    df_r: float | None
    a_c: float
    v_c: float | None
    df_c: float | None
    shared: bool  # both sides use the same estimate (one borrowed the other's)

    def with_n(self, a_r: float, df_r: float | None) -> _Spread:
        return _Spread(a_r, self.v_r, df_r, self.a_c, self.v_c, self.df_c, self.shared)

    def se_df(self) -> tuple[float | None, float | None]:
        """SE of Δ and its Welch–Satterthwaite degrees of freedom (None when unknown)."""
        if self.v_r is None or self.v_c is None:
            return None, None
        if self.shared:  # one estimate on both sides: its own df
            return math.sqrt((self.a_r + self.a_c) * self.v_r), self.df_r
        terms = [(self.a_r * self.v_r, self.df_r), (self.a_c * self.v_c, self.df_c)]
        var = sum(t for t, _ in terms)
        if any(d is None or d <= 0 for _, d in terms):
            return math.sqrt(var), None
        positive = [(t, d) for t, d in terms if t > 0]
        if not positive:
            return 0.0, min(d for _, d in terms if d is not None)
        return math.sqrt(var), var * var / sum(t * t / d for t, d in positive if d)


def _coefficients(
    protocol: str, n: int, claim_n: int | None, n_best: int | None
) -> tuple[float, float]:
    """Multipliers of the per-run variance on each side: sd²/n for a mean, sd² for one draw,
    d_N²·sd² for a best-of-N draw."""
    if protocol in ("mean", "retrain_k"):
        return 1.0 / n, 1.0 / (claim_n or n)
    if protocol == "single":
        return 1.0 / n, 1.0
    if protocol == "best_by_test":
        d_n = order_statistic(n_best or n)[1]
        return d_n * d_n, d_n * d_n
    return 1.0, 1.0  # best_by_valid: one draw each


def _t(level: float, df: float) -> float:
    # scipy.stats.t.ppf's own kernel (the same values, bit for bit) without the
    # distribution object's argument checks: 60x faster, and the plan's sequential
    # simulation asks for it hundreds of thousands of times
    from scipy.special import stdtrit

    return float(stdtrit(df, 1.0 - (1.0 - level) / 2.0))


def _decided(delta: float, half: float, margin: float) -> str | None:
    """Strictly inside ±margin, or touching/outside it: a margin capped by a ranked gap
    then never lets the other row's own number pass, even with no spread at all."""
    if abs(delta) + half < margin - _EPS:
        return "reproduced"
    if abs(delta) - half >= margin - _EPS:
        return "not reproduced"
    return None


def _seeds_to_decide(
    spread: _Spread,
    protocol: str,
    n: int,
    delta: float,
    margin: float,
    level: float,
    s_from_repro: bool,
) -> int | None:
    """The fewest further seeds after which, at the current Δ and spreads, the interval
    would lie inside or outside ±margin (None: not within _MAX_EXTRA_SEEDS)."""
    for extra in range(1, _MAX_EXTRA_SEEDS + 1):
        n2 = n + extra
        a_r = 1.0 / n2 if protocol in ("mean", "retrain_k", "single") else spread.a_r
        df_r = (n2 - 1.0) if s_from_repro else spread.df_r
        se, df = spread.with_n(a_r, df_r).se_df()
        if se is None or df is None:
            continue
        if _decided(delta, _t(level, df) * se, margin) is not None:
            return extra
    return None


def _stability(
    s: float | None, n: int, sigma: float | None, claim_n: int | None, level: float
) -> tuple[bool, float | None, float | None]:
    """(unstable, s/σ, p) from the one-sided F-test of s²/σ² (df n−1 and claim_n−1, or n−1
    when the paper does not say how many runs its σ is over)."""
    if s is None or sigma is None or sigma <= 0 or n < 2:
        return False, None, None
    from scipy.stats import f

    ratio = s / sigma
    df_c = (claim_n - 1) if claim_n and claim_n >= 2 else (n - 1)
    p = float(f.sf(ratio * ratio, n - 1, df_c))
    return p < (1.0 - level) / 2.0, ratio, p


def _fmt(x: float) -> str:
    """A count or spread as a page shows it: 528.36, 3.349, 0.005."""
    return f"{x:.2f}" if abs(x) >= 10 else f"{x:.3f}"


def judge(
    claim_value: float,
    samples: list[Sample],
    *,
    metric: str,
    protocol: str = "mean",
    claim_std: float | None = None,
    claim_std_text: str | None = None,
    claim_n: int | None = None,
    claim_text: str | None = None,
    settings: Verdict | None = None,
    margin: float | None = None,
    convention: str | None = None,
) -> Judgement:
    """Judge one claim (see RULE).

    `claim_value` is the value judged (the corrected one for a known typo), `claim_text` its
    printed form (its digits give the rounding of exact counts), `claim_std`/`claim_std_text`
    the printed σ, `claim_n` the paper's number of runs (N of a best-of-N claim), `margin`
    the claim's margin (margins.claim_margin; None: default_margin from the claim alone),
    `convention` the FLOP counting convention the paper declared. Cost samples must come from
    GPU records (the caller filters them). Raises ValueError on samples it cannot judge."""
    cfg = settings or Verdict()
    kind = metric_kind(metric)
    if kind == "cost":
        return _judge_cost(claim_value, samples, protocol, cfg, margin)
    if protocol == "cell_property":
        return _judge_count(claim_value, samples, metric, claim_text, cfg, margin, convention)
    higher = HIGHER_IS_BETTER.get(metric, False)
    n_best = claim_n if protocol in ("best_by_valid", "best_by_test") else None
    stat = reproduced_statistic(protocol, samples, n_best, higher)
    if margin is None:
        margin = default_margin(claim_value, metric, cfg, claim_std, claim_std_text, claim_text)
    level = cfg.level
    delta = stat.value - claim_value
    sides = _best_sides(protocol, samples, n_best, higher)
    base = {
        "protocol": protocol,
        "kind": kind,
        "reproduced": stat,
        "claimed": claim_value,
        "delta": delta,
        "margin": margin,
        "level": level,
        "best_by_test": sides[0],
        "best_by_valid": sides[1],
    }
    if protocol == "best_by_test" and n_best and stat.n_available is not None:
        if stat.n_available < n_best:
            missing = n_best - stat.n_available
            return Judgement(
                "inconclusive",
                se=None,
                label="inconclusive",
                reason=f"the paper's best of {n_best}: only {stat.n_available} seed(s) recorded",
                seeds_to_decide=missing,
                **base,  # type: ignore[arg-type]
            )
    sigma = effective_std(claim_std, claim_std_text)
    s = stat.std
    a_r, a_c = _coefficients(protocol, stat.n, claim_n, n_best)
    v_r = s * s if s is not None else (sigma * sigma if sigma is not None else None)
    v_c = sigma * sigma if sigma is not None else (s * s if s is not None else None)
    # σ over an unstated number of runs: as many as reproduced (at least 2 runs, df ≥ 1)
    df_sigma = float(claim_n - 1) if claim_n and claim_n >= 2 else float(max(stat.n - 1, 1))
    df_s = float(stat.n - 1) if s is not None else None
    shared = s is None or sigma is None
    df_r = df_s if s is not None else df_sigma
    df_c = df_sigma if sigma is not None else df_s
    spread = _Spread(a_r, v_r, df_r, a_c, v_c, df_c, shared)
    se, df = spread.se_df()
    unstable, ratio, p = _stability(s, stat.n, sigma, claim_n, level)
    if se is None or df is None:
        return Judgement(
            "inconclusive",
            se=se,
            label="inconclusive",
            reason=(
                f"one seed and no claimed spread: Δ {delta:+.3g} cannot be bounded"
                if s is None
                else "the spread has no degrees of freedom"
            ),
            spread_ratio=ratio,
            **base,  # type: ignore[arg-type]
        )
    half = _t(level, df) * se
    lo, hi = delta - half, delta + half
    ci = {"ci_low": lo, "ci_high": hi, "df": df, "spread_ratio": ratio, "stability_p": p}
    interval = f"{level:.0%} CI of Δ [{lo:+.3g}, {hi:+.3g}]"
    if unstable:
        taken = "" if sigma == claim_std else f" (taken as {_fmt(sigma or 0.0)})"
        return Judgement(
            "not reproduced",
            se=se,
            label="not reproduced (unstable)",
            reason=(
                f"reproduced sd {_fmt(s or 0.0)} vs claimed σ {_fmt(claim_std or 0.0)}{taken}: "
                f"{ratio:.3g}× the claimed spread (F-test p = {p:.2g})"
            ),
            unstable=True,
            **ci,
            **base,  # type: ignore[arg-type]
        )
    decided = _decided(delta, half, margin)
    if decided == "reproduced":
        return Judgement(
            decided, se=se, label=decided, reason=f"{interval} inside ±{margin:.3g}", **ci, **base
        )
    if decided == "not reproduced":
        return Judgement(
            decided, se=se, label=decided, reason=f"{interval} outside ±{margin:.3g}", **ci, **base
        )
    extra = _seeds_to_decide(spread, protocol, stat.n, delta, margin, level, s is not None)
    more = (
        f"{extra} more seed(s) would decide at this spread"
        if extra is not None
        else "more seeds would not decide at this spread (the claim's own uncertainty is wider)"
    )
    return Judgement(
        "inconclusive",
        se=se,
        label="inconclusive",
        reason=f"{interval} straddles ±{margin:.3g}; {more}",
        seeds_to_decide=extra,
        **ci,
        **base,  # type: ignore[arg-type]
    )


def _best_sides(
    protocol: str, samples: list[Sample], n_best: int | None, higher: bool
) -> tuple[float | None, float | None]:
    """(best by test, best by valid) among the first N seeds, shown beside a best-of-N claim."""
    if protocol not in ("best_by_valid", "best_by_test") or not samples:
        return None, None
    used = _first(samples, n_best)
    by_valid = _by_valid(used)
    return _by_test(used, higher).value, None if by_valid is None else by_valid.value


def _judge_cost(
    claim_value: float, samples: list[Sample], protocol: str, cfg: Verdict, margin: float | None
) -> Judgement:
    stat = reproduced_statistic("mean" if protocol == "cell_property" else protocol, samples)
    limit = margin or cfg.cost_ratio
    ratio = stat.value / claim_value if claim_value > 0 else math.inf
    inside = 1.0 / limit - _EPS <= ratio <= limit + _EPS
    verdict = "reproduced" if inside else "not reproduced"
    return Judgement(
        verdict,
        protocol,
        "cost",
        stat,
        claim_value,
        stat.value - claim_value,
        limit,
        None,
        label=verdict,
        reason=f"reproduced/claimed ×{ratio:.2f} {'within' if inside else 'outside'} "
        f"[×{1 / limit:.2f}, ×{limit:g}]",
        ratio=ratio,
    )


def _judge_count(
    claim_value: float,
    samples: list[Sample],
    metric: str,
    claim_text: str | None,
    cfg: Verdict,
    margin: float | None,
    convention: str | None,
) -> Judgement:
    """An exact count (params/FLOPs of a published cell, or a benchmark table value): no
    spread, so Δ is its own interval. FLOPs are judged under every counting convention the
    record holds; the verdict names the one that reproduces the printed number."""
    from nasrepro.complexity import DEFAULT_CONVENTION

    stat = reproduced_statistic("cell_property", samples)
    counts = dict(samples[0].conventions) if metric == "flops_m" else {}
    declared = convention or (DEFAULT_CONVENTION if counts else None)
    if counts and declared not in counts:
        raise ValueError(f"no count under the declared convention {declared!r}")
    kind = metric_kind(metric)
    unit = 2 * half_unit(claim_text, claim_value)
    if margin is None:
        margin = default_margin(claim_value, metric, cfg, claim_text=claim_text)
    candidates = counts or {"": stat.value}

    def rank(name: str) -> tuple[int, int, float]:
        d = abs(candidates[name] - claim_value)
        return (0 if d <= unit / 2 + _EPS else 1, 0 if name == declared else 1, d)

    inside = sorted(
        (c for c in candidates if abs(candidates[c] - claim_value) <= margin + _EPS), key=rank
    )
    # reproduced: the convention that matches best (printed digit, the declared one, closest);
    # not reproduced: the closest count, whatever its convention
    chosen = inside[0] if inside else min(candidates, key=lambda c: rank(c)[2])
    value = candidates[chosen]
    delta = value - claim_value
    judged = Statistic(value, value, None, stat.n, 0.0)
    shown = f"{_fmt(value)} vs {claim_text or _fmt(claim_value)}"
    on = f" ({chosen})" if chosen else ""
    if inside:
        if unit and abs(delta) <= unit / 2 + _EPS:
            rounding, how = "printed digit", "to the printed digit"
        else:
            rounding, how = "relative floor", f"within ±{margin:.3g}"
        label = f"reproduced (convention {chosen})" if chosen else "reproduced"
        reason = f"{shown}{on}: {how}"
        if chosen and chosen != declared:
            reason += f"; the declared {declared} gives {_fmt(counts[declared])}"
        verdict = "reproduced"
    else:
        verdict = "not reproduced"
        if len(counts) > 1:
            label = "not reproduced under any convention"
        else:
            label = f"not reproduced (convention {chosen})" if chosen else "not reproduced"
        short = abs(delta) - margin
        if unit and short <= 0.01 * unit + _EPS:
            rounding = "edge"
            reason = (
                f"{shown}{on}: a rounding-edge miss, {_fmt(short)} beyond the ±{margin:.3g} the "
                "printed digit allows"
            )
        else:
            rounding = "gap"
            reason = f"{shown}{on}: a real gap, Δ {delta:+.3g} against ±{margin:.3g}"
    return Judgement(
        verdict,
        "cell_property",
        kind,
        judged,
        claim_value,
        delta,
        margin,
        0.0,
        label=label,
        reason=reason,
        ci_low=delta,
        ci_high=delta,
        convention=chosen or None,
        conventions=counts,
        rounding=rounding,
    )


# ------------------------------------------------------------------------ comparisons


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
