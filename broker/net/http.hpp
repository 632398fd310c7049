// The HTTP listener (`protocol: http` or `https`, Boost.Beast):
//   GET /metrics   Prometheus text format (metrics.hpp)
//   GET /healthz   200 while the process serves requests
//   GET /readyz    200 when ready (broker_core::ready()), else 503
//   /mqtt          MQTT over WebSocket (subprotocol `mqtt`, binary messages);
//                  the upgraded socket becomes an ordinary connection
//   /api/v1/...    the admin API (http_admin.hpp) for a client certificate
//                  listed in the listener's admin_identities, or HTTP Basic
//                  against auth.password_file for a user whose roles grant
//                  `admin` on the API path ("api/v1/sessions"). Basic is
//                  checked on the security worker (the hash is slow) and
//                  counts toward the failed-login back-off of the client's
//                  address, as MQTT logins do. 401 (with WWW-Authenticate)
//                  without valid credentials, 403 for a known identity
//                  without the grant, 429 while the address is blocked or
//                  has its share of password checks queued. On
//                  a plain `http` listener Basic is accepted only over
//                  loopback unless admin_over_plain_http is set.
//                  GET /api/v1/state and /api/v1/alerts, and the
//                  explorer's /api/v1/login, /logout, /me and /topic
//                  (explorer.hpp) are answered by the caller's subscribe
//                  grants instead (http_admin.hpp): any identity may ask,
//                  no admin grant needed: `Authorization: Bearer TOKEN`
//                  of an explorer login, HTTP Basic, the first name of a
//                  verified client certificate, or without credentials the
//                  anonymous identity where the listener admits anonymous
//                  MQTT clients (auth.allow_anonymous), as an MQTT client
//                  would be. Without roles every identity sees everything,
//                  as over MQTT. Refusals are audited as "admin-login".
//   /, /web/NAME   the explorer's page (explorer.hpp; web.enabled)
// Anything else gets a JSON error (404, 405, 426). Bad input (oversized
// headers or body, a malformed request, a bad upgrade, a stalled client)
// closes that HTTP connection only.
//
// Thread-safety: each HTTP connection is a coroutine on the thread of its
// socket; the http_server itself is immutable after construction.
#pragma once

#include "broker/ops/explorer.hpp"
#include "broker/ops/http_admin.hpp"
#include "broker/net/transport.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace strata::broker::core {
class broker_core;
}

namespace strata::broker::ops {
class metrics;
}

namespace strata::broker::net {

class http_server {
public:
    using response = boost::beast::http::response<boost::beast::http::string_body>;

    http_server(core::broker_core& core, const ops::metrics& m);

    // Serves one accepted connection of listener `l` (an http listener: ctx
    // null; https: TLS with ctx). `l` must outlive the connection. Call on
    // the socket's thread.
    void serve(tcp_socket socket, std::shared_ptr<asio::ssl::context> ctx, const listener_config& l,
               std::size_t thread_index);

    // The answer to a request that is neither a WebSocket upgrade nor for
    // the admin API.
    [[nodiscard]] response respond(const http_request& req) const;

    // Who calls the admin API, as the connection knows it.
    struct caller {
        std::vector<std::string> identities;  // of the client certificate (tls.identity names); empty: none
        std::string address;                  // remote IP, for the failed-login back-off
        bool over_loopback = false;           // the connection arrived on a loopback address
    };
    // The answer to a request for /api/...: authenticates (see above), then
    // awaits admin().respond(). Runs on the connection's thread.
    [[nodiscard]] asio::awaitable<response> admin_request(const http_request& req, const listener_config& l,
                                                          const caller& who) const;

    [[nodiscard]] ops::admin_api& admin() noexcept { return admin_; }
    [[nodiscard]] ops::web_logins& logins() const noexcept { return logins_; }

    // Limits, per HTTP connection.
    static constexpr std::size_t header_limit = 8 * 1024;
    static constexpr std::size_t body_limit = 64 * 1024;

    [[nodiscard]] core::broker_core& core() const noexcept { return core_; }

private:
    // HTTP Basic: the user name once the password checked out, else the
    // response that says why not.
    [[nodiscard]] asio::awaitable<std::variant<std::string, response>> basic_login(const http_request& req,
                                                                                   const listener_config& l,
                                                                                   const caller& who) const;
    // An "admin-login" audit line (refused or failed).
    void audit_login(std::string_view identity, std::string_view outcome, std::string_view why, const caller& who,
                     std::string_view path) const;
    // POST /api/v1/login and /api/v1/logout (explorer.hpp) for `caller`.
    [[nodiscard]] response web_login(const http_request& req, const ops::admin_caller& caller) const;

    core::broker_core& core_;
    const ops::metrics& metrics_;
    ops::admin_api admin_;
    mutable ops::web_logins logins_;
};

}  // namespace strata::broker::net
