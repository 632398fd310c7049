"""MQTT over WebSocket at /mqtt on an http (and https) listener: paho's websockets
transport (3.1.1 and 5.0) with TCP clients, MQTT packets split across frames and
several packets in one frame (a raw WebSocket client), and bad upgrades and
oversized frames closing only their own connection.
"""

import base64
import os
import socket
import struct
import types

import pytest

import mqtt_raw
from certs import Pki
from conftest import IS_MOSQUITTO, TIMEOUT, Client, uid, wait_until

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="Strata listener configuration")


def start_ws_broker(broker_factory, **extra):
    listeners = [
        {"name": "mqtt", "protocol": "mqtt", "bind": "127.0.0.1:0"},
        {"name": "web", "protocol": "http", "bind": "127.0.0.1:0"},
    ] + extra.pop("more_listeners", [])
    b = broker_factory(listeners=listeners, **extra)
    host, port = b.listeners["web"]
    b.web = types.SimpleNamespace(host=host, port=port)
    return b


def ws_client(target, version, tls=None):
    c = Client(target, version=version, transport="websockets")
    c.c.ws_set_options(path="/mqtt")
    if tls is not None:
        c.tls(**tls)
    return c


# ---------------------------------------------------------------- a raw WebSocket client

class RawWs:
    """A minimal RFC 6455 client: the upgrade, masked client frames, unmasked server
    frames. recv_mqtt() parses the MQTT stream carried in binary messages."""

    def __init__(self, target, protocol="mqtt", path="/mqtt", sock=None):
        self.sock = sock or socket.create_connection((target.host, target.port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        if protocol:
            lines.append("Sec-WebSocket-Protocol: " + protocol)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            head += chunk
        self.response, _, self.data = head.partition(b"\r\n\r\n")
        self.status = int(self.response.split(b" ")[1]) if self.response else None
        self.mqtt = mqtt_raw.RawClient.__new__(mqtt_raw.RawClient)
        self.mqtt.version, self.mqtt.buf, self.mqtt.closed, self.mqtt.timeout = mqtt_raw.V311, b"", False, TIMEOUT

    def frame(self, payload, opcode=0x2, fin=True):
        mask = os.urandom(4)
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + masked

    def send_frame(self, payload, opcode=0x2, fin=True):
        self.sock.sendall(self.frame(payload, opcode, fin))

    def _read_exact(self, n):
        while len(self.data) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise mqtt_raw.Closed("connection closed by broker")
            self.data += chunk
        out, self.data = self.data[:n], self.data[n:]
        return out

    def recv_frame(self):
        b0, b1 = self._read_exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exact(8))[0]
        assert not b1 & 0x80, "server frames are not masked"
        return b0 & 0x0F, self._read_exact(n)

    def recv_mqtt(self):
        while True:
            f = self.mqtt._frame()
            if f is not None:
                return mqtt_raw.parse(f[0], f[1], mqtt_raw.V311)
            opcode, payload = self.recv_frame()
            if opcode == 0x8:
                raise mqtt_raw.Closed("WebSocket close from broker")
            assert opcode in (0x0, 0x2), "unexpected opcode %d" % opcode
            self.mqtt.buf += payload

    def closed_by_broker(self):
        """True once the broker closes (a close frame or EOF) within the timeout."""
        try:
            while True:
                opcode, _ = self.recv_frame()
                if opcode == 0x8:
                    return True
        except (mqtt_raw.Closed, ConnectionResetError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- paho over WebSocket

@pytest.mark.parametrize("version", [5, 4])
def test_paho_websocket_interoperates_with_tcp(broker_factory, version):
    b = start_ws_broker(broker_factory)
    ws = ws_client(b.web, version).connect()
    assert ws.subscribe("uns/#", qos=1) == [1]
    tcp = Client(b, version=version).connect()
    assert tcp.subscribe("uns/#", qos=1) == [1]
    tcp.publish("uns/from-tcp", b"t" * 300, qos=1)
    ws.publish("uns/from-ws", b"w" * 70000, qos=1)  # larger than one read buffer
    got_ws = {m.topic: m.payload for m in ws.get_n(2)}
    got_tcp = {m.topic: m.payload for m in tcp.get_n(2)}
    expected = {"uns/from-tcp": b"t" * 300, "uns/from-ws": b"w" * 70000}
    assert got_ws == expected and got_tcp == expected
    ws.quit()
    tcp.disconnect()


def test_websocket_over_https(broker_factory, tmp_path):
    pki = Pki(tmp_path / "pki")
    b = start_ws_broker(broker_factory, more_listeners=[
        {"name": "webs", "protocol": "https", "bind": "127.0.0.1:0", "tls": pki.tls_config()}])
    host, port = b.listeners["webs"]
    target = types.SimpleNamespace(host=host, port=port)
    ws = ws_client(target, 5, tls=dict(ca_certs=pki.ca.cert, certfile=pki.client_cert,
                                       keyfile=pki.client_key)).connect()
    assert ws.subscribe("secure/#") == [0]
    Client(b, version=5).connect().publish("secure/x", b"over-wss")
    assert ws.get().payload == b"over-wss"
    wait_until(lambda: "client certificate cn='press-7'" in b.stderr_text(), what="the certificate log line")
    ws.quit()


# ---------------------------------------------------------------- framing

def test_packets_split_across_frames_and_several_in_one_frame(broker_factory):
    b = start_ws_broker(broker_factory)
    w = RawWs(b.web)
    assert w.status == 101, w.response
    assert b"Sec-WebSocket-Protocol: mqtt" in w.response
    connect = mqtt_raw.connect(uid("raw-ws"), version=mqtt_raw.V311)
    # CONNECT in three binary messages, split inside the fixed header
    w.send_frame(connect[:1])
    w.send_frame(connect[1:5])
    w.send_frame(connect[5:])
    assert w.recv_mqtt().type == mqtt_raw.CONNACK
    # SUBSCRIBE, PUBLISH and PINGREQ in one frame
    w.send_frame(mqtt_raw.subscribe(1, [("ws/t", 0)]) + mqtt_raw.publish("ws/t", b"one") + mqtt_raw.pingreq())
    got = [w.recv_mqtt() for _ in range(3)]
    assert got[0].type == mqtt_raw.SUBACK
    # the delivery and PINGRESP may come in either order
    assert sorted(p.type for p in got[1:]) == [mqtt_raw.PUBLISH, mqtt_raw.PINGRESP]
    assert [p.payload for p in got if p.type == mqtt_raw.PUBLISH] == [b"one"]
    # one PUBLISH in a fragmented message (continuation frames), the next
    # packet starting in the same fragment that ends the first
    p1, p2 = mqtt_raw.publish("ws/t", b"two"), mqtt_raw.publish("ws/t", b"three")
    w.send_frame(p1[:4], opcode=0x2, fin=False)
    w.send_frame(p1[4:] + p2[:2], opcode=0x0, fin=False)
    w.send_frame(p2[2:], opcode=0x0, fin=True)
    assert [w.recv_mqtt().payload for _ in range(2)] == [b"two", b"three"]
    w.close()


def test_bad_upgrades_close_only_that_connection(broker_factory):
    b = start_ws_broker(broker_factory)
    keeper = ws_client(b.web, 5).connect()
    no_protocol = RawWs(b.web, protocol=None)
    assert no_protocol.status == 400
    wrong_path = RawWs(b.web, path="/elsewhere")
    assert wrong_path.status == 404
    wrong_protocol = RawWs(b.web, protocol="wamp")
    assert wrong_protocol.status == 400
    for w in (no_protocol, wrong_path, wrong_protocol):
        w.close()
    # an upgrade without the WebSocket key
    s = socket.create_connection((b.web.host, b.web.port), timeout=TIMEOUT)
    s.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Version: 13\r\n\r\n")
    reply = s.recv(4096)
    assert not reply.startswith(b"HTTP/1.1 101"), reply
    s.close()
    assert keeper.subscribe("still/#") == [0]
    b.assert_alive()
    keeper.quit()


def test_oversized_frame_closes_that_connection(broker_factory):
    b = start_ws_broker(broker_factory, limits={"max_packet_size": "64KiB"})
    keeper = ws_client(b.web, 4).connect()
    w = RawWs(b.web)
    assert w.status == 101
    w.send_frame(mqtt_raw.connect(uid("big"), version=mqtt_raw.V311))
    assert w.recv_mqtt().type == mqtt_raw.CONNACK
    try:
        w.send_frame(b"\x30" + b"\x00" * (1024 * 1024))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the broker refused the frame by its header and closed while the rest was still being sent
    assert w.closed_by_broker()
    w.close()
    assert keeper.subscribe("still/#") == [0]
    b.assert_alive()
    keeper.quit()
