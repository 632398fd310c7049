// Conversions between the broker's in-memory records and the store's
// (persistence/store.hpp): messages, subscription options, deadlines.
//
// The broker keeps deadlines on the steady clock; the store keeps absolute
// wall-clock milliseconds, which survive a restart.
//
// Thread-safety: free functions without shared state.
#pragma once

#include "broker/core/message.hpp"
#include "broker/core/session.hpp"
#include "persistence/store.hpp"

#include <chrono>
#include <cstdint>

namespace strata::broker::core {

using system_clock = std::chrono::system_clock;

// Wall-clock milliseconds since the Unix epoch.
[[nodiscard]] std::int64_t now_ms() noexcept;
// A steady-clock deadline as wall-clock milliseconds, and back.
[[nodiscard]] std::int64_t to_epoch_ms(steady_clock::time_point t) noexcept;
[[nodiscard]] steady_clock::time_point from_epoch_ms(std::int64_t ms) noexcept;

[[nodiscard]] persistence::stored_message to_stored(const message& m);
// Throws persistence::store_error when the stored properties do not decode.
[[nodiscard]] message_ptr from_stored(persistence::stored_message&& s);

// A subscription as stored: the MQTT 5 subscription options byte, plus bit
// 7 (reserved in MQTT) for a subscription narrowed to its owner's grants.
[[nodiscard]] std::uint8_t stored_options(const subscription_entry& e) noexcept;
[[nodiscard]] subscription_entry entry_from_stored(std::uint8_t options, std::uint32_t identifier) noexcept;

// The MQTT 5 subscription options byte.
[[nodiscard]] std::uint8_t options_byte(const mqtt::subscribe_options& o) noexcept;
[[nodiscard]] mqtt::subscribe_options options_from_byte(std::uint8_t b) noexcept;

}  // namespace strata::broker::core
