// The OPC UA client: connection loop, session, services, subscription.
// See client.hpp for the contract, channel.hpp for the secure channel.
//
// Thread-safety: client_impl lives on its strand; every member runs there.
#include "bridges/opcua/client.hpp"

#include "bridges/opcua/channel.hpp"
#include "bridges/opcua/pki.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <unordered_map>

namespace strata::bridges::opcua {

std::optional<std::uint16_t> namespace_table::index(std::string_view uri) const noexcept {
    for (std::size_t i = 0; i < uris.size(); ++i)
        if (uris[i] == uri) return static_cast<std::uint16_t>(i);
    return std::nullopt;
}

namespace detail {

namespace {

using boost::system::error_code;
using std::chrono::milliseconds;

// Standard nodes (OPC 10000-6 Annex A, NodeIds.csv).
constexpr std::uint32_t root_folder = 84;
constexpr std::uint32_t hierarchical_references = 33;
constexpr std::uint32_t namespace_array = 2255;
constexpr std::uint32_t current_time = 2258;
constexpr std::uint32_t value_attribute = 13;
constexpr std::uint32_t absolute_deadband = 1;
constexpr std::uint32_t no_more_segments = 0xFFFFFFFF;  // BrowsePathTarget.remainingPathIndex
constexpr std::size_t max_republish = 100;              // messages fetched again after one gap
constexpr std::uint32_t default_operation_limit = 1000;  // when the server states none

// The operation limits read on connection, in this order after NamespaceArray.
constexpr std::uint32_t limit_nodes[] = {11705, 11707, 11710, 11712, 11714};

// Calls fn(first, count) for consecutive slices of at most `limit` of `n`.
template <class Fn>
asio::awaitable<outcome> for_batches(std::size_t n, std::uint32_t limit, Fn fn) {
    const std::size_t step = limit == 0 ? n : limit;
    for (std::size_t at = 0; at < n; at += step) {
        outcome o = co_await fn(at, std::min(step, n - at));
        if (!o.ok()) co_return o;
    }
    co_return outcome{};
}

template <class T>
result<T> failed(outcome o) {
    result<T> r;
    static_cast<outcome&>(r) = std::move(o);
    return r;
}

outcome count_mismatch(std::string_view service) {
    return outcome::failure(uacp::bad::decoding_error, std::string(service) + ": result count differs from the request");
}

}  // namespace

struct monitored_item {
    monitor_request request;
    std::uint32_t server_id = 0;  // 0: not created on the server (yet)
};

class client_impl : public std::enable_shared_from_this<client_impl> {
public:
    using strand = asio::strand<asio::any_io_executor>;

    client_impl(asio::any_io_executor ex, client_options o, client_callbacks cb)
        : executor_(asio::make_strand(ex)), options_(std::move(o)), callbacks_(std::move(cb)),
          backoff_timer_(executor_), keep_alive_timer_(executor_), watchdog_(executor_) {}

    strand executor_;
    client_options options_;
    client_callbacks callbacks_;

    void start() {
        asio::post(executor_, [self = shared_from_this()] {
            if (self->started_ || self->stopped_) return;
            self->started_ = true;
            asio::co_spawn(self->executor_, self->run(), asio::detached);
        });
    }

    void stop() {
        auto body = [self = shared_from_this()] { self->stop_here(); };
        if (executor_.running_in_this_thread()) body();
        else asio::post(executor_, body);
    }

    // ---- operations (called through client::detail_*) ----

    asio::awaitable<result<std::vector<reference_description>>> browse(node_id node) {
        using R = result<std::vector<reference_description>>;
        if (outcome o = co_await wait_connected(); !o.ok()) co_return failed<std::vector<reference_description>>(o);
        browse_request req;
        req.requested_max_references_per_node = options_.browse_max_references;
        req.nodes_to_browse.push_back(browse_description{node, browse_direction::forward,
                                                         node_id{0, hierarchical_references}, true, 0, 0x3F});
        auto resp = co_await call<browse_response>(std::move(req));
        if (!resp.ok()) co_return failed<std::vector<reference_description>>(resp);
        if (resp.value.results.size() != 1) co_return failed<std::vector<reference_description>>(count_mismatch("Browse"));
        R out;
        browse_result* br = &resp.value.results[0];
        result<browse_next_response> next;
        for (;;) {
            if (br->status_code.bad())
                co_return failed<std::vector<reference_description>>(
                    {br->status_code, "browsing " + node.to_string() + ": " + br->status_code.name()});
            std::move(br->references.begin(), br->references.end(), std::back_inserter(out.value));
            if (!br->continuation_point || br->continuation_point->empty()) break;
            browse_next_request nreq;
            nreq.continuation_points.push_back(std::move(br->continuation_point));
            next = co_await call<browse_next_response>(std::move(nreq));
            if (!next.ok()) co_return failed<std::vector<reference_description>>(next);
            if (next.value.results.size() != 1)
                co_return failed<std::vector<reference_description>>(count_mismatch("BrowseNext"));
            br = &next.value.results[0];
        }
        co_return out;
    }

    asio::awaitable<result<node_id>> resolve(std::string path) {
        if (outcome o = co_await wait_connected(); !o.ok()) co_return failed<node_id>(o);
        node_id at{0, root_folder};
        std::string_view rest = path;
        while (!rest.empty()) {
            const std::size_t slash = rest.find('/');
            std::string_view segment = rest.substr(0, slash);
            rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
            if (segment.empty()) continue;
            auto next = co_await resolve_segment(at, segment);
            if (!next.ok()) co_return failed<node_id>({next.status, "resolving " + path + ": " + next.message});
            at = std::move(next.value);
        }
        co_return result<node_id>{{}, at};
    }

    asio::awaitable<result<std::vector<data_value>>> read(std::vector<node_id> nodes) {
        if (outcome o = co_await wait_connected(); !o.ok()) co_return failed<std::vector<data_value>>(o);
        result<std::vector<data_value>> out;
        out.value.reserve(nodes.size());
        const outcome o = co_await for_batches(nodes.size(), max_read_,
                                               [&](std::size_t at, std::size_t n) -> asio::awaitable<outcome> {
            read_request req;
            req.timestamps_to_return = timestamps_to_return::both;
            req.nodes_to_read.reserve(n);
            for (std::size_t i = at; i < at + n; ++i)
                req.nodes_to_read.push_back(read_value_id{std::move(nodes[i]), value_attribute, {}, {}});
            auto resp = co_await call<read_response>(std::move(req));
            if (!resp.ok()) co_return static_cast<outcome>(resp);
            if (resp.value.results.size() != n) co_return count_mismatch("Read");
            std::move(resp.value.results.begin(), resp.value.results.end(), std::back_inserter(out.value));
            co_return outcome{};
        });
        if (!o.ok()) co_return failed<std::vector<data_value>>(o);
        co_return out;
    }

    asio::awaitable<result<std::vector<status_code>>> write(std::vector<write_value> values) {
        if (outcome o = co_await wait_connected(); !o.ok()) co_return failed<std::vector<status_code>>(o);
        result<std::vector<status_code>> out;
        const outcome o = co_await for_batches(values.size(), max_write_,
                                               [&](std::size_t at, std::size_t n) -> asio::awaitable<outcome> {
            write_request req;
            for (std::size_t i = at; i < at + n; ++i) {
                if (values[i].attribute_id == 0) values[i].attribute_id = value_attribute;
                req.nodes_to_write.push_back(std::move(values[i]));
            }
            auto resp = co_await call<write_response>(std::move(req));
            if (!resp.ok()) co_return static_cast<outcome>(resp);
            if (resp.value.results.size() != n) co_return count_mismatch("Write");
            out.value.insert(out.value.end(), resp.value.results.begin(), resp.value.results.end());
            co_return outcome{};
        });
        if (!o.ok()) co_return failed<std::vector<status_code>>(o);
        co_return out;
    }

    asio::awaitable<result<namespace_table>> namespaces() {
        if (outcome o = co_await wait_connected(); !o.ok()) co_return failed<namespace_table>(o);
        co_return result<namespace_table>{{}, namespaces_};
    }

    asio::awaitable<result<std::vector<monitored>>> monitor(std::vector<monitor_request> requests) {
        result<std::vector<monitored>> out;
        std::vector<std::uint32_t> handles;
        for (auto& r : requests) {
            const std::uint32_t h = next_handle_++;
            items_.emplace(h, monitored_item{std::move(r), 0});
            handles.push_back(h);
            out.value.push_back({h, {}});
        }
        if (!(co_await wait_connected()).ok()) co_return out;  // created once connected
        // The connection may have created them meanwhile, or unmonitor() removed them.
        std::erase_if(handles, [&](std::uint32_t h) {
            const auto it = items_.find(h);
            return it == items_.end() || it->second.server_id != 0;
        });
        if (subscription_id_ == 0) {
            if (outcome o = co_await create_subscription(); !o.ok()) co_return failed<std::vector<monitored>>(o);
        }
        auto created = co_await create_items(handles);
        if (!created.ok()) co_return failed<std::vector<monitored>>(created);
        for (std::size_t i = 0; i < handles.size(); ++i) {
            if (!created.value[i].bad()) continue;
            const auto it = std::find_if(out.value.begin(), out.value.end(),
                                         [&](const monitored& m) { return m.handle == handles[i]; });
            it->status = created.value[i];
            it->handle = 0;
            items_.erase(handles[i]);
        }
        co_return out;
    }

    asio::awaitable<outcome> unmonitor(std::vector<std::uint32_t> handles) {
        std::vector<std::uint32_t> ids;
        for (const std::uint32_t h : handles) {
            const auto it = items_.find(h);
            if (it == items_.end()) continue;
            if (it->second.server_id != 0) ids.push_back(it->second.server_id);
            items_.erase(it);
        }
        if (!connected_ || subscription_id_ == 0 || ids.empty()) co_return outcome{};
        co_return co_await for_batches(ids.size(), max_monitored_,
                                       [&](std::size_t at, std::size_t n) -> asio::awaitable<outcome> {
            delete_monitored_items_request req;
            req.subscription_id = subscription_id_;
            req.monitored_item_ids.assign(ids.begin() + static_cast<std::ptrdiff_t>(at),
                                          ids.begin() + static_cast<std::ptrdiff_t>(at + n));
            co_return static_cast<outcome>(co_await call<delete_monitored_items_response>(std::move(req)));
        });
    }

private:
    // ---- the connection loop ----

    asio::awaitable<void> run() {
        auto self = shared_from_this();
        milliseconds delay = options_.reconnect_min;
        while (!stopped_) {
            outcome o = co_await connect_once();
            if (stopped_) {
                if (channel_) co_await close_session(channel_);  // stop() came while connecting
                break;
            }
            if (o.ok()) {
                delay = options_.reconnect_min;
                connected_ = true;
                for (auto* w : waiters_) w->cancel();
                spdlog::info("opcua {}: connected ({} {})", options_.endpoint, crypto::policy(options_.security_policy).name,
                             to_string(options_.security_mode));
                report(connection_state::connected, {});
                auto ch = channel_;
                asio::co_spawn(executor_, keep_session_alive(ch), asio::detached);
                co_await ch->wait_closed();
                connected_ = false;
                if (stopped_) break;
                o = ch->failure();
            } else if (channel_) {
                channel_->fail(o);
            }
            channel_.reset();
            last_error_ = o;
            spdlog::warn("opcua {}: disconnected: {}; next attempt in {} ms", options_.endpoint, o.describe(),
                         delay.count());
            report(connection_state::disconnected, o);
            backoff_timer_.expires_after(delay);
            error_code ec;
            co_await backoff_timer_.async_wait(awaitable_ec(ec));
            delay = std::min(delay * 2, options_.reconnect_max);
        }
    }

    void report(connection_state s, const outcome& why) {
        if (!stopped_ && callbacks_.on_state) callbacks_.on_state(s, why);
    }

    void stop_here() {
        if (stopped_) return;
        stopped_ = true;
        backoff_timer_.cancel();
        watchdog_.cancel();
        keep_alive_timer_.cancel();
        for (auto* w : waiters_) w->cancel();
        if (auto ch = channel_) asio::co_spawn(executor_, close_session(ch), asio::detached);
    }

    asio::awaitable<void> close_session(std::shared_ptr<secure_channel> ch) {
        auto self = shared_from_this();
        if (ch->is_open() && !session_id_.is_null()) {
            close_session_request req;
            req.delete_subscriptions = true;
            (void)co_await ch->call<close_session_response>(std::move(req), milliseconds(2000));
        }
        ch->close();
    }

    // Reads the server's clock now and then: keeps the session alive without
    // a subscription and finds a dead connection or a lost session.
    asio::awaitable<void> keep_session_alive(std::shared_ptr<secure_channel> ch) {
        auto self = shared_from_this();
        const milliseconds period = std::clamp(options_.session_timeout / 3, milliseconds(1000), milliseconds(30'000));
        while (ch->is_open() && !stopped_) {
            keep_alive_timer_.expires_after(period);
            error_code ec;
            co_await keep_alive_timer_.async_wait(awaitable_ec(ec));
            if (!ch->is_open() || stopped_ || channel_ != ch) co_return;
            read_request req;
            req.nodes_to_read.push_back(read_value_id{node_id{0, current_time}, value_attribute, {}, {}});
            auto r = co_await ch->call<read_response>(std::move(req), options_.request_timeout);
            if (!r.ok() && ch->is_open()) ch->fail(outcome{r.status, "session keep-alive: " + r.message});
        }
    }

    asio::awaitable<outcome> wait_connected() {
        if (connected_) co_return outcome{};
        if (stopped_) co_return outcome::failure(bad::shutdown, "client stopped");
        asio::steady_timer t(executor_, options_.request_timeout);
        waiters_.push_back(&t);
        error_code ec;
        co_await t.async_wait(awaitable_ec(ec));
        std::erase(waiters_, &t);
        if (connected_) co_return outcome{};
        co_return outcome::failure(bad::not_connected,
                                   "not connected" + (last_error_.ok() ? std::string() : ": " + last_error_.describe()));
    }

    template <class Resp, class Req>
    asio::awaitable<result<Resp>> call(Req req, std::optional<milliseconds> timeout = std::nullopt) {
        auto ch = channel_;
        if (!ch) co_return failed<Resp>(outcome::failure(bad::not_connected, "not connected"));
        co_return co_await ch->call<Resp>(std::move(req), timeout.value_or(options_.request_timeout));
    }

    // One attempt: discovery, secure channel, session, server limits, subscription.
    asio::awaitable<outcome> connect_once() {
        if (outcome o = load_pki(); !o.ok()) co_return o;
        const crypto::security_policy& policy = crypto::policy(options_.security_policy);
        if (policy.is_none() != (options_.security_mode == message_security_mode::none))
            co_return outcome::failure(bad::configuration_error,
                                       "security policy None goes with mode None, and only with it");

        auto discovery = std::make_shared<secure_channel>(executor_, options_.endpoint, channel_security{},
                                                          options_.channel_lifetime);
        channel_ = discovery;
        if (outcome o = co_await discovery->open(options_.connect_timeout); !o.ok()) co_return o;
        if (outcome o = co_await choose_endpoint(policy); !o.ok()) co_return o;
        if (!policy.is_none()) {
            discovery->close();
            channel_security sec{&policy, options_.security_mode, cert_->der, cert_->key, server_certificate_,
                                 server_key_};
            channel_ = std::make_shared<secure_channel>(executor_, options_.endpoint, std::move(sec),
                                                        options_.channel_lifetime);
            if (outcome o = co_await channel_->open(options_.connect_timeout); !o.ok()) co_return o;
        }

        bool resumed = false;
        if (!session_id_.is_null()) {
            outcome o = co_await activate_session();
            resumed = o.ok();
            if (!resumed) spdlog::info("opcua {}: old session not resumed ({}); creating one", options_.endpoint, o.describe());
        }
        if (!resumed) {
            if (outcome o = co_await create_session(); !o.ok()) co_return o;
            if (outcome o = co_await activate_session(); !o.ok()) {
                session_id_ = {};  // never activated: nothing to resume
                co_return o;
            }
        }
        if (outcome o = co_await read_server_info(); !o.ok()) co_return o;
        co_return co_await restore_subscription(resumed);
    }

    outcome load_pki() {
        if (cert_) return {};
        try {
            pki::application_certificate_options o;
            o.directory = options_.pki_directory / "own";
            o.application_uri = options_.application_uri;
            o.application_name = options_.application_name;
            cert_ = pki::load_or_create_application_certificate(o);
            auto t = pki::default_trust_options(options_.pki_directory);
            t.trust_any = options_.trust_any;
            trust_.emplace(std::move(t));
        } catch (const std::exception& e) {
            cert_.reset();
            return outcome::failure(bad::configuration_error, std::string("PKI: ") + e.what());
        }
        return {};
    }

    asio::awaitable<outcome> choose_endpoint(const crypto::security_policy& policy) {
        get_endpoints_request req;
        req.endpoint_url = options_.endpoint;
        auto resp = co_await call<get_endpoints_response>(std::move(req));
        if (!resp.ok()) co_return outcome{resp.status, "GetEndpoints: " + resp.message};
        const auto it = std::find_if(resp.value.endpoints.begin(), resp.value.endpoints.end(), [&](const auto& e) {
            return e.security_policy_uri == policy.uri && e.security_mode == options_.security_mode;
        });
        if (it == resp.value.endpoints.end()) {
            std::string offered;
            for (const auto& e : resp.value.endpoints)
                offered += std::string(offered.empty() ? "" : ", ") + e.security_policy_uri.value_or("?") + " " +
                           std::string(to_string(e.security_mode));
            co_return outcome::failure(bad::security_policy_rejected,
                                       "the server has no endpoint " + std::string(policy.name) + " " +
                                           std::string(to_string(options_.security_mode)) + " (it offers " + offered + ")");
        }
        endpoint_ = std::move(*it);
        server_certificate_.clear();
        server_key_ = {};
        const bool needs_certificate = !policy.is_none() || options_.username.has_value();
        if (!needs_certificate) co_return outcome{};
        const auto leaf = pki::leaf_certificate(endpoint_.server_certificate.value_or(crypto::bytes{}));
        if (!leaf) co_return outcome::failure(bad::certificate_invalid, "the endpoint carries no server certificate");
        const pki::trust_verdict verdict = trust_->check(*endpoint_.server_certificate);
        if (!verdict.trusted) co_return outcome::failure(bad::certificate_untrusted, verdict.error);
        server_certificate_ = *leaf;
        server_key_ = pki::certificate_public_key(*leaf);
        if (!server_key_) co_return outcome::failure(bad::certificate_invalid, "the server certificate has no RSA key");
        co_return outcome{};
    }

    asio::awaitable<outcome> create_session() {
        const crypto::security_policy& policy = crypto::policy(options_.security_policy);
        create_session_request req;
        req.client_description.application_uri = options_.application_uri;
        req.client_description.product_uri = "urn:strata";
        req.client_description.application_name.text = options_.application_name;
        req.client_description.application_type = application_type::client;
        req.endpoint_url = options_.endpoint;
        req.session_name = options_.application_name;
        const crypto::bytes nonce = crypto::random_bytes(32);
        req.client_nonce = nonce;
        req.client_certificate = cert_->der;
        req.requested_session_timeout = static_cast<double>(options_.session_timeout.count());
        channel_->authentication_token = {};
        auto resp = co_await call<create_session_response>(std::move(req));
        if (!resp.ok()) co_return outcome{resp.status, "CreateSession: " + resp.message};
        if (!policy.is_none() &&
            !crypto::verify_certificate_and_nonce(server_key_, cert_->der, nonce,
                                                  resp.value.server_signature.signature.value_or(crypto::bytes{})))
            co_return outcome::failure(bad::security_checks_failed,
                                       "CreateSession: the server's signature over our certificate and nonce is invalid");
        session_id_ = resp.value.session_id;
        authentication_token_ = resp.value.authentication_token;
        server_nonce_ = resp.value.server_nonce.value_or(crypto::bytes{});
        co_return outcome{};
    }

    asio::awaitable<outcome> activate_session() {
        const crypto::security_policy& policy = crypto::policy(options_.security_policy);
        activate_session_request req;
        if (!policy.is_none()) {
            req.client_signature.algorithm = std::string(policy.asymmetric_signature_uri);
            req.client_signature.signature =
                crypto::sign_certificate_and_nonce(cert_->key, server_certificate_, server_nonce_);
        }
        auto token = identity_token();
        if (!token.ok()) co_return static_cast<outcome>(token);
        req.user_identity_token = std::move(token.value);
        channel_->authentication_token = authentication_token_;
        auto resp = co_await call<activate_session_response>(std::move(req));
        if (!resp.ok()) co_return outcome{resp.status, "the server refused the session (ActivateSession): " + resp.message};
        server_nonce_ = resp.value.server_nonce.value_or(crypto::bytes{});
        co_return outcome{};
    }

    result<extension_object> identity_token() const {
        const user_token_type type = options_.username ? user_token_type::user_name : user_token_type::anonymous;
        const auto& policies = endpoint_.user_identity_tokens;
        const auto it = std::find_if(policies.begin(), policies.end(), [&](const auto& p) { return p.token_type == type; });
        if (it == policies.end())
            return failed<extension_object>(outcome::failure(
                0x80200000, "the endpoint accepts no " + std::string(to_string(type)) + " identity (BadIdentityTokenInvalid)"));
        if (type == user_token_type::anonymous)
            return {{}, make_extension_object(anonymous_identity_token{it->policy_id})};
        user_name_identity_token t;
        t.policy_id = it->policy_id;
        t.user_name = *options_.username;
        const std::string uri = it->security_policy_uri.value_or("").empty() ? endpoint_.security_policy_uri.value_or("")
                                                                              : *it->security_policy_uri;
        const crypto::security_policy* p = crypto::find_policy_by_uri(uri);
        if (!p) return failed<extension_object>(outcome::failure(bad::security_policy_rejected, "user token policy " + uri));
        const std::string& password = options_.password.value_or("");
        if (p->is_none()) {
            t.password = crypto::bytes(password.begin(), password.end());
        } else {
            t.password = crypto::encrypt_user_password(server_key_, password, server_nonce_);
            t.encryption_algorithm = std::string(p->asymmetric_encryption_uri);
        }
        return {{}, make_extension_object(std::move(t))};
    }

    asio::awaitable<outcome> read_server_info() {
        read_request req;
        req.nodes_to_read.push_back(read_value_id{node_id{0, namespace_array}, value_attribute, {}, {}});
        for (const std::uint32_t n : limit_nodes) req.nodes_to_read.push_back(read_value_id{node_id{0, n}, value_attribute, {}, {}});
        auto resp = co_await call<read_response>(std::move(req));
        if (!resp.ok()) co_return outcome{resp.status, "reading the server's namespaces and limits: " + resp.message};
        if (resp.value.results.size() != 1 + std::size(limit_nodes)) co_return count_mismatch("Read");
        namespaces_.uris.clear();
        if (resp.value.results[0].value)
            if (const auto* a = resp.value.results[0].value->get_if<std::vector<ua_string>>())
                for (const auto& u : *a) namespaces_.uris.push_back(u.value_or(""));
        std::uint32_t* limits[] = {&max_read_, &max_write_, &max_browse_, &max_translate_, &max_monitored_};
        for (std::size_t i = 0; i < std::size(limits); ++i) {
            const auto& v = resp.value.results[i + 1].value;
            const std::uint32_t* n = v ? v->get_if<std::uint32_t>() : nullptr;
            *limits[i] = n && *n != 0 ? *n : default_operation_limit;
        }
        co_return outcome{};
    }

    asio::awaitable<result<node_id>> resolve_segment(const node_id& start, std::string_view segment) {
        std::vector<std::uint16_t> candidates;
        const std::size_t colon = segment.find(':');
        std::uint16_t ns = 0;
        const bool prefixed = colon != std::string_view::npos && colon > 0 &&
                              std::from_chars(segment.data(), segment.data() + colon, ns).ptr == segment.data() + colon;
        if (prefixed) {
            candidates.push_back(ns);
            segment.remove_prefix(colon + 1);
        } else {
            for (std::size_t i = 0; i < std::max<std::size_t>(1, namespaces_.uris.size()); ++i)
                candidates.push_back(static_cast<std::uint16_t>(i));
        }
        std::vector<node_id> found;
        const outcome o = co_await for_batches(candidates.size(), max_translate_,
                                               [&](std::size_t at, std::size_t n) -> asio::awaitable<outcome> {
            translate_browse_paths_to_node_ids_request req;
            for (std::size_t i = at; i < at + n; ++i) {
                relative_path_element e{node_id{0, hierarchical_references}, false, true,
                                        qualified_name{candidates[i], std::string(segment)}};
                req.browse_paths.push_back(browse_path{start, relative_path{{std::move(e)}}});
            }
            auto resp = co_await call<translate_browse_paths_to_node_ids_response>(std::move(req));
            if (!resp.ok()) co_return static_cast<outcome>(resp);
            if (resp.value.results.size() != n) co_return count_mismatch("TranslateBrowsePathsToNodeIds");
            for (const auto& r : resp.value.results)
                for (const auto& t : r.targets)
                    if (!r.status_code.bad() && t.remaining_path_index == no_more_segments && t.target_id.server_index == 0 &&
                        std::find(found.begin(), found.end(), t.target_id.id) == found.end())
                        found.push_back(t.target_id.id);
            co_return outcome{};
        });
        if (!o.ok()) co_return failed<node_id>(o);
        if (found.empty())
            co_return failed<node_id>(outcome::failure(bad::no_match, "no \"" + std::string(segment) + "\" below " + start.to_string()));
        if (found.size() > 1)
            co_return failed<node_id>(outcome::failure(bad::no_match, "\"" + std::string(segment) + "\" is ambiguous below " +
                                                                          start.to_string() + "; give its namespace as N:name"));
        co_return result<node_id>{{}, std::move(found[0])};
    }

    // ---- the subscription ----

    asio::awaitable<outcome> restore_subscription(bool session_resumed) {
        auto ch = channel_;
        if (subscription_id_ != 0 && !session_resumed) {
            transfer_subscriptions_request req;
            req.subscription_ids.push_back(subscription_id_);
            req.send_initial_values = true;
            auto resp = co_await call<transfer_subscriptions_response>(std::move(req));
            const bool moved = resp.ok() && resp.value.results.size() == 1 && !resp.value.results[0].status_code.bad();
            if (!moved) {
                spdlog::info("opcua {}: subscription {} not transferred; creating a new one", options_.endpoint,
                             subscription_id_);
                subscription_id_ = 0;
            }
        }
        if (subscription_id_ == 0 && !items_.empty()) {
            for (auto& [h, item] : items_) item.server_id = 0;
            if (outcome o = co_await create_subscription(); !o.ok()) co_return o;
            std::vector<std::uint32_t> handles;
            for (const auto& [h, item] : items_) handles.push_back(h);
            auto created = co_await create_items(handles);
            if (!created.ok()) co_return static_cast<outcome>(created);
        } else if (subscription_id_ != 0) {
            start_publishing(ch);
        }
        co_return outcome{};
    }

    asio::awaitable<outcome> create_subscription() {
        create_subscription_request req;
        req.requested_publishing_interval = static_cast<double>(options_.publish_interval.count());
        req.requested_max_keep_alive_count = options_.keep_alive_count;
        req.requested_lifetime_count = options_.keep_alive_count * 3;
        req.publishing_enabled = true;
        auto resp = co_await call<create_subscription_response>(std::move(req));
        if (!resp.ok()) co_return outcome{resp.status, "CreateSubscription: " + resp.message};
        subscription_id_ = resp.value.subscription_id;
        publishing_interval_ = milliseconds(static_cast<std::int64_t>(resp.value.revised_publishing_interval));
        keep_alive_count_ = std::max<std::uint32_t>(1, resp.value.revised_max_keep_alive_count);
        last_sequence_.reset();
        acks_.clear();
        start_publishing(channel_);
        co_return outcome{};
    }

    // Creates the items of `handles` on the server; their statuses in order.
    asio::awaitable<result<std::vector<status_code>>> create_items(const std::vector<std::uint32_t>& handles) {
        result<std::vector<status_code>> out;
        std::vector<monitored_item_create_request> requests;  // taken now: unmonitor() may run between batches
        requests.reserve(handles.size());
        for (const std::uint32_t h : handles) requests.push_back(create_request(h, items_.at(h).request));
        const outcome o = co_await for_batches(handles.size(), max_monitored_,
                                               [&](std::size_t at, std::size_t n) -> asio::awaitable<outcome> {
            create_monitored_items_request req;
            req.subscription_id = subscription_id_;
            req.timestamps_to_return = timestamps_to_return::both;
            req.items_to_create.assign(std::make_move_iterator(requests.begin() + static_cast<std::ptrdiff_t>(at)),
                                       std::make_move_iterator(requests.begin() + static_cast<std::ptrdiff_t>(at + n)));
            auto resp = co_await call<create_monitored_items_response>(std::move(req));
            if (!resp.ok()) co_return outcome{resp.status, "CreateMonitoredItems: " + resp.message};
            if (resp.value.results.size() != n) co_return count_mismatch("CreateMonitoredItems");
            for (std::size_t i = 0; i < n; ++i) {
                const auto& r = resp.value.results[i];
                out.value.push_back(r.status_code);
                const auto it = items_.find(handles[at + i]);
                if (it != items_.end() && !r.status_code.bad()) it->second.server_id = r.monitored_item_id;
                if (r.status_code.bad())
                    spdlog::warn("opcua {}: monitoring {} refused: {}", options_.endpoint,
                                 it == items_.end() ? "?" : it->second.request.node.to_string(), r.status_code.name());
            }
            co_return outcome{};
        });
        if (!o.ok()) co_return failed<std::vector<status_code>>(o);
        co_return out;
    }

    static monitored_item_create_request create_request(std::uint32_t handle, const monitor_request& m) {
        monitored_item_create_request r;
        r.item_to_monitor = read_value_id{m.node, value_attribute, {}, {}};
        r.monitoring_mode = monitoring_mode::reporting;
        r.requested_parameters.client_handle = handle;
        r.requested_parameters.sampling_interval = static_cast<double>(m.sampling_interval.count());
        r.requested_parameters.queue_size = m.queue_size;
        r.requested_parameters.discard_oldest = true;
        if (m.deadband > 0)
            r.requested_parameters.filter = make_extension_object(
                data_change_filter{data_change_trigger::status_value, absolute_deadband, m.deadband});
        return r;
    }

    [[nodiscard]] milliseconds keep_alive_timeout() const noexcept {
        return publishing_interval_ * keep_alive_count_ * 3 / 2 + options_.request_timeout;
    }

    void start_publishing(const std::shared_ptr<secure_channel>& ch) {
        if (!ch || publishing_on_ == ch.get()) return;
        publishing_on_ = ch.get();
        for (std::uint32_t i = 0; i < std::max<std::uint32_t>(1, options_.publish_requests); ++i)
            asio::co_spawn(executor_, publish_loop(ch), asio::detached);
        asio::co_spawn(executor_, watchdog_loop(ch), asio::detached);
    }

    asio::awaitable<void> publish_loop(std::shared_ptr<secure_channel> ch) {
        auto self = shared_from_this();
        while (ch->is_open() && !stopped_ && subscription_id_ != 0) {
            publish_request req;
            req.subscription_acknowledgements.swap(acks_);
            auto resp = co_await ch->call<publish_response>(std::move(req), keep_alive_timeout());
            if (!ch->is_open() || stopped_) co_return;
            if (!resp.ok()) {
                const std::uint32_t code = resp.status.code();
                if (code == bad::too_many_publish_requests || code == bad::no_subscription) co_return;
                if (code != bad::timeout) spdlog::warn("opcua {}: Publish: {}", options_.endpoint, resp.describe());
                continue;
            }
            handle_publish(ch, resp.value);
        }
    }

    void handle_publish(const std::shared_ptr<secure_channel>& ch, publish_response& p) {
        watchdog_.expires_after(keep_alive_timeout());
        if (p.subscription_id != subscription_id_) return;
        notification_message& msg = p.notification_message;
        if (msg.notification_data.empty()) return;  // keep-alive: its number is the next one's
        const std::uint32_t seq = msg.sequence_number;
        if (last_sequence_ && seq > *last_sequence_ + 1)
            asio::co_spawn(executor_, republish(ch, *last_sequence_ + 1, seq - 1), asio::detached);
        if (!last_sequence_ || seq > *last_sequence_) last_sequence_ = seq;
        acks_.push_back({subscription_id_, seq});
        dispatch(ch, msg);
    }

    asio::awaitable<void> republish(std::shared_ptr<secure_channel> ch, std::uint32_t from, std::uint32_t to) {
        auto self = shared_from_this();
        to = std::min<std::uint32_t>(to, from + max_republish - 1);
        for (std::uint32_t s = from; s <= to && ch->is_open() && !stopped_; ++s) {
            republish_request req;
            req.subscription_id = subscription_id_;
            req.retransmit_sequence_number = s;
            auto resp = co_await ch->call<republish_response>(std::move(req), options_.request_timeout);
            if (!resp.ok()) {
                spdlog::warn("opcua {}: notification {} lost: {}", options_.endpoint, s, resp.describe());
                continue;
            }
            acks_.push_back({subscription_id_, s});
            dispatch(ch, resp.value.notification_message);
        }
    }

    void dispatch(const std::shared_ptr<secure_channel>& ch, const notification_message& msg) {
        for (const auto& data : msg.notification_data) {
            if (const auto* dc = body_as<data_change_notification>(data)) {
                for (const auto& item : dc->monitored_items)
                    if (!stopped_ && callbacks_.on_data_change && items_.contains(item.client_handle))
                        callbacks_.on_data_change(item.client_handle, item.value);
            } else if (const auto* sc = body_as<status_change_notification>(data); sc && sc->status.bad()) {
                // The subscription is gone on the server (timed out): start over.
                subscription_id_ = 0;
                ch->fail(outcome{sc->status, "subscription ended by the server"});
            }
        }
    }

    asio::awaitable<void> watchdog_loop(std::shared_ptr<secure_channel> ch) {
        auto self = shared_from_this();
        watchdog_.expires_after(keep_alive_timeout());
        while (ch->is_open() && !stopped_) {
            error_code ec;
            co_await watchdog_.async_wait(awaitable_ec(ec));
            if (!ch->is_open() || stopped_ || publishing_on_ != ch.get()) co_return;
            if (ec) continue;  // moved by a Publish response
            if (subscription_id_ == 0) {
                watchdog_.expires_after(keep_alive_timeout());
                continue;
            }
            ch->fail(outcome::failure(bad::timeout, "no Publish response within " +
                                                        std::to_string(keep_alive_timeout().count()) +
                                                        " ms (keep-alive count x publishing interval)"));
        }
    }

    bool started_ = false;
    bool stopped_ = false;
    bool connected_ = false;
    outcome last_error_;
    std::shared_ptr<secure_channel> channel_;
    std::vector<asio::steady_timer*> waiters_;
    asio::steady_timer backoff_timer_;
    asio::steady_timer keep_alive_timer_;

    std::optional<pki::application_certificate> cert_;
    std::optional<pki::trust_list> trust_;

    endpoint_description endpoint_;
    crypto::bytes server_certificate_;  // leaf DER
    crypto::rsa_key server_key_;
    node_id session_id_, authentication_token_;
    crypto::bytes server_nonce_;

    std::uint32_t max_read_ = default_operation_limit, max_write_ = default_operation_limit,
                  max_browse_ = default_operation_limit, max_translate_ = default_operation_limit,
                  max_monitored_ = default_operation_limit;
    namespace_table namespaces_;

    std::uint32_t subscription_id_ = 0;
    milliseconds publishing_interval_{1000};
    std::uint32_t keep_alive_count_ = 10;
    std::unordered_map<std::uint32_t, monitored_item> items_;
    std::uint32_t next_handle_ = 1;
    std::vector<subscription_acknowledgement> acks_;
    std::optional<std::uint32_t> last_sequence_;
    const secure_channel* publishing_on_ = nullptr;  // the channel the publish loops run on
    asio::steady_timer watchdog_;
};

}  // namespace detail

client::client(asio::any_io_executor executor, client_options options, client_callbacks callbacks)
    : impl_(std::make_shared<detail::client_impl>(std::move(executor), std::move(options), std::move(callbacks))) {}

client::~client() { stop(); }

asio::strand<asio::any_io_executor> client::executor() const noexcept { return impl_->executor_; }

void client::start() { impl_->start(); }
void client::stop() { impl_->stop(); }

asio::awaitable<result<std::vector<reference_description>>> client::detail_browse(impl_ptr p, node_id n) {
    co_return co_await p->browse(std::move(n));
}
asio::awaitable<result<node_id>> client::detail_resolve(impl_ptr p, std::string path) {
    co_return co_await p->resolve(std::move(path));
}
asio::awaitable<result<std::vector<data_value>>> client::detail_read(impl_ptr p, std::vector<node_id> nodes) {
    co_return co_await p->read(std::move(nodes));
}
asio::awaitable<result<std::vector<status_code>>> client::detail_write(impl_ptr p, std::vector<write_value> values) {
    co_return co_await p->write(std::move(values));
}
asio::awaitable<result<namespace_table>> client::detail_namespaces(impl_ptr p, int) {
    co_return co_await p->namespaces();
}
asio::awaitable<result<std::vector<monitored>>> client::detail_monitor(impl_ptr p, std::vector<monitor_request> items) {
    co_return co_await p->monitor(std::move(items));
}
asio::awaitable<outcome> client::detail_unmonitor(impl_ptr p, std::vector<std::uint32_t> handles) {
    co_return co_await p->unmonitor(std::move(handles));
}

}  // namespace strata::bridges::opcua
