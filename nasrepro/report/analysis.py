"""Claims and comparisons of one suite judged against the records that back them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasrepro.registry import RecordIndex
from nasrepro.report.records import Backing, Taken, backing_records, take
from nasrepro.report.verdict import (
    ComparisonJudgement,
    Judgement,
    Statistic,
    judge,
    judge_comparison,
)
from nasrepro.suite import HIGHER_IS_BETTER, Claim, Comparison, Suite, load_suite, suite_hash

BUDGETS = ("full", "reduced", "smoke")
FULL = "full"
# Each claim is in exactly one class (suites/README.md lists them per paper).
CLASSES = ("artifact", "needs GPU + data", "not runnable")


def budget_key(budget: str) -> tuple[int, str]:
    return (BUDGETS.index(budget) if budget in BUDGETS else len(BUDGETS), budget)


def claim_class(suite: Suite, claim: Claim) -> str:
    """artifact: judged from a published cell in seconds on a CPU; needs GPU + data: a
    search or retraining at the paper's settings; not runnable: declared so, or its
    experiment is pending (a component missing)."""
    if claim.not_runnable:
        return "not runnable"
    exp = suite.experiments.get(claim.experiment or "")
    if exp is None or exp.pending:
        return "not runnable"
    return "artifact" if exp.is_artifact else "needs GPU + data"


@dataclass(frozen=True)
class ClaimRow:
    """One claim and its verdict; `other_budgets` are reduced/smoke statistics (not judged)."""

    claim: Claim
    klass: str
    verdict: str
    judgement: Judgement | None
    notes: tuple[str, ...]
    other_budgets: tuple[tuple[str, Statistic, bool], ...] = ()  # (budget, stat, fixture)
    devices: tuple[str, ...] = ()
    fixture: bool = False


@dataclass(frozen=True)
class ComparisonRow:
    comparison: Comparison
    better: ClaimRow
    worse: ClaimRow
    judgement: ComparisonJudgement


@dataclass
class Analysis:
    path: Path
    suite: Suite
    hash: str
    backing: Backing
    rows: list[ClaimRow]
    comparisons: list[ComparisonRow]

    @property
    def groups(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        return self.backing.groups

    def verdict_counts(self) -> Counter[str]:
        return Counter(r.verdict for r in self.rows)

    def class_counts(self) -> Counter[str]:
        return Counter(r.klass for r in self.rows)

    def comparison_counts(self) -> Counter[str]:
        return Counter(c.judgement.verdict for c in self.comparisons)

    def budgets_run(self) -> list[str]:
        used = {b for by_b in self.groups.values() for b in by_b}
        return sorted(used, key=budget_key)


def _unavailable_reason(claim: Claim, recs: list[dict[str, Any]]) -> str:
    from nasrepro.report.records import evaluation, evaluator_name

    evaluators = sorted({evaluator_name(r) for r in recs})
    listed = any(
        claim.metric in (evaluation(r)[1].get("unavailable") or [])
        or claim.metric.replace("_err", "_acc") in (evaluation(r)[1].get("unavailable") or [])
        for r in recs
    )
    why = "; the evaluator lists it as unavailable" if listed else ""
    return (
        f"{claim.metric} on {claim.dataset} is unavailable from the evaluator that ran "
        f"({', '.join(evaluators)}): no record holds it{why}"
    )


def _judge_taken(suite: Suite, claim: Claim, taken: Taken) -> Judgement:
    return judge(
        claim.judged_value,
        taken.samples,
        metric=claim.metric,
        protocol=claim.protocol,
        claim_std=claim.std,
        claim_n=claim.n_seeds,
        claim_text=claim.judged_text,
        settings=suite.verdict,
        tolerance=claim.tolerance,
    )


def judge_claim(suite: Suite, claim: Claim, backing: Backing, stale_count: int) -> ClaimRow:
    """The claim's verdict from the full-budget records of its experiment."""
    from nasrepro.report.records import is_fixture
    from nasrepro.report.verdict import reproduced_statistic

    klass = claim_class(suite, claim)
    notes: list[str] = []
    if claim.not_runnable:
        return ClaimRow(claim, klass, "not run", None, (f"not runnable: {claim.not_runnable}",))
    exp = suite.experiments.get(claim.experiment or "")
    if exp is not None and exp.pending:
        return ClaimRow(claim, klass, "not run", None, (f"pending: {exp.pending}",))
    by_budget = backing.groups.get(claim.experiment or "", {})
    if stale_count:
        notes.append(f"{stale_count} record(s) set aside (see 'Records set aside')")
    if not by_budget:
        notes.insert(0, f"no records of experiment {claim.experiment} at its current configuration")
        return ClaimRow(claim, klass, "not run", None, tuple(notes))

    taken = {b: take(claim, recs) for b, recs in by_budget.items()}
    fixture = {
        b: any(is_fixture(r) for r in by_budget[b]) and bool(taken[b].samples) for b in taken
    }
    for b in sorted(taken, key=budget_key):
        t = taken[b]
        if t.samples and t.missing:
            notes.append(f"{t.missing} {b} record(s) lack {claim.metric} on {claim.dataset}")
        if t.cpu_only:
            notes.append(f"{t.cpu_only} {b} record(s) timed off a GPU: cost not judged")
    if any(t.derived for t in taken.values()):
        acc = claim.metric[: -len("_err")] + "_acc"
        notes.append(f"{claim.metric} derived as 100 − {acc}")

    others: list[tuple[str, Statistic, bool]] = []
    for b in sorted(taken, key=budget_key):
        if b != FULL and taken[b].samples:
            try:
                others.append(
                    (b, reproduced_statistic(claim.protocol, taken[b].samples), fixture[b])
                )
            except ValueError as exc:
                notes.append(f"{b}: {exc}")
    full = taken.get(FULL)
    if full is not None and full.samples:
        try:
            j = _judge_taken(suite, claim, full)
        except ValueError as exc:
            notes.insert(0, str(exc))
            return ClaimRow(claim, klass, "not run", None, tuple(notes), tuple(others))
        if fixture.get(FULL):
            notes.append("full-budget numbers come from a FIXTURE benchmark: made up")
        stops = [r.get("sequential") or {} for r in by_budget[FULL]]
        stop = next((x for x in stops if x.get("stopped_early")), None)
        if stop is not None:  # sequential seeds (nasrepro/sequential.py)
            notes.append(f"seeds stopped early: {stop.get('why')}")
        if j.verdict == "inconclusive":
            notes.append("one seed cannot separate a miss from seed variance")
        if j.verdict == "not reproduced" and claim.protocol == "cell_property":
            notes.append(
                "the published cell gives another number than the paper prints: a finding about "
                "the paper (or its counting convention), not a seed effect"
            )
        return ClaimRow(
            claim, klass, j.verdict, j, tuple(notes), tuple(others), full.devices, fixture[FULL]
        )
    if FULL in by_budget:
        if full is not None and full.cpu_only:
            notes.insert(0, "search time measured on a CPU: GPU-days not comparable")
        else:
            notes.insert(0, _unavailable_reason(claim, by_budget[FULL]))
        return ClaimRow(claim, klass, "not run", None, tuple(notes), tuple(others))
    if others:
        notes.insert(0, "records only at reduced/smoke budgets: not judged against the claim")
        return ClaimRow(claim, klass, "other budget", None, tuple(notes), tuple(others))
    all_recs = [r for recs in by_budget.values() for r in recs]
    notes.insert(0, _unavailable_reason(claim, all_recs))
    return ClaimRow(claim, klass, "not run", None, tuple(notes))


def judge_comparisons(suite: Suite, rows: list[ClaimRow]) -> list[ComparisonRow]:
    by_id = {r.claim.id: r for r in rows}
    out = []
    for comp in suite.comparisons:
        a, b = by_id[comp.better], by_id[comp.worse]
        stat_a = a.judgement.reproduced if a.judgement else None
        stat_b = b.judgement.reproduced if b.judgement else None
        j = judge_comparison(
            stat_a,
            stat_b,
            higher_is_better=HIGHER_IS_BETTER.get(a.claim.metric, False),
            margin=comp.margin,
            z=suite.verdict.z,
        )
        out.append(ComparisonRow(comp, a, b, j))
    return out


_WARNED: set[str] = set()


def record_index(registry: Path) -> RecordIndex:
    """Every readable record; each unreadable file is named once on stderr and skipped."""
    import sys

    index, problems = RecordIndex.load(registry)
    for line in problems:
        if line not in _WARNED:
            _WARNED.add(line)
            print(f"nasrepro: warning: {line}; skipped", file=sys.stderr)
    return index


def analyse(path: Path, registry: Path, index: RecordIndex | None = None) -> Analysis:
    suite = load_suite(path)
    index = index if index is not None else record_index(registry)
    backing = backing_records(suite, path, index)
    stale_by_exp = Counter(r["experiment"] for r, _ in backing.stale)
    rows = [judge_claim(suite, c, backing, stale_by_exp[c.experiment or ""]) for c in suite.claims]
    return Analysis(path, suite, suite_hash(path), backing, rows, judge_comparisons(suite, rows))
