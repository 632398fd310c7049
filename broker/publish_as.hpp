// Messages the broker publishes itself. On behalf of an identity of its own: the
// commands a bridge brings down from its remote, the values an OPC UA source
// reads from a PLC. They get the checks a client's PUBLISH gets
// (handle_publish.cpp), in the same order: a valid topic outside '$', the
// access rules, the dead-letter tree, the identity's roles (command grants
// included), the store's health for QoS > 0, and the namespace model with
// its reject / warn / quarantine modes. What passes is routed, within the
// broker-wide retained limits (not an identity's share: these publishers are
// configured by the operator, not clients).
//
// Thread-safety: any thread (as broker_core::publish).
#pragma once

#include "auth/policy.hpp"
#include "broker/broker_core.hpp"
#include "broker/message.hpp"

#include <string>

namespace strata::broker {

struct publish_as_result {
    enum class outcome {
        published,    // routed (the model may have warned)
        quarantined,  // the model refused it in quarantine mode: its dead-letter copy was routed
        denied,       // not a topic this identity may publish to
        rejected,     // refused by the model (reject mode)
        store_down,   // QoS > 0 while the store refuses writes
        over_limit,   // a retained message over the retained store's limits
    };
    outcome what = outcome::published;
    mqtt::reason_code code = mqtt::reason_code::success;  // for an acknowledgement to the sender
    persistence::ticket ticket = 0;                        // as broker_core::publish_result
    std::string reason;  // why it was not published as is; for `published`, the model's warning if any
};

// `grants`: the identity's (null: no roles configured, everything allowed
// that the access rules allow).
publish_as_result publish_as(broker_core& core, const auth::grants* grants, const message_ptr& m);

// The broker's own state: `value` retained on the '$SYS/...' `topic`
// (no checks; '$SYS' values are not stored, they are made afresh).
void publish_sys_value(broker_core& core, std::string topic, std::string value);

}  // namespace strata::broker
