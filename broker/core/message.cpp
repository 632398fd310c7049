#include "broker/core/message.hpp"

#include "auth/policy.hpp"

#include <algorithm>

namespace strata::broker::core {

namespace {

bool is_origin(const mqtt::user_property& p) noexcept {
    return p.first == origin_identity_property || p.first == origin_broker_property;
}

}  // namespace

command_origin origin_of(const mqtt::properties& props) noexcept {
    command_origin o;
    for (const auto& [k, v] : props.user_properties) {
        if (k == origin_identity_property) o.identity = v;
        else if (k == origin_broker_property) o.broker = v;
    }
    return o;
}

void strip_origin(mqtt::properties& props) {
    auto& u = props.user_properties;
    if (std::any_of(u.begin(), u.end(), is_origin)) u.erase(std::remove_if(u.begin(), u.end(), is_origin), u.end());
}

void stamp_origin(mqtt::properties& props, std::string_view identity, std::string_view broker_id) {
    strip_origin(props);
    props.user_properties.emplace_back(origin_identity_property,
                                       identity.empty() ? std::string(auth::anonymous_identity) : std::string(identity));
    props.user_properties.emplace_back(origin_broker_property, broker_id);
}

}  // namespace strata::broker::core
