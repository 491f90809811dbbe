"""suite=own_model on the tiny saved model: memorization and skills numbers for any model, and
the leaderboard's trade-off plot from them."""

import json
import logging
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from harness.pipeline import run_experiment

CONF = Path(__file__).resolve().parents[2] / "conf"
LM_EVAL_ENTRIES = ("logic", "qa_open", "math_simple")


def own_model_args(folder: Path, runs: Path, *extra: str) -> list[str]:
    return ["model=hf", f"model.path={folder / 'model'}", "suite=own_model",
            f"suite.tasks.verbatim.data={folder / 'verbatim.jsonl'}",
            f"suite.tasks.quotes.data={folder / 'quotes.jsonl'}", f"suite.text={folder / 'text.txt'}",
            f"runs_dir={runs}", f"cache_dir={runs / 'cache'}", "device=cpu", *extra]


def run(args: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=args)
    return run_experiment(cfg)


def test_own_model_runs_and_the_leaderboard_draws_its_tradeoff(tiny_model_dir: Path, tmp_path: Path) -> None:
    from leaderboard import aggregate, plots
    from leaderboard.__main__ import build
    from leaderboard.collect import collect

    runs = tmp_path / "runs"
    no_lm_eval = [f"~suite.tasks.{name}" for name in LM_EVAL_ENTRIES]  # no lm-eval data at all
    for method in ("none", "svd"):
        record = run(own_model_args(tiny_model_dir, runs, f"method={method}", *no_lm_eval))
        assert record["status"] == "complete"
        assert {t["family"] for t in record["edited"]["tasks"].values()} == {"memorized_val", "quotes", "coherence"}
    assert (runs / "model" / "own_model" / "svd").is_dir()  # named after the model folder

    families = aggregate.family_table(aggregate.long_table(collect([runs])[0]))
    assert plots.tradeoff_y_families(set(families.family)) == ["coherence"]
    assert set(families.method) == {"none", "svd"}
    svd = families[(families.method == "svd") & (families.family == "coherence")].pct_kept
    assert len(svd) == 1 and svd.iloc[0] < 100  # the edit moved perplexity / nDCG@10 off the baseline
    assert plots.tradeoff_png(families) is not None
    result = build([runs], tmp_path / "board", parquet=False)
    assert result["runs"] == 2 and "Memorization vs skills trade-off" in (tmp_path / "board" / "index.html").read_text()


def test_own_model_runs_without_a_quotes_file(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    """Issue 29: suite=own_model demanded a quotes file (dropping it needed Hydra's undocumented
    ~suite.tasks.quotes). Without one the quotes task is skipped with one line; perplexity scores
    every token of the text (several windows, n = windows)."""
    args = [a for a in own_model_args(tiny_model_dir, tmp_path / "runs", "method=none",
                                      *[f"~suite.tasks.{name}" for name in LM_EVAL_ENTRIES])
            if not a.startswith("suite.tasks.quotes.data=")]
    record = run([*args, "+suite.tasks.perplexity.seq_len=64"])
    assert record["status"] == "complete" and "quotes" not in record["edited"]["tasks"]
    assert "skipped quotes (baseline): quotes: no quotes file; set suite.tasks.quotes.data=" in capsys.readouterr().out
    # text.txt: 50 documents of 40 words, each + EOS = 2050 tokens: 32 full windows of 64 and a remainder of 2
    assert record["edited"]["tasks"]["perplexity"]["n"] == 33


@pytest.mark.slow  # lm-eval indexes its ~15k built-in tasks (~13 s)
@pytest.mark.parametrize("suite", ["own_model", "olmo_paper"])
def test_lm_eval_tasks_run_from_a_local_copy_and_the_rest_are_skipped(
        suite: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch, caplog, hub_offline) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "empty_cache"))
    copies = tmp_path / "copies" / "arithmetic_2da"
    copies.mkdir(parents=True)
    rows = [{"context": f"Q: What is w{i} plus w{i + 1}?\n\nA:", "completion": f" w{i + 2}"} for i in range(10, 16)]
    (copies / "validation.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    args = own_model_args(tiny_model_dir, tmp_path / "runs", f"suite.local_datasets={copies.parent}",
                          "suite.tasks.math_simple.num_fewshot=0")
    if suite == "olmo_paper":
        args = [a.replace("suite=own_model", "suite=olmo_paper") for a in args if not a.startswith("suite.text=")]
    with caplog.at_level(logging.WARNING, logger="harness"):
        record = run(args)
    tasks = record["baseline"]["tasks"]
    expected = {"verbatim", "quotes", "math_simple"} | ({"perplexity", "ndcg10"} if suite == "own_model" else set())
    assert set(tasks) == expected
    assert tasks["math_simple"]["n"] == 6 and list(tasks["math_simple"]["metrics"]) == ["arithmetic_2da/acc", "acc"]
    skipped = [r.getMessage() for r in caplog.records if "skipped lm-eval task" in r.getMessage()]
    names = {m.split("'")[1] for m in skipped}
    assert {"boolq", "winogrande", "openbookqa", "arithmetic_2ds"} <= names
    if suite == "olmo_paper":
        assert {"gsm8k", "triviaqa", "nq_open", "mmlu_pro_math", "bbh_fewshot_web_of_lies"} <= names
    # one line per task: the edited pass (method=none re-evaluates skipped entries) says nothing new
    assert len(skipped) == len(names) and all("\n" not in m for m in skipped)  # once, not per role
