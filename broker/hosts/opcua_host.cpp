#include "broker/hosts/opcua_host.hpp"

#include "broker/core/broker_core.hpp"
#include "broker/hosts/opcua_json.hpp"
#include "broker/core/admission.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace strata::broker::hosts {
namespace {

constexpr std::uint32_t value_attribute = 13;
constexpr int max_browse_depth = 10;

bridges::opcua::crypto::policy_id policy_of(const std::string& name) {
    if (name == "Basic256Sha256") return bridges::opcua::crypto::policy_id::basic256sha256;
    if (name == "Aes128_Sha256_RsaOaep") return bridges::opcua::crypto::policy_id::aes128_sha256_rsaoaep;
    return bridges::opcua::crypto::policy_id::none;
}

bridges::opcua::message_security_mode mode_of(const std::string& name) {
    if (name == "Sign") return bridges::opcua::message_security_mode::sign;
    if (name == "SignAndEncrypt") return bridges::opcua::message_security_mode::sign_and_encrypt;
    return bridges::opcua::message_security_mode::none;
}

// A browse name as one topic level: the characters MQTT reserves become '_'.
std::string topic_level(std::string name) {
    std::replace_if(name.begin(), name.end(), [](char c) { return c == '/' || c == '+' || c == '#' || c == '\0'; }, '_');
    return name.empty() ? "_" : name;
}

template <class F>
void spawn_on(const asio::any_io_executor& ex, F&& f) {
    asio::co_spawn(ex, std::forward<F>(f), [](const std::exception_ptr& e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            spdlog::error("opcua: internal failure: {}", x.what());
        }
    });
}

}  // namespace

opcua_source::opcua_source(core::broker_core& core, opcua_config cfg, asio::any_io_executor ex)
    : source(core, cfg.name, cfg.identity, bridge_client_id("opcua/" + cfg.name)),
      cfg_(std::move(cfg)),
      ex_(std::move(ex)) {}

opcua_source::~opcua_source() = default;

void opcua_source::start() {
    auto self = shared_from_this();

    bridges::opcua::client_options o;
    o.endpoint = cfg_.endpoint;
    o.security_policy = policy_of(cfg_.policy);
    o.security_mode = mode_of(cfg_.mode);
    o.username = cfg_.username;
    o.password = cfg_.password;
    o.application_name = "Strata OPC UA ingestion (" + cfg_.name + ")";
    o.pki_directory = cfg_.pki;
    o.trust_any = cfg_.trust_any;
    o.publish_interval = std::chrono::milliseconds(cfg_.publish_interval_ms);
    std::weak_ptr<opcua_source> weak = self;
    bridges::opcua::client_callbacks cb;
    cb.on_state = [weak](bridges::opcua::connection_state s, const bridges::opcua::outcome& why) {
        if (auto p = weak.lock()) p->on_state(s, why);
    };
    cb.on_data_change = [weak](std::uint32_t handle, const bridges::opcua::data_value& dv) {
        if (auto p = weak.lock()) p->on_value(handle, dv);
    };
    client_ = std::make_unique<bridges::opcua::client>(ex_, std::move(o), std::move(cb));

    for (const auto& w : cfg_.writes) writes_[w.topic] = write_target{&w, *bridges::opcua::node_id::parse(w.node), {}, false};
    if (!cfg_.writes.empty()) {
        inbox_ = open_session(true, self).s;
        for (const auto& w : cfg_.writes) {
            core::subscription_entry e;
            e.options.qos = 0;
            e.options.no_local = true;  // not the replies this source publishes
            core_.routes().subscribe(inbox_.get(), w.topic, e);
            inbox_->remember_subscription(w.topic, e);
        }
    }
    client_->start();
    spawn_on(client_->executor(), [self]() -> asio::awaitable<void> { co_await self->setup(); });
    spdlog::info("opcua '{}': connecting to {} ({}, {})", cfg_.name, cfg_.endpoint, cfg_.policy, cfg_.mode);
}

void opcua_source::stop() {
    if (client_) {
        asio::post(client_->executor(), [self = shared_from_this()] { self->stopped_ = true; });
        client_->stop();
    }
    if (inbox_) inbox_->detach(this);
}

void opcua_source::remove() {
    stop();
    if (!inbox_) return;
    unsubscribe_all(*inbox_);
}

asio::awaitable<void> opcua_source::setup() {
    // Browsing needs the server: tried again until it answers. Monitored
    // items, once created, belong to the client and survive reconnections.
    auto delay = std::chrono::seconds(1);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (!stopped_) {
        if (co_await monitor_all()) co_return;
        timer.expires_after(delay);
        co_await timer.async_wait(asio::use_awaitable);
        delay = std::min(delay * 2, std::chrono::seconds(30));
    }
}

asio::awaitable<bool> opcua_source::monitor_all() {
    std::vector<std::pair<bridges::opcua::node_id, std::string>> nodes;
    std::vector<const opcua_mapping*> from;  // the mapping of each node
    for (const auto& m : cfg_.mappings) {
        if (!m.node.empty()) {
            nodes.emplace_back(*bridges::opcua::node_id::parse(m.node), m.topic);
            from.push_back(&m);
            continue;
        }
        auto root = co_await client_->resolve_path(m.browse, asio::use_awaitable);
        if (!root.ok()) {
            fail("browse path '" + m.browse + "': " + root.describe());
            co_return false;
        }
        const std::size_t before = nodes.size();
        co_await add_browsed(root.value, m.topic, 0, nodes);
        if (stopped_) co_return true;
        if (nodes.size() == before) spdlog::warn("opcua '{}': no variables below '{}'", cfg_.name, m.browse);
        from.resize(nodes.size(), &m);
    }
    if (stopped_ || nodes.empty()) co_return true;
    std::vector<bridges::opcua::monitor_request> req;
    req.reserve(nodes.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) {
        const opcua_mapping& m = *from[i];
        req.push_back({nodes[i].first, std::chrono::milliseconds(m.sampling_ms ? std::int64_t(*m.sampling_ms) : -1),
                       m.queue_size, m.deadband});
    }
    auto r = co_await client_->monitor(std::move(req), asio::use_awaitable);
    if (!r.ok()) {
        fail("monitored items: " + r.describe());
        co_return false;
    }
    for (std::size_t i = 0; i < r.value.size() && i < nodes.size(); ++i) {
        if (r.value[i].handle == 0) {
            errors_.fetch_add(1, std::memory_order_relaxed);
            spdlog::warn("opcua '{}': node {} ({}) cannot be monitored: {}", cfg_.name, nodes[i].first.to_string(),
                         nodes[i].second, r.value[i].status.name());
            continue;
        }
        items_[r.value[i].handle] = item{nodes[i].second, from[i]};
    }
    n_items_.store(items_.size(), std::memory_order_relaxed);
    // Values that arrived before their handles were known (the first
    // Publish response can overtake the monitor call's completion).
    auto early = std::move(early_);
    early_.clear();
    for (const auto& [handle, dv] : early) on_value(handle, dv);
    spdlog::info("opcua '{}': {} monitored items", cfg_.name, items_.size());
    co_return true;
}

asio::awaitable<void> opcua_source::add_browsed(const bridges::opcua::node_id& node, const std::string& prefix, int depth,
                                                std::vector<std::pair<bridges::opcua::node_id, std::string>>& out) {
    auto r = co_await client_->browse(node, asio::use_awaitable);
    if (!r.ok()) {
        fail("browse " + node.to_string() + ": " + r.describe());
        co_return;
    }
    for (const auto& ref : r.value) {
        const std::string topic = prefix + "/" + topic_level(ref.browse_name.name.value_or(""));
        if (ref.node_class == bridges::opcua::node_class::variable) {
            out.emplace_back(ref.node_id.id, topic);
        } else if (ref.node_class == bridges::opcua::node_class::object && depth + 1 < max_browse_depth) {
            co_await add_browsed(ref.node_id.id, topic, depth + 1, out);
        }
    }
}

void opcua_source::fail(const std::string& what) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("opcua '{}': {}", cfg_.name, what);
    set_last_error(what);
}

void opcua_source::on_state(bridges::opcua::connection_state s, const bridges::opcua::outcome& why) {
    if (s == bridges::opcua::connection_state::connected) {
        connected_.store(true, std::memory_order_relaxed);
        connects_.fetch_add(1, std::memory_order_relaxed);
        spdlog::info("opcua '{}': connected to {}", cfg_.name, cfg_.endpoint);
        return;
    }
    const bool was = connected_.exchange(false, std::memory_order_relaxed);
    errors_.fetch_add(1, std::memory_order_relaxed);
    const std::string reason = why.describe();
    const std::string before = set_last_error(reason);
    const bool repeated = !was && before == reason;
    // A server that keeps refusing (wrong password, untrusted certificate)
    // is logged once per reason, not on every retry.
    if (was) spdlog::warn("opcua '{}': connection to {} lost: {}", cfg_.name, cfg_.endpoint, reason);
    else if (!repeated) spdlog::warn("opcua '{}': cannot connect to {}: {}", cfg_.name, cfg_.endpoint, reason);
    else spdlog::debug("opcua '{}': cannot connect to {}: {}", cfg_.name, cfg_.endpoint, reason);
}

void opcua_source::on_value(std::uint32_t handle, const bridges::opcua::data_value& dv) {
    const auto it = items_.find(handle);
    if (it == items_.end()) {
        if (items_.empty()) early_.insert_or_assign(handle, dv);
        return;
    }
    auto m = std::make_shared<core::message>();
    m->topic = it->second.topic;
    const opcua_mapping& from = *it->second.mapping;
    m->payload = opcua_payload(dv, from.payload ? &*from.payload : nullptr, from.unit);
    m->qos = cfg_.qos;
    m->retain = cfg_.retain;
    m->origin = inbox_.get();
    if (publish_checked(std::move(m))) values_.fetch_add(1, std::memory_order_relaxed);
    else denied_.fetch_add(1, std::memory_order_relaxed);
}

bool opcua_source::publish_checked(const core::message_ptr& m) {
    const core::admission r = admit(m);
    switch (r.what) {
    case core::admission::outcome::published:
    case core::admission::outcome::quarantined:
        return true;
    case core::admission::outcome::denied:
        spdlog::debug("opcua '{}': '{}' refused: identity '{}' may not publish there", cfg_.name, m->topic,
                      cfg_.identity);
        return false;
    case core::admission::outcome::rejected:
    case core::admission::outcome::store_down:
    case core::admission::outcome::rate_limited:
    case core::admission::outcome::over_limit:
        spdlog::debug("opcua '{}': '{}' not published: {}", cfg_.name, m->topic, r.reason);
        return false;
    }
    return false;
}

void opcua_source::notify() {
    // With the session's mutex held: only a post.
    asio::post(client_->executor(), [self = shared_from_this()] {
        if (self->draining_ || self->stopped_) return;
        self->draining_ = true;
        spawn_on(self->client_->executor(), [self]() -> asio::awaitable<void> { co_await self->drain_writes(); });
    });
}

void opcua_source::kick(mqtt::reason_code, std::uint64_t) {
    // The admin API's disconnect: nothing to restart; the client reconnects on its own.
}

asio::awaitable<void> opcua_source::drain_writes() {
    std::vector<core::outgoing> got;
    while (!stopped_) {
        got.clear();
        inbox_->collect(this, got, SIZE_MAX, core::steady_clock::now(), 64);
        if (got.empty()) break;
        // One at a time, in arrival order: a later setpoint wins.
        for (auto& o : got) {
            if (o.what == core::outgoing::kind::publish && o.d.msg) co_await write(o.d.msg);
        }
    }
    draining_ = false;
}

asio::awaitable<void> opcua_source::write(core::message_ptr m) {
    const auto it = writes_.find(m->topic);
    if (it == writes_.end()) co_return;
    write_target& t = it->second;
    const opcua_write& w = *t.cfg;
    const opcua_command c = opcua_read_command(m->payload, w);
    if (!c.value) {
        write_errors_.fetch_add(1, std::memory_order_relaxed);
        reply(*m, w, c.request_id, write_result::refused, w.command_shape() ? "" : "BadTypeMismatch", c.error);
        co_return;
    }
    if (!t.type) {
        // The node's type, from its current value (read once).
        // (Vectors built before the co_await: GCC 12 cannot keep an
        // initializer list's array alive across a suspension.)
        std::vector<bridges::opcua::node_id> nodes;
        nodes.push_back(t.node);
        auto r = co_await client_->read(std::move(nodes), asio::use_awaitable);
        if (!r.ok() || r.value.empty() || !r.value[0].value || r.value[0].value->is_null()) {
            write_errors_.fetch_add(1, std::memory_order_relaxed);
            const std::string why = !r.ok() ? r.describe() : "the node has no value to take its type from";
            spdlog::warn("opcua '{}': write to {} ({}): {}", cfg_.name, t.node.to_string(), m->topic, why);
            reply(*m, w, c.request_id, write_result::failed, !r.ok() ? r.status.name() : "BadTypeMismatch", why);
            co_return;
        }
        t.type = r.value[0].value->type();
        t.array = r.value[0].value->is_array();
    }
    std::string error;
    auto v = opcua_from_json(*c.value, *t.type, t.array, error);
    if (!v) {
        write_errors_.fetch_add(1, std::memory_order_relaxed);
        reply(*m, w, c.request_id, write_result::refused, "BadTypeMismatch",
              std::string(bridges::opcua::to_string(*t.type)) + (t.array ? "[]" : "") + ": " + error);
        co_return;
    }
    bridges::opcua::write_value wv;
    wv.node_id = t.node;
    wv.attribute_id = value_attribute;
    wv.value.value = std::move(*v);
    std::vector<bridges::opcua::write_value> values;
    values.push_back(std::move(wv));
    auto r = co_await client_->write(std::move(values), asio::use_awaitable);
    const bridges::opcua::status_code status = !r.ok() ? r.status : r.value.empty() ? bridges::opcua::status_code{} : r.value[0];
    if (status.bad()) {
        write_errors_.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("opcua '{}': write to {} ({}) failed: {}", cfg_.name, t.node.to_string(), m->topic,
                     !r.ok() ? r.describe() : status.name());
    } else {
        writes_done_.fetch_add(1, std::memory_order_relaxed);
    }
    const std::string detail = !r.ok() ? r.describe() : status.bad() ? "the server refused the write" : "";
    reply(*m, w, c.request_id, status.bad() ? write_result::failed : write_result::ok, status.name(), detail);
}

void opcua_source::reply(const core::message& cmd, const opcua_write& w, const std::optional<std::string>& request_id,
                         write_result r, const std::string& status, const std::string& detail) {
    auto m = std::make_shared<core::message>();
    m->topic = cmd.props->response_topic ? *cmd.props->response_topic : w.reply_topic;
    m->payload = opcua_reply(w, request_id, r, status, detail);
    m->qos = 1;
    if (cmd.props->correlation_data) m->props.edit().correlation_data = cmd.props->correlation_data;
    m->origin = inbox_.get();
    if (!publish_checked(m)) {
        spdlog::warn("opcua '{}': the reply to '{}' could not be published on '{}'", cfg_.name, cmd.topic, m->topic);
    }
}

opcua_status opcua_source::status() const {
    opcua_status s;
    fill_status(s);
    s.connected = connected_.load(std::memory_order_relaxed);
    s.items = n_items_.load(std::memory_order_relaxed);
    s.values = values_.load(std::memory_order_relaxed);
    s.errors = errors_.load(std::memory_order_relaxed);
    s.writes = writes_done_.load(std::memory_order_relaxed);
    s.write_errors = write_errors_.load(std::memory_order_relaxed);
    s.connects = connects_.load(std::memory_order_relaxed);
    return s;
}

void opcua_source::sys_values(const opcua_status& s, const sys_put& put) {
    put("connected", s.connected ? "1" : "0");
    put("items", std::to_string(s.items));
    put("values", std::to_string(s.values));
    put("denied", std::to_string(s.denied));
    put("errors", std::to_string(s.errors));
    put("writes", std::to_string(s.writes));
    put("write_errors", std::to_string(s.write_errors));
    put("connects", std::to_string(s.connects));
    put("last_error", s.last_error);
}

}  // namespace strata::broker::hosts
