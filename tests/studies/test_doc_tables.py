"""Every table of numbers in README.md and docs/ is generated from committed files and current."""

from __future__ import annotations

import re

from studies.doc_tables import BLOCK, TABLES, documents, regenerate, stale_blocks

# A cell that is a measured number (0.915, 97.3 %, 4 ± 4, 0.0 [0.0, 3.8], **0.90**); a row with two
# or more is a table of results (a settings or definitions table has prose in its cells).
NUMBER_CELL = re.compile(r"^\**[~≈−-]?\d[\d.,]*\s*(%|±\s*[\d.]+|\[[^]]*\]|/\s*[\d.]+)*\s*\**$")


def test_every_generated_table_is_current() -> None:
    stale = stale_blocks()
    assert not stale, "regenerate with `python -m studies.doc_tables`: " + ", ".join(stale)


def test_no_table_of_measured_numbers_is_written_by_hand() -> None:
    """Outside the generated blocks, no Markdown table row holds a measured number."""
    found = []
    for path in documents():
        text = BLOCK.sub("", path.read_text(encoding="utf-8"))
        in_code = False
        for line in text.splitlines():
            if line.startswith("```"):
                in_code = not in_code
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not in_code and line.startswith("|") and sum(bool(NUMBER_CELL.match(c)) for c in cells) >= 2:
                found.append(f"{path.name}: {line[:80]}")
    assert not found, "\n".join(found)


def test_every_block_names_a_table_and_every_table_is_used() -> None:
    used = {m.group(2) for path in documents() for m in BLOCK.finditer(path.read_text(encoding="utf-8"))}
    assert used <= set(TABLES), used - set(TABLES)
    assert set(TABLES) <= used, f"tables no document shows: {set(TABLES) - used}"


def test_an_unknown_table_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown table 'nope'"):
        regenerate("<!-- table: nope -->\n<!-- end table -->", {})
