#!/usr/bin/env bash
# Second learning rate for the compression study (issue 4): the same fine-tuning budget as
# scripts/compression_study.sh but lr 1e-3, for both methods at the given rates, one after the other.
# Resumable like the main study.  Per method and rate the better lr on the valid split is shipped.
#
#   DATA=../shared/data RUNS="pruned:5 mpo:20 pruned:20 mpo:100 pruned:100" bash scripts/study_lr.sh
set -euo pipefail
DATA=${DATA:-../shared/data}
DENSE=${DENSE:-models/lstm-dense.pt}
STEPS=${STEPS:-1000}
RUNS=${RUNS:-"mpo:5 pruned:5 mpo:20 pruned:20 mpo:100 pruned:100"}
mkdir -p runs/study
for run in $RUNS; do
  kind=${run%%:*}; r=${run##*:}
  se-app -q train --kind "$kind" --rate "$r" -o "runs/study/$kind-${r}x-lr1e-3" --data "$DATA" --init-from "$DENSE" \
    --steps "$STEPS" --lr 1e-3 --warmup 50 --prune-start 0 --prune-end 0.5 --threads 1 --resume \
    >> "runs/study/lr1e-3.log" 2>&1
done
