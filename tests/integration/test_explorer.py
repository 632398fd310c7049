"""The explorer page (broker/web) in a real browser: headless Debian chromium driven
by playwright-core (tests/browser/peer) running tests/browser/explorer.spec.mjs,
against a broker with the example model (deploy/namespace/acme.yaml), the roles of
deploy/auth/strata.yaml and data published here.

The node script and the test talk over its stdin/stdout: it prints `ready NAME`
when the page is where the test waits for it, the test acts (publishes, answers a
command) and writes a line back. Screenshots go to STRATA_ARTIFACTS (default: the
test's tmp dir). Nothing is skipped: without chromium or the peer the tests fail
and say what to install.
"""

import datetime
import json
import os
import pathlib
import queue
import shutil
import subprocess
import threading
import time

import pytest

import mqtt_raw
from certs import Pki
from conftest import IS_MOSQUITTO, Client, PacketTypes, props, uid
from test_auth import example_overrides

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="Strata's explorer page")

REPO = pathlib.Path(__file__).resolve().parents[2]
SPEC = REPO / "tests" / "browser" / "explorer.spec.mjs"
PEER = REPO / "tests" / "browser" / "peer"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SPEC_TIMEOUT = 180.0

PASSWORDS = {"ana": "ana-pw-1", "olga": "olga-pw-2", "erik": "erik-pw-3",
             "nobody": "nobody-pw-4", "loader": "loader-pw-5"}
LINE2 = "acme/dresden/press-shop/line-2"
LEAF = LINE2 + "/cell-1/press-5/telemetry/temperature"
STALE = "acme/dresden/press-shop/line-9/press-99/telemetry/vibration"
QUARANTINED = "acme/dresden/assembly/line-1/cell-1/spot-welder-2/telemetry/current"


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def telemetry(value, unit="degC"):
    return json.dumps({"value": value, "unit": unit, "ts": now_iso()})


def demo_data():
    """[(topic, payload)]: two plants, retained, every payload fitting the model."""
    ts = now_iso()
    out = []
    for site, areas in (("dresden", ("press-shop", "assembly")), ("leipzig", ("assembly",))):
        for area in areas:
            for line in (1, 2, 3):
                base = "acme/%s/%s/line-%d" % (site, area, line)
                out.append((base + "/oee", json.dumps({"availability": 0.91, "performance": 0.88, "quality": 0.99,
                                                        "oee": 0.79, "shift": "early", "ts": ts})))
                for cell in (1, 2):
                    kinds = ("press", "robot") if area == "press-shop" else ("spot-welder",)
                    for kind in kinds:
                        eq = "%s/cell-%d/%s-%d" % (base, cell, kind, cell * 3 + line)
                        out.append((eq + "/state", json.dumps({"state": "running", "ts": ts})))
                        out.append((eq + "/oee", json.dumps({"availability": 0.95, "performance": 0.9,
                                                              "quality": 0.98, "oee": 0.84, "ts": ts})))
                        for sig, unit, v in (("temperature", "degC", 61.5), ("pressure", "bar", 180.0)):
                            out.append(("%s/telemetry/%s" % (eq, sig), telemetry(v, unit)))
    out.append((LINE2 + "/press-7/state", json.dumps({"state": "idle", "ts": ts})))
    return out


def visible_to_erik(topic):
    return topic.startswith("acme/dresden/")


# ---------------------------------------------------------------- the broker

def explorer_config(tmp_path, alerts=None):
    """deploy/auth/strata.yaml's auth, roles and users (plus `loader`, who publishes
    the data, and `nobody`, who has a password but no roles), the example model,
    and an mqtt and an http listener."""
    cfg = example_overrides(tmp_path, passwords=PASSWORDS)
    cfg["auth"].pop("limits", None)  # the loader publishes fast
    cfg["roles"]["loader"] = [{"allow": "publish", "on": "#"}, {"allow": "subscribe", "on": "#"}]
    cfg["users"]["loader"] = ["loader"]
    cfg["listeners"] = [{"name": "mqtt", "protocol": "mqtt", "bind": "127.0.0.1:0"},
                        {"name": "web", "protocol": "http", "bind": "127.0.0.1:0"}]
    cfg["sys"] = {"interval": 0}
    if alerts:
        cfg["alerts"] = alerts
    return cfg


def start_broker(broker_factory, tmp_path, **kw):
    b = broker_factory(**explorer_config(tmp_path, **kw))
    host, port = b.listeners["web"]
    b.url = "http://%s:%d/" % (host, port)
    return b


def loader(b):
    c = Client(b, version=5, client_id=uid("loader"))
    c.c.username_pw_set("loader", PASSWORDS["loader"])
    return c.connect()


def load(b, data):
    c = loader(b)
    for topic, payload in data:
        c.publish(topic, payload, qos=1, retain=True)
    return c


def load_many(b, n):
    """n retained telemetry topics over one raw connection: QoS 0 in large writes,
    then a QoS 1 marker whose PUBACK says the broker has taken them all."""
    c = mqtt_raw.RawClient(b.port, b.host, version=mqtt_raw.V5, timeout=60)
    c.connect_ok(uid("loader"), username="loader", password=PASSWORDS["loader"].encode())
    ts = now_iso()
    topics = []
    batch = []
    for i in range(n):
        line, cell, eq, sig = i // 10000, (i // 1000) % 10, (i // 100) % 10, i % 100
        t = "acme/dresden/press-shop/line-%d/cell-%d/press-%d/telemetry/s%d" % (line, cell, eq, sig)
        topics.append(t)
        batch.append(mqtt_raw.publish(t, '{"value": %d, "ts": "%s"}' % (i, ts), retain=True, version=mqtt_raw.V5))
        if len(batch) == 2000:
            c.send(b"".join(batch))
            batch = []
    c.send(b"".join(batch))
    ack = c.publish_acked("acme/dresden/press-shop/line-0/cell-0/press-0/telemetry/s0",
                          '{"value": 0, "ts": "%s"}' % ts, retain=True)
    assert ack.reason in (None, 0x00, 0x10), ack  # 0x10: no matching subscribers
    c.disconnect()
    return topics


# ---------------------------------------------------------------- the browser

@pytest.fixture
def artifacts(tmp_path):
    d = pathlib.Path(os.environ.get("STRATA_ARTIFACTS") or tmp_path / "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


class Spec:
    """node explorer.spec.mjs SCENARIO, with its stdout read line by line."""

    def __init__(self, scenario, b, user, artifacts, **params):
        node = shutil.which("node")
        assert node, "node is not installed: deploy/setup.sh test installs Node.js and npm"
        assert os.access(CHROMIUM, os.X_OK), "%s is missing: apt-get install chromium (deploy/setup.sh test)" % CHROMIUM
        assert (PEER / "node_modules" / "playwright-core").is_dir(), \
            "%s has no playwright-core: (cd %s && npm ci), or deploy/setup.sh test" % (PEER, PEER)
        env = dict(os.environ, STRATA_URL=b.url, STRATA_USER=user, STRATA_PASSWORD=PASSWORDS.get(user, ""),
                   STRATA_PARAMS=json.dumps(params), STRATA_ARTIFACTS=str(artifacts), CHROMIUM=CHROMIUM)
        self.scenario = scenario
        self.proc = subprocess.Popen([node, str(SPEC), scenario], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=str(SPEC.parent))
        self.lines = queue.Queue()
        self.out = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.out.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def ready(self, name, timeout=60.0):
        """Waits for `ready NAME...`; returns the rest of the line."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.fail("no `ready %s` within %.0f s" % (name, timeout))
            if line is None:
                self.fail("exited before `ready %s`" % name)
            if line.startswith("ready " + name):
                return line[len("ready " + name):].strip()

    def say(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def finish(self, timeout=SPEC_TIMEOUT):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.fail("did not finish within %.0f s" % timeout)
        if rc != 0:
            self.fail("exit code %d" % rc)
        print("\n".join(self.out))
        return self.out

    def fail(self, why):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        err = self.proc.stderr.read().decode("utf-8", "replace")
        raise AssertionError("explorer.spec.mjs %s: %s\nstdout:\n%s\nstderr:\n%s"
                             % (self.scenario, why, "\n".join(self.out), err[-4000:]))


@pytest.fixture
def specs():
    made = []

    def make(*args, **kw):
        s = Spec(*args, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


# ---------------------------------------------------------------- the tests

def test_mqtt_client_stream_and_packets():
    """broker/web/mqtt.js in Node.js with a fake WebSocket: packets split across and
    packed into WebSocket messages, properties, and the packets the client sends."""
    node = shutil.which("node")
    assert node, "node is not installed: deploy/setup.sh test installs Node.js and npm"
    p = subprocess.run([node, str(SPEC.parent / "mqtt.spec.mjs")], capture_output=True, timeout=60)
    out = p.stdout.decode() + p.stderr.decode()
    assert p.returncode == 0, out
    assert "5 passed, 0 failed" in out, out


def test_tree_with_level_names_and_a_live_update(broker_factory, tmp_path, artifacts, specs):
    b = start_broker(broker_factory, tmp_path)
    pub = load(b, demo_data())
    spec = specs("tree", b, "erik", artifacts, leaf=LEAF, levels={
        LINE2: "line", LINE2 + "/cell-1": "cell", LINE2 + "/cell-1/press-5": "equipment",
        LINE2 + "/cell-1/press-5/telemetry": "class", LINE2 + "/press-7": "equipment"})
    spec.ready("tree")
    value = "77.25"
    published = int(time.time() * 1000)
    pub.publish(LEAF, telemetry(float(value)), qos=1, retain=True)
    spec.say("published %s %d" % (value, published))
    out = spec.finish()
    assert any("live update shown" in line for line in out)


def test_search_filter_class_stale_and_quarantine(broker_factory, tmp_path, artifacts, specs):
    b = start_broker(broker_factory, tmp_path, alerts={"stale": [{"filter": STALE, "max_silence_s": 1}]})
    data = demo_data()
    pub = load(b, data + [(STALE, telemetry(0.4, "mm/s"))])
    seen = [t for t, _ in data if visible_to_erik(t)] + [STALE]
    flt = "acme/dresden/+/line-2/+/+/telemetry/#"
    searches = [
        ("press-5/telemetry", sum("press-5/telemetry" in t for t in seen)),
        ("PRESS-5/Telemetry", sum("press-5/telemetry" in t for t in seen)),
        (flt, sum(matches(flt, t) for t in seen)),
        ("acme/+/+/+/oee", sum(matches("acme/+/+/+/oee", t) for t in seen)),
    ]
    assert all(n > 0 for _, n in searches), searches
    dresden_oee = [t for t in seen if t.endswith("/oee")]
    spec = specs("search", b, "erik", artifacts, total=len(seen), searches=searches,
                 klass=["oee", sum("press-5/telemetry" in t for t in dresden_oee), len(dresden_oee)],
                 stale=STALE, quarantine=QUARANTINED, dead_letter="uns/quarantine",
                 reason="/value: expected number")
    spec.ready("quarantine")
    # The model quarantines what does not fit under acme/dresden/assembly/#.
    ack = pub.publish(QUARANTINED, json.dumps({"value": "high", "ts": now_iso()}), qos=1)
    assert ack.rc == 0
    spec.say("published")
    spec.finish()


def matches(flt, topic):
    f, t = flt.split("/"), topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(f) == len(t)


def test_refused_identities_see_nothing(broker_factory, tmp_path, artifacts, specs):
    b = start_broker(broker_factory, tmp_path)
    load(b, demo_data())
    spec = specs("refused", b, "erik", artifacts, noRoles="nobody", noRolesPassword=PASSWORDS["nobody"])
    spec.finish()


def test_command_form_for_the_operator_and_its_reply(broker_factory, tmp_path, artifacts, specs):
    b = start_broker(broker_factory, tmp_path)
    load(b, demo_data())
    node = LINE2 + "/cell-1/press-5"
    plc = loader(b)
    assert plc.subscribe(node + "/cmd/#", qos=1) == [1]
    spec = specs("command", b, "olga", artifacts, node=node)
    request_id = spec.ready("sent")
    m = plc.get(timeout=10)
    assert m.topic == node + "/cmd/start", m.topic
    cmd = json.loads(m.payload)
    assert cmd["command"] == "start" and cmd["request_id"] == request_id, cmd
    assert m.properties.ResponseTopic == node + "/reply/start", m.properties
    assert m.properties.CorrelationData == request_id.encode(), m.properties
    reply = json.dumps({"request_id": request_id, "status": "ok", "detail": "started", "ts": now_iso()})
    plc.publish(m.properties.ResponseTopic, reply, qos=1,
                properties=props(PacketTypes.PUBLISH, CorrelationData=m.properties.CorrelationData))
    spec.say("replied")
    spec.finish()


def test_a_client_certificate_logs_in_on_https(broker_factory, tmp_path, artifacts, specs):
    """On https the page offers to continue as the certificate's identity (olga,
    the operator) and shows her part of the tree over wss: line 2 of the press
    shop, nothing else."""
    pki = Pki(tmp_path / "pki")
    cert, key = pki.ca.issue("olga-cert", "olga", client=True)
    cfg = explorer_config(tmp_path)
    cfg["listeners"].append({"name": "webs", "protocol": "https", "bind": "127.0.0.1:0",
                             "tls": pki.tls_config(require_client_cert=False)})
    b = broker_factory(**cfg)
    data = demo_data()
    load(b, data)
    host, port = b.listeners["webs"]
    b.url = "https://%s:%d/" % (host, port)
    olga_sees = [t for t, _ in data if t.startswith(LINE2 + "/")]
    assert 0 < len(olga_sees) < len(data)
    spec = specs("certificate", b, "", artifacts, identity="olga", topics=len(olga_sees), cert=str(cert), key=str(key))
    spec.finish()


def test_no_command_form_for_the_analyst(broker_factory, tmp_path, artifacts, specs):
    b = start_broker(broker_factory, tmp_path)
    load(b, demo_data())
    spec = specs("nocommand", b, "ana", artifacts, node=LINE2 + "/cell-1/press-5")
    spec.finish()


def test_100000_retained_topics_load(broker_factory, tmp_path, artifacts, specs):
    """From the click on "Log in" to the tree showing 100,000 topics: under 2 s in a
    Release build; here only bounded generously (CI runs the ASan build)."""
    n = 100000
    b = start_broker(broker_factory, tmp_path)
    started = time.monotonic()
    topics = load_many(b, n)
    print("published %d retained topics in %.1f s" % (n, time.monotonic() - started))
    search = "press-3/telemetry/s42"
    spec = specs("load", b, "erik", artifacts, total=n, timeout_ms=30000, search=search,
                 searchCount=sum(search in t for t in topics))
    out = spec.finish()
    print([line for line in out if line.startswith("load ")])
