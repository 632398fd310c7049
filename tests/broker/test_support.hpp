// Helpers shared by the broker unit tests: messages and a session owner
// that only counts its wake-ups.
#pragma once

#include "broker/core/message.hpp"
#include "broker/core/session_owner.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace strata::broker::test {

using core::message;
using core::message_ptr;
using core::session_owner;

struct owner final : session_owner {
    int notified = 0;
    int kicked = 0;
    mqtt::reason_code kicked_with = mqtt::reason_code::success;
    void notify() override { ++notified; }
    void kick(mqtt::reason_code code, std::uint64_t) override {
        ++kicked;
        kicked_with = code;
    }
    void regrant(std::shared_ptr<const auth::grants>) override {}
};

inline message_ptr make_message(const std::string& topic, const std::string& payload, bool retain = false,
                                std::uint8_t qos = 1) {
    auto m = std::make_shared<message>();
    m->topic = topic;
    m->payload = payload;
    m->qos = qos;
    m->retain = retain;
    return m;
}

inline message_ptr retained(const std::string& topic, const std::string& payload) {
    return make_message(topic, payload, true);
}

}  // namespace strata::broker::test
