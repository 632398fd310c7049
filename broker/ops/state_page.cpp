#include "broker/ops/state_page.hpp"

#include "auth/crypto.hpp"
#include "broker/codec/codec.hpp"
#include "broker/core/message.hpp"
#include "broker/ops/http_admin.hpp"
#include "namespace/topic.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>

namespace strata::broker::ops {

using nlohmann::json;

namespace {

// A format tag in front of the topic, so that another cursor format can be
// told apart later.
constexpr char cursor_tag = 't';

}  // namespace

std::string encode_cursor(std::string_view topic) {
    std::string raw;
    raw.reserve(topic.size() + 1);
    raw += cursor_tag;
    raw += topic;
    // base64url without padding: safe in a query string as it is.
    std::string out = auth::base64_encode(raw);
    while (!out.empty() && out.back() == '=') out.pop_back();
    std::replace(out.begin(), out.end(), '+', '-');
    std::replace(out.begin(), out.end(), '/', '_');
    return out;
}

std::optional<std::string> decode_cursor(std::string_view cursor) {
    if (cursor.empty() || cursor.size() % 4 == 1) return std::nullopt;
    std::string text(cursor);
    for (char& c : text) {
        if (c == '+' || c == '/' || c == '=') return std::nullopt;  // not base64url as encode_cursor writes it
        if (c == '-') c = '+';
        if (c == '_') c = '/';
    }
    text.append((4 - text.size() % 4) % 4, '=');
    auto raw = auth::base64_decode(text);
    if (!raw || raw->size() < 2 || raw->front() != cursor_tag) return std::nullopt;
    raw->erase(0, 1);
    if (!ns::valid_topic_name(*raw) || !mqtt::valid_utf8(*raw)) return std::nullopt;
    // Canonical form only (base64 lets the unused low bits of the last
    // character vary).
    if (encode_cursor(*raw) != cursor) return std::nullopt;
    return raw;
}

std::optional<std::size_t> parse_limit(std::string_view text) {
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || n == 0 || n > max_limit) return std::nullopt;
    return n;
}

json state_json(const core::message& m) {
    const bool text = mqtt::valid_utf8(m.payload);
    json out = {{"topic", m.topic},
                {"payload", text ? m.payload : auth::base64_encode(m.payload)},
                {"payload_encoding", text ? "utf-8" : "base64"},
                {"qos", m.qos},
                {"retain", m.retain},
                {"received", m.received_ms <= 0 ? json(nullptr) : json(iso_time(m.received_ms))},
                {"received_ms", m.received_ms <= 0 ? json(nullptr) : json(m.received_ms)}};
    const auto& p = *m.props;
    json props = json::object();
    if (p.payload_format_indicator) props["payload_format_indicator"] = *p.payload_format_indicator;
    if (p.content_type) props["content_type"] = *p.content_type;
    if (p.response_topic) props["response_topic"] = *p.response_topic;
    if (p.correlation_data) props["correlation_data"] = auth::base64_encode(*p.correlation_data);
    if (!p.user_properties.empty()) {
        json users = json::array();
        for (const auto& [k, v] : p.user_properties) users.push_back({k, v});
        props["user_properties"] = std::move(users);
    }
    if (!props.empty()) out["properties"] = std::move(props);
    return out;
}

}  // namespace strata::broker::ops
