#!/usr/bin/env bash
# The speech stage on one GPU, in one run (docs/model.md: "Speech on a GPU"): bench_speech.py on CUDA for the bundled
# student (float32 and bf16, character budgets 16k-1M) and a 0.5B causal LM of realistic shape (random weights,
# batches 64-1,024, both precisions), speech builds of a corpus with --device cuda in both precisions compared span by
# span with a CPU build of the same corpus (unit_agreement.py), the GPU's memory and utilisation while they convert,
# and profiles of one batch of each model. Every step has its own time limit, and one that fails does not stop the
# rest; figures and logs go to OUT.
#
#   scripts/bench/cuda_speech_check.sh OUT CORPUS.jsonl CPU_BUILD
#
# CPU_BUILD: a build of CORPUS made beforehand on a CPU with --cache (its manifest names the cache), e.g.
#   vocaloom build --input CORPUS.jsonl --output CPU_BUILD --cache CPU_BUILD-cache
# Paths are best given relative to the repository root, where this runs, so that a build made on another machine
# is found at the same place. Wheels in .whl/ are installed first (a GPU machine without a package index). With
# ARCHIVE=FILE.tgz set, OUT is packed into it after every step.
set -uo pipefail
out=${1:?usage: scripts/bench/cuda_speech_check.sh OUT CORPUS.jsonl CPU_BUILD}
corpus=${2:?usage: scripts/bench/cuda_speech_check.sh OUT CORPUS.jsonl CPU_BUILD}
cpu_build=${3:?usage: scripts/bench/cuda_speech_check.sh OUT CORPUS.jsonl CPU_BUILD}
[ -f "$corpus" ] || { echo "cuda_speech_check: corpus $corpus not found" >&2; exit 2; }
[ -f "$cpu_build/manifest.json" ] || { echo "cuda_speech_check: $cpu_build holds no build" >&2; exit 2; }
mkdir -p "$out"
work=$(mktemp -d)
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
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"

step student 150 python3 -m scripts.bench.bench_speech --devices cuda --models student --json "$out/student.json"

# Two builds of the corpus on the GPU, float32 (the bundled student as it ships) and bf16 (the same weights with
# dtype bfloat16 in a copy of its config), each compared with the CPU build; nvidia-smi dmon samples the GPU.
student_bf16="$work/student-bf16"
cp -r "$work/vocaloom/vocaloom/assets/text_to_token" "$student_bf16"
python3 -c 'import json, sys; path = sys.argv[1] + "/config.json"; config = json.load(open(path))
json.dump({**config, "dtype": "bfloat16"}, open(path, "w"), indent=2, sort_keys=True)' "$student_bf16"
for dtype in float32 bfloat16; do
    build="$work/build-$dtype"
    model=$([ "$dtype" = bfloat16 ] && echo "--text-to-token-model $student_bf16")
    nvidia-smi dmon -s um -d 1 > "$out/dmon-build-$dtype.txt" 2>&1 &
    dmon=$!
    step "build-$dtype" 100 "$vocaloom" build --input "$corpus" --output "$build" --cache "$build-cache" \
        --device cuda --batch-characters 262144 $model
    kill $dmon 2>/dev/null
    step "verify-$dtype" 30 "$vocaloom" verify "$build"
    step "agreement-$dtype" 45 python3 -m scripts.recipes.unit_agreement "$cpu_build" "$build" --json "$out/agreement-$dtype.json"
done

python3 -m scripts.recipes.make_causal_lm --out "$work/lm" --shape 0.5b
step causal-lm 150 python3 -m scripts.bench.bench_speech --devices cuda --models causal-lm --causal-lm "$work/lm" \
    --cuda-lm-batch-count 1 --json "$out/causal-lm.json"
step profiles 90 python3 -m scripts.bench.bench_speech --devices cuda --models --cuda-profile --causal-lm "$work/lm" \
    --json "$out/profiles.json"
step causal-lm-static 120 python3 -m scripts.bench.bench_speech --devices cuda --models --cuda-lm-static \
    --causal-lm "$work/lm" --cuda-lm-batches 1024 --cuda-lm-batch-count 1 --json "$out/causal-lm-static.json"
echo "=== done $(date +%T)"
grep -h "speech tokens/s" "$out"/student.log "$out"/causal-lm.log "$out"/causal-lm-static.log 2>/dev/null
cat "$out"/agreement-*.json 2>/dev/null
