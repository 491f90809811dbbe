"""The leaderboard page embeds the analysis plots `python -m studies.analyze` leaves beside the run
files, and does not read the analysis JSON as (broken) run files."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

from leaderboard.__main__ import build
from leaderboard.collect import find_run_files

FIXTURES = Path(__file__).parent / "fixtures"


def test_analysis_pngs_are_embedded_and_their_json_is_not_a_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / "organism", runs / "organism")
    folder = runs / "analysis" / "organism" / "memorization"
    folder.mkdir(parents=True)
    png = b"\x89PNG\r\n\x1a\n-not-really-a-picture"
    (folder / "spectrum-seed0-abc-ratio-memorized-vs-control.png").write_bytes(png)
    (folder / "spectrum-seed0-abc.json").write_text('{"kind": "analysis"}')
    assert not any("analysis" in p.parts for p in find_run_files([runs]))
    result = build([runs], tmp_path / "out", parquet=False)
    assert result["skipped"] == 0
    page = (tmp_path / "out" / "index.html").read_text()
    assert "Curvature analysis: spectrum-seed0-abc-ratio-memorized-vs-control" in page
    assert base64.b64encode(png).decode("ascii") in page


def test_no_analysis_folder_changes_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / "organism", runs / "organism")
    build([runs], tmp_path / "out", parquet=False)
    assert "Curvature analysis" not in (tmp_path / "out" / "index.html").read_text()
