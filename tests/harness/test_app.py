"""The command line: --help, and bad input ending in one clear line, exit code != 0, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import harness_args

REPO = Path(__file__).resolve().parents[2]


def run_harness(*args: str, env: dict | None = None, module: str = "harness") -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          cwd=REPO, env=full_env, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_help_lists_groups_and_choices() -> None:
    proc = run_harness("--help")
    assert proc.returncode == 0
    for expected in ("method:", "model:", "suite:", "none", "organism", "memorization"):
        assert expected in proc.stdout


def test_unknown_method_suggests_the_closest() -> None:
    proc = run_harness("method=nonee")
    assert_one_line_error(proc, "unknown method 'nonee'", "did you mean 'none'", "valid:")


def test_unknown_model_and_suite() -> None:
    assert_one_line_error(run_harness("model=olmo3"), "unknown model 'olmo3'", "valid:")
    assert_one_line_error(run_harness("suite=memorisation"), "did you mean 'memorization'")


def test_unknown_choice_inside_a_sweep() -> None:
    assert_one_line_error(run_harness("-m", "method=none,kfca"), "unknown method 'kfca'")


def test_bad_number(tiny_model_dir: Path, tmp_path: Path) -> None:
    proc = run_harness(*harness_args(tiny_model_dir, tmp_path, "seed=abc"))
    assert_one_line_error(proc, "seed must be an integer")


def test_unknown_method_setting(tiny_model_dir: Path, tmp_path: Path) -> None:
    proc = run_harness(*harness_args(tiny_model_dir, tmp_path, "+method.rho=0.5"))
    assert_one_line_error(proc, "unknown setting(s) rho")


@pytest.mark.slow  # ~10 s under `make test-fast` (two workers, one thread each)
def test_missing_data_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    args = harness_args(tiny_model_dir, tmp_path)
    args = [a if not a.startswith("suite.tasks.verbatim.data") else "suite.tasks.verbatim.data=/nope.jsonl" for a in args]
    assert_one_line_error(run_harness(*args), "data file not found: /nope.jsonl")


def test_required_value_left_unset(tmp_path: Path) -> None:
    proc = run_harness("model=hf", f"runs_dir={tmp_path}")
    assert_one_line_error(proc, "model.path")


def test_missing_model_folder(tmp_path: Path) -> None:
    proc = run_harness("model=hf", f"model.path={tmp_path}/no_such_model", "suite=verbatim_files",
                       "suite.tasks.verbatim.data=x", "suite.tasks.quotes.data=x", f"runs_dir={tmp_path}")
    assert_one_line_error(proc, "model folder not found")


def test_unreachable_hub_says_pass_a_local_path(tmp_path: Path) -> None:
    proc = run_harness("model=hf", "model.path=allenai/no-such-model-here", "suite=verbatim_files",
                       "suite.tasks.verbatim.data=x", "suite.tasks.quotes.data=x", f"runs_dir={tmp_path}")
    assert_one_line_error(proc, "no network: pass a local path with model.path=")


def test_debug_switch_shows_the_traceback(tiny_model_dir: Path, tmp_path: Path) -> None:
    proc = run_harness(*harness_args(tiny_model_dir, tmp_path, "seed=abc", "debug=true"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_help_is_one_line_per_choice_and_says_how_to_see_settings() -> None:
    from core.buildcache import CONF_DIR
    from harness.help import GROUPS, group_files

    proc = run_harness("--help")
    lines = proc.stdout.splitlines()
    choices = sum(len(group_files(group, CONF_DIR)) for group in GROUPS)
    # one line per choice plus a fixed frame, not the organism's whole config (hundreds of lines)
    assert proc.returncode == 0 and len(lines) <= choices + 34, (len(lines), choices)
    kfac = [line for line in lines if line.split()[:1] == ["kfac"]]
    assert len(kfac) == 1 and "K-FAC curvature edit (Merullo et al. 2025)" in kfac[0]
    assert any(line.split()[:1] == ["own_model"] for line in lines)
    assert "--cfg job --package method" in proc.stdout


def test_help_lists_the_attack_group_and_cites_only_files_in_the_repo() -> None:
    """Issue 29: `--help` lists the attack group (and the tracker group) with their choices, and
    every file it names is in the repository (it once cited a PAPER.md that is not)."""
    import re

    from core.buildcache import CONF_DIR
    from harness.help import help_text

    text = help_text(CONF_DIR)
    lines = text.splitlines()
    assert "attack: (default: none)" in lines and "tracker: (default: none)" in lines
    attack = lines.index("attack: (default: none)")
    assert [line.split()[0] for line in lines[attack + 1:attack + 3]] == ["none", "standard"]
    root = CONF_DIR.parent
    for name in re.findall(r"[\w./-]+\.(?:md|py|yaml|json)\b", text):  # a path, or a file name in the repo
        assert (root / name).exists() or any(root.glob(f"*/**/{name}")), name


def test_help_first_sentence_keeps_abbreviations() -> None:
    from harness.help import first_sentence

    assert first_sentence("NPO (Zhang et al. 2024): a loss. More text.") == "NPO (Zhang et al. 2024): a loss."
    assert first_sentence("x" * 200, limit=10) == "x" * 9 + "…"


@pytest.mark.slow  # ~9 s under `make test-fast` (two workers, one thread each)
def test_documented_task_key_without_plus_named_method_choice_and_log_progress(tiny_model_dir: Path,
                                                                             tmp_path: Path) -> None:
    """A run under `> log.txt`: progress lines appear, `suite.tasks.verbatim.limit` works without
    '+', the model is named after its folder, and `method=svd_vit` is filed as svd_vit."""
    import json

    proc = run_harness(*harness_args(tiny_model_dir, tmp_path / "runs", "method=svd_vit",
                                     "suite.tasks.verbatim.limit=2"),
                       env={"HARNESS_PROGRESS_INTERVAL": "0"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[progress] verbatim verbatim: 2/2 (100%)" in proc.stdout
    (run_file,) = (tmp_path / "runs" / "model" / "verbatim_files" / "svd_vit").glob("seed0-*.json")
    run = json.loads(run_file.read_text())
    assert run["identity"]["method"] == "svd_vit" and run["config"]["method"]["name"] == "svd"
    assert run["baseline"]["tasks"]["verbatim"]["n"] == 2
    assert "method=svd_vit" in proc.stdout


def test_runs_from_a_folder_with_its_own_models_folder(tmp_path: Path) -> None:
    """Checkpoints often live in ./models: a user's folder of that name (or tasks/, core/) must not
    shadow the project's packages when `python -m harness` runs from there."""
    for name in ("models", "tasks", "core", "methods"):
        (tmp_path / name).mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
