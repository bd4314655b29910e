"""The repository stands alone: documentation links stay inside it and resolve."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    ROOT / "README.md",
    ROOT / "suites" / "README.md",
    ROOT / "benchmarks" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _relative_links(page: Path) -> list[str]:
    links = LINK.findall(page.read_text(encoding="utf-8"))
    return [t.split("#")[0] for t in links if not re.match(r"^[a-z]+:", t) and t.split("#")[0]]


def test_no_link_leaves_the_repository():
    for page in PAGES:
        for target in _relative_links(page):
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(ROOT), f"{page.relative_to(ROOT)}: {target} leaves it"


def test_no_page_or_module_points_outside_the_repository():
    texts = [*PAGES, *sorted((ROOT / "nasrepro").rglob("*.py")), *sorted(ROOT.glob("tests/*.py"))]
    for path in texts:
        if path.name == "test_docs.py":
            continue
        text = path.read_text(encoding="utf-8")
        for bad in ("../shared/", "/work/shared", "/work/main"):
            assert bad not in text, f"{path.relative_to(ROOT)} mentions {bad}"


def test_every_relative_link_resolves():
    missing = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in PAGES
        for target in _relative_links(page)
        if not (page.parent / target).exists()
    ]
    assert missing == []
