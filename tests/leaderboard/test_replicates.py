"""Seeds of the organism count as seeds (issue 18): runs that differ only in the replicate keys
(core.runrecord.REPLICATE_KEYS: the run seed and model.organism.seed) are one configuration in
every leaderboard table, and the unedited row counts each baseline (one per organism) once."""

import json
import math
from pathlib import Path

import pytest

from core.hashing import canonical_hash
from core.runrecord import REPLICATE_KEYS, RUNTIME_ONLY_KEYS, replicate_of, without_paths
from leaderboard import aggregate, render
from tests.leaderboard.synthetic import as_runs, make_run, point

FIXTURES = Path(__file__).parent / "fixtures"


def test_without_paths_drops_nested_keys_and_leaves_the_input_alone():
    cfg = {"seed": 1, "model": {"name": "organism", "organism": {"seed": 2, "layers": 4}}, "method": {"seed": 9}}
    before = json.dumps(cfg, sort_keys=True)
    out = without_paths(cfg, ("seed", "model.organism.seed"))
    assert out == {"model": {"name": "organism", "organism": {"layers": 4}}, "method": {"seed": 9}}
    assert json.dumps(cfg, sort_keys=True) == before  # not modified
    assert without_paths({"model": {"name": "x"}}, ("model.organism.seed",)) == {"model": {"name": "x"}}
    assert without_paths({"model": "hf"}, ("model.organism.seed",)) == {"model": "hf"}  # not a dict: nothing to drop
    assert without_paths({"model": {"organism": {"seed": 0}}}, ("model.organism.seed",)) == {"model": {"organism": {}}}


def test_replicate_keys_live_in_one_place():
    assert REPLICATE_KEYS == ("seed", "model.organism.seed")
    assert replicate_of({"seed": 0, "model": {"organism": {"seed": 2}}}) == "seed=0,model.organism.seed=2"
    assert replicate_of({"seed": 3, "model": {"name": "hf"}}) == "seed=3"


def old_config_key(config: dict) -> str:
    """config_key before organism seeds counted as seeds (dropped only `seed`)."""
    return canonical_hash({k: v for k, v in config.items() if k not in RUNTIME_ONLY_KEYS and k != "seed"})[:12]


def test_config_key_drops_the_organism_seed_and_nothing_else():
    runs = [make_run("kfac", {}, seed=s, organism_seed=s) for s in (0, 1, 2)]
    assert len({aggregate.config_key(r["config"]) for r in runs}) == 1
    other = make_run("kfac", {}, seed=0, organism_seed=0)
    other["config"]["model"]["organism"]["layers"] = 3  # another organism, not another seed
    assert aggregate.config_key(other["config"]) != aggregate.config_key(runs[0]["config"])


def test_config_key_of_configs_without_an_organism_is_unchanged():
    configs = [json.loads(p.read_text())["config"] for p in sorted(FIXTURES.glob("organism/*/*/*.json"))]
    assert configs and all("organism" not in c["model"] for c in configs)
    assert [aggregate.config_key(c) for c in configs] == [old_config_key(c) for c in configs]


@pytest.fixture(scope="module")
def organism_runs():
    runs = []
    for s in (0, 1, 2):
        base = {"verbatim_validation": 0.5 + 0.1 * s}  # each organism memorized a different amount
        runs.append(make_run("none", {}, seed=s, organism_seed=s, baseline=base))
        runs.append(make_run("kfac", point(90, 20, base=1.0), params={"rho": 0.8}, seed=s, organism_seed=s,
                             baseline=base, attacks={"int8": (0.1 * s, 0.5)}))
    return as_runs(runs)


def test_organism_seeds_aggregate_to_one_configuration(organism_runs):
    long = aggregate.long_table(organism_runs)
    assert set(long.variant) == {"kfac", "none"}  # no "kfac #<hash>" per organism
    assert long.baseline_key.str.len().eq(12).all() and long[long.method == "kfac"].baseline_key.nunique() == 3
    summary = aggregate.summary_table(long)
    assert set(summary.seeds) == {3}
    section = render.build_sections(summary, long)[0]
    unedited = section.raw_rows[0]
    assert unedited[0].text == "unedited" and unedited[2].text == "3"  # three baselines, one per organism
    col = 3 + section.columns.index(next(c for c in section.columns if c.startswith("memorized_val")))
    mean = (0.5 + 0.6 + 0.7) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in (0.5, 0.6, 0.7)) / 2)
    assert unedited[col].text == f"{mean:.4f} ± {std:.4f}"


def test_attack_tables_count_organism_seeds_as_seeds(organism_runs, tmp_path):
    from attacks.tables import tables

    attacks = aggregate.attack_long_table(organism_runs)
    summary = aggregate.attack_summary(attacks)
    assert list(summary.seeds) == [3] and list(summary.variant) == ["kfac"]
    assert summary.edited_mean.iloc[0] == pytest.approx(0.1)
    render.write_csv(attacks, tmp_path / "attacks.csv")
    text = tables(str(tmp_path / "attacks.csv"), ("verbatim_validation",))
    assert "| unedited (3) |" in text and "| kfac (3) | " in text


def test_unedited_row_counts_baselines_not_run_seeds():
    """`model.organism.seed=2` with the run seed left at 0 (a user may set only the organism's
    seed): two organisms, two baselines, one run seed."""
    runs = as_runs([make_run("kfac", point(90, 20), seed=0, organism_seed=o,
                             baseline={"verbatim_validation": b}) for o, b in ((0, 0.5), (2, 0.9))])
    long = aggregate.long_table(runs)
    assert long.seed.nunique() == 1 and long.replicate.nunique() == 2
    section = render.build_sections(aggregate.summary_table(long), long)[0]
    unedited = section.raw_rows[0]
    col = 3 + next(i for i, c in enumerate(section.columns) if c.startswith("memorized_val"))
    assert unedited[2].text == "2" and unedited[col].text.startswith("0.7000 ± ")


def test_two_baselines_of_one_seed_are_one_seed():
    """Issue 29: two baseline evaluations of one seed (the runs' evaluation settings differ, so
    each has its own baseline) said "seeds 2"; seeds counts distinct seeds (replicates)."""
    other = make_run("kfac", point(90, 20), seed=0, baseline={"verbatim_validation": 0.7})
    other["config"]["eval"]["batch_size"] = 4  # another baseline (core.runrecord.baseline_key)
    from core.runrecord import baseline_key, config_hash

    other["baseline"]["key"] = baseline_key(other["config"])
    other["identity"]["config_hash"] = config_hash(other["config"])
    runs = as_runs([make_run("none", {}, seed=0, baseline={"verbatim_validation": 0.5}), other])
    long = aggregate.long_table(runs)
    assert long.baseline_key.nunique() == 2 and long.replicate.nunique() == 1
    section = render.build_sections(aggregate.summary_table(long), long)[0]
    unedited = section.raw_rows[0]
    col = 3 + next(i for i, c in enumerate(section.columns) if c.startswith("memorized_val"))
    assert unedited[2].text == "1"
    assert unedited[col].text == "0.6000"  # the seed's two baselines averaged: one seed, no ± std
    assert {r[0].text: r[2].text for r in section.pct_rows} == {"kfac": "1", "none": "1"}
