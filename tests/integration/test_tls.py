"""MQTT over TLS (`protocol: mqtt+tls`): mosquitto and paho clients, mutual TLS, refused
protocol versions and certificates, the client certificate's names, and certificate
reload on SIGHUP without dropping connections.

Certificates are made by the tests with `openssl` in a temporary directory (certs.py).
"""

import http.client
import select
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import types

import pytest

import mqtt_raw
from certs import Pki, TlsRaw
from conftest import (IS_MOSQUITTO, TIMEOUT, Client, MosquittoSub, mosquitto_pub, uid,
                      wait_until)

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="Strata listener configuration")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


def start_tls_broker(broker_factory, pki, **tls):
    b = broker_factory(listeners=[
        {"name": "plain", "protocol": "mqtt", "bind": "127.0.0.1:0"},
        {"name": "secure", "protocol": "mqtt+tls", "bind": "127.0.0.1:0", "tls": pki.tls_config(**tls)},
    ])
    host, port = b.listeners["secure"]
    b.tls = types.SimpleNamespace(host=host, port=port)
    return b


def tls_args(pki, cert=None, key=None):
    args = ["--cafile", pki.ca.cert]
    if cert:
        args += ["--cert", cert, "--key", key]
    return args


def connack_over_tls(target, context):
    """True if a TLS handshake and CONNECT with `context` get a CONNACK 0; False if the
    broker refuses (handshake alert, or the connection closed before CONNACK)."""
    try:
        c = TlsRaw(target, context)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return False
    try:
        c.send(mqtt_raw.connect(uid("tls"), version=mqtt_raw.V311))
        p = c.recv()
        return p.type == mqtt_raw.CONNACK and p.reason == 0
    except (ssl.SSLError, mqtt_raw.Closed, ConnectionResetError, BrokenPipeError):
        # TLS 1.3: a refused client certificate shows up after the handshake.
        return False
    finally:
        c.close()


def test_mosquitto_clients_over_mutual_tls(broker_factory, pki):
    b = start_tls_broker(broker_factory, pki)
    sub = MosquittoSub(b.tls, "-t", "tls/t", "-C", "1", *tls_args(pki, pki.client_cert, pki.client_key)).start()
    try:
        mosquitto_pub(b.tls, "-t", "tls/t", "-m", "over-tls", *tls_args(pki, pki.client_cert, pki.client_key))
        assert sub.payloads(1) == ["over-tls"]
    finally:
        sub.stop()


@pytest.mark.parametrize("version", [5, 4])
def test_paho_over_tls_with_a_tcp_client(broker_factory, pki, version):
    b = start_tls_broker(broker_factory, pki)
    sub = Client(b.tls, version=version)
    sub.tls(ca_certs=pki.ca.cert, certfile=pki.client_cert, keyfile=pki.client_key)
    sub.connect()
    assert sub.subscribe("plant/#", qos=1) == [1]
    pub = Client(b, version=version).connect()  # plain TCP listener
    pub.publish("plant/a", b"from-tcp", qos=1)
    m = sub.get()
    assert (m.topic, m.payload, m.qos) == ("plant/a", b"from-tcp", 1)
    sub.publish("plant/b", b"from-tls", qos=1)
    assert sub.get().payload == b"from-tls"
    sub.quit()
    pub.disconnect()


def test_tls_1_1_is_refused_and_1_2_accepted(broker_factory, pki):
    b = start_tls_broker(broker_factory, pki)
    cert = dict(cert=pki.client_cert, key=pki.client_key, seclevel0=True)
    old = pki.client_context(minimum=ssl.TLSVersion.TLSv1_1, maximum=ssl.TLSVersion.TLSv1_1, **cert)
    assert not connack_over_tls(b.tls, old)
    v12 = pki.client_context(minimum=ssl.TLSVersion.TLSv1_2, maximum=ssl.TLSVersion.TLSv1_2, **cert)
    assert connack_over_tls(b.tls, v12)
    b.assert_alive()


def test_min_version_1_3(broker_factory, pki):
    b = start_tls_broker(broker_factory, pki, min_version="1.3")
    cert = dict(cert=pki.client_cert, key=pki.client_key)
    assert not connack_over_tls(b.tls, pki.client_context(maximum=ssl.TLSVersion.TLSv1_2, **cert))
    assert connack_over_tls(b.tls, pki.client_context(minimum=ssl.TLSVersion.TLSv1_3, **cert))


@pytest.mark.parametrize("which", ["untrusted", "expired", "none"])
def test_bad_client_certificates_are_refused(broker_factory, pki, which):
    b = start_tls_broker(broker_factory, pki)
    cert = {"untrusted": (pki.rogue_cert, pki.rogue_key), "expired": (pki.expired_cert, pki.expired_key),
            "none": (None, None)}[which]
    for maximum in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert not connack_over_tls(b.tls, pki.client_context(cert[0], cert[1], maximum=maximum)), maximum
    r = subprocess.run(["/usr/bin/mosquitto_pub", "-h", b.tls.host, "-p", str(b.tls.port), "-t", "x",
                        "-m", "y"] + tls_args(pki, *cert), capture_output=True, timeout=TIMEOUT)
    assert r.returncode != 0
    # the trusted certificate still works, and so does the broker
    assert connack_over_tls(b.tls, pki.client_context(pki.client_cert, pki.client_key))
    b.assert_alive()


def test_client_certificate_optional_when_not_required(broker_factory, pki):
    b = start_tls_broker(broker_factory, pki, require_client_cert=False)
    assert connack_over_tls(b.tls, pki.client_context())
    # a certificate that is sent must still verify
    assert not connack_over_tls(b.tls, pki.client_context(pki.rogue_cert, pki.rogue_key,
                                                          maximum=ssl.TLSVersion.TLSv1_2))


def test_server_only_tls_without_client_ca(broker_factory, pki):
    b = start_tls_broker(broker_factory, pki, client_ca=False)
    assert connack_over_tls(b.tls, pki.client_context())


def test_client_certificate_names_reach_the_broker(broker_factory, pki):
    b = start_tls_broker(broker_factory, pki)
    assert connack_over_tls(b.tls, pki.client_context(pki.client_cert, pki.client_key))
    wait_until(lambda: "client certificate cn='press-7' san-uri=[urn:acme:press-7] "
                       "san-dns=[press-7.acme.local]" in b.stderr_text(),
               what="the client certificate's names in the broker log")


def server_cn(target, pki):
    ctx = pki.client_context(pki.client_cert, pki.client_key)
    with socket.create_connection((target.host, target.port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            subject = dict(x[0] for x in s.getpeercert()["subject"])
            return subject["commonName"]


def test_sighup_reloads_certificates_without_dropping_connections(broker_factory, pki, tmp_path):
    # The broker reads copies, so that the test can replace them.
    live_cert, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(pki.server_cert, live_cert)
    shutil.copy(pki.server_key, live_key)
    b = start_tls_broker(broker_factory, pki, cert=str(live_cert), key=str(live_key))
    assert server_cn(b.tls, pki) == "strata-a"

    sub = Client(b.tls, version=5)
    sub.tls(ca_certs=pki.ca.cert, certfile=pki.client_cert, keyfile=pki.client_key)
    sub.connect()
    assert sub.subscribe("reload/#", qos=1) == [1]

    new_cert, new_key = pki.ca.issue("server-b", "strata-b", san=["IP:127.0.0.1", "DNS:localhost"])
    shutil.copy(new_cert, live_cert)
    shutil.copy(new_key, live_key)
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "TLS certificate and key reloaded" in b.stderr_text(), what="the reload log line")

    assert server_cn(b.tls, pki) == "strata-b"
    # the connection made before the reload still works
    sub.publish("reload/x", b"still-here", qos=1)
    assert sub.get().payload == b"still-here"
    assert sub.c.is_connected()

    # a broken file on reload keeps the current certificate
    live_key.write_text("not a key\n")
    b.send_signal(signal.SIGHUP)
    wait_until(lambda: "TLS reload failed" in b.stderr_text(), what="the failed reload log line")
    assert server_cn(b.tls, pki) == "strata-b"
    sub.quit()


def gauges(b):
    """The unlabelled samples of /metrics on the `web` listener: {name: value}."""
    host, port = b.listeners["web"]
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()[:2]
            out[name] = float(value)
    return out


def start_tls_and_web_broker(broker_factory, pki, **over):
    b = broker_factory(listeners=[
        {"name": "plain", "protocol": "mqtt", "bind": "127.0.0.1:0"},
        {"name": "secure", "protocol": "mqtt+tls", "bind": "127.0.0.1:0", "tls": pki.tls_config()},
        {"name": "web", "protocol": "http", "bind": "127.0.0.1:0"},
        {"name": "admin", "protocol": "https", "bind": "127.0.0.1:0",
         "tls": pki.tls_config(require_client_cert=False)},
    ], **over)
    b.tls = types.SimpleNamespace(host=b.listeners["secure"][0], port=b.listeners["secure"][1])
    return b


def test_bare_connections_to_tls_listeners_hold_no_tls_state_and_time_out(broker_factory, pki):
    """Bare TCP connections to TLS listeners (mqtt+tls and https) get no TLS state until
    they send (no handshake in progress), real clients get through meanwhile, and the
    bare ones are closed after the connect timeout (10 s), on https and http as on
    mqtt+tls."""
    b = start_tls_and_web_broker(broker_factory, pki)
    admin = b.listeners["admin"]
    opened = time.monotonic()
    bare = [socket.create_connection((b.tls.host, b.tls.port)) for _ in range(150)]
    bare += [socket.create_connection(admin) for _ in range(50)]
    bare += [socket.create_connection(b.listeners["web"]) for _ in range(50)]
    wait_until(lambda: gauges(b)["strata_connections"] >= 150, what="the bare connections to be accepted")
    while_open = gauges(b)

    c = TlsRaw(b.tls, pki.client_context(pki.client_cert, pki.client_key))
    c.connect_ok(uid("tls"))
    c.close()
    conn = http.client.HTTPSConnection(*admin, timeout=TIMEOUT, context=pki.client_context())
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()

    # The bare connections never sent a byte: closed by the connect timeout.
    pending = set(bare)
    deadline = opened + 10 + 5
    while pending and time.monotonic() < deadline:
        ready, _, _ = select.select(list(pending), [], [], 0.5)
        for s in ready:
            try:
                data = s.recv(1)
            except ConnectionResetError:
                data = b""
            assert data == b"", data
            pending.discard(s)
    for s in bare:
        s.close()
    assert not pending, "%d bare connections still open after %.0f s" % (len(pending), time.monotonic() - opened)
    # While they were open, none of them held TLS state.
    assert while_open.get("strata_tls_handshakes_in_progress") == 0, while_open
    assert while_open.get("strata_tls_handshakes_waiting") == 0, while_open


def test_handshakes_beyond_max_handshakes_wait_for_a_slot(broker_factory, pki):
    """Four clients that send one byte of a ClientHello and stall fill max_handshakes: 4;
    a fifth handshake waits for a slot (bare connections meanwhile take none) and
    completes once the stalled ones go."""
    b = start_tls_and_web_broker(broker_factory, pki, limits={"max_handshakes": 4})
    device = pki.client_context(pki.client_cert, pki.client_key)
    bare = [socket.create_connection((b.tls.host, b.tls.port)) for _ in range(20)]
    stalled = [socket.create_connection((b.tls.host, b.tls.port)) for _ in range(4)]
    for s in stalled:
        s.sendall(b"\x16")
    wait_until(lambda: gauges(b)["strata_tls_handshakes_in_progress"] == 4, what="4 handshakes in progress")

    result = {}

    def late_client():
        try:
            t = TlsRaw(b.tls, device, timeout=15)
            result["ack"] = t.connect(uid("late"))
            t.close()
        except Exception as e:  # reported by the assertion below
            result["error"] = e

    late = threading.Thread(target=late_client)
    late.start()
    try:
        wait_until(lambda: gauges(b)["strata_tls_handshakes_waiting"] == 1, what="a handshake waiting for a slot")
        assert gauges(b)["strata_tls_handshakes_in_progress"] == 4
    finally:
        for s in stalled:
            s.close()
        late.join(20)
    assert "error" not in result, result
    assert result["ack"].reason == 0
    wait_until(lambda: gauges(b)["strata_tls_handshakes_in_progress"] == 0, what="every slot given back")
    assert gauges(b)["strata_tls_handshakes_waiting"] == 0
    for s in bare:
        s.close()

def test_bad_tls_config_is_a_clear_start_error(tmp_path, pki):
    import conftest
    cfg = tmp_path / "strata.yaml"
    cfg.write_text('listeners: [{name: s, protocol: mqtt+tls, bind: "127.0.0.1:0", '
                   'tls: {cert: %s, key: %s}}]\n' % (pki.server_cert, str(tmp_path / "missing.key")))
    r = subprocess.run([conftest.STRATA_BIN, "--config", str(cfg)], capture_output=True, timeout=TIMEOUT * 3)
    assert r.returncode != 0
    assert b"listener 's'" in r.stderr and b"missing.key" in r.stderr, r.stderr
    cfg.write_text('listeners: [{name: s, protocol: mqtt+tls, bind: "127.0.0.1:0"}]\n')
    r = subprocess.run([conftest.STRATA_BIN, "--config", str(cfg)], capture_output=True, timeout=TIMEOUT * 3)
    assert r.returncode == 2
    assert b"needs a tls section" in r.stderr, r.stderr
