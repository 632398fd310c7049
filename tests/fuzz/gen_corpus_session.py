#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_session (tests/fuzz/corpus-session/).

    tests/fuzz/gen_corpus_session.py [DIR]

Each seed is a script in the byte format fuzz_session.cpp reads: one byte
of config variant, then steps. The helpers below emit the bytes each step
reads, in the order the harness reads them, so a seed means what its name
says: a login with roles, a will with a payload the model refuses, a QoS 2
flow to an offline session, a SCRAM login, a session takeover, ...
Regenerate after changing the format (and say so in the commit).
"""
import os
import sys

# ---- dictionaries (indexes into the arrays of fuzz_session.cpp) ----------
USERS = ["ana", "olga", "erik", "plc", "nobody", "mallory", "", "anonymous"]
CLIENT_IDS = ["c1", "c2", "c3", "", "plc", "dev-1", "$bridge/x", "ana", "a/b", "+"]
TOPICS = {
    "temperature": 0, "pressure": 1, "state": 2, "line-oee": 3, "press-oee": 4, "cmd-stop": 5,
    "gate-cmd": 6, "alarm": 7, "robot-speed": 8, "robot-state": 9, "robot-cmd": 10, "leipzig-oee": 11,
    "welder-current": 12, "leipzig-state": 13, "no-class": 14, "unknown-class": 15, "bad-site": 16,
    "bad-equipment": 17, "acme": 18, "ana-inbox": 19, "olga-inbox": 20, "erik-notes": 21,
    "plc-device": 22, "c1-device": 23, "sandbox": 24, "quarantine": 25, "plc-write": 26, "audit": 27,
    "sys-connected": 28, "share-topic": 29, "a/b": 30, "empty-level": 31, "slash": 32, "empty": 33,
    "wildcard": 34, "hash": 35, "bad-utf8": 36, "nul": 37, "placeholder": 38, "nosubscribe": 39,
}
FILTERS = {
    "#": 0, "+/#": 1, "acme/#": 2, "line-oee": 3, "equipment-oee": 4, "dresden": 5, "line-2": 6,
    "press-7-state": 7, "gates": 8, "leipzig": 9, "telemetry": 10, "$SYS": 11, "audit": 12,
    "quarantine": 13, "sandbox": 14, "ana-sandbox": 15, "inboxes": 16, "devices": 17, "share": 18,
    "share-all": 19, "share-empty": 20, "share-no-filter": 21, "+": 22, "+/+": 23, "bad-hash": 24,
    "bad-hash2": 25, "empty": 26, "plc-write": 27, "nosubscribe": 28, "placeholder": 29,
    "bad-utf8": 30, "a/b": 31,
}
PAYLOADS = {
    "telemetry": 0, "telemetry-bool": 1, "state": 2, "oee": 3, "alarm": 4, "cmd-stop": 5,
    "cmd-set-1e999": 6, "value-1e999": 7, "value--1e999": 8, "oee-1e999": 9, "huge-int": 10,
    "dup-key": 11, "dup-state": 12, "bom": 13, "bad-utf8": 14, "cut-utf8": 15, "surrogate": 16,
    "nul-escape": 17, "nan": 18, "bad-date": 19, "not-a-date": 20, "deep-array": 21,
    "deep-object": 22, "empty": 23, "null": 24, "1e999": 25, "-0": 26, "garbage": 27,
    "denormal": 28, "overflow": 29,
}
KINDS = {"connect": 0, "subscribe": 2, "publish": 3, "ack": 6, "unsubscribe": 7, "ping": 8,
         "disconnect": 9, "auth": 10, "raw": 11, "close": 12, "wait": 13}

# Config variant bits.
ROLES, WIDE_FILTER, TIGHT_LIMITS, IDENTITY_LIMITS, AUDIT, ACCESS = 0x01, 0x02, 0x04, 0x08, 0x10, 0x80
MODEL_NONE, MODEL_REJECT, MODEL_QUARANTINE, MODEL_WARN = 0x00, 0x20, 0x40, 0x60

# Step mode bits: 0x80 no pump after the step; low nibble 13 flip a bit,
# 14 truncate, 15 split (param in bits 4-6).
NORMAL, NO_PUMP = 0x00, 0x80


def step(kind, client, mode=NORMAL):
    return bytes([(KINDS[kind] << 2) | client, mode])


def topic(name):
    return bytes([TOPICS[name]])


def payload(name, bom=False):
    # k % 4 == 0: from the dictionary; 0x40: BOM in front
    return bytes([0x40 if bom else 0x00, PAYLOADS[name]])


def user_props(n):
    out = bytes([n])
    for i in range(n):
        out += bytes([1, 3]) + b"key" + bytes([2]) + b"v" + bytes([i])
    return out


def connect(client, user=None, password="good", version=5, clean=True, will=None, client_id=None,
            session_expiry=None, receive_maximum=None, max_packet=None, alias_max=None, auto_ack=True,
            mode=NORMAL, fresh=False, keep_alive=60):
    """password: good, bad, none (user without one), scram, scram-later."""
    f = (1 if version == 4 else 0) | (2 if clean else 0) | (4 if will else 0) | (8 if auto_ack else 0)
    if fresh:
        f |= 0x80
    out = step("connect", client, mode) + bytes([f])
    out += bytes([keep_alive if keep_alive not in (0, 60) else (0 if keep_alive == 0 else 1)])
    default_id = ["c1", "c2", "c3", "dev-1"][client]
    out += bytes([CLIENT_IDS.index(client_id if client_id is not None else default_id)])
    if user is None:
        cred = 0
    else:
        cred = {"good": 1, "bad": 2, "none": 3, "scram": 5, "scram-later": 6}[password]
    out += bytes([cred, USERS.index(user) if user is not None else 0])
    if cred in (5, 6) and version == 5:
        out += bytes([7])  # nonce digit
    if version == 5:
        pf, rest = 0, b""
        for bit, value in ((0x01, session_expiry), (0x02, receive_maximum), (0x04, max_packet),
                           (0x08, alias_max)):
            if value is not None:
                pf |= bit
                rest += bytes([value])  # an index into the harness's list of values
        out += bytes([pf]) + rest
    if will:
        wtopic, wpayload, wqos, wretain = will
        out += topic(wtopic) + payload(wpayload) + bytes([wqos | (4 if wretain else 0)])
    return out


def subscribe(client, *filters, qos=1, sub_id=False, mode=NORMAL, retain_handling=0):
    out = step("subscribe", client, mode) + bytes([0])  # next packet id
    out += bytes([len(filters) - 1])
    for f in filters:
        out += bytes([FILTERS[f], qos | (retain_handling << 4)])
    out += bytes([1 if sub_id else 0])
    if sub_id:
        out += bytes([1])  # subscription identifier 2
    return out


def unsubscribe(client, *filters):
    out = step("unsubscribe", client) + bytes([0, len(filters) - 1])
    for f in filters:
        out += bytes([FILTERS[f]])
    return out + bytes([0])


def publish(client, t, p, qos=0, retain=False, alias=None, use_alias=False, expiry=None, props=False,
            mode=NORMAL, bom=False):
    out = step("publish", client, mode) + topic(t) + payload(p, bom)
    extra = alias is not None or expiry is not None or props
    out += bytes([qos | (4 if retain else 0) | (0x10 if extra else 0)])
    if qos:
        out += bytes([0])  # next packet id
    if extra:
        # Read in bit order: alias, payload format, expiry, content type,
        # response topic and correlation data, user properties.
        pf, rest = 0, b""
        if alias is not None:
            pf |= 0x01 | (0x02 if use_alias else 0)
            rest += bytes([alias - 1])  # alias 1, 2 or 3
        if props:
            pf |= 0x04 | 0x10 | 0x20 | 0x40
            rest += bytes([1])  # payload format indicator 1
        if expiry is not None:
            pf |= 0x08
            rest += bytes([expiry])  # index: 0 -> 0 s, 1 -> 1 s, 2 -> 3600 s
        if props:
            rest += bytes([1])  # content type application/json
            rest += topic("ana-inbox") + bytes([4]) + b"corr" + user_props(2)
        out += bytes([pf]) + rest
    return out


def ack(client, mode=NORMAL):
    return step("ack", client, mode) + bytes([0])  # the oldest pending id


def ping(client):
    return step("ping", client)


def disconnect(client, code=0, session_expiry=None):
    """code: 0 normal, 1 with will, 2 unspecified error."""
    k = code | (0x10 if session_expiry is not None else 0)
    out = step("disconnect", client) + bytes([k])
    if session_expiry is not None:
        out += bytes([session_expiry])
    return out


def auth(client, good=True):
    return step("auth", client) + bytes([0 if good else 1])


def raw(client, data):
    return step("raw", client) + bytes([len(data)]) + data


def close(client, reset=False):
    return step("close", client, 1 if reset else 0)


def wait(ms):
    return step("wait", 0, ms)


SEEDS = {
    "anonymous_pubsub_qos012":
        bytes([MODEL_NONE]) + connect(0) + connect(1) + subscribe(1, "#", qos=2)
        + publish(0, "a/b", "telemetry") + publish(0, "a/b", "state", qos=1)
        + publish(0, "a/b", "oee", qos=2) + ping(1) + disconnect(0) + disconnect(1),
    "roles_operator_sees_line2":
        bytes([ROLES | MODEL_REJECT]) + connect(0, "olga") + subscribe(0, "line-2", qos=1)
        + connect(1, "erik") + publish(1, "temperature", "telemetry", qos=1)
        + publish(1, "state", "state", qos=1, retain=True) + publish(1, "robot-speed", "telemetry")
        + ack(0) + disconnect(0) + disconnect(1),
    "roles_analyst_wide_filter":
        bytes([ROLES | WIDE_FILTER | MODEL_REJECT]) + connect(0, "ana") + subscribe(0, "acme/#", qos=1)
        + connect(1, "erik") + publish(1, "line-oee", "oee", qos=1, retain=True)
        + publish(1, "temperature", "telemetry") + publish(1, "press-oee", "oee") + disconnect(1),
    "roles_analyst_refused_wide":
        bytes([ROLES | MODEL_REJECT]) + connect(0, "ana") + subscribe(0, "acme/#", "line-oee", "#")
        + connect(1, "olga") + publish(1, "line-oee", "oee", retain=True) + disconnect(0),
    "roles_bad_password_then_backoff":
        bytes([ROLES | AUDIT | MODEL_REJECT]) + connect(3, "erik") + subscribe(3, "$SYS", qos=0)
        + connect(0, "olga", "bad") + connect(1, "olga", "bad") + connect(2, "olga", "bad")
        + connect(0, "olga", "bad", fresh=True) + connect(1, "mallory", "good", fresh=True)
        + connect(2, "ana", "none", fresh=True),
    "roles_nobody_receives_nothing":
        bytes([ROLES | WIDE_FILTER | MODEL_NONE]) + connect(0, "nobody") + subscribe(0, "#", "$SYS", "sandbox")
        + connect(1) + publish(1, "sandbox", "telemetry", retain=True) + publish(1, "a/b", "telemetry"),
    "roles_placeholders":
        bytes([ROLES | MODEL_NONE]) + connect(0, "ana") + subscribe(0, "ana-sandbox", "inboxes", "placeholder")
        + connect(1, "olga") + publish(1, "ana-inbox", "telemetry", qos=1) + publish(1, "olga-inbox", "empty")
        + connect(2, "plc", client_id="plc") + subscribe(2, "devices")
        + publish(2, "plc-device", "telemetry", qos=2) + publish(2, "c1-device", "telemetry"),
    "roles_commands":
        bytes([ROLES | AUDIT | MODEL_REJECT]) + connect(0, "erik") + subscribe(0, "dresden", "audit")
        + connect(1, "olga") + publish(1, "cmd-stop", "cmd-stop", qos=1) + publish(0, "gate-cmd", "cmd-stop", qos=1)
        + publish(0, "plc-write", "cmd-stop") + publish(1, "robot-cmd", "cmd-stop", qos=1),
    "scram_login":
        bytes([ROLES | MODEL_REJECT]) + connect(0, "erik", "scram") + subscribe(0, "dresden")
        + connect(1, "olga", "scram-later") + auth(1, good=True) + publish(1, "state", "state", retain=True),
    "scram_bad_proof":
        bytes([ROLES | AUDIT | MODEL_NONE]) + connect(0, "erik") + subscribe(0, "audit")
        + connect(1, "olga", "scram-later") + auth(1, good=False)
        + connect(2, "mallory", "scram") + connect(3, "olga", "scram-later") + ping(3),
    "will_refused_by_model":
        bytes([MODEL_REJECT]) + connect(0) + subscribe(0, "#")
        + connect(1, will=("temperature", "huge-int", 1, False), client_id="c2")
        + connect(2, will=("state", "state", 1, True), client_id="c3")
        + close(1, reset=True) + close(2) + ping(0),
    "will_quarantined":
        bytes([MODEL_QUARANTINE]) + connect(0) + subscribe(0, "quarantine", "#")
        + connect(1, will=("robot-state", "dup-state", 0, True))
        + publish(1, "robot-speed", "bad-utf8") + close(1),
    "will_warn_leipzig":
        bytes([MODEL_WARN]) + connect(0) + subscribe(0, "leipzig")
        + connect(1, will=("welder-current", "huge-int", 2, False)) + publish(1, "leipzig-oee", "nan", retain=True)
        + disconnect(1, code=1),
    "model_payloads_reject":
        bytes([MODEL_REJECT]) + connect(0, version=5) + subscribe(0, "#", qos=2)
        + publish(0, "temperature", "dup-key", qos=1) + publish(0, "temperature", "surrogate", qos=1)
        + publish(0, "temperature", "deep-array", qos=2) + publish(0, "temperature", "telemetry", qos=2, bom=True)
        + publish(0, "line-oee", "oee") + publish(0, "state", "state", qos=1)
        + publish(0, "alarm", "alarm", qos=1) + publish(0, "unknown-class", "telemetry", qos=1)
        + publish(0, "bad-equipment", "telemetry", qos=1),
    "model_payloads_v311":
        bytes([MODEL_REJECT]) + connect(0, version=4) + subscribe(0, "acme/#", qos=1)
        + publish(0, "temperature", "bad-date", qos=1) + publish(0, "state", "state", qos=1, retain=False)
        + publish(0, "cmd-stop", "cmd-stop", qos=1, retain=True) + publish(0, "alarm", "deep-object", qos=2),
    "offline_session_v311":
        bytes([MODEL_NONE]) + connect(0, version=4, clean=False, auto_ack=False) + subscribe(0, "a/b", qos=2)
        + disconnect(0) + connect(1) + publish(1, "a/b", "telemetry", qos=2) + publish(1, "a/b", "state", qos=1)
        + connect(0, version=4, clean=False, auto_ack=False) + ack(0) + ack(0) + ack(0) + ack(0),
    "offline_session_v5_expiry":
        bytes([MODEL_NONE]) + connect(0, clean=False, session_expiry=3, auto_ack=False)
        + subscribe(0, "sandbox", qos=2) + close(0) + connect(1) + publish(1, "sandbox", "telemetry", qos=2)
        + connect(0, clean=False, session_expiry=3) + ack(0) + disconnect(0, session_expiry=1),
    "takeover_same_client_id":
        bytes([MODEL_NONE]) + connect(0, client_id="c1", clean=False, session_expiry=3)
        + subscribe(0, "#", qos=1) + connect(1, client_id="c1", clean=False, session_expiry=3)
        + connect(2, client_id="c1", version=4) + publish(2, "a/b", "telemetry", qos=1) + ping(1),
    "takeover_other_identity":
        bytes([ROLES | MODEL_NONE]) + connect(0, "erik", client_id="c1", clean=False, session_expiry=3)
        + subscribe(0, "dresden", qos=1) + close(0)
        + connect(2, "olga") + publish(2, "temperature", "telemetry", qos=1)
        + connect(1, "ana", client_id="c1", clean=False, session_expiry=3) + ping(1),
    "topic_aliases":
        bytes([MODEL_NONE]) + connect(0, alias_max=1) + subscribe(0, "#")
        + connect(1) + publish(1, "a/b", "telemetry", alias=1) + publish(1, "a/b", "state", alias=1, use_alias=True)
        + publish(1, "sandbox", "oee", alias=3, use_alias=True) + publish(1, "sandbox", "oee", props=True, expiry=1),
    "tight_limits_slow_subscriber":
        bytes([TIGHT_LIMITS | MODEL_NONE]) + connect(0, receive_maximum=0, auto_ack=False)
        + subscribe(0, "#", qos=2) + connect(1)
        + b"".join(publish(1, "sandbox", "telemetry", qos=1 + i % 2) for i in range(8))
        + ack(0) + ack(0) + publish(1, "sandbox", "deep-array", qos=1),
    "tight_limits_max_packet":
        bytes([TIGHT_LIMITS | MODEL_NONE]) + connect(0, max_packet=0) + subscribe(0, "#", qos=1)
        + connect(1) + publish(1, "sandbox", "oee", qos=1, props=True) + publish(1, "sandbox", "telemetry"),
    "identity_limits":
        bytes([IDENTITY_LIMITS | ROLES | MODEL_NONE]) + connect(0) + connect(1) + connect(2)
        + b"".join(publish(0, "sandbox", "telemetry") for _ in range(7)) + subscribe(1, "sandbox", "inboxes", "#"),
    "access_rules":
        bytes([ACCESS | MODEL_WARN]) + connect(0) + subscribe(0, "nosubscribe", "leipzig", "#")
        + publish(0, "leipzig-state", "state", qos=1) + publish(0, "nosubscribe", "telemetry"),
    "shared_subscriptions":
        bytes([MODEL_NONE]) + connect(0) + connect(1) + subscribe(0, "share", "share-all", qos=1)
        + subscribe(1, "share-all", "share-empty", "share-no-filter") + publish(2, "a/b", "telemetry")
        + connect(2) + publish(2, "share-topic", "telemetry", qos=1) + publish(2, "a/b", "telemetry", qos=2),
    "bad_filters_and_topics":
        bytes([MODEL_REJECT]) + connect(0) + subscribe(0, "bad-hash", "bad-hash2", "empty")
        + connect(1) + subscribe(1, "bad-utf8") + connect(2) + publish(2, "wildcard", "telemetry")
        + connect(3) + publish(3, "nul", "telemetry"),
    "raw_garbage_after_connect":
        bytes([MODEL_NONE]) + connect(0) + raw(0, bytes([0x30, 0x7f, 0x00, 0x03]) + b"a/b")
        + raw(1, bytes([0x10, 0xff, 0xff, 0xff, 0xff])) + raw(2, b"GET / HTTP/1.1\r\n\r\n")
        + connect(3) + raw(3, bytes([0xe0, 0x00])),
    "split_and_pipelined":
        bytes([ROLES | MODEL_REJECT]) + connect(0, "erik", mode=NO_PUMP) + subscribe(0, "dresden", mode=0x1F)
        + publish(0, "state", "state", qos=1, retain=True, mode=NO_PUMP) + unsubscribe(0, "dresden")
        + publish(0, "state", "state", qos=2, mode=0x3D),
    "deep_json_and_huge_numbers":
        bytes([MODEL_REJECT]) + connect(0) + subscribe(0, "#")
        + publish(0, "cmd-stop", "deep-object", qos=1) + publish(0, "line-oee", "huge-int", retain=True)
        + publish(0, "temperature", "nan") + publish(0, "temperature", "denormal")
        + publish(0, "temperature", "-0"),
    "unsubscribe_and_resubscribe":
        bytes([MODEL_NONE]) + connect(0) + subscribe(0, "#", "a/b", qos=1, sub_id=True, retain_handling=1)
        + connect(1) + publish(1, "a/b", "telemetry", retain=True) + unsubscribe(0, "#", "a/b", "+")
        + subscribe(0, "a/b", qos=2, retain_handling=2) + publish(1, "a/b", "empty", retain=True),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus-session")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {out}")


if __name__ == "__main__":
    main()
