"""Reports: claims (suite) joined with records (registry) -> Markdown pages and α plots.

`build_report` is a pure function of the suite files and the registry: everything is
sorted, nothing is timestamped except what the records hold, and a number appears only
if a record holds it (error metrics may be derived as 100 − accuracy, and say so).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from nasrepro.plan import experiment_records
from nasrepro.registry import RecordIndex
from nasrepro.report.verdict import RULE, VERDICTS, Judgement, judge
from nasrepro.suite import HIGHER_IS_BETTER, Claim, Suite, load_suite, suite_hash

BUDGETS = ("full", "reduced", "smoke")
FULL = "full"


def _budget_key(budget: str) -> tuple[int, str]:
    return (BUDGETS.index(budget) if budget in BUDGETS else len(BUDGETS), budget)


# ------------------------------------------------------------------------------ analysis


@dataclass(frozen=True)
class ClaimRow:
    """One claim's line in the report; the cells are already formatted."""

    claim: Claim
    verdict: str
    claimed: str
    reproduced: str
    delta: str
    notes: tuple[str, ...]
    judgement: Judgement | None = None


@dataclass(frozen=True)
class SummaryRow:
    suite: str
    claims: int
    reproduced: int
    not_reproduced: int
    inconclusive: int
    not_run: int
    other_budget: int


@dataclass
class _Analysis:
    path: Path
    suite: Suite
    hash: str
    rows: list[ClaimRow]
    # experiment -> budget -> records in use (newest record per seed), sorted by seed
    groups: dict[str, dict[str, list[dict[str, Any]]]]
    superseded: dict[tuple[str, str], int]
    # records of this suite's experiments set aside, with the reason (plan.experiment_records)
    stale: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def summary(self) -> SummaryRow:
        counts = Counter(r.verdict for r in self.rows)
        return SummaryRow(
            self.suite.suite,
            len(self.rows),
            counts["reproduced"],
            counts["not reproduced"],
            counts["inconclusive"],
            counts["not run"],
            counts["other budget"],
        )


def _metric_value(rec: dict[str, Any], dataset: str, metric: str) -> tuple[float, bool] | None:
    """(value, derived) of `metric` on `dataset`, derived = computed as 100 − accuracy."""
    on = (rec.get("metrics") or {}).get(dataset) or {}
    if on.get(metric) is not None:
        return float(on[metric]), False
    if metric.endswith("_err"):
        acc = on.get(metric[: -len("_err")] + "_acc")
        if acc is not None:
            return 100.0 - float(acc), True
    return None


def _evaluation(rec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ev = rec.get("evaluation") or {}
    return ev, ev.get("source") or {}


def _is_fixture(rec: dict[str, Any]) -> bool:
    ev, src = _evaluation(rec)
    return bool(ev.get("fixture") or src.get("fixture"))


def _evaluator_name(rec: dict[str, Any]) -> str:
    ev, src = _evaluation(rec)
    return str(src.get("backend") or ev.get("evaluator") or "unknown evaluator")


def _evaluator_text(rec: dict[str, Any]) -> str:
    """Where a record's numbers came from, e.g. `nb201-table (embedded NATS 200-epoch
    table, sha256 cb5d77…)`."""
    _, src = _evaluation(rec)
    name = _evaluator_name(rec)
    parts = []
    if name == "nb201-table":
        parts.append("embedded NATS 200-epoch table")
    elif src.get("release"):
        parts.append(str(src["release"]))
    elif src.get("path"):
        parts.append(Path(str(src["path"])).name)
    if src.get("hp") is not None and name != "nb201-table":
        parts.append(f"hp={src['hp']}")
    if src.get("sha256"):
        parts.append(f"sha256 {str(src['sha256'])[:6]}…")
    if _is_fixture(rec):
        parts.append("FIXTURE: made-up numbers")
    return f"{name} ({', '.join(parts)})" if parts else name


def _num(v: float) -> str:
    return f"{v:.2f}"


def _claimed_num(v: float) -> str:
    # A claim is shown with as many decimals as the paper gave (2 to 4), never rounded away.
    for digits in (2, 3, 4):
        if abs(round(v, digits) - v) < 1e-9:
            return f"{v:.{digits}f}"
    return f"{v:.4f}"


def _mean_std(values: list[float]) -> str:
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return f"{_num(mean)} (n=1)"
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return f"{_num(mean)} ± {_num(std)} (n={n})"


def _claimed_cell(claim: Claim) -> str:
    n = f"n={claim.n_seeds}" if claim.n_seeds else "n=?"
    if claim.statistic == "best":
        of = claim.n_seeds if claim.n_seeds else "N=?"
        return f"best of {of}: {_claimed_num(claim.value)}"
    std = f" ± {_claimed_num(claim.std)}" if claim.std is not None else ""
    return f"{_claimed_num(claim.value)}{std} ({n})"


def _unavailable_reason(claim: Claim, recs: list[dict[str, Any]]) -> str:
    evaluators = sorted({_evaluator_name(r) for r in recs})
    listed = any(
        claim.metric in (_evaluation(r)[1].get("unavailable") or [])
        or claim.metric.replace("_err", "_acc") in (_evaluation(r)[1].get("unavailable") or [])
        for r in recs
    )
    why = "; the evaluator lists it as unavailable" if listed else ""
    return (
        f"{claim.metric} on {claim.dataset} is unavailable from the evaluator that ran "
        f"({', '.join(evaluators)}): no record holds it{why}"
    )


def _judge_claim(
    suite: Suite,
    claim: Claim,
    groups: dict[str, dict[str, list[dict[str, Any]]]],
    stale_count: int,
) -> ClaimRow:
    claimed = _claimed_cell(claim)
    notes: list[str] = [claim.note] if claim.note else []
    if claim.not_runnable:
        return ClaimRow(
            claim, "not run", claimed, "—", "—", (f"not runnable: {claim.not_runnable}", *notes)
        )
    exp = suite.experiments.get(claim.experiment or "")
    if exp is not None and exp.pending:
        return ClaimRow(claim, "not run", claimed, "—", "—", (f"pending: {exp.pending}", *notes))
    by_budget = groups.get(claim.experiment or "", {})
    if stale_count:
        notes.append(f"{stale_count} record(s) set aside (see 'Records set aside')")
    if not by_budget:
        why = f"no records of experiment {claim.experiment} at the current configuration"
        return ClaimRow(claim, "not run", claimed, "—", "—", (why, *notes))

    values: dict[str, list[float]] = {}
    fixture: dict[str, bool] = {}
    derived = False
    for budget, recs in by_budget.items():
        got = [(r, _metric_value(r, claim.dataset, claim.metric)) for r in recs]
        values[budget] = [v[0] for _, v in got if v is not None]
        fixture[budget] = any(_is_fixture(r) for r, v in got if v is not None)
        derived = derived or any(v[1] for _, v in got if v is not None)
        missing = sum(v is None for _, v in got)
        if values[budget] and missing:
            notes.append(f"{missing} {budget} record(s) lack {claim.metric} on {claim.dataset}")
    if derived:
        acc = claim.metric[: -len("_err")] + "_acc"
        notes.append(f"{claim.metric} derived as 100 − {acc}")

    others = [
        f"{b}: {_mean_std(values[b])}" + (" (fixture)" if fixture[b] else "")
        for b in sorted(values, key=_budget_key)
        if b != FULL and values[b]
    ]
    full = values.get(FULL, [])
    if full:
        j = judge(
            claim.value,
            claim.std,
            claim.n_seeds,
            full,
            claim.statistic,
            suite.verdict.abs_tolerance,
            suite.verdict.z,
            higher_is_better=HIGHER_IS_BETTER.get(claim.metric, False),
        )
        reproduced = _mean_std(full)
        if claim.statistic == "best":
            reproduced = f"best of {j.n}: {_num(j.reproduced)}; mean {reproduced}"
        if fixture[FULL]:
            reproduced += " (fixture)"
            notes.append("full-budget numbers come from a FIXTURE benchmark: made up")
        if j.verdict == "inconclusive":
            notes.append("one seed cannot separate a miss from seed variance")
        if others:
            notes.append("also " + "; ".join(others))
        delta = f"{j.delta:+.2f} (tol {_num(j.tolerance)})"
        return ClaimRow(claim, j.verdict, claimed, reproduced, delta, tuple(notes), j)
    if FULL in by_budget:
        # the full run happened; the evaluator it used cannot give this metric
        notes.insert(0, _unavailable_reason(claim, by_budget[FULL]))
        return ClaimRow(claim, "not run", claimed, "; ".join(others) or "—", "—", tuple(notes))
    if others:
        notes.insert(0, "records only at reduced/smoke budgets: not judged against the claim")
        return ClaimRow(claim, "other budget", claimed, "; ".join(others), "—", tuple(notes))
    all_recs = [r for recs in by_budget.values() for r in recs]
    notes.insert(0, _unavailable_reason(claim, all_recs))
    return ClaimRow(claim, "not run", claimed, "—", "—", tuple(notes))


_WARNED: set[str] = set()


def _index(registry: Path) -> RecordIndex:
    """Every readable record; each unreadable file is named once on stderr and skipped."""
    import sys

    index, problems = RecordIndex.load(registry)
    for line in problems:
        if line not in _WARNED:
            _WARNED.add(line)
            print(f"nasrepro: warning: {line}; skipped", file=sys.stderr)
    return index


def _analyse(path: Path, registry: Path, index: RecordIndex | None = None) -> _Analysis:
    suite = load_suite(path)
    digest = suite_hash(path)
    index = index if index is not None else _index(registry)
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    superseded: Counter[tuple[str, str]] = Counter()
    stale: list[tuple[dict[str, Any], str]] = []
    for exp_id in suite.experiments:
        for budget in sorted({FULL, *suite.budgets}, key=_budget_key):
            backing = experiment_records(suite, exp_id, budget, index, str(path))
            if backing.used:
                groups.setdefault(exp_id, {})[budget] = backing.used
            for aside in backing.set_aside:
                if aside.reason.startswith(f"seed {aside.record['seed']} re-run"):
                    superseded[(exp_id, budget)] += 1
                else:
                    stale.append((aside.record, aside.reason))
    stale_by_exp = Counter(r["experiment"] for r, _ in stale)
    rows = [_judge_claim(suite, c, groups, stale_by_exp[c.experiment or ""]) for c in suite.claims]
    return _Analysis(path, suite, digest, rows, groups, superseded, stale)


def summary_table(suite_paths: list[Path], registry: Path) -> list[SummaryRow]:
    """Verdict counts per suite (sorted by suite name), without writing anything."""
    index = _index(Path(registry))
    rows = [_analyse(Path(p), Path(registry), index).summary() for p in suite_paths]
    return sorted(rows, key=lambda r: r.suite)


def format_summary(rows: list[SummaryRow]) -> str:
    """The summary rows as a plain-text table for the terminal."""
    headers = ["suite", "claims", *VERDICTS]
    body = [
        [
            r.suite,
            r.claims,
            r.reproduced,
            r.not_reproduced,
            r.inconclusive,
            r.not_run,
            r.other_budget,
        ]
        for r in rows
    ]
    return tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True)


# ------------------------------------------------------------------------------- figures


def _labels(space: str, n_ops: int) -> list[str]:
    """Op names of the space (from its registry entry) when they match the α width."""
    try:
        from nasrepro import catalog

        ops = list(getattr(catalog.get("space", space), "ops", ()))
    except (KeyError, ImportError):
        ops = []
    if len(ops) == n_ops:
        return ops
    if "none" in ops and len(ops) == n_ops + 1:  # the 7-op DARTS space without `none`
        return [op for op in ops if op != "none"]
    if n_ops == 1:  # PC-DARTS edge-normalization β: one weight per edge
        return ["β"]
    return [f"op {k}" for k in range(n_ops)]  # per-edge op sets (S1): see the space


def _alpha_series(
    recs: list[dict[str, Any]],
) -> tuple[list[str], dict[str, list[int]], dict[str, list[list[list[list[float]]]]], int]:
    """Per α tensor: epochs, and per epoch the seeds' softmax(α) matrices [seed][row][op].

    Only seeds whose tensor shapes match the first seed's are used (returned as count).
    """
    shapes: dict[str, tuple[int, int]] = {}
    per_epoch: dict[str, dict[int, list[list[list[float]]]]] = defaultdict(dict)
    used = 0
    for rec in recs:
        history = (rec.get("search") or {}).get("history") or []
        alphas = [(h["epoch"], h["alpha"]) for h in history if h.get("alpha")]
        if not alphas:
            continue
        shape_of = {k: (len(m), len(m[0]) if m else 0) for k, m in alphas[0][1].items()}
        if shapes and shape_of != shapes:
            continue
        shapes = shape_of
        used += 1
        for epoch, alpha in alphas:
            for name, matrix in alpha.items():
                per_epoch[name].setdefault(int(epoch), []).append(matrix)
    names = sorted(per_epoch)
    epochs = {n: sorted(per_epoch[n]) for n in names}
    series = {n: [per_epoch[n][e] for e in epochs[n]] for n in names}
    return names, epochs, series, used


def _plot_alpha(
    recs: list[dict[str, Any]], out_file: Path, suite: str, experiment: str, budget: str
) -> bool:
    """softmax(α) over epochs, one panel per α row (edge), one line per op: mean over seeds,
    band = min..max over seeds. False (nothing written) when no record holds an α history."""
    names, epochs, series, used = _alpha_series(recs)
    if not names:
        return False
    # Object-oriented Agg: no pyplot, no global backend switch for the caller's process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [(name, row) for name in names for row in range(len(series[name][0][0]))]
    # α tensors differ in width (PC-DARTS' β has one entry per edge): labels per tensor
    widths = {name: len(series[name][0][0][0]) for name in names}
    space = str(recs[0].get("space", ""))
    # DARTS-space cells have 14 edges per α tensor: small panels keep the page (and the
    # repository, which commits reports/) light.
    small = len(panels) > 12
    ncols = min(7 if small else 3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    width, height = (2.4, 1.9) if small else (4.2, 2.8)
    fig = Figure(figsize=(width * ncols, height * nrows + 1.0), dpi=60 if small else 80)
    FigureCanvasAgg(fig)
    label = f"{budget} budget" + (" (smoke)" if budget == "smoke" else "")
    seeds = f"mean over {used} seeds, band = min–max" if used > 1 else "1 seed"
    fig.suptitle(f"{suite} / {experiment}: softmax(α), {label}; {seeds}")
    for i, (name, row) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        xs = epochs[name]
        ops = _labels(space, widths[name])
        for k in range(widths[name]):
            per_epoch = [[m[row][k] for m in seeds] for seeds in series[name]]
            mean = [math.fsum(v) / len(v) for v in per_epoch]
            (line,) = ax.plot(xs, mean, label=ops[k], linewidth=1.4)
            if used > 1:
                ax.fill_between(
                    xs,
                    [min(v) for v in per_epoch],
                    [max(v) for v in per_epoch],
                    color=line.get_color(),
                    alpha=0.15,
                    linewidth=0,
                )
        ax.set_title(f"{name} edge {row}", fontsize=9)
        ax.set_ylim(0.0, 1.0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("softmax(α)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    widest = max(range(len(panels)), key=lambda i: widths[panels[i][0]])
    handles, labels = fig.axes[widest].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), fontsize=8)
    fig.tight_layout(rect=(0.0, 0.06, 1.0, 0.95))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" metadata: the bytes depend only on the data and the renderer.
    fig.savefig(out_file, format="png", metadata={"Software": None})
    return True


def _figure_name(suite: str, experiment: str, budget: str) -> str:
    return f"{suite}__{experiment}__{budget}.png"


# -------------------------------------------------------------------------------- render


def _cell(text: object) -> str:
    """A Markdown table cell: pipes escaped (NB201 genotypes are full of them)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: list[list[object]]) -> str:
    return tabulate(
        [[_cell(c) for c in row] for row in rows],
        headers=[_cell(h) for h in headers],
        tablefmt="github",
        disable_numparse=True,
    )


def _budget_description(a: _Analysis, budget: str, recs: list[dict[str, Any]]) -> str:
    texts = sorted({str(r["budget_description"]) for r in recs if r.get("budget_description")})
    if texts:
        return "; ".join(texts)
    if budget == FULL:
        return "the paper's settings"
    rule = a.suite.budgets.get(budget)  # type: ignore[call-overload]
    return rule.description if rule else "not described"


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
    headers = [
        "seed",
        "arch index",
        *[f"{ds} {m}" for ds, m in keys],
        "MLflow run",
        "wall time s",
        "created",
    ]
    rows = []
    for r in recs:
        prov = r.get("provenance") or {}
        vals = []
        for ds, m in keys:
            v = ((r.get("metrics") or {}).get(ds) or {}).get(m)
            vals.append("—" if v is None else f"{_num(float(v))}{tag}")
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
    return _md_table(headers, rows)


def _experiment_section(a: _Analysis, exp_id: str, figures: dict[tuple[str, str], str]) -> str:
    exp = a.suite.experiments.get(exp_id)
    lines = [f"### {exp_id}", ""]
    if exp is not None:
        methods = ", ".join(exp.methods) or "darts (engine defaults)"
        lines.append(
            f"Space {exp.space}, search dataset {exp.dataset}, methods {methods}, selector "
            f"{exp.selector}, evaluator {exp.evaluator}, {exp.search.epochs} epochs, "
            f"{exp.seeds} seed(s) at full budget."
        )
        if exp.description:
            lines.append(f"{exp.description}")
        lines.append("")
    by_budget = a.groups.get(exp_id, {})
    if not by_budget:
        lines += ["No records of this experiment's configuration.", ""]
        return "\n".join(lines)
    for budget in sorted(by_budget, key=_budget_key):
        recs = by_budget[budget]
        tag = " (smoke)" if budget == "smoke" else ""
        lines += [f"#### {budget} budget{tag}", ""]
        search_ds = sorted({str(r.get("search_dataset")) for r in recs})
        lines.append(
            f"- {len(recs)} record(s), seeds {', '.join(str(r['seed']) for r in recs)}; "
            f"search dataset {', '.join(search_ds)}"
        )
        others = sorted(
            {
                f"{r['suite']}/{r['experiment']}"
                for r in recs
                if (r["suite"], r["experiment"]) != (a.suite.suite, exp_id)
            }
        )
        if others:
            lines.append(
                "- same configuration, recorded for "
                + ", ".join(others)
                + " (records are matched by configuration, not by suite)"
            )
        dropped = a.superseded.get((exp_id, budget), 0)
        if dropped:
            lines.append(f"- {dropped} older record(s) of a re-run seed superseded (newest kept)")
        genotypes = Counter(str(r.get("genotype")) for r in recs)
        lines.append("- genotypes found:")
        for geno, count in sorted(genotypes.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  - `{geno}` × {count}")
        evaluators = Counter(_evaluator_text(r) for r in recs)
        lines.append(
            "- evaluator: " + "; ".join(f"{t} × {c}" for t, c in sorted(evaluators.items()))
        )
        n_fix = sum(_is_fixture(r) for r in recs)
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
        lines.append(
            f"- provenance: git {', '.join(commits)} ({dirty} dirty), device "
            f"{', '.join(devices)}, {nondet} non-deterministic"
        )
        fig = figures.get((exp_id, budget))
        if fig:
            lines += ["", f"![softmax(α), {exp_id}, {budget} budget{tag}]({fig})"]
        else:
            lines.append("- no α history in these records: no figure")
        lines += ["", _record_table(recs, budget), ""]
    return "\n".join(lines)


def _render(a: _Analysis, figures: dict[tuple[str, str], str]) -> str:
    s = a.suite
    venue = f", {s.paper.venue}" if s.paper.venue else ""
    n_current = sum(len(r) for by_b in a.groups.values() for r in by_b.values())
    out = [
        f"# {s.suite}: {s.paper.title}",
        "",
        f"Paper: `{s.paper.file}`{venue}. Suite file `{a.path.name}`, version {s.version}, "
        f"sha256 `{a.hash}`.",
        f"Records used: {n_current}; records set aside: {len(a.stale)}.",
        "",
        "## Verdict rule",
        "",
        f"> {RULE}",
        "",
        f"Here z = {s.verdict.z:g} and abs_tolerance = {s.verdict.abs_tolerance:g}. Claims are "
        "judged only against full-budget records of their own experiment's resolved configuration "
        "(whichever suite ran it) at the current fidelity version; reduced and smoke numbers "
        "are shown, labelled, and never judged.",
        "",
        "## Claims",
        "",
    ]
    headers = [
        "claim",
        "table",
        "method",
        "dataset",
        "metric",
        "claimed",
        "reproduced (full)",
        "Δ",
        "verdict",
        "notes",
    ]
    rows = [
        [
            r.claim.id,
            f"{r.claim.table}, {r.claim.row}",
            r.claim.method,
            r.claim.dataset,
            r.claim.metric,
            r.claimed,
            r.reproduced,
            r.delta,
            r.verdict,
            "; ".join(r.notes) or "",
        ]
        for r in a.rows
    ]
    out += [_md_table(headers, rows), ""]
    counts = a.summary()
    out += [
        f"Summary: {counts.claims} claims; {counts.reproduced} reproduced, "
        f"{counts.not_reproduced} not reproduced, {counts.inconclusive} inconclusive, "
        f"{counts.not_run} not run, {counts.other_budget} other budget.",
        "",
        "## Budgets used",
        "",
    ]
    used: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for by_b in a.groups.values():
        for budget, recs in by_b.items():
            used[budget].extend(recs)
    if not used:
        out += ["None: no records for this suite version.", ""]
    for budget in sorted(used, key=_budget_key):
        tag = " (smoke)" if budget == "smoke" else ""
        out.append(
            f"- **{budget}**{tag}: {_budget_description(a, budget, used[budget])} "
            f"({len(used[budget])} record(s))"
        )
    out += ["", "## Experiments", ""]
    exp_ids = sorted(set(s.experiments) | set(a.groups))
    for exp_id in exp_ids:
        out.append(_experiment_section(a, exp_id, figures))
    if a.stale:
        out += [
            "## Records set aside",
            "",
            "Written for this suite's experiments but not used for any verdict: records are "
            "matched by resolved configuration and fidelity version, not by suite file.",
            "",
        ]
        stale = Counter((r["experiment"], r["budget"], reason) for r, reason in a.stale)
        out.append(
            _md_table(
                ["experiment", "budget", "reason", "records"],
                [[*k, c] for k, c in sorted(stale.items())],
            )
        )
        out.append("")
    out.extend(_tuned_section(a))
    return "\n".join(out).rstrip("\n") + "\n"


def _tuned_section(a: _Analysis) -> list[str]:
    """`nasrepro tune` suggestions next to the paper's values (suites/tuned/, never applied)."""
    import yaml

    files = sorted((a.path.parent / "tuned").glob(f"{a.suite.suite}.*.yaml"))
    rows = []
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        objective = data.get("objective") or {}
        trials = data.get("trials") or {}
        for name, p in sorted((data.get("params") or {}).items()):
            rows.append(
                [
                    data.get("experiment", "?"),
                    data.get("budget", "?"),
                    name,
                    p.get("paper"),
                    p.get("tuned"),
                    f"{objective.get('metric', '?')} {objective.get('best_value')}",
                    f"{trials.get('complete', '?')}/{trials.get('total', '?')}",
                    path.name,
                ]
            )
    if not rows:
        return []
    return [
        "## Tuned hyper-parameters (suggestions, not applied)",
        "",
        "From `nasrepro tune` on validation metrics only; the claims above are judged with the "
        "paper's values.",
        "",
        _md_table(
            [
                "experiment",
                "budget",
                "parameter",
                "paper",
                "tuned",
                "objective (best)",
                "complete/total trials",
                "file",
            ],
            rows,
        ),
        "",
    ]


def _render_index(analyses: list[_Analysis]) -> str:
    headers = ["suite", "version", "paper", "claims", *VERDICTS, "page"]
    rows = []
    for a in analyses:
        c = a.summary()
        rows.append(
            [
                a.suite.suite,
                a.suite.version,
                a.suite.paper.title,
                c.claims,
                c.reproduced,
                c.not_reproduced,
                c.inconclusive,
                c.not_run,
                c.other_budget,
                f"[{a.suite.suite}]({a.suite.suite}.md)",
            ]
        )
    return "\n".join(
        [
            "# nasrepro reports",
            "",
            "Claims per suite by verdict (full budget only; see each page for the rule).",
            "",
            _md_table(headers, rows),
            "",
        ]
    )


def build_report(suite_paths: list[Path], registry: Path, out: Path) -> list[Path]:
    """Write out/<suite>.md and out/figures/<suite>__<experiment>__<budget>.png for every
    suite, then out/index.md; return the written paths (pages, figures, index last)."""
    out = Path(out)
    index = _index(Path(registry))
    analyses = sorted(
        (_analyse(Path(p), Path(registry), index) for p in suite_paths),
        key=lambda a: a.suite.suite,
    )
    names = Counter(a.suite.suite for a in analyses)
    dup = sorted(n for n, c in names.items() if c > 1)
    if dup:
        raise ValueError(f"suite name(s) {dup} given by more than one suite file")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for a in analyses:
        figures: dict[tuple[str, str], str] = {}
        fig_paths = []
        for exp_id in sorted(a.groups):
            for budget in sorted(a.groups[exp_id], key=_budget_key):
                name = _figure_name(a.suite.suite, exp_id, budget)
                target = out / "figures" / name
                if _plot_alpha(a.groups[exp_id][budget], target, a.suite.suite, exp_id, budget):
                    figures[(exp_id, budget)] = f"figures/{name}"
                    fig_paths.append(target)
        page = out / f"{a.suite.suite}.md"
        page.write_text(_render(a, figures), encoding="utf-8", newline="\n")
        written += [page, *fig_paths]
    index = out / "index.md"
    index.write_text(_render_index(analyses), encoding="utf-8", newline="\n")
    written.append(index)
    return written
