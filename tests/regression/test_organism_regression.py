"""CI regression checks on the organism: the paper's findings hold at the organism defaults, the
numbers stay within tolerance of tests/regression/reference.json, and a deliberately broken K-FAC
(keeping the LOWEST-curvature components) fails the checks.

The reference holds one entry per organism build (the organism is trained on the CPU it runs on,
and builds from different CPUs differ in their edited numbers near the edit's transition). On a
build with an entry every number is compared with it; on a build without one only the baseline
(unedited model's) numbers are, against each recorded build of the same organism settings, passing
if they agree with at least one, and the test warns that the edited numbers were not compared.

The organism is trained once into the shared cache (`.cache/harness`, as `make run` uses); run
files go to a temporary folder so that results of older code in `runs/` are never reused.
Add or replace this build's entry, keeping the others (then review the diff):
    python -m studies.fidelity write-reference --out tests/regression/reference.json
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from studies.fidelity import (REGRESSION_RUNS, claims, compare_with_reference, read_reference, reference_differences,
                              reference_record, run_config, same_build, summary)

REFERENCE_FILE = Path(__file__).with_name("reference.json")

pytestmark = pytest.mark.regression


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("regression_runs")


@pytest.fixture(scope="module")
def runs(runs_dir: Path) -> dict[str, dict[str, Any]]:
    return {name: run_config(overrides, runs_dir) for name, overrides in REGRESSION_RUNS.items()}


@pytest.mark.parametrize("claim_index", range(5))
def test_paper_claim_holds(runs: dict[str, dict[str, Any]], claim_index: int) -> None:
    name, (holds, numbers) = list(claims(runs).items())[claim_index]
    assert holds, f"{name}: {numbers}"


def test_numbers_match_the_reference(runs: dict[str, dict[str, Any]]) -> None:
    entries = read_reference(REFERENCE_FILE)
    assert [set(e["runs"]) for e in entries] == [set(REGRESSION_RUNS)] * len(entries)
    problems, notes = compare_with_reference(reference_record(runs), entries, REFERENCE_FILE)
    for note in notes:  # a warning, so that the skipped edited comparison shows in the summary
        warnings.warn(f"NOTE  {note}", stacklevel=1)
    assert not problems, "\n".join(problems + notes)


def test_unedited_run_equals_its_baseline(runs: dict[str, dict[str, Any]]) -> None:
    assert runs["none"]["edited"]["tasks"] == runs["none"]["baseline"]["tasks"]


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


def test_a_broken_kfac_fails_the_checks(runs: dict[str, dict[str, Any]], runs_dir: Path,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from methods.kfac import KFAC

    shutil.copytree(runs_dir / "baselines", tmp_path / "baselines")  # reuse the baseline, not the runs
    monkeypatch.setattr(KFAC, "edit", keep_lowest_curvature)
    broken = dict(runs, kfac=run_config(REGRESSION_RUNS["kfac"], tmp_path))
    assert not all(holds for holds, _ in claims(broken).values())
    # The same-build comparison must catch it too. On a build the file has no entry for, this
    # session's good K-FAC run stands in for that entry (edited numbers only compare within a build).
    current = reference_record(runs)
    own = next((e for e in read_reference(REFERENCE_FILE) if same_build(e["build"], current["build"])), current)
    problems = reference_differences({"kfac": summary(broken["kfac"])}, {"kfac": own["runs"]["kfac"]})
    assert any(" edited: " in line for line in problems), problems
