#include "benchmarks/load/options.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace strata::bench {
namespace {

constexpr const char* usage = R"(Usage: strata-bench SCENARIO [options]

A single-threaded epoll MQTT load generator. It measures what the subscribers
receive and prints ONE JSON line per run on stdout (progress goes to stderr).

Scenarios (the defaults in brackets can be overridden by the options below):
  fanin     P publishers, each on its own ISA-95 topic
            (PREFIX/plant1/areaA/lineL/cellC/pressI/temp), S subscribers on
            PREFIX/#                                        [P=10, S=1]
  fanout    P publishers on one topic, S subscribers on it   [P=1, S=100]
  pairs     N publisher/subscriber pairs, each pair its own topic  [N=50]
  latency   fanin at a fixed rate: QoS 1, --rate 10000       [P=10, S=1]
  soak      fanin QoS 1 at --rate 20000 for 60 s, broker RSS sampled every
            second (needs --broker-pid): memory under sustained traffic
  overload  fanin QoS 0, publishers at --rate 50000 unpaced (--window 0),
            one slow subscriber reading --sub-rate 5000 msg/s for 30 s, RSS
            sampled every second: memory bounded by the queue limits?
  conns     C idle connections (CONNECT, CONNACK, then nothing) held for
            --duration s; with --broker-pid reports broker RSS per connection
  retained  R retained messages on distinct topics published (QoS --qos,
            default 1, so every one is acknowledged), broker RSS sampled,
            then a fresh subscriber on '#' is timed until it has all of them

Measurement:
  Each payload starts with 16 bytes: publisher id, sequence number and the
  send time (steady clock, ns). Subscribers check, per publisher, that the
  sequence numbers arrive in order without gaps or duplicates, and record
  latency = receive time - send time into a log-linear histogram (1.6 %
  resolution). Only messages received after --warmup count towards the rate
  and the latency; after --duration publishing stops and the tool waits up to
  --drain-timeout until every QoS 1/2 exchange has ended and every expected
  message has arrived.

  expected = the messages each subscriber must receive, summed over the
             subscribers: every message of each publisher it subscribes to;
             for QoS 1/2 only the acknowledged ones (a broker that refused a
             message, or had not acknowledged it when the drain ended, need
             not deliver it; one it acknowledged it must).
  unique   = first deliveries of expected messages (per subscriber).
  lost     = expected - unique: acknowledged (QoS 0: published) messages a
             subscriber never got.
  A refused or unacknowledged message that arrives anyway is counted in
  unacknowledged_received, not in unique.

QoS 1 and 2 (--qos for the publishers, --sub-qos for the subscriptions):
  QoS 1: PUBLISH -> PUBACK. QoS 2: PUBLISH -> PUBREC, the tool sends PUBREL
  -> PUBCOMP. acknowledged = PUBACK < 0x80 or PUBCOMP after a PUBREC < 0x80;
  refused = PUBACK or PUBREC >= 0x80 (5.0 only; this ends the exchange too).
  A publisher has at most --inflight exchanges open (and no more than the
  broker's Receive Maximum under MQTT 5). Subscribers answer a QoS 1 PUBLISH
  with PUBACK, a QoS 2 one with PUBREC and its PUBREL with PUBCOMP; a QoS 2
  message counts when its PUBLISH arrives, and a resend (DUP) whose PUBREL
  has not come yet is not counted again.

Flow control ("as fast as possible" without loss):
  A publisher may have at most --window messages "in flight", where in flight
  = messages it published (less those the broker refused) - deliveries of its
  messages seen by the subscribers / number of subscribers that receive them.
  This closes the loop from the subscribers back to the publishers like a
  TCP window: the broker's queues never hold more than P x window messages
  for one subscriber, so neither broker has to drop (both Strata's and
  Mosquitto's default per-client limit is 1000 queued messages), and the
  measured rate is the sustainable delivered rate. The default window keeps
  that total near 512. QoS 1/2 publishers are additionally limited to
  --inflight open exchanges (and to the broker's Receive Maximum under
  MQTT 5). --window 0 disables pacing (blast: QoS 1/2 publishers then go as
  fast as the acknowledgements come, and a broker that acknowledges faster
  than its subscriber reads must queue, push back or lose).
  With --rate R the P publishers together send R msg/s (token bucket on a
  --tick-us timer, staggered), still limited by the windows.

Options:
  --host ADDR            broker IPv4 address                 [127.0.0.1]
  --port N               broker port                         [1883]
  --sub-port N           subscribers connect to this port instead (a second
                         broker, e.g. the far side of a bridge) [= --port]
  --mqtt V               3 (3.1.1) or 5 (5.0)                [3]
  --qos N                publish QoS 0, 1 or 2               [0]
  --sub-qos N            subscription QoS 0, 1 or 2  [= --qos; retained: 0]
  --pubs N, --subs N     publishers, subscribers
  --pairs N              pairs: N publishers and N subscribers
  --conns N              conns: connections to hold          [1000]
  --retained N           retained: topics                    [10000]
  --payload BYTES        payload size, >= 16                 [16]
  --retain 0|1           publishers set the retain flag      [0]
  --sub-session 0|1      subscribers keep persistent sessions (3.1.1 clean
                         session 0; 5.0 session expiry 3600 s), so a broker
                         that persists stores every QoS 1 delivery [0]
  --duration S           publishing time (conns: hold time)  [10]
  --warmup S             excluded from rate and latency      [2]
  --drain-timeout S      wait for in-flight messages         [10]
  --setup-timeout S      connect/subscribe phase limit       [120]
  --stall-timeout S      retained: stop when nothing new for S [3]
  --rate R               total msg/s; 0 = as fast as allowed [0]
  --window N             per-publisher pacing window; 0 = off [auto: 512 /
                         publishers per subscriber, within 8..256]
  --inflight N           QoS 1/2 open exchanges per publisher [32]
  --batch N              packets per publisher per loop turn [64]
  --tick-us N            timer tick for --rate/--sub-rate    [250]
  --sub-rate R           each subscriber reads <= R msg/s    [0 = unlimited]
  --broker-pid PID       report the broker's CPU (utime+stime) and RSS
  --rss-sample-ms N      sample the broker's RSS every N ms into rss_curve
  --source-addrs N       spread connections over 127.0.0.1..N [auto]
  --connect-concurrency N  connection handshakes in progress at once [128]
  --keepalive S          CONNECT keep-alive (PINGREQ every S/2) [600]
  --prefix P             first topic level                   [acme]
  --label TEXT           copied into the output line
  -v, --verbose          progress on stderr
  -h, --help             this text

Output fields (JSON, one line): scenario, label, mqtt, qos, pubs, subs,
payload, method, published, acknowledged, refused, unsettled (QoS 1/2
exchanges still open after the drain), expected, received (PUBLISH packets),
unique, unacknowledged_received, lost, duplicates, gap_events (a sequence
number skipped ahead), out_of_order (a skipped one that came later), foreign,
msgs_per_s (deliveries/s at the subscribers over the measured
window), latency_us {p50,p90,p99,p999,max,mean,count}, broker_cpu_s and
broker_cpu_us_per_msg (same window), tool_cpu_s, machine_busy (all cores,
0..1), broker_rss_kib, rss_per_conn_bytes (conns), retained_* fields,
rss_curve [[seconds, KiB], ...], ok, error.

Exit status: 0 when the run completed (lost messages are reported, not an
error), 1 when it could not (connection refused, setup timeout), 2 bad usage.
)";

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "strata-bench: %s (see --help)\n", msg.c_str());
    std::exit(2);
}

long to_long(std::string_view name, const std::string& v, long lo, long hi) {
    errno = 0;
    char* end = nullptr;
    const long x = std::strtol(v.c_str(), &end, 10);
    if (errno || end == v.c_str() || *end || x < lo || x > hi)
        die(std::string(name) + ": expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi) +
            ", got '" + v + "'");
    return x;
}

double to_double(std::string_view name, const std::string& v, double lo, double hi) {
    errno = 0;
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (errno || end == v.c_str() || *end || !(x >= lo && x <= hi))
        die(std::string(name) + ": expected a number in " + std::to_string(lo) + ".." + std::to_string(hi) +
            ", got '" + v + "'");
    return x;
}

void apply_preset(options& o, const std::string& s) {
    o.scenario_name = s;
    if (s == "fanin") {
        o.kind = scenario::fanin;
    } else if (s == "fanout") {
        o.kind = scenario::fanout;
    } else if (s == "pairs") {
        o.kind = scenario::pairs;
    } else if (s == "conns") {
        o.kind = scenario::conns;
    } else if (s == "retained") {
        o.kind = scenario::retained;
        o.qos = 1;
    } else if (s == "latency") {
        o.kind = scenario::fanin;
        o.qos = 1;
        o.rate = 10000;
    } else if (s == "soak") {
        o.kind = scenario::fanin;
        o.qos = 1;
        o.rate = 20000;
        o.duration = 60;
        o.rss_sample_ms = 1000;
    } else if (s == "overload") {
        o.kind = scenario::fanin;
        o.qos = 0;
        o.rate = 50000;
        o.window = 0;
        o.sub_rate = 5000;
        o.duration = 30;
        o.drain_timeout = 2;
        o.rss_sample_ms = 1000;
    } else {
        die("unknown scenario '" + s + "'");
    }
}

}  // namespace

options parse_options(int argc, char** argv) {
    options o;
    // Pass 1: the scenario sets the preset defaults that options then override.
    std::string scen;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(usage, stdout);
            std::exit(0);
        }
        if (a.rfind("-", 0) != 0) {
            if (!scen.empty()) die("more than one scenario given: '" + scen + "' and '" + a + "'");
            scen = a;
        } else if (a.find('=') == std::string::npos && a != "-v" && a != "--verbose") {
            ++i;  // skip the option's value
        }
    }
    if (scen.empty()) die("no scenario given");
    apply_preset(o, scen);

    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a.rfind("-", 0) != 0) continue;
        if (a == "-v" || a == "--verbose") {
            o.verbose = true;
            continue;
        }
        std::string v;
        if (const auto eq = a.find('='); eq != std::string::npos) {
            v = a.substr(eq + 1);
            a = a.substr(0, eq);
        } else {
            if (i + 1 >= argc) die(a + " needs a value");
            v = argv[++i];
        }
        if (a == "--host") o.host = v;
        else if (a == "--port") o.port = static_cast<std::uint16_t>(to_long(a, v, 1, 65535));
        else if (a == "--sub-port") o.sub_port = static_cast<std::uint16_t>(to_long(a, v, 1, 65535));
        else if (a == "--mqtt") {
            if (v == "3" || v == "4" || v == "311" || v == "3.1.1") o.level = 4;
            else if (v == "5" || v == "5.0") o.level = 5;
            else die("--mqtt: expected 3 or 5, got '" + v + "'");
        }
        else if (a == "--qos") o.qos = static_cast<int>(to_long(a, v, 0, 2));
        else if (a == "--sub-qos") o.sub_qos = static_cast<int>(to_long(a, v, 0, 2));
        else if (a == "--pubs") o.pubs = static_cast<int>(to_long(a, v, 0, 100000));
        else if (a == "--subs") o.subs = static_cast<int>(to_long(a, v, 0, 100000));
        else if (a == "--pairs") o.pubs = o.subs = static_cast<int>(to_long(a, v, 1, 100000));
        else if (a == "--conns") o.conns = static_cast<int>(to_long(a, v, 1, 1000000));
        else if (a == "--retained") o.retained = static_cast<int>(to_long(a, v, 1, 10000000));
        else if (a == "--payload") o.payload = static_cast<int>(to_long(a, v, 16, 65536));
        else if (a == "--duration") o.duration = to_double(a, v, 0, 86400);
        else if (a == "--warmup") o.warmup = to_double(a, v, 0, 3600);
        else if (a == "--drain-timeout") o.drain_timeout = to_double(a, v, 0, 3600);
        else if (a == "--setup-timeout") o.setup_timeout = to_double(a, v, 1, 3600);
        else if (a == "--stall-timeout") o.stall_timeout = to_double(a, v, 0.1, 3600);
        else if (a == "--rate") o.rate = to_double(a, v, 0, 1e9);
        else if (a == "--window") o.window = static_cast<int>(to_long(a, v, -1, 10000000));
        else if (a == "--inflight") o.inflight = static_cast<int>(to_long(a, v, 1, 65535));
        else if (a == "--batch") o.batch = static_cast<int>(to_long(a, v, 1, 100000));
        else if (a == "--tick-us") o.tick_us = static_cast<int>(to_long(a, v, 10, 1000000));
        else if (a == "--sub-rate") o.sub_rate = to_double(a, v, 0, 1e9);
        else if (a == "--broker-pid") o.broker_pid = static_cast<pid_t>(to_long(a, v, 1, 1L << 30));
        else if (a == "--rss-sample-ms") o.rss_sample_ms = static_cast<int>(to_long(a, v, 0, 3600000));
        else if (a == "--source-addrs") o.source_addrs = static_cast<int>(to_long(a, v, 1, 250));
        else if (a == "--connect-concurrency") o.connect_concurrency = static_cast<int>(to_long(a, v, 1, 100000));
        else if (a == "--keepalive") o.keepalive = static_cast<int>(to_long(a, v, 0, 65535));
        else if (a == "--prefix") o.prefix = v;
        else if (a == "--label") o.label = v;
        else if (a == "--retain") o.retain = to_long(a, v, 0, 1) == 1;
        else if (a == "--sub-session") o.sub_session = to_long(a, v, 0, 1) == 1;
        else die("unknown option '" + a + "'");
    }

    if (o.pubs < 0) o.pubs = o.kind == scenario::fanin ? 10 : o.kind == scenario::fanout ? 1 : o.kind == scenario::pairs ? 50 : 1;
    if (o.subs < 0) o.subs = o.kind == scenario::fanin ? 1 : o.kind == scenario::fanout ? 100 : o.kind == scenario::pairs ? 50 : 1;
    if (o.sub_qos < 0) o.sub_qos = o.kind == scenario::retained ? 0 : o.qos;
    if (o.window < 0) {
        const int per_sub = o.kind == scenario::pairs ? 1 : std::max(1, o.pubs);
        o.window = std::clamp(512 / per_sub, 8, 256);
    }
    if (o.kind == scenario::pairs && o.pubs != o.subs) die("pairs: --pubs and --subs must be equal (use --pairs N)");
    if ((o.kind == scenario::fanin || o.kind == scenario::fanout || o.kind == scenario::pairs) &&
        (o.pubs < 1 || o.subs < 1))
        die("need at least one publisher and one subscriber");
    if (o.warmup >= o.duration && o.kind != scenario::conns && o.kind != scenario::retained)
        die("--warmup must be shorter than --duration");
    if (o.prefix.empty() || o.prefix.find_first_of("+#/") != std::string::npos) die("--prefix: one topic level, no wildcards");
    if (o.rss_sample_ms > 0 && o.broker_pid == 0) o.rss_sample_ms = 0;
    return o;
}

}  // namespace strata::bench
