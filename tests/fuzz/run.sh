#!/usr/bin/env bash
# Fuzz with libFuzzer for SECONDS (default 60) per target.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#   tests/fuzz/run.sh 60                     every target, 60 s each (CI)
#   tests/fuzz/run.sh 3600 fuzz_session      a one-hour session campaign
#   tests/fuzz/run.sh merge fuzz_session     keep what the runs found (below)
# Targets: fuzz_decoder (the MQTT codec), fuzz_session (client sessions
# against the engine, tests/fuzz/fuzz_session.cpp) and fuzz_sparkplug
# (Sparkplug B payloads through the node state and the mapping).
#
# Configures and builds build-fuzz/ with clang (every library instrumented,
# only the fuzz targets built), then runs each target on its corpus in
# build-fuzz/fuzz-corpus/TARGET/, which starts as the seeds in the source
# tree (corpus/, corpus-session/) and the reproducers in regressions*/ and
# keeps what every run adds. `merge` minimises that corpus into the seed
# directory of the source tree (review and commit it).
#
# Exits non-zero when a target crashed, leaked or failed an oracle, after
# running the others; the reproducer is in build-fuzz/fuzz-artifacts/.
# Minimise it (TARGET -minimize_crash=1 -runs=10000 FILE), fix the bug and
# copy it to regressions/ or regressions-session/, where fuzz_replay and
# fuzz_session_replay (ctest) keep checking it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${root}/build-fuzz"
cxx="$(command -v clang++-14 || command -v clang++)"

merge=0
seconds=60
if [[ ${1:-} == merge ]]; then
    merge=1
    shift
elif [[ ${1:-} =~ ^[0-9]+$ ]]; then
    seconds="$1"
    shift
fi
targets=("$@")
if ((${#targets[@]} == 0)); then targets=(fuzz_decoder fuzz_session fuzz_sparkplug); fi

seeds_of() {
    case "$1" in
        fuzz_decoder) echo "${root}/tests/fuzz/corpus" ;;
        fuzz_session) echo "${root}/tests/fuzz/corpus-session" ;;
        fuzz_sparkplug) echo "${root}/tests/fuzz/corpus-sparkplug" ;;
        *) echo "run.sh: unknown target '$1' (fuzz_decoder, fuzz_session, fuzz_sparkplug)" >&2; exit 2 ;;
    esac
}
regressions_of() {
    case "$1" in
        fuzz_decoder) echo "${root}/tests/fuzz/regressions" ;;
        fuzz_session) echo "${root}/tests/fuzz/regressions-session" ;;
        fuzz_sparkplug) echo "${root}/tests/fuzz/regressions-sparkplug" ;;
    esac
}
# Inputs longer than this are cut: a session script of 48 steps fits.
max_len_of() {
    case "$1" in
        fuzz_decoder) echo 4096 ;;
        fuzz_session) echo 2048 ;;
        fuzz_sparkplug) echo 4096 ;;
    esac
}
for t in "${targets[@]}"; do seeds_of "$t" >/dev/null; done

# -O1 with line tables only: stack traces with file and line, and a build of
# the whole engine with the sanitizers that compiles faster than -O2 -g.
cmake -S "${root}" -B "${build}" -G Ninja \
    -DCMAKE_CXX_COMPILER="${cxx}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
    -DSTRATA_FUZZ=ON -DSTRATA_TESTS=ON -DSTRATA_BENCHMARKS=OFF >/dev/null
ninja -C "${build}" -j2 "${targets[@]}"

mkdir -p "${build}/fuzz-artifacts"
failed=()
for t in "${targets[@]}"; do
    work="${build}/fuzz-corpus/${t}"
    mkdir -p "${work}"
    seeds="$(seeds_of "$t")"
    if ((merge)); then
        # Keeps the seeds and adds the fewest inputs that cover what the
        # working corpus covers beyond them.
        "${build}/tests/fuzz/${t}" -merge=1 -max_len="$(max_len_of "$t")" -timeout=30 \
            -rss_limit_mb=2048 "${seeds}" "${work}"
        continue
    fi
    cp -n "${seeds}/"* "${work}/" 2>/dev/null || true
    regressions="$(regressions_of "$t")"
    if [[ -d ${regressions} ]]; then cp -n "${regressions}/"* "${work}/" 2>/dev/null || true; fi
    echo "run.sh: ${t} for ${seconds} s on ${work}" >&2
    if ! "${build}/tests/fuzz/${t}" \
        -max_total_time="${seconds}" \
        -max_len="$(max_len_of "$t")" \
        -timeout=30 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        -artifact_prefix="${build}/fuzz-artifacts/${t}-" \
        "${work}"; then
        failed+=("$t")
    fi
done
if ((${#failed[@]})); then
    echo "run.sh: failed: ${failed[*]} (reproducers in ${build}/fuzz-artifacts/)" >&2
    exit 1
fi
