// The MQTT server protocol of one client (broker/net/client_protocol.hpp)
// without a socket: a fake I/O records what the protocol asks of it (write,
// close, linger, the deadline), bytes go in encoded by the codec, what the
// protocol drains is decoded back, and the time is whatever the test says.
// The core is a real broker_core without a store.
#include <catch2/catch.hpp>

#include "broker/codec/codec.hpp"
#include "broker/core/broker_core.hpp"
#include "broker/net/client_protocol.hpp"
#include "broker/net/transport.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace strata::broker;
using namespace std::chrono_literals;
namespace mqtt = strata::mqtt;
using mqtt::reason_code;
using net::time_point;

namespace {

config plain() {
    config c;
    c.persistence.enabled = false;
    return c;
}

// The I/O under one protocol: records, never touches a socket.
class fake_io final : public net::protocol_io, public std::enable_shared_from_this<fake_io> {
public:
    fake_io(core::broker_core& core, boost::asio::io_context& ctx, std::string remote = "127.0.0.1:50000")
        : ctx_(ctx), protocol(core, *this, std::move(remote)) {
        protocol.set_loopback(true);
    }

    // protocol_io
    void wake() override { ++wakes; }
    void close_after_flush(bool linger) override {
        closing = true;
        lingering = lingering || linger;
    }
    void close_now() override {
        closed = true;
        protocol.release();
    }
    void resume_input() override { ++resumed; }
    void set_deadline(time_point d) override { deadline = d; }
    [[nodiscard]] std::shared_ptr<core::session_owner> shared_owner() override { return shared_from_this(); }
    [[nodiscard]] boost::asio::io_context::executor_type executor() const override { return ctx_.get_executor(); }
    // session_owner
    void notify() override { ++notified; }
    void kick(reason_code code, std::uint64_t generation) override { kicked.emplace_back(code, generation); }
    void regrant(std::shared_ptr<const strata::auth::grants>) override {}

    boost::asio::io_context& ctx_;
    net::client_protocol protocol;
    int wakes = 0, resumed = 0, notified = 0;
    bool closing = false, lingering = false, closed = false;
    std::optional<time_point> deadline;
    std::vector<std::pair<reason_code, std::uint64_t>> kicked;
};

// A broker core without a store, and the thread its clients live on.
struct test_broker {
    explicit test_broker(config cfg = plain()) : core(std::move(cfg)) {}
    core::broker_core core;
    boost::asio::io_context ctx;
};

// One client: its fake I/O and protocol, and a clock the test moves.
struct client {
    explicit client(test_broker& b, mqtt::protocol_version v = mqtt::protocol_version::v5)
        : io(std::make_shared<fake_io>(b.core, b.ctx)), version(v) {
        io->protocol.start(now);
    }

    void send(const mqtt::packet& p) {
        std::vector<std::uint8_t> bytes;
        mqtt::encode(p, version, bytes);
        io->protocol.on_input(bytes, now);
    }
    void send_bytes(const std::vector<std::uint8_t>& bytes) { io->protocol.on_input(bytes, now); }

    // Everything the protocol has for the client, decoded.
    std::vector<mqtt::packet> received() {
        std::vector<std::uint8_t> out;
        io->protocol.drain(out, now);
        std::vector<mqtt::packet> packets;
        mqtt::decode_limits limits;
        std::size_t off = 0;
        while (off < out.size()) {
            mqtt::packet p;
            const auto r = mqtt::decode({out.data() + off, out.size() - off}, version, limits, p);
            REQUIRE(r.status == mqtt::decode_status::ok);
            off += r.consumed;
            packets.push_back(std::move(p));
        }
        return packets;
    }
    template <typename T>
    T only() {
        auto packets = received();
        REQUIRE(packets.size() == 1);
        REQUIRE(std::holds_alternative<T>(packets.front()));
        return std::get<T>(packets.front());
    }

    mqtt::connack connect(mqtt::connect c) {
        c.version = version;
        send(c);
        return only<mqtt::connack>();
    }
    mqtt::connack connect(const std::string& id, std::uint16_t keep_alive = 30) {
        mqtt::connect c;
        c.client_id = id;
        c.keep_alive = keep_alive;
        return connect(c);
    }

    std::shared_ptr<fake_io> io;
    mqtt::protocol_version version;
    time_point now = time_point{} + 1000s;
};

mqtt::publish publish(const std::string& topic, const std::string& payload, std::uint8_t qos = 0,
                      std::uint16_t id = 0) {
    mqtt::publish p;
    p.topic = topic;
    p.payload = payload;
    p.qos = qos;
    p.packet_id = id;
    return p;
}

mqtt::subscribe subscribe(const std::string& filter, std::uint8_t qos = 0, std::uint16_t id = 1) {
    mqtt::subscribe s;
    s.packet_id = id;
    s.subscriptions.push_back({filter, {.qos = qos}});
    return s;
}

}  // namespace

TEST_CASE("protocol: CONNECT is answered, the connect timeout and keep-alive follow the injected time",
          "[protocol]") {
    test_broker b;
    client c(b);
    // Until CONNECT: the connect timeout.
    REQUIRE(c.io->deadline);
    CHECK(*c.io->deadline == c.now + net::connect_timeout);

    const auto ack = c.connect("press-7", 10);
    CHECK(ack.code == reason_code::success);
    CHECK_FALSE(ack.session_present);
    CHECK(c.io->protocol.connected());
    // Keep-alive 10 s: closed after 15 s without a packet.
    REQUIRE(c.io->deadline);
    CHECK(*c.io->deadline == c.now + 15s);

    // A packet at +10 s moves the deadline; the timer firing early re-arms it.
    c.now += 10s;
    c.send(mqtt::pingreq{});
    CHECK(std::holds_alternative<mqtt::pingresp>(c.received().at(0)));
    c.io->protocol.on_timer(c.now + 5s);
    CHECK(*c.io->deadline == c.now + 15s);
    CHECK_FALSE(c.io->closing);

    // Silence past 1.5 x keep-alive: DISCONNECT 0x8D, then close with lingering.
    c.io->protocol.on_timer(c.now + 15s);
    CHECK(c.only<mqtt::disconnect>().code == reason_code::keep_alive_timeout);
    CHECK(c.io->closing);
    CHECK(c.io->lingering);
}

TEST_CASE("protocol: no CONNECT within the connect timeout closes", "[protocol]") {
    test_broker b;
    client c(b);
    c.io->protocol.on_timer(c.now + net::connect_timeout);
    CHECK(c.io->closed);
    CHECK(c.received().empty());
}

TEST_CASE("protocol: a first packet other than CONNECT closes without an answer", "[protocol]") {
    test_broker b;
    client c(b);
    c.send(publish("a/b", "x"));
    CHECK(c.io->closed);
    CHECK(c.received().empty());
}

TEST_CASE("protocol: keep-alive above limits.max_keepalive is capped and said in CONNACK (5.0)", "[protocol]") {
    config cfg = plain();
    cfg.limits.max_keepalive = 60;
    test_broker b(cfg);
    client c(b);
    const auto ack = c.connect("slow", 0);  // 0: no keep-alive asked
    REQUIRE(ack.props.server_keep_alive);
    CHECK(*ack.props.server_keep_alive == 60);
    CHECK(*c.io->deadline == c.now + 90s);

    client old(b, mqtt::protocol_version::v311);
    const auto ack311 = old.connect("old", 600);
    CHECK(ack311.code == reason_code::success);
    CHECK(*old.io->deadline == old.now + 90s);  // silently capped: 3.1.1 cannot be told
}

TEST_CASE("protocol: a packet split over many inputs is handled once whole", "[protocol]") {
    test_broker b;
    client c(b);
    mqtt::connect conn;
    conn.client_id = "trickle";
    conn.keep_alive = 30;
    std::vector<std::uint8_t> bytes;
    mqtt::encode(conn, mqtt::protocol_version::v5, bytes);
    for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
        c.send_bytes({bytes[i]});
        CHECK_FALSE(c.io->protocol.connected());
    }
    c.send_bytes({bytes.back()});
    CHECK(c.io->protocol.connected());
    CHECK(c.only<mqtt::connack>().code == reason_code::success);
}

TEST_CASE("protocol: an unsupported protocol version is refused in the 3.1.1 format", "[protocol]") {
    test_broker b;
    client c(b);
    // CONNECT, protocol name "MQTT", level 3 (MQTT 3.1 with this name is no version).
    const std::vector<std::uint8_t> v3 = {0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x03, 0x02, 0x00, 0x1e,
                                          0x00, 0x01, 'x'};
    c.send_bytes(v3);
    c.version = mqtt::protocol_version::v311;
    const auto ack = c.only<mqtt::connack>();
    CHECK(ack.code == reason_code::unsupported_protocol_version);
    CHECK(c.io->closing);
    CHECK(c.io->lingering);
}

TEST_CASE("protocol: a second CONNECT is a protocol error", "[protocol]") {
    test_broker b;
    client c(b);
    c.connect("twice");
    mqtt::connect again;
    again.client_id = "twice";
    c.send(again);
    CHECK(c.only<mqtt::disconnect>().code == reason_code::protocol_error);
    CHECK(c.io->closing);
}

TEST_CASE("protocol: an empty client identifier is assigned one (5.0) or refused without clean session (3.1.1)",
          "[protocol]") {
    test_broker b;
    client c(b);
    const auto ack = c.connect("");
    REQUIRE(ack.props.assigned_client_identifier);
    CHECK_FALSE(ack.props.assigned_client_identifier->empty());
    CHECK(c.io->protocol.client_id() == *ack.props.assigned_client_identifier);

    client old(b, mqtt::protocol_version::v311);
    mqtt::connect persistent;
    persistent.clean_start = false;
    CHECK(old.connect(persistent).code == reason_code::client_identifier_not_valid);
}

TEST_CASE("protocol: client identifiers of bridges are refused", "[protocol]") {
    test_broker b;
    client c(b);
    CHECK(c.connect("$bridge/enterprise").code == reason_code::client_identifier_not_valid);
    CHECK(c.io->closing);
}

TEST_CASE("protocol: an enhanced authentication method other than SCRAM is refused", "[protocol]") {
    test_broker b;
    client c(b);
    mqtt::connect conn;
    conn.client_id = "kerberos";
    conn.props.authentication_method = "GSSAPI";
    CHECK(c.connect(conn).code == reason_code::bad_authentication_method);
}

TEST_CASE("protocol: a will on a '$' topic is refused before its payload is looked at", "[protocol]") {
    test_broker b;
    client c(b);
    mqtt::connect conn;
    conn.client_id = "sneaky";
    conn.will = mqtt::will_message{"$SYS/broker/uptime", "forever", 0, false, {}};
    CHECK(c.connect(conn).code == reason_code::not_authorized);
    CHECK_FALSE(c.io->protocol.connected());
}

TEST_CASE("protocol: PUBLISH QoS 1 is acknowledged and delivered to a subscriber's protocol", "[protocol]") {
    test_broker b;
    client sub(b);
    sub.connect("hmi");
    sub.send(subscribe("acme/+/temperature", 1));
    const auto granted = sub.only<mqtt::suback>();
    REQUIRE(granted.codes.size() == 1);
    CHECK(granted.codes[0] == reason_code::granted_qos_1);

    client pub(b);
    pub.connect("plc");
    pub.send(publish("acme/press-7/temperature", "21.5", 1, 7));
    const auto ack = pub.only<mqtt::puback>();
    CHECK(ack.packet_id == 7);
    CHECK(ack.code == reason_code::success);

    CHECK(sub.io->notified > 0);
    const auto msg = sub.only<mqtt::publish>();
    CHECK(msg.topic == "acme/press-7/temperature");
    CHECK(msg.payload == "21.5");
    CHECK(msg.qos == 1);
    // Until its PUBACK, the message stays in flight: nothing new to drain.
    CHECK(sub.received().empty());
    sub.send(mqtt::puback{msg.packet_id, reason_code::success, {}});
}

TEST_CASE("protocol: QoS 2 in: PUBREC, a resend is not routed twice, PUBCOMP on PUBREL", "[protocol]") {
    test_broker b;
    client sub(b);
    sub.connect("hmi");
    sub.send(subscribe("line/#", 0));
    sub.received();
    client pub(b);
    pub.connect("plc");
    pub.send(publish("line/count", "1", 2, 9));
    CHECK(pub.only<mqtt::pubrec>().packet_id == 9);
    auto dup = publish("line/count", "1", 2, 9);
    dup.dup = true;
    pub.send(dup);
    CHECK(pub.only<mqtt::pubrec>().packet_id == 9);
    pub.send(mqtt::pubrel{9, reason_code::success, {}});
    CHECK(pub.only<mqtt::pubcomp>().code == reason_code::success);
    CHECK(sub.received().size() == 1);  // once
}

TEST_CASE("protocol: topic aliases in: one beyond the maximum is a protocol error", "[protocol]") {
    config cfg = plain();
    cfg.limits.topic_alias_maximum = 4;
    test_broker b(cfg);
    client c(b);
    const auto ack = c.connect("aliased");
    CHECK(*ack.props.topic_alias_maximum == 4);
    auto p = publish("a/b", "1");
    p.props.topic_alias = 4;
    c.send(p);
    CHECK(c.received().empty());
    auto by_alias = publish("", "2");
    by_alias.props.topic_alias = 4;
    c.send(by_alias);
    CHECK(c.received().empty());
    auto beyond = publish("a/c", "3");
    beyond.props.topic_alias = 5;
    c.send(beyond);
    CHECK(c.only<mqtt::disconnect>().code == reason_code::topic_alias_invalid);
}

TEST_CASE("protocol: a delivery above the client's Maximum Packet Size is dropped for that client only",
          "[protocol]") {
    test_broker b;
    client small(b);
    mqtt::connect conn;
    conn.client_id = "small";
    conn.props.maximum_packet_size = 64;
    small.connect(conn);
    small.send(subscribe("big/#"));
    small.received();
    client pub(b);
    pub.connect("pub");
    pub.send(publish("big/one", std::string(100, 'x')));
    pub.send(publish("big/two", "fits"));
    const auto got = small.received();
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::publish>(got[0]).topic == "big/two");
    CHECK_FALSE(small.io->closing);
}

TEST_CASE("protocol: SUBSCRIBE with a bad filter gets 0x8F for that filter only", "[protocol]") {
    test_broker b;
    client c(b);
    c.connect("sub");
    mqtt::subscribe s;
    s.packet_id = 3;
    s.subscriptions.push_back({"a/#/b", {}});
    s.subscriptions.push_back({"a/+/b", {.qos = 1}});
    c.send(s);
    const auto ack = c.only<mqtt::suback>();
    REQUIRE(ack.codes.size() == 2);
    CHECK(ack.codes[0] == reason_code::topic_filter_invalid);
    CHECK(ack.codes[1] == reason_code::granted_qos_1);
}

TEST_CASE("protocol: the will goes out when the connection is lost, not after a normal DISCONNECT",
          "[protocol]") {
    test_broker b;
    client watcher(b);
    watcher.connect("watcher");
    watcher.send(subscribe("status/#"));
    watcher.received();

    auto with_will = [&b](const std::string& id) {
        auto c = std::make_unique<client>(b);
        mqtt::connect conn;
        conn.client_id = id;
        conn.will = mqtt::will_message{"status/" + id, "offline", 0, false, {}};
        CHECK(c->connect(conn).code == reason_code::success);
        return c;
    };
    auto lost = with_will("lost");
    lost->io->protocol.end_of_input();
    lost->io->protocol.release();
    b.ctx.poll();
    auto got = watcher.received();
    REQUIRE(got.size() == 1);
    CHECK(std::get<mqtt::publish>(got[0]).topic == "status/lost");

    auto polite = with_will("polite");
    polite->send(mqtt::disconnect{});
    CHECK(polite->io->closing);
    CHECK_FALSE(polite->io->lingering);
    polite->io->protocol.release();
    b.ctx.poll();
    CHECK(watcher.received().empty());
}

TEST_CASE("protocol: a takeover kicks the previous connection with 0x8E", "[protocol]") {
    test_broker b;
    client first(b);
    first.connect("press-7");
    client second(b);
    second.connect("press-7");
    REQUIRE(first.io->kicked.size() == 1);
    CHECK(first.io->kicked[0].first == reason_code::session_taken_over);
    // The kick, run on the first connection's thread, disconnects it.
    first.io->protocol.kick(first.io->kicked[0].first, first.io->kicked[0].second);
    CHECK(first.only<mqtt::disconnect>().code == reason_code::session_taken_over);
}

TEST_CASE("protocol: nothing is handled or sent after release", "[protocol]") {
    test_broker b;
    client c(b);
    c.connect("gone");
    c.io->protocol.release();
    CHECK_FALSE(c.io->protocol.takes_input());
    c.send(mqtt::pingreq{});
    CHECK(c.received().empty());
}
