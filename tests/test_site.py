"""The report as a static HTML site: the same pages, every link and figure resolving, no
server; and the same site opened in a real browser (headless Chromium) where one is installed.

The hand-made records are those of tests/test_report.py (MADE-UP accuracies, a test fixture).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_report import make_world

from nasrepro.report import build_report, check_report
from nasrepro.report.browser import chromium, dump_dom, screenshot


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(suite file, registry, site): the toy report and its site, built once."""
    root = tmp_path_factory.mktemp("site")
    suite_file, reg = make_world(root)
    build_report([suite_file], reg, root / "out", root / "site")
    return suite_file, reg, root / "site"


def test_site_pages_links_and_figures_resolve(built):
    site = built[2]
    assert sorted(p.name for p in site.glob("*.html")) == ["index.html", "toy_suite.html"]
    page = (site / "toy_suite.html").read_text(encoding="utf-8")
    # the first screen, in this order, with the anchors the Markdown pages link to
    heads = re.findall(r'<h2 id="([^"]+)"', page)
    assert heads[:4] == ["judged-claims", "conclusions-tested", "what-is-left", "claims-by-table"]
    for html_file in site.glob("*.html"):
        text = html_file.read_text(encoding="utf-8")
        targets = set(re.findall(r'id="([^"]+)"', text))
        for ref in re.findall(r'(?:href|src)="([^"]+)"', text):
            assert not ref.startswith(("http:", "https:", "//")), ref  # no server, no network
            path, _, anchor = ref.partition("#")
            assert not path.endswith(".md"), ref  # page links point at the HTML pages
            if path:
                assert (site / path).is_file(), f"{html_file.name}: {ref}"
            elif anchor:
                assert anchor in targets, f"{html_file.name}: {ref}"
    assert re.findall(r'src="(figures/[^"]+)"', page)  # the claims and α figures are there
    assert '<td class="bad">✗ not reproduced</td>' in page
    assert '<td class="ok">✓ reproduced</td>' in page
    assert "<details>" in page and "claim(s) of Table 1 not run" in page
    index = (site / "index.html").read_text(encoding="utf-8")
    assert '<a href="toy_suite.html">toy_suite</a>' in index and "A toy paper" in index


def test_the_check_builds_the_same_site(built, tmp_path):
    """CI's `report --check --site DIR` writes the site of the regenerated pages: the same
    bytes as the site written beside the pages."""
    suite_file, reg, site = built
    assert check_report([suite_file], reg, site.parent / "out", tmp_path / "site") == []
    for path in sorted(site.rglob("*")):
        if path.is_file():
            twin = tmp_path / "site" / path.relative_to(site)
            assert twin.read_bytes() == path.read_bytes(), path.name


def test_site_in_a_real_browser(built, tmp_path):
    if chromium() is None:
        pytest.skip(
            "no Chromium on PATH (apt-get install chromium): the real-browser check runs "
            "where one is installed"
        )
    from PIL import Image

    url = (built[2] / "toy_suite.html").as_uri()
    dom = dump_dom(url)
    # the browser built the tables: the first row of judged claims is the miss, linked
    first = re.search(r'<h2 id="judged-claims">.*?<tbody>\s*<tr>(.*?)</tr>', dom, re.S)
    assert first and 'href="#claim-c100-miss"' in first.group(1)
    assert "✗ not reproduced" in first.group(1)
    shot = screenshot(url, tmp_path / "first-screen.png", 1280, 900)
    with Image.open(shot) as img:
        assert img.size == (1280, 900)
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 100  # text, tables, the verdict colours: not a blank page
    assert any(c == (255, 235, 233) for _, c in colours)  # the not-reproduced cell's red
