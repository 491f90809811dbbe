"""The columns a method adds to the run table and the leaderboard.

A method declares them (`methods.base.Method.columns`); the pipeline records the declaration in
the run file (run["method"]["columns"]), so the leaderboard reads them from run records alone and
names no method. Each column says where its value is in a run file and what the tables make of it:

- role "setting": a number the method is swept over (K-FAC's rho): a column of the long table,
  and the plots draw a line through a method's settings sorted by it;
- role "count": how many of a method's runs had the value `counts` there (K-FAC's factor cache
  "hit"): headline column `<name>_hits`, noted in the cost cell as "N of M runs <what>";
- role "amount": a number read from the first of `sources` a run has, whose last part is its
  unit (K-FAC's `method.report.tokens` or `.images`): headline columns `<name>_unit`,
  `<name>_min`, `<name>_max`.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

Role = Literal["setting", "count", "amount"]


class MethodColumn(NamedTuple):
    name: str
    sources: tuple[str, ...]  # dotted paths in a run file; the first one present gives the value
    role: Role
    what: str = ""    # words for the cost cell (role count)
    counts: str = ""  # role count: the value counted
    label: str = ""   # short name in plot annotations (default: name)

    def record(self) -> dict[str, Any]:
        """The JSON form written into a run file."""
        return {**self._asdict(), "sources": list(self.sources)}


def from_record(entry: dict[str, Any]) -> MethodColumn:
    return MethodColumn(**{**entry, "sources": tuple(entry["sources"])})


# Run files written before methods recorded their columns (no method.columns) were read with
# these, whatever their method (a column a run lacks is empty), and still are: K-FAC's columns as
# methods/kfac/method.py declares them (tests/methods/test_kfac.py checks that the two agree).
LEGACY_COLUMNS: tuple[MethodColumn, ...] = (
    MethodColumn("rho", ("config.method.rho",), "setting", label="ρ"),
    MethodColumn("factor_cache", ("method.report.factor_cache",), "count", what="reused cached statistics",
                 counts="hit"),
    MethodColumn("statistics", ("method.report.tokens", "method.report.images"), "amount"),
)


def declared_columns(run: dict[str, Any]) -> tuple[MethodColumn, ...]:
    """The columns a run file's method declared (LEGACY_COLUMNS for files that record none)."""
    recorded = (run.get("method") or {}).get("columns")
    return LEGACY_COLUMNS if recorded is None else tuple(from_record(e) for e in recorded)


def value_at(run: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of a run file, or None where the file has none."""
    node: Any = run
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def setting_value(run: dict[str, Any], column: MethodColumn) -> float:
    """A setting column's number in this run, nan where it has none."""
    value = next((v for v in (value_at(run, s) for s in column.sources) if v is not None), None)
    return float(value) if _is_number(value) else math.nan


def count_value(run: dict[str, Any], column: MethodColumn) -> str:
    """A count column's value in this run as text ("" where it has none)."""
    value = next((v for v in (value_at(run, s) for s in column.sources) if v is not None), None)
    return "" if value is None else str(value)


def amount_value(run: dict[str, Any], column: MethodColumn) -> tuple[str, float]:
    """(unit, number) of an amount column in this run: the first source holding a number; its unit
    is the source's last part. ("", nan) where the run has none."""
    for source in column.sources:
        value = value_at(run, source)
        if _is_number(value):
            return source.rpartition(".")[2], float(value)
    return "", math.nan
