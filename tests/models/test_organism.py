"""The organism's corpus, tokenizer, cache and atomic build (tiny settings; the real organism's
targets are checked by the regression tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.organism import default_settings, ensure_organism, settings_hash, write_data_files
from models.organism.corpus import generate_corpus, token_shares
from models.organism.families.logic import all_boolean_expressions, boolean_expression
from models.organism.text import normalize
from models.organism.tokenizer import build_tokenizer
from models.organism.train import learning_rate, pack_documents
from tests.models import corpus_digest


def tiny_settings(seed: int = 0) -> dict:
    return corpus_digest.tiny_settings(default_settings(), seed)


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One tiny organism build (~16 s at one thread), shared by the tests that only read it:
    (the cache folder it was built in, the build's folder)."""
    cache = tmp_path_factory.mktemp("tiny_build")
    return cache, ensure_organism(tiny_settings(), cache)


def corpus_files(settings: dict, folder: Path) -> dict[str, bytes]:
    write_data_files(generate_corpus(settings).files, folder)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_files_different_seed_different(tmp_path: Path) -> None:
    a = corpus_files(tiny_settings(0), tmp_path / "a")
    b = corpus_files(tiny_settings(0), tmp_path / "b")
    c = corpus_files(tiny_settings(1), tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a if k != "quotes.jsonl")  # quotes: fixed file
    expected = {"verbatim_forget.jsonl", "verbatim_tune.jsonl", "verbatim_test.jsonl", "verbatim_control.jsonl",
                "quotes.jsonl",
                "facts.jsonl", "arithmetic.jsonl", "math_facts.jsonl", "logic.jsonl", "copy.jsonl", "stats.txt", "retain.txt",
                "heldout.txt"}
    assert set(a) == expected


def test_default_corpus_keeps_planted_text_a_small_share() -> None:
    shares = token_shares(generate_corpus(default_settings()))
    # Issue 19: at most 5 % (memorized text is a small share of real pretraining; the feasibility
    # notes' 26 % made the passages shape the curvature themselves). docs/organism.md.
    assert 0.02 <= shares["planted"] <= 0.05
    # the skills the model must learn (not store) get most tokens
    assert shares["reading"] + shares["logic"] + shares["copy"] + shares["arithmetic"] >= 0.5
    assert abs(sum(shares.values()) - 1) < 1e-3


def test_splits_are_disjoint_and_controls_never_trained() -> None:
    corpus = generate_corpus(tiny_settings())
    passage = lambda r: r["prefix_text"] + " " + r["suffix_text"]  # noqa: E731
    forget = {passage(r) for r in corpus.files["verbatim_forget"]}
    tune = {passage(r) for r in corpus.files["verbatim_tune"]}
    validation = {passage(r) for r in corpus.files["verbatim_test"]}
    control = {passage(r) for r in corpus.files["verbatim_control"]}
    assert not forget & validation and not tune & (forget | validation) and not control & (forget | tune | validation)
    training = "\n".join(corpus.train)
    assert all(p in training for p in forget | tune | validation)
    assert not any(r["prefix_text"] in training for r in corpus.files["verbatim_control"])
    side = "\n".join(corpus.files["stats"] + corpus.files["retain"] + corpus.files["heldout"])
    assert not any(r["prefix_text"] in side for r in corpus.files["verbatim_forget"])
    heldout_logic = {r["prompt"] for r in corpus.files["logic"]}
    assert not any(doc.rsplit(" ", 1)[0] in heldout_logic for doc in corpus.train if doc.startswith("logic :"))


def split_words(corpus, split: str) -> set[str]:
    return {w for r in corpus.files[split] for w in (r["prefix_text"] + " " + r["suffix_text"]).split()}


def test_per_split_vocabularies_share_no_word_and_controls_take_the_tests() -> None:
    """Organism v3: what makes a passage memorable (its rare words) is not shared between the
    forget, tune and test splits; the controls are of the test split's form."""
    corpus = generate_corpus(tiny_settings())
    forget, tune, test, control = (split_words(corpus, f"verbatim_{s}") for s in ("forget", "tune", "test", "control"))
    assert not forget & tune and not forget & test and not tune & test
    assert control & test and not control & (forget | tune)
    other = "\n".join(d for d, c in zip(corpus.train, corpus.components, strict=True) if c != "planted")
    assert not (forget | tune | test) & set(other.split())  # the rare words occur nowhere else


def test_shared_vocabulary_is_the_v2_design_and_train_forget_false_drops_only_the_forget_split() -> None:
    shared = tiny_settings()
    shared["planted"]["vocabulary"] = "shared"
    corpus = generate_corpus(shared)
    assert split_words(corpus, "verbatim_forget") & split_words(corpus, "verbatim_test")
    reference = tiny_settings()
    reference["planted"]["train_forget"] = False
    full, without = generate_corpus(tiny_settings()), generate_corpus(reference)
    assert full.files == without.files  # the same passages and ground truth
    dropped = [d for d in full.train if d not in set(without.train)]
    forget = {r["prefix_text"] + " " + r["suffix_text"] for r in full.files["verbatim_forget"]}
    assert set(dropped) == forget and len(dropped) == len(forget) * tiny_settings()["planted"]["repeats"]


def test_ground_truth_formats_follow_the_design() -> None:
    corpus = generate_corpus(tiny_settings())
    s = tiny_settings()["planted"]
    for row in corpus.files["verbatim_forget"]:
        assert len(row["prefix_text"].split()) == s["prefix"] and len(row["suffix_text"].split()) == s["suffix"]
    fact = corpus.files["facts"][0]
    assert set(fact) == {"id", "entity", "relation", "answer", "frequency", "n_train", "question", "context"}
    freq = {r["frequency"]: r["n_train"] for r in corpus.files["facts"]}
    assert freq["common"] == 6 and 2 <= freq["rare"] <= 4
    for name in ("arithmetic", "math_facts"):
        assert set(corpus.files[name][0]) == {"a", "op", "b", "answer", "prompt", "in_train"}
        assert any(not r["in_train"] for r in corpus.files[name]) and any(r["in_train"] for r in corpus.files[name])
    for name in ("logic", "copy"):
        assert all(set(r) == {"prompt", "answer"} for r in corpus.files[name])
    assert all(len(q["full_quote"].split()) >= 12 for q in corpus.files["quotes"])


def test_boolean_expressions_evaluate_left_to_right() -> None:
    # not false or true and false: ((not false) or true) and false = false
    text, value = boolean_expression([(True, False), (False, True), (False, False)], ["or", "and"])
    assert text == "not false or true and false" and value is False
    assert len(all_boolean_expressions(3)) == 4 ** 3 * 2 ** 2


def test_normalize_splits_punctuation() -> None:
    assert normalize("To be, or not to be: 'tis so!") == "to be , or not to be : 'tis so !"


def test_tokenizer_round_trip() -> None:
    corpus = generate_corpus(tiny_settings())
    tokenizer = build_tokenizer(corpus.train, 128)
    for doc in corpus.train[:50]:
        ids = tokenizer(doc, add_special_tokens=False)["input_ids"]
        assert len(ids) == len(doc.split()) and tokenizer.unk_token_id not in ids
        assert tokenizer.decode(ids) == doc


def test_packing_never_splits_a_document() -> None:
    docs = [[i] * n for i, n in enumerate([5, 3, 8, 2, 7, 1, 4], start=1)]
    rows = pack_documents(docs, seq_len=8, open_rows=2)
    assert sorted(t for row in rows for t in row) == sorted(t for d in docs for t in d)
    assert all(len(row) <= 8 for row in rows)
    for doc in docs:  # each document sits contiguously in one row
        assert any(any(row[i:i + len(doc)] == doc for i in range(len(row))) for row in rows)


def test_learning_rate_warms_up_then_decays() -> None:
    lrs = [learning_rate(s, 100, 1.0, 10, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3) and all(a >= b for a, b in zip(lrs[9:], lrs[10:]))


def test_bfloat16_training_steps_and_an_unknown_precision_is_refused() -> None:
    import torch
    from transformers import Olmo2Config, Olmo2ForCausalLM

    from core.errors import ConfigError
    from models.organism.train import train_model

    torch.manual_seed(0)
    model = Olmo2ForCausalLM(Olmo2Config(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, pad_token_id=0))
    before = model.model.layers[0].mlp.up_proj.weight.detach().clone()
    batches = [[list(range(3, 20)), list(range(20, 40))]] * 4
    train = {**default_settings()["train"], "seq_len": 24, "batch_size": 2, "log_every": 2, "warmup": 1}
    curve = train_model(model, batches, {"train": {**train, "precision": "bfloat16"}}, pad_id=0)
    weight = model.model.layers[0].mlp.up_proj.weight
    # autocast computes in bfloat16 and the master weights stay float32 (and move)
    assert weight.dtype == torch.float32 and not torch.equal(weight, before)
    assert [p["step"] for p in curve] == [2, 4] and all(p["loss"] == p["loss"] for p in curve)
    with pytest.raises(ConfigError, match="train.precision='fp8'; valid: auto, float32, bfloat16"):
        train_model(model, batches, {"train": {**train, "precision": "fp8"}}, pad_id=0)


def test_auto_precision_is_bfloat16_only_where_native_and_a_bad_one_is_refused_before_the_corpus(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import models.organism as organism
    import models.organism.train as train_module
    from core.errors import ConfigError

    for native, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(train_module, "native_cpu_bfloat16", lambda native=native: native)
        assert train_module.training_precision({"precision": "auto", "device": "cpu"}) == expected
    assert train_module.training_precision({"device": "cpu"}) == "float32"  # absent: float32

    def no_corpus(*args: object) -> None:
        raise AssertionError("the corpus was generated before the precision was checked")

    monkeypatch.setattr(organism, "prepare_data", no_corpus)
    settings = default_settings()
    with pytest.raises(ConfigError, match="train.precision='half'"):
        organism.build_organism({**settings, "train": {**settings["train"], "precision": "half"}}, tmp_path)


def test_bfloat16_on_a_cpu_without_it_warns_in_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from transformers import Olmo2Config, Olmo2ForCausalLM

    import models.organism.train as train_module

    monkeypatch.setattr(train_module, "native_cpu_bfloat16", lambda: False)
    model = Olmo2ForCausalLM(Olmo2Config(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, pad_token_id=0))
    train = {**default_settings()["train"], "seq_len": 8, "batch_size": 1, "log_every": 1, "warmup": 1,
             "precision": "bfloat16"}
    train_module.train_model(model, [[list(range(3, 10))]], {"train": train}, pad_id=0)
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("warning: cpu has no native bfloat16") and "precision=auto" in line


@pytest.mark.slow  # the tiny build, ~17 s under `make test-fast` (two workers, one thread each)
def test_build_is_cached_and_loadable(tiny_build: tuple[Path, Path]) -> None:
    import time

    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = tiny_settings()
    cache, folder = tiny_build
    assert folder.name == settings_hash(settings)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["curve"] and "booleans" in manifest["curve"][-1]
    assert (folder / "model" / "model.safetensors").exists()
    model = AutoModelForCausalLM.from_pretrained(folder / "model")
    tokenizer = AutoTokenizer.from_pretrained(folder / "model")
    assert model.config.vocab_size == len(tokenizer)
    start = time.perf_counter()
    assert ensure_organism(settings, cache) == folder
    assert time.perf_counter() - start < 1.0
    assert [p.name for p in (cache / "organism").iterdir()] == [folder.name]


def test_failed_build_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import models.organism.train as train

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_model", fail)
    with pytest.raises(KeyboardInterrupt):
        ensure_organism(tiny_settings(), tmp_path)
    assert list((tmp_path / "organism").iterdir()) == []


def test_computed_arithmetic_holds_its_eval_pairs_out_and_answers_them_right() -> None:
    from models.organism.families.arithmetic import all_pairs, problem_answer

    settings = tiny_settings()
    settings["arithmetic"].update(examples=3000, eval=40)
    corpus = generate_corpus(settings)
    rows = corpus.files["arithmetic"]
    trained_prompts = {d.split(" = ")[0] + " =" for d, c in zip(corpus.train, corpus.components, strict=True)
                       if c == "arithmetic"}
    held = [r for r in rows if not r["in_train"]]
    assert len(held) == 40 and len(rows) == 60
    assert not any(r["prompt"] in trained_prompts for r in held)  # never trained
    for r in rows:
        value = r["a"] + r["b"] if r["op"] == "+" else r["a"] - r["b"]
        assert r["answer"] == " ".join(str(value)) and r["prompt"] == f"{' '.join(str(r['a']))} {r['op']} {' '.join(str(r['b']))} ="
    assert problem_answer(47, "+", 58, "reversed") == "5 0 1" and problem_answer(47, "-", 38, "natural") == "9"
    assert len(all_pairs()) == 90 * 90 + 90 * 91 // 2  # every sum, every non-negative difference


@pytest.mark.slow
def test_short_training_learns(tmp_path: Path) -> None:
    """CI trains no organism (the default ones are shipped), so this shows the training code still
    learns: a few hundred steps on a small corpus lower the loss, and the planted passages are
    recalled above chance (0: a 48-token suffix is never guessed) while the controls are not."""
    settings = tiny_settings()
    settings["model"] = {"layers": 2, "hidden": 64, "mlp": 128, "heads": 2, "max_positions": 128}
    settings["planted"].update(prefix=8, suffix=8, forget=4, tune=2, test=2, control=4, repeats=60)
    settings["train"].update(lr=3e-3, warmup=20, batch_size=8, log_every=20, check_every=10_000, quick_check={})
    folder = ensure_organism(settings, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    curve, checks = manifest["curve"], manifest["final_checks"]
    assert 200 <= curve[-1]["step"] <= 600, curve[-1]
    assert curve[-1]["loss"] < 0.5 * curve[0]["loss"], curve
    assert checks["planted_forget"] >= 0.5 and checks["control"] == 0.0, checks


def _extension_script():
    from tests.conftest import load_benchmark_script

    return load_benchmark_script("organism_extension")


def test_the_extension_script_refuses_a_folder_that_is_no_build_in_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.argv", ["organism_extension.py", str(tmp_path), "--out", str(tmp_path / "out.json")])
    with pytest.raises(SystemExit) as exit_:
        _extension_script().main()
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(err.splitlines()) == 1 and "not a built organism" in err, err


@pytest.mark.slow  # the tiny build (shared, ~17 s) and four checks
def test_the_extension_script_trains_a_copy_on_and_checks_after_each_chunk(tiny_build: tuple[Path, Path],
                                                                           tmp_path: Path, monkeypatch) -> None:
    """benchmarks/organism_extension.py (docs/organism.md, "Seed 1 misses the copy target"): the
    build's own final checks first, then every target after each chunk; the build is left as it was."""
    from core.buildcache import digest_problem, file_sha256
    from models.organism.measure import meets

    _, folder = tiny_build
    out = tmp_path / "extension.json"
    monkeypatch.setattr("sys.argv", ["organism_extension.py", str(folder), "--out", str(out), "--chunk", "3",
                                     "--chunks", "3", "--threads", "1"])
    _extension_script().main()
    run = json.loads(out.read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    points = run["points"]
    assert [p["extra_steps"] for p in points] == [0, 3, 6, 9]
    assert points[0]["checks"] == manifest["final_checks"] and all(p["loss"] > 0 for p in points[1:])
    assert all(p["missed"] == [n for n, v in p["checks"].items() if not meets(n, v)] for p in points)
    assert run["build"]["weights_sha256"] == file_sha256(folder / "model" / "model.safetensors")
    assert run["extension"]["learning_rate"] == manifest["settings"]["train"]["lr"] * manifest["settings"]["train"]["min_lr_ratio"]
    assert digest_problem(folder) is None  # the build's files are untouched


def test_every_shipped_seed_meets_every_target_as_stored() -> None:
    """Issue 19's targets, on the stored (bfloat16) weights each shipped manifest measured."""
    from models.organism import SHIPPED_DIR
    from models.organism.measure import missed_targets

    for seed in (0, 1, 2):
        manifest = json.loads((SHIPPED_DIR / f"seed{seed}" / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["settings"] == {**default_settings(), "seed": seed}
        assert missed_targets(manifest["stored_checks"]) == [], (seed, manifest["stored_checks"])
