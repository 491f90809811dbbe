"""Experiment trackers: tracker=tensorboard logs the resolved config, every metric and the
trade-off plot, read back here from the event files; a tracker whose package is missing is one
line, before any work."""

import importlib.util
import json
from pathlib import Path

import pytest

import harness
from conftest import harness_args
from core.errors import ConfigError
from harness.trackers import check_tracker, run_metrics
from test_app import assert_one_line_error, run_harness

pytest.importorskip("tensorboard", reason="tensorboard is in the test extra (pyproject.toml)")


def test_tensorboard_logs_config_metrics_and_the_tradeoff_plot(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # quotes counted as a coherence skill: the suite then has a trade-off to plot
    args = [a for a in harness_args(tiny_model_dir, tmp_path / "runs") if not a.startswith("runs_dir")]
    run = harness.evaluate(*args, "tracker=tensorboard", f"tracker.log_dir={tmp_path / 'tb'}",
                           "suite.tasks.quotes.family=coherence", runs_dir=tmp_path / "runs")
    [events] = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    ident = run["identity"]
    assert events.parent.relative_to(tmp_path / "tb").as_posix() == (
        f"{ident['model']}/{ident['suite']}/{ident['method']}/seed{ident['seed']}-{ident['config_hash'][:12]}")
    logged = EventAccumulator(str(events.parent), size_guidance={"scalars": 0, "images": 0, "tensors": 0}).Reload()
    scalars = {tag: logged.Scalars(tag)[0].value for tag in logged.Tags()["scalars"]}
    verbatim = run["edited"]["tasks"]["verbatim"]["metrics"]
    for metric, value in verbatim.items():
        assert scalars[f"edited/verbatim/{metric}"] == pytest.approx(value)
        assert scalars[f"baseline/verbatim/{metric}"] == pytest.approx(run["baseline"]["tasks"]["verbatim"]["metrics"][metric])
    assert set(scalars) == set(run_metrics(run))  # every metric, nothing else
    assert {"seconds/baseline", "seconds/method"} <= set(scalars)
    [text] = logged.Tensors("config/text_summary")
    config = json.loads(text.tensor_proto.string_val[0].decode().strip("`\n"))
    assert config == json.loads(json.dumps(run["config"], default=str))
    assert config["tracker"]["name"] == "tensorboard"
    [image] = logged.Images("tradeoff")
    assert image.width > 100 and image.height > 100


def test_a_missing_tracker_package_is_one_line_before_any_work(tiny_model_dir: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    proc = run_harness(*harness_args(tiny_model_dir, tmp_path / "runs", "tracker=wandb"))
    assert_one_line_error(proc, "tracker=wandb needs the 'wandb' package", "pip install wandb")
    assert proc.returncode == 2 and not (tmp_path / "runs").exists()
    with pytest.raises(ConfigError, match="tracker=wandb needs"):
        harness.evaluate(*harness_args(tiny_model_dir, tmp_path / "runs", "tracker=wandb"))
    assert_one_line_error(run_harness("tracker=tensorbord"), "unknown tracker 'tensorbord'", "did you mean 'tensorboard'")


def test_tracker_none_logs_nothing() -> None:
    assert check_tracker({"name": "none"}) is None and check_tracker(None) is None
    with pytest.raises(ConfigError, match="not known"):
        check_tracker({"name": "neptune"})


def test_mlflow_logs_config_metrics_and_the_tradeoff_plot(tmp_path: Path, monkeypatch) -> None:
    """Runs where mlflow is installed (it is not in the test extra: `pip install mlflow`)."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from harness.trackers import log_run
    from tests.leaderboard.synthetic import make_run

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the folder store behind this switch
    run = make_run("kfac", {"verbatim_validation": 0.25}, params={"rho": 0.9})
    uri = f"file:{tmp_path / 'mlruns'}"
    log_run(check_tracker({"name": "mlflow", "tracking_uri": uri, "experiment": "harness"}), run)
    client = MlflowClient(tracking_uri=uri)
    [logged] = client.search_runs([client.get_experiment_by_name("harness").experiment_id])
    assert logged.data.metrics == pytest.approx(run_metrics(run))
    assert logged.data.metrics["edited/verbatim_validation/score"] == 0.25 and logged.data.params["method.rho"] == "0.9"
    assert {a.path for a in client.list_artifacts(logged.info.run_id)} == {"config.json", "tradeoff.png"}
