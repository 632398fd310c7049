// libFuzzer target: Sparkplug B payloads and topics as an edge node (or an
// attacker with publish rights on spBv1.0/#) can send them, through what the
// broker's Sparkplug host does with each: decode, follow the node's state,
// map metric names to topics. Oracles: no sanitizer report, no exception,
// every table within its limits, every topic a mapping makes a valid level
// sequence.
//
// Input: byte 0 picks the message type and the node and device ids (so that
// births, data and deaths of a few nodes meet in one tracker), the rest is
// the payload. The tracker lives across inputs, as the host's does, and is
// reset now and then.
#include "bridges/sparkplug/mapping.hpp"
#include "bridges/sparkplug/payload.hpp"
#include "bridges/sparkplug/topic.hpp"
#include "bridges/sparkplug/tracker.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace sp = strata::bridges::sparkplug;

namespace {

constexpr sp::tracker_limits limits{.max_nodes = 4, .max_devices_per_node = 3, .max_metrics_per_birth = 64,
                                    .max_aliases_per_node = 96, .max_hosts = 2};

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static sp::tracker tracker(limits);
    static unsigned inputs = 0;
    if (++inputs % 4096 == 0) tracker = sp::tracker(limits);
    if (size == 0) return 0;
    static constexpr sp::message_type types[] = {sp::message_type::nbirth, sp::message_type::ndata,
                                                 sp::message_type::ndeath, sp::message_type::dbirth,
                                                 sp::message_type::ddata,  sp::message_type::ddeath,
                                                 sp::message_type::ncmd,   sp::message_type::state};
    const std::uint8_t pick = data[0];
    const sp::message_type type = types[pick & 7];
    static const std::string nodes[] = {"edge-1", "edge-2", "edge-3", "edge-4", "edge-5"};
    static const std::string devices[] = {"d-1", "d-2", "d-3", "d-4"};
    sp::topic t{type, "g", nodes[(pick >> 3) % 5], sp::is_device(type) ? std::string_view(devices[pick >> 6]) : ""};
    const std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);

    if (type == sp::message_type::state) {
        (void)tracker.apply_state(t, payload);
        check(tracker.hosts().size() <= limits.max_hosts);
        return 0;
    }
    const auto d = sp::decode(payload, {.max_bytes = 1 << 16, .max_metrics = 256});
    if (d.error != sp::decode_error::none) return 0;
    // What the wire form of a decoded payload decodes to again is the same payload.
    const auto again = sp::decode(sp::encode(d.p));
    check(again.error == sp::decode_error::none && again.p.metrics.size() == d.p.metrics.size());

    const sp::outcome o = tracker.apply(t, d.p, 1'700'000'000'000);
    check(tracker.nodes().size() <= limits.max_nodes);
    for (const auto& [key, n] : tracker.nodes()) {
        check(n.devices.size() <= limits.max_devices_per_node);
        std::size_t aliases = n.metrics.by_alias.size();
        for (const auto& [name, dev] : n.devices) aliases += dev.metrics.by_alias.size();
        check(aliases <= limits.max_aliases_per_node);
    }
    static const sp::metric_rule any = [] {
        sp::metric_rule r;
        r.data_class = "telemetry";
        return r;
    }();
    for (const auto& r : o.metrics) {
        (void)sp::typed(*r.m, r.def->type);
        if (const auto topic = sp::metric_topic("acme/x", any, r.def->name)) {
            check(topic->find_first_of(std::string_view("+#\0", 3)) == std::string::npos);
            check(topic->find("//") == std::string::npos && topic->back() != '/');
        }
    }
    return 0;
}
