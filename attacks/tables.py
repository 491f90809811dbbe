"""python -m attacks.tables ATTACKS_CSV: per-task tables of attacked recall, mean over seeds, from
the leaderboard's attacks.csv (`python -m leaderboard RUNS --out DIR` writes DIR/attacks.csv).
docs/attacks.md's tables come from this; the leaderboard page shows the headline task only."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from core.errors import DataError, HarnessError

if TYPE_CHECKING:
    import pandas as pd

# The organism's memorization suite (v3): the scored test split, the half of the forget split that
# relearning on forget_half leaves out, the forget split, quotes.
TASKS = ("verbatim_test", "verbatim_forget[heldout]", "verbatim_forget", "quotes")
ATTACK_RANK = {"relearn": 0, "quantize": 1, "sample": 2}
SETTING_RANK = {"forget_half": 0, "retain": 1, "related": 2, "int8": 0, "int4": 1, "int4_g128": 2}


def column(attack: str, setting: str, steps: float) -> str:
    return f"{setting} k={int(steps)}" if attack == "relearn" else setting


COLUMNS = ("attack", "setting", "steps", "task", "variant", "edited", "edited_no_attack", "baseline_key", "baseline",
           "baseline_no_attack")
WRITTEN_BY = "python -m leaderboard RUNS --out DIR writes DIR/attacks.csv"


def read_attacks_csv(path: str) -> "pd.DataFrame":
    """The leaderboard's attacks.csv; a file that is missing, unreadable or another CSV is one
    DataError line."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except OSError as e:
        raise DataError(f"{path}: {'is a folder' if isinstance(e, IsADirectoryError) else e.strerror or e}; "
                        f"pass the leaderboard's attacks.csv ({WRITTEN_BY})") from None
    except ValueError as e:  # empty, not CSV, not UTF-8 (pandas' parser errors are ValueErrors)
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: not a readable CSV ({reason}); pass the leaderboard's attacks.csv ({WRITTEN_BY})") from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: not the leaderboard's attacks.csv: no column(s) {', '.join(missing)} ({WRITTEN_BY})")
    return df


def tables(path: str, tasks: tuple[str, ...] = TASKS) -> str:
    import pandas as pd

    # One row per leaderboard variant: runs on other organism seeds (model.organism.seed) are seeds
    # of their configuration there already; configs that differ elsewhere keep their `#<config>`.
    df = read_attacks_csv(path)
    df["col"] = [column(a, s, k) for a, s, k in zip(df.attack, df.setting, df.steps)]
    df["_order"] = [(ATTACK_RANK.get(a, 3), SETTING_RANK.get(s, 3), 0 if pd.isna(k) else k)
                    for a, s, k in zip(df.attack, df.setting, df.steps)]
    order = list(dict.fromkeys(df.sort_values("_order").col))
    out = []
    for task in tasks:
        d = df[df.task == task]
        if d.empty:
            continue
        stats = d.groupby(["variant", "col"]).edited.agg(["mean", "count"])
        # The unedited model once per baseline (model + seed), however many methods ran on it.
        base_runs = d.drop_duplicates(["baseline_key", "col"])
        base = base_runs.groupby("col").baseline.mean()
        plain = d.groupby("variant").edited_no_attack.mean()
        cols = [c for c in order if c in set(d.col)]
        out += [f"**{task}** (strict recall, or any-exact for sampling; mean over seeds, seeds in brackets)", "",
                "| model | no attack | " + " | ".join(cols) + " |", "|---|" + "---:|" * (len(cols) + 1),
                f"| unedited ({base_runs.baseline_key.nunique()}) | {base_runs.drop_duplicates('baseline_key').baseline_no_attack.mean():.2f} | "
                + " | ".join(f"{base[c]:.2f}" for c in cols) + " |"]
        for v in dict.fromkeys(d.variant):
            cells = [f"{stats.loc[(v, c), 'mean']:.2f}" if (v, c) in stats.index else "" for c in cols]
            out.append(f"| {v} ({int(stats.loc[v]['count'].max())}) | {plain[v]:.2f} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        if argv[:1] in (["-h"], ["--help"]):
            print(__doc__)
            return 0
        print(f"error: python -m attacks.tables takes one argument, the leaderboard's attacks.csv ({WRITTEN_BY}); "
              f"got {len(argv)}", file=sys.stderr)
        return 2
    try:
        print(tables(argv[0]))
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
