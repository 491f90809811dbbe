#!/usr/bin/env bash
# The organism runs made on a GPU machine (docs/attacks.md, docs/leaderboard.md): the attack runs
# of issue 16 (5 methods x organism seeds 0-2, attack=standard) and a replica of every recorded
# organism sweep (conf/sweep/, issue 18) on the GPU, both on organisms built on the CPU and
# carried over (so the weights are the CPU build's; statistics, edits and evaluation run on cuda).
#
#   bash benchmarks/device_runs.sh [RUNS_DIR]          # DRY=1: one small job of each kind, on cpu
#
# Jobs run in parallel (JOBS at a time, one torch thread each); a job that fails prints one line
# and the others go on. Run files land under RUNS_DIR/attacks and RUNS_DIR/sweeps; logs beside them.
set -u
RUNS=${1:-runs-device}
JOBS=${JOBS:-8}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p "$RUNS/attacks" "$RUNS/sweeps" "$RUNS/logs"

# Each method at its organism setting (README), as in docs/attacks.md.
ATTACK_METHODS=("method=kfac" "method=balanced_subnet" "method=gradient_ascent method.lr=1e-3"
                "method=npo method.lr=1e-3" "method=random_ablation")
SWEEPS=(none kfac random_ablation svd balanced_subnet gradient_ascent grad_diff npo neuron_zero_out)
SEEDS=(0 1 2)
EXTRA=()
if [ "${DRY:-0}" = 1 ]; then  # a smoke test of this script: tiny attacks, one sweep point
  SEEDS=(0); ATTACK_METHODS=("method=kfac"); SWEEPS=(kfac)
  EXTRA=("attack.attacks.relearn.steps=[1]" "attack.attacks.sample.n=2" "suite.tasks.verbatim_forget.limit=4")
fi

jobs_file=$RUNS/logs/jobs.txt
: > "$jobs_file"
for s in "${SEEDS[@]}"; do    # seed-major: a seed's first job attacks its unedited model (locked, cached)
  for m in "${ATTACK_METHODS[@]}"; do
    echo "attack s$s ${m// /_}|-m harness $m seed=$s model.organism.seed=$s attack=standard suite=memorization runs_dir=$RUNS/attacks device=$DEVICE ${EXTRA[*]:-}" >> "$jobs_file"
  done
done
for m in "${SWEEPS[@]}"; do
  if [ "${DRY:-0}" = 1 ]; then
    echo "sweep $m|-m harness.sweep method=$m seed=0 method.rho=0.9 runs_dir=$RUNS/sweeps device=$DEVICE" >> "$jobs_file"
  else
    echo "sweep $m|-m harness.sweep method=$m runs_dir=$RUNS/sweeps device=$DEVICE" >> "$jobs_file"
  fi
done

run_job() {  # "name|arguments": run, log, one line of outcome
  local name=${1%%|*} args=${1#*|} log start
  log="$RUNS/logs/$(echo "$name" | tr ' =.' '___').log"
  start=$SECONDS
  # shellcheck disable=SC2086
  if $PY $args > "$log" 2>&1; then echo "ok   $name ($((SECONDS - start)) s)"
  else echo "FAIL $name ($((SECONDS - start)) s): $(grep -m1 -i 'error' "$log" | cut -c1-300)"; fi
}
export -f run_job
export RUNS PY
tr '\n' '\0' < "$jobs_file" | xargs -0 -P "$JOBS" -I{} bash -c 'run_job "$1"' _ {}
