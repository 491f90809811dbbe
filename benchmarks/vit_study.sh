#!/usr/bin/env bash
# The ViT study of issue 19 rerun on the shipped ViT organisms (seeds 0-2): K-FAC's rho with the
# true vs the empirical Fisher, which tokens and images its statistics come from, which blocks and
# matrices it edits, and the paper's ViT-Base setting. Each run is an edit of a shipped build (a
# second or two at one thread; the K-FAC factors are cached per seed and statistics setting; the
# whole script ~6 min on 2 cores). Run files: docs/runs/vit_study/; tables:
# python -m studies.doc_tables (docs/vision.md). Runs already on disk are skipped (same config hash).
set -euo pipefail
H="python -m harness -m model=vit_organism suite=mislabeled method=kfac_vit device=cpu
   seed=0,1,2 model.organism.seed=\${seed} runs_dir=docs/runs/vit_study"
# 1. rho, true (sampled labels) vs empirical (trained labels) Fisher
$H method.rho=0.9,0.95,0.97,0.98,0.985,0.99,0.993,0.995,0.999 method.labels=sampled,empirical
# 2. statistics over the CLS token (the paper) or every token; over every training image or the clean ones
$H method.rho=0.9,0.95,0.98,0.99,0.995 model.statistics.tokens=cls,all model.statistics.images=all,clean
# 3. which blocks and matrices
$H method.rho=0.95,0.99 'method.layers=null,[0],[-1],[0,-1],[0,1],[2,3]' 'method.matrices=[up,down],[up],[down]'
# 4. lower rho for the up or the down matrices alone (all blocks)
$H method.rho=0.75,0.8,0.85,0.9 'method.matrices=[up,down],[up],[down]'
# 5. the paper's ViT-Base setting: blocks first and last, up and down, rho 0.75
$H method.rho=0.75 'method.layers=[0,-1]'
