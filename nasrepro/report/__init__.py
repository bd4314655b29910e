"""Reports: claims judged against registry records, as Markdown pages and α plots."""

from nasrepro.report.build import (
    ClaimRow,
    SummaryRow,
    build_report,
    format_summary,
    summary_table,
)
from nasrepro.report.verdict import RULE, VERDICTS, Judgement, judge

__all__ = [
    "RULE",
    "VERDICTS",
    "ClaimRow",
    "Judgement",
    "SummaryRow",
    "build_report",
    "format_summary",
    "judge",
    "summary_table",
]
