// The admission pipeline: the one path into the tree for every message that
// comes from outside the broker. A client's PUBLISH and its will, the
// messages a bridge brings down from its remote, the values an OPC UA source
// reads from a PLC: each is admitted by admit(), which runs one ordered list
// of checks and returns one verdict.
//
//   1. where  a topic name anyone but the broker may publish to
//             (broker_core::open_to_publishers: a valid name, not '$', allowed
//             by auth.access, not under the model's dead-letter prefix)
//   2. who    the publisher's grants, the command grant for commands
//             (auth.command_subtrees or a command class of the model); with
//             no roles configured, everyone may
//   3. store  a QoS 1/2 message only while the store takes writes
//   4. rate   the publishing identity's message and byte rates
//   5. model  the namespace model's verdict, while the message is routed
//             (one walk of the trie): reject refuses it, warn lets it pass,
//             quarantine routes its dead-letter copy instead
//   6. retained limits  broker-wide, and the identity's share
//             (checked as the retained value is stored)
//
// What passes is routed. Each caller says what the verdict means to its
// sender: a PUBACK reason code, a refused CONNECT, a count and a log line.
// Checks never depend on who the caller is beyond the `publisher`: a
// bridge's identity gets exactly what a client with that identity gets.
//
// Thread-safety: any thread (as broker_core::publish); a `grant_memo` belongs
// to one publisher's thread.
#pragma once

#include "auth/limits.hpp"
#include "auth/policy.hpp"
#include "broker/core/broker_core.hpp"
#include "broker/core/message.hpp"

#include <string>

namespace strata::broker::core {

// Grant decisions a publisher remembers (a client: the topics it publishes
// to again and again), valid for one model (a reload may change which topics
// are commands). Commands are never remembered: each is audited.
struct grant_memo {
    auth::decision_cache decisions;
    const void* model = nullptr;
};

// Who publishes.
struct publisher {
    const auth::grants* grants = nullptr;             // null: no roles configured
    const std::string* identity = nullptr;            // whose retained share; null: the broker's own
    auth::identity_state* limits = nullptr;           // whose publish rate; null: none
    grant_memo* memo = nullptr;                       // null: the grants are asked every time
    // The topic name was checked where the message was decoded (a client's
    // PUBLISH, whose invalid topic is a protocol error, not a refusal).
    bool topic_checked = false;
    // A client's message, not shared yet: when it is a command, admit()
    // stamps the identity and the broker id on it (command_origin) before
    // it is routed. Null: the message keeps the properties it came with
    // (a bridge's: stamped where the command was sent).
    message* stamp = nullptr;
    // A client's flow gate (flow_gate.hpp): a full subscriber queue holds
    // it. Null: the message is dropped where it does not fit.
    flow_gate* gate = nullptr;
};

struct admission {
    enum class outcome {
        published,     // routed (the model may have warned: `reason`)
        quarantined,   // the model refused it in quarantine mode: its dead-letter copy was routed
        denied,        // step 1 or 2: nobody, or not this publisher, may publish there
        store_down,    // step 3: QoS 1/2 while the store refuses writes
        rate_limited,  // step 4: over the identity's rate
        rejected,      // step 5: refused by the model (reject mode)
        over_limit,    // step 6: a retained value over the retained limits
    };
    outcome what = outcome::published;
    mqtt::reason_code code = mqtt::reason_code::success;  // for an acknowledgement to the sender (5.0)
    // Why it was not published as is; for `published`, the model's warning
    // if any; for `quarantined`, the model's reason.
    std::string reason;
    message_ptr copy;  // `quarantined`: the dead-letter copy that went instead
    bool command = false;  // the topic is a command (for the audit log), when asked
    // What routing did (for `quarantined`: the copy's routing): the store
    // ticket an acknowledgement waits for, the sessions matched, the full
    // bridge buffers that refused it.
    broker_core::publish_result routed;

    [[nodiscard]] bool passed() const noexcept {
        return what == outcome::published || what == outcome::quarantined;
    }
};

// Steps 1 to 6, then routing.
[[nodiscard]] admission admit(broker_core& core, const publisher& who, const message_ptr& m);

// A will at CONNECT: steps 1, 2 and 5, without routing (it is published, if
// ever, when the connection ends). For `quarantined`, `m` becomes the
// dead-letter copy, which is what the will then publishes.
//
// Wills are checked at CONNECT, with the model in force then, because that
// is when a misconfigured device can still be told: a will is published
// when the device has failed, which is too late to report anything to it
// and is exactly when the plant needs the message to be right. The caller
// (connection::check_will) answers:
//   denied      CONNACK 0x87 Not authorized (3.1.1: 0x05), audited;
//   rejected    5.0: CONNACK with the PUBLISH reason code (0x90 Topic Name
//               invalid, 0x99 Payload format invalid, 0x83 for the retain
//               rule), Reason String when problem information is wanted;
//               3.1.1 has no such CONNACK code: the connection is accepted,
//               the will dropped (logged at info, counted), as a refused
//               3.1.1 PUBLISH is dropped;
//   published   accepted (a warning logged and counted);
//   quarantined accepted; the stored will is its dead-letter copy, so when
//               it is published it lands under the dead-letter prefix.
[[nodiscard]] admission admit_will(broker_core& core, const publisher& who, message_ptr& m);

}  // namespace strata::broker::core
