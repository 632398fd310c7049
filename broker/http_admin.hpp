// The admin API: JSON under /api/v1, on an http(s) listener.
//
//   GET  /api/v1/sessions                    sessions, online and offline
//   GET  /api/v1/subscriptions               every session's filters
//   GET  /api/v1/state?filter=F              retained messages matching F
//   POST /api/v1/clients/{id}/disconnect     DISCONNECT 0x98 (administrative action)
//   POST /api/v1/reload                      what SIGHUP does
//
// Who may call it is decided by the HTTP listener before respond() runs
// (http.cpp: a client certificate listed in the listener's admin_identities).
// Bad requests get a 4xx with {"error": ...}.
//
// Thread-safety: respond() may run on any network thread concurrently.
#pragma once

#include "broker/transport.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <string_view>

namespace strata::broker {

class broker_core;

class admin_api {
public:
    using response = boost::beast::http::response<boost::beast::http::string_body>;

    explicit admin_api(broker_core& core) : core_(core) {}

    // Run by POST /api/v1/reload (the server's SIGHUP handler); set once
    // before serving.
    std::function<void()> reload;

    [[nodiscard]] response respond(const http_request& req) const;

private:
    broker_core& core_;
};

// A JSON response ({"error": message} for errors). Invalid UTF-8 in strings
// is replaced, never thrown.
[[nodiscard]] admin_api::response json_response(boost::beast::http::status status, const nlohmann::json& body,
                                                unsigned version);
[[nodiscard]] admin_api::response error_response(boost::beast::http::status status, std::string_view message,
                                                 unsigned version = 11);

}  // namespace strata::broker
