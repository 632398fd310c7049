// The admin API: JSON under /api/v1, on an http(s) listener.
//
//   GET  /api/v1/sessions                    sessions, online and offline
//   GET  /api/v1/clients                     the connected ones
//   GET  /api/v1/subscriptions[?client_id=C] every session's subscriptions (or
//                                            C's): filter, options, identifier,
//                                            shared group
//   GET  /api/v1/state?filter=F              retained messages matching F, with
//                                            the time the broker received them
//   GET  /api/v1/bridges                     each bridge's state
//   POST /api/v1/clients/{id}/disconnect     DISCONNECT 0x98 (administrative action)
//   POST /api/v1/reload                      what SIGHUP does
//
// Who may call it is decided by the HTTP listener before respond() runs
// (http.hpp: a client certificate listed in the listener's
// admin_identities, or HTTP Basic for a user with an `admin` grant).
// Bad requests get a 4xx with {"error": ...}.
//
// Thread-safety: respond() may run on any network thread concurrently.
#pragma once

#include "broker/net/transport.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace strata::broker::core {
class broker_core;
}

namespace strata::broker::hosts {
class bridge_host;
}

namespace strata::broker::ops {

class admin_api {
public:
    using response = boost::beast::http::response<boost::beast::http::string_body>;

    explicit admin_api(core::broker_core& core) : core_(core) {}

    // Run by POST /api/v1/reload (the server's SIGHUP handler); set once
    // before serving.
    std::function<void()> reload;
    // The bridges whose state GET /api/v1/bridges shows (null: none); set
    // once before serving.
    const hosts::bridge_host* bridges = nullptr;

    // `who`: the authenticated caller (for the log).
    [[nodiscard]] response respond(const net::http_request& req, std::string_view who) const;

private:
    core::broker_core& core_;
};

// A JSON response ({"error": message} for errors). Invalid UTF-8 in strings
// is replaced, never thrown.
[[nodiscard]] admin_api::response json_response(boost::beast::http::status status, const nlohmann::json& body,
                                                unsigned version);
// Unix ms -> "2026-11-25T21:30:00.123Z" (UTC).
[[nodiscard]] std::string iso_time(std::int64_t unix_ms);

[[nodiscard]] admin_api::response error_response(boost::beast::http::status status, std::string_view message,
                                                 unsigned version = 11);

}  // namespace strata::broker::ops
