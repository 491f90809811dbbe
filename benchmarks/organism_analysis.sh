#!/usr/bin/env bash
# The spectrum analysis (docs/analysis.md) on the shipped organisms, beside the published runs:
# for each shipped seed, `spectrum` (K-FAC's organism setting: its factor files and edited layers)
# and `predict` over the published K-FAC runs of that seed (one per rho of its recorded sweep);
# the ViT organisms' spectrum likewise. Results: leaderboard/published/runs/analysis/<model>/<suite>/
# (the published leaderboard page embeds the plots; docs/analysis.md's tables are generated from
# the JSON files). One thread per job.
set -euo pipefail
RUNS=${RUNS:-leaderboard/published/runs}
export OMP_NUM_THREADS=1
for s in 0 1 2; do
  python -m studies.analyze spectrum model=organism model.organism.seed="$s" seed="$s" runs_dir="$RUNS"
  python -m studies.analyze predict model=organism model.organism.seed="$s" seed="$s" runs_dir="$RUNS"
  python -m studies.analyze spectrum model=vit_organism suite=mislabeled method=kfac_vit \
    model.organism.seed="$s" seed="$s" runs_dir="$RUNS"
done
