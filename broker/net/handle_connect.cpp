// CONNECT, DISCONNECT and AUTH: how a client starts and ends its
// connection, who it is (authentication), and what the broker promises it
// in CONNACK.
//
// Authentication (auth/identity.hpp decides which kind): anonymous and
// certificate logins complete at once; a password is checked on the
// security worker thread (the slow hash must not stall a network thread)
// while the connection's input waits; SCRAM-SHA-256 runs as an MQTT 5 AUTH
// exchange. Every outcome is audited; bad credentials count against the
// source address (auth/limits.hpp login_guard).
#include "broker/core/admission.hpp"
#include "broker/ops/alerts.hpp"
#include "broker/hosts/bridge_host.hpp"
#include "broker/core/router.hpp"
#include "broker/core/stats.hpp"
#include "broker/net/client_protocol.hpp"
#include "namespace/topic.hpp"

#include "auth/identity.hpp"

#include <boost/asio/post.hpp>
#include <algorithm>
#include <spdlog/spdlog.h>

namespace strata::broker::net {

namespace {

constexpr std::uint32_t never_expires = 0xFFFFFFFF;
constexpr std::string_view wide_subscriptions_property = "strata-wide-subscriptions";

}  // namespace

void client_protocol::handle_connect(mqtt::connect& c) {
    using mqtt::reason_code;
    version_ = c.version;
    const bool v5 = version_ == mqtt::protocol_version::v5;
    client_id_ = c.client_id;
    bridge_client_ = c.bridge;
    filter_wide_ = v5 && std::any_of(c.props.user_properties.begin(), c.props.user_properties.end(), [](const auto& p) {
                       return p.first == wide_subscriptions_property && p.second == "filter";
                   });
    if (v5 && c.props.request_problem_information) {
        request_problem_info_ = *c.props.request_problem_information != 0;
    }
    // Every packet to this client fits this, from the first CONNACK or AUTH on.
    if (v5) client_max_packet_size_ = c.props.maximum_packet_size.value_or(268'435'460);

    if (const auto& r = core_.cfg().redirect) {
        refuse_connect(r->permanent ? reason_code::server_moved : reason_code::use_another_server,
                       "this broker redirects its clients", r->server_reference);
        return;
    }
    authenticate(c);
}

std::string client_protocol::address() const {
    // remote_ is "address:port" ("?" when unknown).
    const auto colon = remote_.rfind(':');
    return colon == std::string::npos ? remote_ : remote_.substr(0, colon);
}

void client_protocol::audit(std::string_view action, std::string_view outcome, std::string_view topic,
                       std::string_view reason) {
    if (!core_.auditing()) return;
    auth::audit_event e;
    e.action = action;
    e.outcome = outcome;
    e.identity = identity_;
    e.roles = grants_ ? &grants_->roles() : nullptr;
    e.client_id = client_id_;
    e.address = remote_;
    const std::string ip = address();
    e.peer = ip;
    e.topic = topic;
    e.reason = reason;
    core_.audit(e);
}

void client_protocol::authenticate(mqtt::connect& c) {
    using mqtt::reason_code;
    auto& sec = core_.security();
    const bool v5 = version_ == mqtt::protocol_version::v5;

    const auto passwords = sec.passwords();
    if (v5 && c.props.authentication_method) {
        if (*c.props.authentication_method != auth::scram_method || passwords == nullptr) {
            refuse_connect(reason_code::bad_authentication_method,
                           passwords == nullptr ? "no authentication method is configured"
                                                : "the supported authentication method is SCRAM-SHA-256");
            return;
        }
        if (login_blocked()) return;
        extras().scram = std::make_unique<auth::scram_server>();
        auto step = extras().scram->start(c.props.authentication_data.value_or(""), *passwords);
        if (!step.ok) {
            login_failed(extras().scram->user(), reason_code::bad_user_name_or_password, step.error);
            return;
        }
        extras().pending_connect = std::make_unique<mqtt::connect>(std::move(c));
        state_ = state::authenticating;
        mqtt::auth a;
        a.code = reason_code::continue_authentication;
        a.props.authentication_method = std::string(auth::scram_method);
        a.props.authentication_data = std::move(step.data);
        send(a);
        return;
    }

    auth::login_request req;
    req.username = c.username;
    req.has_password = c.password.has_value();
    if (extras_) req.certificate_identity = extras_->certificate_identity;
    req.password_file = passwords != nullptr;
    req.anonymous_allowed = sec.anonymous_allowed(loopback_);
    const auto plan = auth::plan_login(req);
    switch (plan.kind) {
    case auth::login_kind::refused:
        login_failed(c.username.value_or(""),
                     plan.refusal == auth::login_refusal::bad_credentials ? reason_code::bad_user_name_or_password
                                                                          : reason_code::not_authorized,
                     plan.why);
        return;
    case auth::login_kind::anonymous:
    case auth::login_kind::certificate:
        identity_ = plan.identity;
        accept_connect(c);
        return;
    case auth::login_kind::password:
        break;
    }
    if (login_blocked()) return;
    state_ = state::verifying;
    std::string user = *c.username;
    std::string password = std::move(*c.password);
    extras().pending_connect = std::make_unique<mqtt::connect>(std::move(c));
    const bool queued = sec.verify_password(
        address(), std::move(user), std::move(password), [later = later()](core::security::check_result r) {
            later([r](client_protocol& p) { p.password_checked(r); });
        });
    if (queued) return;
    // This address has its share of password checks queued: refused at once
    // rather than queued behind them (and not counted as a failed login).
    state_ = state::awaiting_connect;
    auto pending = std::move(extras().pending_connect);
    identity_ = *pending->username;  // as claimed, for the audit line
    const char* why = "too many password checks in progress from this address";
    audit("login", "refused", {}, why);
    identity_.clear();
    refuse_connect(mqtt::reason_code::banned, why);
}

void client_protocol::password_checked(core::security::check_result r) {
    if (state_ != state::verifying) return;  // closed meanwhile
    state_ = state::awaiting_connect;
    auto c = std::move(extras().pending_connect);
    // Runs from a posted handler, outside the read path's guard: an
    // exception here must close this connection only.
    try {
        switch (r) {
        case core::security::check_result::ok:
            identity_ = *c->username;
            core_.security().logins().succeeded(address());
            accept_connect(*c);
            break;
        case core::security::check_result::wrong:
            login_failed(*c->username, mqtt::reason_code::bad_user_name_or_password, "bad user name or password");
            break;
        case core::security::check_result::blocked:
            // Earlier checks from this address failed while this one waited.
            refuse_blocked(std::max(core_.security().logins().blocked_for(address(), core::steady_clock::now()),
                                    std::chrono::milliseconds(1)));
            break;
        }
    } catch (const std::exception& e) {
        internal_error(e);
        return;
    }
    io_.resume_input();
}

bool client_protocol::login_blocked() {
    const auto wait = core_.security().logins().blocked_for(address(), core::steady_clock::now());
    if (wait.count() == 0) return false;
    refuse_blocked(wait);
    return true;
}

void client_protocol::refuse_blocked(std::chrono::milliseconds wait) {
    const std::string why = "too many failed logins from this address; retry in " +
                            std::to_string((wait.count() + 999) / 1000) + " s";
    audit("login", "refused", {}, why);
    refuse_connect(mqtt::reason_code::banned, why.c_str());
}

void client_protocol::login_failed(std::string_view user, mqtt::reason_code code, std::string_view why) {
    if (code == mqtt::reason_code::bad_user_name_or_password) {
        core_.security().logins().failed(address(), core::steady_clock::now());
    }
    identity_ = std::string(user);  // as claimed, for the audit line
    audit("login", "failed", {}, why);
    identity_.clear();
    const std::string reason(why);
    refuse_connect(code, reason.c_str());
}

void client_protocol::accept_connect(mqtt::connect& c) {
    using mqtt::reason_code;
    const bool v5 = version_ == mqtt::protocol_version::v5;
    if (core_.counters().clients_connected.load(std::memory_order_relaxed) >=
        static_cast<std::int64_t>(core_.cfg().limits.max_connections)) {
        refuse_connect(reason_code::quota_exceeded, "connection limit reached");
        return;
    }
    if (hosts::reserved_client_id(client_id_)) {
        refuse_connect(reason_code::client_identifier_not_valid, "client identifiers starting with '$bridge/' are the broker's own");
        return;
    }
    bool assigned = false;
    if (client_id_.empty()) {
        if (!v5 && !c.clean_start) {
            refuse_connect(reason_code::client_identifier_not_valid,
                           "an empty client identifier needs clean session");
            return;
        }
        client_id_ = core_.assign_client_id();
        assigned = v5;
    }
    const negotiated n = negotiate(c);
    core::message_ptr will;
    std::uint32_t will_delay = 0;
    if (!take_will(c, will, will_delay)) return;
    core::open_result opened;
    if (!open_session(c, n.expiry, std::move(will), will_delay, opened)) return;
    send_connack(c, n, assigned, opened.present);
    if (opened.previous) opened.previous->kick(mqtt::reason_code::session_taken_over, opened.previous_generation);
    arm_keepalive();
}

client_protocol::negotiated client_protocol::negotiate(const mqtt::connect& c) {
    const auto& limits = core_.cfg().limits;
    const bool v5 = version_ == mqtt::protocol_version::v5;
    negotiated n;
    // Keep-alive: capped by limits.max_keepalive in both versions, so that
    // no connection stays open unbounded when its peer vanished. A 5.0
    // client is told the value to use (Server Keep Alive); 3.1.1 has no way
    // to say it, so the cap applies silently: the client is disconnected
    // after 1.5 x max_keepalive without a packet. (Mosquitto refuses such a
    // 3.1.1 client with return code 2 instead; a device that cannot change
    // its keep-alive would then never connect.)
    keep_alive_ = c.keep_alive;
    if (keep_alive_ == 0 || keep_alive_ > limits.max_keepalive) {
        keep_alive_ = limits.max_keepalive;
        if (v5) n.server_keep_alive = keep_alive_;
    }

    // Session lifetime: 3.1.1 clean session false lives until cleaned.
    if (v5) {
        n.expiry = c.props.session_expiry_interval.value_or(0);
    } else if (!c.clean_start) {
        n.expiry = never_expires;
    }
    if (n.expiry > limits.max_session_expiry) {
        n.expiry = limits.max_session_expiry;
        if (v5) n.capped_expiry = n.expiry;
    }

    // What the client accepts from us.
    if (v5) {
        client_receive_maximum_ = c.props.receive_maximum.value_or(65535);
        client_topic_alias_max_ = std::min(c.props.topic_alias_maximum.value_or(0), limits.topic_alias_maximum);
        inbound_aliases_.assign(std::size_t{limits.topic_alias_maximum} + 1, std::string());
    }
    window_ = std::min<std::size_t>(client_receive_maximum_, limits.max_inflight);
    receive_maximum_ = limits.receive_maximum;
    return n;
}

bool client_protocol::take_will(mqtt::connect& c, core::message_ptr& will, std::uint32_t& delay) {
    using mqtt::reason_code;
    if (c.will) {
        if (!ns::valid_topic_name(c.will->topic)) {
            refuse_connect(reason_code::topic_name_invalid, "invalid will topic");
            return false;
        }
        auto m = std::make_shared<core::message>();
        m->topic = std::move(c.will->topic);
        m->payload = std::move(c.will->payload);
        m->qos = c.will->qos;
        m->retain = c.will->retain;
        delay = c.will->props.will_delay_interval.value_or(0);
        c.will->props.will_delay_interval.reset();
        m->props = std::move(c.will->props);
        will = std::move(m);
    }

    // Identity: limits, grants (placeholders need the final client id), and
    // the will, which is a publish and gets a PUBLISH's checks in a
    // PUBLISH's order (admit_will): where it may go and the grants first,
    // then the namespace model. A client that may not publish there learns
    // nothing about the model, and its payload is never parsed.
    auto& sec = core_.security();
    if (auto* identities = sec.identities()) {
        identity_state_ = identities->acquire(identity_);
        if (!identity_state_) {
            audit("login", "refused", {}, "connection limit of this identity reached");
            refuse_connect(reason_code::quota_exceeded, "connection limit of this identity reached");
            return false;
        }
    }
    grants_ = sec.policy()->compile(identity_, client_id_);
    return !will || check_will(will);
}

bool client_protocol::open_session(mqtt::connect& c, std::uint32_t expiry, core::message_ptr will,
                                   std::uint32_t will_delay, core::open_result& opened) {
    using mqtt::reason_code;
    // The session of this client id may belong to another identity
    // (auth.takeover): refused, or taken over (started clean when roles
    // keep the identities' messages apart).
    core::claimant who;
    who.identity = identity_;
    who.grants = grants_;
    if (core_.cfg().auth.takeover == auth_config::takeover_policy::same_identity) {
        who.on_other = core::other_identity::refuse;
    } else {
        who.on_other = core_.security().roles_active() ? core::other_identity::start_clean
                                                          : core::other_identity::resume;
    }
    opened = core_.open_session(client_id_, c.clean_start, io_.shared_owner(), &who);
    if (opened.refused) {
        audit("login", "refused", {}, "client identifier in use by another identity");
        refuse_connect(reason_code::client_identifier_not_valid, "client identifier in use by another identity");
        return false;
    }
    audit("login", "allowed");
    ops::alerts::connected(client_id_);

    session_ = opened.s;
    generation_ = opened.generation;
    session_->set_expiry_interval(expiry);
    std::optional<core::message_ptr> kept;
    if (will) kept = std::move(will);
    session_->set_will(std::move(kept), will_delay);
    session_->set_disconnected_at(0);
    core_.save_session(session_);
    state_ = state::connected;
    connected_ = true;
    core_.counters().clients_connected.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void client_protocol::send_connack(const mqtt::connect& c, const negotiated& n, bool assigned, bool present) {
    // What negotiate() and the decoder hold to (the config may have been
    // reloaded meanwhile).
    mqtt::connack ack;
    ack.session_present = present;
    if (version_ == mqtt::protocol_version::v5) {
        auto& p = ack.props;
        if (receive_maximum_ != 65535) p.receive_maximum = receive_maximum_;
        p.maximum_packet_size = decode_limits_.max_packet_size;
        const auto aliases = static_cast<std::uint16_t>(inbound_aliases_.empty() ? 0 : inbound_aliases_.size() - 1);
        if (aliases > 0) p.topic_alias_maximum = aliases;
        if (assigned) p.assigned_client_identifier = client_id_;
        p.server_keep_alive = n.server_keep_alive;
        p.session_expiry_interval = n.capped_expiry;
        // A bridge of another Strata learns whom it reached (loop prevention).
        if (hosts::asks_broker_id(c.props)) p.user_properties.emplace_back(hosts::broker_id_property, core_.broker_id());
        if (extras_ && extras_->connack_auth_data) {
            p.authentication_method = std::string(auth::scram_method);
            p.authentication_data = std::move(extras_->connack_auth_data);
            extras_->connack_auth_data.reset();
        }
    }
    spdlog::debug("{} '{}': connected as {} (v{}, clean {}, keep-alive {}s, session present {})", remote_,
                  client_id_, identity_.empty() ? "anonymous" : "'" + identity_ + "'", static_cast<int>(version_),
                  c.clean_start, keep_alive_, present);
    send(ack);
}

bool client_protocol::check_will(core::message_ptr& will) {
    using mqtt::reason_code;
    const core::admission a = core_.admit_will(as_publisher(), will);
    switch (a.what) {
    case core::admission::outcome::denied:
        audit("login", "refused", will->topic, "not authorized to publish the will");
        refuse_connect(reason_code::not_authorized, a.reason.c_str());
        return false;
    case core::admission::outcome::rejected:
        if (version_ == mqtt::protocol_version::v5) {
            const std::string why = "will: " + a.reason;
            refuse_connect(a.code, why.c_str());
            return false;
        }
        spdlog::info("{} '{}': will on '{}' dropped (namespace model, 3.1.1 client): {}", remote_, client_id_,
                     will->topic, a.reason);
        will.reset();
        return true;
    case core::admission::outcome::quarantined:
        spdlog::debug("{} '{}': will quarantined to '{}': {}", remote_, client_id_, a.copy->topic, a.reason);
        return true;
    case core::admission::outcome::published:
        if (!a.reason.empty()) log_warned(will->topic, "will: " + a.reason);
        return true;
    case core::admission::outcome::store_down:
    case core::admission::outcome::rate_limited:
    case core::admission::outcome::over_limit:
        break;  // not checked at CONNECT: the will is published, if ever, when the connection ends
    }
    return true;
}

void client_protocol::handle_disconnect(const mqtt::disconnect& d) {
    if (version_ == mqtt::protocol_version::v5) {
        if (d.props.session_expiry_interval) {
            const std::uint32_t now_expiry = session_->expiry_interval();
            if (now_expiry == 0 && *d.props.session_expiry_interval != 0) {
                fail(mqtt::reason_code::protocol_error, "session expiry set on DISCONNECT after 0 on CONNECT");
                return;
            }
            session_->set_expiry_interval(
                std::min(*d.props.session_expiry_interval, core_.cfg().limits.max_session_expiry));
        }
        // Only a normal disconnection (0x00) discards the will.
        will_on_close_ = d.code != mqtt::reason_code::success;
    } else {
        will_on_close_ = false;
    }
    close_after_flush();
}

void client_protocol::handle_auth(const mqtt::auth& a) {
    using mqtt::reason_code;
    if (state_ != state::authenticating) {
        // Re-authentication (AUTH 0x19 after CONNACK) is not offered.
        fail(reason_code::protocol_error, "AUTH outside an authentication exchange");
        return;
    }
    if (a.code != reason_code::continue_authentication || a.props.authentication_method != auth::scram_method) {
        state_ = state::awaiting_connect;
        refuse_connect(reason_code::protocol_error, "expected AUTH 0x18 with method SCRAM-SHA-256");
        return;
    }
    const auto step = extras().scram->finish(a.props.authentication_data.value_or(""));
    state_ = state::awaiting_connect;
    if (!step.ok) {
        login_failed(extras().scram->user(), reason_code::bad_user_name_or_password, step.error);
        return;
    }
    identity_ = extras().scram->user();
    core_.security().logins().succeeded(address());
    extras().connack_auth_data = step.data;
    auto c = std::move(extras().pending_connect);
    extras().scram.reset();
    accept_connect(*c);
}

}  // namespace strata::broker::net
