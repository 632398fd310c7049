// The HTTP listener (`protocol: http` or `https`, Boost.Beast):
//   GET /metrics   Prometheus text format (metrics.hpp)
//   GET /healthz   200 while the process serves requests
//   GET /readyz    200 when ready (broker_core::ready()), else 503
//   /mqtt          MQTT over WebSocket (subprotocol `mqtt`, binary messages);
//                  the upgraded socket becomes an ordinary connection
//   /api/v1/...    the admin API (http_admin.hpp), on https listeners for the
//                  client certificates listed in admin_identities (401/403
//                  otherwise)
// Anything else gets a JSON error (404, 405, 426). Bad input (oversized
// headers or body, a malformed request, a bad upgrade, a stalled client)
// closes that HTTP connection only.
//
// Thread-safety: each HTTP connection is a coroutine on the thread of its
// socket; the http_server itself is immutable after construction.
#pragma once

#include "broker/http_admin.hpp"
#include "broker/transport.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <memory>

namespace strata::broker {

class broker_core;
class metrics;

class http_server {
public:
    using response = boost::beast::http::response<boost::beast::http::string_body>;

    http_server(broker_core& core, const metrics& m);

    // Serves one accepted connection of listener `l` (an http listener: ctx
    // null; https: TLS with ctx). `l` must outlive the connection. Call on
    // the socket's thread.
    void serve(tcp_socket socket, std::shared_ptr<asio::ssl::context> ctx, const listener_config& l,
               std::size_t thread_index);

    // The answer to a request that is not a WebSocket upgrade, from a client
    // with these certificate identities (tls.identity names; empty: none).
    [[nodiscard]] response respond(const http_request& req, const listener_config& l,
                                   const std::vector<std::string>& identities) const;

    [[nodiscard]] admin_api& admin() noexcept { return admin_; }

    // Limits, per HTTP connection.
    static constexpr std::size_t header_limit = 8 * 1024;
    static constexpr std::size_t body_limit = 64 * 1024;

    [[nodiscard]] broker_core& core() const noexcept { return core_; }

private:
    broker_core& core_;
    const metrics& metrics_;
    admin_api admin_;
};

}  // namespace strata::broker
