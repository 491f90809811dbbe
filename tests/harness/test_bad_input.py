"""Issue 14: every bad input ends in ONE clear stderr line (what was wrong, where, what is valid)
with exit code != 0, before the expensive work, and no finished work is lost.

The table runs the real entry points in-process (harness.app.main, studies.mine.main,
leaderboard.__main__.main with sys.argv patched) on the tiny saved model of conftest.py.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import WORDS, harness_args

Setup = Callable[[Path, Path], list[str]]  # (tiny model folder, tmp folder) -> extra argv


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def verbatim_file(rows: list[dict]) -> Setup:
    """Replace the verbatim data with `rows` (a good row first, so the bad one is on line 2)."""
    def setup(folder: Path, tmp: Path) -> list[str]:
        good = {"prefix_ids": [5, 6, 7], "suffix_ids": [8, 9]}
        return [f"suite.tasks.verbatim.data={write_jsonl(tmp / 'bad.jsonl', [good, *rows])}"]
    return setup


def args(*extra: str) -> Setup:
    return lambda folder, tmp: list(extra)


def corrupt_weights(folder: Path, tmp: Path) -> list[str]:
    model = tmp / "corrupt_model"
    shutil.copytree(folder / "model", model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return [f"model.path={model}"]


def a_file(name: str) -> Setup:
    def setup(folder: Path, tmp: Path) -> list[str]:
        (tmp / "afile").write_text("x")
        return [f"{name}={tmp / 'afile'}"]
    return setup


def method_data(method: str, key: str, content: bytes | str | None, name: str, *extra: str) -> Setup:
    """`method=<method>` with model.data.<key> a file holding `content` (None: no such file)."""
    def setup(folder: Path, tmp: Path) -> list[str]:
        path = tmp / name
        if content is not None:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return [f"method={method}", f"model.data.{key}={path}", *extra]
    return setup


VERBATIM_ROW = json.dumps({"prefix_text": "w1 w2 w3", "suffix_text": "w4 w5"}) + "\n"
def with_forget(setup: Setup) -> Setup:
    return lambda folder, tmp: [*setup(folder, tmp), f"model.data.forget={folder / 'verbatim.jsonl'}"]


# (id, setup, substrings the one error line must contain)
HARNESS_CASES = [
    # 0. data the METHOD reads (issue 29: checked only after the baseline): with the suite's data
    ("stats-not-given", args("method=kfac"), ["this method needs stats data", "model.data.stats=<path or model:name>"]),
    ("stats-missing-file", method_data("kfac", "stats", None, "nostats.txt"),
     ["model.data.stats: data file not found", "nostats.txt"]),
    ("stats-empty-file", method_data("kfac", "stats", "", "stats.txt"), ["model.data.stats:", "holds no text"]),
    ("stats-latin1", method_data("kfac", "stats", "caf\u00e9\n".encode("latin-1"), "stats.txt"),
     ["model.data.stats:", "stats.txt: not UTF-8 text", "re-save it as UTF-8"]),
    ("stats-binary-jsonl", method_data("kfac", "stats", bytes(range(256)), "stats.jsonl"),
     ["model.data.stats:", "not UTF-8 text"]),
    ("stats-invalid-jsonl", method_data("kfac", "stats", '{"text": "w1"}\n{oops\n', "stats.jsonl"),
     ["model.data.stats:", "stats.jsonl:2: not valid JSON"]),
    ("forget-not-given", args("method=gradient_ascent"), ["this method needs forget data", "model.data.forget="]),
    ("forget-invalid-json", method_data("gradient_ascent", "forget", "{oops\n", "forget.jsonl"),
     ["forget.jsonl:1: not valid JSON"]),
    ("forget-binary", method_data("gradient_ascent", "forget", bytes(range(256)), "forget.jsonl"),
     ["forget.jsonl: not UTF-8 text", "one JSON object a line"]),
    ("forget-empty", method_data("npo", "forget", "", "forget.jsonl", "method.retain_weight=0"),
     ["model.data.forget:", "holds no examples", "an empty forget set", "0 steps"]),
    ("forget-bad-row", method_data("gradient_ascent", "forget", VERBATIM_ROW + '{"prefix": "w1"}\n', "forget.jsonl"),
     ["forget.jsonl:2:", "needs 'prefix_ids' or 'prefix_text'"]),
    ("retain-empty", with_forget(method_data("grad_diff", "retain", "", "retain.txt")),
     ["model.data.retain:", "fewer than 128 tokens", "retain_seq_len=128"]),
    ("retain-binary", with_forget(method_data("grad_diff", "retain", bytes(range(256)) * 4, "retain.txt")),
     ["retain.txt: not UTF-8 text"]),
    # 1. data files: checked against the model when read, before any generation
    ("id-outside-vocab", verbatim_file([{"prefix_ids": [5, 9999], "suffix_ids": [5]}]),
     ["bad.jsonl:2:", "token id 9999 is outside the model's vocabulary", "valid: 0..123"]),
    ("negative-id", verbatim_file([{"prefix_ids": [5, -1], "suffix_ids": [5]}]),
     ["bad.jsonl:2:", "token id -1"]),
    ("empty-prefix", verbatim_file([{"prefix_ids": [], "suffix_ids": [5]}]), ["bad.jsonl:2:", "empty prefix"]),
    ("empty-suffix", verbatim_file([{"prefix_text": "w1 w2", "suffix_text": ""}]), ["bad.jsonl:2:", "empty suffix"]),
    ("non-integer-ids", verbatim_file([{"prefix_ids": [5, "w3"], "suffix_ids": [5]}]),
     ["bad.jsonl:2:", "prefix_ids must be a list of integer token ids"]),
    ("float-ids", verbatim_file([{"prefix_ids": [5, 6.5], "suffix_ids": [5]}]), ["bad.jsonl:2:", "integer"]),
    ("longer-than-positions", verbatim_file([{"prefix_ids": [5] * 100, "suffix_ids": [6] * 40}]),
     ["bad.jsonl:2:", "140 tokens, longer than the model's 128 positions"]),
    ("not-json", lambda f, t: [f"suite.tasks.verbatim.data={t / 'x.jsonl'}"] if (t / "x.jsonl").write_text(
        "{oops\n") else [], ["x.jsonl:1: not valid JSON"]),
    ("quote-without-text", lambda f, t: [f"suite.tasks.quotes.data={write_jsonl(t / 'q.jsonl', [{'full_quote': 'w1 ' * 12}, {'quote': 'w2'}])}"],
     ["q.jsonl:2:", "'full_quote'"]),
    # 2. output places, checked before the model loads
    ("runs-dir-is-a-file", a_file("runs_dir"), ["runs_dir=", "is not a folder"]),
    ("cache-dir-is-a-file", a_file("cache_dir"), ["cache_dir=", "is not a folder"]),
    ("runs-dir-unwritable", args("runs_dir=/proc/harness-runs"), ["runs_dir=/proc/harness-runs is not writable"]),
    # 3. weights
    ("truncated-safetensors", corrupt_weights, ["safetensors file is truncated or corrupt", "corrupt_model"]),
    # 5. config values
    ("batch-size-zero", args("eval.batch_size=0"), ["eval.batch_size must be a positive integer, got 0"]),
    ("batch-size-negative", args("eval.batch_size=-3"), ["eval.batch_size must be a positive integer, got -3"]),
    ("method-key-typo", args("method=kfac", "method.rhoo=0.9"),
     ["method kfac has no setting 'rhoo'", "did you mean 'rho'", "its settings:", "layers"]),
    ("eval-key-typo", args("eval.batch_sise=4"), ["unknown config key 'eval.batch_sise'", "did you mean 'batch_size'"]),
    ("top-level-typo", args("sead=1"), ["unknown config key 'sead'", "did you mean 'seed'"]),
    ("layer-out-of-range", args("method=kfac", "method.layers=[99]"),
     ["method kfac:", "layer 99 does not exist", "layers 0..1"]),
    ("finetune-layer-out-of-range", args("method=gradient_ascent", "method.layers=[5]"),
     ["method gradient_ascent:", "layer 5 does not exist"]),
    # K-FAC's layer band and memory option (issue 29, items 6 and 12)
    ("kfac-band-and-layers", args("method=kfac_paper", "method.layers=[1]"),
     ["both choose layers", "method.band_at=null", "method.layers=null"]),
    ("kfac-band-out-of-range", args("method=kfac_paper", "method.band_at=1.5"),
     ["band_at must be null or a fraction of the depth in [0, 1], got 1.5"]),
    ("kfac-checkpointing-not-bool", args("method=kfac", "method.checkpointing=often"),
     ["checkpointing must be true or false, got 'often'"]),
    # Hydra's own errors (issue 29): one line, exit 2, before anything loads
    ("empty-group-choice", args("method="), ["method= names no method", "valid: ", "kfac"]),
    ("delete-seed", args("~seed"), ["'~seed' deletes a key the harness reads", "set seed=<value>"]),
    ("grammar-parenthesis", args("method=kfac", "method.rho=0.9)"),
     ["bad override 'method.rho=0.9)'", "extraneous input ')'", "override_grammar"]),
    ("grammar-open-bracket", args("method=kfac", "method.module_pattern=["), ["bad override 'method.module_pattern=['"]),
    ("unknown-launcher", args("hydra/launcher=bogus"), ["hydra/launcher/bogus", "valid: basic"]),
    ("added-unknown-key", args("+foo=1"), ["unknown config key 'foo'", "valid keys at the top level:", "seed"]),
    ("added-existing-key", args("+seed=1"), ["An item is already at 'seed'", "++seed=1"]),
    # a task's limit, before the model loads (issue 29: -5 was a Python slice, abc a TypeError)
    *[(f"quotes-limit-{v}", args(f"suite.tasks.quotes.limit={v}"),
       ["suite.tasks.quotes.limit must be a positive integer", "or null", f"got {r}"])
      for v, r in (("-5", "-5"), ("abc", "'abc'"), ("0", "0"))],
    # found by benchmarks/hostile_battery.py (benchmarks/hostile_battery.md)
    ("lr-nan", args("method=npo", "method.lr=nan"), ["lr must be a positive number, got nan"]),  # was a traceback
    ("lr-inf", args("method=gradient_ascent", "method.lr=inf"), ["lr must be a positive number, got inf"]),
    # was caught only when training reached the first batch, after the baseline
    ("prefix-len-longer-than-forget", with_forget(args("method=gradient_ascent")),
     ["method gradient_ascent:", "prefix_len=64 leaves nothing to score in 6 of 6 forget examples",
      "set method.prefix_len below 24 or method.forget_loss_on=all"]),
    ("neuron-prefix-len-longer-than-forget", with_forget(args("method=neuron_zero_out")),
     ["method neuron_zero_out:", "prefix_len=64", "set method.prefix_len below 24"]),
    ("kfac-seq-len-over-positions", lambda f, t: ["method=kfac", f"model.data.stats={f / 'text.txt'}", "method.seq_len=1000"],
     ["method kfac:", "seq_len=1000 is longer than the model's 128 positions", "method.seq_len=128 or less"]),
    ("kfac-stats-shorter-than-seq-len", method_data("kfac", "stats", "w1 w2 w3\n", "stats.txt", "method.seq_len=64"),
     ["method kfac:", "holds fewer than seq_len=64 tokens"]),
    ("stats-hf-unreachable", args("method=kfac", "model.data.stats=hf:no/such_dataset_xyz"),
     ["model.data.stats:", "cannot load dataset 'no/such_dataset_xyz'"]),
    ("several-values-without-m", args("method=kfac,npo"), ["'method=kfac,npo' lists several values", "add -m"]),
    ("debug-not-bool", args("debug=maybe"), ["debug must be true or false, got 'maybe'"]),  # was accepted
    ("hub-not-bool", args("hub=maybe"), ["hub must be true or false, got 'maybe'"]),
    ("trust-remote-code-not-bool", args("model.trust_remote_code=maybe"),
     ["model.trust_remote_code must be true or false, got 'maybe'"]),
    ("flag-between-overrides", args("-m", "seed=1"), ["unrecognized arguments: seed=1", "flags (-m) go before the overrides"]),
    ("unknown-flag", args("--foo"), ["unrecognized arguments: --foo"]),  # was Hydra's usage text
    ("dict-value-with-unknown-key", args("method=svd", "method.fractions={foo:0.5}"),
     ["method.fractions={foo:0.5}: method.fractions has no key 'foo'", "(its keys: gate, up, down)",
      "'++method.fractions={foo:0.5}' adds keys"]),  # was Hydra's lines, exit 1
]


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run an entry point in-process; returns (exit code, stderr lines)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def run(main: Callable[[], object], prog: str, argv: list[str]) -> tuple[int, list[str]]:
        monkeypatch.setattr(sys, "argv", [prog, *argv])
        capsys.readouterr()
        try:
            code = main()
            code = 0 if code is None else code
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        return code, err

    return run


def run_harness(cli, argv: list[str]) -> tuple[int, list[str]]:
    from harness.app import main

    return cli(main, "harness", argv)


def assert_one_line(code: int, err: list[str], needles: list[str], prefix: str = "error: ") -> None:
    assert code != 0, err
    assert len(err) == 1, "\n".join(err)
    assert err[0].startswith(prefix), err[0]
    for needle in needles:
        assert needle in err[0], err[0]


@pytest.mark.parametrize("setup,needles", [pytest.param(*c[1:], id=c[0]) for c in HARNESS_CASES])
def test_bad_input_is_one_line(cli, tiny_model_dir: Path, tmp_path: Path, setup: Setup, needles: list[str],
                               hub_retries_without_waits) -> None:
    runs = tmp_path / "runs"
    code, err = run_harness(cli, harness_args(tiny_model_dir, runs, *setup(tiny_model_dir, tmp_path)))
    assert_one_line(code, err, needles)
    # Caught before the expensive work: no baseline was evaluated, no run file written.
    assert not list(runs.rglob("*.json")) if runs.is_dir() else True
    # Nothing left behind (issue 29): no lock file, no empty run folder (the cache is not the run's).
    assert not list(tmp_path.rglob("*.lock"))
    empty = [d for d in runs.rglob("*") if d.is_dir() and not any(d.iterdir()) and (runs / "cache") not in (d, *d.parents)]
    assert not empty, empty


def test_ctrl_c_is_one_line_exit_130_and_resumes(cli, tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from tasks.quotes import QuoteRecall

    original = QuoteRecall.evaluate

    def pressed_ctrl_c(self, model, tokenizer, ctx):
        raise KeyboardInterrupt

    monkeypatch.setattr(QuoteRecall, "evaluate", pressed_ctrl_c)
    code, err = run_harness(cli, harness_args(tiny_model_dir, tmp_path))
    assert code == 130 and len(err) == 1, err
    assert err[0].startswith("interrupted:") and "run the same command again to resume" in err[0]
    baseline = json.loads(next((tmp_path / "baselines").glob("*.json")).read_text())
    assert set(baseline["tasks"]) == {"verbatim"}  # the finished task was kept
    monkeypatch.setattr(QuoteRecall, "evaluate", original)
    code, err = run_harness(cli, harness_args(tiny_model_dir, tmp_path))
    assert code == 0 and err == []


def test_poisoned_baseline_cache_is_recomputed_with_a_warning(cli, tiny_model_dir: Path, tmp_path: Path) -> None:
    """A cached baseline whose JSON is valid but whose entries are not (a NaN metric, a missing
    field) is named in one warning line per bad entry and those entries are recomputed."""
    code, err = run_harness(cli, harness_args(tiny_model_dir, tmp_path))
    assert code == 0 and err == []
    path = next((tmp_path / "baselines").glob("*.json"))
    good = json.loads(path.read_text())
    poisoned = json.loads(path.read_text())
    poisoned["tasks"]["verbatim"]["metrics"]["strict"] = math.nan
    del poisoned["tasks"]["quotes"]["n"]
    path.write_text(json.dumps(poisoned))
    for run_file in tmp_path.rglob("seed0-*.json"):
        run_file.unlink()  # force a new run that reads the cached baseline
    code, err = run_harness(cli, harness_args(tiny_model_dir, tmp_path))
    assert code == 0 and len(err) == 2, err
    assert all(line.startswith(f"warning: cached baseline {path}") for line in err)
    assert "metrics.strict is NaN" in err[0] and "quotes.n missing" in err[1]
    recomputed = json.loads(path.read_text())
    for name in ("verbatim", "quotes"):
        assert recomputed["tasks"][name]["metrics"] == good["tasks"][name]["metrics"]


def test_unreachable_hub_id_is_one_line_at_once_offline_first(tmp_path: Path) -> None:
    """Without hub=true the hub is not contacted: one line, at once, naming the switch."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(OMP_NUM_THREADS="1", HF_HOME=str(tmp_path / "hf"))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness", "model=hf", "model.path=allenai/no-such-model-here",
                           "suite=verbatim_files", "suite.tasks.verbatim.data=x", "suite.tasks.quotes.data=x",
                           f"runs_dir={tmp_path}", f"cache_dir={tmp_path / 'cache'}"],
                          capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2], timeout=120)
    seconds = time.perf_counter() - start
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert_one_line(proc.returncode, err, ["allenai/no-such-model-here", "hub=true", "model.path="])
    assert seconds < 30  # no minute of retries (the bare start-up takes a few seconds on 2 cores)


def test_generation_passes_the_cache_by_its_current_name(tiny_olmo2) -> None:
    """transformers 5 renamed `past_key_values` to `cache` (the old name warns on every run):
    greedy_generate must use the name the model's forward takes."""
    import inspect

    import torch

    from tasks.generation import greedy_generate

    seen: list[set[str]] = []
    original = tiny_olmo2.forward

    def recording_forward(*a, **kw):
        seen.append(set(kw))
        return original(*a, **kw)

    recording_forward.__signature__ = inspect.signature(original)  # type: ignore[attr-defined]
    tiny_olmo2.forward = recording_forward
    out = greedy_generate(tiny_olmo2, [[5, 6, 7], [8, 9]], 4, 2, 0, torch.device("cpu"))
    assert len(out) == 2 and all(len(o) == 4 for o in out)
    takes_cache = "cache" in inspect.signature(original).parameters
    later = seen[1:]
    assert later and all(("cache" in kw) == takes_cache and ("past_key_values" in kw) != takes_cache for kw in later)


# 7. leaderboard and mining


def test_leaderboard_out_that_is_a_file_is_one_line(cli, tmp_path: Path) -> None:
    from leaderboard.__main__ import main

    (tmp_path / "runs").mkdir()
    (tmp_path / "out").write_text("x")
    code, err = cli(lambda: main(sys.argv[1:]), "leaderboard", [str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert_one_line(code, err, ["--out=", "is not a folder"])


@pytest.mark.parametrize("module,argv,needles", [
    ("leaderboard.__main__", ["--bogus"], ["unrecognized arguments: --bogus", "python -m leaderboard --help"]),
    ("models.build", ["bogus"], ["invalid choice: 'bogus'", "python -m models.build --help"]),
    ("models.build", ["organism", "--threads", "-1"], ["--threads: a positive integer, got -1"]),
    ("models.build", ["organism", "--seed", "-1"], ["--seed: seeds are integers >= 0, got -1"]),
    ("studies.fidelity", ["check", "--tolerance", "t.json"], ["--tolerance t.json is read only with --reference"]),
    ("attacks.tables", [], ["takes one argument, the leaderboard's attacks.csv", "got 0"]),
    ("attacks.tables", ["no_such.csv"], ["no_such.csv: No such file or directory", "attacks.csv"]),
    ("attacks.tables", ["tests"], ["tests: is a folder"]),
], ids=["leaderboard-option", "build-kind", "build-threads", "build-seed", "fidelity-tolerance-alone", "tables-usage",
        "tables-missing", "tables-folder"])
def test_command_options_are_one_line(cli, module: str, argv: list[str], needles: list[str]) -> None:
    """Issue 29's battery: argparse printed its usage before the error (two lines), a negative
    thread count was a traceback and a negative seed started a build; a --tolerance without
    --reference was ignored while the regression runs ran; attacks.tables' bad file was a traceback."""
    import importlib

    main = importlib.import_module(module).main
    code, err = cli(lambda: main(sys.argv[1:]), module, argv)
    assert_one_line(code, err, needles)
    assert code == 2


def test_leaderboard_skips_a_run_with_a_nan_metric(cli, tiny_model_dir: Path, tmp_path: Path) -> None:
    from leaderboard.__main__ import main

    assert run_harness(cli, harness_args(tiny_model_dir, tmp_path / "runs")) == (0, [])
    run_file = next(p for p in (tmp_path / "runs").rglob("seed0-*.json"))
    run = json.loads(run_file.read_text())
    run["edited"]["tasks"]["quotes"]["metrics"]["loose"] = math.nan
    run_file.write_text(json.dumps(run))
    code, err = cli(lambda: main(sys.argv[1:]), "leaderboard",
                    [str(tmp_path / "runs"), "--out", str(tmp_path / "board"), "--no-html", "--no-parquet"])
    assert code == 0 and len(err) == 1, err
    assert err[0].startswith(f"warning: skipped {run_file}") and "metrics.loose is NaN" in err[0]


@pytest.mark.parametrize("value,needle", [(math.nan, "metrics.score is NaN"), (math.inf, "metrics.score is inf"),
                                          (-math.inf, "metrics.score is -inf")], ids=["nan", "inf", "-inf"])
def test_leaderboard_skips_a_run_with_a_non_finite_metric(cli, tmp_path: Path, value: float, needle: str) -> None:
    """Issue 29: an Infinity metric once aborted the whole leaderboard (a math domain error in the
    Wilson interval); it is skipped like a NaN one, in one warning line, and the rest is written."""
    from leaderboard.__main__ import main
    from tests.leaderboard.synthetic import make_run, write_runs

    runs = [make_run("kfac", {"verbatim_validation": 0.2}, seed=s) for s in (0, 1)]
    runs[1]["edited"]["tasks"]["logic"]["metrics"]["score"] = value
    write_runs(tmp_path / "runs", runs)
    code, err = cli(lambda: main(sys.argv[1:]), "leaderboard",
                    [str(tmp_path / "runs"), "--out", str(tmp_path / "board"), "--no-html", "--no-parquet"])
    assert code == 0 and len(err) == 1, err
    assert err[0].startswith("warning: skipped ") and "seed1-" in err[0] and needle in err[0], err[0]
    assert (tmp_path / "board" / "runs.csv").stat().st_size > 0


def test_leaderboard_on_a_full_disk_leaves_no_truncated_file(cli, tmp_path: Path, monkeypatch) -> None:
    """Issue 29: a full disk under --out left a truncated runs.csv. Every output is written
    atomically: the old file stays whole, and the error is one line."""
    import errno

    import pandas as pd

    from leaderboard.__main__ import main
    from tests.leaderboard.synthetic import make_run, write_runs

    write_runs(tmp_path / "runs", [make_run("kfac", {"verbatim_validation": 0.2})])
    argv = [str(tmp_path / "runs"), "--out", str(tmp_path / "board"), "--no-html"]
    assert cli(lambda: main(sys.argv[1:]), "leaderboard", argv)[0] == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "board").iterdir()}
    original = pd.DataFrame.to_csv

    def disk_fills_up(self, path, *a, **kw):  # half the bytes land, then ENOSPC
        original(self, path, *a, **kw)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_fills_up)
    code, err = cli(lambda: main(sys.argv[1:]), "leaderboard", argv)
    assert_one_line(code, err, ["--out=", "No space left on device"])
    after = {p.name: p.read_bytes() for p in (tmp_path / "board").iterdir()}
    assert set(after) == set(before)  # no temporary file left beside them
    for name in ("headline.csv", "runs.csv", "summary.csv"):
        assert after[name] == before[name], name


def mine_args(folder: Path, tmp: Path, *extra: str) -> list[str]:
    return ["model=hf", f"model.path={folder / 'model'}", "device=cpu", f"cache_dir={tmp / 'cache'}",
            f"out_dir={tmp / 'mined'}", "prefix_len=4", "suffix_len=2", *extra]


@pytest.mark.parametrize("corpus,extra,needles", [
    ("", [], ["the corpus", "is empty"]),
    ('{"body": "w1 w2 w3 w4 w5 w6 w7"}\n', [], [":1: no 'text' text field", "its fields: body", "text_field="]),
    ("w1 w2\n", [], ["is 6 tokens long", "the longest has 2"]),
    ("w1 w2 w3 w4 w5 w6 w7\n", ["out_dir=/proc/mined"], ["out_dir=/proc/mined is not writable"]),
    # issue 29: a split that would be empty is refused before the model loads
    *[("w1 w2 w3 w4 w5 w6 w7\n", [f"forget_fraction={v}"], ["forget_fraction must be a number in (0, 1)",
                                                            "neither may be empty", f"got {v}"])
      for v in ("0", "1", "1.5")],
    # issue 29's battery: max_windows=abc was a traceback; a missing corpus failed after the model loaded
    ("w1 w2 w3 w4 w5 w6 w7\n", ["max_windows=abc"], ["max_windows must be an integer >= 1 or null", "got 'abc'"]),
    ("w1 w2 w3 w4 w5 w6 w7\n", ["corpus=/no/such/corpus.txt"], ["data file not found: /no/such/corpus.txt"]),
])
def test_mining_bad_input_is_one_line(cli, tiny_model_dir: Path, tmp_path: Path, corpus: str, extra: list[str],
                                      needles: list[str]) -> None:
    from studies.mine import main

    path = tmp_path / ("corpus.jsonl" if corpus.startswith("{") else "corpus.txt")
    path.write_text(corpus)
    code, err = cli(main, "studies.mine", mine_args(tiny_model_dir, tmp_path, f"corpus={path}", *extra))
    assert_one_line(code, err, needles)


def test_mining_that_finds_nothing_exits_0_with_progress_and_near_misses(tiny_model_dir: Path, tmp_path: Path,
                                                                        monkeypatch, capsys) -> None:
    """Issue 29: finding nothing exited 2 as an error, with no progress line and no near misses.
    Now: progress while it runs, then an empty result (exit 0, nothing written) and the
    distribution of the longest matched suffix."""
    from studies.mine import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(" ".join(WORDS[(7 * i + j) % len(WORDS)] for j in range(12)) for i in range(5)))
    monkeypatch.setattr(sys, "argv", ["studies.mine", *mine_args(tiny_model_dir, tmp_path, f"corpus={corpus}",
                                                                 "suffix_len=6", "stride=1")])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    assert code in (0, None) and err == "", err
    assert "[progress] mining windows" in out  # a log (not a terminal): plain progress lines
    assert "mined 0 memorized windows of 15 in 5 documents: an empty result, nothing written" in out
    near = next(line for line in out.splitlines() if line.startswith("near misses: "))
    assert "longest matched suffix (tokens of 6) over 15 windows: min " in near and "histogram 0: " in near
    assert not (tmp_path / "mined" / "verbatim_forget.jsonl").exists()


def test_near_misses_summarise_the_matched_suffix_lengths() -> None:
    from studies.mine import near_misses

    line = near_misses([0, 0, 1, 3, 5, 47], 48)
    assert line.startswith("longest matched suffix (tokens of 48) over 6 windows: min 0, median 2, max 47; ")
    assert "histogram 0-7: 5, 8-15: 0" in line and "40-47: 1, 48: 0" in line


def test_mine_help_lists_only_what_mine_uses(monkeypatch, capsys) -> None:
    from studies.mine import main

    monkeypatch.setattr(sys, "argv", ["studies.mine", "--help"])
    main()
    text = capsys.readouterr().out
    assert "model=" in text and "organism" in text and "corpus:" in text and "text_field:" in text
    assert "method" not in text and "suite" not in text


def test_override_parsing_and_sweep_combinations() -> None:
    """The pieces a sweep check reuses: which overrides are group choices, which are keys."""
    from harness.config import check_override_keys, parse_overrides, sweep_combinations

    choices, keys = parse_overrides(["-m", "method=kfac,npo", "suite=memorization", "method.lr=1e-3",
                                     "+method.extra=1", "hydra.verbose=true", "seed=1,2"])
    assert choices == {"method": ["kfac", "npo"], "suite": ["memorization"]} and keys == ["method.lr", "seed"]
    assert sweep_combinations(choices) == [{"method": "kfac", "suite": "memorization"},
                                           {"method": "npo", "suite": "memorization"}]
    check_override_keys({"method": "npo"}, ["method.lr"])  # npo has lr
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="method kfac has no setting 'lr'"):
        check_override_keys({"method": "kfac"}, ["method.lr"])
    check_override_keys({"model": "hf"}, ["model.path", "model.data.stats"])  # ??? and nested keys exist
    # An attack's settings are keys of the chosen attack config (attack=standard), not of the default
    # attack=none: they were once refused as unknown keys.
    assert parse_overrides(["attack=standard", "attack.attacks.sample.n=2"]) == (
        {"attack": ["standard"]}, ["attack.attacks.sample.n"])
    check_override_keys({"attack": "standard"}, ["attack.attacks.sample.n"])
    with pytest.raises(ConfigError, match="attack.attacks.sample"):
        check_override_keys({"attack": "none"}, ["attack.attacks.sample.n"])


def _set(path: str, value: object) -> Callable[[dict], None]:
    """A poison: set the dotted `path` of a run file to `value`."""
    def poison(run: dict) -> None:
        *parents, last = path.split(".")
        node = run
        for key in parents:
            node = node[key]
        node[last] = value
    return poison


def _delete(key: str) -> Callable[[dict], None]:
    return lambda run: run.pop(key)


# (id, poison of a finished run file, substring of the one warning line)
RUN_FILE_POISONS = [
    ("nan-metric", _set("edited.tasks.quotes.metrics.loose", math.nan), "edited.tasks.quotes.metrics.loose is NaN"),
    ("infinite-metric", _set("edited.tasks.verbatim.metrics.strict", math.inf), "metrics.strict is inf (not finite)"),
    ("unknown-schema", _set("schema_version", 99), "schema_version 99"),
    ("no-identity", _delete("identity"), "identity missing"),
    ("string-task-result", _set("edited.tasks.quotes", "0.5"), "edited.tasks.quotes is not an object"),
    ("partial-run-string-result", lambda run: (_set("status", "running")(run), _set("edited.tasks.quotes", "x")(run)),
     "edited.tasks.quotes is not an object"),
]


@pytest.mark.parametrize("poison,needle", [c[1:] for c in RUN_FILE_POISONS], ids=[c[0] for c in RUN_FILE_POISONS])
def test_a_run_file_that_does_not_validate_is_recomputed(cli, tiny_model_dir: Path, tmp_path: Path,
                                                         poison: Callable[[dict], None], needle: str) -> None:
    """Issue 29: a finished run file is reused only if it validates (core.runrecord.run_problem);
    a poisoned or hand-edited one is named in one warning line and the run is recomputed."""
    from core.runrecord import run_problem

    assert run_harness(cli, harness_args(tiny_model_dir, tmp_path)) == (0, [])
    run_file = next(tmp_path.rglob("seed0-*.json"))
    good = json.loads(run_file.read_text())
    poisoned = json.loads(run_file.read_text())
    poison(poisoned)
    run_file.write_text(json.dumps(poisoned))
    code, err = run_harness(cli, harness_args(tiny_model_dir, tmp_path))
    assert code == 0 and len(err) == 1, err
    assert err[0].startswith(f"warning: run file {run_file}: ") and needle in err[0], err[0]
    assert err[0].endswith("recomputing the run")
    again = json.loads(run_file.read_text())
    assert run_problem(again) is None
    assert again["edited"]["tasks"]["quotes"]["metrics"] == good["edited"]["tasks"]["quotes"]["metrics"]
    assert again["identity"] == good["identity"]


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    """Issue 29: `python -m harness ... | head -1` printed a BrokenPipeError traceback. The reader
    closes before anything is printed here, so the first write fails for certain."""
    import os
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "--help"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=Path(__file__).resolve().parents[2])
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert err.decode() == "" and proc.returncode == 141


def test_a_closed_stdout_during_a_run_ends_quietly(cli, monkeypatch) -> None:
    import harness.app

    def table_to_a_closed_pipe(cfg):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(harness.app, "execute", table_to_a_closed_pipe)
    code, err = run_harness(cli, [])
    assert code == 141 and err == []


def test_harness_edit_names_its_own_data_key_for_an_empty_forget_set(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Issue 29: an empty forget set ran forget-set methods for 0 steps; harness.edit's data is
    named as the API takes it (data['forget']), the command line's as model.data.forget."""
    from core.errors import DataError
    from harness.api import GivenData
    from models.hf import CausalLMData

    (tmp_path / "forget.jsonl").write_text("\n")
    for data, key in ((GivenData, "data['forget']"), (CausalLMData, "model.data.forget")):
        with pytest.raises(DataError) as info:
            data({"forget": str(tmp_path / "forget.jsonl")}, {}, None).check(["forget"])
        assert str(info.value).startswith(f"{key}: ") and "holds no examples" in str(info.value)
