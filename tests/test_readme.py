"""README.md is the front door: at most 200 lines, and every relative link in it, in the docs pages
it links and in every page under docs/ (the archive included) names a file or folder that exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(page: Path) -> list[str]:
    """The link targets of a Markdown page that point into the repository (no URL, no anchor-only)."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z+.-]*:", t) and not t.startswith("#")]


def broken_links(page: Path) -> list[str]:
    return [t for t in relative_links(page) if not (page.parent / t.split("#")[0]).exists()]


def test_readme_is_short_and_every_link_resolves() -> None:
    readme = REPO / "README.md"
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= 200
    assert relative_links(readme), "the link check found no links: the pattern is wrong"
    assert broken_links(readme) == []


def test_the_pages_the_readme_links_and_every_docs_page_have_no_broken_links() -> None:
    linked = {(REPO / t.split("#")[0]).resolve() for t in relative_links(REPO / "README.md") if t.endswith(".md")}
    docs = set((REPO / "docs").rglob("*.md"))
    assert docs, "no docs pages found"
    broken = {str(p.relative_to(REPO)): broken_links(p) for p in sorted(linked | docs)}
    assert {p: b for p, b in broken.items() if b} == {}


def test_the_checker_sees_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md) [gone](missing.md) [web](https://example.org) [top](#top)\n"
                    "```\n[in code](nowhere.md)\n```\n")
    assert broken_links(page) == ["missing.md"]
