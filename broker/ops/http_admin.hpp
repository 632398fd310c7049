// The admin API: JSON under /api/v1, on an http(s) listener.
//
//   GET  /api/v1/sessions                    sessions, online and offline
//   GET  /api/v1/clients                     the connected ones
//   GET  /api/v1/subscriptions[?client_id=C] every session's subscriptions (or
//                                            C's): filter, options, identifier,
//                                            shared group
//   GET  /api/v1/state?filter=F[&limit=N][&cursor=C][&class=C][&fields=topic]
//                                            retained messages matching F that
//                                            the caller may receive, in pages
//                                            (state_page.hpp); class=C: those
//                                            the model reads as data class C;
//                                            fields=topic: {"topic"} only
//   GET  /api/v1/alerts[?limit=N][&cursor=C] the active alerts (their retained
//                                            $SYS/broker/alerts messages) the
//                                            caller may see: a stale topic's to
//                                            whoever may receive it, a
//                                            subtree's rate to whoever may
//                                            subscribe to some of it, the rest
//                                            to admin identities
//   GET  /api/v1/me, /api/v1/topic?topic=T   the explorer's (explorer.hpp)
//   GET  /api/v1/bridges                     each bridge's state
//   GET  /api/v1/opcua                       each OPC UA source's state
//   GET|PUT|DELETE /api/v1/bridges/NAME      one bridge: its state and, when the
//   GET|PUT|DELETE /api/v1/opcua/NAME        admin API keeps it, its entry; PUT
//                                            adds or changes the entry (a JSON
//                                            object as under `bridges:` or
//                                            `opcua:`), DELETE removes it: kept
//                                            in the config's sources_file and
//                                            put in force by a reload
//   POST /api/v1/clients/{id}/disconnect     DISCONNECT 0x98 (administrative action)
//   POST /api/v1/reload                      what SIGHUP does: the config
//                                            read again, what changed per
//                                            section, what needs a restart
//
// Who may call it is decided by the HTTP listener before respond() runs
// (http.hpp: a client certificate listed in the listener's
// admin_identities, or HTTP Basic for a user with an `admin` grant; for
// the state, any authenticated identity when roles are configured). The
// state answers by the caller's subscribe grants: a filter they may not
// subscribe to gets 403, and of a filter they may subscribe to in part
// only the topics they may receive are shown. Without roles configured
// every retained message is shown.
//
// The state is read on threads of its own (state_threads, at a lower CPU
// priority: state_nice), never on the network thread that serves the request: the walk holds the retained
// store's read lock for at most a page and builds the JSON there. At most
// max_state_reads reads are queued or running (max_state_reads_per_caller
// per identity); one more gets 503 with Retry-After.
//
// Disconnects, reloads and changes of sources are audited
// ("admin-disconnect", "admin-reload", "admin-bridge", "admin-opcua";
// outcome "allowed", or "failed" for a change the reload refused); a state
// read refused by the grants is audited as "admin-state", "refused".
//
// Bad requests get a 4xx with {"error": ...}.
//
// Thread-safety: respond() may run on any network thread concurrently.
// stop() before the io_contexts are destroyed.
#pragma once

#include "broker/config_diff.hpp"
#include "broker/net/transport.hpp"

#include "auth/fair_queue.hpp"
#include "auth/policy.hpp"

#include <boost/asio/awaitable.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::broker::core {
class broker_core;
struct message;
}

namespace strata::broker::hosts {
class bridge_host;
class opcua_host;
class sparkplug_host;
}

namespace strata::broker::ops {

// Who calls, once authenticated.
struct admin_caller {
    std::string identity;                        // certificate identity or user name; "" anonymous
    std::string address;                         // the client's IP
    std::shared_ptr<const auth::grants> grants;  // null: no roles configured
    // How: "admin-certificate" (listed in admin_identities), "certificate",
    // "basic", "token" (an explorer login) or "anonymous".
    std::string login;
};

class admin_api {
public:
    using response = boost::beast::http::response<boost::beast::http::string_body>;

    static constexpr std::size_t state_threads = 2;
    static constexpr std::size_t max_state_reads = 4;
    static constexpr std::size_t max_state_reads_per_caller = 2;
    // The state threads' niceness above the network threads': when the
    // cores are busy, MQTT traffic gets the CPU first.
    static constexpr int state_nice = 10;

    explicit admin_api(core::broker_core& core);
    ~admin_api();

    // What SIGHUP does, for POST /api/v1/reload and the changes of
    // sources: runs `edit` (may be empty; what it throws is the report's
    // error), reloads, and runs `undo` when the reload refused the config;
    // all on the thread of reloads, one at a time. Set once before serving.
    std::function<boost::asio::awaitable<reload_report>(std::function<void()> edit, std::function<void()> undo)>
        reload;
    // The bridges and OPC UA sources whose state the API shows (null:
    // none); set once before serving.
    const hosts::bridge_host* bridges = nullptr;
    const hosts::opcua_host* opcua = nullptr;
    const hosts::sparkplug_host* sparkplug = nullptr;  // GET /api/v1/sparkplug

    // The answer to `req` for `who`. Runs on the connection's thread; the
    // state is read elsewhere and awaited.
    [[nodiscard]] boost::asio::awaitable<response> respond(const net::http_request& req, const admin_caller& who) const;

    // Drops the state reads still queued and joins their threads.
    void stop();

private:
    [[nodiscard]] boost::asio::awaitable<response> read_state(const net::http_request& req, const admin_caller& who) const;
    [[nodiscard]] boost::asio::awaitable<response> read_alerts(const net::http_request& req, const admin_caller& who) const;
    // A page of the retained messages of `filter` that `visible` lets
    // through, each shown by `show` (null: left out), under `key` with the
    // next cursor; read on a state thread.
    [[nodiscard]] boost::asio::awaitable<response> read_page(const admin_caller& who, std::string filter,
                                                             std::optional<std::string> after, std::size_t limit,
                                                             std::function<bool(std::string_view)> visible,
                                                             std::function<nlohmann::json(const core::message&)> show,
                                                             std::string_view key, unsigned version) const;
    // GET, PUT and DELETE of /api/v1/bridges/NAME and /api/v1/opcua/NAME
    // (`kind`: "bridges" or "opcua").
    [[nodiscard]] boost::asio::awaitable<response> source_entry(const net::http_request& req, const admin_caller& who,
                                                                std::string kind, std::string name) const;
    void audit(const admin_caller& who, std::string_view action, std::string_view outcome, std::string_view target,
               std::string_view client_id, std::string_view reason) const;

    core::broker_core& core_;
    std::unique_ptr<auth::fair_queue> reads_;
};

// A JSON response ({"error": message} for errors). Invalid UTF-8 in strings
// is replaced, never thrown.
[[nodiscard]] admin_api::response json_response(boost::beast::http::status status, const nlohmann::json& body,
                                                unsigned version);
// The value of `key` in the query string of `target`, percent-decoded;
// nullopt when absent or malformed.
[[nodiscard]] std::optional<std::string> query_param(std::string_view target, std::string_view key);

// Unix ms -> "2026-11-25T21:30:00.123Z" (UTC).
[[nodiscard]] std::string iso_time(std::int64_t unix_ms);

[[nodiscard]] admin_api::response error_response(boost::beast::http::status status, std::string_view message,
                                                 unsigned version = 11);

}  // namespace strata::broker::ops
