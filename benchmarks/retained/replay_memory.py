#!/usr/bin/python3
"""Memory of retained replays on SUBSCRIBE to clients that do not read.

Starts a broker (persistence off), stores N retained messages of SIZE bytes, then
connects K clients that subscribe to '#' and never read (small receive buffers), and
reports the broker's resident memory (VmRSS) at each step once it has settled.
Optionally one more client sends a single SUBSCRIBE listing '#' 100 times.
A fresh client's PINGREQ round trip at the end says whether the broker still serves.
With --flood N, one more anonymous client then stores N further retained topics as
fast as it can (the retained store's limits stop it at its share).

  benchmarks/retained/replay_memory.py --bin build-rel/broker/strata \\
      [--retained 100000] [--size 1024] [--subscribers 10] [--dup 100] [--flood 0]

Every process it starts is stopped by PID.
"""

import argparse
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time


def varint(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def utf8(s):
    s = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(s)) + s


def connect_packet(client_id):
    # MQTT 3.1.1, clean session, keep-alive 0
    return packet(0x10, utf8("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + utf8(client_id))


def publish_packet(topic, payload, qos=0, retain=True, pid=1):
    body = utf8(topic) + (struct.pack("!H", pid) if qos else b"")
    return packet(0x30 | (qos << 1) | (1 if retain else 0), body + payload)


def subscribe_packet(filters, pid=1):
    return packet(0x82, struct.pack("!H", pid) + b"".join(utf8(f) + bytes([0]) for f in filters))


def read_packet(sock):
    def take(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError("broker closed the connection")
            data += chunk
        return data
    first = take(1)[0]
    length, mult = 0, 1
    while True:
        b = take(1)[0]
        length += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    return first, take(length)


def client(port, client_id, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.settimeout(60)
    s.sendall(connect_packet(client_id))
    first, body = read_packet(s)
    assert first >> 4 == 2 and body[1] == 0, "CONNACK refused"
    return s


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settled_rss(pid, quiet=3.0, limit=120.0):
    """VmRSS once it changed by less than 1 MiB for `quiet` seconds (or after `limit`)."""
    start = time.monotonic()
    last, since = rss_kib(pid), time.monotonic()
    while time.monotonic() - start < limit:
        time.sleep(0.25)
        now = rss_kib(pid)
        if abs(now - last) > 1024:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    return rss_kib(pid)


def store_retained(port, client_id, prefix, n, size):
    """n retained messages of `size` bytes from one client, pipelined at QoS 0; a
    final QoS 1 one's PUBACK says the connection's messages were all handled."""
    pub = client(port, client_id)
    payload = b"x" * size
    batch = []
    for i in range(n):
        batch.append(publish_packet("%s/area-%d/line-%d/cell-%d/value" % (prefix, i % 10, i // 10 % 100, i // 1000),
                                    payload))
        if len(batch) == 1000:
            pub.sendall(b"".join(batch))
            batch = []
    pub.sendall(b"".join(batch) + publish_packet(prefix + "/sync", b"1", qos=1, pid=1))
    while read_packet(pub)[0] >> 4 != 4:
        pass
    pub.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--retained", type=int, default=100000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--subscribers", type=int, default=10)
    ap.add_argument("--dup", type=int, default=100, help="one SUBSCRIBE listing '#' this many times (0: skip)")
    ap.add_argument("--flood", type=int, default=0, help="retained topics one more client tries to store (0: skip)")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)

    tmp = tempfile.mkdtemp(prefix="replay-memory-")
    cfg = os.path.join(tmp, "strata.yaml")
    with open(cfg, "w") as f:
        f.write('listeners: [{name: m, protocol: mqtt, bind: "127.0.0.1:0"}]\n'
                "persistence: {enabled: false}\nsys: {interval: 0}\nlog: {level: warn}\n"
                "auth: {allow_anonymous: true}\n")
    proc = subprocess.Popen([args.bin, "--config", cfg], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, cwd=tmp)
    socks = []
    try:
        port = None
        for line in iter(proc.stdout.readline, b""):
            m = re.match(rb"^strata listening \S+ \S+ \S+:(\d+)$", line.strip())
            if m:
                port = int(m.group(1))
            if line.strip() == b"strata ready":
                break
        assert port, "the broker did not start"
        base = settled_rss(proc.pid, quiet=1.0)
        print("broker started                        RSS %8.1f MiB" % (base / 1024))

        store_retained(port, "publisher", "plant", args.retained, args.size)
        stored = settled_rss(proc.pid, quiet=1.0)
        print("%7d retained of %d B stored        RSS %8.1f MiB" % (args.retained, args.size, stored / 1024))

        t0 = time.monotonic()
        for k in range(args.subscribers):
            s = client(port, "reader-%d" % k, rcvbuf=4096)
            s.sendall(subscribe_packet(["#"]))
            socks.append(s)
        after = settled_rss(proc.pid)
        print("%7d '#' subscribers, not reading     RSS %8.1f MiB  (+%.1f MiB, settled in %.1f s)"
              % (args.subscribers, after / 1024, (after - stored) / 1024, time.monotonic() - t0))

        if args.dup:
            s = client(port, "dup", rcvbuf=4096)
            s.sendall(subscribe_packet(["#"] * args.dup))
            socks.append(s)
            dup = settled_rss(proc.pid)
            print("one SUBSCRIBE with '#' x %-4d           RSS %8.1f MiB  (+%.1f MiB)"
                  % (args.dup, dup / 1024, (dup - after) / 1024))

        if args.flood:
            before = rss_kib(proc.pid)
            t0 = time.monotonic()
            store_retained(port, "flooder", "flood", args.flood, args.size)
            flooded = settled_rss(proc.pid, quiet=1.0)
            print("%7d more retained tried by one client RSS %8.1f MiB  (+%.1f MiB, %.1f s)"
                  % (args.flood, flooded / 1024, (flooded - before) / 1024, time.monotonic() - t0))

        t0 = time.monotonic()
        probe = client(port, "probe")
        probe.sendall(b"\xc0\x00")
        assert read_packet(probe)[0] >> 4 == 13
        print("a fresh client's CONNECT + PINGREQ:    %.1f ms; broker alive: %s"
              % ((time.monotonic() - t0) * 1000, proc.poll() is None))
        probe.close()
    finally:
        for s in socks:
            s.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
