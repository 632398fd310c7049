// strata-bench: command-line options.
#pragma once

#include <cstdint>
#include <string>
#include <sys/types.h>

namespace strata::bench {

enum class scenario : std::uint8_t { fanin, fanout, pairs, conns, retained };

struct options {
    std::string scenario_name = "fanin";  // as given (latency/soak/overload are presets)
    scenario kind = scenario::fanin;
    std::string host = "127.0.0.1";
    std::uint16_t port = 1883;
    std::uint16_t sub_port = 0;  // 0: subscribers use `port` too
    std::uint8_t level = 4;  // 4: MQTT 3.1.1, 5: MQTT 5.0
    int qos = 0;             // publish QoS 0..2
    int sub_qos = -1;        // subscription QoS 0..2; -1: same as qos
    int pubs = -1;           // -1: scenario default
    int subs = -1;
    int conns = 1000;
    int retained = 10000;
    int payload = 16;
    double duration = 10.0;  // seconds of publishing (conns: seconds held)
    double warmup = 2.0;     // seconds excluded from rate and latency
    double drain_timeout = 10.0;
    double setup_timeout = 120.0;
    double stall_timeout = 3.0;  // retained: give up when nothing new arrives this long
    double rate = 0.0;       // total publish rate msg/s; 0: as fast as the window allows
    int window = -1;         // per-publisher pacing window (messages published, not yet delivered);
                             // 0: none; -1: auto = clamp(512 / publishers per subscriber, 8, 256)
    int inflight = 32;       // QoS 1/2: open exchanges per publisher (until PUBACK / PUBCOMP)
    int batch = 64;          // most packets one publisher appends per loop iteration
    int tick_us = 250;       // timer tick for fixed-rate publishing and slow subscribers
    double sub_rate = 0.0;   // > 0: each subscriber reads at most this many msg/s (slow consumer)
    pid_t broker_pid = 0;    // > 0: read its CPU time and RSS from /proc
    int rss_sample_ms = 0;   // > 0 with broker_pid: sample the broker's RSS this often
    int source_addrs = 0;    // 0: auto (one 127.0.0.x per 15,000 connections)
    int connect_concurrency = 128;
    int keepalive = 600;
    bool retain = false;       // publishers set the retain flag (fanin, fanout, pairs, latency)
    bool sub_session = false;  // subscribers keep a persistent session (the broker stores their deliveries)
    std::string prefix = "acme";
    std::string label;       // copied into the output line
    bool verbose = false;
};

// Parses argv; on --help prints usage and exits 0; on error prints a message
// and exits 2.
options parse_options(int argc, char** argv);

}  // namespace strata::bench
