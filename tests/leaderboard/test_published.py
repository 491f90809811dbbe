"""The published leaderboard (leaderboard/published/) is exactly what its committed run files give.

`make leaderboard` writes it:
    python -m leaderboard leaderboard/published/runs --out leaderboard/published --no-parquet
The test runs the same command, from the repository root (leaderboard.md names the run folder as
given), into a temporary folder and compares leaderboard.md, headline.csv, summary.csv, runs.csv
and, when either side has one, attacks.csv with the committed files byte for byte; on a
difference it names the first differing line and the command. index.html is not compared byte for
byte (its PNG bytes depend on the matplotlib/freetype build): it must exist and hold the headline.

When leaderboard/published/runs/ holds no run files (only its README: the state before the
lead commits runs), there is nothing to regenerate. The test then checks the one thing that can
be wrong in that state, that no generated table is committed either (a table without its runs
could not be checked), and passes: an empty published folder is checked, not skipped. The
checker itself is tested on a throwaway copy of that layout below.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest

from leaderboard.__main__ import main
from leaderboard.collect import find_run_files
from leaderboard.render import HEADLINE_TITLE
from tests.leaderboard.synthetic import make_run, point, write_runs

REPO = Path(__file__).resolve().parents[2]
RUNS_ARG, PUBLISHED_ARG = "leaderboard/published/runs", "leaderboard/published"
FLAGS = ["--no-parquet"]
COMMAND = f"make leaderboard  (= python -m leaderboard {RUNS_ARG} --out {PUBLISHED_ARG} {' '.join(FLAGS)})"
COMPARED = ["leaderboard.md", "headline.csv", "summary.csv", "runs.csv"]
IF_ANY = ["attacks.csv"]  # only runs with attack results give it
GENERATED = COMPARED + IF_ANY + ["index.html", "runs.parquet"]


def first_difference(committed: bytes, regenerated: bytes) -> str:
    a, b = committed.decode("utf-8", "replace").splitlines(), regenerated.decode("utf-8", "replace").splitlines()
    for i, (x, y) in enumerate(zip(a, b), start=1):
        if x != y:
            return f"line {i}: committed {x[:200]!r}, regenerated {y[:200]!r}"
    if len(a) != len(b):
        return f"line {min(len(a), len(b)) + 1}: committed has {len(a)} lines, regenerated {len(b)}"
    return "line endings or a final newline differ"


def published_problems(root: Path, scratch: Path) -> list[str]:
    """What is wrong with the published leaderboard of the repository at `root` ([] = nothing):
    regenerates into `scratch` when there are run files."""
    runs, published = root / RUNS_ARG, root / PUBLISHED_ARG
    if not find_run_files([runs]):
        return [f"{PUBLISHED_ARG}/{name} is committed but {RUNS_ARG} holds no run files: commit the runs "
                f"it was made from, or remove it" for name in GENERATED if (published / name).exists()]
    with contextlib.chdir(root):
        assert main([RUNS_ARG, "--out", str(scratch), *FLAGS]) == 0
    problems = []
    for name in COMPARED + [n for n in IF_ANY if (scratch / n).exists() or (published / n).exists()]:
        mine, theirs = published / name, scratch / name
        if not mine.exists():
            problems.append(f"{PUBLISHED_ARG}/{name} is missing; regenerate with: {COMMAND}")
        elif not theirs.exists():
            problems.append(f"{PUBLISHED_ARG}/{name} is committed but the runs give none; regenerate with: {COMMAND}")
        elif mine.read_bytes() != theirs.read_bytes():
            problems.append(f"{PUBLISHED_ARG}/{name} is not what the runs give, first difference at "
                            f"{first_difference(mine.read_bytes(), theirs.read_bytes())}; regenerate with: {COMMAND}")
    page = published / "index.html"
    if not page.exists():
        problems.append(f"{PUBLISHED_ARG}/index.html is missing; regenerate with: {COMMAND}")
    elif HEADLINE_TITLE not in page.read_text(encoding="utf-8"):
        problems.append(f"{PUBLISHED_ARG}/index.html has no '{HEADLINE_TITLE}' section; regenerate with: {COMMAND}")
    return problems


@pytest.mark.slow  # ~16 s under `make test-fast` (two workers, one thread each)
def test_published_leaderboard_is_what_its_runs_give(tmp_path):
    assert (REPO / RUNS_ARG / "README.md").exists()
    problems = published_problems(REPO, tmp_path / "regenerated")
    assert not problems, "\n".join(problems)


# --- the checker, on a throwaway layout ------------------------------------------------------------

def runs() -> list[dict]:
    return [make_run("none", {}), make_run("kfac", point(96, 30), params={"rho": 0.8}),
            make_run("kfac", point(91, 10), params={"rho": 0.6})]


@pytest.fixture(scope="module")
def published_layout(tmp_path_factory) -> Path:
    """A repository root whose published folder holds three runs and the tables they give."""
    root = tmp_path_factory.mktemp("repo")
    write_runs(root / RUNS_ARG, runs())
    with contextlib.chdir(root):
        assert main([RUNS_ARG, "--out", PUBLISHED_ARG, *FLAGS]) == 0
    return root


def copy_of(layout: Path, tmp_path: Path) -> Path:
    shutil.copytree(layout, tmp_path / "repo")
    return tmp_path / "repo"


def test_checker_passes_a_faithful_folder_and_the_page_names_its_source(published_layout, tmp_path):
    assert published_problems(published_layout, tmp_path / "scratch") == []
    md = (published_layout / PUBLISHED_ARG / "leaderboard.md").read_text()
    assert f"3 runs read from `{RUNS_ARG}`" in md and f"python -m leaderboard {RUNS_ARG} --out" in md


def test_checker_fails_on_one_changed_byte_and_names_the_line(published_layout, tmp_path):
    root = copy_of(published_layout, tmp_path)
    summary = root / PUBLISHED_ARG / "summary.csv"
    lines = summary.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("kfac", "kfaC", 1)
    summary.write_text("".join(lines))
    problems = published_problems(root, tmp_path / "scratch")
    assert len(problems) == 1 and "summary.csv" in problems[0] and "line 3:" in problems[0]
    assert "make leaderboard" in problems[0]


def test_checker_fails_when_runs_are_committed_without_tables(tmp_path):
    write_runs(tmp_path / RUNS_ARG, runs())
    problems = published_problems(tmp_path, tmp_path / "scratch")
    assert {p.split()[0] for p in problems} == {f"{PUBLISHED_ARG}/{n}" for n in COMPARED + ["index.html"]}
    assert all("is missing" in p for p in problems)


def test_checker_fails_on_a_page_without_the_headline(published_layout, tmp_path):
    root = copy_of(published_layout, tmp_path)
    (root / PUBLISHED_ARG / "index.html").write_text("<html></html>")
    assert published_problems(root, tmp_path / "scratch") == [
        f"{PUBLISHED_ARG}/index.html has no '{HEADLINE_TITLE}' section; regenerate with: {COMMAND}"]


def test_checker_without_runs_accepts_no_tables_and_rejects_orphans(tmp_path):
    (tmp_path / RUNS_ARG).mkdir(parents=True)
    (tmp_path / RUNS_ARG / "README.md").write_text("runs go here")
    assert published_problems(tmp_path, tmp_path / "scratch") == []
    (tmp_path / PUBLISHED_ARG / "headline.csv").write_text("model\n")
    problems = published_problems(tmp_path, tmp_path / "scratch")
    assert len(problems) == 1 and "headline.csv is committed but" in problems[0]


def setting_of(label: str) -> dict[str, str]:
    """'npo (epochs=5, lr=0.003)' -> {'epochs': '5', 'lr': '0.003'} (the headline's variant label)."""
    inside = label[label.index("(") + 1 : label.rindex(")")] if "(" in label else ""
    return dict(pair.split("=", 1) for pair in inside.split(", ") if pair)


def test_attack_runs_attack_the_settings_the_headline_picks() -> None:
    """benchmarks/attack_runs.sh attacks each attacked method's setting at >= 90 % utility on
    organism_full on every shipped seed: after a sweep changes the pick, the attack runs must be
    redone (runs at the old setting do not count). Runs at other settings may sit beside them
    (K-FAC at a stronger rho): the leaderboard labels each setting."""
    import json

    import pandas as pd

    from leaderboard.aggregate import flatten

    headline = pd.read_csv(REPO / PUBLISHED_ARG / "headline.csv")
    picks = {row.method: setting_of(row.variant_90) for row in headline.itertuples()
             if row.suite == "organism_full" and isinstance(row.variant_90, str)}
    attack_runs = find_run_files([REPO / RUNS_ARG / "organism" / "memorization"])
    assert attack_runs, "no attack runs in the published runs (bash benchmarks/attack_runs.sh)"
    attacked: dict[str, set[int]] = {}  # method -> the seeds on which its pick was attacked
    for path in attack_runs:
        run = json.loads(path.read_text(encoding="utf-8"))
        method = flatten(run["config"]["method"])
        seeds = attacked.setdefault(method["name"], set())
        pick = picks.get(method["name"])
        if pick is not None and all(float(method[key]) == float(value) for key, value in pick.items()):
            seeds.add(run["identity"]["seed"])
    # Methods whose pick keeps every passage (nothing to bring back) are not attacked at all.
    missing = {m: sorted({0, 1, 2} - seeds) for m, seeds in attacked.items() if m in picks}
    assert {m: seeds for m, seeds in missing.items() if seeds} == {}, f"picks not attacked on these seeds: {missing}"
