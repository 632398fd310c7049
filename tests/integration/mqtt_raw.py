"""A small raw-socket MQTT 3.1.1 / 5.0 packet builder and parser for byte-exact tests.

Builders return the complete packet as bytes; RawClient sends them over a TCP
socket and parses what comes back into Packet objects. Nothing here retries,
reconnects or acknowledges on its own: a test sees exactly what the broker sent.

Properties are lists of (name, value) pairs so that order and repetition (User
Property, Subscription Identifier) survive both ways.
"""

import socket
import struct
import time

V311 = 4
V5 = 5

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP = 8, 9, 10, 11, 12, 13
DISCONNECT, AUTH = 14, 15

TYPE_NAMES = {
    CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK",
    PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE",
    SUBACK: "SUBACK", UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK",
    PINGREQ: "PINGREQ", PINGRESP: "PINGRESP", DISCONNECT: "DISCONNECT", AUTH: "AUTH",
}

# MQTT 5.0 properties: id -> (name, wire type)
PROPERTIES = {
    0x01: ("payload_format_indicator", "byte"),
    0x02: ("message_expiry_interval", "u32"),
    0x03: ("content_type", "str"),
    0x08: ("response_topic", "str"),
    0x09: ("correlation_data", "bin"),
    0x0B: ("subscription_identifier", "varint"),
    0x11: ("session_expiry_interval", "u32"),
    0x12: ("assigned_client_identifier", "str"),
    0x13: ("server_keep_alive", "u16"),
    0x15: ("authentication_method", "str"),
    0x16: ("authentication_data", "bin"),
    0x17: ("request_problem_information", "byte"),
    0x18: ("will_delay_interval", "u32"),
    0x19: ("request_response_information", "byte"),
    0x1A: ("response_information", "str"),
    0x1C: ("server_reference", "str"),
    0x1F: ("reason_string", "str"),
    0x21: ("receive_maximum", "u16"),
    0x22: ("topic_alias_maximum", "u16"),
    0x23: ("topic_alias", "u16"),
    0x24: ("maximum_qos", "byte"),
    0x25: ("retain_available", "byte"),
    0x26: ("user_property", "pair"),
    0x27: ("maximum_packet_size", "u32"),
    0x28: ("wildcard_subscription_available", "byte"),
    0x29: ("subscription_identifier_available", "byte"),
    0x2A: ("shared_subscription_available", "byte"),
}
PROPERTY_IDS = {name: (pid, kind) for pid, (name, kind) in PROPERTIES.items()}

# Reason codes used by the tests (MQTT 5.0 section 2.4).
SUCCESS = 0x00
DISCONNECT_WITH_WILL = 0x04
NO_MATCHING_SUBSCRIBERS = 0x10
NO_SUBSCRIPTION_EXISTED = 0x11
UNSPECIFIED_ERROR = 0x80
MALFORMED_PACKET = 0x81
PROTOCOL_ERROR = 0x82
UNSUPPORTED_PROTOCOL_VERSION = 0x84
CLIENT_ID_NOT_VALID = 0x85
NOT_AUTHORIZED = 0x87
SERVER_SHUTTING_DOWN = 0x8B
BAD_AUTHENTICATION_METHOD = 0x8C
KEEP_ALIVE_TIMEOUT = 0x8D
SESSION_TAKEN_OVER = 0x8E
TOPIC_FILTER_INVALID = 0x8F
TOPIC_NAME_INVALID = 0x90
RECEIVE_MAXIMUM_EXCEEDED = 0x93
TOPIC_ALIAS_INVALID = 0x94
PACKET_TOO_LARGE = 0x95
QUOTA_EXCEEDED = 0x97
PAYLOAD_FORMAT_INVALID = 0x99
USE_ANOTHER_SERVER = 0x9C
SERVER_MOVED = 0x9D


# ---------------------------------------------------------------- encoding

def varint(n):
    if n < 0 or n > 268435455:
        raise ValueError("variable byte integer out of range: %d" % n)
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def binary(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return u16(len(data)) + data


utf8 = binary  # an MQTT UTF-8 string is length-prefixed like binary data


def encode_property(name, value):
    pid, kind = PROPERTY_IDS[name]
    head = varint(pid)
    if kind == "byte":
        return head + bytes([value])
    if kind == "u16":
        return head + u16(value)
    if kind == "u32":
        return head + u32(value)
    if kind == "varint":
        return head + varint(value)
    if kind in ("str", "bin"):
        return head + binary(value)
    if kind == "pair":
        return head + binary(value[0]) + binary(value[1])
    raise AssertionError(kind)


def encode_props(props):
    """props: iterable of (name, value); a dict works when no name repeats."""
    if isinstance(props, dict):
        props = list(props.items())
    body = b"".join(encode_property(n, v) for n, v in (props or ()))
    return varint(len(body)) + body


def packet(first_byte, body):
    return bytes([first_byte]) + varint(len(body)) + body


def connect(client_id="", version=V311, clean=True, keepalive=60, will=None,
            username=None, password=None, props=(), protocol_name="MQTT",
            reserved_flag=False):
    """will: dict(topic, payload, qos=0, retain=False, props=())."""
    flags = 0
    if clean:
        flags |= 0x02
    if reserved_flag:
        flags |= 0x01
    payload = utf8(client_id)
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3)
        if will.get("retain"):
            flags |= 0x20
        if version == V5:
            payload += encode_props(will.get("props", ()))
        payload += utf8(will["topic"]) + binary(will.get("payload", b""))
    if username is not None:
        flags |= 0x80
        payload += utf8(username)
    if password is not None:
        flags |= 0x40
        payload += binary(password)
    var = utf8(protocol_name) + bytes([version, flags]) + u16(keepalive)
    if version == V5:
        var += encode_props(props)
    return packet(0x10, var + payload)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
            props=(), version=V311):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    body = utf8(topic)
    if qos > 0:
        body += u16(pid if pid is not None else 1)
    if version == V5:
        body += encode_props(props)
    return packet(first, body + payload)


def _ack(first, pid, reason, props, version):
    body = u16(pid)
    if version == V5 and (reason or props):
        body += bytes([reason])
        if props:
            body += encode_props(props)
    return packet(first, body)


def puback(pid, reason=0, props=(), version=V311):
    return _ack(0x40, pid, reason, props, version)


def pubrec(pid, reason=0, props=(), version=V311):
    return _ack(0x50, pid, reason, props, version)


def pubrel(pid, reason=0, props=(), version=V311):
    return _ack(0x62, pid, reason, props, version)


def pubcomp(pid, reason=0, props=(), version=V311):
    return _ack(0x70, pid, reason, props, version)


def sub_options(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    return qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0) | (retain_handling << 4)


def subscribe(pid, filters, props=(), version=V311):
    """filters: list of (filter, options byte) or (filter, qos)."""
    body = u16(pid)
    if version == V5:
        body += encode_props(props)
    for f, opts in filters:
        body += utf8(f) + bytes([opts])
    return packet(0x82, body)


def unsubscribe(pid, filters, props=(), version=V311):
    body = u16(pid)
    if version == V5:
        body += encode_props(props)
    for f in filters:
        body += utf8(f)
    return packet(0xA2, body)


def pingreq():
    return b"\xc0\x00"


def disconnect(reason=0, props=(), version=V311):
    if version == V5 and (reason or props):
        body = bytes([reason])
        if props:
            body += encode_props(props)
        return packet(0xE0, body)
    return b"\xe0\x00"


def auth(reason=0, props=()):
    return packet(0xF0, bytes([reason]) + encode_props(props))


# ---------------------------------------------------------------- decoding

class Malformed(Exception):
    pass


class Props(list):
    """A list of (name, value) in wire order, with lookup helpers."""

    def get(self, name, default=None):
        for n, v in self:
            if n == name:
                return v
        return default

    def all(self, name):
        return [v for n, v in self if n == name]

    def has(self, name):
        return any(n == name for n, _ in self)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def left(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n > self.left():
            raise Malformed("need %d bytes, have %d" % (n, self.left()))
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def byte(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u32(self):
        return struct.unpack("!I", self.take(4))[0]

    def varint(self):
        mult, value = 1, 0
        for _ in range(4):
            b = self.byte()
            value += (b & 0x7F) * mult
            if not b & 0x80:
                return value
            mult *= 128
        raise Malformed("variable byte integer longer than 4 bytes")

    def binary(self):
        return self.take(self.u16())

    def string(self):
        return self.binary().decode("utf-8")

    def rest(self):
        return self.take(self.left())

    def props(self):
        length = self.varint()
        sub = Reader(self.take(length))
        out = Props()
        while sub.left():
            pid = sub.varint()
            if pid not in PROPERTIES:
                raise Malformed("unknown property 0x%02x" % pid)
            name, kind = PROPERTIES[pid]
            if kind == "byte":
                v = sub.byte()
            elif kind == "u16":
                v = sub.u16()
            elif kind == "u32":
                v = sub.u32()
            elif kind == "varint":
                v = sub.varint()
            elif kind == "str":
                v = sub.string()
            elif kind == "bin":
                v = sub.binary()
            else:
                v = (sub.string(), sub.string())
            out.append((name, v))
        return out


class Packet:
    """A decoded packet. Fields present depend on the type:
    CONNACK: session_present, reason, props
    PUBLISH: dup, qos, retain, topic, pid, props, payload
    PUBACK/PUBREC/PUBREL/PUBCOMP: pid, reason, props
    SUBACK/UNSUBACK: pid, props, reasons
    DISCONNECT/AUTH: reason, props
    """

    def __init__(self, first_byte, body):
        self.type = first_byte >> 4
        self.flags = first_byte & 0x0F
        self.raw = bytes([first_byte]) + varint(len(body)) + body
        self.props = Props()
        self.reason = 0

    @property
    def name(self):
        return TYPE_NAMES.get(self.type, "TYPE%d" % self.type)

    def __repr__(self):
        fields = {k: v for k, v in self.__dict__.items() if k not in ("raw", "type", "flags")}
        return "<%s %r>" % (self.name, fields)


def parse(first_byte, body, version):
    p = Packet(first_byte, body)
    r = Reader(body)
    t = p.type
    if t == CONNACK:
        p.session_present = bool(r.byte() & 0x01)
        p.reason = r.byte()
        if version == V5 and r.left():
            p.props = r.props()
    elif t == PUBLISH:
        p.dup = bool(p.flags & 0x08)
        p.qos = (p.flags >> 1) & 0x03
        p.retain = bool(p.flags & 0x01)
        p.topic = r.string()
        p.pid = r.u16() if p.qos else None
        if version == V5:
            p.props = r.props()
        p.payload = r.rest()
    elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        p.pid = r.u16()
        if r.left():
            p.reason = r.byte()
        if r.left():
            p.props = r.props()
    elif t in (SUBACK, UNSUBACK):
        p.pid = r.u16()
        if version == V5:
            p.props = r.props()
        p.reasons = list(r.rest())
    elif t in (DISCONNECT, AUTH):
        if r.left():
            p.reason = r.byte()
        if r.left():
            p.props = r.props()
    elif t == PINGRESP:
        pass
    else:
        p.body = r.rest()
    return p


# ---------------------------------------------------------------- client

class Closed(Exception):
    """The broker closed the connection."""


class RawClient:
    """One TCP connection speaking raw MQTT. recv() returns the next parsed packet."""

    def __init__(self, port, host="127.0.0.1", version=V311, timeout=5.0, source=None):
        """source: the local address to connect from (e.g. "127.0.0.2": all of 127/8 is
        loopback, so a test can be a second client address)."""
        self.version = version
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=None if source is None else (source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.closed = False

    # -- transport
    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no packet from broker in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no packet from broker in time")
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed("connection closed by broker")
        self.buf += chunk

    def _frame(self):
        """Returns (first_byte, body, size) if a whole packet is buffered, else None."""
        if len(self.buf) < 2:
            return None
        mult, length, i = 1, 0, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            length += (b & 0x7F) * mult
            i += 1
            if not b & 0x80:
                break
            mult *= 128
            if i > 4:
                raise Malformed("bad remaining length from broker")
        if len(self.buf) < i + length:
            return None
        first, body = self.buf[0], self.buf[i:i + length]
        self.buf = self.buf[i + length:]
        return first, body, i + length

    def recv(self, timeout=None):
        """Next packet; raises TimeoutError or Closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self._frame()
            if frame is not None:
                p = parse(frame[0], frame[1], self.version)
                p.size = frame[2]  # bytes on the wire, fixed header included
                return p
            if self.closed:
                raise Closed("connection closed by broker")
            self._fill(deadline)

    def expect(self, ptype, timeout=None):
        p = self.recv(timeout)
        assert p.type == ptype, "expected %s, got %r" % (TYPE_NAMES[ptype], p)
        return p

    def expect_nothing(self, seconds):
        """Asserts that no packet arrives (and the connection stays open) for `seconds`."""
        try:
            p = self.recv(seconds)
        except TimeoutError:
            return
        raise AssertionError("unexpected packet %r" % p)

    def wait_closed(self, timeout=None):
        """Reads until the broker closes the connection; returns the packets read before.
        Fails if the connection is still open after `timeout`."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        packets = []
        while True:
            try:
                packets.append(self.recv(max(0.0, deadline - time.monotonic())))
            except Closed:
                return packets
            except TimeoutError:
                raise AssertionError("connection still open; received %r" % packets)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- protocol helpers
    def connect(self, client_id="", **kw):
        """Sends CONNECT and returns the CONNACK (whatever its reason code)."""
        kw.setdefault("version", self.version)
        self.send(connect(client_id, **kw))
        return self.expect(CONNACK)

    def connect_ok(self, client_id="", **kw):
        ack = self.connect(client_id, **kw)
        assert ack.reason == 0, "connection refused: %r" % ack
        return ack

    def subscribe(self, filters, pid=1, props=()):
        """filters: list of (filter, options) or a single filter string (QoS 0)."""
        if isinstance(filters, str):
            filters = [(filters, 0)]
        self.send(subscribe(pid, filters, props, self.version))
        ack = self.expect(SUBACK)
        assert ack.pid == pid
        return ack

    def unsubscribe(self, filters, pid=1, props=()):
        self.send(unsubscribe(pid, filters, props, self.version))
        ack = self.expect(UNSUBACK)
        assert ack.pid == pid
        return ack

    def publish(self, topic, payload=b"", qos=0, retain=False, dup=False, pid=None, props=()):
        self.send(publish(topic, payload, qos, retain, dup, pid, props, self.version))

    def publish_acked(self, topic, payload=b"", qos=1, pid=1, retain=False, props=()):
        """Publishes at QoS 1 or 2 and completes the flow; returns the PUBACK or PUBCOMP."""
        self.publish(topic, payload, qos, retain, pid=pid, props=props)
        if qos == 1:
            ack = self.expect(PUBACK)
            assert ack.pid == pid
            return ack
        rec = self.expect(PUBREC)
        assert rec.pid == pid
        self.send(pubrel(pid, version=self.version))
        comp = self.expect(PUBCOMP)
        assert comp.pid == pid
        return comp

    def ack(self, p):
        """Sends the acknowledgement a received QoS 1/2 PUBLISH (or PUBREL) needs."""
        if p.type == PUBLISH and p.qos == 1:
            self.send(puback(p.pid, version=self.version))
        elif p.type == PUBLISH and p.qos == 2:
            self.send(pubrec(p.pid, version=self.version))
        elif p.type == PUBREL:
            self.send(pubcomp(p.pid, version=self.version))

    def recv_publish(self, timeout=None, ack=True):
        """Next PUBLISH, completing QoS 2 flows transparently when ack=True."""
        while True:
            p = self.recv(timeout)
            if p.type == PUBREL and ack:
                self.ack(p)
                continue
            assert p.type == PUBLISH, "expected PUBLISH, got %r" % p
            if ack:
                self.ack(p)
            return p

    def until(self, payload, timeout=None):
        """The PUBLISH packets received before the one carrying `payload` (a marker),
        acknowledged as they come."""
        before = []
        while True:
            p = self.recv_publish(timeout)
            if p.payload == payload:
                return before
            before.append(p)

    def ping(self, timeout=None):
        self.send(pingreq())
        self.expect(PINGRESP, timeout)

    def disconnect(self, reason=0, props=(), wait=False):
        """Sends DISCONNECT; wait=True then waits until the broker has closed the
        connection, i.e. it has processed the DISCONNECT (the session is offline)."""
        self.send(disconnect(reason, props, self.version))
        if wait:
            self.wait_closed()
        self.close()
