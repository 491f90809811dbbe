import io
from pathlib import Path

import pytest

from leaderboard.aggregate import family_table, long_table
from leaderboard.collect import collect
from leaderboard.plots import family_bars_png, tradeoff_png

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def families():
    runs, _ = collect([FIXTURES], warn=lambda line: None)
    return family_table(long_table(runs))


def image(png: bytes):
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_tradeoff_has_one_panel_per_skill_family(families):
    full = families[families.suite == "organism_full"]
    img = image(tradeoff_png(full))
    assert img.shape[1] > img.shape[0]  # two panels side by side: logic and qa_open
    only_logic = full[full.family != "qa_open"]
    assert image(tradeoff_png(only_logic)).shape[1] < img.shape[1]


def test_tradeoff_needs_memorization_and_a_skill(families):
    assert tradeoff_png(families[families.suite == "memorization"]) is None  # no logic / qa_open
    full = families[families.suite == "organism_full"]
    assert tradeoff_png(full[~full.family.isin(["memorized", "memorized_val"])]) is None


def test_tradeoff_falls_back_to_the_forget_split(families):
    full = families[families.suite == "organism_full"]
    assert tradeoff_png(full[full.family != "memorized_val"]) is not None


def test_family_bars(families):
    png = family_bars_png(families[families.suite == "organism_full"])
    assert png.startswith(b"\x89PNG") and image(png).std() > 0.05  # drawn, not a flat image
