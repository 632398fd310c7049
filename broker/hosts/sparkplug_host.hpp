// The broker's side of Sparkplug B (config `sparkplug:`, docs/sparkplug.md).
//
// Sparkplug Aware: the host holds a session of the broker
// ("$bridge/sparkplug/NAME", a client identifier no client may use)
// subscribed to spBv1.0/#, so it sees every Sparkplug message the broker
// takes (from clients, wills, bridges) after it passed the admission
// pipeline, through the router like any subscriber: nothing on the publish
// path knows Sparkplug. On its own strand it decodes each payload
// (bridges/sparkplug), follows the state of nodes and devices (tracker:
// births, deaths with bdSeq, seq gaps, aliases), keeps each NBIRTH and
// DBIRTH retained under $sparkplug/certificates/spBv1.0/... (stored like
// any retained message, so it outlives a restart), and counts what it
// cannot use (malformed payloads, data without a birth, unknown aliases).
// At start it reads the certificates back, so the aliases of nodes that
// birthed before a restart or a reload are known again.
//
// Into the namespace: each metric that a mapping covers is published as
// its class's JSON on TOPIC/CLASS/SUBTOPIC under the host's identity
// through the admission pipeline (grants, the model's schema), retained
// unless the class forbids it.
//
// Commands: the session is also subscribed to the mapped command topics
// (TOPIC/cmd/SUBTOPIC). A client's PUBLISH there passed its command grant
// and the model before it was routed; the host turns it into an NCMD or
// DCMD with the metric's alias (or name) and type from the last birth and
// answers on TOPIC/reply/SUBTOPIC (sent, or refused and why).
//
// Thread-safety: the tracker and the mapping caches live on the host's
// strand (drain); status() and nodes() take a mutex the strand holds
// while it applies a batch; notify() from any thread.
#pragma once

#include "bridges/sparkplug/payload.hpp"
#include "bridges/sparkplug/topic.hpp"
#include "bridges/sparkplug/tracker.hpp"
#include "broker/config.hpp"
#include "broker/core/log_limit.hpp"
#include "broker/core/session.hpp"
#include "broker/hosts/host.hpp"
#include "broker/hosts/sparkplug_json.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::broker::hosts {

// One edge node, for the admin API, $SYS, metrics and alerts.
struct sparkplug_node_view {
    std::string group, edge_node;
    bool online = false;
    std::optional<std::uint64_t> bd_seq;
    std::int64_t birth_ms = 0, death_ms = 0, last_message_ms = 0;
    std::uint64_t births = 0, deaths = 0, stale_deaths = 0, seq_gaps = 0, messages = 0, metrics = 0;
    struct device {
        std::string name;
        bool online = false;
        std::int64_t birth_ms = 0, death_ms = 0;
        std::uint64_t births = 0, metrics = 0;
    };
    std::vector<device> devices;
};

struct sparkplug_status : source_status {
    std::uint64_t messages = 0;        // Sparkplug messages taken
    std::uint64_t malformed = 0;       // payloads that did not decode (or over max_payload_bytes), topics that are not Sparkplug's
    std::uint64_t births = 0, deaths = 0, stale_deaths = 0;
    std::uint64_t seq_gaps = 0;
    std::uint64_t no_birth = 0;        // data of a node or device whose birth was not seen
    std::uint64_t unknown_aliases = 0; // metrics whose alias or name no birth declared
    std::uint64_t refused = 0;         // over a limit, a birth without bdSeq
    std::uint64_t mapped = 0;          // metric values published into the namespace
    std::uint64_t unmapped = 0;        // metric values no mapping covers
    std::uint64_t rebirths = 0;        // Rebirth requests sent
    std::uint64_t commands = 0;        // NCMD/DCMD sent for namespace commands
    std::uint64_t command_errors = 0;  // commands refused (unknown metric, type, no birth)
    std::uint64_t dropped = 0;         // Sparkplug messages dropped by the host's full queue
    std::uint64_t nodes_online = 0, nodes_offline = 0, devices_online = 0, devices_offline = 0;
    std::int64_t offline_alert_ms = 0;  // config offline_alert_s, for the alerts
    std::vector<sparkplug_node_view> nodes;  // every edge node followed, by group and id
};

class sparkplug_source final : public source, public std::enable_shared_from_this<sparkplug_source> {
public:
    // For host<sparkplug_source>.
    using status_type = sparkplug_status;
    static constexpr std::string_view sys_folder = "sparkplug";
    [[nodiscard]] static const std::vector<sparkplug_config>& configured(const config& c) noexcept {
        return c.sparkplug;
    }
    static void sys_values(const sparkplug_status& s, const sys_put& put);

    sparkplug_source(core::broker_core& core, sparkplug_config cfg, asio::io_context::executor_type ex);
    ~sparkplug_source();

    void start();
    void stop();
    void remove();
    [[nodiscard]] const sparkplug_config& cfg() const noexcept { return cfg_; }
    [[nodiscard]] sparkplug_status status() const;

    // session_owner (any thread)
    void notify() override;
    void kick(mqtt::reason_code code, std::uint64_t generation) override;

private:
    // Where one metric of one node or device goes (cached per metric name).
    struct target {
        std::string topic;                    // empty: not mapped
        const opcua_template* payload = nullptr;
        std::string_view unit;
        bool retain = false;
        nlohmann::json last;                  // the last value published (null: none yet)
        std::uint64_t last_ms = 0;            // its source time
    };
    struct device_targets {
        bool resolved = false;
        const bridges::sparkplug::device_rule* rule = nullptr;
        std::string prefix;  // the rule's topic expanded
        std::unordered_map<std::string, target> metrics;
    };

    void drain();
    void take(const core::message& m, std::int64_t now_ms);
    void take_sparkplug(const core::message& m, std::int64_t now_ms);
    void take_command(const core::message& m, std::int64_t now_ms);
    void map_metrics(const bridges::sparkplug::topic& t, const bridges::sparkplug::outcome& o,
                     const bridges::sparkplug::payload& p, std::int64_t now_ms);
    target& target_of(const bridges::sparkplug::topic& t, const std::string& metric);
    // A node (device empty: and all its devices) or device died: its mapped
    // metrics again, with their last values, quality uncertain.
    void publish_stale(const bridges::sparkplug::topic& t, std::int64_t now_ms);
    void publish_value(target& tg, const nlohmann::json& v, sparkplug_quality q, std::uint64_t source_ms,
                       std::int64_t now_ms);
    void certify(const core::message& birth);
    void request_rebirth(const bridges::sparkplug::topic& t, std::int64_t now_ms);
    void restore_certificates();
    void reply(const core::message& cmd, const std::string& topic, const std::optional<std::string>& request_id,
               bool sent, const std::string& detail);
    bool publish_checked(const core::message_ptr& m, std::string_view what);

    const sparkplug_config cfg_;
    asio::strand<asio::io_context::executor_type> strand_;
    core::session_ptr inbox_;
    bool stopped_ = false;          // on the strand
    bool draining_ = false;         // on the strand

    mutable std::mutex mutex_;      // the tracker, for status() and nodes() while the strand applies
    bridges::sparkplug::tracker tracker_;
    // On the strand: where each node's or device's metrics go (key: the
    // topic's group/edge/device), cleared when it births again.
    std::unordered_map<std::string, device_targets> targets_;
    std::unordered_map<std::string, std::int64_t> rebirth_asked_;  // node key -> when (ms)
    std::uint64_t model_generation_ = 0;  // of the model targets_ was worked out with
    // What a node can repeat per message is logged at most once a second (on the strand).
    core::log_limit refused_log_, ignored_log_, command_log_;

    std::atomic<std::uint64_t> messages_{0}, malformed_{0}, births_{0}, deaths_{0}, stale_deaths_{0}, seq_gaps_{0},
        no_birth_{0}, unknown_aliases_{0}, refused_{0}, mapped_{0}, unmapped_{0}, rebirths_{0}, commands_{0},
        command_errors_{0};
};

// The Sparkplug host (config `sparkplug:`). A class rather than an alias so
// that ops/ can declare it without this header.
class sparkplug_host final : public host<sparkplug_source> {
public:
    using host::host;
};

// An edge node and its devices as JSON (the admin API, $SYS).
[[nodiscard]] nlohmann::json sparkplug_node_json(const sparkplug_node_view& n);

}  // namespace strata::broker::hosts
