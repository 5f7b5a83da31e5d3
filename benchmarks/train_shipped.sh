#!/usr/bin/env bash
# Meta-train every shipped checkpoint (resources/checkpoints/) in one go, on whatever device is
# present (meant for one GPU; a CPU run with tiny limits checks the script itself).
#   benchmarks/train_shipped.sh OMNIGLOT_BACKGROUND FLOWERS_TRAIN OUT_DIR [TIME_SCALE]
# TIME_SCALE multiplies every time limit (1 = the shipped run). Logs go to OUT_DIR/*.log.
set -uo pipefail
OMNI=$1; FLOWERS=$2; OUT=$3; S=${4:-1}
mkdir -p "$OUT"
t() { python3 -c "print(max(2, int($1 * $S)))"; }
v() { python3 -c "print(max(2, int($1 * ${VAL_SCALE:-1})))"; }  # VAL_SCALE shrinks validation
mt() { python3 -m fewshot_gui meta-train "$@"; }
OMNI_COMMON=(--backbone conv4 --image-size 28 --channels 1 --rotations --val-fraction 0.2
             --val-way 20 --val-shot 1 --val-query 5 --seed 0)

# Phase A: the metric encoders (Omniglot Conv-4 ProtoNet; Flowers EfficientNet-Lite0) side by side.
mt "$OMNI" --threads 3 --method metric "${OMNI_COMMON[@]}" --way 60 --shot 5 --query 5 --episodes 100000 \
   --val-every 1000 --val-episodes "$(v 200)" --lr 1e-3 --lr-halve-every 2500 \
   --time-limit "$(t 110)" --out "$OUT/omniglot-metric.pt" > "$OUT/omniglot-metric.log" 2>&1 &
A1=$!
mt "$FLOWERS" --threads 3 --method metric --backbone efficientnet-lite0 --way "${PHOTOS_WAY:-10}" --shot 5 --query 6 \
   --episodes 100000 --val-fraction 0.2 --val-way 5 --val-shot 1 --val-query 10 --val-every 100 \
   --val-episodes "$(v 100)" --lr 3e-4 --lr-halve-every 400 --freeze-until blocks.4 --preload \
   --time-limit "$(t 170)" --seed 0 --out "$OUT/photos-metric.pt" > "$OUT/photos-metric.log" 2>&1 &
A2=$!
wait $A1

# Phase B: the other families on Omniglot, starting from the metric encoder.
for m in memory anil metasgd metalstm; do
  mt "$OMNI" --threads 3 --method $m "${OMNI_COMMON[@]}" --way 20 --shot 1 --query 5 --episodes 100000 \
     --init "$OUT/omniglot-metric.pt" --val-every 300 --val-episodes "$(v 200)" --lr 5e-4 \
     --time-limit "$(t 90)" --out "$OUT/omniglot-$m.pt" > "$OUT/omniglot-$m.log" 2>&1 &
done
for m in maml fomaml; do
  mt "$OMNI" --threads 3 --method $m "${OMNI_COMMON[@]}" --way 5 --shot 1 --query 5 --episodes 100000 \
     --init "$OUT/omniglot-metric.pt" --adapt full --inner-steps 3 --inner-lr 0.1 --meta-batch 4 \
     --val-way 5 --val-every 100 --val-episodes "$(v 100)" --lr 1e-4 \
     --time-limit "$(t 90)" --out "$OUT/omniglot-$m.pt" > "$OUT/omniglot-$m.log" 2>&1 &
done
wait $A2

# Phase C: head-level learners of every family on the frozen photos encoder, merged into one file.
for m in memory maml anil metasgd metalstm; do
  mt "$FLOWERS" --threads 3 --method $m --backbone efficientnet-lite0 --way 5 --shot 1 --query 10 \
     --episodes 100000 --init "$OUT/photos-metric.pt" --freeze-until all --preload \
     --val-way 5 --val-shot 1 --val-query 10 --val-every 100 --val-episodes "$(v 100)" --lr 1e-3 \
     --time-limit "$(t 60)" --seed 0 --out "$OUT/photos-$m.pt" > "$OUT/photos-$m.log" 2>&1 &
done
wait
python3 -m fewshot_gui.training.merge "$OUT/photos.pt" "$OUT/photos-metric.pt" \
  "$OUT"/photos-{memory,maml,anil,metasgd,metalstm}.pt --half > "$OUT/merge.log" 2>&1
for f in "$OUT"/*.log; do echo "== $f"; tail -n 3 "$f"; done
