#include "broker/hosts/sparkplug_host.hpp"

#include "bridges/sparkplug/mapping.hpp"
#include "broker/core/admission.hpp"
#include "broker/core/broker_core.hpp"
#include "broker/hosts/opcua_json.hpp"
#include "broker/hosts/sparkplug_json.hpp"
#include "namespace/topic.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <limits>

namespace strata::broker::hosts {
namespace {

namespace sp = bridges::sparkplug;

constexpr std::size_t batch = 256;                 // messages taken from the session per turn
constexpr std::size_t max_detail = 500;            // a reply's detail (the acme reply schema's maxLength)
constexpr std::string_view sparkplug_filter = "spBv1.0/#";

std::int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string node_key(std::string_view group, std::string_view edge_node) {
    std::string k(group);
    k.append("/").append(edge_node);
    return k;
}

// Metrics of the protocol itself, never mapped: the birth/death sequence
// number and the node's control metrics (Rebirth, Next Server, ...).
bool protocol_metric(std::string_view name) {
    return name == "bdSeq" || name.starts_with("Node Control/") || name.starts_with("Device Control/");
}

sp::tracker_limits limits_of(const sparkplug_config& c) {
    return {.max_nodes = c.max_nodes,
            .max_devices_per_node = c.max_devices_per_node,
            .max_metrics_per_birth = c.max_metrics_per_birth,
            .max_aliases_per_node = c.max_aliases_per_node,
            .max_hosts = 1'000};
}

// The command topics of a rule: TOPIC-as-filter/cmd/SUBTOPIC.
std::string command_filter(const sp::device_rule& r, const sparkplug_config& c, const sp::command_rule& cmd) {
    return sp::template_filter(r.topic) + "/" + c.command_class + "/" + cmd.subtopic;
}

opcua_write command_shape(const sparkplug_config& c) {
    opcua_write w;
    w.value_path = c.value_path;
    w.request_id_path = c.request_id_path;
    return w;
}

}  // namespace

sparkplug_source::sparkplug_source(core::broker_core& core, sparkplug_config cfg, asio::io_context::executor_type ex)
    : source(core, cfg.name, cfg.identity, bridge_client_id("sparkplug/" + cfg.name)),
      cfg_(std::move(cfg)),
      strand_(asio::make_strand(ex)),
      tracker_(limits_of(cfg_)) {}

sparkplug_source::~sparkplug_source() = default;

void sparkplug_source::start() {
    auto self = shared_from_this();
    inbox_ = open_session(true, self).s;
    core::queue_limits l;
    l.max_messages = cfg_.queue_messages;
    l.max_bytes = std::numeric_limits<std::uint64_t>::max();
    l.policy = core::when_full::drop_new;
    inbox_->set_queue_limits(l);
    const auto subscribe = [&](const std::string& filter) {
        core::subscription_entry e;
        e.options.qos = 0;
        e.options.no_local = true;  // not the NCMD/DCMD and replies this host publishes
        core_.routes().subscribe(inbox_.get(), filter, e);
        inbox_->remember_subscription(filter, e);
    };
    // The certificates first, so that data arriving meanwhile finds the
    // aliases of the nodes that birthed before.
    asio::post(strand_, [self] { self->restore_certificates(); });
    subscribe(std::string(sparkplug_filter));
    for (const auto& r : cfg_.mappings)
        for (const auto& c : r.commands) subscribe(command_filter(r, cfg_, c));
    spdlog::info("sparkplug '{}': following {} ({} mappings, certificates {})", cfg_.name, sparkplug_filter,
                 cfg_.mappings.size(), cfg_.certificates ? "kept" : "off");
}

void sparkplug_source::stop() {
    asio::post(strand_, [self = shared_from_this()] { self->stopped_ = true; });
    if (inbox_) inbox_->detach(this);
}

void sparkplug_source::remove() {
    stop();
    if (inbox_) unsubscribe_all(*inbox_);
}

void sparkplug_source::notify() {
    // With the session's mutex held: only a post.
    asio::post(strand_, [self = shared_from_this()] {
        if (self->draining_ || self->stopped_) return;
        self->draining_ = true;
        self->drain();
    });
}

void sparkplug_source::kick(mqtt::reason_code, std::uint64_t) {
    // The admin API's disconnect: the host has no connection to restart.
}

void sparkplug_source::drain() {
    std::vector<core::outgoing> got;
    got.reserve(batch);
    while (!stopped_) {
        got.clear();
        inbox_->collect(this, got, SIZE_MAX, core::steady_clock::now(), batch);
        if (got.empty()) break;
        const std::int64_t now_ms = wall_ms();
        std::lock_guard lock(mutex_);
        if (const auto g = core_.model_generation(); g != model_generation_) {
            // Classes (and their retain rules) may have changed.
            targets_.clear();
            model_generation_ = g;
        }
        for (const auto& o : got) {
            if (o.what != core::outgoing::kind::publish || !o.d.msg) continue;
            try {
                take(*o.d.msg, now_ms);
            } catch (const std::exception& x) {
                // Nothing from the network may stop the host.
                malformed_.fetch_add(1, std::memory_order_relaxed);
                if (refused_log_.allow())
                    spdlog::warn("sparkplug '{}': '{}' dropped: {}{}", cfg_.name, o.d.msg->topic, x.what(),
                                 refused_log_.suffix());
            }
        }
        // Let other work on this thread run between batches.
        if (got.size() == batch) {
            asio::post(strand_, [self = shared_from_this()] { self->drain(); });
            return;
        }
    }
    draining_ = false;
}

void sparkplug_source::take(const core::message& m, std::int64_t now_ms) {
    if (m.topic.starts_with(sp::namespace_v1) && m.topic.size() > sp::namespace_v1.size() &&
        m.topic[sp::namespace_v1.size()] == '/')
        take_sparkplug(m, now_ms);
    else
        take_command(m, now_ms);
}

void sparkplug_source::take_sparkplug(const core::message& m, std::int64_t now_ms) {
    messages_.fetch_add(1, std::memory_order_relaxed);
    const auto t = sp::parse_topic(m.topic);
    if (!t) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
        spdlog::debug("sparkplug '{}': '{}' is not a Sparkplug B topic", cfg_.name, m.topic);
        return;
    }
    if (t->type == sp::message_type::state) {
        const auto o = tracker_.apply_state(*t, m.payload);
        if (o.what == sp::event::refused) malformed_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (m.payload.empty() && m.retain) return;  // a retained message cleared
    const auto d = sp::decode(m.payload, {.max_bytes = cfg_.max_payload_bytes,
                                          .max_metrics = std::max<std::size_t>(cfg_.max_metrics_per_birth, 100'000)});
    if (d.error != sp::decode_error::none) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
        spdlog::debug("sparkplug '{}': '{}': payload not decoded ({} bytes)", cfg_.name, m.topic, m.payload.size());
        return;
    }
    const sp::outcome o = tracker_.apply(*t, d.p, now_ms);
    if (o.seq_gap) {
        seq_gaps_.fetch_add(1, std::memory_order_relaxed);
        spdlog::debug("sparkplug '{}': seq gap at '{}' (seq {})", cfg_.name, m.topic, d.p.seq.value_or(0));
    }
    switch (o.what) {
    case sp::event::birth:
        births_.fetch_add(1, std::memory_order_relaxed);
        if (t->type == sp::message_type::nbirth) {
            // Devices birth again: every cached target of the node goes.
            const std::string prefix = node_key(t->group, t->edge_node) + "/";
            std::erase_if(targets_, [&](const auto& e) { return e.first.starts_with(prefix); });
            rebirth_asked_.erase(node_key(t->group, t->edge_node));
        }
        if (cfg_.certificates) certify(m);
        unknown_aliases_.fetch_add(o.unresolved, std::memory_order_relaxed);
        map_metrics(*t, o, d.p, now_ms);
        spdlog::debug("sparkplug '{}': {} {}/{}{}{}", cfg_.name, sp::to_string(t->type), t->group, t->edge_node,
                      t->device.empty() ? "" : "/", t->device);
        break;
    case sp::event::death:
        deaths_.fetch_add(1, std::memory_order_relaxed);
        if (cfg_.stale_on_death) publish_stale(*t, now_ms);
        break;
    case sp::event::stale_death:
        stale_deaths_.fetch_add(1, std::memory_order_relaxed);
        if (ignored_log_.allow())
            spdlog::info("sparkplug '{}': '{}' ignored: {}{}", cfg_.name, m.topic, o.reason, ignored_log_.suffix());
        break;
    case sp::event::data:
        unknown_aliases_.fetch_add(o.unresolved, std::memory_order_relaxed);
        map_metrics(*t, o, d.p, now_ms);
        break;
    case sp::event::no_birth:
        no_birth_.fetch_add(1, std::memory_order_relaxed);
        request_rebirth(*t, now_ms);
        break;
    case sp::event::refused:
        refused_.fetch_add(1, std::memory_order_relaxed);
        if (refused_log_.allow())
            spdlog::warn("sparkplug '{}': '{}' refused: {}{}", cfg_.name, m.topic, o.reason, refused_log_.suffix());
        break;
    case sp::event::command:
    case sp::event::state:
        break;
    }
}

namespace {

// Whether a payload says its quality (a class whose template has no status
// key would only show the last value again, with a new time).
bool shows_quality(const opcua_template* t) {
    using field = opcua_template::field;
    return !t || t->has(field::status) || t->has(field::status_name) || t->has(field::status_code);
}

}  // namespace

sparkplug_source::target& sparkplug_source::target_of(const sp::topic& t, const std::string& metric) {
    std::string key = node_key(t.group, t.edge_node);
    key.append("/").append(t.device);
    device_targets& dt = targets_[key];
    if (!dt.resolved) {
        dt.resolved = true;
        dt.rule = sp::find_rule(cfg_.mappings, t.group, t.edge_node, t.device);
        if (dt.rule) {
            if (auto p = sp::expand(dt.rule->topic, t.group, t.edge_node, t.device)) dt.prefix = std::move(*p);
            else dt.rule = nullptr;  // an id that is no topic level
        }
    }
    if (auto it = dt.metrics.find(metric); it != dt.metrics.end()) return it->second;
    target tg;
    const sp::metric_rule* mr = dt.rule && !protocol_metric(metric) ? sp::find_metric(*dt.rule, metric) : nullptr;
    if (mr) {
        if (auto topic = sp::metric_topic(dt.prefix, *mr, metric)) {
            tg.topic = std::move(*topic);
            if (auto it = cfg_.templates.find(mr->data_class); it != cfg_.templates.end()) tg.payload = &it->second;
            tg.unit = mr->unit;
            const ns::model* model = core_.model();
            const ns::data_class* cls = model ? model->find_class(mr->data_class) : nullptr;
            tg.retain = cls && cls->retain != ns::retain_rule::any ? cls->retain == ns::retain_rule::required
                                                                   : cfg_.retain;
        }
    }
    return dt.metrics.emplace(metric, std::move(tg)).first->second;
}

void sparkplug_source::map_metrics(const sp::topic& t, const sp::outcome& o, const sp::payload& p,
                                   std::int64_t now_ms) {
    if (cfg_.mappings.empty()) return;
    for (const auto& r : o.metrics) {
        target& tg = target_of(t, r.def->name);
        // Historical values are not the current state: not mapped.
        if (tg.topic.empty() || r.m->is_historical) {
            unmapped_.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        const auto j = sparkplug_to_json(sp::typed(*r.m, r.def->type));
        if (!j) {
            unmapped_.fetch_add(1, std::memory_order_relaxed);
            continue;
        }
        publish_value(tg, *j, j->is_null() ? sparkplug_quality::bad : sparkplug_quality::good,
                      r.m->timestamp.value_or(p.timestamp.value_or(0)), now_ms);
    }
}

void sparkplug_source::publish_value(target& tg, const nlohmann::json& v, sparkplug_quality q,
                                     std::uint64_t source_ms, std::int64_t now_ms) {
    auto msg = std::make_shared<core::message>();
    msg->topic = tg.topic;
    msg->payload = sparkplug_payload(v, q, source_ms, now_ms, tg.payload, tg.unit);
    msg->qos = cfg_.qos;
    msg->retain = tg.retain;
    msg->origin = inbox_.get();
    if (publish_checked(msg, "value")) mapped_.fetch_add(1, std::memory_order_relaxed);
    else denied_.fetch_add(1, std::memory_order_relaxed);
    if (q != sparkplug_quality::uncertain) {
        tg.last = v;
        tg.last_ms = source_ms;
    }
}

void sparkplug_source::publish_stale(const sp::topic& t, std::int64_t now_ms) {
    // NDEATH: the node's own metrics and every device's; DDEATH: the device's.
    std::string key = node_key(t.group, t.edge_node) + "/";
    if (!t.device.empty()) key.append(t.device);
    const bool node = t.device.empty();
    for (auto& [k, dt] : targets_) {
        if (node ? !k.starts_with(key) : k != key) continue;
        for (auto& [name, tg] : dt.metrics) {
            if (tg.topic.empty() || tg.last.is_null() || !shows_quality(tg.payload)) continue;
            // The death's time: since then the value is no longer current.
            publish_value(tg, tg.last, sparkplug_quality::uncertain, static_cast<std::uint64_t>(now_ms), now_ms);
        }
    }
}

void sparkplug_source::certify(const core::message& birth) {
    auto c = std::make_shared<core::message>();
    c->topic = sp::certificate_topic(birth.topic);
    if (!ns::valid_topic_name(c->topic)) {
        // A birth topic within a few bytes of MQTT's limit has no certificate topic.
        refused_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    c->payload = birth.payload;
    c->qos = 1;
    c->retain = true;
    c->origin = inbox_.get();
    c->received_ms = wall_ms();
    // The broker's own topic: no admission (clients cannot publish under '$').
    (void)core_.publish(c);
}

void sparkplug_source::restore_certificates() {
    std::vector<core::message_ptr> certs;
    core_.routes().for_each_retained(sp::certificate_topic(std::string(sp::namespace_v1) + "/#"),
                                     [&](const core::message_ptr& m) { certs.push_back(m); });
    std::size_t restored = 0;
    std::lock_guard lock(mutex_);
    for (const auto& m : certs) {
        const auto t = sp::parse_topic(std::string_view(m->topic).substr(sp::certificates_prefix.size()));
        if (!t) continue;
        const auto d = sp::decode(m->payload, {.max_bytes = cfg_.max_payload_bytes});
        if (d.error != sp::decode_error::none) continue;
        if (tracker_.restore(*t, d.p, m->received_ms).what == sp::event::birth) ++restored;
    }
    if (restored) spdlog::info("sparkplug '{}': {} births read back from the certificates", cfg_.name, restored);
}

void sparkplug_source::request_rebirth(const sp::topic& t, std::int64_t now_ms) {
    if (!cfg_.rebirth) return;
    const std::string key = node_key(t.group, t.edge_node);
    const auto it = rebirth_asked_.find(key);
    if (it != rebirth_asked_.end() && now_ms - it->second < std::int64_t{cfg_.rebirth_interval_s} * 1000) return;
    if (rebirth_asked_.size() >= cfg_.max_nodes) rebirth_asked_.clear();  // bounded like the nodes
    rebirth_asked_[key] = now_ms;
    sp::payload p;
    p.timestamp = static_cast<std::uint64_t>(now_ms);
    sp::metric rebirth;
    rebirth.name = "Node Control/Rebirth";
    rebirth.datatype = sp::data_type::boolean;
    rebirth.v = true;
    p.metrics.push_back(std::move(rebirth));
    auto m = std::make_shared<core::message>();
    m->topic = sp::topic_name(sp::message_type::ncmd, t.group, t.edge_node);
    m->payload = sp::encode(p);
    m->origin = inbox_.get();
    if (publish_checked(m, "rebirth request")) {
        rebirths_.fetch_add(1, std::memory_order_relaxed);
        spdlog::info("sparkplug '{}': {}/{}: data without a known birth; rebirth requested", cfg_.name, t.group,
                     t.edge_node);
    }
}

void sparkplug_source::take_command(const core::message& m, std::int64_t now_ms) {
    for (const auto& rule : cfg_.mappings) {
        for (const auto& c : rule.commands) {
            const std::string suffix = "/" + cfg_.command_class + "/" + c.subtopic;
            if (m.topic.size() <= suffix.size() || !m.topic.ends_with(suffix)) continue;
            const std::string prefix = m.topic.substr(0, m.topic.size() - suffix.size());
            const auto ids = sp::match_template(rule.topic, prefix);
            if (!ids) continue;
            // Each id from the topic where the template names it, else the rule's own.
            const std::string group = ids->group.empty() ? rule.group : ids->group;
            const std::string edge = ids->edge_node.empty() ? rule.edge_node : ids->edge_node;
            const std::string device = ids->device.empty() ? rule.device : ids->device;
            if (!sp::id_matches(rule.group, group) || !sp::id_matches(rule.edge_node, edge) ||
                (!rule.device.empty() && !sp::id_matches(rule.device, device)))
                continue;
            const std::string reply_topic =
                cfg_.reply_class.empty() ? std::string() : prefix + "/" + cfg_.reply_class + "/" + c.subtopic;
            const opcua_command cmd = opcua_read_command(m.payload, command_shape(cfg_));
            const auto refuse = [&](const std::string& why) {
                command_errors_.fetch_add(1, std::memory_order_relaxed);
                if (command_log_.allow())
                    spdlog::info("sparkplug '{}': command on '{}' refused: {}{}", cfg_.name, m.topic, why,
                                 command_log_.suffix());
                reply(m, reply_topic, cmd.request_id, false, why);
            };
            if (!cmd.value) return refuse(cmd.error);
            const auto v = sparkplug_from_json(*cmd.value);
            if (!v) return refuse("the value must be a number, a boolean or a string");
            const sp::node_state* node = tracker_.node(group, edge);
            if (!node || !(node->online || node->restored))
                return refuse("the edge node " + group + "/" + edge + " is not online");
            const sp::metric_table* table = tracker_.table(group, edge, device);
            if (!table) return refuse("no birth of " + (device.empty() ? "the edge node" : "device " + device) + " was seen");
            const auto def = table->by_name.find(c.metric);
            if (def == table->by_name.end()) return refuse("the last birth declares no metric '" + c.metric + "'");
            const sp::metric_def& md = table->defs[def->second];
            const auto fitted = sp::fits(*v, md.type);
            if (!fitted) return refuse("the value does not fit the metric's type " + std::string(sp::to_string(md.type)));
            sp::payload p;
            p.timestamp = static_cast<std::uint64_t>(now_ms);
            sp::metric out;
            // Aliases where the birth declared one (Sparkplug 3.0: then without the name).
            if (const auto& alias = table->aliases[def->second]) out.alias = *alias;
            else out.name = c.metric;
            out.timestamp = static_cast<std::uint64_t>(now_ms);
            out.datatype = md.type;
            out.v = *fitted;
            p.metrics.push_back(std::move(out));
            auto msg = std::make_shared<core::message>();
            msg->topic = sp::topic_name(device.empty() ? sp::message_type::ncmd : sp::message_type::dcmd, group, edge,
                                        device);
            msg->payload = sp::encode(p);
            msg->origin = inbox_.get();
            if (!publish_checked(msg, "command")) return refuse("the identity '" + identity() + "' may not publish on " + msg->topic);
            commands_.fetch_add(1, std::memory_order_relaxed);
            reply(m, reply_topic, cmd.request_id, true, "");
            return;
        }
    }
}

void sparkplug_source::reply(const core::message& cmd, const std::string& topic,
                             const std::optional<std::string>& request_id, bool sent, const std::string& detail) {
    const std::string& to = cmd.props->response_topic ? *cmd.props->response_topic : topic;
    if (to.empty()) return;
    auto m = std::make_shared<core::message>();
    m->topic = to;
    m->payload = opcua_reply(command_shape(cfg_), request_id, sent ? write_result::ok : write_result::refused, "",
                             detail.substr(0, max_detail));
    m->qos = 1;
    if (cmd.props->correlation_data) m->props.edit().correlation_data = cmd.props->correlation_data;
    m->origin = inbox_.get();
    (void)publish_checked(m, "reply");
}

bool sparkplug_source::publish_checked(const core::message_ptr& m, std::string_view what) {
    const core::admission r = admit(m);
    if (r.passed()) return true;
    spdlog::debug("sparkplug '{}': {} on '{}' not published: {}", cfg_.name, what, m->topic,
                  r.what == core::admission::outcome::denied ? "identity '" + identity() + "' may not publish there"
                                                             : r.reason);
    return false;
}

sparkplug_status sparkplug_source::status() const {
    sparkplug_status s;
    fill_status(s);
    s.connected = true;  // inside the broker
    s.connects = 1;
    s.messages = messages_.load(std::memory_order_relaxed);
    s.malformed = malformed_.load(std::memory_order_relaxed);
    s.births = births_.load(std::memory_order_relaxed);
    s.deaths = deaths_.load(std::memory_order_relaxed);
    s.stale_deaths = stale_deaths_.load(std::memory_order_relaxed);
    s.seq_gaps = seq_gaps_.load(std::memory_order_relaxed);
    s.no_birth = no_birth_.load(std::memory_order_relaxed);
    s.unknown_aliases = unknown_aliases_.load(std::memory_order_relaxed);
    s.refused = refused_.load(std::memory_order_relaxed);
    s.mapped = mapped_.load(std::memory_order_relaxed);
    s.unmapped = unmapped_.load(std::memory_order_relaxed);
    s.rebirths = rebirths_.load(std::memory_order_relaxed);
    s.commands = commands_.load(std::memory_order_relaxed);
    s.command_errors = command_errors_.load(std::memory_order_relaxed);
    s.dropped = inbox_ ? inbox_->dropped() : 0;
    s.offline_alert_ms = std::int64_t{cfg_.offline_alert_s} * 1000;
    std::lock_guard lock(mutex_);
    s.nodes.reserve(tracker_.nodes().size());
    for (const auto& [key, n] : tracker_.nodes()) {
        sparkplug_node_view v;
        v.group = n.group;
        v.edge_node = n.edge_node;
        v.online = n.online || n.restored;
        v.bd_seq = n.bd_seq;
        v.birth_ms = n.birth_ms;
        v.death_ms = n.death_ms;
        v.last_message_ms = n.last_message_ms;
        v.births = n.births;
        v.deaths = n.deaths;
        v.stale_deaths = n.stale_deaths;
        v.seq_gaps = n.seq_gaps;
        v.messages = n.messages;
        v.metrics = n.metrics.defs.size();
        (v.online ? s.nodes_online : s.nodes_offline) += 1;
        for (const auto& [name, d] : n.devices) {
            const bool on = v.online && (d.online || d.restored);
            v.devices.push_back({name, on, d.birth_ms, d.death_ms, d.births, d.metrics.defs.size()});
            (on ? s.devices_online : s.devices_offline) += 1;
        }
        s.nodes.push_back(std::move(v));
    }
    return s;
}

nlohmann::json sparkplug_node_json(const sparkplug_node_view& n) {
    const auto time = [](std::int64_t ms) { return ms ? nlohmann::json(iso8601_ms(ms)) : nlohmann::json(nullptr); };
    nlohmann::json devices = nlohmann::json::object();
    for (const auto& d : n.devices)
        devices[d.name] = {{"online", d.online}, {"births", d.births}, {"last_birth", time(d.birth_ms)},
                           {"last_death", time(d.death_ms)}, {"metrics", d.metrics}};
    return {{"group", n.group},
            {"edge_node", n.edge_node},
            {"online", n.online},
            {"bd_seq", n.bd_seq ? nlohmann::json(*n.bd_seq) : nlohmann::json(nullptr)},
            {"last_birth", time(n.birth_ms)},
            {"last_death", time(n.death_ms)},
            {"last_message", time(n.last_message_ms)},
            {"births", n.births},
            {"deaths", n.deaths},
            {"stale_deaths", n.stale_deaths},
            {"seq_gaps", n.seq_gaps},
            {"messages", n.messages},
            {"metrics", n.metrics},
            {"devices", std::move(devices)}};
}

void sparkplug_source::sys_values(const sparkplug_status& s, const sys_put& put) {
    put("messages", std::to_string(s.messages));
    put("malformed", std::to_string(s.malformed));
    put("births", std::to_string(s.births));
    put("deaths", std::to_string(s.deaths));
    put("stale_deaths", std::to_string(s.stale_deaths));
    put("seq_gaps", std::to_string(s.seq_gaps));
    put("no_birth", std::to_string(s.no_birth));
    put("unknown_aliases", std::to_string(s.unknown_aliases));
    put("refused", std::to_string(s.refused));
    put("mapped", std::to_string(s.mapped));
    put("unmapped", std::to_string(s.unmapped));
    put("denied", std::to_string(s.denied));
    put("rebirths", std::to_string(s.rebirths));
    put("commands", std::to_string(s.commands));
    put("command_errors", std::to_string(s.command_errors));
    put("dropped", std::to_string(s.dropped));
    put("nodes/online", std::to_string(s.nodes_online));
    put("nodes/offline", std::to_string(s.nodes_offline));
    put("devices/online", std::to_string(s.devices_online));
    put("devices/offline", std::to_string(s.devices_offline));
    // One JSON document per edge node: $SYS/broker/sparkplug/NAME/node/GROUP/EDGE_NODE.
    for (const auto& n : s.nodes) {
        const std::string leaf = "node/" + n.group + "/" + n.edge_node;
        if (!ns::valid_topic_name("$SYS/broker/sparkplug/" + s.name + "/" + leaf)) continue;  // ids near MQTT's limit
        put(leaf.c_str(), sparkplug_node_json(n).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
}

}  // namespace strata::broker::hosts
