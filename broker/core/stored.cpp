#include "broker/core/stored.hpp"

#include "broker/codec/codec.hpp"

namespace strata::broker::core {

std::int64_t now_ms() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::int64_t to_epoch_ms(steady_clock::time_point t) noexcept {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t - steady_clock::now());
    return now_ms() + left.count();
}

steady_clock::time_point from_epoch_ms(std::int64_t ms) noexcept {
    return steady_clock::now() + std::chrono::milliseconds(ms - now_ms());
}

void message::read(persistence::stored_message& out) const {
    out.topic.assign(topic);
    out.payload.assign(payload);
    out.qos = qos;
    out.retain = retain;
    out.properties.clear();
    mqtt::encode_message_properties(*props, out.properties);
    out.expires_at_ms = expires_at ? std::max<std::int64_t>(1, to_epoch_ms(*expires_at)) : 0;
}

persistence::stored_message to_stored(const message& m) {
    persistence::stored_message s;
    m.read(s);
    return s;
}

message_ptr from_stored(persistence::stored_message&& s) {
    auto m = std::make_shared<message>();
    mqtt::properties props;
    if (!mqtt::decode_message_properties(s.properties, props)) {
        throw persistence::store_error("stored message on '" + s.topic + "': its properties do not decode");
    }
    m->props = std::move(props);
    m->topic = std::move(s.topic);
    m->payload = std::move(s.payload);
    m->qos = s.qos;
    m->retain = s.retain;
    if (s.expires_at_ms != 0) m->expires_at = from_epoch_ms(s.expires_at_ms);
    // The store does not keep the receive time: a recovered message counts
    // as received when it was read back.
    m->received_ms = now_ms();
    return m;
}

std::uint8_t options_byte(const mqtt::subscribe_options& o) noexcept {
    return static_cast<std::uint8_t>((o.qos & 3) | (o.no_local ? 0x04 : 0) | (o.retain_as_published ? 0x08 : 0) |
                                     ((o.retain_handling & 3) << 4));
}

mqtt::subscribe_options options_from_byte(std::uint8_t b) noexcept {
    mqtt::subscribe_options o;
    o.qos = b & 3;
    o.no_local = (b & 0x04) != 0;
    o.retain_as_published = (b & 0x08) != 0;
    o.retain_handling = (b >> 4) & 3;
    return o;
}

namespace {
constexpr std::uint8_t stored_filtered = 0x80;
}

std::uint8_t stored_options(const subscription_entry& e) noexcept {
    return static_cast<std::uint8_t>(options_byte(e.options) | (e.filtered ? stored_filtered : 0));
}

subscription_entry entry_from_stored(std::uint8_t options, std::uint32_t identifier) noexcept {
    subscription_entry e;
    e.options = options_from_byte(options);
    e.identifier = identifier;
    e.filtered = (options & stored_filtered) != 0;
    return e;
}

}  // namespace strata::broker::core
