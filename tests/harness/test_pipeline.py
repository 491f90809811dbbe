"""A run end to end on a tiny saved model: the run file, reuse of finished work, resume after an
interruption, and the baseline shared between methods."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from conftest import harness_args
from harness.pipeline import run_experiment
from core.runrecord import SCHEMA_VERSION
from tasks.quotes import QuoteRecall
from tasks.verbatim import VerbatimRecall

CONF = Path(__file__).resolve().parents[2] / "conf"


def run(folder: Path, runs: Path, *extra: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=harness_args(folder, runs, *extra))
    return run_experiment(cfg)


@pytest.fixture
def count_evaluations(monkeypatch):
    calls: list[str] = []
    for cls in (VerbatimRecall, QuoteRecall):
        original = cls.evaluate

        def counted(self, model, tokenizer, ctx, _original=original, _name=cls.__name__):
            calls.append(f"{_name}:{ctx.role}")
            return _original(self, model, tokenizer, ctx)

        monkeypatch.setattr(cls, "evaluate", counted)
    return calls


def pretend_method_edits(monkeypatch) -> None:
    """Make method=none report a change, so the edited model is evaluated on its own."""
    from methods.none import NoEdit

    monkeypatch.setattr(NoEdit, "apply", lambda self, model, ctx: {"changed": {"nothing.really": {}}})


def test_run_file_has_the_documented_schema(tiny_model_dir: Path, tmp_path: Path) -> None:
    record = run(tiny_model_dir, tmp_path)
    files = [p for p in tmp_path.rglob("*.json") if "baselines" not in p.parts]
    assert len(files) == 1
    on_disk = json.loads(files[0].read_text())
    assert on_disk == json.loads(json.dumps(record, default=str))
    assert on_disk["schema_version"] == SCHEMA_VERSION and on_disk["status"] == "complete"
    assert set(on_disk["identity"]) == {"model", "method", "suite", "seed", "config_hash"}
    assert on_disk["identity"]["method"] == "none" and on_disk["identity"]["suite"] == "verbatim_files"
    assert on_disk["config"]["method"]["name"] == "none"
    for key in ("python", "torch", "transformers", "git_commit", "device"):
        assert key in on_disk["environment"]
    assert on_disk["method"]["data_needed"] == []
    assert set(on_disk["baseline"]["tasks"]) == set(on_disk["edited"]["tasks"]) == {"verbatim", "quotes"}
    entry = on_disk["edited"]["tasks"]["verbatim"]
    assert entry["family"] == "memorized_val" and entry["n"] == 6 and len(entry["samples"]["strict"]) == 6
    assert set(on_disk["timings"]) >= {"load_model", "baseline", "method", "evaluate"}


def test_finished_run_is_reused(tiny_model_dir: Path, tmp_path: Path, count_evaluations) -> None:
    first = run(tiny_model_dir, tmp_path)
    assert len(count_evaluations) == 2  # baseline only: method=none changes nothing
    second = run(tiny_model_dir, tmp_path)
    assert len(count_evaluations) == 2 and second == json.loads(json.dumps(first, default=str))


def test_interrupted_run_resumes_where_it_stopped(tiny_model_dir: Path, tmp_path: Path, monkeypatch,
                                                  count_evaluations) -> None:
    pretend_method_edits(monkeypatch)
    original = QuoteRecall.evaluate

    def crash_when_edited(self, model, tokenizer, ctx):
        if ctx.role == "edited":
            raise KeyboardInterrupt  # the user pressed ^C during the last task
        return original(self, model, tokenizer, ctx)

    monkeypatch.setattr(QuoteRecall, "evaluate", crash_when_edited)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_model_dir, tmp_path)
    partial = [json.loads(p.read_text()) for p in tmp_path.rglob("seed0-*.json")]
    assert len(partial) == 1 and partial[0]["status"] == "running"
    assert set(partial[0]["edited"]["tasks"]) == {"verbatim"}

    monkeypatch.setattr(QuoteRecall, "evaluate", original)
    count_evaluations.clear()
    record = run(tiny_model_dir, tmp_path)
    assert count_evaluations == ["QuoteRecall:edited"]  # the baseline and verbatim are not re-run
    assert record["status"] == "complete" and set(record["edited"]["tasks"]) == {"verbatim", "quotes"}


def test_baseline_is_shared_between_methods(tiny_model_dir: Path, tmp_path: Path, monkeypatch,
                                            count_evaluations) -> None:
    run(tiny_model_dir, tmp_path)
    assert sorted(count_evaluations) == ["QuoteRecall:baseline", "VerbatimRecall:baseline"]
    pretend_method_edits(monkeypatch)
    count_evaluations.clear()
    # Another method on the same model + suite (here: the same config with an editing method, its
    # finished run file removed) evaluates the edited model but not the baseline again.
    next(tmp_path.rglob("seed0-*.json")).unlink()
    run(tiny_model_dir, tmp_path)
    assert sorted(count_evaluations) == ["QuoteRecall:edited", "VerbatimRecall:edited"]
