#!/usr/bin/python3
"""Fan-in QoS 0 through the authorization path: what roles cost on the publish path.

Runs `strata-bench fanin --qos 0` (10 publishers -> 1 subscriber on acme/#) against
fresh brokers, alternating the variants every round, and prints the median
delivered rate and broker CPU per message of each:

  base          --base-bin (e.g. a build without roles support), default config
  no-roles      --bin, default config (no roles: no per-message check at all)
  roles         --bin, anonymous clients get a role of 6 grants (publish and
                subscribe acme/#, denies elsewhere): every publish is checked
                against the session's compiled grants
  roles-filter  --bin, as `roles` but the subscriber may only read acme/plant1/#
                and auth.wide_subscriptions is `filter`: its acme/# subscription
                is accepted and every message is checked before delivery too
  model-filters --bin with the namespace model benchmarks/models/fanin.yaml and
                the grants of `roles-filter` (topic filters)
  model-levels  --bin, the same model and the same grants written with the
                model's levels and classes (`class: temp`, `where: {site:
                plant1}`, ...): read from each topic by the model

  benchmarks/auth/fanin_auth.py --bin build-release/broker/strata \\
      --bench build-release/benchmarks/load/strata-bench [--base-bin OTHER/strata] [--rounds 3]

Every process it starts is stopped by PID.
"""

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROLES = """roles:
  bench:
    - {allow: publish, on: "acme/#"}
    - {allow: subscribe, on: "%s"}
    - {deny: publish, on: "acme/+/+/+/+/safety/#"}
    - {deny: subscribe, on: "sandbox/private/#"}
    - {allow: publish, on: "sandbox/{client_id}/#"}
    - {deny: publish, on: "acme/+/+/+/+/+/cmd/#"}
users:
  anonymous: [bench]
"""

# The same grants in the model's terms (benchmarks/models/fanin.yaml).
LEVEL_ROLES = """roles:
  bench:
    - {allow: publish, class: temp}
    - {allow: subscribe, where: {site: plant1}}
    - {deny: publish, where: {equipment: "safety*"}}
    - {deny: subscribe, on: "sandbox/private/#"}
    - {allow: publish, on: "sandbox/{client_id}/#"}
    - {deny: publish, where: {area: area99}}
users:
  anonymous: [bench]
"""

MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "fanin.yaml")

# name -> (which binary, roles and users, auth.wide_subscriptions, with the model)
VARIANTS = {
    "base": ("base", "", "refuse", False),
    "no-roles": ("bin", "", "refuse", False),
    "roles": ("bin", ROLES % "acme/#", "refuse", False),
    "roles-filter": ("bin", ROLES % "acme/plant1/#", "filter", False),
    "model-filters": ("bin", ROLES % "acme/plant1/#", "filter", True),
    "model-levels": ("bin", LEVEL_ROLES, "filter", True),
}


def config_text(data, roles, wide, model):
    # The base binary may predate auth.wide_subscriptions: only written when needed.
    wide_line = "  wide_subscriptions: filter\n" if wide == "filter" else ""
    model_lines = f"namespace:\n  model: \"{MODEL}\"\n" if model else ""
    return ("listeners:\n  - name: bench\n    protocol: mqtt\n    bind: \"127.0.0.1:0\"\n"
            f"persistence:\n  path: \"{data}\"\n" + model_lines +
            "auth:\n  allow_anonymous: true\n" + wide_line + roles)


def start(exe, workdir, tag, roles, wide, model):
    conf = os.path.join(workdir, f"{tag}.yaml")
    with open(conf, "w") as f:
        f.write(config_text(os.path.join(workdir, f"data-{tag}"), roles, wide, model))
    err = open(os.path.join(workdir, f"{tag}.log"), "w")
    p = subprocess.Popen([exe, "--config", conf], stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    err.close()
    port, buf, deadline = None, b"", time.monotonic() + 20
    while time.monotonic() < deadline and p.poll() is None:
        if select.select([p.stdout], [], [], 0.2)[0]:
            buf += os.read(p.stdout.fileno(), 4096)
            for line in buf.decode(errors="replace").splitlines():
                if line.startswith("strata listening "):
                    port = int(line.rsplit(":", 1)[1])
            if b"strata ready" in buf and port:
                return p, port
    stop(p)
    raise RuntimeError(f"{exe} did not start; see {conf}")


def stop(p):
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--base-bin")
    ap.add_argument("--bench", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="comma-separated subset of: " + ", ".join(VARIANTS))
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--warmup", type=float, default=2)
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v != "base" or args.base_bin]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        ap.error("unknown variant(s): " + ", ".join(unknown))
    results = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="strata-auth-bench-") as work:
        for rnd in range(args.rounds):
            for v in variants:
                which, roles, wide, model = VARIANTS[v]
                exe = args.base_bin if which == "base" else args.bin
                p, port = start(exe, work, f"{v}-r{rnd}", roles, wide, model)
                try:
                    cmd = [args.bench, "fanin", "--qos", "0", "--pubs", "10", "--payload", "16",
                           "--duration", str(args.duration), "--warmup", str(args.warmup),
                           "--port", str(port), "--broker-pid", str(p.pid), "--label", f"{v}/r{rnd}"]
                    out = subprocess.run(cmd, capture_output=True, timeout=120 + args.duration).stdout
                finally:
                    stop(p)
                line = next(l for l in out.decode().splitlines() if l.startswith("{"))
                res = json.loads(line)
                results[v].append(res)
                print(f"round {rnd} {v}: {json.dumps({k: res.get(k) for k in ('msgs_per_s', 'lost', 'broker_cpu_us_per_msg', 'machine_busy')})}",
                      file=sys.stderr, flush=True)
    print("| variant | msgs/s delivered (median) | lost | broker CPU µs/msg |")
    print("|---|---|---|---|")
    for v in variants:
        rs = results[v]
        rate = statistics.median(r.get("msgs_per_s") or 0 for r in rs)
        lost = max(r.get("lost", 0) for r in rs)
        cpu = [r["broker_cpu_us_per_msg"] for r in rs if (r.get("broker_cpu_us_per_msg") or -1) > 0]
        print(f"| {v} | {rate:,.0f} | {lost} | {statistics.median(cpu):.2f} |" if cpu else f"| {v} | {rate:,.0f} | {lost} | - |")


if __name__ == "__main__":
    main()
