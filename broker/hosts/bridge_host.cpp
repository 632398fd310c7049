#include "broker/hosts/bridge_host.hpp"

#include "broker/core/broker_core.hpp"
#include "broker/core/log_limit.hpp"
#include "broker/core/admission.hpp"
#include "broker/core/stored.hpp"
#include "namespace/topic.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace strata::broker::hosts {
namespace {

constexpr std::uint32_t never_expires = 0xFFFFFFFF;

bool crossed(const mqtt::properties& props, std::string_view client_id) {
    return std::any_of(props.user_properties.begin(), props.user_properties.end(),
                       [&](const mqtt::user_property& p) { return p.first == via_property && p.second == client_id; });
}

}  // namespace

void check_bridge_classes(const std::vector<bridge_config>& bridges, const ns::model* model) {
    const auto check = [model](const std::vector<bridge_route>& rules) {
        for (const auto& r : rules) {
            if (r.classes.empty()) continue;
            if (model == nullptr)
                throw config_error(r.at + ": class: names the namespace model's classes; configure one (namespace.model)");
            for (const auto& c : r.classes) {
                if (model->find_class(c) != nullptr) continue;
                std::string known;
                for (const auto& k : model->classes()) known += (known.empty() ? "" : ", ") + k.name;
                throw config_error(r.at + ": class: the model has no class '" + c + "' (its classes: " + known + ")");
            }
        }
    };
    for (const auto& b : bridges) {
        check(b.forward);
        check(b.receive);
    }
}

std::vector<std::string> rule_filters(const bridge_route& r, const ns::model* model) {
    if (r.classes.empty() || model == nullptr) return {r.local};
    std::vector<std::string> out;
    for (const auto& c : r.classes) {
        for (const auto& f : model->class_filters(c)) {
            auto both = ns::filter_intersection(r.local, f);
            if (both && std::find(out.begin(), out.end(), *both) == out.end()) out.push_back(std::move(*both));
        }
    }
    return out;
}

bool asks_broker_id(const mqtt::properties& connect_props) noexcept {
    return std::any_of(connect_props.user_properties.begin(), connect_props.user_properties.end(),
                       [](const mqtt::user_property& p) { return p.first == bridge_hello_property; });
}

bridge::bridge(core::broker_core& core, bridge_config cfg, asio::io_context::executor_type ex)
    : source(core, cfg.name, cfg.identity, bridge_client_id(cfg.name)), cfg_(std::move(cfg)), ex_(ex) {
    for (const auto& r : cfg_.forward) forward_.emplace_back(r.local, r.remote);
    for (const auto& r : cfg_.receive) receive_.emplace_back(r.remote, r.local);
}

bridge::~bridge() = default;

void bridge::start() {
    const ns::model* model = core_.model();
    forward_filters_.clear();
    for (const auto& r : cfg_.forward) forward_filters_.push_back(rule_filters(r, model));
    auto opened = open_session(false, shared_from_this());
    outbox_ = opened.s;
    outbox_->set_expiry_interval(never_expires);
    core::queue_limits l;
    l.max_messages = std::numeric_limits<std::uint32_t>::max();
    l.max_bytes = cfg_.buffer_max_bytes;
    l.policy = cfg_.buffer_block ? core::when_full::refuse : core::when_full::drop_oldest;
    l.latest_only_retained = cfg_.latest_only;
    l.memory_messages = cfg_.buffer_memory_messages;
    l.memory_bytes = cfg_.buffer_memory_bytes;
    l.qos0_durable = cfg_.buffer_qos0_durable;
    outbox_->set_queue_limits(l);
    if (cfg_.drain_rate > 0) {
        std::lock_guard lock(drain_mutex_);
        drain_timer_ = std::make_unique<asio::steady_timer>(ex_);
        drain_tokens_ = 1;
        drain_refilled_ = core::steady_clock::now();
    }
    core_.save_session(outbox_);
    subscribe_forward_filters(!opened.present);
    if (const auto b = outbox_->backlog(); b.messages > 0) {
        spdlog::info("bridge '{}': {} messages ({} bytes) waiting to be forwarded", cfg_.name, b.messages, b.bytes);
    }

    bridges::mqtt::link_options o;
    o.host = cfg_.host;
    o.port = cfg_.port;
    o.tls = cfg_.tls;
    o.ca_file = cfg_.ca;
    o.cert_file = cfg_.cert;
    o.key_file = cfg_.key;
    o.server_name = cfg_.server_name;
    o.version = cfg_.protocol_version == 4 ? mqtt::protocol_version::v311 : mqtt::protocol_version::v5;
    o.client_id = cfg_.client_id;
    o.name = cfg_.name;
    if (!cfg_.username.empty()) o.username = cfg_.username;
    if (!cfg_.username.empty() || !cfg_.password.empty()) o.password = cfg_.password;
    o.keep_alive = cfg_.keep_alive;
    o.max_inflight = cfg_.inflight;
    o.reconnect_min = std::chrono::milliseconds(cfg_.reconnect_min_ms);
    o.reconnect_max = std::chrono::milliseconds(cfg_.reconnect_max_ms);
    o.connect_user_properties.emplace_back(bridge_hello_property, cfg_.client_id);
    for (const auto& rule : cfg_.receive) {
        // A rule with classes subscribes there to its filters here, mapped.
        const bridges::mqtt::topic_map to_remote(rule.local, rule.remote);
        for (const auto& f : rule_filters(rule, model)) {
            mqtt::subscription_request req;
            req.filter = rule.classes.empty() ? rule.remote : to_remote.map(f);
            req.options.qos = rule.qos;
            req.options.no_local = true;             // not what this bridge forwarded there
            req.options.retain_as_published = true;  // retained state stays retained here
            o.subscriptions.push_back(std::move(req));
        }
    }
    link_options_ = std::move(o);
    std::lock_guard lock(mutex_);
    link_ = std::make_unique<bridges::mqtt::link>(ex_, link_options_, *this);
    link_->start();
    spdlog::info("bridge '{}': connecting to {} as '{}'", cfg_.name, cfg_.remote, cfg_.client_id);
}

void bridge::subscribe_forward_filters(bool fresh) {
    auto& routes = core_.routes();
    // Rules removed from the config since the outbox was made leave it.
    for (const auto& f : outbox_->subscription_filters()) {
        const bool configured = std::any_of(forward_filters_.begin(), forward_filters_.end(), [&](const auto& fs) {
            return std::find(fs.begin(), fs.end(), f) != fs.end();
        });
        if (!configured) {
            routes.unsubscribe(outbox_.get(), f);
            outbox_->forget_subscription(f);
        }
    }
    for (std::size_t i = 0; i < cfg_.forward.size(); ++i) {
        core::subscription_entry e;
        e.options.qos = cfg_.forward[i].qos;
        e.options.no_local = true;             // not what this bridge received from the remote
        e.options.retain_as_published = true;  // retained state stays retained there
        e.identifier = static_cast<std::uint32_t>(i + 1);  // which rule: its mapping
        for (const auto& filter : forward_filters_[i]) {
            const bool added = routes.subscribe(outbox_.get(), filter, e);
            outbox_->remember_subscription(filter, e);
            if (!added && !fresh) continue;
            // A new rule forwards the current retained state of its subtree,
            // paced by the outbox's room (session::replay_retained).
            outbox_->replay_retained(filter, e, true);
        }
    }
}

void bridge::stop() {
    {
        std::lock_guard lock(mutex_);
        stopped_ = true;
        if (link_) link_->stop();
    }
    {
        std::lock_guard lock(drain_mutex_);
        if (drain_timer_) drain_timer_->cancel();
    }
    if (outbox_) outbox_->detach(this);
}

void bridge::remove() {
    stop();
    if (!outbox_) return;
    unsubscribe_all(*outbox_);
    core_.save_session(outbox_);
    if (const auto b = outbox_->backlog(); b.messages > 0)
        spdlog::info("bridge '{}': removed; {} messages ({} bytes) wait for a bridge of this name", cfg_.name,
                     b.messages, b.bytes);
}

void bridge::notify() {
    std::lock_guard lock(mutex_);
    if (link_) link_->wake();
}

void bridge::kick(mqtt::reason_code code, std::uint64_t) {
    // The admin API's disconnect: the link drops and a new one connects.
    spdlog::info("bridge '{}': link restarted ({})", cfg_.name, mqtt::to_string(code));
    asio::post(ex_, [self = shared_from_this()] {
        std::unique_ptr<bridges::mqtt::link> old;
        {
            std::lock_guard lock(self->mutex_);
            if (!self->link_ || self->stopped_) return;  // stopped
            old = std::move(self->link_);
        }
        old->stop();
        self->on_down("restarted by the admin API");
        std::lock_guard lock(self->mutex_);
        self->link_ = std::make_unique<bridges::mqtt::link>(self->ex_, self->link_options_, *self);
        self->link_->start();
    });
}

void bridge::on_up(bool session_present) {
    {
        // A Strata remote says who it is: what already crossed it is not
        // sent there again (two brokers with a bridge each way).
        std::lock_guard lock(mutex_);
        if (stopped_) return;  // the outbox may be another bridge's by now
        up_ = true;
        remote_id_.clear();
        for (const auto& [k, v] : link_->connack_user_properties()) {
            if (k == broker_id_property) remote_id_ = v;
        }
    }
    spdlog::info("bridge '{}': connected to {}{}", cfg_.name, cfg_.remote,
                 session_present ? " (session resumed)" : "");
    // What was in flight on the previous connection goes again, with DUP.
    outbox_->attach(shared_from_this(), true);
    // Stopped meanwhile (a reload starts another bridge on the outbox):
    // let go of it again (the new bridge attaches when its link is up).
    bool stopped = false;
    {
        std::lock_guard lock(mutex_);
        stopped = stopped_;
    }
    if (stopped) outbox_->detach(this);
}

void bridge::on_down(const std::string& why) {
    set_last_error(why);
    bool was = false;
    {
        std::lock_guard lock(mutex_);
        was = up_;
        up_ = false;
    }
    if (was) {
        spdlog::warn("bridge '{}': link to {} lost: {}", cfg_.name, cfg_.remote, why);
    } else {
        spdlog::debug("bridge '{}': cannot connect to {}: {}", cfg_.name, cfg_.remote, why);
    }
}

std::optional<std::size_t> bridge::forward_route(const core::delivery& d) const {
    for (const auto id : d.sub_ids) {
        if (id >= 1 && id <= forward_.size()) return id - 1;
    }
    // Restored from a store written before the rule was numbered: by topic.
    for (std::size_t i = 0; i < forward_.size(); ++i) {
        if (forward_[i].matches(d.msg->topic)) return i;
    }
    return std::nullopt;
}

bool bridge::of_rule_classes(const bridge_route& r, std::string_view topic) const {
    if (r.classes.empty()) return true;
    const ns::model* model = core_.model();
    if (model == nullptr) return false;
    const ns::verdict v = model->read(topic);
    return !v.violation() && v.klass != nullptr &&
           std::find(r.classes.begin(), r.classes.end(), v.klass->name) != r.classes.end();
}

std::size_t bridge::drain_allowance(std::size_t want) {
    if (cfg_.drain_rate == 0) return want;
    std::lock_guard lock(drain_mutex_);
    if (!drain_timer_) return want;
    const double rate = cfg_.drain_rate;
    const auto now = core::steady_clock::now();
    const double burst = std::max(1.0, rate / 10);
    drain_tokens_ = std::min(burst, drain_tokens_ + std::chrono::duration<double>(now - drain_refilled_).count() * rate);
    drain_refilled_ = now;
    if (drain_tokens_ >= 1) return std::min(want, static_cast<std::size_t>(drain_tokens_));
    if (!drain_timer_armed_) {
        drain_timer_armed_ = true;
        drain_timer_->expires_after(std::chrono::duration_cast<core::steady_clock::duration>(
            std::chrono::duration<double>((1 - drain_tokens_) / rate)));
        drain_timer_->async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (!self) return;
            {
                std::lock_guard lock(self->drain_mutex_);
                self->drain_timer_armed_ = false;
            }
            if (!ec) self->notify();
        });
    }
    return 0;
}

void bridge::drained(std::size_t n) {
    if (cfg_.drain_rate == 0 || n == 0) return;
    std::lock_guard lock(drain_mutex_);
    drain_tokens_ -= static_cast<double>(n);
}

void bridge::collect(std::vector<bridges::mqtt::outbound>& out, std::size_t window) {
    thread_local std::vector<core::outgoing> got;
    got.clear();
    // The link's window is what it can still take; the outbox's is the
    // whole number in flight. QoS 0 messages take no room in either: a
    // turn takes a bounded batch so a long backlog drains in steps, no
    // more than buffer.drain_rate allows.
    const std::size_t max_out = drain_allowance(std::max<std::size_t>(window, 256));
    if (max_out == 0) return;
    outbox_->collect(this, got, outbox_->inflight_messages() + window, core::steady_clock::now(), max_out);
    drained(got.size());
    const bool v5 = cfg_.protocol_version == 5;
    const std::string remote = remote_id();
    for (auto& o : got) {
        if (o.what != core::outgoing::kind::publish || !o.d.msg) continue;  // forwarded with QoS 0 or 1 only
        const core::message& m = *o.d.msg;
        if (!remote.empty() && crossed(*m.props, remote)) {
            // It came from the remote (over its own bridge): not back there.
            loops_.fetch_add(1, std::memory_order_relaxed);
            if (o.d.qos > 0) outbox_->on_puback(o.packet_id);
            continue;
        }
        const auto rule = forward_route(o.d);
        // Its rule is gone from the config (nowhere to send it), or the
        // topic only looks like the rule's classes (a filter cannot tell
        // every reading apart): not forwarded.
        if (!rule || !of_rule_classes(cfg_.forward[*rule], m.topic)) {
            if (o.d.qos > 0) outbox_->on_puback(o.packet_id);
            continue;
        }
        const auto* route = &forward_[*rule];
        bridges::mqtt::outbound b;
        b.packet_id = o.packet_id;
        b.dup = o.dup;
        b.topic = route->map(m.topic);
        b.payload = m.payload;
        b.qos = o.d.qos;
        b.retain = o.d.retain;
        if (v5) {
            b.props = *m.props;
            b.props.subscription_identifiers.clear();
            b.props.topic_alias.reset();
            if (m.expires_at) {
                const auto left = std::chrono::ceil<std::chrono::seconds>(*m.expires_at - core::steady_clock::now());
                b.props.message_expiry_interval = static_cast<std::uint32_t>(std::max<std::int64_t>(left.count(), 1));
            }
            b.props.user_properties.emplace_back(via_property, core_.broker_id());
        }
        if (!o.dup) forwarded_.fetch_add(1, std::memory_order_relaxed);
        out.push_back(std::move(b));
    }
}

void bridge::on_ack(std::uint16_t packet_id, mqtt::reason_code rc) {
    if (static_cast<std::uint8_t>(rc) >= 0x80) {
        // The remote refused it (e.g. not authorized there, or too large):
        // resending would not help. Logged and counted, then it leaves.
        refused_by_remote_.fetch_add(1, std::memory_order_relaxed);
        thread_local core::log_limit limit;
        if (limit.allow())
            spdlog::warn("bridge '{}': the remote refused a forwarded message: {}{}", cfg_.name, mqtt::to_string(rc),
                         limit.suffix());
    }
    outbox_->on_puback(packet_id);
}

void bridge::on_message(mqtt::publish&& p, std::function<void(mqtt::reason_code)> done) {
    const auto [code, ticket] = publish_here(p);
    if (ticket == 0 || core_.store() == nullptr) {
        done(code);
        return;
    }
    // Acknowledged to the remote once stored here. (`code = code`: clang 14
    // cannot capture a structured binding by name.)
    core_.store()->when_durable(ticket, [done = std::move(done), code = code](bool ok) {
        done(ok ? code : mqtt::reason_code::unspecified_error);
    });
}

std::pair<mqtt::reason_code, persistence::ticket> bridge::publish_here(mqtt::publish& p) {
    using mqtt::reason_code;
    if (crossed(p.props, core_.broker_id())) {
        loops_.fetch_add(1, std::memory_order_relaxed);
        spdlog::debug("bridge '{}': '{}' already crossed this bridge: dropped", cfg_.name, p.topic);
        return {reason_code::success, 0};
    }
    // The first rule whose filter matches and whose classes (as this
    // broker's model reads the topic here) take it.
    std::optional<std::string> mapped;
    for (std::size_t i = 0; i < receive_.size() && !mapped; ++i) {
        if (!receive_[i].matches(p.topic)) continue;
        std::string here = receive_[i].map(p.topic);
        if (of_rule_classes(cfg_.receive[i], here)) mapped = std::move(here);
    }
    if (!mapped) {
        denied_.fetch_add(1, std::memory_order_relaxed);
        spdlog::debug("bridge '{}': '{}' matches no receive rule (filter and classes): dropped", cfg_.name, p.topic);
        return {reason_code::success, 0};
    }
    const std::string& topic = *mapped;

    auto m = std::make_shared<core::message>();
    m->topic = topic;
    m->payload = std::move(p.payload);
    m->qos = p.qos;
    m->retain = p.retain;
    m->origin = outbox_.get();
    p.props.topic_alias.reset();
    p.props.subscription_identifiers.clear();
    m->props = std::move(p.props);
    if (m->props->message_expiry_interval) {
        m->expires_at = core::steady_clock::now() + std::chrono::seconds(*m->props->message_expiry_interval);
    }
    // The checks a client's PUBLISH gets, with the bridge's identity.
    const core::admission r = admit(m);
    using outcome = core::admission::outcome;
    // Refusals are counted each; logged at warn once a second per thread.
    thread_local core::log_limit refusals;
    switch (r.what) {
    case outcome::denied:
        denied_.fetch_add(1, std::memory_order_relaxed);
        if (refusals.allow())
            spdlog::warn("bridge '{}': '{}' from the remote refused: identity '{}' may not publish there{}", cfg_.name,
                         topic, cfg_.identity, refusals.suffix());
        break;
    case outcome::rejected:
        denied_.fetch_add(1, std::memory_order_relaxed);
        if (refusals.allow())
            spdlog::warn("bridge '{}': '{}' from the remote rejected by the namespace model: {}{}", cfg_.name, topic,
                         r.reason, refusals.suffix());
        break;
    case outcome::over_limit:
        denied_.fetch_add(1, std::memory_order_relaxed);
        if (refusals.allow())
            spdlog::warn("bridge '{}': '{}' from the remote refused: {}{}", cfg_.name, topic, r.reason,
                         refusals.suffix());
        break;
    case outcome::store_down:
    case outcome::rate_limited:  // a bridge's identity has no rate limits here
        break;
    case outcome::published:
    case outcome::quarantined:
        if (!r.reason.empty())
            spdlog::debug("bridge '{}': namespace model ({}): '{}': {}", cfg_.name,
                          r.what == outcome::quarantined ? "quarantine" : "warn", topic, r.reason);
        received_.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    if (r.command) {
        // Both identities: the bridge's, whose grants decided here, and the
        // sender's at the broker the command came from.
        const auto origin = core::origin_of(*m->props);
        const auto g = grants();
        const bool denied = r.what == outcome::denied;
        core_.audit({.action = "command",
                     .outcome = denied ? "refused" : "allowed",
                     .identity = cfg_.identity,
                     .roles = g ? &g->roles() : nullptr,
                     .client_id = cfg_.client_id,
                     .address = cfg_.remote,
                     .peer = {},
                     .topic = topic,
                     .reason = denied ? std::string_view("not authorized") : std::string_view(r.reason),
                     .origin_identity = origin.identity,
                     .origin_broker = origin.broker});
    }
    return {r.code, r.passed() ? r.routed.ticket : 0};
}

std::string bridge::remote_id() const {
    std::lock_guard lock(mutex_);
    return remote_id_;
}

bridge_status bridge::status() const {
    bridge_status s;
    fill_status(s);
    if (outbox_) {
        const auto b = outbox_->backlog();
        s.backlog_messages = b.messages;
        s.backlog_bytes = b.bytes;
        s.backlog_in_store_only = b.in_store_only;
        if (b.oldest && b.messages > 0)
            s.oldest_backlog_seconds = std::chrono::duration<double>(core::steady_clock::now() - *b.oldest).count();
        s.dropped = b.dropped;
        s.refused = b.refused;
        s.superseded = b.superseded;
    }
    s.dropped += refused_by_remote_.load(std::memory_order_relaxed);
    s.forwarded = forwarded_.load(std::memory_order_relaxed);
    s.received = received_.load(std::memory_order_relaxed);
    s.loops = loops_.load(std::memory_order_relaxed);
    // Connected and connects are the link's: a link restarted by the admin
    // API counts from 0 again.
    std::lock_guard lock(mutex_);
    if (link_) {
        const auto l = link_->stats();
        s.connected = l.connected;
        s.connects = l.connects;
        s.last_ack_ms = std::chrono::duration_cast<std::chrono::milliseconds>(l.last_ack.time_since_epoch()).count();
    }
    return s;
}

void bridge::sys_values(const bridge_status& s, const sys_put& put) {
    put("connected", s.connected ? "1" : "0");
    put("backlog/messages", std::to_string(s.backlog_messages));
    put("backlog/bytes", std::to_string(s.backlog_bytes));
    put("backlog/in_store_only", std::to_string(s.backlog_in_store_only));
    put("backlog/oldest_age_seconds", std::to_string(static_cast<std::uint64_t>(s.oldest_backlog_seconds)));
    put("last_ack_ms", std::to_string(s.last_ack_ms));
    put("messages/forwarded", std::to_string(s.forwarded));
    put("messages/received", std::to_string(s.received));
    put("messages/dropped", std::to_string(s.dropped));
    put("messages/refused", std::to_string(s.refused));
    put("messages/superseded", std::to_string(s.superseded));
    put("messages/loops", std::to_string(s.loops));
    put("messages/denied", std::to_string(s.denied));
    put("connects", std::to_string(s.connects));
}

}  // namespace strata::broker::hosts
