"""Reports: claims (suites) joined with records (registry) -> pages, figures, JSON.

`build_report` is a pure function of the suite files and the registry: everything is
sorted, nothing is timestamped except what the records hold, and a number appears only
if a record holds it (error metrics may be derived as 100 − accuracy, and say so). Pages
and figures are written atomically; `check_report` regenerates them elsewhere and lists
the committed pages that differ (CI).
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from nasrepro.report.alpha_plot import alpha_figure_name, plot_alpha
from nasrepro.report.analysis import CLASSES, FULL, Analysis, analyse, budget_key, record_index
from nasrepro.report.claims_plot import claims_figure_name, plot_claims
from nasrepro.report.files import write_text_atomic
from nasrepro.report.remaining import hours_left_in_all, remaining
from nasrepro.report.render import render_index, render_page, tables_in_order
from nasrepro.report.site import build_site
from nasrepro.report.tuned import tuned_section
from nasrepro.report.verdict import COMPARISON_RULE, COMPARISON_VERDICTS, RULE, VERDICTS


@dataclass(frozen=True)
class SummaryRow:
    suite: str
    claims: int
    verdicts: dict[str, int]
    classes: dict[str, int]
    conclusions: dict[str, int]


def _analyses(suite_paths: list[Path], registry: Path) -> list[Analysis]:
    index = record_index(Path(registry))
    analyses = sorted(
        (analyse(Path(p), Path(registry), index) for p in suite_paths),
        key=lambda a: a.suite.suite,
    )
    names = Counter(a.suite.suite for a in analyses)
    dup = sorted(n for n, c in names.items() if c > 1)
    if dup:
        raise ValueError(f"suite name(s) {dup} given by more than one suite file")
    return analyses


def _summary(a: Analysis) -> SummaryRow:
    v, k, c = a.verdict_counts(), a.class_counts(), a.comparison_counts()
    return SummaryRow(
        a.suite.suite,
        len(a.rows),
        {x: v[x] for x in VERDICTS},
        {x: k[x] for x in CLASSES},
        {x: c[x] for x in COMPARISON_VERDICTS},
    )


def summary_table(suite_paths: list[Path], registry: Path) -> list[SummaryRow]:
    """Verdict, class and conclusion counts per suite (sorted by name); writes nothing."""
    return [_summary(a) for a in _analyses(suite_paths, registry)]


def format_summary(rows: list[SummaryRow]) -> str:
    """The summary rows as a plain-text table for the terminal."""
    headers = ["suite", "claims", *VERDICTS, "conclusions held/not held/inconcl./untested"]
    body = [
        [
            r.suite,
            r.claims,
            *[r.verdicts[v] for v in VERDICTS],
            "/".join(str(r.conclusions[c]) for c in COMPARISON_VERDICTS),
        ]
        for r in rows
    ]
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)


def _render_all(analyses: list[Analysis], registry: Path, out: Path) -> dict[Path, str | None]:
    """Every page (text) and figure (None: already written under `out`) of the report."""
    files: dict[Path, str | None] = {}
    left = {a.suite.suite: remaining(a, registry) for a in analyses}
    for a in analyses:
        name = a.suite.suite
        alpha: dict[tuple[str, str], str] = {}
        for exp_id in sorted(a.groups):
            for budget in sorted(a.groups[exp_id], key=budget_key):
                fig = alpha_figure_name(name, exp_id, budget)
                if plot_alpha(
                    a.groups[exp_id][budget], out / "figures" / fig, name, exp_id, budget
                ):
                    alpha[(exp_id, budget)] = f"figures/{fig}"
                    files[out / "figures" / fig] = None
        claims: dict[str, str] = {}
        for table, rows in tables_in_order(a):
            fig = claims_figure_name(name, table)
            if plot_claims(rows, out / "figures" / fig, name, table):
                claims[table] = f"figures/{fig}"
                files[out / "figures" / fig] = None
        files[out / f"{name}.md"] = render_page(a, claims, alpha, tuned_section(a), left[name])
    files[out / "index.md"] = render_index(
        analyses, left, hours_left_in_all(analyses, left, registry)
    )
    return files


def _pages(files: dict[Path, str | None]) -> dict[str, str]:
    return {p.name: t for p, t in files.items() if t is not None}


def build_report(
    suite_paths: list[Path], registry: Path, out: Path, site: Path | None = None
) -> list[Path]:
    """Write out/<suite>.md, out/figures/*.png and out/index.md (atomically each), and the
    HTML site of the same pages under `site` if given; return the written paths (figures,
    pages, index last; then the site's)."""
    out = Path(out)
    files = _render_all(_analyses(suite_paths, registry), Path(registry), out)
    for path, text in files.items():
        if text is not None:
            write_text_atomic(path, text)
    figures = sorted(p for p, t in files.items() if t is None)
    pages = [p for p, t in files.items() if t is not None]
    html = [] if site is None else build_site(_pages(files), out / "figures", Path(site))
    return [*figures, *pages, *html]


def check_report(
    suite_paths: list[Path], registry: Path, out: Path, site: Path | None = None
) -> list[str]:
    """Regenerate the report in a temporary directory; the pages under `out` that differ
    from it, are missing, or link a figure that is not there (empty: up to date). With
    `site`, the HTML site of the regenerated pages is written there (CI builds it so)."""
    out = Path(out)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        files = _render_all(_analyses(suite_paths, registry), Path(registry), Path(tmp))
        for path, text in sorted(files.items()):
            target = out / path.relative_to(tmp)
            if not target.exists():
                problems.append(f"{target}: missing")
            elif text is not None and target.read_text(encoding="utf-8") != text:
                problems.append(f"{target}: differs from the regenerated page")
        if site is not None:
            build_site(_pages(files), Path(tmp) / "figures", Path(site))
    return problems


def claims_json(a: Analysis) -> list[dict[str, Any]]:
    out = []
    for r in a.rows:
        c, j = r.claim, r.judgement
        rep = j.reproduced if j else None
        out.append(
            {
                "suite": a.suite.suite,
                "claim_id": c.id,
                "table": c.table,
                "row": c.row,
                "method": c.method,
                "space": c.space,
                "dataset": c.dataset,
                "metric": c.metric,
                "protocol": c.protocol,
                "select_by": c.resolved_select_by
                if c.protocol in ("best_by_valid", "best_by_test")
                else None,
                "class": r.klass,
                "experiment": c.experiment,
                "claimed": {
                    "value": c.value,
                    "std": c.std,
                    "n": c.n_seeds,
                    "corrected_value": c.corrected_value,
                    "correction": c.correction,
                    "judged_value": c.judged_value,
                },
                "reproduced": None
                if rep is None
                else {
                    "value": rep.value,
                    "mean": rep.mean,
                    "std": rep.std,
                    "n": rep.n,
                    "se": rep.se,
                    "chosen_seed": rep.chosen_seed,
                    "devices": list(r.devices),
                    "fixture": r.fixture,
                },
                "delta": j.delta if j else None,
                "margin": j.margin if j else (r.margin.value if r.margin else None),
                "margin_basis": r.margin.basis if r.margin else None,
                "margin_kind": j.kind if j else None,
                "ci_low": j.ci_low if j else None,
                "ci_high": j.ci_high if j else None,
                "level": j.level if j else None,
                "verdict": r.verdict,
                "label": r.label,
                "reason": r.reason,
                "seeds_to_decide": j.seeds_to_decide if j else None,
                "unstable": j.unstable if j else None,
                "spread_ratio": j.spread_ratio if j else None,
                "convention": j.convention if j else None,
                "conventions": dict(j.conventions) if j and j.conventions else None,
                "rounding": j.rounding if j else None,
                "best_by_test": j.best_by_test if j else None,
                "best_by_valid": j.best_by_valid if j else None,
                "budget": FULL if j else (r.other_budgets[0][0] if r.other_budgets else None),
                "notes": list(r.notes),
            }
        )
    return out


def _comparison_json(a: Analysis) -> list[dict[str, Any]]:
    return [
        {
            "suite": a.suite.suite,
            "id": c.comparison.id,
            "table": c.comparison.table,
            "statement": c.comparison.statement,
            "better": c.comparison.better,
            "worse": c.comparison.worse,
            "margin": c.comparison.margin,
            "difference": c.judgement.difference,
            "se": c.judgement.se,
            "verdict": c.judgement.verdict,
        }
        for c in a.comparisons
    ]


def report_json(suite_paths: list[Path], registry: Path) -> dict[str, Any]:
    """Every claim and comparison with its verdict, and the counts per suite."""
    analyses = _analyses(suite_paths, registry)
    return {  # the counts first (`| head` shows them), every claim last
        "summary": [{**_summary(a).__dict__, "budgets_run": a.budgets_run()} for a in analyses],
        "rule": RULE,
        "comparison_rule": COMPARISON_RULE,
        "comparisons": [c for a in analyses for c in _comparison_json(a)],
        "claims": [c for a in analyses for c in claims_json(a)],
    }


def dumps(data: dict[str, Any]) -> str:
    """JSON in the order the data was built (totals first), deterministic."""
    return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
