// The outbound MQTT client of a bridge: one connection, opened by us, to a
// remote broker (TCP or TLS with a client certificate), kept up with
// keep-alive and exponential backoff, speaking MQTT 3.1.1 or 5.0.
//
// The link knows MQTT and sockets, nothing about the broker. Its owner (the
// bridge's outbox inside the broker) is called back and pulls:
//   - collect(): the link asks for messages to send, at most as many as the
//     remote's Receive Maximum (5.0) or max_inflight (3.1.1) still allows;
//   - on_ack(): the remote acknowledged one, or it could not be sent at all
//     (packet_too_large over the remote's Maximum Packet Size,
//     topic_name_invalid), so the owner can take it off its queue either way;
//   - on_message(): a PUBLISH from the remote; the link acknowledges it only
//     when the owner calls done(rc), once the message is stored locally.
// The owner assigns packet identifiers. The link keeps nothing across
// connections for outbound messages: after on_down(), every collected and
// unacknowledged QoS 1 message is the owner's to hand out again (same packet
// id, dup = true) after the next on_up(). Outbound QoS 2 is sent as QoS 1
// (the bridge guarantees at least once end to end). Inbound QoS 2 is handled
// fully: the packet id is remembered from the PUBLISH until the PUBREL, also
// across reconnections, so a redelivered PUBLISH is not handed over twice.
//
// Thread-safety: every owner callback runs on executor() (a strand over the
// executor given), one at a time. wake(), stats() and the done() callbacks
// may be called from any thread. start() and stop() may be called from any
// thread; once stop() has taken effect (at once when called on executor(),
// else when its post runs) no callback reaches the owner any more. The owner
// must outlive that point; the link object itself may be destroyed at any
// time before its io_context (its destructor calls stop(), its coroutines
// keep their own state).
//
// Boost.Asio is compiled separately in this project: the program linking
// strata_bridges_mqtt compiles it once (broker/net/asio.cpp for strata).
#pragma once

#include "broker/codec/packet.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata::bridges::mqtt {

namespace asio = boost::asio;
// The codec's namespace, strata::mqtt: this namespace's own name hides it.
namespace codec = strata::mqtt;

struct link_options {
    std::string name;                   // for log lines; default "" (then host:port)
    std::string host;                   // remote host name or address; required
    std::uint16_t port = 1883;
    // TLS with certificate verification. The files are read again at every
    // connection attempt, so renewed certificates are picked up.
    bool tls = false;
    std::string ca_file;                // PEM CA bundle; "" = the system's default paths
    std::string cert_file, key_file;    // client certificate and key (mTLS); "" = none
    std::string server_name;            // SNI and host name verification; "" = host
    codec::protocol_version version = codec::protocol_version::v5;
    std::string client_id;              // required (a bridge needs a stable session)
    std::optional<std::string> username, password;  // default: none
    bool bridge_flag = true;            // 3.1.1: protocol level 0x84 (Mosquitto's bridge
                                        // marker); dropped if the remote refuses it
    std::uint32_t session_expiry = 0xFFFFFFFF;  // 5.0 Session Expiry Interval, seconds
                                                // (3.1.1: clean session 0 always)
    std::uint16_t keep_alive = 60;      // seconds; 0 = no keep-alive (the remote's
                                        // Server Keep Alive wins in 5.0)
    // Subscribed after every CONNACK (idempotent; a changed configuration
    // takes effect on a persistent session too). 5.0: No Local and Retain As
    // Published are set on each, so nothing forwarded comes back.
    std::vector<codec::subscription_request> subscriptions;
    std::chrono::milliseconds reconnect_min{500};   // backoff floor
    std::chrono::milliseconds reconnect_max{30000}; // backoff ceiling
    // A connection that stayed up this long resets the backoff to reconnect_min.
    std::chrono::milliseconds stable_after{10000};
    // Longest wait for each step: resolve, TCP connect, TLS handshake,
    // CONNACK, SUBACK, PINGRESP, and the DISCONNECT on stop().
    std::chrono::milliseconds response_timeout{10000};
    std::uint16_t receive_maximum = 64;       // inbound QoS 1/2 unacknowledged (5.0, advertised)
    std::uint32_t max_packet_size = 1'048'576;  // inbound packet bound (advertised in 5.0)
    // Outbound QoS 1 in flight: the window for 3.1.1, and a cap on the
    // remote's Receive Maximum for 5.0.
    std::uint16_t max_inflight = 64;
    // 5.0: user properties sent in every CONNECT (a Strata bridge introduces
    // itself with one; see the broker's bridge_host.hpp).
    std::vector<codec::user_property> connect_user_properties;
};

// Fills host, port and tls from "mqtt://host[:port]" (port 1883) or
// "mqtts://host[:port]" (8883); "[v6addr]:port" is accepted. Throws
// std::invalid_argument with a message naming what is wrong.
void parse_remote(std::string_view url, link_options& out);

// A message to forward. packet_id: non-zero for QoS 1/2 (assigned by the
// owner, unique among its unacknowledged messages); ignored for QoS 0.
struct outbound {
    std::uint16_t packet_id = 0;
    bool dup = false;
    std::string topic;
    std::string payload;
    std::uint8_t qos = 0;
    bool retain = false;
    codec::properties props;   // 5.0 PUBLISH properties (a topic alias is dropped)
};

class link_owner {
public:
    virtual ~link_owner() = default;
    // CONNACK accepted and every SUBACK received. session_present: the
    // remote kept our session (5.0 Session Expiry / 3.1.1 clean session 0).
    virtual void on_up(bool session_present) = 0;
    // The connection failed or was lost (also a refused CONNACK); `why` is
    // the log line's reason. The link retries after a backoff.
    virtual void on_down(const std::string& why) = 0;
    // Append at most `window` messages to `out` (which is empty). Appending
    // fewer than `window` means "nothing more for now": the link asks again
    // after wake() or when the window opens. QoS 0 messages are the owner's
    // to forget once collected; they take no room in the window.
    virtual void collect(std::vector<outbound>& out, std::size_t window) = 0;
    // The remote's PUBACK for a QoS 1 message (rc: its reason code, success
    // for 3.1.1), or a message that can never be sent on this link:
    // packet_too_large (over the remote's Maximum Packet Size),
    // topic_name_invalid (empty, a wildcard, NUL, not UTF-8, over 65,535
    // bytes). Success too for a QoS 1 message sent at QoS 0 because the
    // remote's Maximum QoS is 0. A QoS 1 message whose packet id is already
    // in flight is not sent and not reported (an owner bug, logged).
    virtual void on_ack(std::uint16_t packet_id, codec::reason_code rc) = 0;
    // An inbound PUBLISH. The link sends its PUBACK (QoS 1) or PUBREC (QoS
    // 2, then PUBCOMP on the PUBREL) only when `done(rc)` is called, from
    // any thread, once; rc >= 0x80 refuses it (5.0; 3.1.1 acknowledges
    // anyway). QoS 0: done may be called or dropped.
    virtual void on_message(codec::publish&& p, std::function<void(codec::reason_code)> done) = 0;
};

enum class link_state : std::uint8_t {
    idle,        // not started
    connecting,  // resolve, TCP, TLS, CONNECT, CONNACK, SUBACK
    up,          // on_up was called: messages flow
    waiting,     // the backoff between attempts
    stopped,     // after stop()
};
[[nodiscard]] const char* to_string(link_state s) noexcept;

// Counters since construction, for $SYS topics and metrics.
struct link_stats {
    link_state state = link_state::idle;
    bool connected = false;                  // up: CONNACK and SUBACKs received
    std::uint64_t connects = 0;              // connections that came up
    std::uint64_t failures = 0;              // attempts that failed + connections lost
    std::uint64_t bytes_in = 0, bytes_out = 0;
    std::uint64_t messages_out = 0;          // PUBLISHes written
    std::uint64_t messages_in = 0;           // PUBLISHes received
    std::uint64_t acks = 0;                  // PUBACKs received
    // The wait before the next attempt, chosen after the last failure.
    std::chrono::milliseconds retry_delay{0};
    // Time of the last PUBACK from the remote; none yet: time_since_epoch() == 0.
    std::chrono::system_clock::time_point last_ack{};
};

class link {
public:
    using executor_type = asio::strand<asio::any_io_executor>;

    // Nothing happens before start(). Throws std::invalid_argument for
    // options that cannot work (no host, no client id, min > max backoff).
    link(asio::any_io_executor ex, link_options opts, link_owner& owner);
    ~link();
    link(const link&) = delete;
    link& operator=(const link&) = delete;

    // Connects, and reconnects until stop(). Call once.
    void start();
    // Sends DISCONNECT (waiting at most response_timeout) and closes; no
    // reconnection, no more owner callbacks (see the header comment).
    void stop();
    // New outbound messages may be collected. Cheap when called often: at
    // most one post is pending at a time.
    void wake();

    [[nodiscard]] link_stats stats() const;
    // The user properties of the last accepted CONNACK (5.0; empty for
    // 3.1.1). Call on executor(), e.g. from on_up().
    [[nodiscard]] const std::vector<codec::user_property>& connack_user_properties() const;
    [[nodiscard]] executor_type executor() const;

    class impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace strata::bridges::mqtt
