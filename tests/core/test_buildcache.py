"""Default build settings and the cache folder come from conf/ (one place for each fact)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.buildcache import CONF_DIR, default_build_settings, default_cache_dir, settings_hash


def test_default_cache_dir_follows_the_app_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("HARNESS_CACHE_DIR")
    assert default_cache_dir() == Path(".cache/harness")
    assert "cache_dir: ${oc.env:HARNESS_CACHE_DIR,.cache/harness}" in (CONF_DIR / "config.yaml").read_text()


def test_both_organisms_read_their_organism_block() -> None:
    from models.organism import default_settings as lm_settings
    from models.vit.organism import default_settings as vit_settings

    assert lm_settings() == default_build_settings("organism") and lm_settings()["model"]["layers"] == 6
    assert vit_settings() == default_build_settings("vit_organism") and vit_settings()["data"]["noise_fraction"] == 0.1


# --- digests, cached and shipped builds ------------------------------------------------------

def fake_build(calls: list[str]):
    def build(settings, folder: Path, progress) -> None:
        calls.append(str(settings["seed"]))
        (folder / "model").mkdir(parents=True)
        (folder / "model" / "weights.bin").write_bytes(b"w" * 10)
        (folder / "manifest.json").write_text('{"settings_hash": "%s"}' % settings_hash(settings, 1))
    return build


def test_digests_find_a_changed_missing_or_unlisted_file(tmp_path: Path) -> None:
    from core.buildcache import digest_problem, write_digests

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    (tmp_path / "y.txt").write_text("y")
    write_digests(tmp_path)
    assert digest_problem(tmp_path) is None
    (tmp_path / "y.txt").write_text("Y")
    assert "y.txt does not match" in digest_problem(tmp_path)
    (tmp_path / "y.txt").write_text("y")
    (tmp_path / "z.txt").write_text("z")
    assert "z.txt is not listed" in digest_problem(tmp_path)
    (tmp_path / "z.txt").unlink()
    (tmp_path / "a" / "x.txt").unlink()
    assert "x.txt is missing" in digest_problem(tmp_path)


def test_a_corrupt_cached_build_is_rebuilt_with_one_warning(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from core.buildcache import ensure_built

    calls: list[str] = []
    folder = ensure_built({"seed": 0}, tmp_path, 1, fake_build(calls))
    assert ensure_built({"seed": 0}, tmp_path, 1, fake_build(calls)) == folder and calls == ["0"]
    (folder / "model" / "weights.bin").write_bytes(b"w" * 4)  # truncated
    assert ensure_built({"seed": 0}, tmp_path, 1, fake_build(calls)) == folder and calls == ["0", "0"]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "weights.bin does not match" in err[0] and "rebuilding" in err[0]


def test_a_killed_builds_temporary_folder_is_removed_by_the_next_build(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    from core.buildcache import ensure_built, temp_folder

    key = settings_hash({"seed": 0}, 1)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    host = socket.gethostname()
    killed = tmp_path / f".{key}.building-{host}-{finished.stdout.strip()}"  # its process is gone
    running = tmp_path / f".{key}.building-{host}-{os.getppid()}"  # a live process: still building
    elsewhere = tmp_path / f".{key}.building-another-host-{finished.stdout.strip()}"
    for temp in (killed, running, elsewhere):
        (temp / "model").mkdir(parents=True)
    calls: list[str] = []
    folder = ensure_built({"seed": 0}, tmp_path, 1, fake_build(calls))
    assert calls == ["0"] and (folder / "manifest.json").exists()
    assert not killed.exists() and running.exists() and elsewhere.exists()
    assert not temp_folder(folder).exists() and temp_folder(folder).name.endswith(f"{host}-{os.getpid()}")


def test_a_shipped_build_is_used_and_a_changed_one_refused(tmp_path: Path) -> None:
    from core.buildcache import ensure_built, write_digests
    from core.errors import DataError

    shipped = tmp_path / "shipped" / "seed0"
    fake_build([])({"seed": 0}, shipped, None)
    write_digests(shipped)
    calls: list[str] = []
    got = ensure_built({"seed": 0}, tmp_path / "cache", 1, fake_build(calls), shipped_root=tmp_path / "shipped",
                       rebuild_hint="python -m models.build organism --seed 0")
    assert got == shipped and calls == []
    # another setting is not shipped: it is built and cached
    assert ensure_built({"seed": 1}, tmp_path / "cache", 1, fake_build(calls),
                        shipped_root=tmp_path / "shipped").parent == tmp_path / "cache" and calls == ["1"]
    (shipped / "model" / "weights.bin").write_bytes(b"changed")
    with pytest.raises(DataError) as error:
        ensure_built({"seed": 0}, tmp_path / "cache", 1, fake_build(calls), shipped_root=tmp_path / "shipped",
                     rebuild_hint="python -m models.build organism --seed 0")
    message = str(error.value)
    assert "\n" not in message and "weights.bin" in message and "git checkout" in message and calls == ["1"]


def test_the_shipped_organisms_match_their_digests_and_the_default_settings() -> None:
    """Every committed build is intact and is a build of the default settings (seeds 0-2)."""
    import json

    from core.buildcache import digest_problem
    from models.organism import SHIPPED_DIR as LM, default_settings as lm_settings, settings_hash as lm_hash
    from models.vit.organism import SHIPPED_DIR as VIT, default_settings as vit_settings, settings_hash as vit_hash

    for shipped, defaults, hash_of in ((LM, lm_settings, lm_hash), (VIT, vit_settings, vit_hash)):
        assert sorted(p.name for p in shipped.glob("seed*")) == ["seed0", "seed1", "seed2"]
        for seed in (0, 1, 2):
            folder = shipped / f"seed{seed}"
            assert digest_problem(folder) is None, folder
            settings = {**defaults(), "seed": seed}
            assert json.loads((folder / "manifest.json").read_text())["settings_hash"] == hash_of(settings)
