"""pytest imports test files by basename (rootdir mode, no packages): two files with one
name in different folders stop the whole run at collection ("import file mismatch")."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).parent


def test_no_two_test_files_share_a_basename() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, k in names.items() if k > 1] == []
