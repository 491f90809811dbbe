"""The HTML page in headless Chromium: it loads with no script error, every inline plot decodes,
and a screenshot is not blank. The page writes its own verdict into #page-status (a script in
<head> hooks window.onerror and checks each image on load); the broken-page tests prove that
verdict really turns to 'error'."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from leaderboard.__main__ import main

pytestmark = pytest.mark.browser
FIXTURES = Path(__file__).parent / "fixtures"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    out = tmp_path_factory.mktemp("lb_html")
    assert main([str(FIXTURES), "--out", str(out), "--no-parquet"]) == 0
    return out / "index.html"


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"  # fresh each call
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=180)


def page_status(tmp_path: Path, html: Path) -> tuple[str, str]:
    proc = chromium(tmp_path, "--dump-dom", html.as_uri())
    m = re.search(r'<p id="page-status" data-status="(\w+)">(.*?)</p>', proc.stdout, re.S)
    assert m, f"no #page-status in the DOM (rc {proc.returncode}): {proc.stderr[-500:]}"
    return m.group(1), m.group(2)


def test_page_loads_without_errors_and_all_images_decode(page, tmp_path):
    status, text = page_status(tmp_path, page)
    n_images = page.read_text().count("<img ")
    assert n_images >= 4  # trade-off + bars for organism_full, bars for the memorization suites
    assert status == "ok", text
    assert text == f"page check ok: {n_images} images loaded"


def test_a_script_error_turns_the_check_red(page, tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace("<h1>", "<script>thisFunctionDoesNotExist();</script><h1>", 1))
    status, text = page_status(tmp_path, broken)
    assert status == "error" and "thisFunctionDoesNotExist" in text


def test_an_undecodable_image_turns_the_check_red(page, tmp_path):
    broken = tmp_path / "broken_image.html"
    broken.write_text(re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,bm90IGEgcG5n", page.read_text(), count=1))
    status, text = page_status(tmp_path, broken)
    assert status == "error" and "image not loaded" in text


def test_screenshot_is_not_blank(page, tmp_path):
    import matplotlib.image
    import numpy as np

    shot = tmp_path / "shot.png"
    proc = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri())
    assert shot.exists(), proc.stderr[-500:]
    pixels = (matplotlib.image.imread(shot)[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    assert pixels.shape[0] == 1200 * 900
    assert len(colours) > 50  # text, table shading, plot colours
    assert counts.max() / counts.sum() < 0.95  # not one flat background
