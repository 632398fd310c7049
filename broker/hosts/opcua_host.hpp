// The broker's side of OPC UA ingestion (config `opcua:`, docs/opcua.md).
//
// One opcua_source per configured server: an bridges::opcua::client (reconnecting on
// its own) whose monitored items are the mapped nodes and every variable
// below the mapped browse paths. Each value change is published as JSON
// (opcua_json.hpp) under the source's identity with the checks a client's
// PUBLISH gets (access rules, roles, namespace model).
//
// Write-back: the source holds a session of the broker ("$bridge/opcua/" +
// name, a client identifier no client may use) subscribed to the `writes`
// topics. A client's PUBLISH there passed the broker's command grants
// before it is routed, so whatever reaches the session is allowed: its
// payload (a JSON value or {"value": ...}, or a command in the model's
// shape with the value at the entry's `value:` path) is converted to the
// type of the node's current value (read once) and written; the reply
// (opcua_json.hpp, opcua_reply) is published under the source's identity
// on the 5.0 Response Topic (with its Correlation Data) or else on the
// entry's reply_topic (default <topic>/reply).
//
// A server that is down never blocks the broker: the client is
// asynchronous, and nothing on a network thread waits for it.
//
// An OPC UA source is a `source` (host.hpp): its identity and grants, the
// admission of what it publishes, its last error and the host that holds
// every source are what all kinds of bridge share.
//
// Thread-safety: a source's own state lives on its client's strand (the
// client's callbacks, the setup and write coroutines); the router calls
// notify() from any thread; status() and the $SYS/metrics readers read
// atomics and a mutex-guarded error text from any thread.
#pragma once

#include "bridges/opcua/client.hpp"
#include "broker/config.hpp"
#include "broker/core/session.hpp"
#include "broker/hosts/host.hpp"
#include "broker/hosts/opcua_json.hpp"

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace strata::broker::hosts {

// A source's state for $SYS/broker/opcua/NAME/..., /metrics: what every
// source reports (denied: value changes refused by roles, rules or the
// model), and the OPC UA source's own.
struct opcua_status : source_status {
    std::uint64_t items = 0;        // monitored items in place
    std::uint64_t values = 0;       // value changes published
    std::uint64_t errors = 0;       // connection failures, refused items, failed browses
    std::uint64_t writes = 0;       // Writes done (any status)
    std::uint64_t write_errors = 0; // Writes refused (bad payload, bad status, no connection)
};

class opcua_source final : public source, public std::enable_shared_from_this<opcua_source> {
public:
    // For host<opcua_source>.
    using status_type = opcua_status;
    static constexpr std::string_view sys_folder = "opcua";
    [[nodiscard]] static const std::vector<opcua_config>& configured(const config& c) noexcept { return c.opcua; }
    static void sys_values(const opcua_status& s, const sys_put& put);

    opcua_source(core::broker_core& core, opcua_config cfg, asio::any_io_executor ex);
    ~opcua_source();

    // Starts the client, the monitored items' setup and the write session.
    void start();
    void stop();
    // Stops it for good (its entry left the config): the write session
    // leaves the write topics.
    void remove();
    [[nodiscard]] const opcua_config& cfg() const noexcept { return cfg_; }

    [[nodiscard]] opcua_status status() const;

    // session_owner (any thread)
    void notify() override;
    void kick(mqtt::reason_code code, std::uint64_t generation) override;

private:
    struct item {
        std::string topic;
        const opcua_mapping* mapping = nullptr;  // in cfg_: its template and unit
    };
    struct write_target {
        const opcua_write* cfg = nullptr;  // in cfg_
        bridges::opcua::node_id node;
        std::optional<bridges::opcua::builtin_type> type;  // of the node's value, read once
        bool array = false;
    };

    asio::awaitable<void> setup();
    asio::awaitable<bool> monitor_all();
    asio::awaitable<void> add_browsed(const bridges::opcua::node_id& node, const std::string& prefix, int depth,
                                      std::vector<std::pair<bridges::opcua::node_id, std::string>>& out);
    asio::awaitable<void> drain_writes();
    asio::awaitable<void> write(core::message_ptr m);
    void on_state(bridges::opcua::connection_state s, const bridges::opcua::outcome& why);
    void on_value(std::uint32_t handle, const bridges::opcua::data_value& dv);
    // Published under the source's identity; false when refused.
    bool publish_checked(const core::message_ptr& m);
    void reply(const core::message& cmd, const opcua_write& w, const std::optional<std::string>& request_id,
               write_result r, const std::string& status, const std::string& detail);
    void fail(const std::string& what);

    const opcua_config cfg_;
    asio::any_io_executor ex_;
    std::unique_ptr<bridges::opcua::client> client_;
    core::session_ptr inbox_;  // the write session (null without writes)

    // On the client's strand.
    std::unordered_map<std::uint32_t, item> items_;
    std::unordered_map<std::uint32_t, bridges::opcua::data_value> early_;  // before items_ is filled
    std::unordered_map<std::string, write_target> writes_;
    bool draining_ = false;
    bool stopped_ = false;

    std::atomic<bool> connected_{false};
    std::atomic<std::uint64_t> n_items_{0}, values_{0}, errors_{0}, writes_done_{0}, write_errors_{0}, connects_{0};
};

// Every configured OPC UA source (config `opcua:`). A class rather than an
// alias so that ops/ can declare it without this header.
class opcua_host final : public host<opcua_source> {
public:
    using host::host;
};

}  // namespace strata::broker::hosts
