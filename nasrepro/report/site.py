"""The report as a static HTML site: the same Markdown pages, rendered, with their figures.

No server and no JavaScript: open `index.html` from disk. Each page is its Markdown page
(nasrepro/report/render.py) rendered by markdown-it (CommonMark + tables, the `<details>`
blocks and claim anchors passed through), headings given GitHub's anchors so the pages'
in-page links work in both, links between pages pointed at the `.html` files, and verdict
cells coloured. Deterministic: the same pages give the same bytes.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from nasrepro.report.files import write_atomic, write_text_atomic
from nasrepro.report.render import slug

CSS = """
body { font: 15px/1.45 "DejaVu Sans", system-ui, sans-serif; margin: 0; color: #1f2328; }
nav { background: #24292f; padding: 8px 24px; position: sticky; top: 0; z-index: 1; }
nav a { color: #f0f6fc; margin-right: 18px; text-decoration: none; font-weight: 600; }
nav a.here { text-decoration: underline; }
main { padding: 4px 24px 40px; }
h1 { font-size: 24px; margin: 14px 0 6px; }
h2 { font-size: 19px; margin: 22px 0 8px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 16px; margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13.5px; }
th, td { border: 1px solid #d0d7de; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td:first-child { white-space: nowrap; }
td.ok { background: #dafbe1; } td.bad { background: #ffebe9; } td.unsure { background: #fff8c5; }
img { max-width: 100%; border: 1px solid #d0d7de; }
code { font-size: 12.5px; background: #f6f8fa; padding: 0 3px; }
pre { background: #f6f8fa; padding: 6px 10px; overflow-x: auto; }
details { margin: 6px 0 12px; } summary { cursor: pointer; color: #0969da; }
blockquote { color: #59636e; border-left: 3px solid #d0d7de; margin: 0; padding-left: 12px; }
"""
VERDICT_CLASS = {"✓": "ok", "✗": "bad", "?": "unsure"}
_MD_LINK = re.compile(r'href="([^":#]+)\.md(#[^"]*)?"')
_VERDICT_CELL = re.compile(r"<td>([✓✗?]) ")
_HERE = ' class="here"'


def _renderer() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable("table")

    def heading_open(renderer: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("id", slug(tokens[idx + 1].content))
        return str(renderer.renderToken(tokens, idx, options, env))

    md.add_render_rule("heading_open", heading_open)
    return md


def page_html(markdown: str, title: str, nav: list[tuple[str, str]], here: str) -> str:
    """One page: the Markdown rendered inside the site's frame."""
    body = _renderer().render(markdown)
    body = _MD_LINK.sub(lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
    body = _VERDICT_CELL.sub(
        lambda m: f'<td class="{VERDICT_CLASS[m.group(1)]}">{m.group(1)} ', body
    )
    links = " ".join(
        f'<a href="{href}"{_HERE if href == here else ""}>{html.escape(text)}</a>'
        for text, href in nav
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<nav>{links}</nav>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def site_files(pages: dict[str, str]) -> dict[str, str]:
    """HTML file name -> HTML, for Markdown pages by file name (index.md first in the nav)."""
    names = sorted(pages, key=lambda n: (n != "index.md", n))
    nav = [("all papers" if n == "index.md" else n[: -len(".md")], _html_name(n)) for n in names]
    out = {}
    for name in names:
        text = pages[name]
        first = text.splitlines()[0].lstrip("# ").strip() if text else name
        out[_html_name(name)] = page_html(text, first, nav, _html_name(name))
    return out


def _html_name(md_name: str) -> str:
    return md_name[: -len(".md")] + ".html"


def build_site(pages: dict[str, str], figures: Path, out: Path) -> list[Path]:
    """Write the site under `out`: one HTML file per page and the figures the pages show
    (copied from `figures`); returns the written paths."""
    out = Path(out)
    written = []
    for name, text in site_files(pages).items():
        write_text_atomic(out / name, text)
        written.append(out / name)
    shown = sorted({m for t in pages.values() for m in re.findall(r"\(figures/([^)\s]+)\)", t)})
    for name in shown:
        write_atomic(out / "figures" / name, (Path(figures) / name).read_bytes())
        written.append(out / "figures" / name)
    return written
