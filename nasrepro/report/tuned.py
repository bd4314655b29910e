"""`nasrepro tune` suggestions beside the paper's values (suites/tuned/, never applied)."""

from __future__ import annotations

from nasrepro.report.analysis import Analysis
from nasrepro.report.render import md_table


def tuned_section(a: Analysis) -> list[str]:
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
        md_table(
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
