"""Issue 29: the leaderboard page opens with results, its definitions fold into a <details>
legend after the tables they explain, and the Markdown its text is written in is rendered in the
HTML (no raw backticks or asterisks)."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from leaderboard.__main__ import main
from leaderboard.render import md_inline

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("page")
    assert main([str(FIXTURES), "--out", str(out), "--no-parquet"]) == 0
    return out


class Text(HTMLParser):
    """The page's visible text outside <code>, and its tags in order."""

    def __init__(self) -> None:
        super().__init__()
        self.text, self.tags, self._code, self._skip = [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._code += tag == "code"
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._code -= tag == "code"
        self._skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._code and not self._skip:
            self.text.append(data)


def test_results_come_before_the_definitions(out: Path) -> None:
    page = (out / "index.html").read_text()
    first_table, first_legend = page.index("<table>"), page.index("<details")
    assert first_table < first_legend
    assert "Columns: one per task instance" not in page[:first_table]  # no paragraph of definitions first
    for legend in re.findall(r"<details class=\"legend\">.*?</details>", page, re.S):
        assert "<summary>" in legend
    md = (out / "leaderboard.md").read_text()
    assert md.index("| method |") < md.index("<details>") and "Columns: one per task instance" in md
    # every legend follows the tables it explains: none opens a section
    for part in re.split(r"\n#{1,2} ", md)[1:]:
        assert not part.split("\n", 2)[-1].lstrip().startswith("<details>"), part[:80]


def test_markdown_is_rendered_not_shown_raw(out: Path) -> None:
    parser = Text()
    parser.feed((out / "index.html").read_text())
    visible = "".join(parser.text)
    assert "`" not in visible and "**" not in visible
    assert "code" in parser.tags and "strong" in parser.tags and "details" in parser.tags


def test_md_inline_escapes_html_and_renders_code_bold_links() -> None:
    assert md_inline("a `x<y>` **b** [c](d.md) <script>") == \
        'a <code>x&lt;y&gt;</code> <strong>b</strong> <a href="d.md">c</a> &lt;script&gt;'
