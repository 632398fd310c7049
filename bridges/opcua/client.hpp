// The OPC UA client: one connection to one server (secure channel, session,
// one subscription), kept up with reconnection and exponential backoff, on
// an Asio executor.
//
//   opcua::client c(io.get_executor(), options, callbacks);
//   c.start();                                           // connects in the background
//   auto line = co_await c.resolve_path("Objects/PLC1/Line1", asio::use_awaitable);
//   auto refs = co_await c.browse(line.value, asio::use_awaitable);
//   auto vals = co_await c.read({node}, asio::use_awaitable);
//   auto items = co_await c.monitor({{node, 100ms, 10, 0.0}}, asio::use_awaitable);
//   ...                                                  // values arrive via on_data_change
//   c.stop();
//
// Operations take any Asio completion token (a callback, use_awaitable,
// use_future); the completion signature is void(std::exception_ptr, R) where
// R is a result<...>: errors are values (status code + message), the
// exception_ptr is set only for internal failures (std::bad_alloc). An
// operation called while the client is not connected waits for the
// connection up to options.request_timeout, then fails with BadNotConnected.
//
// Monitored items belong to the client, not to the connection: they are
// created again (or their subscription transferred) after every
// reconnection, and values resume through on_data_change with the same
// handle without the caller doing anything.
//
// Thread-safety: every public member function may be called from any
// thread; the work runs on the client's strand (executor()). Callbacks run
// on that strand, one at a time, never after stop() has taken effect (at
// once when called on the strand, else when its post runs). The client
// object may be destroyed from any thread after stop(); its coroutines keep
// the shared state alive until they finish. The client has no thread of its
// own: the executor's threads run it.
#pragma once

#include "bridges/opcua/crypto.hpp"
#include "bridges/opcua/generated/types.hpp"
#include "bridges/opcua/types.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace strata::bridges::opcua {

namespace asio = boost::asio;

struct client_options {
    std::string endpoint;  // "opc.tcp://host:port[/path]"; required
    crypto::policy_id security_policy = crypto::policy_id::none;
    message_security_mode security_mode = message_security_mode::none;  // none, sign, sign_and_encrypt
    std::optional<std::string> username, password;  // nullopt: anonymous
    std::string application_name = "Strata OPC UA client";
    std::string application_uri = "urn:strata:opcua-client";
    std::filesystem::path pki_directory;  // own/, trusted/, rejected/ below; required
    bool trust_any = false;               // accept every server certificate (commissioning only)
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds request_timeout{10'000};
    std::chrono::milliseconds session_timeout{60'000};
    std::chrono::milliseconds channel_lifetime{600'000};  // requested token lifetime; renewed at 75 %
    std::chrono::milliseconds reconnect_min{500}, reconnect_max{30'000};
    std::chrono::milliseconds publish_interval{1'000};
    std::uint32_t keep_alive_count = 10;     // publish intervals without data before a keep-alive
    std::uint32_t publish_requests = 3;      // Publish requests kept outstanding
    std::uint32_t browse_max_references = 1000;  // per node and Browse/BrowseNext call
};

// A failure as a value: a status code and a message for the log.
struct outcome {
    status_code status{};
    std::string message;  // empty when good
    [[nodiscard]] bool ok() const noexcept { return !status.bad(); }
    // "BadUserAccessDenied: <message>", for logs and errors.
    [[nodiscard]] std::string describe() const { return status.name() + (message.empty() ? "" : ": " + message); }
    [[nodiscard]] static outcome failure(std::uint32_t code, std::string message) {
        return {status_code{code}, std::move(message)};
    }
};

template <class T>
struct result : outcome {
    T value{};
};

enum class connection_state : std::uint8_t { connected, disconnected };

struct client_callbacks {
    // Connected (session active, monitored items in place) or disconnected
    // (reason: the status code name and what happened).
    std::function<void(connection_state, const outcome& reason)> on_state;
    // A value of a monitored item; `handle` is what monitor() returned.
    std::function<void(std::uint32_t handle, const data_value& value)> on_data_change;
};

struct monitor_request {
    node_id node;
    std::chrono::milliseconds sampling_interval{-1};  // -1: the publish interval
    std::uint32_t queue_size = 1;
    double deadband = 0;  // absolute deadband; 0 = every change
};

// A monitored item as monitor() created it: handle 0 and the server's
// status when it was refused (BadNodeIdUnknown, ...).
struct monitored {
    std::uint32_t handle = 0;
    status_code status{};
};

// Identifies a namespace URI <-> index mapping read from the server
// (NamespaceArray); refreshed on every connection.
struct namespace_table {
    std::vector<std::string> uris;
    [[nodiscard]] std::optional<std::uint16_t> index(std::string_view uri) const noexcept;
};

namespace detail {
class client_impl;
}

class client {
public:
    client(asio::any_io_executor executor, client_options options, client_callbacks callbacks);
    ~client();  // stops
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    [[nodiscard]] asio::strand<asio::any_io_executor> executor() const noexcept;

    // Starts the connection loop; stop() closes the session and the channel
    // (CloseSession, CLO) and ends every loop.
    void start();
    void stop();

    // The references of `node` (forward hierarchical, all node classes),
    // following continuation points with BrowseNext.
    template <class Token>
    auto browse(node_id node, Token&& token) {
        return spawn(&detail_browse, std::move(node), std::forward<Token>(token));
    }
    // "Objects/PLC1/Line1" from the Root folder, by TranslateBrowsePathsToNodeIds;
    // a segment may carry a namespace index ("2:PLC1"), else every namespace is tried.
    template <class Token>
    auto resolve_path(std::string path, Token&& token) {
        return spawn(&detail_resolve, std::move(path), std::forward<Token>(token));
    }
    // Value attributes, batched by the server's MaxNodesPerRead.
    template <class Token>
    auto read(std::vector<node_id> nodes, Token&& token) {
        return spawn(&detail_read, std::move(nodes), std::forward<Token>(token));
    }
    // Value attributes written, batched by MaxNodesPerWrite; one status per value.
    template <class Token>
    auto write(std::vector<write_value> values, Token&& token) {
        return spawn(&detail_write, std::move(values), std::forward<Token>(token));
    }
    template <class Token>
    auto namespaces(Token&& token) {
        return spawn(&detail_namespaces, 0, std::forward<Token>(token));
    }
    // Creates monitored items (batched by MaxMonitoredItemsPerCall); one
    // result per request. Items requested while disconnected (the wait for
    // the connection timed out) are kept with status Good and created once
    // the connection is up.
    template <class Token>
    auto monitor(std::vector<monitor_request> items, Token&& token) {
        return spawn(&detail_monitor, std::move(items), std::forward<Token>(token));
    }
    template <class Token>
    auto unmonitor(std::vector<std::uint32_t> handles, Token&& token) {
        return spawn(&detail_unmonitor, std::move(handles), std::forward<Token>(token));
    }

private:
    using impl_ptr = std::shared_ptr<detail::client_impl>;
    static asio::awaitable<result<std::vector<reference_description>>> detail_browse(impl_ptr, node_id);
    static asio::awaitable<result<node_id>> detail_resolve(impl_ptr, std::string);
    static asio::awaitable<result<std::vector<data_value>>> detail_read(impl_ptr, std::vector<node_id>);
    static asio::awaitable<result<std::vector<status_code>>> detail_write(impl_ptr, std::vector<write_value>);
    static asio::awaitable<result<namespace_table>> detail_namespaces(impl_ptr, int);
    static asio::awaitable<result<std::vector<monitored>>> detail_monitor(impl_ptr, std::vector<monitor_request>);
    static asio::awaitable<outcome> detail_unmonitor(impl_ptr, std::vector<std::uint32_t>);

    template <class R, class Arg, class Token>
    auto spawn(asio::awaitable<R> (*fn)(impl_ptr, Arg), Arg arg, Token&& token) {
        return asio::co_spawn(executor(), fn(impl_, std::move(arg)), std::forward<Token>(token));
    }

    impl_ptr impl_;
};

}  // namespace strata::bridges::opcua
