"""The unedited model: the reference every other method is compared with."""

from __future__ import annotations

from typing import Any

import torch

from methods.base import Method, MethodContext


class NoEdit(Method):
    needs = ()

    def apply(self, model: torch.nn.Module, ctx: MethodContext) -> dict[str, Any]:
        return {"changed": {}}
