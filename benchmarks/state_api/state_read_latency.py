#!/usr/bin/python3
"""MQTT round trips while another client reads the whole retained state.

Starts a broker (persistence off, roles on: a `bench` user may subscribe to
everything, so the state API answers by its grants), stores N retained messages
in an ISA-95 shaped tree (acme/site/area/line/equipment/tag), then measures the
round trip of a QoS 0 ping-pong client (it publishes to a topic it is subscribed
to, one message at a time, every --interval-ms) twice for --seconds each:
without anything else going on, and while another process walks the whole
state through GET /api/v1/state in pages of --limit, over and over. Prints
p50/p99/max of both and what the reader did.

  benchmarks/state_api/state_read_latency.py --bin build-release/broker/strata \\
      [--retained 1000000] [--size 64] [--limit 1000] [--seconds 10] [--interval-ms 2] \\
      [--threads 0]

Every process it starts is stopped by PID.
"""

import argparse
import base64
import http.client
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time


# The packet encoders of the integration tests.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
import mqtt_raw  # noqa: E402


class Reader:
    """MQTT packets from a socket, buffered."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def take(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("broker closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def packet(self):
        first = self.take(1)[0]
        length, mult = 0, 1
        while True:
            b = self.take(1)[0]
            length += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        return first, self.take(length)


def client(port, client_id):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(mqtt_raw.connect(client_id, keepalive=0))
    r = Reader(s)
    first, body = r.packet()
    assert first >> 4 == 2 and body[1] == 0, "CONNECT refused"
    return s, r


def topic_of(i):
    # 10 sites x 10 areas x 10 lines x 100 machines x 10 tags = 1M topics
    tag, i = i % 10, i // 10
    eq, i = i % 100, i // 100
    line, i = i % 10, i // 10
    area, site = i % 10, i // 10
    return "acme/site-%d/area-%d/line-%d/machine-%d/tag-%d" % (site, area, line, eq, tag)


def store_retained(port, n, size):
    """n retained messages pipelined at QoS 0; a final QoS 1 one's PUBACK says
    the connection's messages were all handled."""
    s, r = client(port, "loader")
    payload = b"x" * size
    batch = []
    for i in range(n):
        batch.append(mqtt_raw.publish(topic_of(i), payload, retain=True))
        if len(batch) == 2000:
            s.sendall(b"".join(batch))
            batch = []
    s.sendall(b"".join(batch) + mqtt_raw.publish("bench/sync", b"1", qos=1, pid=1))
    while r.packet()[0] >> 4 != 4:
        pass
    s.close()


def ping_pong(port, seconds, interval):
    """Round trips in ms, one message in flight, one every `interval` s."""
    s, r = client(port, "pinger-%d" % os.getpid())
    s.sendall(mqtt_raw.subscribe(1, [("bench/rtt", 0)]))
    while r.packet()[0] >> 4 != 9:
        pass
    out = []
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    msg = mqtt_raw.publish("bench/rtt", b"p" * 16)
    while time.monotonic() < end:
        t0 = time.perf_counter()
        s.sendall(msg)
        while r.packet()[0] >> 4 != 3:
            pass
        out.append((time.perf_counter() - t0) * 1000)
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
    s.close()
    return out


_CURSOR = re.compile(rb'"next_cursor":(null|"([A-Za-z0-9_-]*)")\}\s*$')


def read_state_forever(port, auth, limit, stop, result):
    """Walks the whole state in pages until `stop` is set; counts walks, pages and
    messages (the body is not parsed: the cursor is at its end)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    walks = pages = messages = nbytes = busy = 0
    walk_times = []
    while not stop.is_set():
        cursor, t0 = None, time.monotonic()
        while not stop.is_set():
            path = "/api/v1/state?filter=%%23&limit=%d" % limit + ("&cursor=" + cursor if cursor else "")
            conn.request("GET", path, headers={"Authorization": auth})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 503:
                busy += 1
                time.sleep(0.05)
                continue
            assert resp.status == 200, (resp.status, body[:200])
            pages += 1
            nbytes += len(body)
            messages += body.count(b'"topic":')
            m = _CURSOR.search(body[-200:])
            assert m, body[-200:]
            if m.group(1) == b"null":
                walks += 1
                walk_times.append(time.monotonic() - t0)
                break
            cursor = m.group(2).decode()
    conn.close()
    result.update(walks=walks, pages=pages, messages=messages, bytes=nbytes, busy=busy,
                  walk_s=(sum(walk_times) / len(walk_times)) if walk_times else None)


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def report(name, rtts):
    print("%-34s %6d round trips  p50 %7.3f ms  p99 %7.3f ms  max %8.3f ms"
          % (name, len(rtts), percentile(rtts, 50), percentile(rtts, 99), max(rtts)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--retained", type=int, default=1000000)
    ap.add_argument("--size", type=int, default=64, help="payload bytes of each retained message")
    ap.add_argument("--limit", type=int, default=1000, help="messages per page")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--interval-ms", type=float, default=2)
    ap.add_argument("--threads", type=int, default=0, help="broker network threads (0: its default)")
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)

    tmp = tempfile.mkdtemp(prefix="state-read-")
    passwd = os.path.join(tmp, "passwd")
    subprocess.run([args.bin, "passwd", "--iterations", "1000", passwd, "bench"], input=b"bench-pw\n",
                   check=True, capture_output=True)
    cfg = os.path.join(tmp, "strata.yaml")
    with open(cfg, "w") as f:
        f.write('listeners: [{name: m, protocol: mqtt, bind: "127.0.0.1:0"}, '
                '{name: web, protocol: http, bind: "127.0.0.1:0"}]\n'
                "persistence: {enabled: false}\nsys: {interval: 0}\nlog: {level: warn}\n"
                "threads: %d\n"
                "limits: {max_retained_messages: %d, max_queued_messages: 100000}\n"
                "auth: {allow_anonymous: true, password_file: %s, limits: {retained: %d, retained_bytes: 8GiB}}\n"
                "roles:\n  reader: [{allow: subscribe, on: \"#\"}]\n"
                "  anyone: [{allow: publish, on: \"#\"}, {allow: subscribe, on: \"#\"}]\n"
                "users: {bench: [reader], anonymous: [anyone]}\n" % (args.threads, args.retained + 10, passwd, args.retained + 10))
    proc = subprocess.Popen([args.bin, "--config", cfg], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, cwd=tmp)
    reader = None
    try:
        ports = {}
        for line in iter(proc.stdout.readline, b""):
            m = re.match(rb"^strata listening (\S+) \S+ \S+:(\d+)$", line.strip())
            if m:
                ports[m.group(1).decode()] = int(m.group(2))
            if line.strip() == b"strata ready":
                break
        assert "m" in ports and "web" in ports, "the broker did not start"

        t0 = time.monotonic()
        store_retained(ports["m"], args.retained, args.size)
        print("%d retained messages of %d B stored in %.1f s" % (args.retained, args.size, time.monotonic() - t0))

        interval = args.interval_ms / 1000
        ping_pong(ports["m"], 1, interval)  # warm-up
        quiet = ping_pong(ports["m"], args.seconds, interval)

        auth = "Basic " + base64.b64encode(b"bench:bench-pw").decode()
        manager = multiprocessing.Manager()
        stop, result = manager.Event(), manager.dict()
        reader = multiprocessing.Process(target=read_state_forever,
                                         args=(ports["web"], auth, args.limit, stop, result))
        reader.start()
        time.sleep(0.5)  # the reader is under way (not a synchronisation: a head start)
        busy = ping_pong(ports["m"], args.seconds, interval)
        stop.set()
        reader.join(120)

        report("QoS 0 round trip, no state read", quiet)
        report("QoS 0 round trip, state read", busy)
        r = dict(result)
        if r:
            print("state reader: %d full walks (%s s each), %d pages of up to %d, %d messages, %.1f MiB, %d x 503"
                  % (r["walks"], "%.2f" % r["walk_s"] if r["walk_s"] else "-", r["pages"], args.limit,
                     r["messages"], r["bytes"] / 2**20, r["busy"]))
        print("broker alive: %s" % (proc.poll() is None))
    finally:
        if reader is not None and reader.is_alive():
            os.kill(reader.pid, signal.SIGTERM)
            reader.join(10)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
