#!/usr/bin/env bash
# Set-up on a Debian 12 machine, in one command each:
#   deploy/setup.sh run      install what is missing, build, run the broker on deploy/strata.yaml
#   deploy/setup.sh test     install what is missing, build the test build (ASan+UBSan), run every test
#   deploy/setup.sh build    install what is missing and build the release binary only
#   deploy/setup.sh package  build the release binary, then build/strata_VERSION_amd64.deb
#   deploy/setup.sh demo     build, then run the demo plant (deploy/demo/run.sh): an OPC UA
#                            PLC, an edge and an enterprise broker, the explorer at :8080
# Idempotent; incremental builds (and ccache) keep repeated runs fast.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

build_packages=(g++ cmake ninja-build ccache pkg-config
  libboost1.81-dev libssl-dev librocksdb-dev nlohmann-json3-dev catch2 prometheus-cpp-dev
  libyaml-cpp-dev libspdlog-dev libvalijson-dev libbenchmark-dev libprotobuf-dev protobuf-compiler)
test_packages=(clang libclang-rt-14-dev mosquitto mosquitto-clients python3 python3-paho-mqtt
  python3-pytest python3-yaml openssl json-schema-test-suite dpkg-dev curl chromium)
# The Debian package's Depends come from dpkg-shlibdeps (dpkg-dev).
package_packages=(dpkg-dev)

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi

install_missing() {
    local missing=()
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]})); then
        echo "setup: installing ${missing[*]}" >&2
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
}

# The npm test peers, pinned by their package-lock.json: the node-opcua
# server the OPC UA tests run against (tests/opcua/peer), the Eclipse Tahu
# Sparkplug B edge node of the Sparkplug tests (tests/sparkplug/peer), and
# playwright-core (tests/browser/peer), which drives Debian's chromium in the
# explorer's browser tests (it downloads no browser). A
# Node.js that brings its own npm (e.g. Node.js 20 from NodeSource) is used as
# it is; without npm, Debian's nodejs (18) and npm are installed. Each is
# installed again only when its lock file changed.
install_test_peers() {
    local peer
    for peer in tests/opcua/peer tests/sparkplug/peer tests/browser/peer; do
        if [[ -d $peer/node_modules && ! $peer/package-lock.json -nt $peer/node_modules/.package-lock.json ]]; then
            continue
        fi
        if ! command -v npm >/dev/null; then
            install_missing nodejs npm
        fi
        echo "setup: installing the test peer in $peer" >&2
        if [[ -f $peer/package-lock.json ]]; then
            (cd "$peer" && npm ci --no-audit --no-fund) >&2
        else
            (cd "$peer" && npm install --no-audit --no-fund) >&2
        fi
    done
}

jobs="$(nproc)"

build_release() {
    install_missing "${build_packages[@]}"
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_TESTS=OFF -DSTRATA_BENCHMARKS=ON >/dev/null
    ninja -C build -j "$jobs" strata
}

case "${1:-}" in
    build)
        build_release
        ;;
    package)
        install_missing "${package_packages[@]}"
        build_release
        deploy/package/build-deb.sh --binary build/broker/strata --out build
        ;;
    demo)
        build_release
        install_test_peers
        exec deploy/demo/run.sh
        ;;
    run)
        build_release
        mkdir -p data
        exec build/broker/strata --config deploy/strata.yaml
        ;;
    test)
        install_missing "${build_packages[@]}" "${test_packages[@]}"
        install_test_peers
        cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTRATA_SANITIZE=ON \
            -DSTRATA_TESTS=ON -DSTRATA_BENCHMARKS=OFF >/dev/null
        ninja -C build-test -j "$jobs"
        # libFuzzer targets, built with clang, for a bounded time each: the
        # decoder and whole client sessions against the engine (a clang
        # build of every library); STRATA_FUZZ_TARGETS picks fewer. Their
        # corpora and regressions also run in ctest (fuzz_replay,
        # fuzz_session_replay).
        # shellcheck disable=SC2086
        tests/fuzz/run.sh "${STRATA_FUZZ_SECONDS:-60}" ${STRATA_FUZZ_TARGETS:-fuzz_decoder fuzz_session fuzz_sparkplug}
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
        export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
        ctest --test-dir build-test --output-on-failure -j "$jobs" --timeout 600
        ;;
    *)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
