"""End to end on the fixture runs: outputs match the committed expected files byte for byte.

Regenerate the expected files after an intended change (docs/leaderboard.md):
    .venv/bin/python -m leaderboard tests/leaderboard/fixtures --out tests/leaderboard/expected --no-html --no-parquet
"""

import re
from pathlib import Path

import pytest

from leaderboard.__main__ import main

HERE = Path(__file__).parent
REPO = HERE.parents[1]
FIXTURES, EXPECTED = HERE / "fixtures", HERE / "expected"
# leaderboard.md names the run folders as given: the tests pass them relative to the repo root,
# as the regeneration command in the docstring does.
FIXTURES_ARG = FIXTURES.relative_to(REPO).as_posix()
DETERMINISTIC = ["leaderboard.md", "headline.csv", "runs.csv", "summary.csv"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    out = tmp_path_factory.mktemp("lb")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        assert main([FIXTURES_ARG, "--out", str(out), "--no-html", "--no-parquet"]) == 0
    return out


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_outputs_match_expected_files(out, name):
    assert (out / name).read_bytes() == (EXPECTED / name).read_bytes(), \
        f"{name} changed; if intended, regenerate tests/leaderboard/expected (see this file's docstring)"


def test_regeneration_is_byte_identical(out, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main([FIXTURES_ARG, "--out", str(tmp_path), "--no-html", "--no-parquet"]) == 0
    for name in DETERMINISTIC:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_cli_reports_skipped_files(capsys, tmp_path):
    assert main([str(FIXTURES), "--out", str(tmp_path), "--no-html", "--no-parquet"]) == 0
    captured = capsys.readouterr()
    assert "14 runs; skipped 4 files" in captured.out
    assert captured.err.count("warning: skipped") == 4


def test_missing_run_folder_is_one_line_error(capsys, tmp_path):
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: run folder") and "\n" not in err


def _table(md: str, heading: str) -> list[list[str]]:
    block = md.split(heading, 1)[1].split("### % of unedited", 1)[1].split("###", 1)[0]
    rows = [line for line in block.splitlines() if line.startswith("|")]
    return [[c.strip() for c in r.strip("|").split(" | ")] for r in rows[:1] + rows[2:]]


def test_best_per_column_follows_the_family_goal(out):
    rows = _table((out / "leaderboard.md").read_text(), "## organism · organism_full")
    header, body = rows[0], rows[1:]
    by_method = {r[0]: r for r in body}
    col = {h.split(" (")[0]: i for i, h in enumerate(header)}
    # Memorization: lowest kept wins (K-FAC rho=0.6 removes most); skill: highest.
    assert by_method["kfac (rho=0.6)"][col["memorized: verbatim_forget"]].startswith("**")
    assert by_method["kfac (rho=0.9)"][col["qa_open"]].startswith("**")
    for r in body:  # the unedited reference and the chance-level control are never best
        assert not r[col["control: verbatim_control"]].startswith("**")
        if r[0] == "none":
            assert not any(c.startswith("**") for c in r[3:])
    # Exactly one kind of bold value per column (ties all bold), and it is the extreme one.
    for name, i in col.items():
        if i < 3 or name.startswith("control"):
            continue
        vals = [float(re.match(r"\**([\d.]+)", r[i]).group(1)) for r in body if r[0] != "none"]
        bold = {float(re.match(r"\*\*([\d.]+)", r[i]).group(1)) for r in body if r[i].startswith("**")}
        want = min(vals) if "↓" in header[i] else max(vals)
        assert bold == {want}, name


def test_data_needed_and_seed_columns(out):
    rows = _table((out / "leaderboard.md").read_text(), "## organism · organism_full")
    by_method = {r[0]: r for r in rows[1:]}
    assert by_method["balanced_subnet"][1] == "forget+retain"
    assert by_method["kfac (rho=0.8)"][2] == "3" and "±" in by_method["kfac (rho=0.8)"][3]
    assert by_method["svd"][1] == "none"


def test_empty_run_folder_writes_an_empty_leaderboard_and_warns(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "README.md").write_text("not a run")
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--no-html"]) == 0
    assert "No complete runs found." in (tmp_path / "out" / "leaderboard.md").read_text()
    assert f"warning: {tmp_path / 'runs'} holds no run files" in capsys.readouterr().err


def test_warns_about_the_one_empty_folder_of_several(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    (tmp_path / "empty").mkdir()
    assert main([FIXTURES_ARG, str(tmp_path / "empty"), "--out", str(tmp_path / "out"), "--no-html"]) == 0
    err = capsys.readouterr().err
    assert err.count("holds no run files") == 1 and f"{tmp_path / 'empty'} holds no run files" in err


def test_the_page_names_the_run_folders_as_given(out):
    md = (out / "leaderboard.md").read_text()
    assert f"14 runs read from `{FIXTURES_ARG}`" in md
    assert f"`python -m leaderboard {FIXTURES_ARG} --out <folder>`" in md
    assert str(REPO) not in md  # no absolute path: the file is the same in any checkout
