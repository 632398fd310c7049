"""Sparkplug B payloads by hand: the few protobuf fields (sparkplug_b.proto) that the
integration tests (tests/integration/test_sparkplug.py) and benchmarks/sparkplug_cost
need, including what no well-behaved edge node sends."""

import struct
import time


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wire, data):
    if wire == 0:
        return varint(num << 3) + varint(data)
    if wire == 1:
        return varint(num << 3 | 1) + data
    return varint(num << 3 | 2) + varint(len(data)) + data


DATATYPE = {"Int8": 1, "Int32": 3, "Int64": 4, "UInt64": 8, "Double": 10, "Boolean": 11, "String": 12}


def metric(name=None, alias=None, datatype=None, value=None):
    out = b""
    if name is not None:
        out += field(1, 2, name.encode())
    if alias is not None:
        out += field(2, 0, alias)
    if datatype is not None:
        out += field(4, 0, DATATYPE[datatype])
    if isinstance(value, bool):
        out += field(14, 0, int(value))
    elif isinstance(value, int):
        out += field(11, 0, value & 0xFFFFFFFFFFFFFFFF)
    elif isinstance(value, float):
        out += field(13, 1, struct.pack("<d", value))
    elif isinstance(value, str):
        out += field(15, 2, value.encode())
    return out


def payload(metrics, seq=None, timestamp=None):
    out = field(1, 0, timestamp if timestamp is not None else int(time.time() * 1000))
    for m in metrics:
        out += field(2, 2, m)
    if seq is not None:
        out += field(3, 0, seq)
    return out
