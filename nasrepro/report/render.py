"""Markdown for report pages: one page per paper and the index.

A paper page leads with what a reader came for, on its first screen: the verdict counts,
every judged claim with its one-line reason, the conclusions that were tested, and what is
left to run with its cost. The full per-table sections follow, their not-run rows folded in
a `<details>` block, each note in its row; then the rule, settings and records. The HTML
site (nasrepro/report/site.py) renders these same pages.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from nasrepro.report.analysis import (
    CLASSES,
    FULL,
    Analysis,
    ClaimRow,
    ComparisonRow,
    budget_key,
)
from nasrepro.report.records import evaluator_text, is_fixture
from nasrepro.report.remaining import Left, Remaining, suite_command
from nasrepro.report.verdict import COMPARISON_RULE, RULE, VERDICTS, Judgement, Statistic
from nasrepro.suite import Claim, metric_kind

WIDTH = 180  # wrap width of prose
PROTOCOL_TEXT = {
    "mean": "mean",
    "best_by_valid": "best by valid",
    "best_by_test": "best by test",
    "retrain_k": "1 cell retrained",
    "single": "single run",
    "cell_property": "cell property",
}
METRIC_TEXT = {
    "test_acc": "test accuracy (%)",
    "valid_acc": "valid accuracy (%)",
    "test_err": "test error (%)",
    "valid_err": "valid error (%)",
    "top1_err": "top-1 error (%)",
    "top5_err": "top-5 error (%)",
    "params_m": "params (M)",
    "flops_m": "FLOPs (M)",
    "search_cost_gpu_days": "search cost (GPU-days)",
    "trajectory_best_test_acc": "best test accuracy over the search's epochs (%, oracle)",
}
# Verdict marks: a reader scanning a column sees the outcome before reading the word.
MARKS = {"reproduced": "✓", "not reproduced": "✗", "inconclusive": "?"}
JUDGED = ("reproduced", "not reproduced", "inconclusive")


def cell(text: object) -> str:
    """A Markdown table cell: pipes escaped (NB201 genotypes are full of them)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def wrap(text: str, prefix: str = "") -> list[str]:
    return textwrap.wrap(
        text, WIDTH, initial_indent=prefix, subsequent_indent=prefix, break_on_hyphens=False
    )


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading (and site.py gives it too): lower case, punctuation
    dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def details(summary: str, body: list[str]) -> list[str]:
    """A folded block; the blank lines let GitHub and the site render Markdown inside."""
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>", ""]


def is_verdict(verdict: str, base: str) -> bool:
    """`not reproduced (unstable)` counts as not reproduced, and so on."""
    return verdict == base or verdict.startswith(base + " (")


def mark(verdict: str, label: str | None = None) -> str:
    """The verdict (or its label, e.g. "not reproduced (unstable)") after its mark."""
    base = next((v for v in MARKS if is_verdict(verdict, v)), None)
    shown = label or verdict
    return f"{MARKS[base]} {shown}" if base else shown


# ------------------------------------------------------------------------------ numbers


def fmt(metric: str, v: float) -> str:
    if metric == "params_m":
        return f"{v:.3f}"
    if metric == "flops_m":
        return f"{v:.1f}"
    if metric_kind(metric) == "cost":
        return f"{v:.3g}"
    return f"{v:.2f}"


def _claimed_num(v: float) -> str:
    for digits in (0, 1, 2, 3, 4):
        if abs(round(v, digits) - v) < 1e-9:
            return f"{v:.{digits}f}"
    return f"{v:.4f}"


def claimed_text(claim: Claim) -> str:
    shown = claim.value_text or _claimed_num(claim.value)
    if claim.corrected_value is not None:
        shown = f"{shown} → {claim.corrected_text or _claimed_num(claim.corrected_value)}"
    std = f" ± {_claimed_num(claim.std)}" if claim.std is not None else ""
    n = f" (n={claim.n_seeds})" if claim.n_seeds else ""
    return f"{shown}{std}{n}"


def metric_text(metric: str) -> str:
    return METRIC_TEXT.get(metric, metric)


def stat_text(metric: str, s: Statistic, protocol: str, select_by: str = "") -> str:
    if protocol == "cell_property":
        return fmt(metric, s.value)
    if protocol == "best_by_valid":
        return f"{fmt(metric, s.value)} (seed {s.chosen_seed} of {s.n} by {select_by})"
    if protocol == "best_by_test":
        return f"{fmt(metric, s.value)} (seed {s.chosen_seed}, best test of {s.n})"
    sd = f" ± {fmt(metric, s.std)}" if s.std is not None else ""
    return f"{fmt(metric, s.value)}{sd} (n={s.n})"


def claim_stat(claim: Claim, s: Statistic) -> str:
    return stat_text(claim.metric, s, claim.protocol, claim.resolved_select_by)


def reproduced_text(row: ClaimRow) -> str:
    c = row.claim
    if row.judgement is not None:
        text = claim_stat(c, row.judgement.reproduced)
        if row.judgement.kind == "cost":
            text = f"{fmt(c.metric, row.judgement.reproduced.value)} on {', '.join(row.devices)}"
        return text + (" (fixture)" if row.fixture else "")
    others = [
        f"{b}: {claim_stat(c, s)}" + (" (fixture)" if fix else "")
        for b, s, fix in row.other_budgets
    ]
    return "; ".join(others) or "—"


def margin_of(j: Judgement) -> float:
    """The margin Δ is held to (a ratio for search cost)."""
    return float(j.margin)


def delta_text(row: ClaimRow) -> tuple[str, str]:
    j = row.judgement
    if j is None:
        return "—", "—"
    if j.kind == "cost":
        return f"×{j.ratio:.2f}", f"×{margin_of(j):g}"
    digits = 3 if row.claim.metric == "params_m" else 2
    return f"{j.delta:+.{digits}f}", f"{margin_of(j):.{digits}f}"


def interval_text(row: ClaimRow) -> str:
    """The confidence interval of Δ ("—" for exact counts and cost)."""
    j = row.judgement
    if j is None or j.ci_low is None or j.ci_high is None or j.ci_low == j.ci_high:
        return "—"
    digits = 3 if row.claim.metric == "params_m" else 2
    return f"[{j.ci_low:+.{digits}f}, {j.ci_high:+.{digits}f}]"


def convention_of(row: ClaimRow) -> str:
    """The FLOP counting convention a claim was judged under, where one applies."""
    j = row.judgement
    return str(j.convention) if j is not None and j.convention else ""


def has_interval(rows: list[ClaimRow]) -> bool:
    return any(interval_text(r) != "—" for r in rows)


def reason(row: ClaimRow) -> str:
    """One line: why the claim got its verdict (the verdict engine's own reason, else one
    from Δ and the margin)."""
    j = row.judgement
    if j is None or j.reason:
        return row.reason
    claim, m = row.claim, row.claim.metric
    claimed = claim.judged_text or _claimed_num(claim.judged_value)
    got = fmt(m, j.reproduced.value)
    if j.kind == "cost":
        inside = "within" if row.verdict == "reproduced" else "outside"
        return f"reproduced/claimed = {j.ratio:.2f}, {inside} ×{margin_of(j):g} either way"
    gap = f"|Δ| {abs(j.delta):.3g}"
    margin = f"margin {margin_of(j):.3g}"
    if is_verdict(row.verdict, "reproduced"):
        return f"{gap} ≤ {margin}"
    if is_verdict(row.verdict, "inconclusive"):
        return f"{gap} > {margin}, but one seed cannot tell a miss from seed variance"
    if claim.protocol == "cell_property":
        return f"the published cell gives {got}, not {claimed}: the paper counted otherwise"
    return f"{gap} > {margin} with n = {j.reproduced.n} seeds"


def notes_text(row: ClaimRow) -> str:
    """Every note of a claim, in full, for its row."""
    parts = []
    j = row.judgement
    if row.claim.correction:
        parts.append(f"typo: {row.claim.correction}")
    if j is not None and row.reason:
        parts.append(row.reason)
    if j is not None and j.conventions:
        counts = ", ".join(f"{c} {v:.2f}" for c, v in j.conventions.items())
        parts.append(f"FLOPs by convention: {counts}")
    if j is not None and j.best_by_test is not None and row.claim.protocol == "best_by_test":
        if j.best_by_valid is not None:
            parts.append(f"by valid {fmt(row.claim.metric, j.best_by_valid)}")
    if j is not None and j.best_by_test is not None and row.claim.protocol == "best_by_valid":
        parts.append(f"best test {fmt(row.claim.metric, j.best_by_test)}")
    if row.claim.note:
        parts.append(row.claim.note)
    parts += row.notes
    if row.other_budgets and row.judgement is not None:
        also = "; ".join(f"{b}: {claim_stat(row.claim, s)}" for b, s, _ in row.other_budgets)
        parts.append(f"also {also}")
    return " · ".join(p.strip() for p in parts if p.strip())


def claim_anchor(claim_id: str) -> str:
    return f"claim-{claim_id}"


def claim_link(claim_id: str) -> str:
    return f"[{claim_id}](#{claim_anchor(claim_id)})"


def what(claim: Claim) -> str:
    return f"{claim.row} · {claim.dataset} {metric_text(claim.metric)}"


# -------------------------------------------------------------------------- first screen


def own_methods(a: Analysis) -> set[str]:
    """The paper's own methods: those its comparisons claim to be better."""
    by_id = {c.id: c for c in a.suite.claims}
    return {by_id[c.better].method for c in a.suite.comparisons}


def tables_in_order(a: Analysis) -> list[tuple[str, list[ClaimRow]]]:
    """Claims per paper table (in the suite's order), the paper's own rows first."""
    own = own_methods(a)
    tables: dict[str, list[ClaimRow]] = {}
    for row in a.rows:
        tables.setdefault(row.claim.table, []).append(row)
    return [
        (t, sorted(rows, key=lambda r: 0 if r.claim.method in own else 1))
        for t, rows in tables.items()
    ]


def verdict_line(a: Analysis, rem: Remaining) -> str:
    """The verdict counts in one bold line, the classes, the conclusions and the cost of
    what is left."""
    v, k, c = a.verdict_counts(), a.class_counts(), a.comparison_counts()
    judged = " · ".join(f"{v[x]} {x}" for x in VERDICTS if v[x] or x in JUDGED)
    classes = ", ".join(f"{k[x]} {x}" for x in CLASSES)
    tested = len(a.comparisons) - c["untested"]
    comps = ", ".join(f"{c[x]} {x}" for x in ("held", "not held", "inconclusive") if c[x])
    return (
        f"**Verdicts: {judged}** (of {len(a.rows)} claims: {classes}). "
        f"**Conclusions: {tested} of {len(a.comparisons)} tested**"
        + (f" ({comps})." if comps else ".")
        + f" **Left to run: {rem.total.claims} claims, about {_hours(rem.total.gpu_hours)} "
        f"{rem.device} GPU-hours** ([what is left](#what-is-left))."
    )


def judged_rows(a: Analysis) -> list[ClaimRow]:
    """The claims with a full-budget verdict, not-reproduced first, in table order."""
    order = {v: i for i, v in enumerate(("not reproduced", "inconclusive", "reproduced"))}
    rows = [r for _, rs in tables_in_order(a) for r in rs if r.judgement is not None]
    return sorted(rows, key=lambda r: order.get(r.verdict.split(" (")[0], 0))


def _judged_table(a: Analysis) -> list[str]:
    rows = judged_rows(a)
    if not rows:
        return ["No claim has a full-budget record yet: see [What is left](#what-is-left).", ""]
    conv, ci = any(convention_of(r) for r in rows), has_interval(rows)
    headers = ["claim", "row · data · metric", "table", "claimed", "reproduced ± sd (n)", "Δ"]
    headers += [*(["CI of Δ"] if ci else []), "margin", "verdict", "why"]
    headers += ["convention"] if conv else []
    body = []
    for r in rows:
        delta, margin = delta_text(r)
        body.append(
            [
                claim_link(r.claim.id),
                what(r.claim),
                r.claim.table,
                claimed_text(r.claim),
                reproduced_text(r),
                delta,
                *([interval_text(r)] if ci else []),
                margin,
                mark(r.verdict, r.label),
                reason(r),
                *([convention_of(r)] if conv else []),
            ]
        )
    return [md_table(headers, body), ""]


def _side(r: ClaimRow) -> str:
    if r.judgement is None:
        return f"{r.claim.id}: —"
    return f"{r.claim.id}: {claim_stat(r.claim, r.judgement.reproduced)}"


def _comparison_rows(rows: list[ComparisonRow]) -> list[list[object]]:
    out: list[list[object]] = []
    for c in rows:
        j = c.judgement
        out.append(
            [
                c.comparison.id,
                c.comparison.table,
                c.comparison.statement
                + (f" · {c.comparison.note}" if c.comparison.note else ""),
                _side(c.better),
                _side(c.worse),
                "—" if j.difference is None else f"{j.difference:+.2f}",
                "—" if j.se is None else f"{j.se:.2f}",
                f"{j.margin:g}",
                j.verdict,
            ]
        )
    return out


COMPARISON_HEADERS = ["conclusion", "table", "claim", "A (better)", "B", "d", "SE_d", "margin"]


def _tested_conclusions(a: Analysis) -> list[str]:
    tested = [c for c in a.comparisons if c.judgement.verdict != "untested"]
    if not a.comparisons:
        return ["The suite declares no comparative claims.", ""]
    if not tested:
        return [
            f"None yet: each of the {len(a.comparisons)} conclusions compares claims that are "
            "not run ([all conclusions](#conclusions)).",
            "",
        ]
    return [md_table([*COMPARISON_HEADERS, "verdict"], _comparison_rows(tested)), ""]


def _hours(v: float) -> str:
    return f"{v:,.1f}"


def _left_row(a: Analysis, left: Left, label: str) -> list[object]:
    return [
        label,
        left.claims,
        len(left.experiments),
        left.trials,
        ", ".join(left.datasets) or "—",
        _hours(left.gpu_hours),
        f"`{suite_command(a, left.table)}`",
    ]


def _what_is_left(a: Analysis, rem: Remaining) -> list[str]:
    t = rem.total
    lines = wrap(
        f"{t.claims} claim(s) still to run, {t.trials} trial(s): about {_hours(t.gpu_hours)} "
        f"GPU-hours on an {rem.device}: the units of work `nasrepro plan` costs for them "
        "(each search and each retraining a claim reads, counted once; units already in "
        "the store are free), from measured step times, scaled where not measured "
        "(docs/plan.md). "
        f"{t.not_runnable} claim(s) cannot be run here ([reasons](#not-runnable-by-reason))"
        + (
            f"; {t.recorded_not_judged} have records that lack their metric (see their notes)."
            if t.recorded_not_judged
            else "."
        )
    )
    if not t.claims:
        return [*lines, ""]
    headers = ["table", "claims", "experiments", "trials", "datasets"]
    headers += [f"GPU-hours ({rem.device})", "command"]
    rows = [_left_row(a, left, left.table or "") for left in rem.tables]
    rows.append(_left_row(a, t, "**all**"))
    return [*lines, "", md_table(headers, rows), ""]


# ------------------------------------------------------------------------ table sections


CLAIM_HEADERS = ["claim", "row", "data · metric", "protocol", "claimed"]


def _claim_cells(r: ClaimRow) -> list[object]:
    return [
        f'<a id="{claim_anchor(r.claim.id)}"></a>{r.claim.id}',
        r.claim.row,
        f"{r.claim.dataset} {metric_text(r.claim.metric)}",
        PROTOCOL_TEXT[r.claim.protocol],
        claimed_text(r.claim),
    ]


def _table_section(table: str, rows: list[ClaimRow], figure: str | None) -> list[str]:
    out = [f"### {table}", ""]
    if figure:
        out += [f"![{table}: claimed vs reproduced, margins and verdicts]({figure})", ""]
    shown = [r for r in rows if r.judgement is not None or r.other_budgets]
    folded = [r for r in rows if r not in shown]
    if shown:
        conv, ci = any(convention_of(r) for r in shown), has_interval(shown)
        headers = [*CLAIM_HEADERS, "reproduced ± sd (n)", "Δ", *(["CI of Δ"] if ci else [])]
        headers += ["margin", "verdict", *(["convention"] if conv else []), "notes"]
        body = []
        for r in shown:
            delta, margin = delta_text(r)
            body.append(
                [
                    *_claim_cells(r),
                    reproduced_text(r),
                    delta,
                    *([interval_text(r)] if ci else []),
                    margin,
                    mark(r.verdict, r.label),
                    *([convention_of(r)] if conv else []),
                    notes_text(r),
                ]
            )
        out += [md_table(headers, body), ""]
    if folded:
        classes = Counter(r.klass for r in folded)
        why = ", ".join(f"{n} {k}" for k, n in sorted(classes.items()))
        body = [[*_claim_cells(r), r.klass, notes_text(r)] for r in folded]
        out += details(
            f"{len(folded)} claim(s) of {table} not run ({why})",
            [md_table([*CLAIM_HEADERS, "class", "notes"], body)],
        )
    return out


def _claims_sections(a: Analysis, figures: dict[str, str]) -> list[str]:
    out: list[str] = []
    for table, rows in tables_in_order(a):
        out += _table_section(table, rows, figures.get(table))
    return out


def _not_runnable_table(a: Analysis) -> list[str]:
    """Claims that cannot be run, grouped by their reason."""
    reasons: Counter[str] = Counter()
    for r in a.rows:
        if r.klass != "not runnable":
            continue
        if r.claim.not_runnable:
            reasons[f"declared: {r.claim.not_runnable}"] += 1
        else:
            exp = a.suite.experiments.get(r.claim.experiment or "")
            reasons[f"pending experiment: {exp.pending if exp else 'missing'}"] += 1
    if not reasons:
        return []
    rows: list[list[object]] = [
        [why, n] for why, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return ["## Not runnable, by reason", "", md_table(["reason", "claims"], rows), ""]


def _settings_table(a: Analysis) -> list[str]:
    """The resolved full-budget settings of every experiment, one line each, and each
    resolved configuration in full (folded)."""
    from nasrepro.plan import resolve_experiment

    rows: list[list[object]] = []
    resolved: list[str] = []
    for exp_id, exp in a.suite.experiments.items():
        config, seeds, _ = resolve_experiment(a.suite, exp_id, FULL, str(a.path))
        if exp.genotype is not None:
            cell_text = exp.genotype if len(exp.genotype) <= 40 else "published cell"
            search = "— (published cell)"
            methods = selector = "—"
        elif exp.query is not None:  # a search by benchmark queries (search/queries.py)
            cell_text = "queried"
            q = config["query"]
            search = ", ".join(f"{k} {v}" for k, v in q.items() if k != "algorithm")
            methods, selector = str(q["algorithm"]), "best queried"
        else:
            cell_text = "searched"
            s = config["search"]
            search = (
                f"{s['epochs']} ep, bs {s['batch_size']}, lr {s['lr']:g}, α lr {s['arch_lr']:g}, "
                f"order {s['order']}"
            )
            methods = "+".join(config["methods"]) or "darts"
            selector = config["selector"]
        recs = a.groups.get(exp_id, {})
        held = ", ".join(f"{b} {len(recs[b])}" for b in sorted(recs, key=budget_key)) or "none"
        if exp.pending:
            held = f"pending: {exp.pending}"
        rows.append(
            [
                exp_id,
                config["space"],
                config["dataset"],
                cell_text,
                methods,
                search,
                selector,
                config["evaluator"],
                ", ".join(config["eval_datasets"]),
                seeds,
                held,
            ]
        )
        text = json.dumps(config, sort_keys=True, separators=(", ", ": "))
        resolved += [f"- `{exp_id}`: `{text}`"]
    headers = ["experiment", "space", "data", "cell", "methods", "search", "selector"]
    headers += ["evaluator", "eval on", "seeds", "records"]
    return [
        md_table(headers, rows),
        "",
        *details("Resolved configurations at the full budget (JSON)", resolved),
    ]


# -------------------------------------------------------------------- records section


def _genotype_lines(geno: str) -> list[str]:
    """A genotype as a code block, DARTS cells split into normal/reduce lines."""
    if geno.startswith("Genotype(") and "reduce=" in geno:
        parts = (
            geno[len("Genotype(") :]
            .replace(", reduce", ",\nreduce")
            .replace(", normal_concat", ",\nnormal_concat")
        )
        return ["  ```", "  Genotype(", *[f"    {p}" for p in parts.split("\n")], "  ```"]
    return ["  ```", f"  {geno}", "  ```"]


def _record_table(recs: list[dict[str, Any]], budget: str) -> str:
    keys = sorted(
        {
            (ds, m)
            for r in recs
            for ds, ms in (r.get("metrics") or {}).items()
            if isinstance(ms, dict)  # not the flat search_cost_gpu_days
            for m in ms
        }
    )
    tag = " (smoke)" if budget == "smoke" else ""
    headers = ["seed", "arch", *[f"{ds} {m}" for ds, m in keys], "MLflow run", "wall s", "created"]
    rows = []
    for r in recs:
        prov = r.get("provenance") or {}
        vals = []
        for ds, m in keys:
            v = ((r.get("metrics") or {}).get(ds) or {}).get(m)
            vals.append("—" if v is None else f"{fmt(m, float(v))}{tag}")
        wall = prov.get("wall_time_s")
        rows.append(
            [
                r["seed"],
                "—" if r.get("arch_index") is None else r["arch_index"],
                *vals,
                (r.get("mlflow") or {}).get("run_id") or "—",
                "—" if wall is None else f"{float(wall):.1f}",
                prov.get("created_at") or "—",
            ]
        )
    return md_table(headers, rows)


def _budget_description(a: Analysis, budget: str, recs: list[dict[str, Any]]) -> str:
    texts = sorted({str(r["budget_description"]) for r in recs if r.get("budget_description")})
    if texts:
        return "; ".join(texts)
    if budget == FULL:
        return "the paper's settings"
    rule = a.suite.budgets.get(budget)  # type: ignore[call-overload]
    return rule.description if rule else "not described"


def _experiment_records(a: Analysis, exp_id: str, figures: dict[tuple[str, str], str]) -> list[str]:
    lines = [f"### {exp_id}", ""]
    exp = a.suite.experiments.get(exp_id)
    if exp is not None and exp.description:
        lines += [*wrap(exp.description), ""]
    by_budget = a.groups.get(exp_id, {})
    for budget in sorted(by_budget, key=budget_key):
        recs = by_budget[budget]
        tag = " (smoke)" if budget == "smoke" else ""
        lines += [f"#### {budget} budget{tag}", ""]
        search_ds = sorted({str(r.get("search_dataset")) for r in recs})
        given = sorted({str(r["given_genotype"]) for r in recs if r.get("given_genotype")})
        origin = (
            f"published cell {', '.join(given)}"
            if given and len(", ".join(given)) < 60
            else ("published cell" if given else f"search dataset {', '.join(search_ds)}")
        )
        lines.append(
            f"- {len(recs)} record(s), seeds {', '.join(str(r['seed']) for r in recs)}; {origin}"
        )
        lines += wrap(f"budget: {_budget_description(a, budget, recs)}", "- ")
        others = sorted(
            {
                f"{r['suite']}/{r['experiment']}"
                for r in recs
                if (r["suite"], r["experiment"]) != (a.suite.suite, exp_id)
            }
        )
        if others:  # records are matched by configuration, so another suite's run counts
            lines += wrap("same configuration, recorded for " + ", ".join(others), "- ")
        dropped = a.backing.duplicates.get((exp_id, budget), 0)
        if dropped:
            lines.append(f"- {dropped} further record(s) with identical results counted once")
        lines.append("- cells:")
        for geno, count in sorted(
            Counter(str(r.get("genotype")) for r in recs).items(), key=lambda kv: (-kv[1], kv[0])
        ):
            lines.append(f"  - × {count}")
            lines += _genotype_lines(geno)
        evaluators = Counter(evaluator_text(r) for r in recs)
        lines += wrap(
            "evaluator: " + "; ".join(f"{t} × {c}" for t, c in sorted(evaluators.items())), "- "
        )
        n_fix = sum(is_fixture(r) for r in recs)
        lines.append(
            f"- fixture: **{n_fix} of {len(recs)} record(s) scored by a FIXTURE benchmark "
            "(made-up numbers)**"
            if n_fix
            else "- fixture: none"
        )
        provs = [r.get("provenance") or {} for r in recs]
        commits = sorted({str(p.get("git_commit", "?"))[:10] for p in provs})
        dirty = sum(bool(p.get("git_dirty")) for p in provs)
        devices = sorted({str(p.get("device", "?")) for p in provs})
        nondet = sum(p.get("deterministic") is False for p in provs)
        lines += wrap(
            f"provenance: git {', '.join(commits)} ({dirty} dirty), device "
            f"{', '.join(devices)}, {nondet} non-deterministic",
            "- ",
        )
        fig = figures.get((exp_id, budget))
        if fig:
            lines += ["", f"![softmax(α), {exp_id}, {budget} budget{tag}]({fig})"]
        lines += ["", _record_table(recs, budget), ""]
    return lines


def render_page(
    a: Analysis,
    claim_figures: dict[str, str],
    alpha_figures: dict[tuple[str, str], str],
    tuned: list[str],
    remaining: Remaining,
) -> str:
    s = a.suite
    venue = f"{s.paper.venue} · " if s.paper.venue else ""
    n_current = sum(len(r) for by_b in a.groups.values() for r in by_b.values())
    v = s.verdict
    out = [
        f"# {s.suite}: {s.paper.title}",
        "",
        *wrap(
            f"{venue}paper `{s.paper.file}` · suite `{a.path.name}` (version {s.version}, "
            f"sha256 `{a.hash[:12]}…`) · records used {n_current}, set aside "
            f"{len(a.backing.stale)} · [all papers](index.md)"
        ),
        "",
        *wrap(verdict_line(a, remaining)),
        "",
        "## Judged claims",
        "",
        *_judged_table(a),
        "## Conclusions tested",
        "",
        *_tested_conclusions(a),
        "## What is left",
        "",
        *_what_is_left(a, remaining),
        "## Claims by table",
        "",
        *wrap(
            "One section per paper table, the paper's own rows first, then baselines; the rows "
            "not run are folded. Classes: artifact = judged from a published cell in seconds on "
            "a CPU; needs GPU + data = a search or retraining at the paper's settings; not "
            "runnable = declared so. Figures: Δ = reproduced − claimed per judged claim with its "
            "confidence interval, the shaded bar its ±margin, the mark its verdict."
        ),
        "",
        *_claims_sections(a, claim_figures),
        *_not_runnable_table(a),
        "## Conclusions",
        "",
    ]
    if a.comparisons:
        out += [md_table([*COMPARISON_HEADERS, "verdict"], _comparison_rows(a.comparisons)), ""]
    else:
        out += ["The suite declares no comparative claims.", ""]
    out += [
        "## Verdict rule",
        "",
        *wrap(RULE, "> "),
        ">",
        *wrap(COMPARISON_RULE, "> "),
        "",
        *wrap(
            f"Here level = {v.level:.0%}, margin_floor = {v.margin_floor:g} points, relative_floor "
            f"= {v.relative_floor:g}, cost_ratio = {v.cost_ratio:g}, comparisons' z = {v.z:g}; "
            + (
                f"the paper's own FLOPs are counted under convention {v.flops_convention} "
                f"({v.flops_evidence})"
                if v.flops_evidence
                else f"the paper does not say how it counted FLOPs ({v.flops_convention} assumed)"
            )
            + ". Claims are judged only against "
            "full-budget records of their experiment's resolved configuration at the current "
            "fidelity version, whichever suite ran it; reduced and smoke numbers are shown, "
            "labelled, and never judged."
        ),
        "",
        "## Budgets used",
        "",
    ]
    used: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for by_b in a.groups.values():
        for budget, recs in by_b.items():
            used[budget].extend(recs)
    if not used:
        out += ["None: no records of these experiments' configurations.", ""]
    for budget in sorted(used, key=budget_key):
        tag = " (smoke)" if budget == "smoke" else ""
        out += wrap(
            f"**{budget}**{tag}: {_budget_description(a, budget, used[budget])} "
            f"({len(used[budget])} record(s))",
            "- ",
        )
    out += ["", "## Experiments", "", "Resolved settings at the full budget:", ""]
    out += _settings_table(a)
    for exp_id in sorted(a.groups):
        out += _experiment_records(a, exp_id, alpha_figures)
    if a.backing.stale:
        out += [
            "## Records set aside",
            "",
            "Written for this suite's experiments but not used for any verdict: records are "
            "matched by resolved configuration and fidelity version, not by suite file.",
            "",
        ]
        stale = Counter((r["experiment"], r["budget"], reason) for r, reason in a.backing.stale)
        out.append(
            md_table(
                ["experiment", "budget", "why", "records"],
                [[*k, c] for k, c in sorted(stale.items())],
            )
        )
        out.append("")
    if a.backing.conflicts:
        out += [
            "## Conflicting records",
            "",
            "Several records of one trial whose results disagree: never resolved by time, so "
            "the seed is not judged until the wrong record is removed.",
            "",
        ]
        clashes: list[list[object]] = [
            [exp, budget, seed, ", ".join(Path(str(r.get("_path", "?"))).name for r in recs)]
            for (exp, budget), clash in sorted(a.backing.conflicts.items())
            for seed, recs in clash
        ]
        out += [md_table(["experiment", "budget", "seed", "records"], clashes), ""]
    out += tuned
    return "\n".join(out).rstrip("\n") + "\n"


def render_index(
    analyses: list[Analysis], remaining: dict[str, Remaining], hours_left: float
) -> str:
    rows = []
    device = ""
    totals: Counter[str] = Counter()
    for a in analyses:
        v, c = a.verdict_counts(), a.comparison_counts()
        rem = remaining[a.suite.suite]
        device = rem.device
        totals.update(v)
        totals["claims"] += len(a.rows)
        totals["tested"] += len(a.comparisons) - c["untested"]
        totals["comparisons"] += len(a.comparisons)
        rows.append(
            [
                f"[{a.suite.suite}]({a.suite.suite}.md)",
                a.suite.paper.title,
                len(a.rows),
                v["reproduced"],
                v["not reproduced"],
                v["inconclusive"],
                v["not run"] + v["other budget"],
                f"{len(a.comparisons) - c['untested']} / {len(a.comparisons)}",
                _hours(rem.total.gpu_hours),
            ]
        )
    rows.append(
        [
            "**all**",
            "",
            totals["claims"],
            totals["reproduced"],
            totals["not reproduced"],
            totals["inconclusive"],
            totals["not run"] + totals["other budget"],
            f"{totals['tested']} / {totals['comparisons']}",
            f"{_hours(hours_left)} (shared units once)",
        ]
    )
    headers = [
        "paper",
        "title",
        "claims",
        "✓ reproduced",
        "✗ not reproduced",
        "? inconclusive",
        "not run",
        "conclusions tested",
        f"GPU-hours to run the rest ({device or 'estimated'})",
    ]
    return "\n".join(
        [
            "# nasrepro reports: does it reproduce?",
            "",
            *wrap(
                "One line per paper; its page opens with every judged claim and why, the "
                "conclusions tested, and what is left to run with its cost. Claims are judged "
                "only from full-budget records; the rules are on every page and in "
                "docs/verdicts.md. GPU-hours are `nasrepro plan`'s estimates from measured step "
                "times of the trials each paper's not-run claims need; papers share some trials, "
                "which the last line counts once."
            ),
            "",
            md_table(headers, rows),
            "",
        ]
    )
