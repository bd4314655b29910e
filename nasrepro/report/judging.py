"""`nasrepro judge`: numbers produced anywhere, judged against one claim.

The same function the reports use (analysis.judge_values: the claim's protocol, margin and
FLOP convention), on values given by hand: another codebase's results, a cluster run, a
table. Nothing is read from or written to the registry.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nasrepro.report.analysis import claim_convention, judge_values
from nasrepro.report.margins import claim_margin
from nasrepro.report.verdict import Judgement, Sample
from nasrepro.suite import BEST_OF_N, HIGHER_IS_BETTER, load_suite


def parse_values(text: str, option: str) -> list[float]:
    """Comma-separated finite numbers, or ValueError naming the option and the bad item."""
    out = []
    for i, item in enumerate(text.split(",")):
        try:
            value = float(item.strip())
        except ValueError:
            raise ValueError(f"{option}: item {i + 1} {item.strip()!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{option}: item {i + 1} {item.strip()!r} is not finite")
        out.append(value)
    return out


def judge_numbers(
    suite_path: str | Path,
    claim_id: str,
    values: list[float],
    select_by: list[float] | None = None,
) -> dict[str, Any]:
    """The claim's verdict on `values` (seed i = the i-th value; `select_by`: each seed's
    selection metric for best-of-N claims), as the fields `nasrepro report --json` uses."""
    suite = load_suite(suite_path)
    claim = next((c for c in suite.claims if c.id == claim_id), None)
    if claim is None:
        raise ValueError(f"{suite_path}: no claim {claim_id!r}")
    if not values:
        raise ValueError("--values: no values")
    if select_by is not None and len(select_by) != len(values):
        raise ValueError(f"--select-by: {len(select_by)} value(s) for {len(values)} seed(s)")
    if claim.protocol == "best_by_valid" and select_by is None:
        raise ValueError(f"{claim_id} is the best of N by validation: give --select-by")
    if claim.protocol == "cell_property" and len(values) != 1:
        raise ValueError(f"{claim_id} is a property of one published cell: give one value")
    convention = claim_convention(suite, claim)
    selects = select_by or [None] * len(values)
    samples = [
        Sample(
            i,
            v,
            s if claim.protocol in BEST_OF_N else None,
            ((convention, v),) if convention else (),
        )
        for i, (v, s) in enumerate(zip(values, selects, strict=True))
    ]
    margin = claim_margin(suite, claim)
    j = judge_values(suite, claim, samples, margin)
    return judgement_fields(suite.suite, claim, j, margin.basis)


def judgement_fields(suite: str, claim: Any, j: Judgement, margin_basis: str) -> dict[str, Any]:
    rep = j.reproduced
    return {
        "suite": suite,
        "claim_id": claim.id,
        "table": claim.table,
        "row": claim.row,
        "dataset": claim.dataset,
        "metric": claim.metric,
        "protocol": claim.protocol,
        "claimed": {
            "value": claim.value,
            "std": claim.std,
            "n": claim.n_seeds,
            "judged_value": claim.judged_value,
        },
        "reproduced": {
            "value": rep.value,
            "mean": rep.mean,
            "std": rep.std,
            "n": rep.n,
            "se": rep.se,
            "chosen_seed": rep.chosen_seed,
        },
        "delta": j.delta,
        "margin": j.margin,
        "margin_basis": margin_basis,
        "ci_low": j.ci_low,
        "ci_high": j.ci_high,
        "level": j.level,
        "verdict": j.verdict,
        "label": j.label,
        "reason": j.reason,
        "seeds_to_decide": j.seeds_to_decide,
        "unstable": j.unstable,
        "spread_ratio": j.spread_ratio,
        "convention": j.convention,
        "conventions": dict(j.conventions) or None,
        "rounding": j.rounding,
        "best_by_test": j.best_by_test,
        "best_by_valid": j.best_by_valid,
        "higher_is_better": HIGHER_IS_BETTER.get(claim.metric, False),
    }


def format_judgement(f: dict[str, Any]) -> str:
    """The verdict and its reasoning, a few lines for a terminal."""
    c, r = f["claimed"], f["reproduced"]
    std = f" ± {c['std']:g}" if c["std"] is not None else ""
    n = f" (n={c['n']})" if c["n"] else ""
    sd = f" ± {r['std']:.3g}" if r["std"] is not None else ""
    chosen = f", seed {r['chosen_seed']}" if r["chosen_seed"] is not None else ""
    lines = [
        f"{f['suite']}/{f['claim_id']} ({f['table']}, {f['row']}): {f['metric']} on "
        f"{f['dataset']}, protocol {f['protocol']}",
        f"claimed:    {c['judged_value']:g}{std}{n}",
        f"reproduced: {r['value']:.4g}{sd} (n={r['n']}{chosen})",
        f"Δ = {f['delta']:+.4g}; margin ±{f['margin']:.3g} ({f['margin_basis']})",
    ]
    if f["ci_low"] is not None and f["ci_low"] != f["ci_high"]:
        lines.append(f"{f['level']:.0%} CI of Δ: [{f['ci_low']:+.4g}, {f['ci_high']:+.4g}]")
    if f["best_by_test"] is not None:
        valid = "—" if f["best_by_valid"] is None else f"{f['best_by_valid']:.4g}"
        lines.append(f"best by test {f['best_by_test']:.4g}; best by validation {valid}")
    lines.append(f"verdict: {f['label']} — {f['reason']}")
    return "\n".join(lines)
