#!/usr/bin/env bash
# Does the removal last on the shipped organisms (v3)? attack=standard (docs/attacks.md) on the
# setting the published leaderboard picks for each method at >= 90 % utility on organism_full
# (chosen on the tune split), with random ablation at K-FAC's rho as the reference, scored on
# suite=memorization. Run files: leaderboard/published/runs/organism/memorization/ (the published
# leaderboard reads them; docs/attacks.md's tables are generated from them).
# A run relearns 200 steps on each of 3 sources, for the edited model and (once per seed, cached)
# the unedited one: about 10 minutes on one CPU thread, 20 for a seed's first run (six layers).
# The order is by priority: every method on seed 0, then on seeds 1 and 2 the methods whose picks
# remove passages (gradient ascent, NPO), then K-FAC (whose pick removes none) and its reference.
# Last, K-FAC at rho 0.995: no pick (just under 90 % utility), but the mildest swept rho
# that removes most test passages, so it can say whether K-FAC's removal lasts (its pick cannot).
# One thread per run: two of these (or one and another job) share 2 cores best that way.
set -euo pipefail
RUNS=${RUNS:-leaderboard/published/runs}
KFAC="method=kfac method.rho=0.999"
KFAC_STRONGER="method=kfac method.rho=0.995"
RANDOM_ABLATION="method=random_ablation method.rho=0.999"
GRADIENT_ASCENT="method=gradient_ascent method.epochs=5 method.lr=0.003"
NPO="method=npo method.epochs=20 method.lr=0.001"
# BalancedSubnet has no setting at >= 90 % utility on the six-layer organisms: nothing to attack.
JOBS=(
  "0|$KFAC" "0|$RANDOM_ABLATION" "0|$GRADIENT_ASCENT" "0|$NPO"
  "1|$GRADIENT_ASCENT" "2|$GRADIENT_ASCENT" "1|$NPO" "2|$NPO"
  "1|$KFAC" "2|$KFAC" "1|$RANDOM_ABLATION" "2|$RANDOM_ABLATION"
  "0|$KFAC_STRONGER" "1|$KFAC_STRONGER" "2|$KFAC_STRONGER"
)
for job in "${JOBS[@]}"; do
  s=${job%%|*} setting=${job#*|}
  # shellcheck disable=SC2086  # a setting is several overrides
  OMP_NUM_THREADS=1 python -m harness $setting seed="$s" model.organism.seed="$s" attack=standard \
    suite=memorization device=cpu runs_dir="$RUNS"
done
