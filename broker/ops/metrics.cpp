// The scrape: broker counters and gauges, namespace checks, the process.
#include "broker/ops/metrics.hpp"

#include "broker/hosts/bridge_host.hpp"
#include "broker/core/broker_core.hpp"
#include "broker/hosts/opcua_host.hpp"
#include "broker/hosts/sparkplug_host.hpp"
#include "namespace/model_stats.hpp"

#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <vector>

namespace strata::broker::ops {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using labels = std::vector<ClientMetric::Label>;

constexpr std::array<const char*, 3> qos_labels{"0", "1", "2"};

class family_builder {
public:
    family_builder& counter(std::string name, std::string help) { return begin(std::move(name), std::move(help), MetricType::Counter); }
    family_builder& gauge(std::string name, std::string help) { return begin(std::move(name), std::move(help), MetricType::Gauge); }

    family_builder& value(double v, labels l = {}) {
        ClientMetric m;
        m.label = std::move(l);
        if (out_.back().type == MetricType::Counter) m.counter.value = v;
        else m.gauge.value = v;
        out_.back().metric.push_back(std::move(m));
        return *this;
    }

    // One sample per QoS from a per-QoS array.
    family_builder& by_qos(const std::array<std::uint64_t, 3>& v) {
        for (std::size_t q = 0; q < v.size(); ++q) value(static_cast<double>(v[q]), {{"qos", qos_labels[q]}});
        return *this;
    }

    std::vector<MetricFamily> take() { return std::move(out_); }

private:
    family_builder& begin(std::string name, std::string help, MetricType type) {
        out_.push_back(MetricFamily{std::move(name), std::move(help), type, {}});
        return *this;
    }
    std::vector<MetricFamily> out_;
};

struct process_sample {
    double cpu_seconds = 0;
    double resident_bytes = 0;
    double open_fds = 0;
};

process_sample sample_process() {
    process_sample p;
    {
        // /proc/self/stat: fields 14 and 15 are user and system time in
        // clock ticks; field 2 (the command) may contain spaces, so count
        // from its closing parenthesis.
        std::ifstream f("/proc/self/stat");
        std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        const auto close = text.rfind(')');
        if (close != std::string::npos) {
            std::istringstream in(text.substr(close + 2));
            std::string field;
            double utime = 0, stime = 0;
            for (int i = 3; i <= 15 && (in >> field); ++i) {
                if (i == 14) utime = std::stod(field);
                if (i == 15) stime = std::stod(field);
            }
            p.cpu_seconds = (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
        }
    }
    {
        std::ifstream f("/proc/self/statm");
        double size = 0, resident = 0;
        if (f >> size >> resident) p.resident_bytes = resident * static_cast<double>(::sysconf(_SC_PAGESIZE));
    }
    std::error_code ec;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) {
        p.open_fds += 1;
    }
    return p;
}

void add_broker(family_builder& b, core::broker_core& core) {
    const auto t = core.counters().sum();
    b.gauge("strata_connections", "Open client network connections (MQTT over TCP, TLS and WebSocket)")
        .value(static_cast<double>(core.connection_count()));
    b.gauge("strata_clients_connected", "Clients past a successful CONNECT")
        .value(static_cast<double>(core.counters().clients_connected.load(std::memory_order_relaxed)));
    b.counter("strata_connections_accepted_total", "Network connections accepted")
        .value(static_cast<double>(t.connections_accepted));
    b.counter("strata_connections_refused_total", "Connections refused or failed before CONNACK success, by reason");
    for (std::size_t r = 0; r < core::refusal_labels.size(); ++r)
        b.value(static_cast<double>(t.connections_refused[r]), {{"reason", core::refusal_labels[r]}});
    b.counter("strata_messages_received_total", "PUBLISH packets received, by QoS").by_qos(t.publish_received_qos);
    b.counter("strata_messages_sent_total", "PUBLISH packets sent, by QoS").by_qos(t.publish_sent_qos);
    b.counter("strata_payload_received_bytes_total", "Payload bytes of PUBLISH packets received, by QoS")
        .by_qos(t.payload_received_qos);
    b.counter("strata_payload_sent_bytes_total", "Payload bytes of PUBLISH packets sent, by QoS")
        .by_qos(t.payload_sent_qos);
    b.counter("strata_packets_received_total", "MQTT control packets received").value(static_cast<double>(t.messages_received));
    b.counter("strata_packets_sent_total", "MQTT PUBLISH packets sent").value(static_cast<double>(t.messages_sent));
    b.counter("strata_received_bytes_total", "Bytes received from clients (MQTT stream)").value(static_cast<double>(t.bytes_received));
    b.counter("strata_sent_bytes_total", "Bytes written to clients (MQTT stream)").value(static_cast<double>(t.bytes_sent));
    b.counter("strata_messages_dropped_total", "Messages not delivered, by reason")
        .value(static_cast<double>(t.dropped_queue_full), {{"reason", "queue_full"}})
        .value(static_cast<double>(t.dropped_expired), {{"reason", "expired"}})
        .value(static_cast<double>(t.dropped_too_large), {{"reason", "too_large"}})
        .value(static_cast<double>(t.dropped_offline_qos0), {{"reason", "offline_qos0"}})
        .value(static_cast<double>(t.dropped_slow_consumer), {{"reason", "slow_consumer"}});
    b.counter("strata_publisher_holds_total",
              "Times a publisher's input was held because a subscriber's queue was full (back-pressure)")
        .value(static_cast<double>(t.publisher_holds));
    b.gauge("strata_publishers_waiting", "Publishers whose input is held now for a subscriber's full queue")
        .value(static_cast<double>(core.counters().publishers_waiting.load(std::memory_order_relaxed)));
    b.counter("strata_slow_consumer_actions_total",
              "Subscribers whose queue stayed full for limits.slow_consumer.after_ms, by the action taken")
        .value(static_cast<double>(t.slow_consumer_disconnects), {{"action", "disconnect"}})
        .value(static_cast<double>(t.slow_consumer_drops), {{"action", "drop"}});
    b.gauge("strata_queued_messages", "Messages waiting in session queues")
        .value(static_cast<double>(core.queued_messages()));
    b.gauge("strata_retained_messages", "Retained messages stored").value(static_cast<double>(core.routes().retained_count()));
    b.gauge("strata_retained_bytes", "Topic and payload bytes of the retained messages outside $SYS (limits.max_retained_bytes)")
        .value(static_cast<double>(core.routes().retained_totals().bytes));
    b.counter("strata_retained_refused_total", "Retained messages refused by the retained store's limits, by limit");
    for (std::size_t i = 0; i < core::retain_refusal_labels.size(); ++i)
        b.value(static_cast<double>(t.retained_refused[i]), {{"limit", core::retain_refusal_labels[i]}});
    b.counter("strata_retained_replay_skipped_total",
              "Retained messages a replay on SUBSCRIBE skipped: cleared or expired before the subscriber's turn")
        .value(static_cast<double>(t.retained_replay_skipped));
    const auto drops = core.session_drops(10);
    b.gauge("strata_retained_replay_pending", "Retained messages waiting to be sent by replays on SUBSCRIBE")
        .value(static_cast<double>(drops.replay_pending));
    b.gauge("strata_sessions_dropping", "Sessions that dropped at least one message for their client")
        .value(static_cast<double>(drops.sessions));
    if (!drops.top.empty()) {
        // Per session only for the few that matter: one series per client
        // would be unbounded.
        b.counter("strata_session_dropped_messages_total",
                  "Messages not delivered to one session's client (queue full, QoS 0 while offline, expired, too "
                  "large); the 10 sessions with the most");
        for (const auto& [id, n] : drops.top) b.value(static_cast<double>(n), {{"client_id", id}});
    }
    if (!drops.most_queued.empty()) {
        b.gauge("strata_session_queued_messages", "Messages queued for one session's client; the 10 deepest queues");
        for (const auto& [id, n] : drops.most_queued) b.value(static_cast<double>(n), {{"client_id", id}});
    }
    b.gauge("strata_subscriptions", "Subscriptions").value(static_cast<double>(core.routes().subscription_count()));
    b.gauge("strata_sessions", "Sessions (online and offline)").value(static_cast<double>(core.session_count()));
    b.gauge("strata_tls_handshakes_in_progress",
            "TLS handshakes under way (each holds its TLS state); at most limits.max_handshakes")
        .value(static_cast<double>(core.handshakes().in_progress()));
    b.gauge("strata_tls_handshakes_waiting", "TLS connections whose first bytes arrived, waiting for a handshake slot")
        .value(static_cast<double>(core.handshakes().waiting()));
    auto& sec = core.security();
    auto& logins = sec.logins();
    b.counter("strata_login_failures_total", "Logins refused for wrong credentials (MQTT and HTTP Basic)")
        .value(static_cast<double>(logins.failures()));
    b.counter("strata_logins_blocked_total", "Logins refused unchecked: their address was blocked by the back-off")
        .value(static_cast<double>(logins.refused()));
    b.gauge("strata_blocked_addresses", "Addresses the login back-off blocks now")
        .value(static_cast<double>(logins.blocked_addresses(core::steady_clock::now())));
    b.counter("strata_publishes_refused_total",
              "Publishes refused by the grants or access rules (not_authorized) or an identity's rate (rate_limited)");
    b.value(static_cast<double>(t.publish_refused), {{"reason", "not_authorized"}});
    b.value(static_cast<double>(t.publish_rate_limited), {{"reason", "rate_limited"}});
    b.gauge("strata_password_checks_queued", "Password checks (MQTT logins, HTTP Basic) waiting for a worker")
        .value(static_cast<double>(sec.checks_queued()));
    b.counter("strata_password_checks_refused_total",
              "Logins refused at once because their address had auth.password_checks.per_address checks queued")
        .value(static_cast<double>(sec.checks_refused()));
    if (core.auditing()) {
        b.counter("strata_audit_lines_suppressed_total",
                  "Audit refusal lines over audit.refusals_per_second (counted in summary lines)")
            .value(static_cast<double>(core.audit_suppressed()));
        if (const auto f = sec.audit_file()) {
            b.counter("strata_audit_lines_dropped_total", "Audit lines dropped: the writer's queue was full")
                .value(static_cast<double>(f->dropped()));
            b.counter("strata_audit_rotations_total", "Audit file rotations (audit.max_bytes)")
                .value(static_cast<double>(f->rotations()));
        }
    }
    b.gauge("strata_ready", "1 when the broker is ready (listeners up, recovery done)").value(core.ready() ? 1 : 0);
    const auto uptime = std::chrono::duration<double>(core::steady_clock::now() - core.started()).count();
    b.gauge("strata_uptime_seconds", "Seconds since the broker started").value(uptime);
}

void add_namespace(family_builder& b, core::broker_core& core) {
    const ns::model* m = core.model();
    if (m == nullptr) return;
    b.counter("strata_namespace_messages_total", "Namespace model checks of published messages, by subtree and outcome");
    for (const auto& row : m->stats().snapshot()) {
        for (std::size_t i = 0; i < ns::model_stats::counter_count; ++i) {
            const auto c = static_cast<ns::model_stats::counter>(i);
            if (row[c] == 0) continue;
            labels l{{"subtree", row.subtree}, {"outcome", std::string(ns::model_stats::outcome_label(c))}};
            const auto reason = ns::model_stats::reason_label(c);
            if (!reason.empty()) l.push_back({"reason", std::string(reason)});
            b.value(static_cast<double>(row[c]), std::move(l));
        }
    }
}

void add_store(family_builder& b, std::vector<MetricFamily>& extra, core::broker_core& core) {
    const auto* st = core.store();
    if (st == nullptr) return;
    const auto s = st->stats();
    const auto t = core.counters().sum();
    b.counter("strata_store_commits_total", "Group commits written to the store").value(static_cast<double>(s.commits));
    b.counter("strata_store_operations_total", "Records written or deleted by group commits")
        .value(static_cast<double>(s.operations));
    b.counter("strata_store_cancelled_operations_total",
              "Delivery records put and erased before a group commit took them: never written")
        .value(static_cast<double>(s.cancelled));
    b.counter("strata_store_written_bytes_total", "Bytes written by group commits (keys and values)")
        .value(static_cast<double>(s.bytes));
    b.counter("strata_store_write_errors_total", "Failed group commits (e.g. disk full)")
        .value(static_cast<double>(s.write_errors));
    b.gauge("strata_store_pending_operations", "Operations submitted and not yet committed")
        .value(static_cast<double>(s.pending_operations));
    b.gauge("strata_store_pending_bytes", "Estimated bytes submitted and not yet committed")
        .value(static_cast<double>(s.pending_bytes));
    b.gauge("strata_store_healthy", "1 while the store commits; 0 after a failed commit until one succeeds")
        .value(s.healthy ? 1 : 0);
    b.counter("strata_publishes_refused_unstorable_total", "QoS 1/2 publishes refused because the store could not write")
        .value(static_cast<double>(t.refused_unstorable));
    b.counter("strata_internal_errors_total",
              "Exceptions caught at a network thread's boundary (each closed one connection at most; a bug to report)")
        .value(static_cast<double>(t.internal_errors));
    b.counter("strata_deliveries_refused_queue_full_total",
              "Deliveries refused by a full queue whose policy is to refuse (a bridge buffer with policy block)")
        .value(static_cast<double>(t.refused_queue_full));
    // The commit latency histogram, cumulative since start.
    MetricFamily h{"strata_store_commit_seconds", "Time a group commit took (write, and sync where the mode syncs)",
                   MetricType::Histogram, {}};
    ClientMetric m;
    for (std::size_t i = 0; i < s.commits_under.size(); ++i) {
        ClientMetric::Bucket bucket;
        bucket.upper_bound = persistence::store_stats::commit_bucket_bounds[i];
        bucket.cumulative_count = s.commits_under[i];
        m.histogram.bucket.push_back(bucket);
    }
    m.histogram.sample_count = s.commits;
    m.histogram.sample_sum = s.commit_seconds_sum;
    h.metric.push_back(std::move(m));
    extra.push_back(std::move(h));
}

void add_bridges(family_builder& b, const std::vector<hosts::bridge_status>& all) {
    if (all.empty()) return;
    const auto per_bridge = [&](const char* name, const char* help, bool counter, auto field) {
        if (counter) b.counter(name, help); else b.gauge(name, help);
        for (const auto& s : all) b.value(static_cast<double>(field(s)), {{"bridge", s.name}});
    };
    per_bridge("strata_bridge_connected", "1 while the bridge's link to its remote broker is up", false,
               [](const hosts::bridge_status& s) { return s.connected ? 1 : 0; });
    per_bridge("strata_bridge_backlog_messages", "Messages waiting to be forwarded or awaiting the remote's PUBACK",
               false, [](const hosts::bridge_status& s) { return s.backlog_messages; });
    per_bridge("strata_bridge_backlog_bytes", "Topic and payload bytes of the backlog", false,
               [](const hosts::bridge_status& s) { return s.backlog_bytes; });
    per_bridge("strata_bridge_backlog_store_only_messages",
               "Messages of the backlog past buffer.memory: in the store only, read back as the link drains", false,
               [](const hosts::bridge_status& s) { return s.backlog_in_store_only; });
    per_bridge("strata_bridge_backlog_oldest_seconds", "Age of the oldest message in the backlog (0: empty)", false,
               [](const hosts::bridge_status& s) { return s.oldest_backlog_seconds; });
    per_bridge("strata_bridge_last_ack_timestamp_seconds", "Unix time of the remote's last PUBACK (0: none yet)",
               false, [](const hosts::bridge_status& s) { return static_cast<double>(s.last_ack_ms) / 1000.0; });
    per_bridge("strata_bridge_connects_total", "Successful connections to the remote broker", true,
               [](const hosts::bridge_status& s) { return s.connects; });
    b.counter("strata_bridge_messages_total",
              "Bridge messages: forwarded to the remote, received from it, dropped (buffer full under drop-oldest, "
              "or refused by the remote), refused (buffer full under block), superseded (latest-only), loops "
              "(had crossed this bridge before), denied (refused here by roles, rules or the model)");
    for (const auto& s : all) {
        const std::pair<const char*, std::uint64_t> outcomes[] = {
            {"forwarded", s.forwarded}, {"received", s.received}, {"dropped", s.dropped}, {"refused", s.refused},
            {"superseded", s.superseded}, {"loops", s.loops}, {"denied", s.denied}};
        for (const auto& [what, n] : outcomes) b.value(static_cast<double>(n), {{"bridge", s.name}, {"outcome", what}});
    }
}

void add_opcua(family_builder& b, const std::vector<hosts::opcua_status>& all) {
    if (all.empty()) return;
    const auto per_source = [&](const char* name, const char* help, bool counter, auto field) {
        if (counter) b.counter(name, help); else b.gauge(name, help);
        for (const auto& s : all) b.value(static_cast<double>(field(s)), {{"source", s.name}});
    };
    per_source("strata_opcua_connected", "1 while the OPC UA source's session is up", false,
               [](const hosts::opcua_status& s) { return s.connected ? 1 : 0; });
    per_source("strata_opcua_monitored_items", "Monitored items in place", false,
               [](const hosts::opcua_status& s) { return s.items; });
    per_source("strata_opcua_connects_total", "Successful connections to the OPC UA server", true,
               [](const hosts::opcua_status& s) { return s.connects; });
    per_source("strata_opcua_errors_total",
               "Connection failures, refused monitored items and failed browses of the OPC UA source", true,
               [](const hosts::opcua_status& s) { return s.errors; });
    b.counter("strata_opcua_values_total",
              "OPC UA value changes: published, or denied (refused by roles, rules or the model)");
    for (const auto& s : all) {
        b.value(static_cast<double>(s.values), {{"source", s.name}, {"outcome", "published"}});
        b.value(static_cast<double>(s.denied), {{"source", s.name}, {"outcome", "denied"}});
    }
    b.counter("strata_opcua_writes_total", "Writes from command topics: done, or failed (bad payload or status)");
    for (const auto& s : all) {
        b.value(static_cast<double>(s.writes), {{"source", s.name}, {"outcome", "done"}});
        b.value(static_cast<double>(s.write_errors), {{"source", s.name}, {"outcome", "failed"}});
    }
}

// The Sparkplug host: its counters, and per edge node whether it is online
// and its seq gaps (as many series as sparkplug.max_nodes allows).
void add_sparkplug(family_builder& b, const std::vector<hosts::sparkplug_status>& all) {
    if (all.empty()) return;
    b.counter("strata_sparkplug_messages_total",
              "Sparkplug B messages: taken, malformed (payload or topic), births, deaths, stale deaths (bdSeq of "
              "a replaced connection), data without a known birth, refused (over a limit, a birth without bdSeq), "
              "dropped (the host's queue was full)");
    for (const auto& s : all) {
        const std::pair<const char*, std::uint64_t> outcomes[] = {
            {"taken", s.messages}, {"malformed", s.malformed}, {"birth", s.births}, {"death", s.deaths},
            {"stale_death", s.stale_deaths}, {"no_birth", s.no_birth}, {"refused", s.refused}, {"dropped", s.dropped}};
        for (const auto& [what, n] : outcomes) b.value(static_cast<double>(n), {{"sparkplug", s.name}, {"outcome", what}});
    }
    b.counter("strata_sparkplug_metrics_total",
              "Sparkplug metric values: mapped into the namespace, unmapped (no mapping, historical or not a "
              "scalar), denied (refused by roles, rules or the model), unknown_alias (no birth declared it)");
    for (const auto& s : all) {
        const std::pair<const char*, std::uint64_t> outcomes[] = {
            {"mapped", s.mapped}, {"unmapped", s.unmapped}, {"denied", s.denied}, {"unknown_alias", s.unknown_aliases}};
        for (const auto& [what, n] : outcomes) b.value(static_cast<double>(n), {{"sparkplug", s.name}, {"outcome", what}});
    }
    b.counter("strata_sparkplug_seq_gaps_total", "Sparkplug messages whose seq was not the one expected (lost messages)");
    for (const auto& s : all) b.value(static_cast<double>(s.seq_gaps), {{"sparkplug", s.name}});
    b.counter("strata_sparkplug_commands_total",
              "Namespace commands: sent as NCMD/DCMD, refused; rebirth requests sent");
    for (const auto& s : all) {
        b.value(static_cast<double>(s.commands), {{"sparkplug", s.name}, {"outcome", "sent"}});
        b.value(static_cast<double>(s.command_errors), {{"sparkplug", s.name}, {"outcome", "refused"}});
        b.value(static_cast<double>(s.rebirths), {{"sparkplug", s.name}, {"outcome", "rebirth"}});
    }
    b.gauge("strata_sparkplug_nodes", "Sparkplug edge nodes followed, online or offline");
    for (const auto& s : all) {
        b.value(static_cast<double>(s.nodes_online), {{"sparkplug", s.name}, {"state", "online"}});
        b.value(static_cast<double>(s.nodes_offline), {{"sparkplug", s.name}, {"state", "offline"}});
    }
    b.gauge("strata_sparkplug_devices", "Sparkplug devices followed, online or offline");
    for (const auto& s : all) {
        b.value(static_cast<double>(s.devices_online), {{"sparkplug", s.name}, {"state", "online"}});
        b.value(static_cast<double>(s.devices_offline), {{"sparkplug", s.name}, {"state", "offline"}});
    }
    b.gauge("strata_sparkplug_node_online", "1 while the Sparkplug edge node is online (its last birth not followed by its death)");
    for (const auto& s : all)
        for (const auto& n : s.nodes)
            b.value(n.online ? 1 : 0, {{"sparkplug", s.name}, {"group", n.group}, {"edge_node", n.edge_node}});
    b.counter("strata_sparkplug_node_seq_gaps_total", "Seq gaps of one Sparkplug edge node");
    for (const auto& s : all)
        for (const auto& n : s.nodes)
            b.value(static_cast<double>(n.seq_gaps), {{"sparkplug", s.name}, {"group", n.group}, {"edge_node", n.edge_node}});
}

void add_process(family_builder& b) {
    b.gauge("strata_build_info", "The broker's version (label `version`; the value is always 1)");
    b.value(1, {{"version", STRATA_VERSION}});
    const auto p = sample_process();
    b.counter("strata_process_cpu_seconds_total", "User and system CPU time of the broker process").value(p.cpu_seconds);
    b.gauge("strata_process_resident_memory_bytes", "Resident memory of the broker process").value(p.resident_bytes);
    b.gauge("strata_process_open_fds", "Open file descriptors of the broker process").value(p.open_fds);
}

}  // namespace

metrics::metrics(core::broker_core& core) : core_(core), registry_(std::make_shared<prometheus::Registry>()) {}

std::string metrics::scrape() const {
    family_builder b;
    add_broker(b, core_);
    add_namespace(b, core_);
    std::vector<MetricFamily> extra;
    add_store(b, extra, core_);
    if (bridges_ != nullptr) add_bridges(b, bridges_->status());
    if (opcua_ != nullptr) add_opcua(b, opcua_->status());
    if (sparkplug_ != nullptr) add_sparkplug(b, sparkplug_->status());
    add_process(b);
    auto families = b.take();
    for (auto& f : extra) families.push_back(std::move(f));
    for (auto& f : registry_->Collect()) families.push_back(std::move(f));
    return prometheus::TextSerializer().Serialize(families);
}

}  // namespace strata::broker::ops
