// HTTP connections: the request loop, routing, the WebSocket hand-off.
#include "broker/net/http.hpp"

#include "broker/core/broker_core.hpp"
#include "broker/net/connection.hpp"
#include "broker/ops/explorer.hpp"
#include "broker/ops/metrics.hpp"
#include "broker/core/security.hpp"

#include "auth/crypto.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string_view>

namespace strata::broker::net {

namespace http = boost::beast::http;
namespace ssl = asio::ssl;
using namespace asio::experimental::awaitable_operators;

namespace {

// A client must send each request, and take each response, within this.
constexpr auto io_timeout = std::chrono::seconds(30);

// Awaits `op` (an awaitable of a tuple whose first element is the error)
// for at most `d`; returns its error, or timed_out.
template <class Op>
asio::awaitable<boost::system::error_code> within(Op op, std::chrono::steady_clock::duration d) {
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    auto r = co_await (std::move(op) || t.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (r.index() == 1) co_return asio::error::timed_out;
    co_return std::get<0>(std::get<0>(r));
}

// The request asks for the `mqtt` WebSocket subprotocol (among others).
bool offers_mqtt(const http_request& req) {
    const auto it = req.find(http::field::sec_websocket_protocol);
    if (it == req.end()) return false;
    std::string_view list = it->value();
    while (!list.empty()) {
        const auto comma = list.find(',');
        std::string_view token = list.substr(0, comma);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
        if (token == "mqtt") return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

std::string_view path_of(const http_request& req) {
    std::string_view target = req.target();
    return target.substr(0, target.find('?'));
}

tcp_socket& lowest(tcp_socket& s) { return s; }
tcp_socket& lowest(tls_stream& s) { return s.next_layer(); }

// The response to a request that could not be read, or none (just close).
std::optional<http_server::response> read_failure(const boost::system::error_code& ec) {
    if (ec == http::error::header_limit) return ops::error_response(http::status::request_header_fields_too_large, "request header too large");
    if (ec == http::error::body_limit) return ops::error_response(http::status::payload_too_large, "request body too large");
    if (ec.category() == http::make_error_code(http::error::end_of_stream).category() && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
        return ops::error_response(http::status::bad_request, "malformed request: " + ec.message());
    }
    return std::nullopt;
}

template <class Stream>
std::unique_ptr<transport> ws_transport_for(Stream stream, const std::shared_ptr<ssl::context>& ctx, http_request req,
                                            std::size_t max_message) {
    if constexpr (std::is_same_v<Stream, tls_stream>) {
        return make_wss_transport(std::move(stream), ctx, std::move(req), max_message);
    } else {
        (void)ctx;
        return make_ws_transport(std::move(stream), std::move(req), max_message);
    }
}

template <class Stream>
asio::awaitable<void> serve_connection(const http_server& srv, Stream stream, std::shared_ptr<ssl::context> ctx,
                                       const listener_config& listener, std::size_t thread_index) {
    const tls_identity identity = listener.tls ? listener.tls->identity : tls_identity::cn;
    http_server::caller who;
    core::broker_core& core = srv.core();
    const std::string remote = [&] {
        boost::system::error_code ec;
        const auto ep = lowest(stream).remote_endpoint(ec);
        if (!ec) who.address = ep.address().to_string();
        return ec ? std::string("?") : who.address + ":" + std::to_string(ep.port());
    }();
    {
        boost::system::error_code ec;
        const auto local = lowest(stream).local_endpoint(ec);
        who.over_loopback = !ec && local.address().is_loopback();
    }
    if constexpr (std::is_same_v<Stream, tls_stream>) {
        // The handshake is done (serve_tls).
        if (auto peer = verified_peer(stream)) who.identities = peer->names(identity);
    }
    boost::beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(http_server::header_limit);
        parser.body_limit(http_server::body_limit);
        auto ec = co_await within(http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable)), io_timeout);
        std::optional<http_server::response> res;
        bool keep_alive = false;
        if (ec) {
            res = read_failure(ec);
            if (res) spdlog::info("{}: http: {}", remote, ec.message());
        } else {
            http_request req = parser.release();
            if (boost::beast::websocket::is_upgrade(req)) {
                if (path_of(req) == "/mqtt" && offers_mqtt(req)) {
                    const std::size_t max_message = core.cfg().limits.max_packet_size + 16 * 1024;
                    auto t = ws_transport_for(std::move(stream), ctx, std::move(req), max_message);
                    t->identity = identity;
                    const auto ex = t->tcp().get_executor();
                    auto c = std::make_shared<connection>(core, std::move(t), ex);
                    c->start();
                    co_return;
                }
                core::bump(core.counters().local().connections_refused[static_cast<std::size_t>(core::refusal::websocket_upgrade)]);
                res = path_of(req) == "/mqtt"
                          ? ops::error_response(http::status::bad_request, "WebSocket subprotocol 'mqtt' required", req.version())
                          : ops::error_response(http::status::not_found, "no WebSocket endpoint here; use /mqtt", req.version());
            } else {
                // Not a conditional expression with co_await in one arm:
                // GCC 12 destroys the other arm's temporary wrongly.
                if (path_of(req).starts_with("/api/")) {
                    auto answer = co_await srv.admin_request(req, listener, who);
                    res = std::move(answer);
                } else {
                    res = srv.respond(req);
                }
                keep_alive = req.keep_alive();
            }
        }
        if (!res) break;
        res->keep_alive(keep_alive);
        ec = co_await within(http::async_write(stream, *res, asio::as_tuple(asio::use_awaitable)), io_timeout);
        if (ec || !keep_alive) break;
    }
    close_socket(lowest(stream));
}

// Runs a tls_start; resumes the coroutine with its outcome.
asio::awaitable<boost::system::error_code> run_start(tls_start& start) {
    constexpr auto token = asio::as_tuple(asio::use_awaitable);
    auto [ec] = co_await asio::async_initiate<decltype(token), void(boost::system::error_code)>(
        [&start](auto handler) {
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            start.async_run([h](boost::system::error_code e) { std::move(*h)(e); });
        },
        token);
    co_return ec;
}

// An https connection whose first bytes arrived: the TLS handshake as on
// mqtt+tls listeners (bounded by limits.max_handshakes, done by
// `deadline_at`), then the request loop.
asio::awaitable<void> serve_tls(const http_server& srv, tcp_socket socket, std::shared_ptr<ssl::context> ctx,
                                const listener_config& listener, std::size_t thread_index,
                                std::chrono::steady_clock::time_point deadline_at) {
    core::broker_core& core = srv.core();
    std::string remote = "?";
    {
        boost::system::error_code ec;
        const auto ep = socket.remote_endpoint(ec);
        if (!ec) remote = ep.address().to_string() + ":" + std::to_string(ep.port());
    }
    auto start = std::make_shared<tls_start>(std::move(socket), ctx, core.handshakes());
    asio::steady_timer deadline(co_await asio::this_coro::executor, deadline_at);
    deadline.async_wait([weak = std::weak_ptr<tls_start>(start)](boost::system::error_code ec) {
        if (auto s = weak.lock(); s && !ec) s->close();
    });
    const auto ec = co_await run_start(*start);
    deadline.cancel();
    if (ec) {
        core::bump(core.counters().local().connections_refused[static_cast<std::size_t>(core::refusal::tls_handshake)]);
        spdlog::info("{}: https: TLS handshake failed: {}", remote,
                     ec == asio::error::operation_aborted ? "not done within the connect timeout" : ec.message());
        start->close();
        co_return;
    }
    co_await serve_connection(srv, std::move(*start->stream()), std::move(ctx), listener, thread_index);
}

}  // namespace

http_server::http_server(core::broker_core& core, const ops::metrics& m)
    : core_(core),
      metrics_(m),
      admin_(core),
      logins_(core.cfg().web.max_logins, std::chrono::seconds(core.cfg().web.login_idle_s)) {}

void http_server::serve(tcp_socket socket, std::shared_ptr<ssl::context> ctx, const listener_config& l,
                        std::size_t thread_index) {
    // Until the client's first bytes arrive the connection holds only its
    // socket and a timer: the request loop's coroutine, parser and buffers
    // (about 6 KB), or on https the TLS state, come after.
    const auto deadline = std::chrono::steady_clock::now() + connect_timeout;
    on_first_bytes(std::move(socket), deadline, [this, ctx = std::move(ctx), &l, thread_index, deadline](tcp_socket s) {
        const auto ex = s.get_executor();
        auto on_error = [](const std::exception_ptr& e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                spdlog::error("http connection closed after an internal error: {}", x.what());
            }
        };
        if (ctx) {
            asio::co_spawn(ex, serve_tls(*this, std::move(s), ctx, l, thread_index, deadline), on_error);
        } else {
            asio::co_spawn(ex, serve_connection(*this, std::move(s), nullptr, l, thread_index), on_error);
        }
    });
}

http_server::response http_server::respond(const http_request& req) const {
    const auto path = path_of(req);
    const unsigned v = req.version();
    const bool get = req.method() == http::verb::get;
    auto only_get = [&] { return ops::error_response(http::status::method_not_allowed, "only GET is allowed here", v); };
    if (path == "/metrics") {
        if (!get) return only_get();
        response res{http::status::ok, v};
        res.set(http::field::server, "strata");
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.body() = metrics_.scrape();
        res.prepare_payload();
        return res;
    }
    if (path == "/healthz") {
        if (!get) return only_get();
        return ops::json_response(http::status::ok, {{"status", "alive"}}, v);
    }
    if (path == "/readyz") {
        if (!get) return only_get();
        return core_.ready() ? ops::json_response(http::status::ok, {{"status", "ready"}}, v)
                             : ops::json_response(http::status::service_unavailable, {{"status", "not ready"}}, v);
    }
    if (path == "/mqtt") {
        return ops::error_response(http::status::upgrade_required, "MQTT over WebSocket: send a WebSocket upgrade", v);
    }
    if (core_.cfg().web.enabled) {
        if (auto page = ops::page_file(path, core_.cfg().web.root, v)) {
            if (!get && req.method() != http::verb::head) return only_get();
            if (req.method() == http::verb::head) page->body().clear();
            return std::move(*page);
        }
    }
    return ops::json_response(http::status::not_found, {{"error", "not found"}, {"path", std::string(path)}}, v);
}

namespace {

// The Authorization header's credentials after `scheme` (lower case, with
// its space: "basic "), trimmed; nullopt when the header is absent or of
// another scheme.
std::optional<std::string_view> authorization(const http_request& req, std::string_view scheme) {
    const auto it = req.find(http::field::authorization);
    if (it == req.end()) return std::nullopt;
    std::string_view value = it->value();
    if (value.size() <= scheme.size() ||
        !std::equal(scheme.begin(), scheme.end(), value.begin(),
                    [](char a, char b) { return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b); }))
        return std::nullopt;
    value.remove_prefix(scheme.size());
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    return value;
}

// "Basic BASE64(user:password)" -> user and password; nullopt when the
// header is absent or not Basic, or its value is malformed.
std::optional<std::pair<std::string, std::string>> basic_credentials(const http_request& req) {
    const auto value = authorization(req, "basic ");
    if (!value) return std::nullopt;
    auto decoded = auth::base64_decode(*value);
    if (!decoded) return std::nullopt;
    const auto colon = decoded->find(':');
    if (colon == std::string::npos || colon == 0) {
        auth::cleanse(*decoded);
        return std::nullopt;
    }
    std::pair<std::string, std::string> out{decoded->substr(0, colon), decoded->substr(colon + 1)};
    auth::cleanse(*decoded);
    return out;
}

// Runs the password check on the security workers; resumes on the calling
// coroutine's executor. Empty: refused at once, the address has its share
// of checks queued.
asio::awaitable<std::optional<core::security::check_result>> queue_password_check(class core::security& sec, const std::string& address,
                                                                      std::string user, std::string password) {
    using result = std::optional<core::security::check_result>;
    const auto ex = co_await asio::this_coro::executor;
    co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(result)>(
        [&sec, &address, ex](auto handler, std::string u, std::string p) {
            auto h = std::make_shared<decltype(handler)>(std::move(handler));
            const bool queued = sec.verify_password(address, std::move(u), std::move(p), [h, ex](core::security::check_result r) {
                asio::post(ex, [h, r]() mutable { std::move(*h)(result(r)); });
            });
            if (!queued) asio::post(ex, [h]() mutable { std::move(*h)(result()); });
        },
        asio::use_awaitable, std::move(user), std::move(password));
}

http_server::response too_many_requests(std::string why, std::int64_t seconds, unsigned version) {
    auto res = ops::error_response(http::status::too_many_requests, why, version);
    res.set(http::field::retry_after, std::to_string(seconds));
    return res;
}

http_server::response unauthorized(std::string_view why, unsigned version) {
    auto res = ops::error_response(http::status::unauthorized, why, version);
    res.set(http::field::www_authenticate, "Basic realm=\"strata admin\", charset=\"UTF-8\"");
    return res;
}

}  // namespace

namespace {

// Endpoints any identity may call, answered by its subscribe grants.
bool for_any_identity(std::string_view path) {
    return path == "/api/v1/state" || path == "/api/v1/alerts" || path == "/api/v1/me" || path == "/api/v1/topic" ||
           path == "/api/v1/login" || path == "/api/v1/logout";
}

// Endpoints of the explorer (off with web.enabled: false).
bool explorer_endpoint(std::string_view path) {
    return path == "/api/v1/me" || path == "/api/v1/topic" || path == "/api/v1/login" || path == "/api/v1/logout";
}

// Credentials (a password or a login's token) would cross the network in
// clear text: a plain http listener, reached from another address, that
// does not allow it (admin_over_plain_http).
bool in_clear(const listener_config& l, const http_server::caller& who) {
    return !l.tls && !l.admin_over_plain_http && !who.over_loopback;
}

constexpr std::string_view in_clear_refusal =
    "credentials over plain http are accepted on loopback listeners only; use https "
    "(or set admin_over_plain_http: true on this listener)";

// "Bearer TOKEN" -> TOKEN; nullopt when the header is not Bearer.
std::optional<std::string_view> bearer_token(const http_request& req) { return authorization(req, "bearer "); }

}  // namespace

asio::awaitable<http_server::response> http_server::admin_request(const http_request& req, const listener_config& l,
                                                                  const caller& who) const {
    const unsigned v = req.version();
    auto& sec = core_.security();
    const std::string_view path = path_of(req);
    // The state, the alerts and the explorer's endpoints answer by
    // subscribe grants (http_admin.hpp, explorer.hpp): any identity may ask.
    const bool any_identity = for_any_identity(path);
    if (explorer_endpoint(path) && !core_.cfg().web.enabled)
        co_return ops::error_response(http::status::not_found, "the explorer is off (web.enabled: false)", v);
    auto caller_of = [&](std::string identity, std::string login) {
        auto grants = sec.policy()->compile(identity, "");
        return ops::admin_caller{std::move(identity), who.address, std::move(grants), std::move(login)};
    };
    auto audit_refusal = [&](std::string_view identity, std::string_view outcome, std::string_view why) {
        audit_login(identity, outcome, why, who, path);
    };
    // The explorer's requests get a Bearer challenge: a browser shows no
    // login dialog of its own for it.
    auto unauthorized_here = [&](std::string_view why) {
        auto res = unauthorized(why, v);
        if (explorer_endpoint(path) || path == "/api/v1/alerts" || bearer_token(req))
            res.set(http::field::www_authenticate, "Bearer realm=\"strata\"");
        return res;
    };

    std::optional<ops::admin_caller> caller;
    for (const auto& id : who.identities) {
        if (std::find(l.admin_identities.begin(), l.admin_identities.end(), id) != l.admin_identities.end()) {
            caller = caller_of(id, "admin-certificate");
            break;
        }
    }
    const bool has_authorization = req.find(http::field::authorization) != req.end();
    if (!caller && has_authorization) {
        if (const auto token = bearer_token(req)) {
            if (in_clear(l, who)) {
                audit_refusal("", "refused", "a login's token over plain http from a remote address");
                co_return ops::error_response(http::status::forbidden, in_clear_refusal, v);
            }
            auto identity = logins_.find(*token, core::steady_clock::now());
            if (!identity) co_return unauthorized_here("this login has ended (logged out, or unused too long): log in again");
            caller = caller_of(std::move(*identity), "token");
        } else {
            auto answer = co_await basic_login(req, l, who);
            if (std::holds_alternative<response>(answer)) {
                auto res = std::move(std::get<response>(answer));
                if (res.result() == http::status::unauthorized && (explorer_endpoint(path) || path == "/api/v1/alerts"))
                    res.set(http::field::www_authenticate, "Bearer realm=\"strata\"");
                co_return res;
            }
            caller = caller_of(std::move(std::get<std::string>(answer)), "basic");
        }
    }
    if (!caller && any_identity) {
        if (!who.identities.empty()) caller = caller_of(who.identities.front(), "certificate");
        else if (sec.anonymous_allowed(who.over_loopback)) caller = caller_of("", "anonymous");
    }
    if (!caller) {
        if (!who.identities.empty()) {
            spdlog::info("admin API refused to '{}' on listener '{}'", who.identities.front(), l.name);
            audit_refusal(who.identities.front(), "refused", "client certificate not an admin identity");
            co_return ops::error_response(http::status::forbidden, "this client certificate is not an admin identity", v);
        }
        co_return unauthorized_here(any_identity ? "credentials needed (log in, HTTP Basic or a client certificate)"
                                                 : "the admin API needs credentials (HTTP Basic or a client certificate)");
    }

    if (path == "/api/v1/login" || path == "/api/v1/logout") co_return web_login(req, *caller);
    if (any_identity || caller->login == "admin-certificate") {
        auto answer = co_await admin_.respond(req, *caller);
        co_return answer;
    }
    const std::string resource(path.substr(1));  // "api/v1/sessions"
    if (caller->grants == nullptr || !caller->grants->may_admin(resource)) {
        const std::string shown = caller->identity.empty() ? std::string(auth::anonymous_identity) : caller->identity;
        spdlog::info("admin API refused to '{}' on listener '{}': no admin grant for {}", shown, l.name, resource);
        audit_refusal(caller->identity, "refused", "no admin grant");
        co_return ops::json_response(http::status::forbidden,
                                     {{"error", "this identity has no admin grant for " + resource}, {"identity", shown}}, v);
    }
    auto answer = co_await admin_.respond(req, *caller);
    co_return answer;
}

asio::awaitable<std::variant<std::string, http_server::response>> http_server::basic_login(const http_request& req,
                                                                                           const listener_config& l,
                                                                                           const caller& who) const {
    const unsigned v = req.version();
    auto& sec = core_.security();
    auto creds = basic_credentials(req);
    if (!creds) co_return unauthorized("malformed Authorization header: expected Basic with base64 of user:password, or Bearer", v);
    std::string user = std::move(creds->first);
    std::string password = std::move(creds->second);
    auto refuse = [&](std::string_view outcome, std::string_view why) { audit_login(user, outcome, why, who, path_of(req)); };
    if (in_clear(l, who)) {
        auth::cleanse(password);
        refuse("refused", "HTTP Basic over plain http from a remote address");
        co_return ops::error_response(http::status::forbidden, in_clear_refusal, v);
    }
    if (sec.passwords() == nullptr) {
        auth::cleanse(password);
        co_return unauthorized("no password file is configured (auth.password_file)", v);
    }
    auto blocked = [&](std::chrono::milliseconds wait) {
        const auto seconds = (wait.count() + 999) / 1000;
        refuse("refused", "too many failed logins from this address");
        return too_many_requests("too many failed logins from this address; retry in " + std::to_string(seconds) + " s",
                                 seconds, v);
    };
    const auto wait = sec.logins().blocked_for(who.address, core::steady_clock::now());
    if (wait.count() > 0) {
        auth::cleanse(password);
        co_return blocked(wait);
    }
    const auto checked = co_await queue_password_check(sec, who.address, user, std::move(password));
    if (!checked) {
        refuse("refused", "too many password checks in progress from this address");
        co_return too_many_requests("too many password checks in progress from this address; retry in 1 s", 1, v);
    }
    if (*checked == core::security::check_result::blocked)
        co_return blocked(std::max(sec.logins().blocked_for(who.address, core::steady_clock::now()), std::chrono::milliseconds(1)));
    if (*checked == core::security::check_result::wrong) {
        sec.logins().failed(who.address, core::steady_clock::now());
        refuse("failed", "bad user name or password");
        co_return unauthorized("bad user name or password", v);
    }
    sec.logins().succeeded(who.address);
    co_return user;
}

void http_server::audit_login(std::string_view identity, std::string_view outcome, std::string_view why,
                              const caller& who, std::string_view path) const {
    if (!core_.auditing()) return;
    auth::audit_event e;
    e.action = "admin-login";
    e.outcome = outcome;
    e.identity = identity;
    e.address = who.address;
    e.topic = path;
    e.reason = why;
    core_.audit(e);
}

http_server::response http_server::web_login(const http_request& req, const ops::admin_caller& caller) const {
    const unsigned v = req.version();
    if (req.method() != http::verb::post) return ops::error_response(http::status::method_not_allowed, "use POST", v);
    const std::string_view path = path_of(req);
    if (path == "/api/v1/logout") {
        if (const auto token = bearer_token(req)) logins_.close(*token);
        return ops::json_response(http::status::ok, {{"logged_out", true}}, v);
    }
    if (caller.login == "token" || caller.login == "anonymous")
        return ops::error_response(http::status::bad_request, "log in with HTTP Basic (user and password) or a client certificate", v);
    auto token = logins_.open(caller.identity, core::steady_clock::now());
    if (!token) {
        spdlog::warn("explorer: login of '{}' refused: web.max_logins ({}) logins are open", caller.identity,
                     core_.cfg().web.max_logins);
        auto res = ops::error_response(http::status::service_unavailable, "too many logins are open; retry later", v);
        res.set(http::field::retry_after, "60");
        return res;
    }
    return ops::json_response(http::status::ok,
                              {{"token", std::move(*token)},
                               {"identity", caller.identity},
                               {"expires_in_s", logins_.idle().count()}},
                              v);
}

}  // namespace strata::broker::net
