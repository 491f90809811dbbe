"""CI regression checks on the shipped organisms (seeds 0-2, committed with their weights, so every
machine evaluates the same models): every task of the suite scores the unedited model sanely, the
paper's findings hold at the organism defaults, every number, edited ones included, stays within
the measured tolerance of tests/regression/reference.json (tests/regression/tolerance.json), and a
deliberately broken K-FAC (keeping the LOWEST-curvature components) fails the checks.

Run files go to a temporary folder so that results of older code in `runs/` are never reused.
Replace a seed's entry after a deliberate change (then review the diff):
    python -m studies.fidelity write-reference --out tests/regression/reference.json model.organism.seed=S seed=S
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from studies.fidelity import REGRESSION_RUNS, SUITE, claims, reference_record, run_config
from studies.organism_claims import summary
from studies.reference import (REFERENCE_FILE, TOLERANCE_FILE, compare_with_reference, read_reference, read_tolerances,
                               reference_differences)

pytestmark = pytest.mark.regression
SEEDS = (0, 1, 2)
CONF = Path(__file__).resolve().parents[2] / "conf"


def seed_overrides(seed: int) -> list[str]:
    return [f"model.organism.seed={seed}", f"seed={seed}"]


SeededRuns = tuple[int, Path, dict[str, dict[str, Any]]]


class RegressionChecks:
    """The checks of one shipped seed. One class per seed (below), so that pytest-xdist's loadscope
    hands each seed's runs (a few minutes at one thread) to its own worker, built once per class."""

    seed: int

    @pytest.fixture(scope="class")
    @classmethod
    def seeded_runs(cls, tmp_path_factory: pytest.TempPathFactory) -> SeededRuns:
        runs_dir = tmp_path_factory.mktemp(f"regression_runs_seed{cls.seed}")
        runs = {name: run_config([*own, *seed_overrides(cls.seed)], runs_dir) for name, own in REGRESSION_RUNS.items()}
        return cls.seed, runs_dir, runs

    @pytest.mark.parametrize("claim_index", range(5))
    def test_paper_claim_holds(self, seeded_runs: SeededRuns, claim_index: int) -> None:
        seed, _, runs = seeded_runs
        name, (holds, numbers) = list(claims(runs).items())[claim_index]
        assert holds, f"seed {seed}: {name}: {numbers}"

    def test_every_number_matches_the_reference(self, seeded_runs: SeededRuns) -> None:
        _, _, runs = seeded_runs
        current = reference_record(runs)
        assert current["organism"]["shipped"], "the regression runs must use a shipped organism"
        problems = compare_with_reference(current, read_reference(REFERENCE_FILE), read_tolerances(TOLERANCE_FILE),
                                          REFERENCE_FILE)
        assert not problems, "\n".join(problems)

    def test_unedited_run_equals_its_baseline(self, seeded_runs: SeededRuns) -> None:
        _, _, runs = seeded_runs
        assert runs["none"]["edited"]["tasks"] == runs["none"]["baseline"]["tasks"]

    def test_every_suite_task_scores_the_baseline_sanely(self, seeded_runs: SeededRuns) -> None:
        """Every task of the suite ran on the shipped organism, and what it says of the unedited
        model is sane (the baseline the runs above share)."""
        from omegaconf import OmegaConf
        from tokenizers import Tokenizer

        from models.organism import SHIPPED_DIR

        seed, _, runs = seeded_runs
        results = runs["none"]["baseline"]["tasks"]
        assert set(results) == set(OmegaConf.load(CONF / "suite" / f"{SUITE}.yaml").tasks)
        for name, r in results.items():
            assert r["n"] > 0 and r["primary"] in r["metrics"], name
            assert all(math.isfinite(v) for v in r["metrics"].values()), name
        metric = {name: r["metrics"] for name, r in results.items()}
        assert metric["ndcg10"]["ndcg10"] == pytest.approx(1.0)  # the baseline against itself
        vocabulary = Tokenizer.from_file(str(SHIPPED_DIR / f"seed{seed}" / "model" / "tokenizer.json")).get_vocab_size()
        assert metric["perplexity"]["ppl"] < vocabulary  # better than uniform
        assert results["qa_open"]["n"] == results["qa_closed"]["n"]  # the same questions
        assert metric["verbatim_control"]["strict"] == 0.0
        # Memorized passages survive the perturbation better than never-trained text would (~0).
        assert metric["perturbed_test"]["unperturbed"] > 0.5


class TestSeed0(RegressionChecks):
    seed = 0

    def test_a_broken_kfac_fails_the_checks(self, seeded_runs: SeededRuns, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
        """One seed shows it: K-FAC keeping the lowest-curvature components fails a claim and the reference."""
        from methods.kfac import KFAC

        seed, runs_dir, runs = seeded_runs
        shutil.copytree(runs_dir / "baselines", tmp_path / "baselines")  # reuse the baseline, not the runs
        monkeypatch.setattr(KFAC, "edit", keep_lowest_curvature)
        broken = dict(runs, kfac=run_config([*REGRESSION_RUNS["kfac"], *seed_overrides(seed)], tmp_path))
        assert not all(holds for holds, _ in claims(broken).values())
        own = next(e for e in read_reference(REFERENCE_FILE) if e["organism"]["seed"] == seed)
        problems = reference_differences({"kfac": summary(broken["kfac"])}, {"kfac": own["runs"]["kfac"]},
                                         read_tolerances(TOLERANCE_FILE))
        assert any(" edited: " in line for line in problems), problems


class TestSeed1(RegressionChecks):
    seed = 1


class TestSeed2(RegressionChecks):
    seed = 2


def test_the_reference_covers_every_shipped_seed_and_run() -> None:
    entries = read_reference(REFERENCE_FILE)
    assert sorted(e["organism"]["seed"] for e in entries) == list(SEEDS)
    assert all(set(e["runs"]) == set(REGRESSION_RUNS) and e["organism"]["shipped"] for e in entries)
    tolerances = read_tolerances(TOLERANCE_FILE)
    assert set(tolerances) <= {f"{name}/{t}" for e in entries for name, run in e["runs"].items() for t in run}
    assert {t.split("/")[0] for t in tolerances} >= {"none", "kfac", "random_ablation"}


def test_every_shipped_seed_has_its_class() -> None:
    assert sorted(cls.seed for cls in RegressionChecks.__subclasses__()) == list(SEEDS)


def keep_lowest_curvature(self, weight, A_eig, G_eig, rho, generator):
    """The deliberate bug: keep as many components as K-FAC would, but the lowest-curvature ones."""
    from methods.kfac import kfac_edit_weight

    _, facts = kfac_edit_weight(weight, A_eig, G_eig, rho)
    (mu, U_A), (lam, U_G) = A_eig, G_eig
    products = (lam[:, None] * mu[None, :]).flatten()
    keep = torch.zeros_like(products, dtype=torch.bool)
    keep[torch.argsort(products)[: facts["components_kept"]]] = True
    W = weight.detach().float()
    C = U_G.T @ W @ U_A
    return U_G @ (C * keep.view_as(C)) @ U_A.T, facts
