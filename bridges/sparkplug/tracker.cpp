#include "bridges/sparkplug/tracker.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace strata::bridges::sparkplug {
namespace {

std::string node_key(std::string_view group, std::string_view edge_node) {
    std::string k;
    k.reserve(group.size() + edge_node.size() + 1);
    k.append(group).append("/").append(edge_node);
    return k;
}

}  // namespace

std::optional<std::uint64_t> bd_seq_of(const payload& p) {
    for (const auto& m : p.metrics) {
        if (!m.name || *m.name != "bdSeq") continue;
        if (const auto* u = std::get_if<std::uint64_t>(&m.v)) return *u;
        return std::nullopt;
    }
    return std::nullopt;
}

const node_state* tracker::node(std::string_view group, std::string_view edge_node) const {
    const auto it = nodes_.find(node_key(group, edge_node));
    return it == nodes_.end() ? nullptr : &it->second;
}

const metric_table* tracker::table(std::string_view group, std::string_view edge_node, std::string_view device) const {
    const node_state* n = node(group, edge_node);
    if (!n) return nullptr;
    if (device.empty()) return n->births ? &n->metrics : nullptr;
    const auto d = n->devices.find(device);
    return d == n->devices.end() || !d->second.births ? nullptr : &d->second.metrics;
}

node_state* tracker::find_or_add(const topic& t, outcome& o) {
    const std::string key = node_key(t.group, t.edge_node);
    if (auto it = nodes_.find(key); it != nodes_.end()) return &it->second;
    if (nodes_.size() >= limits_.max_nodes) {
        o.what = event::refused;
        o.reason = "more edge nodes than max_nodes (" + std::to_string(limits_.max_nodes) + ")";
        return nullptr;
    }
    node_state& n = nodes_[key];
    n.group = std::string(t.group);
    n.edge_node = std::string(t.edge_node);
    return &n;
}

device_state* tracker::find_or_add_device(node_state& n, std::string_view device, outcome& o) {
    if (auto it = n.devices.find(device); it != n.devices.end()) return &it->second;
    if (n.devices.size() >= limits_.max_devices_per_node) {
        o.what = event::refused;
        o.reason = "more devices than max_devices_per_node (" + std::to_string(limits_.max_devices_per_node) + ")";
        return nullptr;
    }
    return &n.devices.emplace(std::string(device), device_state{}).first->second;
}

std::size_t tracker::alias_budget(const node_state& n, const metric_table& replaced) const {
    return limits_.max_aliases_per_node - std::min(limits_.max_aliases_per_node, aliases_of(n, &replaced));
}

outcome tracker::restore(const topic& t, const payload& p, std::int64_t birth_ms) {
    outcome o;
    if (t.type != message_type::nbirth && t.type != message_type::dbirth) {
        o.what = event::refused;
        o.reason = "not a birth";
        return o;
    }
    node_state* n = find_or_add(t, o);
    if (!n) return o;
    if (t.type == message_type::nbirth) {
        if (!fill_table(n->metrics, p, alias_budget(*n, n->metrics), o)) return o;
        n->bd_seq = bd_seq_of(p);
        n->births = std::max<std::uint64_t>(n->births, 1);
        n->birth_ms = birth_ms;
        n->restored = !n->online;
        o.what = event::birth;
        return o;
    }
    device_state* d = find_or_add_device(*n, t.device, o);
    if (!d || !fill_table(d->metrics, p, alias_budget(*n, d->metrics), o)) return o;
    d->births = std::max<std::uint64_t>(d->births, 1);
    d->birth_ms = birth_ms;
    d->restored = !d->online;
    o.what = event::birth;
    return o;
}

bool tracker::check_seq(node_state& n, const payload& p) {
    if (!p.seq) return false;
    const auto seq = static_cast<std::uint8_t>(*p.seq & 0xff);
    bool gap = *p.seq > 255 || (n.seq && static_cast<std::uint8_t>(*n.seq + 1) != seq);
    n.seq = seq;
    if (gap) ++n.seq_gaps;
    return gap;
}

std::size_t tracker::aliases_of(const node_state& n, const metric_table* except) const {
    std::size_t total = &n.metrics == except ? 0 : n.metrics.by_alias.size();
    for (const auto& [name, d] : n.devices)
        if (&d.metrics != except) total += d.metrics.by_alias.size();
    return total;
}

bool tracker::fill_table(metric_table& table, const payload& p, std::size_t budget, outcome& o) {
    if (p.metrics.size() > limits_.max_metrics_per_birth) {
        o.what = event::refused;
        o.reason = "a birth with " + std::to_string(p.metrics.size()) + " metrics (max_metrics_per_birth " +
                   std::to_string(limits_.max_metrics_per_birth) + ")";
        return false;
    }
    metric_table next;
    next.defs.reserve(p.metrics.size());
    for (const auto& m : p.metrics) {
        // A birth declares every metric by name with its type.
        if (!m.name || m.name->empty() || !m.datatype) {
            ++o.unresolved;
            continue;
        }
        if (next.by_name.contains(*m.name)) continue;  // the first declaration counts
        if (m.alias && next.by_alias.size() >= budget) {
            o.what = event::refused;
            o.reason = "more aliases than max_aliases_per_node (" + std::to_string(limits_.max_aliases_per_node) + ")";
            return false;
        }
        const std::size_t i = next.defs.size();
        next.defs.push_back({*m.name, *m.datatype});
        next.aliases.push_back(m.alias);
        next.by_name.emplace(*m.name, i);
        if (m.alias) next.by_alias.emplace(*m.alias, i);
    }
    table = std::move(next);
    return true;
}

void tracker::resolve(const metric_table& table, const payload& p, outcome& o) const {
    o.metrics.reserve(p.metrics.size());
    for (const auto& m : p.metrics) {
        const metric_def* def = nullptr;
        if (m.alias) {
            if (auto it = table.by_alias.find(*m.alias); it != table.by_alias.end()) def = &table.defs[it->second];
        } else if (m.name) {
            if (auto it = table.by_name.find(*m.name); it != table.by_name.end()) def = &table.defs[it->second];
        }
        if (!def) {
            ++o.unresolved;
            continue;
        }
        o.metrics.push_back({&m, def});
    }
}

outcome tracker::apply(const topic& t, const payload& p, std::int64_t now_ms) {
    outcome o;
    if (t.type == message_type::state) {
        o.what = event::refused;
        o.reason = "STATE is JSON";
        return o;
    }
    if (t.type == message_type::ncmd || t.type == message_type::dcmd) {
        o.what = event::command;
        return o;
    }
    // A death of a node never seen changes nothing: no entry is made for it.
    if (t.type == message_type::ndeath && !node(t.group, t.edge_node)) {
        o.what = event::stale_death;
        o.reason = "a death of an edge node that never was born";
        return o;
    }
    node_state* n = find_or_add(t, o);
    if (!n) return o;
    ++n->messages;
    n->last_message_ms = now_ms;

    switch (t.type) {
    case message_type::nbirth: {
        const auto bd = bd_seq_of(p);
        if (!bd) {
            o.what = event::refused;
            o.reason = "an NBIRTH without a bdSeq metric";
            return o;
        }
        if (!fill_table(n->metrics, p, alias_budget(*n, n->metrics), o)) return o;
        o.what = event::birth;
        n->online = true;
        n->restored = false;
        n->bd_seq = bd;
        n->seq.reset();
        o.seq_gap = check_seq(*n, p);
        if (p.seq && *p.seq != 0 && !o.seq_gap) {
            // A birth starts the count at 0.
            o.seq_gap = true;
            ++n->seq_gaps;
        }
        n->birth_ms = now_ms;
        ++n->births;
        // Devices birth again after their node.
        for (auto& [name, d] : n->devices) {
            if (d.online) d.death_ms = now_ms;
            d.online = false;
        }
        resolve(n->metrics, p, o);
        return o;
    }
    case message_type::ndeath: {
        const auto bd = bd_seq_of(p);
        const bool alive = n->online || n->restored;
        if (!alive || (bd && n->bd_seq && *bd != *n->bd_seq)) {
            ++n->stale_deaths;
            o.what = event::stale_death;
            o.reason = !alive ? "the edge node is offline already"
                                  : "bdSeq " + std::to_string(*bd) + " is not the current birth's (" +
                                        std::to_string(*n->bd_seq) + ")";
            return o;
        }
        o.what = event::death;
        n->online = false;
        n->restored = false;
        n->death_ms = now_ms;
        ++n->deaths;
        for (auto& [name, d] : n->devices) {
            if (d.online) d.death_ms = now_ms;
            d.online = false;
        }
        return o;
    }
    default:
        break;
    }

    o.seq_gap = check_seq(*n, p);
    if (n->restored) {
        // Known from a certificate; this message shows it is alive.
        n->restored = false;
        n->online = true;
    }
    if (!n->births) {
        o.what = event::no_birth;
        o.reason = "no birth of the edge node was seen";
        return o;
    }
    if (t.type == message_type::ndata) {
        o.what = event::data;
        resolve(n->metrics, p, o);
        return o;
    }
    // Device messages.
    auto d = n->devices.find(t.device);
    if (d == n->devices.end()) {
        if (t.type != message_type::dbirth) {
            o.what = event::no_birth;
            o.reason = "no birth of the device was seen";
            return o;
        }
        if (!find_or_add_device(*n, t.device, o)) return o;
        d = n->devices.find(t.device);
    }
    device_state& dev = d->second;
    if (dev.restored && t.type != message_type::ddeath) {
        dev.restored = false;
        dev.online = true;
    }
    switch (t.type) {
    case message_type::dbirth:
        if (!fill_table(dev.metrics, p, alias_budget(*n, dev.metrics), o)) {
            if (!dev.births) n->devices.erase(d);
            return o;
        }
        o.what = event::birth;
        dev.online = true;
        dev.restored = false;
        dev.birth_ms = now_ms;
        ++dev.births;
        resolve(dev.metrics, p, o);
        return o;
    case message_type::ddeath:
        o.what = event::death;
        if (dev.online) dev.death_ms = now_ms;
        dev.online = false;
        return o;
    default:
        if (!dev.births) {
            o.what = event::no_birth;
            o.reason = "no birth of the device was seen";
            return o;
        }
        o.what = event::data;
        resolve(dev.metrics, p, o);
        return o;
    }
}

outcome tracker::apply_state(const topic& t, std::string_view state_json) {
    outcome o;
    o.what = event::state;
    const auto j = nlohmann::json::parse(state_json, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("online") || !j["online"].is_boolean()) {
        o.what = event::refused;
        o.reason = "a STATE payload is {\"online\": bool, \"timestamp\": ms}";
        return o;
    }
    auto it = hosts_.find(t.edge_node);
    if (it == hosts_.end()) {
        if (hosts_.size() >= limits_.max_hosts) {
            o.what = event::refused;
            o.reason = "more host applications than max_hosts";
            return o;
        }
        it = hosts_.emplace(std::string(t.edge_node), host_state{}).first;
    }
    const auto ts = j.find("timestamp");
    const std::uint64_t stamp = ts != j.end() && ts->is_number_unsigned() ? ts->get<std::uint64_t>() : 0;
    // A STATE older than the one in force is a stale will (3.0: the timestamp decides).
    if (stamp != 0 && stamp < it->second.timestamp) {
        o.what = event::stale_death;
        o.reason = "a STATE older than the host application's last";
        return o;
    }
    it->second.online = j["online"].get<bool>();
    it->second.timestamp = stamp;
    return o;
}

}  // namespace strata::bridges::sparkplug
