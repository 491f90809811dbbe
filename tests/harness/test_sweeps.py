"""Sweeps: submitit_local jobs whose run files the leaderboard finds, a method-only key checked
before any job starts, one failing job that does not stop the others, and the shared-cache lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from conftest import harness_args
from core.io import file_lock
from harness.config import check_method_keys
from test_app import REPO, assert_one_line_error, run_harness


def run_files(runs: Path) -> list[Path]:
    from leaderboard.collect import collect

    found, _ = collect([runs])
    return sorted(path for path, _ in found)


@pytest.mark.slow  # ~15 s under `make test-fast` (two workers, one thread each)
def test_submitit_local_two_job_sweep_and_the_leaderboard_finds_both(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = run_harness("-m", "hydra/launcher=local", "method=none,svd",
                       *harness_args(tiny_model_dir, runs))
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = run_files(runs)
    assert len(found) == 2, found
    assert {p.parent.name for p in found} == {"none", "svd"}
    assert list((runs / "multirun" / ".submitit").iterdir())  # the jobs ran through submitit


def test_a_method_only_key_swept_over_methods_fails_before_any_job(tmp_path: Path) -> None:
    proc = run_harness("-m", "method=kfac,npo", "method.lr=1e-3", f"runs_dir={tmp_path}")
    assert_one_line_error(proc, "method.lr is not a setting of method kfac (only npo has it)")
    assert not (tmp_path / "multirun").exists()  # no job started


def test_method_key_check_passes_keys_every_method_has() -> None:
    conf = REPO / "conf"
    check_method_keys(["method=kfac,random_ablation", "method.rho=0.5,0.7"], conf)
    check_method_keys(["method=npo", "method.lr=1e-3"], conf)
    check_method_keys(["+method.anything=1"], conf)  # '+' adds a key: left to the method's own check
    with pytest.raises(Exception, match="method.lr is not a setting of method none"):
        check_method_keys(["method.lr=1e-3"], conf)  # the default method is none


@pytest.mark.slow  # two jobs on the tiny model: ~10 s
def test_one_failing_job_does_not_stop_the_others(tiny_model_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = run_harness("-m", "seed=abc,0", *harness_args(tiny_model_dir, runs))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert any("job #0" in line and "seed must be an integer" in line for line in errors), proc.stderr
    assert "1 sweep job(s) failed (the others finished)" in errors[-1]
    assert len(run_files(runs)) == 1  # seed=0 ran after seed=abc failed


def test_file_lock_lets_one_holder_in_at_a_time(tmp_path: Path) -> None:
    target = tmp_path / "baseline.json"
    inside: list[str] = []

    def second() -> None:
        with file_lock(target):
            inside.append("second")

    with file_lock(target):
        inside.append("first")
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        assert inside == ["first"]  # the second holder waits
    thread.join(5)
    assert inside == ["first", "second"]
    assert not (tmp_path / "baseline.json.lock").exists() and not target.exists()  # no lock file left (issue 29)


@pytest.mark.slow  # ~15 s under `make test-fast` (two workers, one thread each)
def test_torchrun_two_cpu_processes_run_kfac_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`torchrun --nproc-per-node 2 -m harness ... method=kfac` with gloo: both ranks read a shard
    of the statistics, rank 0 alone writes the factor file and the one run file."""
    import json
    import os
    import subprocess
    import sys

    runs = tmp_path / "runs"
    args = harness_args(tiny_model_dir, runs, "method=kfac", "method.tokens=512", "method.seq_len=16",
                        "method.batch_size=4", f"model.data.stats={tiny_model_dir / 'text.txt'}")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "harness", *args], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = run_files(runs)
    report = json.loads(path.read_text())["method"]["report"]
    assert report["processes"] == 2 and report["factor_cache"] == "miss" and report["tokens"] == 512
    assert len(list((runs / "cache" / "methods" / "kfac").glob("*.safetensors"))) == 1


def test_shipped_launcher_configs_compose_with_overridable_cluster_keys() -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = compose("config", return_hydra_config=True, overrides=[
            "hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=4",
            "hydra.launcher.timeout_min=600", "hydra.launcher.mem_gb=128"])
        launcher = cfg.hydra.launcher
        assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
        assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min, launcher.mem_gb) == ("gpu", 4, 600, 128)
        local = compose("config", return_hydra_config=True, overrides=["hydra/launcher=local"])
        assert local.hydra.launcher._target_.endswith("submitit_launcher.LocalLauncher")


# --- Recorded sweeps (conf/sweep/<method>.yaml, python -m harness.sweep; issue 18) ----------------

def sweep_params(preset: str) -> tuple[dict, dict[str, str]]:
    """(the composed config of `sweep=<preset>`, its sweeper params)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base=None):
        cfg = compose("config", overrides=[f"sweep={preset}"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params)
    return OmegaConf.to_container(cfg, resolve=False), params  # type: ignore[return-value]


def test_every_method_has_a_recorded_organism_sweep() -> None:
    import importlib.metadata

    from harness.sweep import sweep_presets

    methods = {ep.name for ep in importlib.metadata.entry_points(group="harness.methods")}
    assert methods <= set(sweep_presets())


@pytest.mark.parametrize("preset", sorted(p.stem for p in (REPO / "conf" / "sweep").glob("*.yaml")))
def test_a_sweep_preset_sweeps_settings_its_method_has_over_three_seeds(preset: str) -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg, params = sweep_params(preset)
    assert cfg["model"]["organism"]["seed"] == "${seed}"  # each seed trains its own organism
    parsed = {o.key_or_group: o for o in OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])}
    assert list(parsed["seed"].sweep_string_iterator()) == ["0", "1", "2"]
    for key, override in parsed.items():
        if key.startswith("method."):
            assert key.split(".", 1)[1] in cfg["method"], f"{preset}: {key} is not a setting of {cfg['method']['name']}"
            assert len(list(override.sweep_string_iterator())) >= 2, f"{preset}: {key} is not swept"
    if preset != "none":
        assert any(k.startswith("method.") for k in parsed), f"{preset} sweeps no method setting"


def test_sweep_command_is_a_multirun_of_the_preset() -> None:
    from core.errors import ConfigError
    from harness.sweep import sweep_command

    assert sweep_command(["method=kfac", "seed=0", "runs_dir=x"]) == ["-m", "sweep=kfac", "seed=0", "runs_dir=x"]
    with pytest.raises(ConfigError, match="did you mean 'kfac'"):
        sweep_command(["method=kfc"])
    with pytest.raises(ConfigError, match="one method"):
        sweep_command(["method=kfac,svd"])
    with pytest.raises(ConfigError, match="one method"):
        sweep_command(["seed=0"])


@pytest.mark.slow  # ~15 s under `make test-fast` (two workers, one thread each)
def test_a_sweep_runs_its_preset_and_resumes(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`python -m harness.sweep` end to end on the tiny model: the preset's method and its swept
    setting reach the run files; a rerun reuses them."""
    runs = tmp_path / "runs"
    args = ["method=svd", "seed=0", "method.layers=[-1]",
            "method.fractions={gate:0.1,up:0.1,down:0.1},{gate:0.5,up:0.5,down:0.5}",
            *harness_args(tiny_model_dir, runs)]
    proc = run_harness(*args, module="harness.sweep")
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = run_files(runs)
    assert len(found) == 2 and {p.parent.name for p in found} == {"svd"}
    again = run_harness(*args, module="harness.sweep")
    assert again.returncode == 0 and again.stdout.count("reusing finished run") == 2
