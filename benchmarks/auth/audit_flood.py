#!/usr/bin/python3
"""What one identity looping refused SUBSCRIBEs costs the audit log.

An analyst (a role that may subscribe to nothing but its inbox) connects with a long
client id and sends SUBSCRIBEs to a long filter it may not read, as fast as the broker
answers (a window of SUBACKs outstanding per connection), from several connections
for DURATION seconds. Every refusal is a line the audit log may write. Reports the
SUBSCRIBEs answered, the audit log's bytes on disk (audit.log plus rotated files),
its lines, and the broker's RSS, per binary; the binaries run one after the other in
alternation, each on a fresh broker, ROUNDS times (medians printed):

  benchmarks/auth/audit_flood.py --bin build-release/broker/strata \\
      [--base-bin OLD/broker/strata] [--rounds 3] [--duration 10]

Only configuration both binaries understand is used (`audit: {file}` with the
defaults of audit.max_bytes, audit.refusals_per_second, audit.max_field_bytes).
Brokers are started and stopped (by PID, also on Ctrl-C) by benchmarks/compare's
helpers.
"""

import argparse
import glob
import importlib.machinery
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def load_compare():
    """benchmarks/compare's broker start and stop (by PID), shared by the benchmarks."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "compare")
    loader = importlib.machinery.SourceFileLoader("strata_compare", path)
    spec = importlib.util.spec_from_loader("strata_compare", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


cmp = load_compare()

AUTH = """auth:
  allow_anonymous: false
  password_file: "{passwd}"
"""
EXTRA = """roles:
  analyst:
    - {{allow: subscribe, on: "sandbox/users/{{user}}/#"}}
users:
  ana: [analyst]
audit:
  file: "{audit}"
"""


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def string(s):
    return len(s).to_bytes(2, "big") + s


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def connect_packet(client_id, user, password):
    flags = 0x80 | 0x40 | 0x02  # user name, password, clean session
    body = string(b"MQTT") + bytes([4, flags]) + (60).to_bytes(2, "big")
    body += string(client_id) + string(user) + string(password)
    return packet(0x10, body)


def subscribe_packet(pid, topic_filter):
    return packet(0x82, pid.to_bytes(2, "big") + string(topic_filter) + b"\x00")


def read_packets(sock, buf):
    """Complete packets' first bytes from buf (+ what recv gives); returns (types, rest)."""
    chunk = sock.recv(1 << 20)
    if not chunk:
        raise ConnectionError("closed by the broker")
    buf += chunk
    types = []
    while len(buf) >= 2:
        length, mult, i = 0, 1, 1
        while True:
            if i >= len(buf):
                return types, buf
            b = buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if len(buf) < i + length:
            break
        types.append(buf[0] >> 4)
        buf = buf[i + length:]
    return types, buf


def flood(port, password, seconds, window, field_bytes, counts, index):
    """One connection: CONNECT as ana with a long client id, then refused SUBSCRIBEs."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_id = (b"flood-%d-" % index) + b"c" * field_bytes
    s.sendall(connect_packet(client_id, b"ana", password))
    buf = b""
    types = []
    while 2 not in types:
        t, buf = read_packets(s, buf)
        types += t
    topic_filter = b"acme/" + b"f" * field_bytes
    end = time.monotonic() + seconds
    outstanding, pid, answered = 0, 0, 0
    try:
        while time.monotonic() < end:
            while outstanding < window:
                pid = pid % 65535 + 1
                s.sendall(subscribe_packet(pid, topic_filter))
                outstanding += 1
            t, buf = read_packets(s, buf)
            n = t.count(9)  # SUBACK
            outstanding -= n
            answered += n
    except (ConnectionError, OSError):
        pass
    finally:
        s.close()
    counts[index] = answered


def start(exe, workdir, tag, passwd):
    audit = os.path.join(workdir, f"audit-{tag}.log")
    broker = cmp.start_strata(exe, workdir, tag, extra_config=EXTRA.format(audit=audit),
                              auth=AUTH.format(passwd=passwd))
    return broker, audit


def audit_size(audit):
    files = [audit] + glob.glob(audit + ".*")
    total, lines = 0, 0
    for f in files:
        if os.path.exists(f):
            total += os.path.getsize(f)
            with open(f, "rb") as fh:
                lines += sum(1 for _ in fh)
    return total, lines, len([f for f in files if os.path.exists(f)])


def run(exe, workdir, tag, passwd, password, args):
    broker, audit = start(exe, workdir, tag, passwd)
    p, port = broker.proc, broker.port
    try:
        rss0 = cmp.proc_rss_kib(p.pid)
        counts = [0] * args.connections
        threads = [threading.Thread(target=flood, args=(port, password, args.duration, args.window,
                                                          args.field_bytes, counts, i))
                   for i in range(args.connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rss1 = cmp.proc_rss_kib(p.pid)
    finally:
        cmp.stop_process(p)
        cmp.started.remove(p)
        shutil.rmtree(os.path.join(workdir, f"strata-data-{tag}"), ignore_errors=True)
    size, lines, files = audit_size(audit)
    for f in [audit] + glob.glob(audit + ".*"):
        if os.path.exists(f):
            os.remove(f)
    return {"answered": sum(counts), "audit_bytes": size, "audit_lines": lines, "files": files,
            "rss_growth_kib": rss1 - rss0}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--base-bin")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--window", type=int, default=16, help="SUBSCRIBEs outstanding per connection [16]")
    ap.add_argument("--field-bytes", type=int, default=60000, help="length of client ids and filters [60000]")
    args = ap.parse_args()
    bins = {"new": os.path.abspath(args.bin)}
    if args.base_bin:
        bins = {"base": os.path.abspath(args.base_bin), **bins}
    results = {k: [] for k in bins}
    cmp.raise_nofile()
    with tempfile.TemporaryDirectory(prefix="audit-flood-") as d:
        passwd = os.path.join(d, "passwd")
        password = b"ana-flood-pw"
        subprocess.run([bins["new"], "passwd", "--iterations", "1000", passwd, "ana"],
                       input=password + b"\n", check=True, capture_output=True)
        try:
            for r in range(args.rounds):
                for tag, exe in bins.items():
                    res = run(exe, d, f"{tag}-r{r + 1}", passwd, password, args)
                    results[tag].append(res)
                    print(f"round {r + 1} {tag}: {res}", flush=True)
        finally:
            cmp.cleanup()
    print(f"\nmedians of {args.rounds} rounds, {args.connections} connections, {args.duration:g} s, "
          f"{args.field_bytes}-byte client ids and filters:")
    print("| binary | SUBSCRIBEs refused | audit log on disk | audit lines | broker RSS growth |")
    print("|---|---|---|---|---|")
    for tag, rs in results.items():
        med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
        print(f"| {tag} | {med['answered']:,.0f} | {med['audit_bytes'] / 1048576:,.1f} MiB "
              f"({med['files']:.0f} files) | {med['audit_lines']:,.0f} | {med['rss_growth_kib'] / 1024:,.1f} MiB |")


if __name__ == "__main__":
    sys.exit(main())
