"""A suite's claims in MLflow: the report's verdicts where the runs are.

Every `nasrepro run` of a suite refreshes its view in the experiment `nasrepro/<suite>`:

- one run `<suite> · verdicts` (tag `nasrepro.kind = claims`): the verdict counts and the
  GPU-hours left as metrics, the judged claims as its description, every claim of the suite
  in `claims.json`;
- under it, one run `<experiment> · claims` per claim-bearing experiment that has records
  (whichever suite ran its trials): per claim `claim.<dataset>.<metric>` beside
  `reproduced.<dataset>.<metric>`, `delta.…`, `margin.…`, the confidence interval of Δ
  (`ci_low.…`, `ci_high.…`) and the per-seed values (`reproduced.….by_seed`, step = seed),
  the verdict, its label and reason and the FLOP convention as tags (`verdict.…`,
  `verdict_label.…`, `reason.…`, `convention.…`), and links to the trial runs behind the
  records.

Two claims of an experiment on the same dataset and metric both appear: their keys end in
`.<claim id>`. The previous view is deleted first (under the store lock), so the view is
always the registry's current state.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from nasrepro.report.analysis import Analysis, ClaimRow, analyse
from nasrepro.report.records import take
from nasrepro.report.remaining import remaining
from nasrepro.report.render import (
    claim_stat,
    judged_rows,
    margin_of,
    reason,
    suite_command,
    verdict_line,
)
from nasrepro.suite import Suite
from nasrepro.tracking import NOTE, SOURCE, Tracker, store_creation_lock

KIND = "claims"


def claim_keys(rows: list[ClaimRow]) -> dict[str, str]:
    """Claim id -> `<dataset>.<metric>`, or `<dataset>.<metric>.<claim id>` for every claim
    whose dataset and metric another claim of the same list shares (none is lost)."""
    base = {r.claim.id: f"{r.claim.dataset}.{r.claim.metric}" for r in rows}
    counts = Counter(base.values())
    return {cid: key if counts[key] == 1 else f"{key}.{cid}" for cid, key in base.items()}


def experiment_description(suite: Suite, suite_path: str | Path) -> str:
    """What the suite's MLflow experiment holds, shown above its runs."""
    venue = f" ({suite.paper.venue})" if suite.paper.venue else ""
    return (
        f"**{suite.paper.title}**{venue}: suite `{Path(suite_path).name}`, report page "
        f"`reports/{suite.suite}.md`.\n\n"
        f"- `{suite.suite} · verdicts` (tag `nasrepro.kind = claims`): every claim's verdict; "
        "its children, one per experiment, hold `claim.<dataset>.<metric>` beside "
        "`reproduced.<dataset>.<metric>`, `delta.*`, `margin.*` and the verdict and reason as "
        "tags, with links to the trial runs (whichever suite ran them).\n"
        "- `<experiment> <budget>` (tag `nasrepro.kind = reproduction`): the trials this "
        "suite ran, one child per seed with per-epoch curves, `alpha.*` diagnostics and "
        "artifacts."
    )


def _clean(x: float) -> float:
    """Δ and margins without float noise (-0.050658, not -0.05065799999999987)."""
    return float(f"{x:.12g}")


def _run_link(rec: dict[str, Any], uri: str) -> str:
    ml = rec.get("mlflow") or {}
    run, exp = ml.get("run_id"), ml.get("experiment_id")
    label = f"{rec.get('suite')}/{rec.get('experiment')} seed {rec.get('seed')}"
    if not run:
        return f"{label}: no MLflow run"
    if ml.get("tracking_uri") == uri and exp:
        return f"[{label}](#/experiments/{exp}/runs/{run})"
    return f"{label}: run `{run}` in another store"


def _experiment_run(
    tracker: Tracker, exp_id: str, parent: str, a: Analysis, exp: str, rows: list[ClaimRow]
) -> str:
    keys = claim_keys(rows)
    by_budget = a.groups[exp]
    budget = "full" if "full" in by_budget else sorted(by_budget)[0]
    records = by_budget[budget]
    tags = {
        "nasrepro.kind": KIND,
        "suite": a.suite.suite,
        "experiment": exp,
        "budget": budget,
        "claim_ids": ",".join(r.claim.id for r in rows),
        "trial_runs": ",".join(str((r.get("mlflow") or {}).get("run_id")) for r in records),
        "recorded_by": ",".join(sorted({str(r.get("suite")) for r in records})),
        SOURCE: str(a.path),
    }
    metrics: dict[str, float] = {}
    by_seed: dict[int, dict[str, float]] = {}
    counts = Counter(r.verdict for r in rows)
    judged = "judged on" if budget == "full" else "not judged (only the full budget is); from"
    lines = [
        f"**{', '.join(f'{n} {v}' for v, n in counts.most_common())}**: the claims of "
        f"`{exp}`, {judged} {len(records)} {budget}-budget record(s).",
        "",
    ]
    rows = sorted(rows, key=lambda r: r.verdict != "not reproduced")
    for r in rows:
        key, c, j = keys[r.claim.id], r.claim, r.judgement
        tags[f"verdict.{key}"] = r.verdict
        tags[f"claim_id.{key}"] = c.id
        metrics[f"claim.{key}"] = float(c.judged_value)
        if c.std is not None:
            metrics[f"claim.{key}.std"] = float(c.std)
        stat = j.reproduced if j is not None else next((s for b, s, _ in r.other_budgets), None)
        if stat is not None:
            metrics[f"reproduced.{key}"] = stat.value
            metrics[f"reproduced.{key}.n"] = float(stat.n)
            if stat.std is not None:
                metrics[f"reproduced.{key}.sd"] = stat.std
        if j is not None:
            metrics[f"delta.{key}"] = _clean(j.delta)
            metrics[f"margin.{key}"] = _clean(margin_of(j))
            if j.ci_low is not None and j.ci_high is not None and j.ci_low != j.ci_high:
                metrics[f"ci_low.{key}"] = _clean(j.ci_low)  # the interval the verdict reads
                metrics[f"ci_high.{key}"] = _clean(j.ci_high)
            tags[f"reason.{key}"] = reason(r)[:500]
            if r.label != r.verdict:  # e.g. "reproduced (convention thop)"
                tags[f"verdict_label.{key}"] = r.label
            if j.convention:
                tags[f"convention.{key}"] = j.convention
        shown = "—" if stat is None else claim_stat(c, stat)
        why = f": {reason(r)}" if j is not None else (f": {r.notes[0]}" if r.notes else "")
        lines.append(
            f"- **{r.label}** `{c.id}` ({c.table}, {c.row}): claimed {c.judged_value:g}, "
            f"reproduced {shown}{why}"
        )
        # each seed's value as the verdict read it (err from acc, FLOPs under its convention)
        convention = j.convention if j is not None else None
        for sample in take(c, records).samples:
            value = dict(sample.conventions).get(convention or "", sample.value)
            by_seed.setdefault(sample.seed, {})[f"reproduced.{key}.by_seed"] = value
    lines += ["", "Trial runs behind these numbers:", ""]
    lines += [f"- {_run_link(rec, tracker.uri)}" for rec in records]
    run = tracker.start_run(exp_id, f"{exp} · claims", tags, parent)
    tracker.log_metrics(run, metrics, 0)
    for seed, values in sorted(by_seed.items()):
        tracker.log_metrics(run, values, seed)
    tracker.describe(run, "\n".join(lines))
    tracker.end_run(run)
    return run


def _delete_previous(tracker: Tracker, exp_id: str) -> None:
    old = tracker.client.search_runs(
        [exp_id], filter_string=f"tags.`nasrepro.kind` = '{KIND}'", max_results=5000
    )
    for run in old:
        tracker.client.delete_run(run.info.run_id)


def publish_view(
    tracker: Tracker, suite_path: str | Path, registry: str | Path, experiment_id: str
) -> str:
    """Replace the suite's claims view in MLflow by the registry's current verdicts; the id
    of the new `<suite> · verdicts` run."""
    a = analyse(Path(suite_path), Path(registry))
    rem = remaining(a, Path(registry))
    v, c = a.verdict_counts(), a.comparison_counts()
    metrics = {f"claims.{k.replace(' ', '_')}": float(n) for k, n in v.items()}
    metrics["claims.total"] = float(len(a.rows))
    metrics["conclusions.tested"] = float(len(a.comparisons) - c["untested"])
    metrics["conclusions.total"] = float(len(a.comparisons))
    metrics["gpu_hours_left"] = rem.total.gpu_hours
    judged = judged_rows(a)  # the misses first: the description shows its first lines
    text = [
        verdict_line(a, rem).replace("([what is left](#what-is-left))", ""),
        "",
        *(f"- **{r.label}** `{r.claim.id}`: {reason(r)}" for r in judged),
        "",
        f"Left to run: `{suite_command(a)}` ({rem.total.gpu_hours:,.1f} {rem.device} "
        f"GPU-hours, `nasrepro plan`). Full report: `reports/{a.suite.suite}.md`.",
    ]
    from nasrepro.report.build import claims_json

    with store_creation_lock(tracker.uri):  # one view at a time, even from two processes
        _delete_previous(tracker, experiment_id)
        tags = {
            "nasrepro.kind": KIND,
            "suite": a.suite.suite,
            SOURCE: str(a.path),
            NOTE: "\n".join(text),
        }
        top = tracker.start_run(experiment_id, f"{a.suite.suite} · verdicts", tags)
        tracker.log_metrics(top, metrics, 0)
        tracker.log_json(top, claims_json(a), "claims.json")
        rows_by_exp: dict[str, list[ClaimRow]] = {}
        for row in a.rows:
            if row.claim.experiment in a.groups:
                rows_by_exp.setdefault(str(row.claim.experiment), []).append(row)
        for exp, rows in rows_by_exp.items():
            _experiment_run(tracker, experiment_id, top, a, exp, rows)
        tracker.end_run(top)
    return top
