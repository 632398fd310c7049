#!/usr/bin/python3
"""What bare TCP connections to a TLS listener cost: the broker's RSS before, with N
connections open that never send a byte, and after they were closed again.

  benchmarks/tls/idle_rss.py --bin build-rel/broker/strata [--connections 3000] [--protocol mqtt+tls]

Makes a throw-away certificate with `openssl`, starts the broker on a free port with
one TLS listener (mqtt+tls or https), opens the connections, waits until the broker
has accepted every one (its open descriptors), reads VmRSS from /proc, closes them,
waits until the broker has closed its side, and reads VmRSS again. Every process it
starts is stopped by PID.
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + what)
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--connections", type=int, default=3000)
    # http: for comparison, a listener without TLS (MQTT over WebSocket upgrades arrive there)
    ap.add_argument("--protocol", default="mqtt+tls", choices=["mqtt+tls", "https", "http", "mqtt"])
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as d:
        key, cert = os.path.join(d, "server.key"), os.path.join(d, "server.crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "1", "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True)
        config = os.path.join(d, "strata.yaml")
        with open(config, "w") as f:
            tls = "    tls: {cert: %s, key: %s}\n" % (cert, key) if args.protocol in ("mqtt+tls", "https") else ""
            f.write("listeners:\n  - name: l\n    protocol: %s\n    bind: \"127.0.0.1:0\"\n%s"
                    "persistence: {enabled: false}\nlog: {level: warn}\n" % (args.protocol, tls))
        proc = subprocess.Popen([os.path.abspath(args.bin), "--config", config], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, cwd=d)
        try:
            port = None
            for line in proc.stdout:
                m = re.match(rb"strata listening \S+ \S+ \S+:(\d+)", line)
                if m:
                    port = int(m.group(1))
                if line.strip() == b"strata ready":
                    break
            if port is None:
                sys.exit("the broker did not start")
            time.sleep(0.5)  # settle after start-up before the first reading
            base_fds, before = open_fds(proc.pid), rss_kib(proc.pid)
            socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.connections)]
            wait_for(lambda: open_fds(proc.pid) >= base_fds + args.connections, 30, "the broker to accept them")
            held = rss_kib(proc.pid)
            for s in socks:
                s.close()
            wait_for(lambda: open_fds(proc.pid) <= base_fds, 60, "the broker to close them")
            after = rss_kib(proc.pid)
            n = args.connections
            print("%s: %d bare connections: RSS %.1f MiB before, %.1f MiB with them open (+%.1f MiB, %.0f B each), "
                  "%.1f MiB after they closed" % (args.protocol, n, before / 1024, held / 1024, (held - before) / 1024,
                                                  (held - before) * 1024 / n, after / 1024))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
