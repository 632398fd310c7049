#!/usr/bin/env bash
# Fuzz the MQTT codec for SECONDS (default 60) with libFuzzer.
#   tests/fuzz/run.sh 300
# Configures and builds build-fuzz/ with clang (only the fuzz target), runs
# fuzz_decoder on a scratch copy of tests/fuzz/corpus and exits non-zero on
# any crash, leak or oracle failure; the reproducer is left in
# build-fuzz/fuzz-artifacts/ (copy it to tests/fuzz/regressions/ once fixed,
# so fuzz_replay keeps checking it).
set -euo pipefail

seconds="${1:-60}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${root}/build-fuzz"
cxx="$(command -v clang++-14 || command -v clang++)"

cmake -S "${root}" -B "${build}" -G Ninja \
  -DCMAKE_CXX_COMPILER="${cxx}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTRATA_FUZZ=ON -DSTRATA_TESTS=ON -DSTRATA_BENCHMARKS=OFF >/dev/null
ninja -C "${build}" -j2 fuzz_decoder

work="$(mktemp -d "${TMPDIR:-/tmp}/strata-fuzz.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
cp "${root}/tests/fuzz/corpus/"* "${work}/"
if [ -d "${root}/tests/fuzz/regressions" ]; then
  cp "${root}/tests/fuzz/regressions/"* "${work}/" 2>/dev/null || true
fi
mkdir -p "${build}/fuzz-artifacts"

# libFuzzer exits non-zero on a crash; set -e passes that on.
"${build}/tests/fuzz/fuzz_decoder" \
  -max_total_time="${seconds}" \
  -max_len=4096 \
  -timeout=10 \
  -rss_limit_mb=2048 \
  -print_final_stats=1 \
  -artifact_prefix="${build}/fuzz-artifacts/" \
  "${work}"
