// The broker's side of its bridges (config `bridges:`,
// docs/federation.md).
//
// Each bridge has an outbox: a persistent session of the broker ("$bridge/"
// + name, a client identifier no client may use) subscribed to the forward
// filters. The router delivers into it like into any session, so a QoS 1
// message to be forwarded is in the store before its publisher gets the
// PUBACK, stays there across restarts, and leaves only when the remote
// broker acknowledged it (the outbox's in-flight window is the link's).
// A bridges::mqtt::link drains the outbox to the remote over the
// connection the bridge opens itself, mapping topics, and hands what the
// remote sends on the receive filters back here, where it is published
// under the bridge's identity with the checks a client's PUBLISH gets
// (access rules, roles, namespace model). The remote's PUBACK waits until
// the message is stored here.
//
// Loops: the outbox does not take back what its own bridge published (No
// Local); the link subscribes with No Local (5.0) or as a bridge (3.1.1);
// 5.0 messages carry the user property "strata-via" with the client
// identifier of every bridge they crossed, and a bridge drops (and counts)
// a message that already crossed it.
//
// A bridge is a `source` (host.hpp): its identity and grants, the
// admission of what comes in, its last error and the host that holds every
// bridge are what all kinds of bridge share.
//
// Thread-safety: a bridge runs on one network thread (its link's
// executor); the router calls notify() from any thread; status() and the
// $SYS/metrics readers from any thread.
#pragma once

#include "bridges/mqtt/link.hpp"
#include "bridges/mqtt/topic_map.hpp"
#include "broker/config.hpp"
#include "broker/core/session.hpp"
#include "broker/hosts/host.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace strata::broker::hosts {

// Federation properties (MQTT 5 user properties):
// - a bridge's CONNECT carries "strata-bridge"; a Strata broker answers with
//   its broker id as "strata-broker-id" in the CONNACK;
// - every message a bridge forwards carries "strata-via" with the id of the
//   broker it leaves (one property per broker crossed).
inline constexpr std::string_view bridge_hello_property = "strata-bridge";
inline constexpr std::string_view broker_id_property = "strata-broker-id";
inline constexpr std::string_view via_property = "strata-via";
// Whether a CONNECT's properties ask for the broker id.
[[nodiscard]] bool asks_broker_id(const mqtt::properties& connect_props) noexcept;

// Rules with `class:` (docs/federation.md): the classes must be the
// model's. Throws config_error "file:line: bridges[i].forward[j]: class:
// ..." when a class is unknown or no model is configured (`model` null).
void check_bridge_classes(const std::vector<bridge_config>& bridges, const ns::model* model);
// The topic filters on this broker that a rule subscribes to: its `local`
// filter, or with classes that filter narrowed to each class's filters
// (ns::model::class_filters): "acme/dresden/#" with class cmd gives
// "acme/dresden/+/+/+/cmd/#" and "acme/dresden/+/+/+/+/cmd/#".
[[nodiscard]] std::vector<std::string> rule_filters(const bridge_route& r, const ns::model* model);

// A bridge's state for $SYS/broker/bridges/NAME/..., /metrics and the admin
// API: what every source reports (connected and connects are its link's;
// denied: messages from the remote refused by roles, rules or the model;
// last_error: why the link went down last), and the bridge's own.
struct bridge_status : source_status {
    std::uint64_t backlog_messages = 0, backlog_bytes = 0;
    double oldest_backlog_seconds = 0;       // 0: empty backlog
    std::uint64_t backlog_in_store_only = 0;  // of backlog_messages: past buffer.memory, not in memory
    std::int64_t last_ack_ms = 0;            // Unix ms of the remote's last PUBACK; 0: none yet
    std::uint64_t forwarded = 0;             // messages sent to the remote (resends not counted)
    std::uint64_t received = 0;              // messages from the remote published here
    std::uint64_t dropped = 0;               // backlog full (drop-oldest) or refused by the remote
    std::uint64_t refused = 0;               // backlog full under `block`: publishers refused
    std::uint64_t superseded = 0;            // latest-only: older values replaced in the backlog
    std::uint64_t loops = 0;                 // messages dropped because they had crossed this bridge
};

class bridge final : public source, public bridges::mqtt::link_owner, public std::enable_shared_from_this<bridge> {
public:
    // For host<bridge>.
    using status_type = bridge_status;
    static constexpr std::string_view sys_folder = "bridges";
    [[nodiscard]] static const std::vector<bridge_config>& configured(const config& c) noexcept { return c.bridges; }
    static void sys_values(const bridge_status& s, const sys_put& put);

    bridge(core::broker_core& core, bridge_config cfg, asio::io_context::executor_type ex);
    ~bridge();

    // Opens (or, after a restart, resumes) the outbox session, brings its
    // subscriptions in line with the config and starts the link. After
    // recovery, on the bridge's executor or before the threads run.
    void start();
    // Disconnects from the remote (DISCONNECT) and detaches the outbox; the
    // outbox stays in the store for the next start (or for the bridge that
    // a reload starts in its place). Any thread; no callback of the link
    // reaches the bridge's outbox afterwards.
    void stop();
    // Stops it for good (its entry left the config): the outbox leaves the
    // forward filters, and its backlog waits for a bridge of its name.
    void remove();

    [[nodiscard]] bridge_status status() const;
    [[nodiscard]] const bridge_config& cfg() const noexcept { return cfg_; }

    // session_owner (any thread)
    void notify() override;
    void kick(mqtt::reason_code code, std::uint64_t generation) override;

    // bridges::mqtt::link_owner (the link's executor)
    void on_up(bool session_present) override;
    void on_down(const std::string& why) override;
    void collect(std::vector<bridges::mqtt::outbound>& out, std::size_t window) override;
    void on_ack(std::uint16_t packet_id, mqtt::reason_code rc) override;
    void on_message(mqtt::publish&& p, std::function<void(mqtt::reason_code)> done) override;

private:
    // What the remote sent, published here. Returns the reason code for
    // its acknowledgement and the store ticket it waits for.
    std::pair<mqtt::reason_code, persistence::ticket> publish_here(mqtt::publish& p);
    void subscribe_forward_filters(bool fresh);
    // The forward rule a delivery came by (its index), or nullopt.
    [[nodiscard]] std::optional<std::size_t> forward_route(const core::delivery& d) const;
    // Whether `topic` (on this broker) is of one of the rule's classes, as
    // the current model reads it; true for a rule without classes.
    [[nodiscard]] bool of_rule_classes(const bridge_route& r, std::string_view topic) const;

    const bridge_config cfg_;
    asio::io_context::executor_type ex_;
    std::vector<bridges::mqtt::topic_map> forward_, receive_;
    std::vector<std::vector<std::string>> forward_filters_;  // per forward rule: rule_filters(), set by start()
    core::session_ptr outbox_;
    bridges::mqtt::link_options link_options_;
    std::unique_ptr<bridges::mqtt::link> link_;

    std::atomic<std::uint64_t> forwarded_{0}, received_{0}, refused_by_remote_{0}, loops_{0};
    // Guards link_ (kick() replaces it while the router's notify() and
    // status() readers use it) and what on_up/on_down record.
    mutable std::mutex mutex_;
    bool up_ = false;
    bool stopped_ = false;  // stop() was called: the link's late callbacks leave the outbox alone
    std::string remote_id_;  // the remote's broker id (a Strata remote tells it in CONNACK)
    [[nodiscard]] std::string remote_id() const;

    // buffer.drain_rate: a token bucket (100 ms of the rate at most) that
    // bounds how many messages a collect() takes; when it is empty, a timer
    // wakes the link once a message's worth is back.
    [[nodiscard]] std::size_t drain_allowance(std::size_t want);
    void drained(std::size_t n);
    std::mutex drain_mutex_;
    double drain_tokens_ = 0;
    core::steady_clock::time_point drain_refilled_{};
    std::unique_ptr<asio::steady_timer> drain_timer_;
    bool drain_timer_armed_ = false;
};

// Every configured bridge (config `bridges:`). A class rather than an alias
// so that ops/ can declare it without this header.
class bridge_host final : public host<bridge> {
public:
    using host::host;
};

}  // namespace strata::broker::hosts
