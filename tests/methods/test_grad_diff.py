"""GradDiff-specific tests; the tests it shares with the other fine-tuning methods are in
test_finetune_methods.py."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("w", [-0.1, 1.0, "x"])
def test_bad_retain_weight(w):
    from core.errors import ConfigError
    from methods.grad_diff import GradDiff

    with pytest.raises(ConfigError):
        GradDiff(retain_weight=w)
