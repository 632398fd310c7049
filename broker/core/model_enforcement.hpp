// What the broker does with a message the namespace model refuses, where
// the admission pipeline (admission.cpp) and the retained messages
// re-checked after a reload (model_enforcement.cpp) share it.
//
// Thread-safety: plain functions of their arguments; any thread.
#pragma once

#include "broker/core/message.hpp"
#include "namespace/model.hpp"

#include <cstdint>
#include <memory>
#include <string_view>

namespace strata::broker::core {

// `topic` is `prefix` or below it (an empty prefix contains nothing).
[[nodiscard]] bool under_prefix(std::string_view topic, std::string_view prefix) noexcept;

// The dead-letter copy of a message refused in quarantine mode: topic
// "<dead-letter prefix>/<topic>", the JSON envelope of
// ns::model::quarantine_envelope as payload (Payload Format Indicator 1,
// Content Type application/json), the reason also as the user property
// "strata-quarantine-reason", the same QoS, never retained (the dead-letter
// tree is a log, not state). `origin` as for message::origin.
[[nodiscard]] std::shared_ptr<message> quarantine_copy(const ns::model& model, std::string_view topic,
                                                       std::string_view payload, std::uint8_t qos, bool retain,
                                                       const ns::verdict& v, const void* origin);

}  // namespace strata::broker::core
