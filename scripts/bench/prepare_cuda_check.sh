#!/usr/bin/env bash
# What scripts/bench/cuda_speech_check.sh needs beside the checkout, made here on a CPU before a device run
# (docs/model.md: "Speech on a GPU"). Both folders are git-ignored; the device run carries them:
#   .gpucheck/subset.jsonl.zst   the first DOCS documents of the bundled sample
#   .gpucheck/cpu                their speech build's manifest on this machine's CPU (the shards stay behind: the
#                                comparison reads their sha256 from it), its cache in .gpucheck/cpu-cache
#   .whl/                        wheels for the device's Python of what its image lacked when the check last ran (Beam
#                                and some of its dependencies; the image has torch, transformers, pyarrow, FAISS)
# Then, on the device, from the repository root (carry [".whl", ".gpucheck"]; with the checkout, 64 MiB at most):
#   ARCHIVE=$OUT/results.tgz bash scripts/bench/cuda_speech_check.sh $OUT/results .gpucheck/subset.jsonl.zst .gpucheck/cpu
#
#   scripts/bench/prepare_cuda_check.sh [DOCS] [PYTHON_VERSION]        (defaults: 3000 and 3.12)
set -euo pipefail
docs=${1:-3000}
python_version=${2:-3.12}
[[ $docs =~ ^[1-9][0-9]*$ ]] || { echo "prepare_cuda_check: DOCS must be a positive integer, not '$docs'" >&2; exit 2; }
[[ $python_version =~ ^3\.[0-9]+$ ]] \
    || { echo "prepare_cuda_check: PYTHON_VERSION must be 3.N, not '$python_version'" >&2; exit 2; }
cd "$(dirname "$0")/../.."

rm -rf .gpucheck .whl
mkdir -p .gpucheck
python3 - "$docs" <<'EOF'
import sys, zstandard
from vocaloom.assets import SAMPLE_CORPUS
with zstandard.open(SAMPLE_CORPUS, "rt", encoding="utf-8") as lines:
    with zstandard.open(".gpucheck/subset.jsonl.zst", "wt", encoding="utf-8") as out:
        out.writelines(line for _, line in zip(range(int(sys.argv[1])), lines))
EOF
# Relative paths: the manifest names the cache, and the device finds it at the same place under its checkout.
vocaloom build --input .gpucheck/subset.jsonl.zst --output .gpucheck/cpu --cache .gpucheck/cpu-cache
find .gpucheck/cpu -mindepth 1 ! -name manifest.json -delete

# Pins from constraints.txt where it has them; objsize and beartype bounded as apache-beam 2.77 requires them.
pin() { grep -E "^$1==" constraints.txt || echo "$1"; }
python3 -m pip download -q --only-binary=:all: --no-deps --dest .whl \
    --python-version "$python_version" --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
    "$(pin apache-beam)" "$(pin zstandard)" "$(pin orjson)" cffi pycparser cryptography fastavro fasteners \
    httplib2 jsonpickle 'objsize<0.8' pymongo dnspython proto-plus pytz 'beartype<0.23'
# What a device call sends: the tracked files and these two folders, 64 MiB at most.
tracked=$(git ls-files -z | xargs -0 cat | wc -c)
extra=$(du -sb .gpucheck .whl | awk '{s += $1} END {print s}')
echo "a device call sends $(( (tracked + extra) / 1048576 )) MiB (64 MiB at most)"
