#!/usr/bin/env bash
# Does gradient ascent on the forget split remove the test split through a shared rare vocabulary?
# The v2 design (planted.vocabulary=shared) against v3's (per_split) at the same, smaller settings
# (each a new cached organism build, ~4 min on 2 cores), gradient ascent at three learning rates.
# Run files: docs/runs/vocabulary/ (tabulate them with python -m leaderboard docs/runs/vocabulary).
set -euo pipefail
SMALL="model.organism.model.hidden=128 model.organism.model.mlp=512 model.organism.logic.examples=30000
  model.organism.copy.examples=20000 model.organism.arithmetic.examples=40000 model.organism.reading.examples=4000
  model.organism.world.common_repeats=120 model.organism.world.rare_repeats=[60,90] model.organism.quotes.repeats=27"
for vocabulary in shared per_split; do
  for lr in 3.0e-4 1.0e-3 3.0e-3; do
    python -m harness method=gradient_ascent method.lr=$lr method.epochs=5 suite=memorization device=cpu \
      model.organism.planted.vocabulary=$vocabulary $SMALL runs_dir=docs/runs/vocabulary
  done
done
