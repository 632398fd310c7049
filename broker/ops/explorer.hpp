// The namespace explorer (docs/explorer.md): the page an http or https
// listener serves at `/`, and what the page asks the broker.
//
//   GET  /                      the page (index.html)
//   GET  /web/NAME              its other files: scripts, style
//                               Built into the binary from broker/web
//                               (broker/embed_web.cmake), or read from the
//                               directory `web.root`. Sent with a
//                               Content-Security-Policy that lets the page
//                               load and connect to its own origin only.
//   POST /api/v1/login          HTTP Basic (or a client certificate) ->
//                               {"token", "identity", "expires_in_s"}; the
//                               page sends `Authorization: Bearer TOKEN`
//                               from then on, so a password is hashed once
//                               per login, not per request
//   POST /api/v1/logout         the caller's token ends
//   GET  /api/v1/me             who the caller is: identity, roles,
//                               may_admin, and the model's levels, classes
//                               and dead-letter prefix
//   GET  /api/v1/topic?topic=T  T (a topic or a node of the tree) as the
//                               model reads it, its class and schema, its
//                               retained message and that message's
//                               verdict, and the command T's subtree takes
//                               when the caller holds the command grant
//                               (`may_command`: T is a command topic, or
//                               such a subtree, that the caller may
//                               command)
//   GET  /api/v1/alerts         the active alerts the caller may see
//                               (http_admin.hpp)
// These and GET /api/v1/state answer any identity by its subscribe grants
// (http.hpp: a Bearer token of a login, HTTP Basic, a verified client
// certificate, or, without credentials, the anonymous identity where the
// listener admits anonymous MQTT clients). The page's live data is MQTT
// over WebSocket at /mqtt with the same identity.
//
// Thread-safety: web_logins is safe to use from any thread; the rest are
// functions of their arguments.
#pragma once

#include "broker/ops/http_admin.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::broker::ops {

// The explorer's logins: a token per login, random (128 bits), kept only
// as its SHA-256 so that a lookup's timing says nothing about a token.
// A login ends after `idle` without use, on logout, or when the same
// identity opens more than max_per_identity (its least recently used
// ends). At most `max` are open; one more is refused. Every operation
// costs a lookup (and at most max_per_identity for a login), but for the
// sweep of ended logins that a login into a full table makes, at most
// once a second.
class web_logins {
public:
    using clock = std::chrono::steady_clock;
    static constexpr std::size_t max_per_identity = 16;

    web_logins(std::size_t max, std::chrono::seconds idle);

    // A new token for `identity`; nullopt when `max` logins are open.
    [[nodiscard]] std::optional<std::string> open(std::string identity, clock::time_point now);
    // The identity of `token`, renewing it; nullopt when unknown or ended.
    [[nodiscard]] std::optional<std::string> find(std::string_view token, clock::time_point now);
    void close(std::string_view token);

    [[nodiscard]] std::size_t size() const;
    [[nodiscard]] std::chrono::seconds idle() const noexcept { return idle_; }

private:
    struct entry {
        std::string identity;
        clock::time_point used;
    };
    using table = std::unordered_map<std::string, entry>;
    void erase_locked(table::iterator it);
    void expire_locked(clock::time_point now);

    const std::size_t max_;
    const std::chrono::seconds idle_;
    mutable std::mutex mutex_;
    table by_hash_;
    // Each identity's logins (their hashes), at most max_per_identity.
    std::unordered_map<std::string, std::vector<std::string>> by_identity_;
    clock::time_point swept_{};
};

// The answer to GET / and GET /web/NAME (nullopt for another path): a file
// of `root` (empty: the built-in page). Only flat names of [a-z0-9_.-]
// are served; a name that is not there gets 404.
[[nodiscard]] std::optional<admin_api::response> page_file(std::string_view path, const std::string& root,
                                                           unsigned version);

// GET /api/v1/me for `who`.
[[nodiscard]] admin_api::response me_response(const core::broker_core& core, const admin_caller& who, unsigned version);

// GET /api/v1/topic?topic=T for `who` (`target`: the request target).
[[nodiscard]] admin_api::response topic_response(core::broker_core& core, const admin_caller& who,
                                                 std::string_view target, unsigned version);

}  // namespace strata::broker::ops
