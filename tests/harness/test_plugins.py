"""A method from an installed third-party package runs with its own config, with no edit to this
repo; a name registered twice is an error."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import harness_args

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "tests" / "fixtures" / "plugin_pkg"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """Install the fixture package for real (pip, into a separate folder put on PYTHONPATH)."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(PLUGIN)], check=True, capture_output=True, timeout=300)
    return site


def run_harness(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


@pytest.mark.slow  # ~12 s under `make test-fast` (two workers, one thread each)
def test_plugin_method_runs_with_its_own_config(plugin_site: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    proc = run_harness(plugin_site, *harness_args(tiny_model_dir, tmp_path, "method=scale_mlp", "method.factor=0.25"))
    assert proc.returncode == 0, proc.stderr
    (run_file,) = [p for p in tmp_path.rglob("*.json") if "baselines" not in p.parts]
    record = json.loads(run_file.read_text())
    assert record["config"]["method"] == {"name": "scale_mlp", "factor": 0.25, "layers": [0]}  # YAML + override
    assert list(record["method"]["report"]["changed"]) == ["model.layers.0.mlp.down_proj.weight"]


def test_plugin_shows_in_help(plugin_site: Path) -> None:
    proc = run_harness(plugin_site, "--help")
    assert proc.returncode == 0 and "scale_mlp" in proc.stdout


def test_name_registered_twice_is_an_error(tmp_path: Path) -> None:
    dist = tmp_path / "collide-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: collide\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[harness.methods]\nnone = collide.module:Other\n")
    proc = run_harness(tmp_path, "method=none")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "method 'none' is registered twice" in proc.stderr
