"""The organism_full and olmo_paper suites: composition, families, instantiation, missing data."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from core.errors import ConfigError, DataError
from core.registry import instantiate
from harness.config import resolve_config
from harness.pipeline import parse_suite
from core.registry import load_class
from tasks.base import Task, TaskContext

CONF = Path(__file__).resolve().parents[2] / "conf"


def suite(name: str, *overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=[f"suite={name}", *overrides])
    return resolve_config(cfg)["suite"]


def build_all(entries: dict, data: str) -> dict:
    built = {}
    for name, entry in entries.items():
        params = {k: v for k, v in entry.items() if k != "task"} | ({"data": data} if "data" in entry else {})
        built[name] = instantiate(load_class("task", entry["task"], Task), params, f"task {name}")
    return built


def test_organism_full_has_every_family(tmp_path: Path) -> None:
    entries = parse_suite(suite("organism_full"))
    families = {e["family"] for e in entries.values()}
    assert families >= {"memorized", "memorized_val", "control", "quotes", "stress", "facts_common",
                        "facts_rare", "qa_closed", "qa_open", "arithmetic", "math_facts", "logic", "coherence"}
    assert all(e["data"].startswith("model:") for e in entries.values())
    assert entries["qa_open"]["data"] == entries["qa_closed"]["data"]  # same questions, see test_qa
    build_all(entries, str(tmp_path / "x.jsonl"))  # every entry's settings are accepted


def test_olmo_paper_wiring(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="suite.tasks.verbatim.data"):
        suite("olmo_paper")
    data = tmp_path / "v.jsonl"
    data.write_text("")
    entries = parse_suite(suite("olmo_paper", f"suite.tasks.verbatim.data={data}", f"suite.tasks.quotes.data={data}"))
    groups = {}
    for name, e in entries.items():
        groups.setdefault(e["family"], []).extend(e.get("task_names", [e["task"]]))
    assert set(groups) == {"memorized_val", "quotes", "logic", "qa_open", "qa_closed", "math"}
    assert {"boolq", "winogrande", "bbh_fewshot_web_of_lies", "gsm8k", "triviaqa"} <= {
        t for ts in groups.values() for t in ts}
    build_all(entries, str(data))


@pytest.mark.slow
def test_olmo_paper_tasks_exist_in_lm_eval_and_fail_cleanly_offline(tmp_path: Path, monkeypatch, hub_offline) -> None:
    """Every lm-eval name is in the installed registry (indexing takes ~13 s), and without the hub a
    registry task fails with a one-line DataError."""
    from lm_eval.tasks import TaskManager

    from tests.conftest import make_tiny_olmo2, make_tiny_tokenizer

    entries = suite("olmo_paper", "suite.tasks.verbatim.data=x", "suite.tasks.quotes.data=x")["tasks"]
    known = set(TaskManager(include_defaults=True).all_tasks)
    for name, e in entries.items():
        for t in e.get("task_names", []):
            assert t in known, f"{name}: {t} is not an lm-eval task"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty_cache"))
    task = build_all({"q": entries["logic_acc"] | {"task_names": ["boolq"], "limit": 2}}, "")["q"]
    ctx = TaskContext(torch.device("cpu"), 0, 2, "baseline", tmp_path)
    with pytest.raises(DataError, match="cannot load the dataset"):
        task.evaluate(make_tiny_olmo2(), make_tiny_tokenizer(), ctx)


def test_organism_lmeval_suite_builds(tmp_path: Path) -> None:
    entries = parse_suite(suite("organism_lmeval"))
    assert {e["family"] for e in entries.values()} == {"qa_closed", "qa_open", "facts_common", "facts_rare"}
    build_all(entries, str(tmp_path / "facts.jsonl"))
