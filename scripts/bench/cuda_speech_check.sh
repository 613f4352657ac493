#!/usr/bin/env bash
# The speech stage on one GPU, in one run (docs/model.md: "Speech on a GPU"): bench_speech.py on CUDA for the bundled
# student (float32 and bf16, character budgets 16k-1M) and a 0.5B causal LM of realistic shape (random weights,
# batches 64-1,024, both precisions), speech builds of a corpus with --device cuda in both precisions compared span by
# span with a CPU build of the same corpus (unit_agreement.py), the GPU's memory and utilisation while they convert,
# and profiles of one batch of each model. Every step has its own time limit, and one that fails does not stop the
# rest; the steps come in the order of what matters most, and all of them fit in one 10-minute device call (about
# 9 minutes); figures and logs go to OUT.
#
#   scripts/bench/cuda_speech_check.sh OUT CORPUS.jsonl[.zst] CPU_BUILD
#
# scripts/bench/prepare_cuda_check.sh makes CORPUS, CPU_BUILD (its manifest and cache: a build of CORPUS made on a
# CPU with --cache) and the wheels in .whl/, which are installed first (a GPU machine has no package index). Paths
# are best given relative to the repository root, where this runs, so that a build made on another machine is found
# at the same place. With ARCHIVE=FILE.tgz set, OUT is packed into it after every step. DEVICE=cpu rehearses the
# whole run on a machine without a GPU (the CUDA-only figures are then left out).
set -uo pipefail
out=${1:?usage: scripts/bench/cuda_speech_check.sh OUT CORPUS.jsonl CPU_BUILD}
corpus=${2:?usage: scripts/bench/cuda_speech_check.sh OUT CORPUS.jsonl CPU_BUILD}
cpu_build=${3:?usage: scripts/bench/cuda_speech_check.sh OUT CORPUS.jsonl CPU_BUILD}
[ -f "$corpus" ] || { echo "cuda_speech_check: corpus $corpus not found" >&2; exit 2; }
[ -f "$cpu_build/manifest.json" ] || { echo "cuda_speech_check: $cpu_build holds no build" >&2; exit 2; }
mkdir -p "$out"
work=$(mktemp -d)
device=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error

step() {  # step NAME SECONDS COMMAND...: the command's output to OUT/NAME.log and here, its status noted
    local name=$1 limit=$2; shift 2
    echo "=== $name ($(date +%T), limit ${limit}s)"
    timeout "$limit" "$@" > >(tee "$out/$name.log") 2>&1
    local status=$?
    echo "=== $name: exit $status"
    if [ -n "${ARCHIVE:-}" ]; then tar czf "$ARCHIVE" -C "$out" .; fi  # what is done so far, if the run is cut short
}

if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$work/site" .whl/*.whl
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target "$work/vocaloom" . \
    || exit 1
export PYTHONPATH="$work/vocaloom:$work/site${PYTHONPATH:+:$PYTHONPATH}"
vocaloom="$work/vocaloom/bin/vocaloom"  # not python3 -m: the checkout's vocaloom/ folder would shadow the install
python3 -c "import vocaloom.pipelines.build, vocaloom.transforms.speech.speech_handlers" \
    || { echo "cuda_speech_check: the install lacks a module (above): add its wheel to .whl/" >&2; exit 1; }
if [ "$device" = cuda ]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"
fi
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"

# A rehearsal on a CPU checks the steps, not speed: a tiny causal LM, the CPU's batch budget, few spans.
lm_shape=$([ "$device" = cuda ] && echo 0.5b || echo tiny)
batch_characters=$([ "$device" = cuda ] && echo 262144 || echo 2048)
python3 -m scripts.recipes.make_causal_lm --out "$work/lm" --shape "$lm_shape" > "$out/make-causal-lm.log" 2>&1 &
make_lm=$!  # on the CPU while the GPU converts

step student 80 python3 -m scripts.bench.bench_speech --devices "$device" --models student --cuda-spans 60000 \
    --cuda-single-spans 200 --spans 300 --single-spans 20 --json "$out/student.json"

# Builds of the corpus on the device, float32 (the bundled student as it ships) and bf16 (the same weights with
# dtype bfloat16 in a copy of its config), each verified and compared with the CPU build; nvidia-smi dmon samples
# the GPU while they convert.
student_bf16="$work/student-bf16"
cp -r "$work/vocaloom/vocaloom/assets/text_to_token" "$student_bf16"
python3 -c 'import json, sys; path = sys.argv[1] + "/config.json"; config = json.load(open(path))
json.dump({**config, "dtype": "bfloat16"}, open(path, "w"), indent=2, sort_keys=True)' "$student_bf16"
device_build() {  # device_build DTYPE [BUILD OPTIONS...]
    local dtype=$1 build="$work/build-$1" dmon=""; shift
    if [ "$device" = cuda ]; then
        nvidia-smi dmon -s um -d 1 > "$out/dmon-build-$dtype.txt" 2>&1 &
        dmon=$!
    fi
    step "build-$dtype" 60 "$vocaloom" build --input "$corpus" --output "$build" --cache "$build-cache" \
        --device "$device" --batch-characters "$batch_characters" "$@"
    [ -n "$dmon" ] && kill "$dmon" 2>/dev/null
    step "verify-$dtype" 15 "$vocaloom" verify "$build"
    step "agreement-$dtype" 30 python3 -m scripts.recipes.unit_agreement "$cpu_build" "$build" \
        --json "$out/agreement-$dtype.json"
}
device_build float32

wait "$make_lm" || { cat "$out/make-causal-lm.log"; echo "cuda_speech_check: no causal LM to time" >&2; }
step causal-lm 80 python3 -m scripts.bench.bench_speech --devices "$device" --models causal-lm --causal-lm "$work/lm" \
    --cuda-lm-batch-count 1 --json "$out/causal-lm.json"

device_build bfloat16 --text-to-token-model "$student_bf16"

step causal-lm-static 70 python3 -m scripts.bench.bench_speech --devices "$device" --models --cuda-lm-static \
    --causal-lm "$work/lm" --cuda-lm-batches 1024 --cuda-lm-batch-count 1 --json "$out/causal-lm-static.json"
step profiles 50 python3 -m scripts.bench.bench_speech --devices "$device" --models --cuda-profile \
    --causal-lm "$work/lm" --json "$out/profiles.json"
echo "=== done $(date +%T)"
grep -h "speech tokens/s" "$out"/student.log "$out"/causal-lm.log "$out"/causal-lm-static.log 2>/dev/null
cat "$out"/agreement-*.json 2>/dev/null
exit 0  # each step's status is in its "=== NAME: exit N" line
