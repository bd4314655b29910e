"""Reports: claims judged against registry records, as Markdown pages, figures and JSON."""

from nasrepro.report.analysis import CLASSES, ClaimRow, ComparisonRow
from nasrepro.report.build import (
    SummaryRow,
    build_report,
    check_report,
    format_summary,
    report_json,
    summary_table,
)
from nasrepro.report.verdict import (
    COMPARISON_RULE,
    RULE,
    VERDICTS,
    Judgement,
    Sample,
    judge,
    judge_comparison,
)

__all__ = [
    "CLASSES",
    "COMPARISON_RULE",
    "RULE",
    "VERDICTS",
    "ClaimRow",
    "ComparisonRow",
    "Judgement",
    "Sample",
    "SummaryRow",
    "build_report",
    "check_report",
    "format_summary",
    "judge",
    "judge_comparison",
    "report_json",
    "summary_table",
]
