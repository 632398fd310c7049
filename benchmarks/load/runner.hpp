// strata-bench: the event loop (one thread, epoll, non-blocking sockets)
// and the scenarios on top of it.
#pragma once

#include "benchmarks/load/histogram.hpp"
#include "benchmarks/load/options.hpp"
#include "benchmarks/load/proc.hpp"
#include "benchmarks/load/wire.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace strata::bench {

// Everything one run measured; printed as one JSON line by to_json().
struct result {
    bool ok = true;
    std::string error;

    // traffic
    std::uint64_t published = 0;
    std::uint64_t acknowledged = 0;  // QoS 1: PUBACK < 0x80; QoS 2: PUBCOMP after a PUBREC < 0x80
    std::uint64_t refused = 0;       // QoS 1: PUBACK >= 0x80; QoS 2: PUBREC >= 0x80
    std::uint64_t unsettled = 0;     // QoS 1/2 exchanges still open when the drain ended
    std::uint64_t expected = 0;      // deliveries the subscriptions call for (QoS 1/2: of acknowledged messages)
    std::uint64_t received = 0;      // PUBLISH packets the subscribers got
    std::uint64_t unique = 0;        // first deliveries of expected messages
    std::uint64_t unacknowledged_received = 0;  // first deliveries of refused or unsettled messages
    std::uint64_t lost = 0;          // expected - unique
    std::uint64_t duplicates = 0;    // a message delivered again to the same subscriber
    std::uint64_t gap_events = 0;    // sequence number ahead of the next expected one
    std::uint64_t out_of_order = 0;  // a message that arrived after a later one of its publisher
    std::uint64_t foreign = 0;       // payloads not from this run
    std::uint64_t window_deliveries = 0;
    double window_s = 0;             // the measured window (after warm-up, until publishing stops)
    double drain_s = 0;
    std::uint64_t stray_acks = 0;
    std::uint64_t max_send_lag_us = 0;  // fixed rate: how far publishing fell behind schedule
    int server_receive_maximum = 0;     // MQTT 5 CONNACK (0: not sent)
    histogram latency;

    // broker and machine over the measured window
    double broker_cpu_s = -1;
    double broker_cpu_total_s = -1;  // whole run, setup included
    double tool_cpu_s = 0;
    double machine_busy = -1;        // 0..1 over all cores
    long broker_rss_start_kib = -1;
    long broker_rss_kib = -1;        // at the end of publishing / after holding / after storing
    long broker_rss_max_kib = -1;
    std::vector<std::pair<double, long>> rss_curve;
    double publish_start_s = 0;      // offsets into rss_curve's time axis
    double publish_end_s = 0;

    // conns
    int connected = 0;
    int connect_errors = 0;
    int closed_by_broker = 0;
    double connect_s = 0;

    // retained
    std::uint64_t retained_got = 0;
    double retained_publish_s = 0;
    double retained_receive_s = 0;
    long rss_after_store_kib = -1;
    bool stalled = false;            // stopped: nothing new for --stall-timeout
};

result run(const options& opts);

std::string to_json(const options& opts, const result& r);

}  // namespace strata::bench
