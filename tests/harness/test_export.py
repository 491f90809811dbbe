"""Export of the edited model (save_edited=<dir>, harness.edit(save_to=...)): a save_pretrained
folder that transformers reloads with identical logits and lm-eval scores, with its provenance;
written atomically, and never over a folder that is not an earlier export."""

import json
import random
from pathlib import Path

import pytest
import torch

import harness
from conftest import WORDS, harness_args, make_tiny_olmo2, make_tiny_tokenizer
from core.errors import ConfigError
from harness.export import MARKER, weights_digest
from test_app import assert_one_line_error, run_harness


def stats_texts() -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(40)]


def edit_and_export(folder: Path):
    model, tokenizer = make_tiny_olmo2(), make_tiny_tokenizer()
    base = weights_digest(model)
    harness.edit(model, tokenizer=tokenizer, method="kfac", data={"stats": stats_texts()}, tokens=1500,
                 seq_len=32, rho=0.9, save_to=folder)
    return model, base


def test_export_reloads_with_identical_logits_and_records_its_provenance(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    edited, base = edit_and_export(tmp_path / "edited")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "edited")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "edited")
    ids = tokenizer(["w1 w2 w3 w4 w5 w6", "w7 w8 w9 w10 w11 w12"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, edited(ids).logits)
        assert not torch.equal(make_tiny_olmo2()(ids).logits, edited(ids).logits)  # the edit is in it
    files = {p.name for p in (tmp_path / "edited").iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", MARKER, "README.md"} <= files
    assert not any(name.endswith(".bin") for name in files)
    record = json.loads((tmp_path / "edited" / MARKER).read_text())
    assert record["base_model"]["weights_sha256"] == base != record["edited_weights_sha256"]
    assert record["edited_weights_sha256"] == weights_digest(reloaded)
    assert record["method"]["label"] == "kfac" and record["method"]["settings"]["rho"] == 0.9
    assert record["method"]["statistics"]["tokens"] > 0 and len(record["method"]["changed"]) == 6
    assert base in (tmp_path / "edited" / "README.md").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["edited"]  # no temporary folder left beside it


def test_lm_eval_scores_the_exported_folder(tmp_path: Path, monkeypatch, hub_offline) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    edit_and_export(tmp_path / "edited")
    rows = [{"question": f"w{i} w{i + 1}", "choices": [f"w{i + 2}", f"w{i + 9}"], "gold": 0} for i in range(10, 18)]
    (tmp_path / "mc.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "export_mc.yaml").write_text(
        "task: export_mc\ndataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {tmp_path / 'mc.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{question}}'\n"
        "doc_to_choice: '{{choices}}'\ndoc_to_target: gold\nmetric_list:\n  - metric: acc\n")
    results = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={tmp_path / 'edited'},dtype=float32", tasks=["export_mc"],
        task_manager=TaskManager(include_path=str(tmp_path / "tasks"), include_defaults=False),
        device="cpu", batch_size=4)
    acc = results["results"]["export_mc"]["acc,none"]
    assert 0.0 <= acc <= 1.0 and results["n-samples"]["export_mc"]["effective"] == len(rows)


def test_never_overwrites_a_folder_that_is_not_an_export(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not an earlier export"):
        edit_and_export(tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        edit_and_export(tmp_path / "file")


def test_an_export_replaces_an_earlier_one_and_a_failed_one_changes_nothing(tmp_path: Path, monkeypatch) -> None:
    from harness import export

    (tmp_path / "empty").mkdir()
    edit_and_export(tmp_path / "empty")  # an empty folder is fine
    assert (tmp_path / "empty" / MARKER).is_file()
    edit_and_export(tmp_path / "edited")
    first = (tmp_path / "edited" / MARKER).read_text()
    edit_and_export(tmp_path / "edited")  # ours: replaced
    assert json.loads((tmp_path / "edited" / MARKER).read_text())["created"] and (tmp_path / "edited" / "model.safetensors").is_file()

    def broken_card(record):
        raise OSError("disk full")

    monkeypatch.setattr(export, "model_card", broken_card)
    before = (tmp_path / "edited" / MARKER).read_text()
    with pytest.raises(OSError, match="disk full"):
        edit_and_export(tmp_path / "edited")
    assert (tmp_path / "edited" / MARKER).read_text() == before != ""  # the earlier export is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited", "empty"]  # no half-written folder
    assert first


def test_save_edited_from_a_run_records_the_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    from harness.pipeline import run_experiment
    from test_pipeline import CONF

    from hydra import compose, initialize_config_dir

    args = harness_args(tiny_model_dir, tmp_path / "runs", "method=kfac", "method.tokens=1500", "method.seq_len=32",
                        f"model.data.stats={tiny_model_dir / 'text.txt'}")
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=args)
        exporting = compose(config_name="config", overrides=args + [f"save_edited={tmp_path / 'edited'}"])
    run = run_experiment(cfg)  # a finished run without export ...
    again = run_experiment(exporting)  # ... is exported when asked: the same identity, the method re-applied
    assert again["identity"] == run["identity"] and again["export"]["folder"] == str(tmp_path / "edited")
    record = json.loads((tmp_path / "edited" / MARKER).read_text())
    assert record["run"]["identity"] == run["identity"]
    assert set(record["headline_metrics"]) == {"verbatim", "quotes"}
    verbatim = record["headline_metrics"]["verbatim"]
    assert verbatim["metric"] == run["edited"]["tasks"]["verbatim"]["primary"]
    assert verbatim["edited"] == run["edited"]["tasks"]["verbatim"]["metrics"][verbatim["metric"]]
    assert record["method"]["settings"]["tokens"] == 1500 and record["method"]["statistics"]["tokens"] > 0
    assert record["edited_weights_sha256"] == again["export"]["edited_weights_sha256"]


def test_command_line_refuses_a_foreign_folder_before_loading(tiny_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    proc = run_harness(*harness_args(tiny_model_dir, tmp_path / "runs", f"save_edited={tmp_path / 'mine'}"))
    assert_one_line_error(proc, "save_edited=", "not an earlier export")
    assert proc.returncode == 2 and not (tmp_path / "runs").exists()  # nothing ran


@pytest.mark.slow  # a two-job sweep in a subprocess (~15 s on 2 cores)
def test_a_sweep_exports_each_job_into_its_own_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    proc = run_harness("-m", *harness_args(tiny_model_dir, tmp_path / "runs", "method=none,kfac",
                                           f"model.data.stats={tiny_model_dir / 'text.txt'}",
                                           f"save_edited={tmp_path / 'edited'}"))
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p.name for p in (tmp_path / "edited").iterdir())
    assert [name.split("-")[0] for name in jobs] == ["0", "1"] and "method=kfac" in jobs[1]
    labels = [json.loads((tmp_path / "edited" / j / MARKER).read_text())["method"]["label"] for j in jobs]
    assert labels == ["none", "kfac"]
