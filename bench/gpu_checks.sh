#!/usr/bin/env bash
# Every GPU check of issue 11 in one prepared run (a GPU machine is lent for minutes, not hours):
# the GPU tests, the throughput bench at the recipes' batch sizes and at 1024, the paper study on
# the partial data (all three models, evaluation and report), and time to accuracy. Each step has
# its own time limit, so one slow step cannot take the others' results with it.
#
#   bash bench/gpu_checks.sh [RESULTS_DIR [STEP ...]]   (data: $LETTERBENCH_DATA or ../shared/data/emnist)
#
# STEP: tests throughput paper time-to-accuracy throughput-eager inference study-wall seeds-together
# (default: all). study-wall: the paper study with one seed, its wall clock part by part
# (bench/study_wall.py). seeds-together: ResNet-18's three paper seeds one after another, then at
# once (bench/seeds_together.py).
set -u
results="${1:-${OUT:-gpu-results}}"
shift || true
all=" tests throughput paper time-to-accuracy throughput-eager inference study-wall seeds-together "
steps=" ${*:-$all} "
for name in $steps; do
    [[ "$all" == *" $name "* ]] || { echo "gpu_checks.sh: no step '$name'; the steps:$all" >&2; exit 2; }
done
mkdir -p "$results"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
data="${LETTERBENCH_DATA:-../shared/data/emnist}"
py="${PYTHON:-python3}"
step() {  # step NAME SECONDS COMMAND...: run it (if asked for), log it, say how it ended and how long it took
    local name="$1" limit="$2"; shift 2
    [[ "$steps" == *" $name "* ]] || return 0
    local start=$SECONDS
    timeout "$limit" "$@" >"$results/$name.log" 2>&1
    echo "== $name: exit $? after $((SECONDS - start)) s" | tee -a "$results/$name.log"
    tail -n 25 "$results/$name.log"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$py" -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"; } >"$results/machine.log" 2>&1
cat "$results/machine.log"
step tests 90 "$py" -m pytest -q -p no:cacheprovider tests/test_gpu.py
step throughput 170 "$py" bench/train_throughput.py --batches recipe,1024
study=$(mktemp -d)/paper-study  # a fresh study: a rerun on a warm machine must not resume the last one
step paper 200 "$py" -m letterbench run --preset paper --data-dir "$data" --out "$study" --quiet
[[ -f "$study/report/report.md" ]] && cp "$study/report/report.md" "$results/paper-report.md"
step time-to-accuracy 90 "$py" bench/time_to_accuracy.py --data-dir "$data" ${TTA_ARGS:-}  # e.g. TTA_ARGS="--models resnet18 --targets 0.905"
step throughput-eager 30 "$py" bench/train_throughput.py --models resnet18 --batches recipe --no-cuda-graphs
step inference 60 "$py" bench/train_throughput.py --batches none --inference
step study-wall 240 "$py" bench/study_wall.py --preset paper --data-dir "$data" --args "--seeds 1"
step seeds-together 240 "$py" bench/seeds_together.py --preset paper --models resnet18 --seeds 3 --data-dir "$data"
