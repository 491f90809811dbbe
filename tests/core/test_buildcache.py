"""Default build settings and the cache folder come from conf/ (one place for each fact)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.buildcache import CONF_DIR, default_build_settings, default_cache_dir


def test_default_cache_dir_follows_the_app_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("HARNESS_CACHE_DIR")
    assert default_cache_dir() == Path(".cache/harness")
    assert "cache_dir: ${oc.env:HARNESS_CACHE_DIR,.cache/harness}" in (CONF_DIR / "config.yaml").read_text()


def test_both_organisms_read_their_organism_block() -> None:
    from models.organism import default_settings as lm_settings
    from models.vit.organism import default_settings as vit_settings

    assert lm_settings() == default_build_settings("organism") and lm_settings()["model"]["layers"] == 4
    assert vit_settings() == default_build_settings("vit_organism") and vit_settings()["data"]["noise_fraction"] == 0.1
