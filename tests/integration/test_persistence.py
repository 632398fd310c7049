"""Persistence: retained messages and persistent sessions survive a restart and a
crash (kill -9); acknowledged means stored; a data directory in use, foreign or
full is handled with a clear error and without losing data.

Every broker here keeps its data in a directory the test names, so that a second
broker started on the same directory reads back what the first one stored.
"""

import os
import signal
import subprocess
import threading
import time

import pytest

import mqtt_raw
from conftest import (DEFAULT_CONFIG, STRATA_BIN, TIMEOUT, merge, strata_only, to_yaml, uid,
                      wait_until)

pytestmark = strata_only

V5 = mqtt_raw.V5
V311 = mqtt_raw.V311
SESSION_EXPIRY = [("session_expiry_interval", 3600)]


def start_on(broker_factory, data, **overrides):
    over = merge({"persistence": {"path": str(data)}}, overrides)
    return broker_factory(**over)


def run_strata(tmp_path, name, overrides, *args):
    """Runs the strata binary with a config to completion; returns the CompletedProcess."""
    cfg_path = tmp_path / (name + ".yaml")
    cfg_path.write_text(to_yaml(merge(DEFAULT_CONFIG, overrides)))
    return subprocess.run([STRATA_BIN, "--config", str(cfg_path)] + list(args), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def connect(broker, client_id, version=V5, clean=True, props=()):
    c = broker.raw(version=version)
    kw = {"clean": clean}
    if version == V5:
        kw["props"] = props
    ack = c.connect_ok(client_id, **kw)
    return c, ack


def persistent_subscriber(broker, client_id, filt, version=V5):
    """Subscribes a persistent session at QoS 1 and goes offline."""
    c, _ = connect(broker, client_id, version, clean=False if version == V311 else True,
                   props=SESSION_EXPIRY)
    ack = c.subscribe([(filt, 1)])
    assert ack.reasons == [1]
    c.disconnect(wait=True)


def drain(c, n=None, quiet=1.0):
    """Receives (and acknowledges) publishes until `n` arrived or none came for `quiet` s."""
    got = []
    while n is None or len(got) < n:
        try:
            p = c.recv_publish(timeout=quiet if n is None else TIMEOUT)
        except TimeoutError:
            if n is None:
                break
            raise
        got.append(p)
    return got


def crash_counting_acks(broker, pub, acked):
    """kill -9 `broker`; PUBACKs already on their way to `pub` count as acknowledged
    too (added to `acked`)."""
    broker.crash()
    try:
        while True:
            p = pub.recv(timeout=TIMEOUT)
            if p.type == mqtt_raw.PUBACK:
                acked.add(p.pid)
    except (mqtt_raw.Closed, TimeoutError):
        pass
    pub.close()


def assert_in_publish_order(numbers):
    """A message may come twice, never out of order."""
    firsts = []
    for n in numbers:
        if n not in firsts:
            firsts.append(n)
    assert firsts == sorted(firsts)


# ---------------------------------------------------------------- restart

def test_retained_and_sessions_survive_a_restart(broker_factory, tmp_path):
    data = tmp_path / "data"
    b1 = start_on(broker_factory, data)
    persistent_subscriber(b1, "keeper", "plant/line1/#")
    persistent_subscriber(b1, "keeper311", "plant/line1/#", version=V311)
    pub, _ = connect(b1, uid("pub"))
    pub.publish_acked("plant/line1/temp", b"21.5", qos=1, retain=True)
    pub.publish_acked("plant/line1/state", b"running", qos=1, retain=True, pid=2)
    for i in range(5):
        pub.publish_acked("plant/line1/count", b"%d" % i, qos=1, pid=10 + i)
    pub.publish_acked("plant/line1/temp2", b"x", qos=2, pid=30)
    pub.disconnect()
    b1.stop()
    b1.assert_clean_exit()

    b2 = start_on(broker_factory, data)
    fresh, _ = connect(b2, uid("fresh"))
    fresh.subscribe([("plant/#", 0)])
    retained = {p.topic: p.payload for p in drain(fresh, 2)}
    assert retained == {"plant/line1/temp": b"21.5", "plant/line1/state": b"running"}

    resumed = []
    for cid, version in (("keeper", V5), ("keeper311", V311)):
        c, ack = connect(b2, cid, version, clean=False, props=SESSION_EXPIRY)
        assert ack.session_present
        got = drain(c, 8)
        assert [p.payload for p in got] == [b"21.5", b"running", b"0", b"1", b"2", b"3", b"4", b"x"]
        assert [p.qos for p in got] == [1, 1, 1, 1, 1, 1, 1, 1]  # granted QoS 1
        resumed.append(c)
    # and the subscriptions themselves survived: new messages still arrive
    pub2, _ = connect(b2, uid("pub"))
    pub2.publish_acked("plant/line1/after", b"after", qos=1)
    for c in resumed:
        assert c.recv_publish().payload == b"after"
        c.disconnect()


def test_expired_session_is_gone_after_restart(broker_factory, tmp_path):
    data = tmp_path / "data"
    b1 = start_on(broker_factory, data)
    c, _ = connect(b1, "shortlived", props=[("session_expiry_interval", 1)])
    c.subscribe([("short/#", 1)])
    c.disconnect(wait=True)
    b1.stop()
    # the session's 1 s expiry passes while the broker is down (the wall clock
    # must advance; nothing to synchronise with)
    stopped = time.time()
    wait_until(lambda: time.time() > stopped + 1.2, timeout=3, what="the session expiry to pass")
    b2 = start_on(broker_factory, data)
    c, ack = connect(b2, "shortlived", clean=False, props=[("session_expiry_interval", 1)])
    assert not ack.session_present
    assert "and 1 expired sessions" in b2.stderr_text(), b2.stderr_text()
    c.disconnect()


def test_expired_retained_messages_leave_the_disk(broker_factory, tmp_path):
    data = tmp_path / "data"
    b1 = start_on(broker_factory, data)
    pub, _ = connect(b1, uid("pub"))
    pub.publish_acked("exp/short", b"soon gone", qos=1, retain=True,
                      props=[("message_expiry_interval", 1)])
    pub.publish_acked("exp/long", b"stays", qos=1, retain=True, pid=2)
    # the housekeeping pass (every 5 s) removes it while the broker runs
    published = time.time()
    wait_until(lambda: time.time() > published + 6.5, timeout=8, what="expiry and a housekeeping pass")
    pub.disconnect()
    b1.stop()
    r = run_strata(tmp_path, "check", {"persistence": {"path": str(data)}}, "--check-data")
    assert r.returncode == 0, r
    assert ": ok: 1 retained messages" in r.stdout, r.stdout


# ---------------------------------------------------------------- crash

@pytest.mark.parametrize("durability", ["always", "batch"])
def test_kill_9_loses_nothing_acknowledged(broker_factory, tmp_path, durability):
    """QoS 1 messages to an offline persistent subscriber and retained topics, kill -9
    mid-stream: every acknowledged message is delivered after the restart (at least
    once, in order) and every retained topic holds its last acknowledged value or a
    later one."""
    data = tmp_path / "data"
    over = {"persistence": {"durability": durability}, "limits": {"max_queued_messages": 100000}}
    b1 = start_on(broker_factory, data, **over)
    persistent_subscriber(b1, "offline-sub", "crash/q/#")

    pub = b1.raw(version=V5)
    pub.connect_ok(uid("pub"), props=())
    total, kill_after, window = 3000, 600, 64
    topic_of = {}
    sent = 0
    acked = set()
    inflight = 0
    while sent < total:
        while inflight < window and sent < total:
            sent += 1
            retained = sent % 3 == 0
            topic = "crash/r/%d" % (sent % 7) if retained else "crash/q/%d" % (sent % 5)
            topic_of[sent] = topic
            pub.publish(topic, b"%d" % sent, qos=1, retain=retained, pid=sent % 65535)
            inflight += 1
        p = pub.expect(mqtt_raw.PUBACK)
        assert p.reason in (0, 0x10), p  # success / no matching subscribers
        acked.add(p.pid)
        inflight -= 1
        if len(acked) >= kill_after:
            break
    crash_counting_acks(b1, pub, acked)
    assert len(acked) >= kill_after

    b2 = start_on(broker_factory, data, **over)
    sub, ack = connect(b2, "offline-sub", clean=False, props=SESSION_EXPIRY)
    assert ack.session_present
    got = [int(p.payload) for p in drain(sub)]
    acked_queue = sorted(i for i in acked if not topic_of[i].startswith("crash/r/"))
    missing = set(acked_queue) - set(got)
    assert not missing, "acknowledged but lost: %d of %d, e.g. %r" % (
        len(missing), len(acked_queue), sorted(missing)[:10])
    assert_in_publish_order(got)
    assert set(got) <= set(topic_of)  # nothing invented

    fresh, _ = connect(b2, uid("fresh"))
    fresh.subscribe([("crash/r/#", 0)])
    values = {p.topic: int(p.payload) for p in drain(fresh)}
    for i in acked:
        t = topic_of[i]
        if t.startswith("crash/r/"):
            assert t in values, "acknowledged retained topic %s lost" % t
            last = max(j for j in acked if topic_of[j] == t)
            assert values[t] >= last, "%s: %d after restart, %d was acknowledged" % (t, values[t], last)


@pytest.mark.parametrize("durability", ["always", "batch"])
def test_kill_9_with_the_subscriber_online_loses_nothing_unacknowledged(broker_factory, tmp_path, durability):
    """QoS 1 to an online persistent subscriber that acknowledges most deliveries at
    once (their records are settled, most never written) and keeps some
    unacknowledged, kill -9 mid-stream: every message acknowledged to the publisher was
    either acknowledged by the subscriber before the crash or is delivered after the
    restart, and so is every one the subscriber received without acknowledging."""
    data = tmp_path / "data"
    over = {"persistence": {"durability": durability},
            "limits": {"max_queued_messages": 100000, "max_inflight": 2000}}
    b1 = start_on(broker_factory, data, **over)
    sub, _ = connect(b1, "online-sub", props=SESSION_EXPIRY)
    assert sub.subscribe([("live/#", 1)]).reasons == [1]
    sub_acked, withheld = set(), set()
    reading = threading.Event()
    reading.set()

    def subscriber():
        try:
            while reading.is_set():
                try:
                    p = sub.recv_publish(timeout=0.2, ack=False)
                except TimeoutError:
                    continue
                n = int(p.payload)
                if n % 7 == 0:
                    withheld.add(n)  # received, never acknowledged
                else:
                    sub.ack(p)
                    sub_acked.add(n)
        except (mqtt_raw.Closed, OSError):
            pass

    reader = threading.Thread(target=subscriber, daemon=True)
    reader.start()
    pub = b1.raw(version=V5)
    pub.connect_ok(uid("pub"), props=())
    total, kill_after, window = 6000, 2500, 64
    sent, inflight = 0, 0
    acked = set()
    while sent < total and len(acked) < kill_after:
        while inflight < window and sent < total:
            sent += 1
            pub.publish("live/%d" % (sent % 5), b"%d" % sent, qos=1, pid=sent % 65535)
            inflight += 1
        p = pub.expect(mqtt_raw.PUBACK)
        assert p.reason == 0, p
        acked.add(p.pid)
        inflight -= 1
    crash_counting_acks(b1, pub, acked)
    reading.clear()
    reader.join(timeout=TIMEOUT)
    sub.close()
    assert len(acked) >= kill_after
    assert withheld and sub_acked

    b2 = start_on(broker_factory, data, **over)
    sub, ack = connect(b2, "online-sub", clean=False, props=SESSION_EXPIRY)
    assert ack.session_present
    got = drain(sub)
    after = {int(p.payload) for p in got}
    assert all(p.dup for p in got), "resent without DUP after a crash with the client connected"
    lost = acked - sub_acked - after
    assert not lost, "acknowledged to the publisher but lost: %d of %d, e.g. %r" % (
        len(lost), len(acked), sorted(lost)[:10])
    lost = (withheld & acked) - after
    assert not lost, "received, not acknowledged, and not resent: %r" % sorted(lost)[:10]
    assert_in_publish_order([int(p.payload) for p in got])


def test_will_of_a_client_connected_at_the_crash_is_published_after_restart(broker_factory, tmp_path):
    data = tmp_path / "data"
    b1 = start_on(broker_factory, data)
    persistent_subscriber(b1, "watcher", "status/#")
    w = b1.raw(version=V5)
    will = {"topic": "status/press-7", "payload": b"offline", "qos": 1, "retain": False, "props": ()}
    w.connect_ok("press-7", props=SESSION_EXPIRY, will=will)
    # An acknowledged retained publish: its ticket comes after the session
    # record's, so the session (with its will) is on disk once the PUBACK is.
    w.publish_acked("boot/press-7", b"up", qos=1, retain=True)
    b1.crash()
    w.close()
    b2 = start_on(broker_factory, data)
    c, ack = connect(b2, "watcher", clean=False, props=SESSION_EXPIRY)
    assert ack.session_present
    p = c.recv_publish()
    assert (p.topic, p.payload) == ("status/press-7", b"offline")


def test_inbound_qos2_survives_a_crash_exactly_once(broker_factory, tmp_path):
    data = tmp_path / "data"
    b1 = start_on(broker_factory, data, persistence={"durability": "always"})
    persistent_subscriber(b1, "exactly", "once/#")
    pub = b1.raw(version=V5)
    pub.connect_ok("qos2-pub", props=SESSION_EXPIRY)
    pub.publish("once/a", b"only-once", qos=2, pid=7)
    rec = pub.expect(mqtt_raw.PUBREC)
    assert rec.pid == 7 and rec.reason == 0
    b1.crash()
    pub.close()

    b2 = start_on(broker_factory, data, persistence={"durability": "always"})
    pub = b2.raw(version=V5)
    ack = pub.connect_ok("qos2-pub", clean=False, props=SESSION_EXPIRY)
    assert ack.session_present
    pub.publish("once/a", b"only-once", qos=2, pid=7, dup=True)  # the client resends
    assert pub.expect(mqtt_raw.PUBREC).pid == 7
    pub.send(mqtt_raw.pubrel(7, version=V5))
    comp = pub.expect(mqtt_raw.PUBCOMP)
    assert comp.pid == 7 and comp.reason == 0
    sub, _ = connect(b2, "exactly", clean=False, props=SESSION_EXPIRY)
    got = drain(sub)
    assert [p.payload for p in got] == [b"only-once"]


def test_outbound_qos2_awaiting_pubcomp_resumes_with_pubrel(broker_factory, tmp_path):
    data = tmp_path / "data"
    b1 = start_on(broker_factory, data, persistence={"durability": "always"})
    sub, _ = connect(b1, "q2sub", props=SESSION_EXPIRY)
    sub.subscribe([("q2/#", 2)])
    pub, _ = connect(b1, uid("pub"))
    pub.publish_acked("q2/x", b"v", qos=2)
    p = sub.recv_publish(ack=False)
    assert p.qos == 2
    sub.send(mqtt_raw.pubrec(p.pid, version=V5))
    rel = sub.expect(mqtt_raw.PUBREL)  # the broker wrote "awaiting PUBCOMP" first
    assert rel.pid == p.pid
    # the PUBREL proves the PUBREC was handled; the record is written with the
    # next group commit ("always": before any later acknowledgement)
    pub.publish_acked("other/topic", b"sync", qos=1, pid=2, retain=True)
    b1.crash()
    sub.close()
    pub.close()
    b2 = start_on(broker_factory, data, persistence={"durability": "always"})
    sub, ack = connect(b2, "q2sub", clean=False, props=SESSION_EXPIRY)
    assert ack.session_present
    rel = sub.expect(mqtt_raw.PUBREL)
    assert rel.pid == p.pid
    sub.send(mqtt_raw.pubcomp(rel.pid, version=V5))
    sub.expect_nothing(0.5)


def test_dup_after_a_restart_only_for_messages_sent_before(broker_factory, tmp_path):
    """A message that was sent before a restart (in flight, unacknowledged) goes out
    again with DUP=1; one that was only queued for the offline client was never sent
    and goes out with DUP=0 [MQTT-3.3.1-1]."""
    data = tmp_path / "data"
    b1 = start_on(broker_factory, data)
    sub, _ = connect(b1, "dup-sub", props=SESSION_EXPIRY)
    assert sub.subscribe([("dup/#", 2)]).reasons == [2]
    pub, _ = connect(b1, uid("pub"))
    pub.publish_acked("dup/a", b"sent", qos=1)
    p = sub.recv_publish(ack=False)
    assert (p.payload, p.dup) == (b"sent", False)
    sub.disconnect(wait=True)  # without acknowledging it
    pub.publish_acked("dup/b", b"queued", qos=1, pid=2)
    pub.publish_acked("dup/c", b"queued too", qos=2, pid=3)
    pub.disconnect()
    b1.stop()
    b1.assert_clean_exit()

    def resume(expected_dup):
        b = start_on(broker_factory, data)
        sub, ack = connect(b, "dup-sub", clean=False, props=SESSION_EXPIRY)
        assert ack.session_present
        got = [sub.recv_publish(ack=False) for _ in range(3)]
        assert [p.payload for p in got] == [b"sent", b"queued", b"queued too"]
        assert [p.dup for p in got] == expected_dup
        return b, sub, got

    b2, sub, _ = resume([True, False, False])
    sub.disconnect(wait=True)  # none acknowledged: now all three were sent
    b2.stop()
    b2.assert_clean_exit()
    # a restart without the client in between keeps what was marked sent
    b3 = start_on(broker_factory, data)
    b3.stop()
    b3.assert_clean_exit()
    b4, sub, got = resume([True, True, True])
    for p in got:
        sub.ack(p)
    assert sub.expect(mqtt_raw.PUBREL).pid == got[2].pid
    sub.send(mqtt_raw.pubcomp(got[2].pid, version=V5))
    sub.expect_nothing(0.3)
    sub.disconnect(wait=True)


def test_dup_after_a_crash_with_the_client_connected(broker_factory, tmp_path):
    """After a crash while the client was connected nobody knows what was sent: every
    stored message goes out with DUP, also after a further restart without it."""
    data = tmp_path / "data"
    over = {"persistence": {"durability": "always"}}
    b1 = start_on(broker_factory, data, **over)
    sub, _ = connect(b1, "dup-crash", props=SESSION_EXPIRY)
    assert sub.subscribe([("dupc/#", 1)]).reasons == [1]
    pub, _ = connect(b1, uid("pub"))
    pub.publish_acked("dupc/a", b"one", qos=1)
    assert sub.recv_publish(ack=False).payload == b"one"
    b1.crash()
    sub.close()
    pub.close()
    b2 = start_on(broker_factory, data, **over)
    b2.stop()
    b2.assert_clean_exit()
    b3 = start_on(broker_factory, data, **over)
    sub, ack = connect(b3, "dup-crash", clean=False, props=SESSION_EXPIRY)
    assert ack.session_present
    p = sub.recv_publish()
    assert (p.payload, p.dup) == (b"one", True)
    sub.disconnect(wait=True)


# ---------------------------------------------------------------- bad directories

def test_second_process_on_the_same_directory_exits_2(broker_factory, tmp_path):
    data = tmp_path / "data"
    b1 = start_on(broker_factory, data)
    pub, _ = connect(b1, uid("pub"))
    pub.publish_acked("keep/me", b"1", qos=1, retain=True)
    r = run_strata(tmp_path, "second", {"persistence": {"path": str(data)},
                                        "listeners": [{"name": "x", "bind": "127.0.0.1:0"}]})
    assert r.returncode == 2, r
    assert str(data) in r.stderr and "in use" in r.stderr, r.stderr
    assert "strata ready" not in r.stdout
    # the first broker still serves, and its data is intact
    b1.assert_alive()
    fresh, _ = connect(b1, uid("fresh"))
    fresh.subscribe([("keep/#", 0)])
    assert fresh.recv_publish().payload == b"1"


def test_foreign_directory_is_refused_and_left_alone(tmp_path):
    data = tmp_path / "foreign"
    data.mkdir()
    (data / "notes.txt").write_text("not a database\n")
    r = run_strata(tmp_path, "foreign", {"persistence": {"path": str(data)}})
    assert r.returncode == 2, r
    assert str(data) in r.stderr, r.stderr
    assert sorted(os.listdir(data)) == ["notes.txt"]
    assert (data / "notes.txt").read_text() == "not a database\n"


def test_check_data_reports_counts(broker_factory, tmp_path):
    data = tmp_path / "data"
    b1 = start_on(broker_factory, data)
    persistent_subscriber(b1, "counted", "count/#")
    pub, _ = connect(b1, uid("pub"))
    pub.publish_acked("count/a", b"1", qos=1, retain=True)
    pub.publish_acked("count/b", b"2", qos=1, retain=True, pid=2)
    pub.disconnect()
    b1.stop()
    r = run_strata(tmp_path, "check", {"persistence": {"path": str(data)}}, "--check-data")
    assert r.returncode == 0, r
    assert "2 retained messages, 1 sessions, 1 subscriptions, 2 queued or in-flight messages" in r.stdout, r.stdout
    missing = run_strata(tmp_path, "check2", {"persistence": {"path": str(tmp_path / "nothing")}}, "--check-data")
    assert missing.returncode == 2 and str(tmp_path / "nothing") in missing.stderr, missing
    assert not (tmp_path / "nothing").exists()


def test_persistence_disabled_keeps_nothing(broker_factory, tmp_path):
    data = tmp_path / "data"
    b1 = start_on(broker_factory, data, persistence={"enabled": False})
    pub, _ = connect(b1, uid("pub"))
    pub.publish_acked("gone/a", b"1", qos=1, retain=True)
    assert not data.exists()
    assert "persistence disabled" in b1.stderr_text()


# ---------------------------------------------------------------- disk full

def _mount_tmpfs(path, size):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", str(path)],
                       capture_output=True, text=True)
    return r.returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_disk_full_refuses_qos1_serves_qos0_and_recovers(broker_factory, tmp_path):
    mnt = tmp_path / "small"
    assert _mount_tmpfs(mnt, "24m"), "cannot mount a tmpfs for the disk-full test"
    try:
        data = mnt / "data"
        b = start_on(broker_factory, data)
        watcher, _ = connect(b, uid("watch"))
        watcher.subscribe([("df/#", 0)])
        pub, _ = connect(b, uid("pub"))
        assert pub.publish_acked("df/ok", b"before", qos=1, retain=True).reason == 0
        watcher.recv_publish()

        # fill what is left of the file system
        filler = mnt / "filler"
        with open(filler, "wb") as f:
            chunk = b"\0" * (1 << 20)
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError:
                pass
        # QoS 1 publishes that need the store are refused once a write failed
        pid = 100
        held = []
        refused = None
        deadline = time.monotonic() + 20
        while refused is None and time.monotonic() < deadline:
            pid += 1
            pub.publish("df/r%d" % pid, b"x" * 60000, qos=1, retain=True, pid=pid)
            try:
                p = pub.recv(timeout=0.2)
            except TimeoutError:
                held.append(pid)  # waiting for the disk: not acknowledged
                continue
            if p.type == mqtt_raw.PUBACK and p.reason == 0x97:
                refused = p
        assert refused is not None, "no 0x97 while the disk is full (%d sent, %d held): %s %s" % (
            pid - 100, len(held), subprocess.run(["df", str(mnt)], capture_output=True, text=True).stdout,
            b.stderr_text()[-3000:])
        assert held, "the publish that hit the full disk should not have been acknowledged"
        assert "store cannot write" in b.stderr_text() and "refusing QoS 1/2 publishes" in b.stderr_text()
        # QoS 0 is still served
        pub.publish("df/qos0", b"still-flowing", qos=0)
        got = [q.payload for q in drain(watcher)]
        assert b"still-flowing" in got

        # space returns: the held acknowledgements arrive, new publishes are taken
        os.unlink(filler)
        acks = set()
        deadline = time.monotonic() + 20
        while not set(held) <= acks and time.monotonic() < deadline:
            try:
                p = pub.recv(timeout=0.5)
            except TimeoutError:
                continue
            if p.type == mqtt_raw.PUBACK:
                assert p.reason in (0, 0x10), p
                acks.add(p.pid)
        assert set(held) <= acks, "held acknowledgements never came: %r" % (set(held) - acks)
        wait_until(lambda: pub.publish_acked("df/after", b"ok", qos=1, pid=9, retain=True).reason == 0,
                   timeout=20, what="QoS 1 accepted again")
        pub.disconnect()
        b.stop()
        b.assert_clean_exit()
        # what was acknowledged is on disk
        b2 = start_on(broker_factory, data)
        fresh, _ = connect(b2, uid("fresh"))
        fresh.subscribe([("df/#", 0)])
        topics = {p.topic for p in drain(fresh)}
        assert {"df/ok", "df/after"} <= topics
        assert {"df/r%d" % i for i in held} <= topics
        b2.stop()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
