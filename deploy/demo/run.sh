#!/usr/bin/env bash
# The end-to-end demo on one machine (docs/end-to-end.md):
# the OPC UA test PLC (opc.tcp://127.0.0.1:4840), the enterprise broker
# (enterprise.yaml, port 1893, the explorer at http://127.0.0.1:8080/) and the
# Dresden edge broker (edge.yaml, port 1883) with its OPC UA source and its
# bridge to the enterprise.
#
#   deploy/setup.sh build              # the broker (build/broker/strata)
#   (cd tests/opcua/peer && npm ci)    # once: the test PLC (node-opcua); deploy/setup.sh test does it too
#   deploy/demo/run.sh           # Ctrl-C stops everything it started
#
# STRATA_BIN overrides the broker binary. Data directories and logs go to
# deploy/demo/run/; the password file and the audit logs next to the configs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
strata="${STRATA_BIN:-$root/build/broker/strata}"
peer="$root/tests/opcua/peer"
work="$here/run"

if [[ ! -x $strata ]]; then
    echo "demo: no broker at $strata: run deploy/setup.sh build (or set STRATA_BIN)" >&2
    exit 1
fi
if [[ ! -d $peer/node_modules/node-opcua ]]; then
    echo "demo: the test PLC is not installed: (cd $peer && npm ci), or deploy/setup.sh test" >&2
    exit 1
fi
mkdir -p "$work"

# The enterprise's users (edge.yaml's bridge logs in as plant-dresden).
declare -A passwords=([ana]=ana-demo-pw [olga]=olga-demo-pw [erik]=erik-demo-pw [plant-dresden]=demo-plant-pw)
rm -f "$here/passwd"
for user in "${!passwords[@]}"; do
    echo "${passwords[$user]}" | "$strata" passwd --iterations 10000 "$here/passwd" "$user" >/dev/null
done

pids=()
stop_all() {
    trap - EXIT INT TERM
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    echo "demo: stopped"
}
trap stop_all EXIT
trap 'stop_all; exit 0' INT TERM

# start NAME READY-TEXT COMMAND...: runs COMMAND in $work with its output in
# $work/NAME.log and waits (at most 60 s) for READY-TEXT in it.
start() {
    local name=$1 ready=$2
    shift 2
    (cd "$work" && exec "$@") >"$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 600); do
        if grep -q "$ready" "$work/$name.log"; then return 0; fi
        if ! kill -0 "${pids[-1]}" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "demo: $name did not start; its log ($work/$name.log):" >&2
    tail -20 "$work/$name.log" >&2
    exit 1
}

start plc "^ready " node "$peer/server.js" --pki "$work/plc-pki" --port 4840
start enterprise "strata ready" "$strata" --config "$here/enterprise.yaml"
start edge "strata ready" "$strata" --config "$here/edge.yaml"

cmd='{"command": "set", "request_id": "req-00000001", "ts": "2026-12-07T10:00:00Z", "parameters": {"value": 55.5}}'
cat <<TRY
demo: the PLC, the enterprise (1893) and the Dresden edge (1883) are running; logs in $work.
Open the namespace explorer at http://127.0.0.1:8080/ and log in as olga
(password olga-demo-pw): line 2 with the PLC's values, live, and the setpoint
command form on press-7. ana (ana-demo-pw) sees OEE only, erik (erik-demo-pw)
all of Dresden.

Or, in another terminal:

  # the operator at the enterprise sees line 2, PLC values included
  mosquitto_sub -p 1893 -u olga -P olga-demo-pw -t 'acme/dresden/press-shop/line-2/#' -v
  # the analyst sees OEE only (publish one at the edge) and may not command
  mosquitto_sub -p 1893 -u ana -P ana-demo-pw -t 'acme/#' -v
  mosquitto_pub -p 1883 -r -t acme/dresden/press-shop/line-2/oee \\
    -m '{"availability": 0.9, "performance": 0.95, "quality": 0.99, "oee": 0.85, "ts": "2026-12-07T10:00:00Z"}'
  # the operator sets the PLC's setpoint: the reply comes back on .../press-7/reply/setpoint
  mosquitto_pub -p 1893 -V 5 -q 1 -u olga -P olga-demo-pw \\
    -t acme/dresden/press-shop/line-2/cell-1/press-7/cmd/setpoint -m '$cmd'
  # a safety gate is refused (by the enterprise for olga, by the plant for erik)
  mosquitto_pub -p 1893 -V 5 -q 1 -u erik -P erik-demo-pw \\
    -t acme/dresden/press-shop/line-2/cell-1/safety-gate-1/cmd/reset \\
    -m '{"command": "reset", "request_id": "req-00000002", "ts": "2026-12-07T10:00:00Z"}'
  # who commanded what, at both ends
  tail -f $here/enterprise-audit.log $here/edge-audit.log
  # a payload the model refuses stays at the edge (PUBACK 0x99)
  mosquitto_pub -p 1883 -V 5 -q 1 -t acme/dresden/press-shop/line-2/press-8/telemetry/pressure -m '{"value": "high"}'

Ctrl-C stops the demo.
TRY
wait -n "${pids[@]}" || true
echo "demo: a process ended; see the logs in $work" >&2
