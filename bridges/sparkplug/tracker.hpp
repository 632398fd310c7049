// The state of Sparkplug edge nodes and devices as a Sparkplug Aware
// broker follows it (Sparkplug 3.0, chapters 5 and 10):
//
//   NBIRTH  the node is online with a new bdSeq (its "bdSeq" metric) and
//           seq 0; its metrics' aliases and data types are known from now
//           on; its devices are offline until they birth again.
//   NDEATH  (usually the node's will) takes the node and its devices
//           offline only when its bdSeq is the one of the node's current
//           birth: the will of a connection the node already replaced is
//           stale and ignored (counted).
//   DBIRTH  the device is online, its aliases known; DDEATH offline.
//   *DATA   metrics resolved: a metric by alias gets its name and data
//           type from the birth that declared the alias.
//   seq     every message of a node but NDEATH carries seq, 0..255,
//           one more than the last (255 wraps to 0); any other value is a
//           gap (counted: a message was lost, the data may be stale).
//   STATE   a host application's {"online": bool, "timestamp": ms} (3.0).
//
// Every count of state is bounded by `limits`: a node beyond max_nodes,
// a device beyond max_devices_per_node, a birth with more than
// max_metrics_per_birth metrics, aliases beyond max_aliases_per_node are
// refused and counted, never stored.
//
// Thread-safety: none; one owner (the broker's Sparkplug host, on its strand).
#pragma once

#include "bridges/sparkplug/payload.hpp"
#include "bridges/sparkplug/topic.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::bridges::sparkplug {

struct tracker_limits {
    std::size_t max_nodes = 10'000;             // edge nodes followed
    std::size_t max_devices_per_node = 1'000;   // devices of one node
    std::size_t max_metrics_per_birth = 10'000; // metrics in one NBIRTH/DBIRTH
    std::size_t max_aliases_per_node = 100'000; // aliases of a node and its devices together
    std::size_t max_hosts = 100;                // host applications (STATE)
};

// A metric as a birth declared it.
struct metric_def {
    std::string name;
    data_type type = data_type::unknown;
};

// The metrics of a node or device, from its last birth.
struct metric_table {
    std::unordered_map<std::uint64_t, std::size_t> by_alias;  // index into defs
    std::unordered_map<std::string, std::size_t> by_name;
    std::vector<metric_def> defs;
    std::vector<std::optional<std::uint64_t>> aliases;  // per def
};

struct device_state {
    bool online = false;
    bool restored = false;  // known from a certificate only: online from its next message
    std::int64_t birth_ms = 0;  // when its last birth arrived (0: never)
    std::int64_t death_ms = 0;
    std::uint64_t births = 0;
    metric_table metrics;
};

struct node_state {
    std::string group, edge_node;
    bool online = false;
    bool restored = false;  // known from a certificate only: online from its next message
    std::optional<std::uint64_t> bd_seq;  // of the current birth
    std::optional<std::uint8_t> seq;      // the last seen
    std::int64_t birth_ms = 0, death_ms = 0, last_message_ms = 0;
    std::uint64_t births = 0, deaths = 0, stale_deaths = 0, seq_gaps = 0, messages = 0;
    metric_table metrics;
    std::map<std::string, device_state, std::less<>> devices;
};

struct host_state {
    bool online = false;
    std::uint64_t timestamp = 0;
};

// What one message did.
enum class event : std::uint8_t {
    birth,          // NBIRTH/DBIRTH taken
    death,          // NDEATH/DDEATH taken
    stale_death,    // NDEATH whose bdSeq is not the current birth's: ignored
    data,           // NDATA/DDATA taken (see the metrics' resolution)
    command,        // NCMD/DCMD seen (a host application's)
    state,          // a host application's STATE
    no_birth,       // data or a device message of a node (or device) with no birth: nothing resolved
    refused,        // over a limit, or a birth without what it needs (bdSeq, names, types)
};

// A metric of a data (or birth) message with its name and type resolved.
struct resolved_metric {
    const metric* m = nullptr;          // in the payload
    const metric_def* def = nullptr;    // from the birth
};

struct outcome {
    event what = event::data;
    bool seq_gap = false;
    std::string reason;                     // for refused, no_birth, stale_death
    std::vector<resolved_metric> metrics;   // data and births: the metrics resolved
    std::uint64_t unresolved = 0;           // metrics whose alias or name the birth did not declare
};

class tracker {
public:
    explicit tracker(tracker_limits limits = {}) : limits_(limits) {}

    // Applies one message (its topic parsed, its payload decoded; STATE
    // payloads are JSON: pass the raw text in `state_json`). `now_ms` is
    // the wall clock in ms since the Unix epoch. The outcome's metrics
    // point into `p` and into this tracker until the next call.
    outcome apply(const topic& t, const payload& p, std::int64_t now_ms);
    outcome apply_state(const topic& t, std::string_view state_json);
    // A birth read back from the broker's certificates (after a restart or
    // a reload): the aliases and types are known again, whether the node
    // (or device) is online is not; it counts as online from its next
    // message on. Within the same limits as apply().
    outcome restore(const topic& t, const payload& p, std::int64_t birth_ms);

    // The node, or null.
    [[nodiscard]] const node_state* node(std::string_view group, std::string_view edge_node) const;
    [[nodiscard]] const std::map<std::string, node_state, std::less<>>& nodes() const noexcept { return nodes_; }
    [[nodiscard]] const std::map<std::string, host_state, std::less<>>& hosts() const noexcept { return hosts_; }
    // Metric definitions of a node (device empty) or a device, for a
    // command: its alias and type. Null when unknown.
    [[nodiscard]] const metric_table* table(std::string_view group, std::string_view edge_node,
                                            std::string_view device) const;
    void set_limits(tracker_limits l) noexcept { limits_ = l; }
    [[nodiscard]] const tracker_limits& limits() const noexcept { return limits_; }

private:
    node_state* find_or_add(const topic& t, outcome& o);
    device_state* find_or_add_device(node_state& n, std::string_view device, outcome& o);
    bool check_seq(node_state& n, const payload& p);
    bool fill_table(metric_table& table, const payload& p, std::size_t budget, outcome& o);
    void resolve(const metric_table& table, const payload& p, outcome& o) const;
    [[nodiscard]] std::size_t aliases_of(const node_state& n, const metric_table* except) const;
    // Aliases a new birth of `replaced` (a table of `n`) may declare.
    [[nodiscard]] std::size_t alias_budget(const node_state& n, const metric_table& replaced) const;

    tracker_limits limits_;
    std::map<std::string, node_state, std::less<>> nodes_;  // key: group + '/' + edge node
    std::map<std::string, host_state, std::less<>> hosts_;
};

// The "bdSeq" metric of a birth or death, when it has one that is an integer.
[[nodiscard]] std::optional<std::uint64_t> bd_seq_of(const payload& p);

}  // namespace strata::bridges::sparkplug
