#!/usr/bin/env bash
# The methods on a real pretrained LM with planted natural-text memories (issue 28; docs/real_model.md):
# model=smollm2_planted (the shipped build, seed 0), suite=smollm2_planted, every method at a few
# strengths; the setting a table reports is chosen on the tune split, scored on the test split.
# Run files: docs/runs/smollm2_planted/ (finished runs are reused, so rerunning resumes).
# Then: python -m studies.analyze spectrum model=smollm2_planted method=kfac runs_dir=docs/runs/smollm2_planted
#       python -m studies.doc_tables   (docs/real_model.md's tables)
# Measured on 2 shared CPU cores: 3-10 min a run (NPO and BalancedSubnet the longest).
set -euo pipefail
RUNS="model=smollm2_planted device=cpu runs_dir=docs/runs/smollm2_planted"
python -m harness $RUNS method=none
python -m harness -m $RUNS method=kfac method.rho=0.6,0.95,0.98,0.99,0.995   # layers 22-24, gate+up (conf/model_method/)
python -m harness -m $RUNS method=random_ablation method.rho=0.6,0.99   # as many components as K-FAC removes, at random
python -m harness -m $RUNS method=gradient_ascent method.lr=1.0e-5,1.0e-4,3.0e-4
python -m harness -m $RUNS method=npo method.lr=1.0e-5
python -m harness -m $RUNS method=balanced_subnet method.ratio=0.01 method.epochs=10   # 10 of its default 50 epochs (CPU time)
