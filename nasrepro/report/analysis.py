"""Claims and comparisons of one suite judged against the records that back them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nasrepro.registry import RecordIndex
from nasrepro.report.margins import Margin, claim_margin
from nasrepro.report.records import Backing, Taken, backing_records, metric_value, take
from nasrepro.report.verdict import (
    ComparisonJudgement,
    Judgement,
    Sample,
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
    """One claim and its verdict; `other_budgets` are reduced/smoke statistics (not judged).

    `judgement` (verdict.Judgement) holds the margin, the CI of Δ, the reason, the FLOP
    convention and per-convention counts; `margin` says how the claim's margin was derived."""

    claim: Claim
    klass: str
    verdict: str
    judgement: Judgement | None
    notes: tuple[str, ...]
    other_budgets: tuple[tuple[str, Statistic, bool], ...] = ()  # (budget, stat, fixture)
    devices: tuple[str, ...] = ()
    fixture: bool = False
    margin: Margin | None = None

    @property
    def label(self) -> str:
        """The verdict as a page shows it: "reproduced (convention thop)", "not reproduced
        (unstable)"; the verdict class otherwise."""
        return self.judgement.label if self.judgement and self.judgement.label else self.verdict

    @property
    def reason(self) -> str:
        """One line: why this verdict."""
        if self.judgement is not None and self.judgement.reason:
            return self.judgement.reason
        return self.notes[0] if self.notes else ""


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


def claim_convention(suite: Suite, claim: Claim) -> str | None:
    """The FLOP counting convention a flops_m claim was printed under: its own, else the
    suite's (the paper's own rows)."""
    if claim.metric != "flops_m":
        return None
    return claim.convention or suite.verdict.flops_convention


def judge_values(
    suite: Suite, claim: Claim, samples: list[Sample], margin: Margin | None = None
) -> Judgement:
    """The claim judged on `samples` with its protocol, margin and convention: what the
    report and `nasrepro judge` both call."""
    margin = margin or claim_margin(suite, claim)
    return judge(
        claim.judged_value,
        samples,
        metric=claim.metric,
        protocol=claim.protocol,
        claim_std=claim.std,
        claim_std_text=claim.std_text,
        claim_n=claim.n_seeds,
        claim_text=claim.judged_text,
        settings=suite.verdict,
        margin=margin.value,
        convention=claim_convention(suite, claim),
    )


def _judge_taken(suite: Suite, claim: Claim, taken: Taken, margin: Margin) -> Judgement:
    return judge_values(suite, claim, taken.samples, margin)


def judge_claim(suite: Suite, claim: Claim, backing: Backing, stale_count: int) -> ClaimRow:
    """The claim's verdict from the full-budget records of its experiment; every row carries
    the claim's margin, judged or not."""
    row = _judge_claim(suite, claim, backing, stale_count)
    return row if row.margin is not None else replace(row, margin=claim_margin(suite, claim))


def _judge_claim(suite: Suite, claim: Claim, backing: Backing, stale_count: int) -> ClaimRow:
    from nasrepro.report.records import is_fixture
    from nasrepro.report.verdict import reproduced_statistic

    klass = claim_class(suite, claim)
    notes: list[str] = []
    margin = claim_margin(suite, claim)
    if claim.not_runnable:
        return ClaimRow(claim, klass, "not run", None, (f"not runnable: {claim.not_runnable}",))
    exp = suite.experiments.get(claim.experiment or "")
    if exp is not None and exp.pending:
        return ClaimRow(claim, klass, "not run", None, (f"pending: {exp.pending}",))
    by_budget = backing.groups.get(claim.experiment or "", {})
    if stale_count:
        notes.append(f"{stale_count} record(s) set aside (see 'Records set aside')")
    for budget in ("full", "reduced", "smoke"):
        clash = backing.conflicting_seeds(claim.experiment or "", budget)
        if clash:
            seeds = ", ".join(str(x) for x in clash)
            notes.append(
                f"{budget}: seed(s) {seeds} have records that disagree (a conflict, see "
                "'Conflicting records'): not judged"
            )
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
                stat = reproduced_statistic(
                    claim.protocol,
                    taken[b].samples,
                    claim.n_seeds if claim.protocol in ("best_by_valid", "best_by_test") else None,
                    HIGHER_IS_BETTER.get(claim.metric, False),
                )
                others.append((b, stat, fixture[b]))
            except ValueError as exc:
                notes.append(f"{b}: {exc}")
    full = taken.get(FULL)
    if full is not None and full.samples:
        try:
            j = _judge_taken(suite, claim, full, margin)
        except ValueError as exc:
            notes.insert(0, str(exc))
            return ClaimRow(
                claim, klass, "not run", None, tuple(notes), tuple(others), margin=margin
            )
        if fixture.get(FULL):
            notes.append("full-budget numbers come from a FIXTURE benchmark: made up")
        stops = [r.get("sequential") or {} for r in by_budget[FULL]]
        stop = next((x for x in stops if x.get("stopped_early")), None)
        if stop is not None:  # sequential seeds (nasrepro/sequential.py)
            notes.append(f"seeds stopped early: {stop.get('why')}")
        if not margin.separates:
            notes.append(
                f"the margin floor is not below half the gap {margin.gap:.3g} to "
                f"{margin.nearest}: the paper's own numbers are closer than the floor"
            )
        if j.verdict == "not reproduced" and claim.protocol == "cell_property":
            notes.append(
                "the published cell gives another number than the paper prints: a finding about "
                "the paper, not a seed effect"
            )
        return ClaimRow(
            claim,
            klass,
            j.verdict,
            j,
            tuple(notes),
            tuple(others),
            full.devices,
            fixture[FULL],
            margin,
        )
    if FULL in by_budget:
        if full is not None and full.cpu_only:
            notes.insert(0, "search time measured on a CPU: GPU-days not comparable")
        elif claim.protocol == "best_by_valid" and any(
            metric_value(r, claim.dataset, claim.metric) is not None for r in by_budget[FULL]
        ):
            notes.insert(0, "the seed best_by_valid selects has no retraining recorded yet")
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


def record_index(registry: Path) -> RecordIndex:
    """Every verified record; each unreadable or unverified file is named once on stderr and
    skipped. A registry directory that does not exist is a RegistryError: a typo'd
    --registry must not turn every verdict into "not run"."""
    import sys

    from nasrepro.registry import unreported

    index, problems = RecordIndex.load(registry, missing_ok=False)
    for line in unreported(problems):
        print(f"nasrepro: warning: {line}; skipped", file=sys.stderr)
    return index


def analyse(path: Path, registry: Path, index: RecordIndex | None = None) -> Analysis:
    suite = load_suite(path)
    index = index if index is not None else record_index(registry)
    backing = backing_records(suite, path, index)
    stale_by_exp = Counter(r["experiment"] for r, _ in backing.stale)
    rows = [judge_claim(suite, c, backing, stale_by_exp[c.experiment or ""]) for c in suite.claims]
    return Analysis(path, suite, suite_hash(path), backing, rows, judge_comparisons(suite, rows))
