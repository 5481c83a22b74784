#!/usr/bin/env bash
# Every GPU check of issue 11, in three parts of at most 9 minutes each (a GPU machine is lent for
# minutes, not hours; run the parts on one machine or on three). Each step has its own time limit,
# so one slow step cannot take the others' results with it; the limits of a part add up to its
# budget below, with a minute to spare for the machine's own start.
#
#   bash bench/gpu_checks.sh 1 [RESULTS_DIR [STEP ...]]   # 350 s: tests throughput throughput-eager inference
#   bash bench/gpu_checks.sh 2 [RESULTS_DIR [STEP ...]]   # 290 s: paper time-to-accuracy
#   bash bench/gpu_checks.sh 3 [RESULTS_DIR [STEP ...]]   # 480 s: study-wall seeds-together
#
# (data: $LETTERBENCH_DATA or ../shared/data/emnist; RESULTS_DIR: default $OUT, else gpu-results)
#
# Part 1, the figures that matter most: the GPU tests (the CUDA-graph equality checks: the same
# batches as on the CPU, a run with graphs equal to one without, a resumed run ending where the
# uninterrupted one does), training throughput at the recipes' batch sizes and at 1024, the same
# without CUDA graphs, and inference throughput. Part 2: the paper study on the partial data (all
# three models, evaluation and report) and time to accuracy (TTA_ARGS="--models resnet18 --targets
# 0.905" narrows it). Part 3: the paper study with one seed, its wall clock part by part
# (bench/study_wall.py), and ResNet-18's three paper seeds one after another, then at once
# (bench/seeds_together.py). STEP (default: all of the part's) picks some of the part's steps.
set -u
declare -A PARTS=(
    [1]="tests throughput throughput-eager inference"
    [2]="paper time-to-accuracy"
    [3]="study-wall seeds-together"
)
part="${1:-}"
if [[ ! "$part" =~ ^[123]$ ]]; then
    echo "gpu_checks.sh: give the part first: 1, 2 or 3 (e.g. bash bench/gpu_checks.sh 1 OUT); the parts:" >&2
    for k in 1 2 3; do echo "  $k: ${PARTS[$k]}" >&2; done
    exit 2
fi
shift
results="${1:-${OUT:-gpu-results}}"
shift || true
all=" ${PARTS[$part]} "
steps=" ${*:-$all} "
for name in $steps; do
    [[ "$all" == *" $name "* ]] || { echo "gpu_checks.sh: part $part has no step '$name'; its steps:$all" >&2; exit 2; }
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
case "$part" in
1)
    gpu_tests=$(find tests -name test_gpu.py -not -path "*/.*" | head -n 1)
    step tests 90 "$py" -m pytest -q -p no:cacheprovider "${gpu_tests:-tests/test_gpu.py}"
    step throughput 170 "$py" bench/train_throughput.py --batches recipe,1024
    step throughput-eager 30 "$py" bench/train_throughput.py --models resnet18 --batches recipe --no-cuda-graphs
    step inference 60 "$py" bench/train_throughput.py --batches none --inference
    ;;
2)
    study=$(mktemp -d)/paper-study  # a fresh study: a rerun on a warm machine must not resume the last one
    step paper 200 "$py" -m letterbench run --preset paper --data-dir "$data" --out "$study" --quiet
    [[ -f "$study/report/report.md" ]] && cp "$study/report/report.md" "$results/paper-report.md"
    step time-to-accuracy 90 "$py" bench/time_to_accuracy.py --data-dir "$data" ${TTA_ARGS:-}
    ;;
3)
    step study-wall 240 "$py" bench/study_wall.py --preset paper --data-dir "$data" --args "--seeds 1"
    step seeds-together 240 "$py" bench/seeds_together.py --preset paper --models resnet18 --seeds 3 --data-dir "$data"
    ;;
esac
