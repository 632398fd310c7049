#include "broker/core/broker_core.hpp"

#include "broker/core/admission.hpp"
#include "broker/core/model_enforcement.hpp"
#include "broker/core/stored.hpp"
#include "namespace/topic.hpp"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <unordered_set>
#include <unistd.h>

namespace strata::broker::core {

// The pending expiry / will-delay timer of an offline session.
struct session::timer_slot {
    explicit timer_slot(asio::io_context::executor_type ex) : t(ex) {}
    asio::steady_timer t;
};

namespace {

// Whether a retained topic goes to the store. '$SYS' values are the
// broker's own and made afresh after a restart; the Sparkplug birth
// certificates under "$sparkplug/" are what edge nodes published (a
// Sparkplug Aware broker keeps them), kept like any retained message.
bool durable_retained(std::string_view topic) noexcept {
    return topic.front() != '$' || topic.starts_with("$sparkplug/");
}

std::vector<auth::rule> to_rules(const std::vector<access_rule>& in) {
    std::vector<auth::rule> out;
    out.reserve(in.size());
    for (const auto& r : in) {
        out.push_back(auth::rule{r.deny,
                                 r.what == access_rule::action::subscribe ? auth::action::subscribe
                                                                          : auth::action::publish,
                                 r.filter});
    }
    return out;
}

constexpr std::uint32_t never_expires = 0xFFFFFFFF;

// Cancels a session's pending timer on the thread that owns it.
void cancel_timer(session& s) {
    if (auto slot = std::move(s.timer)) {
        asio::post(slot->t.get_executor(), [slot] { slot->t.cancel(); });
    }
}

}  // namespace

namespace {

// The default broker id: this host and the store's absolute path (two
// brokers on one host cannot share a store), or the process id without one.
std::string default_broker_id(const config& cfg) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "localhost");
    if (!cfg.persistence.enabled) return std::string(host) + ":pid-" + std::to_string(::getpid());
    std::error_code ec;
    const auto path = std::filesystem::absolute(cfg.persistence.path, ec).lexically_normal().string();
    return std::string(host) + ":" + (ec ? cfg.persistence.path : path);
}

}  // namespace

std::shared_ptr<const broker_core::settings> broker_core::make_settings(config cfg) {
    auto s = std::make_shared<settings>();
    s->access = auth::access_policy(to_rules(cfg.access));
    s->auditing = !cfg.audit.file.empty() || !cfg.audit.topic.empty();
    s->cfg = std::move(cfg);
    return s;
}

broker_core::broker_core(config cfg)
    : settings_(make_settings(std::move(cfg))),
      broker_id_(this->cfg().broker_id.empty() ? default_broker_id(this->cfg()) : this->cfg().broker_id),
      security_(std::make_unique<class security>(this->cfg())),
      audit_limiter_(this->cfg().audit.refusals_per_second),
      handshakes_(this->cfg().limits.max_handshakes) {
    apply_bounds();
}

void broker_core::apply_bounds() {
    const config& c = cfg();
    retained_limits l;
    l.max_messages = c.limits.max_retained_messages;
    l.max_bytes = c.limits.max_retained_bytes;
    l.identity_messages = c.auth.limits.retained;
    l.identity_bytes = c.auth.limits.retained_bytes;
    router_.set_retained_limits(l);
    handshakes_.set_limit(c.limits.max_handshakes);
    audit_limiter_.set_per_second(c.audit.refusals_per_second);
}

namespace {

// Who a refusal line counts against: the identity once authenticated;
// the address for logins (the user name is a claim until checked) and
// anonymous clients.
auth::audit_subject audit_subject_of(const auth::audit_event& e) {
    const bool login = e.action == "login" || e.action == "admin-login";
    if (!login && !e.identity.empty()) return {std::string(e.identity), {}};
    return {{}, std::string(e.peer.empty() ? e.address : e.peer)};
}

}  // namespace

void broker_core::audit(const auth::audit_event& e) {
    if (!auditing()) return;
    if (e.outcome != "allowed" && !audit_limiter_.admit(audit_subject_of(e), steady_clock::now())) return;
    write_audit(auth::format_audit_line(e, std::chrono::system_clock::now(), cfg().audit.max_field_bytes));
}

void broker_core::audit_summaries(steady_clock::time_point now) {
    for (const auto& s : audit_limiter_.take_summaries(now)) {
        auth::audit_event e;
        e.action = "audit";
        e.outcome = "suppressed";
        e.identity = s.who.identity;
        e.address = s.who.address;
        const std::string reason = std::to_string(s.suppressed) + " more refusal lines suppressed (over " +
                                   std::to_string(audit_limiter_.per_second()) + " a second from this " +
                                   (s.who.identity.empty() ? "address" : "identity") + ")";
        e.reason = reason;
        e.suppressed = s.suppressed;
        write_audit(auth::format_audit_line(e, std::chrono::system_clock::now(), cfg().audit.max_field_bytes));
    }
}

std::uint64_t broker_core::audit_suppressed() const { return audit_limiter_.suppressed_total(); }

void broker_core::write_audit(std::string line) {
    if (const std::string& topic = cfg().audit.topic; !topic.empty()) {
        auto m = std::make_shared<message>();
        m->topic = topic;
        m->payload = line;
        auto& props = m->props.edit();
        props.payload_format_indicator = 1;
        props.content_type = "application/json";
        publish(m);
    }
    if (const auto f = security_->audit_file()) f->write(std::move(line));
}

broker_core::~broker_core() { release_io(); }

std::uint64_t next_live_generation() noexcept {
    static std::atomic<std::uint64_t> generations{0};
    return generations.fetch_add(1, std::memory_order_relaxed) + 1;
}

void broker_core::set_model(std::shared_ptr<const ns::model> m) {
    for (const auto& check : model_checks_) check(cfg(), m.get());
    security_->bind(nullptr, m);
    retire(model_.install(std::move(m)));
    apply_grants();
}

std::size_t broker_core::apply_grants() {
    const auto policy = security_->policy();
    std::vector<session_ptr> all;
    {
        std::lock_guard lock(registry_mutex_);
        all.reserve(sessions_.size());
        for (const auto& [id, s] : sessions_) all.push_back(s);
    }
    std::size_t revoked = 0;
    for (const auto& s : all) {
        const std::string identity = s->identity();
        auto g = policy->compile(identity, s->client_id());
        s->set_identity(identity, g);
        const auto owner = s->owner();
        if (owner) owner->regrant(g);
        if (s->client_id().starts_with(own_client_prefix)) continue;  // configured, not granted
        const bool filter_wide = security_->filter_wide_subscriptions() || (owner && owner->filters_wide_subscriptions());
        for (auto [filter, entry] : s->subscriptions()) {
            ns::shared_filter shared;
            const bool is_shared = ns::parse_shared(filter, shared) == ns::share_parse::shared;
            const std::string_view plain = is_shared ? shared.filter : std::string_view(filter);
            const auto v = g ? g->may_subscribe(plain) : auth::subscribe_verdict::full;
            const bool filtered = v == auth::subscribe_verdict::checked ||
                                  (v == auth::subscribe_verdict::partial && filter_wide);
            const bool keep = v == auth::subscribe_verdict::full || filtered;
            if (keep && filtered == entry.filtered) continue;
            if (!keep) {
                if (is_shared) router_.unsubscribe_shared(s.get(), shared.group, shared.filter);
                else router_.unsubscribe(s.get(), filter);
                s->forget_subscription(filter);
                ++revoked;
                spdlog::info("client '{}' ({}): subscription '{}' revoked: the new grants do not allow it",
                             s->client_id(), identity.empty() ? "anonymous" : identity, filter);
                audit({.action = "subscribe",
                       .outcome = "revoked",
                       .identity = identity,
                       .roles = g ? &g->roles() : nullptr,
                       .client_id = s->client_id(),
                       .address = {},
                       .peer = {},
                       .topic = filter,
                       .reason = "roles or model reloaded: no longer granted"});
                continue;
            }
            entry.filtered = filtered;
            if (is_shared) router_.subscribe_shared(s.get(), shared.group, shared.filter, entry);
            else router_.subscribe(s.get(), filter, entry);
            s->remember_subscription(filter, entry);
        }
    }
    return revoked;
}

namespace {

// Whether `topic` is a command in the model's terms (walks its levels; no
// allocation). A topic the model reads to a class is a command when its
// class is. A topic the model cannot read (a misspelt equipment name, a
// missing or extra level) still reaches subscribers in warn mode, and
// `.../ROBOT/cmd` goes to every `.../+/cmd` subscriber: so it is a command
// when any of its levels names a command class. Grants never depend on the
// enforcement mode. Free subtrees are outside the model: never commands
// here (auth.command_subtrees can make them so).
bool model_command(const ns::model& m, std::string_view topic) {
    const std::string_view full = topic;
    const ns::model_node* node = m.root();
    while (node != nullptr && !m.absorbing(node)) {
        const auto slash = topic.find('/');
        node = m.child(node, topic.substr(0, slash));
        if (slash == std::string_view::npos) break;
        topic.remove_prefix(slash + 1);
    }
    if (const auto* k = m.class_at(node)) return k->command;
    if (m.is_free(full)) return false;
    for (const auto& k : m.classes()) {
        if (!k.command) continue;
        for (std::string_view rest = full;;) {
            const auto slash = rest.find('/');
            if (rest.substr(0, slash) == k.name) return true;
            if (slash == std::string_view::npos) break;
            rest.remove_prefix(slash + 1);
        }
    }
    return false;
}

}  // namespace

bool broker_core::is_command(std::string_view topic) const {
    if (security_->is_command_subtree(topic)) return true;
    const ns::model* m = model();
    return m != nullptr && model_command(*m, topic);
}

void broker_core::publish_sys_value(std::string topic, std::string value) {
    auto m = std::make_shared<message>();
    m->topic = std::move(topic);
    m->payload = std::move(value);
    m->retain = true;
    publish(m);
}

bool broker_core::open_to_publishers(std::string_view topic, const ns::model* model) const {
    if (topic.empty() || topic.front() == '$' || !access().may_publish(topic)) return false;
    return model == nullptr || !under_prefix(topic, model->dead_letter_prefix());
}

admission broker_core::admit(const publisher& who, const message_ptr& m) {
    return core::admit(*this, who, m);
}

admission broker_core::admit_will(const publisher& who, message_ptr& m) {
    return core::admit_will(*this, who, m);
}

void broker_core::reload(std::shared_ptr<const config> next, std::vector<std::string>& failed) {
    // Everything that can refuse the new config is tried first, while
    // nothing has changed yet.
    const std::shared_ptr<const ns::model> current = model_.load();
    std::shared_ptr<const ns::model> loaded;
    const std::string& path = next->namespace_model;
    if (!path.empty()) {
        try {
            // Same file: the counters go on (a moved file starts afresh).
            std::shared_ptr<ns::model_stats> stats;
            if (current && path == cfg().namespace_model) stats = current->shared_stats();
            auto candidate = ns::model::load(path, std::move(stats));
            for (const auto& w : candidate->warnings()) spdlog::warn("namespace model: {}", w);
            // What else must fit it (bridge classes, OPC UA payloads).
            for (const auto& check : model_checks_) check(*next, candidate.get());
            loaded = std::move(candidate);
        } catch (const std::exception& e) {
            // model_error, config_error of a check, or anything else a
            // library threw while loading
            spdlog::error("namespace model not reloaded, the old one stays: {}", e.what());
            failed.emplace_back("namespace model");
        }
    }
    // namespace.model removed from the config: no model from now on.
    const bool dropped = path.empty() && current != nullptr;
    const std::shared_ptr<const ns::model> model = loaded ? loaded : dropped ? nullptr : current;
    if (!loaded)
        for (const auto& check : model_checks_) check(*next, model.get());
    auto policy = security_->compile(next->policy, model);
    auto audit_file = security_->open_audit(next->audit);

    // Nothing below refuses the config.
    security_->set_policy(std::move(policy));
    if (loaded || dropped) {
        retire(model_.install(model));
        if (loaded) {
            spdlog::info("namespace model reloaded from {}", path);
            recheck_retained(*loaded, "reload");
        } else {
            spdlog::info("namespace model removed from the config: no model is enforced");
        }
    }
    security_->reconfigure(*next, std::move(audit_file));
    retire(settings_.install(make_settings(*next)));
    apply_bounds();
    // The client sessions' queues, live ones too (bridges and OPC UA
    // sources keep their own).
    for (const auto& s : all_sessions())
        if (!s->client_id().starts_with(own_client_prefix)) s->set_queue_limits(client_queue_limits());
    const std::size_t revoked = apply_grants();
    spdlog::info("roles and users reloaded from {} ({} subscription(s) revoked)", next->source_file, revoked);
    if (!next->auth.password_file.empty() && !security_->reload_passwords()) failed.emplace_back("password file");
}

void broker_core::release_io() {
    // Sessions and their connections refer to each other until a connection
    // closes, and offline sessions own timers: both must go before the
    // io_contexts they belong to.
    security_->stop();
    // Connections waiting for a handshake slot (the network threads have
    // stopped, nothing will give them one).
    handshakes_.clear();
    std::lock_guard lock(registry_mutex_);
    for (auto& [id, s] : sessions_) {
        if (auto c = s->owner()) s->detach(c.get());
        s->timer.reset();
    }
}

broker_core::open_result broker_core::open_session(const std::string& client_id, bool clean_start,
                                                   const std::shared_ptr<session_owner>& c, const claimant* who) {
    open_result r;
    std::optional<message_ptr> will_to_publish;
    {
        std::lock_guard lock(registry_mutex_);
        auto it = sessions_.find(client_id);
        if (it != sessions_.end()) {
            session_ptr old = it->second;
            // A client id is not a credential: another identity's session
            // (live or offline) is refused before anything of it is touched,
            // or (auth.takeover: allowed) taken over.
            if (who != nullptr && old->identity() != who->identity) {
                if (who->on_other == other_identity::refuse) {
                    r.refused = true;
                    return r;
                }
                if (who->on_other == other_identity::start_clean) clean_start = true;
            }
            cancel_timer(*old);
            r.previous = old->owner();
            r.previous_generation = old->generation();
            // The previous connection's will (or an offline session's delayed
            // will): sent when the session ends here (clean start) or when it
            // had no delay; a resumed session within the delay discards it.
            auto will = old->take_will();
            if (will && (clean_start || (r.previous && old->will_delay() == 0))) {
                will_to_publish = std::move(will);
            }
            if (clean_start) {
                old->detach(r.previous.get());
                end_session_locked(old);
            } else {
                r.s = old;
                r.present = true;
            }
        }
        if (!r.s) {
            r.s = std::make_shared<session>(*this, client_id);
            r.s->set_queue_limits(client_queue_limits());
            sessions_.emplace(client_id, r.s);
        }
        if (who != nullptr) r.s->set_identity(who->identity, who->grants);
        r.generation = r.s->attach(c, r.present);
    }
    if (will_to_publish) publish_will(*will_to_publish);
    return r;
}

void broker_core::end_session_locked(const session_ptr& s) {
    if (store_ != nullptr && s->persistent()) store_->submit(persistence::erase_session{s->client_id()});
    for (const auto& filter : s->subscription_filters()) {
        ns::shared_filter sf;
        if (ns::parse_shared(filter, sf) == ns::share_parse::shared) {
            router_.unsubscribe_shared(s.get(), sf.group, sf.filter);
        } else {
            router_.unsubscribe(s.get(), filter);
        }
    }
    cancel_timer(*s);
    s->clear();
    auto it = sessions_.find(s->client_id());
    if (it != sessions_.end() && it->second == s) sessions_.erase(it);
}

void broker_core::connection_lost(const session_ptr& s, std::uint64_t generation,
                                  asio::io_context::executor_type ex) {
    std::optional<message_ptr> will_now;
    {
        std::lock_guard lock(registry_mutex_);
        if (s->generation() != generation || s->owner()) return;  // resumed elsewhere meanwhile
        const std::uint32_t expiry = s->expiry_interval();
        const std::uint32_t delay = s->will_delay();
        if (expiry == 0) {
            will_now = s->take_will();
            end_session_locked(s);
        } else {
            bool will_pending = false;
            if (delay == 0) {
                will_now = s->take_will();
            } else {
                // A delayed will stays in the session until the delay passes
                // or the session ends, whichever comes first.
                will_pending = true;
            }
            s->set_disconnected_at(now_ms());
            // Before the record: a record that says "disconnected" is
            // durable only with the marks of what was sent (DUP after a restart).
            s->store_sent_marks(false);
            save_session(s);
            arm_timer(s, generation, ex, std::chrono::seconds(delay), will_pending, expiry);
        }
    }
    if (will_now && *will_now) publish_will(*will_now);
}

void broker_core::arm_timer(const session_ptr& s, std::uint64_t generation,
                            asio::io_context::executor_type ex, std::chrono::seconds will_delay,
                            bool will_pending, std::uint32_t expiry) {
    // One timer per offline session: first for the will delay (if any and
    // shorter than the expiry), then re-armed for the expiry.
    const bool has_will = will_pending && (expiry == never_expires || will_delay.count() < expiry);
    if (!has_will && !will_pending && expiry == never_expires) return;
    const auto wait = has_will ? will_delay : std::chrono::seconds(expiry);
    auto slot = std::make_shared<session::timer_slot>(ex);
    s->timer = slot;
    slot->t.expires_after(wait);
    std::weak_ptr<session> weak = s;
    slot->t.async_wait([this, weak, generation, ex, has_will, will_delay, expiry](boost::system::error_code ec) {
        if (ec) return;
        auto s = weak.lock();
        if (!s) return;
        std::optional<message_ptr> will;
        {
            std::lock_guard lock(registry_mutex_);
            if (s->generation() != generation || s->owner()) return;
            if (has_will) {
                will = s->take_will();
                save_session(s);
                if (expiry != never_expires) {
                    const auto rest = std::chrono::seconds(expiry) - will_delay;
                    arm_timer(s, generation, ex, rest, false, static_cast<std::uint32_t>(rest.count()));
                }
            } else {
                // Expired: a will still pending goes out as the session ends.
                will = s->take_will();
                spdlog::debug("session '{}' expired", s->client_id());
                end_session_locked(s);
            }
        }
        if (will && *will) publish_will(*will);
    });
}

void broker_core::publish_will(const message_ptr& will) {
    if (!will) return;
    spdlog::debug("publishing will on '{}'", will->topic);
    if (will->props->message_expiry_interval) {
        // A will's lifetime starts when it is published.
        auto m = std::make_shared<message>(*will);
        m->expires_at = steady_clock::now() + std::chrono::seconds(*will->props->message_expiry_interval);
        publish(m);
        return;
    }
    publish(will);
}

broker_core::publish_result broker_core::publish(const message_ptr& m, const ns::model* model, ns::verdict* verdict,
                                                 const std::string* identity, flow_gate* gate) {
    publish_result r;
    store_ops ops;
    // The router keeps the retained value in memory (if admitted).
    const auto routed = router_.publish(m, store_ ? &ops : nullptr, model, verdict, identity, gate);
    r.delivered = routed.delivered;
    r.matched = routed.matched();
    r.refused = routed.refused;
    r.admitted = routed.admitted;
    r.retained = routed.retained;
    if (!routed.admitted) return r;
    if (routed.retained != retain_verdict::stored) {
        bump(stats_.local().retained_refused[static_cast<std::size_t>(routed.retained) - 1]);
        return r;
    }
    // Every message the broker takes (clients, bridges, OPC UA, wills) is
    // counted for the rate and stale alerts here.
    if (auto* o = observer_.load(std::memory_order_acquire)) o->taken(m->topic);
    if (store_ == nullptr) return r;
    if (m->retain && durable_retained(m->topic)) {
        if (m->payload.empty()) {
            ops.insert(ops.begin(), persistence::erase_retained{m->topic});
        } else {
            ops.insert(ops.begin(), persistence::put_retained{to_stored(*m)});
        }
    }
    if (!ops.empty()) r.ticket = store_->submit(std::move(ops));
    return r;
}

void broker_core::watch_slow_consumer(std::weak_ptr<session> s) {
    std::lock_guard lock(slow_mutex_);
    slow_watch_.push_back(std::move(s));
}

void broker_core::check_slow_consumers(steady_clock::time_point now) {
    std::vector<std::weak_ptr<session>> watched;
    {
        std::lock_guard lock(slow_mutex_);
        if (slow_watch_.empty()) return;
        watched.swap(slow_watch_);
    }
    const auto& sc = cfg().limits.slow_consumer;
    const bool disconnect = sc.action == limits_config::slow_consumer_config::action_kind::disconnect;
    auto& counters = stats_.local();
    std::vector<std::weak_ptr<session>> still;
    std::vector<slow_consumer_event> events;
    std::unordered_set<const session*> seen;  // a session held again may be listed twice
    for (auto& w : watched) {
        const auto s = w.lock();
        if (!s || !seen.insert(s.get()).second) continue;
        const auto action = s->check_slow(now, std::chrono::milliseconds(sc.after_ms), disconnect);
        if (action != slow_action::none)
            events.push_back({s->client_id(), action == slow_action::disconnected, s->queued_messages(), now});
        switch (action) {
        case slow_action::disconnected:
            bump(counters.slow_consumer_disconnects);
            spdlog::warn("client '{}' is a slow consumer: its queue stayed full for {} ms; disconnected (0x97)",
                         s->client_id(), sc.after_ms);
            break;
        case slow_action::dropping:
            bump(counters.slow_consumer_drops);
            spdlog::warn("client '{}' is a slow consumer: its queue stayed full for {} ms; its messages are "
                         "dropped until it catches up", s->client_id(), sc.after_ms);
            break;
        case slow_action::none:
            break;
        }
        // Watched again by its next hold once it let go.
        if (s->pressing()) still.push_back(std::move(w));
    }
    std::lock_guard lock(slow_mutex_);
    slow_watch_.insert(slow_watch_.end(), std::make_move_iterator(still.begin()), std::make_move_iterator(still.end()));
    for (auto& e : events) {
        if (slow_events_.size() == max_slow_events) slow_events_.pop_front();
        slow_events_.push_back(std::move(e));
    }
}

std::vector<broker_core::slow_consumer_event> broker_core::slow_consumers_since(steady_clock::time_point since) const {
    std::vector<slow_consumer_event> out;
    std::lock_guard lock(slow_mutex_);
    // Newest first, one per client id.
    for (auto it = slow_events_.rbegin(); it != slow_events_.rend() && it->at >= since; ++it) {
        if (std::none_of(out.begin(), out.end(), [&](const auto& e) { return e.client_id == it->client_id; }))
            out.push_back(*it);
    }
    return out;
}

const char* broker_core::retained_refusal_reason(retain_verdict v) noexcept {
    switch (v) {
    case retain_verdict::over_messages:
        return "the broker holds the most retained messages it may (limits.max_retained_messages)";
    case retain_verdict::over_bytes:
        return "the retained messages would exceed limits.max_retained_bytes";
    case retain_verdict::over_identity_messages:
        return "this identity holds the most retained topics it may (auth.limits.retained)";
    case retain_verdict::over_identity_bytes:
        return "this identity's retained messages would exceed auth.limits.retained_bytes";
    case retain_verdict::stored:
        break;
    }
    return "";
}

std::size_t broker_core::purge_expired() {
    const auto topics = router_.purge_expired_retained(steady_clock::now());
    if (store_ != nullptr && !topics.empty()) {
        store_ops ops;
        ops.reserve(topics.size());
        for (const auto& t : topics) {
            if (durable_retained(t)) ops.push_back(persistence::erase_retained{t});
        }
        if (!ops.empty()) store_->submit(std::move(ops));
    }
    return topics.size();
}

bool broker_core::erase_retained(const message_ptr& m) {
    if (!router_.erase_retained_if_same(m)) return false;
    if (store_ != nullptr) store_->submit(persistence::erase_retained{m->topic});
    return true;
}

void broker_core::save_session(const session_ptr& s) {
    if (store_ == nullptr) return;
    if (s->expiry_interval() > 0) {
        s->set_persistent(true);
        store_->submit(persistence::put_session{s->record()});
    } else if (s->persistent()) {
        s->set_persistent(false);
        store_->submit(persistence::erase_session{s->client_id()});
    }
}

broker_core::recovery_counts broker_core::recover(asio::io_context::executor_type ex) {
    recovery_counts rc;
    if (store_ == nullptr) return rc;
    const std::int64_t now = now_ms();
    std::vector<session_ptr> recovered;
    std::vector<message_ptr> wills;
    // Sessions whose client was connected when the broker stopped (a
    // crash): which of their deliveries were sent is not known, so all may
    // have been. The others' deliveries were sent when the store says so
    // (store_sent_marks at disconnect).
    std::unordered_set<std::string> connected_at_stop;
    // A client's records come together (subscriptions, then deliveries in
    // seq order): the last one found is asked for again most of the time.
    std::string last_id;
    session* last = nullptr;
    bool last_connected_at_stop = false;
    const auto find = [&](const std::string& client_id) -> session* {
        if (last != nullptr && client_id == last_id) return last;
        auto it = sessions_.find(client_id);
        last = it == sessions_.end() ? nullptr : it->second.get();
        last_id = client_id;
        last_connected_at_stop = last != nullptr && connected_at_stop.contains(client_id);
        return last;
    };

    std::unique_lock lock(registry_mutex_);
    persistence::recovery_visitor v;
    // Everything stored is loaded, limits or not (they may have been
    // lowered since): what is over them is reported below, and new
    // retained topics are refused until enough are cleared. The retained
    // tree is filled on a thread of its own while the sessions load here:
    // it takes only the retained store's lock, and the sessions never
    // touch that store.
    v.retained_concurrently = true;
    v.retained = [this](persistence::stored_message&& m) { (void)router_.retain(from_stored(std::move(m)), nullptr, false); };
    v.session = [&](persistence::stored_session&& r) {
        auto s = std::make_shared<session>(*this, r.client_id);
        s->set_queue_limits(client_queue_limits());
        s->set_expiry_interval(r.expiry_interval);
        std::optional<message_ptr> will;
        if (r.will) will = from_stored(std::move(*r.will));
        s->set_will(std::move(will), r.will_delay);
        // A session whose client was connected when the broker stopped
        // counts as disconnected now.
        s->set_disconnected_at(r.disconnected_at_ms != 0 ? r.disconnected_at_ms : now);
        if (r.disconnected_at_ms == 0) connected_at_stop.insert(r.client_id);
        s->set_identity(r.identity, nullptr);
        sessions_.emplace(r.client_id, s);
        recovered.push_back(std::move(s));
    };
    v.subscription = [&](const std::string& client_id, persistence::stored_subscription&& sub) {
        session* s = find(client_id);
        if (s == nullptr) return;
        // A filtered subscription delivers nothing until its owner connects
        // again and brings its grants (session::may_receive).
        const subscription_entry e = entry_from_stored(sub.options, sub.identifier);
        ns::shared_filter sf;
        if (ns::parse_shared(sub.filter, sf) == ns::share_parse::shared) {
            router_.subscribe_shared(s, sf.group, sf.filter, e);
        } else {
            router_.subscribe(s, sub.filter, e);
        }
        s->remember_subscription(sub.filter, e);
    };
    v.delivery = [&](persistence::stored_delivery&& d) {
        session* s = find(d.client_id);
        if (s == nullptr) return;
        message_ptr m;
        if (!d.awaiting_comp) m = from_stored(std::move(d.msg));
        const bool maybe_sent = d.packet_id != 0 || last_connected_at_stop;
        s->restore_delivery(std::move(m), d, maybe_sent);
    };
    // A bridge's backlog may be far larger than memory: the first window of
    // it is loaded, the rest is read back as the bridge drains it.
    std::uint64_t bridge_window = 0;
    for (const auto& b : cfg().bridges) bridge_window = std::max<std::uint64_t>(bridge_window, b.buffer_memory_messages);
    if (bridge_window == 0) bridge_window = broker::bridge_config{}.buffer_memory_messages;
    v.delivery_window = [&](const std::string& client_id) -> std::uint64_t {
        return client_id.starts_with(own_client_prefix) ? bridge_window : std::numeric_limits<std::uint64_t>::max();
    };
    v.deliveries_left = [&](const std::string& client_id, const persistence::delivery_range& r) {
        if (session* s = find(client_id)) s->restore_paged(r);
    };
    v.inbound_qos2 = [&](const std::string& client_id, std::uint16_t packet_id) {
        if (session* s = find(client_id)) s->begin_inbound_qos2(packet_id);
    };
    v.expired_session = [&](persistence::stored_session&& r) {
        if (r.will) wills.push_back(from_stored(std::move(*r.will)));
    };
    persistence::load_result loaded;
    try {
        loaded = store_->load(v, now);
    } catch (const persistence::store_error& e) {
        // Records that decode but do not make sense to the broker (e.g.
        // stored properties) are reported with the path as well.
        const std::string& path = store_->opts().path;
        if (std::string_view(e.what()).find(path) == std::string_view::npos) {
            throw persistence::store_error(path + ": " + e.what());
        }
        throw;
    }
    rc.loaded = loaded.loaded;
    rc.purged = loaded.purged;
    if (const auto t = router_.retained_totals();
        t.messages > cfg().limits.max_retained_messages || t.bytes > cfg().limits.max_retained_bytes) {
        spdlog::warn("the store holds {} retained messages ({} bytes), over limits.max_retained_messages {} or "
                     "limits.max_retained_bytes {}: all loaded; new retained topics are refused until enough are cleared",
                     t.messages, t.bytes, cfg().limits.max_retained_messages, cfg().limits.max_retained_bytes);
    }

    for (const auto& s : recovered) {
        s->set_persistent(true, false);
        // The record below says "disconnected": keep what may have been sent marked.
        if (connected_at_stop.contains(s->client_id())) s->store_sent_marks(true);
        const auto rec = s->record();
        const std::int64_t elapsed_s = std::max<std::int64_t>(0, (now - rec.disconnected_at_ms) / 1000);
        const auto left = [&](std::uint32_t total) {
            return static_cast<std::uint32_t>(std::max<std::int64_t>(1, std::int64_t{total} - elapsed_s));
        };
        const std::uint32_t expiry = rec.expiry_interval == never_expires ? never_expires : left(rec.expiry_interval);
        bool will_pending = rec.will.has_value();
        std::uint32_t delay = 0;
        if (will_pending && std::int64_t{rec.will_delay} <= elapsed_s) {
            if (auto w = s->take_will(); w && *w) wills.push_back(*w);
            will_pending = false;
        } else if (will_pending) {
            delay = left(rec.will_delay);
        }
        save_session(s);
        arm_timer(s, s->generation(), ex, std::chrono::seconds(delay), will_pending, expiry);
    }
    lock.unlock();
    rc.wills_published = wills.size();
    for (const auto& w : wills) publish_will(w);
    return rc;
}

void broker_core::add_connection(const std::shared_ptr<session_owner>& c) {
    std::lock_guard lock(connections_mutex_);
    connections_.emplace(c.get(), c);
}

void broker_core::remove_connection(const session_owner* c) {
    std::lock_guard lock(connections_mutex_);
    connections_.erase(c);
}

std::size_t broker_core::kick_all(mqtt::reason_code code) {
    std::vector<std::shared_ptr<session_owner>> all;
    {
        std::lock_guard lock(connections_mutex_);
        for (auto& [p, w] : connections_) {
            if (auto c = w.lock()) all.push_back(std::move(c));
        }
    }
    for (auto& c : all) c->kick(code);
    return all.size();
}

std::size_t broker_core::connection_count() const {
    std::lock_guard lock(connections_mutex_);
    return connections_.size();
}

std::size_t broker_core::session_count() const {
    std::lock_guard lock(registry_mutex_);
    return sessions_.size();
}

std::vector<session_ptr> broker_core::all_sessions() const {
    std::vector<session_ptr> all;
    std::lock_guard lock(registry_mutex_);
    all.reserve(sessions_.size());
    for (const auto& [id, s] : sessions_) all.push_back(s);
    return all;
}

std::size_t broker_core::queued_messages() const {
    std::size_t n = 0;
    for (const auto& s : all_sessions()) n += s->queued_messages();
    return n;
}

broker_core::drop_summary broker_core::session_drops(std::size_t top) const {
    drop_summary d;
    // Kept sorted, most first; a small list (top is about 10).
    const auto keep = [top](std::vector<std::pair<std::string, std::uint64_t>>& list, const session& s,
                            std::uint64_t n) {
        if (n == 0 || top == 0) return;
        const auto pos = std::find_if(list.begin(), list.end(), [n](const auto& e) { return e.second < n; });
        if (list.size() < top || pos != list.end()) {
            list.insert(pos, {s.client_id(), n});
            if (list.size() > top) list.pop_back();
        }
    };
    for (const auto& s : all_sessions()) {
        d.replay_pending += s->replay_pending();
        keep(d.most_queued, *s, s->queued_messages());
        const std::uint64_t n = s->dropped();
        if (n == 0) continue;
        ++d.sessions;
        keep(d.top, *s, n);
    }
    return d;
}

std::string broker_core::assign_client_id() {
    char buf[48];
    const auto n = next_assigned_id_.fetch_add(1, std::memory_order_relaxed);
    const auto t = static_cast<unsigned long long>(
        std::chrono::duration_cast<std::chrono::microseconds>(started_.time_since_epoch()).count());
    std::snprintf(buf, sizeof buf, "strata-%llx-%llu", t, static_cast<unsigned long long>(n));
    return buf;
}

void broker_core::publish_sys() {
    const auto t = stats_.sum();
    const auto uptime =
        std::chrono::duration_cast<std::chrono::seconds>(steady_clock::now() - started_).count();
    auto put = [this](const char* topic, std::string value) { publish_sys_value(topic, std::move(value)); };
    put("$SYS/broker/version", std::string("strata ") + STRATA_VERSION);
    put("$SYS/broker/uptime", std::to_string(uptime));
    put("$SYS/broker/clients/connected", std::to_string(stats_.clients_connected.load()));
    put("$SYS/broker/sessions/count", std::to_string(session_count()));
    put("$SYS/broker/messages/received", std::to_string(t.publish_received));
    put("$SYS/broker/messages/sent", std::to_string(t.publish_sent));
    put("$SYS/broker/messages/dropped", std::to_string(t.dropped()));
    put("$SYS/broker/bytes/received", std::to_string(t.bytes_received));
    put("$SYS/broker/bytes/sent", std::to_string(t.bytes_sent));
    put("$SYS/broker/retained messages/count", std::to_string(router_.retained_count()));
    put("$SYS/broker/retained messages/bytes", std::to_string(router_.retained_totals().bytes));
    put("$SYS/broker/retained messages/refused", std::to_string(t.retained_refused_total()));
    put("$SYS/broker/retained messages/replay_skipped", std::to_string(t.retained_replay_skipped));
    const auto drops = session_drops(10);
    put("$SYS/broker/retained messages/replay_pending", std::to_string(drops.replay_pending));
    put("$SYS/broker/sessions/dropping", std::to_string(drops.sessions));
    {
        // The sessions that lost the most messages: a JSON array of
        // {"client_id", "dropped"}, most first.
        nlohmann::json top = nlohmann::json::array();
        for (const auto& [id, n] : drops.top) top.push_back({{"client_id", id}, {"dropped", n}});
        put("$SYS/broker/sessions/most_dropped", top.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        // The deepest queues: {"client_id", "queued"}, most first.
        nlohmann::json queued = nlohmann::json::array();
        for (const auto& [id, n] : drops.most_queued) queued.push_back({{"client_id", id}, {"queued", n}});
        put("$SYS/broker/sessions/most_queued", queued.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    put("$SYS/broker/subscriptions/count", std::to_string(router_.subscription_count()));
    // Back-pressure: publishers held for full subscriber queues, and the
    // slow-consumer policy's actions (limits.slow_consumer).
    put("$SYS/broker/publishers/waiting", std::to_string(stats_.publishers_waiting.load()));
    put("$SYS/broker/publishers/holds", std::to_string(t.publisher_holds));
    put("$SYS/broker/slow consumers/disconnected", std::to_string(t.slow_consumer_disconnects));
    put("$SYS/broker/slow consumers/dropping", std::to_string(t.slow_consumer_drops));
    put("$SYS/broker/slow consumers/dropped", std::to_string(t.dropped_slow_consumer));
    auto& logins = security_->logins();
    put("$SYS/broker/auth/login_failures", std::to_string(logins.failures()));
    put("$SYS/broker/auth/logins_refused_blocked", std::to_string(logins.refused()));
    put("$SYS/broker/auth/blocked_addresses", std::to_string(logins.blocked_addresses(steady_clock::now())));
    put("$SYS/broker/auth/password_checks_queued", std::to_string(security_->checks_queued()));
    put("$SYS/broker/auth/password_checks_refused", std::to_string(security_->checks_refused()));
    put("$SYS/broker/auth/publish_refused", std::to_string(t.publish_refused));
    put("$SYS/broker/auth/publish_rate_limited", std::to_string(t.publish_rate_limited));
    if (const auto f = security_->audit_file()) put("$SYS/broker/auth/audit_dropped", std::to_string(f->dropped()));
    if (auditing()) put("$SYS/broker/auth/audit_suppressed", std::to_string(audit_suppressed()));
}

}  // namespace strata::broker::core
