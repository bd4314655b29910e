"""Markdown for report pages: one page per paper and the index.

Tables are written unpadded (a cell is as wide as its text), long notes become footnotes,
and long prose is wrapped, so no line of a page grows much past 200 characters.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from nasrepro.report.analysis import (
    CLASSES,
    FULL,
    Analysis,
    ClaimRow,
    budget_key,
)
from nasrepro.report.records import evaluator_text, is_fixture
from nasrepro.report.verdict import COMPARISON_RULE, RULE, VERDICTS, Statistic
from nasrepro.suite import Claim, metric_kind

WIDTH = 180  # wrap width of prose and footnotes
SHORT_NOTE = 40  # notes longer than this go to a footnote
SHORT_ROW = 40  # row labels longer than this are cut, in full in a footnote
PROTOCOL_TEXT = {
    "mean": "mean",
    "best_by_valid": "best by valid",
    "best_by_test": "best by test",
    "retrain_k": "1 cell retrained",
    "single": "single run",
    "cell_property": "cell property",
}


class Footnotes:
    """Numbered footnotes of one page; the same text gets the same number."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def ref(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return f"[^{self.texts.index(text) + 1}]"

    def render(self) -> list[str]:
        out = []
        for i, text in enumerate(self.texts, start=1):
            out += textwrap.wrap(
                f"[^{i}]: {text}", WIDTH, subsequent_indent="    ", break_on_hyphens=False
            )
        return out


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


def claimed_text(claim: Claim, notes: Footnotes) -> str:
    shown = claim.value_text or _claimed_num(claim.value)
    if claim.corrected_value is not None:
        fixed = claim.corrected_text or _claimed_num(claim.corrected_value)
        shown = f"{shown} → {fixed}{notes.ref(f'{claim.id}: typo: {claim.correction}')}"
    std = f" ± {_claimed_num(claim.std)}" if claim.std is not None else ""
    n = f" (n={claim.n_seeds})" if claim.n_seeds else ""
    return f"{shown}{std}{n}"


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


def delta_text(row: ClaimRow) -> tuple[str, str]:
    j = row.judgement
    if j is None:
        return "—", "—"
    if j.kind == "cost":
        return f"×{j.ratio:.2f}", f"×{j.margin:g}"
    digits = 3 if row.claim.metric == "params_m" else 2
    return f"{j.delta:+.{digits}f}", f"{j.margin:.{digits}f}"


def interval_text(row: ClaimRow) -> str:
    """The confidence interval of Δ ("—" for exact counts and cost)."""
    j = row.judgement
    if j is None or j.ci_low is None or j.ci_high is None or j.ci_low == j.ci_high:
        return "—"
    digits = 3 if row.claim.metric == "params_m" else 2
    return f"[{j.ci_low:+.{digits}f}, {j.ci_high:+.{digits}f}]"


def notes_text(row: ClaimRow, notes: Footnotes) -> str:
    parts = []
    j = row.judgement
    if j is not None and j.reason:
        parts.append(notes.ref(f"{row.claim.id}: {j.reason}"))
    if j is not None and j.conventions:
        counts = ", ".join(f"{c} {v:.2f}" for c, v in j.conventions.items())
        parts.append(notes.ref(f"{row.claim.id}: FLOPs by convention: {counts}"))
    if j is not None and j.best_by_test is not None and row.claim.protocol == "best_by_test":
        if j.best_by_valid is not None:
            parts.append(f"by valid {fmt(row.claim.metric, j.best_by_valid)}")
    if j is not None and j.best_by_test is not None and row.claim.protocol == "best_by_valid":
        parts.append(f"best test {fmt(row.claim.metric, j.best_by_test)}")
    if row.claim.note:
        parts.append(notes.ref(f"{row.claim.id}: {row.claim.note}"))
    for text in row.notes:
        parts.append(text if len(text) <= SHORT_NOTE else notes.ref(f"{row.claim.id}: {text}"))
    if row.other_budgets and row.judgement is not None:
        also = "; ".join(f"{b}: {claim_stat(row.claim, s)}" for b, s, _ in row.other_budgets)
        parts.append(notes.ref(f"{row.claim.id}: also {also}"))
    return " ".join(parts)


# -------------------------------------------------------------------------------- pages


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


def summary_line(a: Analysis) -> str:
    v, k, c = a.verdict_counts(), a.class_counts(), a.comparison_counts()
    verdicts = ", ".join(f"{v[x]} {x}" for x in VERDICTS)
    classes = ", ".join(f"{k[x]} {x}" for x in CLASSES)
    comps = ", ".join(f"{c[x]} {x}" for x in ("held", "not held", "inconclusive", "untested"))
    return (
        f"{len(a.rows)} claims ({classes}): {verdicts}. "
        f"{len(a.comparisons)} conclusions: {comps or 'none'}."
    )


def _comparison_table(a: Analysis, notes: Footnotes) -> list[str]:
    if not a.comparisons:
        return ["The suite declares no comparative claims.", ""]

    def side(r: ClaimRow) -> str:
        if r.judgement is None:
            return f"{r.claim.id}: —"
        s = r.judgement.reproduced
        return f"{r.claim.id}: {claim_stat(r.claim, s)}"

    rows: list[list[object]] = []
    for c in a.comparisons:
        j = c.judgement
        d = "—" if j.difference is None else f"{j.difference:+.2f}"
        se = "—" if j.se is None else f"{j.se:.2f}"
        note = notes.ref(f"{c.comparison.id}: {c.comparison.note}") if c.comparison.note else ""
        rows.append(
            [
                c.comparison.id,
                c.comparison.table,
                _short(c.comparison.statement, f"{c.comparison.id}: ", notes),
                side(c.better),
                side(c.worse),
                d,
                se,
                f"{j.margin:g}",
                j.verdict + note,
            ]
        )
    headers = ["conclusion", "table", "claim", "A (better)", "B", "d", "SE_d", "margin", "verdict"]
    return [md_table(headers, rows), ""]


def _claims_tables(a: Analysis, figures: dict[str, str], notes: Footnotes) -> list[str]:
    out: list[str] = []
    headers = [
        "claim",
        "row",
        "dataset",
        "metric",
        "protocol",
        "claimed",
        "reproduced ± sd (n)",
        "Δ",
        "CI of Δ",
        "margin",
        "verdict",
        "notes",
    ]
    for table, rows in tables_in_order(a):
        out += [f"### {table}", ""]
        if table in figures:
            out += [f"![claimed vs reproduced, {table}]({figures[table]})", ""]
        body = []
        for r in rows:
            delta, tol = delta_text(r)
            body.append(
                [
                    r.claim.id,
                    _row_label(r.claim, notes),
                    r.claim.dataset,
                    r.claim.metric,
                    PROTOCOL_TEXT[r.claim.protocol],
                    claimed_text(r.claim, notes),
                    reproduced_text(r),
                    delta,
                    interval_text(r),
                    tol,
                    r.label,
                    notes_text(r, notes),
                ]
            )
        out += [md_table(headers, body), ""]
    return out


def _short(text: str, owner: str, notes: Footnotes, width: int = 60) -> str:
    """`text` if it fits in `width`, else its start and a footnote with all of it."""
    if len(text) <= width:
        return text
    return text[: width - 3] + "…" + notes.ref(owner + text)


def _row_label(claim: Claim, notes: Footnotes) -> str:
    return _short(claim.row, f"{claim.id}: row ", notes, SHORT_ROW)


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
        [textwrap.shorten(why, 170, placeholder="…"), n]
        for why, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return ["### Not runnable, by reason", "", md_table(["reason", "claims"], rows), ""]


def _settings_table(a: Analysis, notes: Footnotes) -> list[str]:
    """The resolved full-budget settings of every experiment, one line each."""
    from nasrepro.plan import resolve_experiment

    rows: list[list[object]] = []
    for exp_id, exp in a.suite.experiments.items():
        config, seeds, _ = resolve_experiment(a.suite, exp_id, FULL, str(a.path))
        if exp.genotype is not None:
            cell_text = exp.genotype if len(exp.genotype) <= 40 else notes.ref(exp.genotype)
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
            held = "pending " + notes.ref(f"{exp_id}: pending: {exp.pending}")
        evaluator = config["evaluator"]
        resolved = json.dumps(config, sort_keys=True, separators=(", ", ": "))
        rows.append(
            [
                exp_id + notes.ref(f"{exp_id} resolved at the full budget: {resolved}"),
                config["space"],
                config["dataset"],
                cell_text,
                methods,
                search,
                selector,
                evaluator,
                ", ".join(config["eval_datasets"]),
                seeds,
                held,
            ]
        )
    headers = [
        "experiment",
        "space",
        "data",
        "cell",
        "methods",
        "search",
        "selector",
        "evaluator",
        "eval on",
        "seeds",
        "records",
    ]
    return [md_table(headers, rows), ""]


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
) -> str:
    s = a.suite
    notes = Footnotes()
    venue = f", {s.paper.venue}" if s.paper.venue else ""
    n_current = sum(len(r) for by_b in a.groups.values() for r in by_b.values())
    v = s.verdict
    out = [
        f"# {s.suite}: {s.paper.title}",
        "",
        f"Paper: `{s.paper.file}`{venue}. Suite file `{a.path.name}`, version {s.version}, "
        f"sha256 `{a.hash}`.",
        f"Records used: {n_current}; records set aside: {len(a.backing.stale)}.",
        "",
        *wrap("Summary: " + summary_line(a)),
        "",
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
        "## Conclusions",
        "",
        *_comparison_table(a, notes),
        "## Claims",
        "",
        *wrap(
            "One section per paper table, the paper's own rows first, then baselines. "
            "Classes: artifact = judged from a published cell in seconds on a CPU; needs GPU + "
            "data = a search or retraining at the paper's settings; not runnable = declared so."
        ),
        "",
        *_claims_tables(a, claim_figures, notes),
        *_not_runnable_table(a),
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
    out += _settings_table(a, notes)
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
        stale = Counter(
            (r["experiment"], r["budget"], reason[:120]) for r, reason in a.backing.stale
        )
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
    if notes.texts:
        out += ["## Notes", "", *notes.render(), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def render_index(analyses: list[Analysis]) -> str:
    rows = []
    for a in analyses:
        v, k, c = a.verdict_counts(), a.class_counts(), a.comparison_counts()
        rows.append(
            [
                f"[{a.suite.suite}]({a.suite.suite}.md)",
                a.suite.paper.title[:60],
                len(a.rows),
                f"{v['reproduced']} / {v['not reproduced']} / {v['inconclusive']}",
                f"{c['held']} / {c['not held']} / {c['inconclusive']} / {c['untested']}",
                f"{k['artifact']} / {k['needs GPU + data']} / {k['not runnable']}",
                f"{v['not run']} / {v['other budget']}",
                ", ".join(a.budgets_run()) or "none",
            ]
        )
    headers = [
        "paper",
        "title",
        "claims",
        "reproduced / not / inconclusive",
        "conclusions held / not held / inconclusive / untested",
        "artifact / GPU + data / not runnable",
        "not run / other budget",
        "budgets run",
    ]
    return "\n".join(
        [
            "# nasrepro reports: does it reproduce?",
            "",
            *wrap(
                "One line per paper. Claims are judged only from full-budget records; "
                "conclusions are the papers' comparative claims (A beats B). Classes: artifact "
                "= judged from a published cell on a CPU in seconds; GPU + data = needs a search "
                "or retraining at the paper's settings; not runnable = declared so, with the "
                "reason on the paper's page. The rules are on every page and in docs/verdicts.md."
            ),
            "",
            md_table(headers, rows),
            "",
        ]
    )
