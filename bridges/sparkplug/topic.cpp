#include "bridges/sparkplug/topic.hpp"

#include <array>

namespace strata::bridges::sparkplug {
namespace {

constexpr std::array<std::string_view, 9> type_names{"NBIRTH", "NDEATH", "NDATA", "NCMD", "DBIRTH",
                                                     "DDEATH", "DDATA",  "DCMD",  "STATE"};

// The next level of `rest` (up to '/'), and `rest` advanced past it; none
// at the end.
std::optional<std::string_view> next_level(std::string_view& rest) noexcept {
    if (rest.data() == nullptr) return std::nullopt;
    const auto slash = rest.find('/');
    std::string_view level = rest.substr(0, slash);
    if (slash == std::string_view::npos) rest = {};
    else rest.remove_prefix(slash + 1);
    return level;
}

}  // namespace

std::string_view to_string(message_type t) noexcept { return type_names[static_cast<std::size_t>(t)]; }

bool is_device(message_type t) noexcept {
    return t == message_type::dbirth || t == message_type::ddeath || t == message_type::ddata ||
           t == message_type::dcmd;
}

std::optional<topic> parse_topic(std::string_view name) noexcept {
    std::string_view rest = name;
    const auto ns = next_level(rest);
    if (!ns || *ns != namespace_v1) return std::nullopt;
    const auto first = next_level(rest);
    if (!first || first->empty()) return std::nullopt;
    if (*first == "STATE") {
        const auto host = next_level(rest);
        if (!host || host->empty() || rest.data() != nullptr) return std::nullopt;
        return topic{message_type::state, {}, *host, {}};
    }
    const auto type = next_level(rest);
    const auto edge = next_level(rest);
    if (!type || !edge || edge->empty()) return std::nullopt;
    topic t;
    std::size_t i = 0;
    while (i < type_names.size() - 1 && type_names[i] != *type) ++i;
    if (i == type_names.size() - 1) return std::nullopt;
    t.type = static_cast<message_type>(i);
    t.group = *first;
    t.edge_node = *edge;
    if (is_device(t.type)) {
        const auto device = next_level(rest);
        if (!device || device->empty()) return std::nullopt;
        t.device = *device;
    }
    if (rest.data() != nullptr) return std::nullopt;  // levels left over
    return t;
}

std::string topic_name(message_type t, std::string_view group, std::string_view edge_node, std::string_view device) {
    std::string out;
    out.reserve(namespace_v1.size() + group.size() + edge_node.size() + device.size() + 12);
    out.append(namespace_v1).append("/").append(group).append("/").append(to_string(t)).append("/").append(edge_node);
    if (is_device(t)) out.append("/").append(device);
    return out;
}

std::string certificate_topic(std::string_view birth) {
    std::string out(certificates_prefix);
    out.append(birth);
    return out;
}

}  // namespace strata::bridges::sparkplug
