"""`python -m models.organism.families [--write-suite]`: list the registered organism families and
their evaluations; with --write-suite, rewrite conf/suite/organism_full.yaml from the registry."""

from __future__ import annotations

import argparse
from pathlib import Path

from models.organism.families import families, suite_yaml

SUITE_FILE = Path(__file__).resolve().parents[3] / "conf" / "suite" / "organism_full.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m models.organism.families", description=__doc__)
    parser.add_argument("--write-suite", action="store_true", help=f"rewrite {SUITE_FILE.name} from the registry")
    args = parser.parse_args()
    if args.write_suite:
        from core.io import atomic_write_text

        atomic_write_text(SUITE_FILE, suite_yaml())
        print(f"wrote {SUITE_FILE}")
        return
    for key, family in families().items():
        evals = ", ".join(e.name + (f" (check {e.check})" if e.check else "") for e in family.evaluations) or "-"
        print(f"{key:12} documents: {family.component or '-':11} evaluations: {evals}")


if __name__ == "__main__":
    main()
