#!/usr/bin/env bash
# The compression study (issue 4): from the trained dense LSTM, magnitude pruning (gradual, cubic schedule)
# and MPO (SVD-truncated init) at 5/10/20/50/100x, each with the same fine-tuning budget (STEPS steps, same
# learning rate and schedule).  Two chains run side by side, one thread each.  Resumable: run it again and
# each model continues from runs/study/NAME/last.pt; finished ones are skipped.
#
#   DATA=../shared/data DENSE=models/lstm-dense.pt STEPS=2000 MINUTES=170 bash scripts/compression_study.sh
set -euo pipefail
DATA=${DATA:-../shared/data}
DENSE=${DENSE:-models/lstm-dense.pt}
STEPS=${STEPS:-2000}
MINUTES=${MINUTES:-170}
RATES=${RATES:-"5 10 20 50 100"}
COMMON=(--data "$DATA" --init-from "$DENSE" --steps "$STEPS" --lr 3e-4 --warmup 50 --prune-start 0
        --prune-end 0.5 --threads 1 --resume --max-minutes "$MINUTES")
mkdir -p runs/study
chain() {  # kind
  for r in $RATES; do
    se-app -q train --kind "$1" --rate "$r" -o "runs/study/$1-${r}x" "${COMMON[@]}" \
      >> "runs/study/$1.log" 2>&1
  done
}
chain pruned & chain mpo & wait
echo "done; register with: se-app register pruned-20x runs/study/pruned-20x/best.pt --card ..."
