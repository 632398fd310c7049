// The link against a scripted remote: the test plays the broker packet by
// packet (through the codec) and checks the bytes the link sends: CONNECT
// fields, the outbound window, DUP on a resend, the remote's Maximum Packet
// Size, inbound acknowledgements held until done(), keep-alive and
// CONNACK timeouts, malformed input, refusals, DISCONNECT on stop.
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace strata;
using namespace strata::bridges::mqtt;
using namespace strata::bridges::mqtt::test;
using mqtt::reason_code;

namespace {

constexpr auto v311 = mqtt::protocol_version::v311;
constexpr auto v5 = mqtt::protocol_version::v5;

mqtt::subscription_request sub(std::string filter, std::uint8_t qos = 1) {
    mqtt::subscription_request r;
    r.filter = std::move(filter);
    r.options.qos = qos;
    return r;
}

// A PUBLISH as the remote sends it.
mqtt::publish inbound(std::uint16_t id, std::string topic, std::string payload, std::uint8_t qos) {
    mqtt::publish p;
    p.topic = std::move(topic);
    p.payload = std::move(payload);
    p.qos = qos;
    p.packet_id = id;
    return p;
}

}  // namespace

TEST_CASE("3.1.1 CONNECT: bridge flag, clean session 0, credentials, SUBSCRIBE before on_up", "[bridges][scripted]") {
    scripted_remote remote(v311);
    test_owner owner;
    auto opts = local_options(remote.port(), v311, "plant-1");
    opts.username = "bridge";
    opts.password = "secret";
    opts.keep_alive = 30;
    opts.subscriptions = {sub("acme/cmd/#")};
    link_runner l(opts, owner);

    REQUIRE(remote.accept());
    const auto c = remote.handshake();
    REQUIRE(c);
    CHECK(c->version == v311);
    CHECK(c->bridge);
    CHECK_FALSE(c->clean_start);
    CHECK(c->keep_alive == 30);
    CHECK(c->client_id == "plant-1");
    CHECK(c->username == "bridge");
    CHECK(c->password == "secret");

    const auto s = remote.expect<mqtt::subscribe>();
    REQUIRE(s);
    REQUIRE(s->subscriptions.size() == 1);
    CHECK(s->subscriptions[0].filter == "acme/cmd/#");
    CHECK(s->subscriptions[0].options.qos == 1);
    CHECK(owner.ups.empty());  // not up before the SUBACK
    remote.send(mqtt::suback{s->packet_id, {reason_code::granted_qos_1}, {}});
    REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 1; }));
    CHECK(l.get().stats().connected);
    CHECK(l.get().stats().state == link_state::up);
    CHECK(l.get().stats().connects == 1);
}

TEST_CASE("5.0 CONNECT: session expiry, receive maximum, maximum packet size, No Local on subscriptions", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    auto opts = local_options(remote.port(), v5, "plant-5");
    opts.session_expiry = 3600;
    opts.receive_maximum = 16;
    opts.max_packet_size = 65536;
    opts.subscriptions = {sub("cmd/#", 2)};
    link_runner l(opts, owner);

    REQUIRE(remote.accept());
    const auto c = remote.handshake(true);
    REQUIRE(c);
    CHECK(c->version == v5);
    CHECK_FALSE(c->bridge);
    CHECK_FALSE(c->clean_start);
    CHECK(c->props.session_expiry_interval == 3600u);
    CHECK(c->props.receive_maximum == 16);
    CHECK(c->props.maximum_packet_size == 65536u);
    const auto s = remote.expect<mqtt::subscribe>();
    REQUIRE(s);
    CHECK(s->subscriptions[0].options.no_local);
    CHECK(s->subscriptions[0].options.retain_as_published);
    CHECK(s->subscriptions[0].options.qos == 2);
    remote.send(mqtt::suback{s->packet_id, {reason_code::granted_qos_2}, {}});
    REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 1; }));
    CHECK(owner.ups[0]);  // session present
}

TEST_CASE("outbound: no more QoS 1 in flight than the remote's Receive Maximum", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    for (std::uint16_t id = 1; id <= 10; ++id) owner.enqueue(message(id, "t/" + std::to_string(id), "m"));
    link_runner l(local_options(remote.port(), v5, "w"), owner);

    REQUIRE(remote.accept());
    mqtt::properties props;
    props.receive_maximum = 3;
    REQUIRE(remote.handshake(false, props));
    for (std::uint16_t id = 1; id <= 3; ++id) {
        const auto p = remote.expect<mqtt::publish>();
        REQUIRE(p);
        CHECK(p->packet_id == id);
        CHECK(p->qos == 1);
        CHECK_FALSE(p->dup);
    }
    // The window is closed: nothing more arrives until a PUBACK.
    CHECK_FALSE(remote.read(300ms));
    remote.send(mqtt::puback{1, reason_code::success, {}});
    const auto p4 = remote.expect<mqtt::publish>();
    REQUIRE(p4);
    CHECK(p4->packet_id == 4);
    REQUIRE(owner.wait([](const test_owner& o) { return o.acks.size() == 1; }));
    CHECK(owner.acks[0] == std::pair<std::uint16_t, reason_code>{1, reason_code::success});
    CHECK(owner.max_in_flight == 3);
    for (const std::size_t w : owner.windows) CHECK(w <= 3);
    CHECK(l.get().stats().acks == 1);
    CHECK(l.get().stats().last_ack.time_since_epoch().count() != 0);
}

TEST_CASE("outbound 3.1.1: the fixed window (max_inflight)", "[bridges][scripted]") {
    scripted_remote remote(v311);
    test_owner owner;
    for (std::uint16_t id = 1; id <= 5; ++id) owner.enqueue(message(id, "t", "m"));
    auto opts = local_options(remote.port(), v311, "w311");
    opts.max_inflight = 2;
    link_runner l(opts, owner);
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    REQUIRE(remote.expect<mqtt::publish>());
    REQUIRE(remote.expect<mqtt::publish>());
    CHECK_FALSE(remote.read(300ms));
    remote.send(mqtt::puback{2, reason_code::success, {}});
    const auto p = remote.expect<mqtt::publish>();
    REQUIRE(p);
    CHECK(p->packet_id == 3);
}

TEST_CASE("unacknowledged messages go out again with DUP after a reconnection", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    owner.enqueue(message(7, "a", "one"));
    owner.enqueue(message(8, "b", "two"));
    owner.enqueue(message(0, "c", "qos0", 0));
    link_runner l(local_options(remote.port(), v5, "dup"), owner);

    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    REQUIRE(remote.expect<mqtt::publish>());
    REQUIRE(remote.expect<mqtt::publish>());
    const auto q0 = remote.expect<mqtt::publish>();
    REQUIRE(q0);
    CHECK(q0->qos == 0);
    remote.drop();  // the remote goes away without acknowledging

    REQUIRE(remote.accept());
    REQUIRE(remote.handshake(true));
    for (const auto& [id, topic] : {std::pair<std::uint16_t, const char*>{7, "a"}, {8, "b"}}) {
        const auto p = remote.expect<mqtt::publish>();
        REQUIRE(p);
        CHECK(p->packet_id == id);
        CHECK(p->topic == topic);
        CHECK(p->dup);
        remote.send(mqtt::puback{id, reason_code::success, {}});
    }
    CHECK_FALSE(remote.read(200ms));  // the QoS 0 message is not resent
    REQUIRE(owner.wait([](const test_owner& o) { return o.acks.size() == 2 && o.in_flight.empty(); }));
    CHECK(owner.downs.size() == 1);
    CHECK(owner.ups.size() == 2);
}

TEST_CASE("a message over the remote's Maximum Packet Size is reported and skipped", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    owner.enqueue(message(1, "big", std::string(2000, 'x')));
    owner.enqueue(message(2, "small", "ok"));
    link_runner l(local_options(remote.port(), v5, "mps"), owner);
    REQUIRE(remote.accept());
    mqtt::properties props;
    props.maximum_packet_size = 1024;
    REQUIRE(remote.handshake(false, props));
    const auto p = remote.expect<mqtt::publish>();
    REQUIRE(p);
    CHECK(p->topic == "small");
    REQUIRE(owner.wait([](const test_owner& o) { return !o.acks.empty(); }));
    CHECK(owner.acks[0] == std::pair<std::uint16_t, reason_code>{1, reason_code::packet_too_large});
}

TEST_CASE("messages with invalid topic names are reported and skipped, not sent", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    owner.enqueue(message(1, "", "empty"));
    owner.enqueue(message(2, "a/+/b", "wildcard"));
    owner.enqueue(message(3, "a/#", "wildcard"));
    owner.enqueue(message(4, std::string("a\0b", 3), "nul"));
    owner.enqueue(message(5, "\xC3\x28", "not UTF-8"));
    owner.enqueue(message(0, "x/#", "qos0", 0));
    owner.enqueue(message(6, "good/topic", "ok"));
    link_runner l(local_options(remote.port(), v5, "topics"), owner);
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    const auto p = remote.expect<mqtt::publish>();
    REQUIRE(p);
    CHECK(p->topic == "good/topic");
    REQUIRE(owner.wait([](const test_owner& o) { return o.acks.size() == 5; }));
    for (std::uint16_t id = 1; id <= 5; ++id)
        CHECK(owner.acks[id - 1] == std::pair<std::uint16_t, reason_code>{id, reason_code::topic_name_invalid});
}

TEST_CASE("a packet id already in flight is not sent twice", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    owner.enqueue(message(9, "first", "a"));
    owner.enqueue(message(9, "second", "b"));
    link_runner l(local_options(remote.port(), v5, "same-id"), owner);
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    const auto p = remote.expect<mqtt::publish>();
    REQUIRE(p);
    CHECK(p->topic == "first");
    CHECK_FALSE(remote.read(200ms));
    std::lock_guard lock(owner.mutex);
    CHECK(owner.acks.empty());
}

TEST_CASE("the remote's Maximum QoS and Retain Available are honoured", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    auto m = message(3, "r", "v");
    m.retain = true;
    owner.enqueue(m);
    link_runner l(local_options(remote.port(), v5, "qos0"), owner);
    REQUIRE(remote.accept());
    mqtt::properties props;
    props.maximum_qos = 0;
    props.retain_available = 0;
    REQUIRE(remote.handshake(false, props));
    const auto p = remote.expect<mqtt::publish>();
    REQUIRE(p);
    CHECK(p->qos == 0);
    CHECK_FALSE(p->retain);
    // Sent at QoS 0, so it is done with.
    REQUIRE(owner.wait([](const test_owner& o) { return o.acks.size() == 1; }));
    CHECK(owner.acks[0].first == 3);
}

TEST_CASE("inbound QoS 1: PUBACK only when the owner calls done", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    owner.auto_done(false);
    link_runner l(local_options(remote.port(), v5, "in1"), owner);
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    mqtt::publish p = inbound(11, "cmd/x", "go", 1);
    p.props.user_properties = {{"k", "v"}};
    remote.send(p);
    REQUIRE(owner.wait([](const test_owner& o) { return o.messages.size() == 1; }));
    CHECK(owner.messages[0].topic == "cmd/x");
    CHECK(owner.messages[0].props.user_properties.size() == 1);
    CHECK_FALSE(remote.read(200ms));  // not stored yet: no PUBACK
    std::function<void(reason_code)> done;
    {
        std::lock_guard lock(owner.mutex);
        done = owner.dones.at(0);
    }
    std::thread([&] { done(reason_code::not_authorized); }).join();  // from another thread
    const auto a = remote.expect<mqtt::puback>();
    REQUIRE(a);
    CHECK(a->packet_id == 11);
    CHECK(a->code == reason_code::not_authorized);
    done(reason_code::success);  // a second call is ignored
    CHECK_FALSE(remote.read(200ms));
}

TEST_CASE("inbound QoS 2: PUBREC after done, PUBCOMP on PUBREL, a resent PUBLISH is not handed over twice", "[bridges][scripted]") {
    scripted_remote remote(v311);
    test_owner owner;
    owner.auto_done(false);
    link_runner l(local_options(remote.port(), v311, "in2"), owner);
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    mqtt::publish p = inbound(5, "cmd/y", "once", 2);
    remote.send(p);
    REQUIRE(owner.wait([](const test_owner& o) { return o.messages.size() == 1; }));
    CHECK_FALSE(remote.read(200ms));

    // The connection drops before the owner has stored it; the remote
    // resends with DUP on the next connection.
    remote.drop();
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake(true));
    p.dup = true;
    remote.send(p);
    CHECK_FALSE(remote.read(200ms));
    {
        std::lock_guard lock(owner.mutex);
        CHECK(owner.messages.size() == 1);
        owner.dones.at(0)(reason_code::success);
    }
    const auto rec = remote.expect<mqtt::pubrec>();
    REQUIRE(rec);
    CHECK(rec->packet_id == 5);
    // The PUBREC got lost: the PUBLISH comes again, PUBREC again, no new message.
    remote.send(p);
    REQUIRE(remote.expect<mqtt::pubrec>());
    remote.send(mqtt::pubrel{5, reason_code::success, {}});
    const auto comp = remote.expect<mqtt::pubcomp>();
    REQUIRE(comp);
    CHECK(comp->packet_id == 5);
    CHECK(owner.wait([](const test_owner& o) { return o.messages.size() == 1; }, 100ms));
    // After the PUBREL the id is free: a new PUBLISH with it is a new message.
    p.dup = false;
    p.payload = "next";
    remote.send(p);
    REQUIRE(owner.wait([](const test_owner& o) { return o.messages.size() == 2; }));
}

TEST_CASE("inbound: more unacknowledged PUBLISHes than our Receive Maximum closes the link", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    owner.auto_done(false);
    auto opts = local_options(remote.port(), v5, "rm");
    opts.receive_maximum = 2;
    link_runner l(opts, owner);
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    for (std::uint16_t id = 1; id <= 3; ++id) remote.send(inbound(id, "t", "", 1));
    REQUIRE(remote.closed());
    const auto d = remote.expect<mqtt::disconnect>(1s);
    REQUIRE(d);
    CHECK(d->code == reason_code::receive_maximum_exceeded);
    REQUIRE(owner.wait([](const test_owner& o) { return !o.downs.empty(); }));
}

TEST_CASE("keep-alive: PINGREQ, and a missing PINGRESP closes and reconnects", "[bridges][scripted]") {
    scripted_remote remote(v311);
    test_owner owner;
    auto opts = local_options(remote.port(), v311, "ka");
    opts.keep_alive = 1;
    opts.response_timeout = 1s;
    link_runner l(opts, owner);
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    REQUIRE(remote.expect<mqtt::pingreq>(3s));
    remote.send(mqtt::pingresp{});
    REQUIRE(remote.expect<mqtt::pingreq>(3s));
    // No answer this time: the link gives up on the connection.
    REQUIRE(remote.closed(5s));
    REQUIRE(owner.wait([](const test_owner& o) { return !o.downs.empty(); }));
    CHECK(owner.down_with("no PINGRESP"));
    REQUIRE(remote.accept());  // and comes back
}

TEST_CASE("a listener that accepts and never answers: no CONNACK within the timeout", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    auto opts = local_options(remote.port(), v5, "silent");
    opts.response_timeout = 500ms;
    link_runner l(opts, owner);
    REQUIRE(remote.accept());
    REQUIRE(remote.expect<mqtt::connect>());
    REQUIRE(owner.wait([](const test_owner& o) { return !o.downs.empty(); }, 5s));
    CHECK(owner.down_with("no CONNACK within 0.5s"));
    CHECK(owner.ups.empty());
    CHECK(l.get().stats().state != link_state::up);
    CHECK(l.get().stats().failures >= 1);
}

TEST_CASE("malformed input from the remote closes the link with DISCONNECT 0x81", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    link_runner l(local_options(remote.port(), v5, "bad"), owner);
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    remote.send_raw({0x30, 0x03, 0x00, 0x05, 'a'});  // PUBLISH whose topic runs past the packet
    REQUIRE(remote.closed());
    const auto d = remote.expect<mqtt::disconnect>(1s);
    REQUIRE(d);
    CHECK(d->code == reason_code::malformed_packet);
    REQUIRE(owner.wait([](const test_owner& o) { return !o.downs.empty(); }));
    CHECK(owner.down_with("malformed packet"));
}

TEST_CASE("a packet larger than our maximum packet size closes the link", "[bridges][scripted]") {
    scripted_remote remote(v311);
    test_owner owner;
    auto opts = local_options(remote.port(), v311, "large");
    opts.max_packet_size = 1024;
    link_runner l(opts, owner);
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    remote.send(inbound(0, "t", std::string(4000, 'x'), 0));
    REQUIRE(remote.closed());
    REQUIRE(owner.wait([](const test_owner& o) { return !o.downs.empty(); }));
    CHECK(owner.down_with("maximum packet size"));
    CHECK(owner.messages.empty());
}

TEST_CASE("a refused CONNACK is reported and retried", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    link_runner l(local_options(remote.port(), v5, "refused"), owner);
    REQUIRE(remote.accept());
    REQUIRE(remote.expect<mqtt::connect>());
    mqtt::connack ca;
    ca.code = reason_code::bad_user_name_or_password;
    ca.props.reason_string = "who are you";
    remote.send(ca);
    REQUIRE(owner.wait([](const test_owner& o) { return !o.downs.empty(); }));
    CHECK(owner.down_with("refused by the remote: bad_user_name_or_password (who are you)"));
    REQUIRE(remote.accept());  // retried
    REQUIRE(remote.handshake());
    REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 1; }));
}

TEST_CASE("backoff: grows while refused, starts again from the minimum after a stable connection", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    auto opts = local_options(remote.port(), v5, "stable");
    opts.reconnect_min = 10ms;
    opts.reconnect_max = 80ms;
    opts.stable_after = 300ms;
    link_runner l(opts, owner);
    const auto refuse = [&] {
        REQUIRE(remote.accept());
        REQUIRE(remote.expect<mqtt::connect>());
        remote.send(mqtt::connack{false, reason_code::server_busy, {}});
        REQUIRE(remote.closed());
    };
    for (int i = 0; i < 5; ++i) refuse();
    // Five failures in a row: the ceiling has reached the maximum. Refused
    // and unstable connections do not reset it.
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 1; }));
    remote.drop();  // at once: not stable
    REQUIRE(owner.wait([](const test_owner& o) { return o.downs.size() == 6; }));
    // A connection that stays up longer than stable_after resets it: the
    // next delay is exactly the minimum.
    REQUIRE(remote.accept());
    REQUIRE(remote.handshake());
    REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 2; }));
    CHECK_FALSE(remote.closed(400ms));  // stays up past stable_after
    remote.drop();
    REQUIRE(owner.wait([](const test_owner& o) { return o.downs.size() == 7; }));
    CHECK(l.get().stats().retry_delay == 10ms);
    CHECK(l.get().stats().failures == 7);
}

TEST_CASE("3.1.1: a remote that refuses the bridge flag gets a plain CONNECT next", "[bridges][scripted]") {
    scripted_remote remote(v311);
    test_owner owner;
    link_runner l(local_options(remote.port(), v311, "flag"), owner);
    REQUIRE(remote.accept());
    const auto c1 = remote.expect<mqtt::connect>();
    REQUIRE(c1);
    CHECK(c1->bridge);
    remote.send(mqtt::connack{false, reason_code::unsupported_protocol_version, {}});
    REQUIRE(remote.accept());
    const auto c2 = remote.expect<mqtt::connect>();
    REQUIRE(c2);
    CHECK_FALSE(c2->bridge);
}

TEST_CASE("stop() sends DISCONNECT and does not reconnect", "[bridges][scripted]") {
    scripted_remote remote(v5);
    test_owner owner;
    {
        link_runner l(local_options(remote.port(), v5, "bye"), owner);
        REQUIRE(remote.accept());
        REQUIRE(remote.handshake());
        REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 1; }));
    }
    const auto d = remote.expect<mqtt::disconnect>();
    REQUIRE(d);
    CHECK(d->code == reason_code::success);
    CHECK(remote.closed(1s));
    CHECK(owner.downs.empty());  // no callback after stop()
    CHECK_FALSE(remote.accept(300ms));
}

TEST_CASE("stop() from inside on_down ends the link at once, not after the backoff", "[bridges][scripted]") {
    test_owner owner;
    auto opts = local_options(free_port(), v5, "stop-in-down");
    opts.reconnect_min = 60s;
    opts.reconnect_max = 60s;
    auto runner = std::make_unique<link_runner>(opts, owner, [&](bridges::mqtt::link& k) {
        owner.down_hook = [&k] { k.stop(); };
    });
    REQUIRE(owner.wait([](const test_owner& o) { return o.downs.size() == 1; }));
    CHECK(eventually([&] { return runner->get().stats().state == link_state::stopped; }));
    // Joining the link's thread does not wait out the 60 s backoff.
    const auto t0 = std::chrono::steady_clock::now();
    runner.reset();
    CHECK(std::chrono::steady_clock::now() - t0 < 30s);
    CHECK(owner.downs.size() == 1);
}

TEST_CASE("link options that cannot work are refused at construction", "[bridges]") {
    boost::asio::io_context ioc;
    test_owner owner;
    auto o = local_options(1883, v5, "x");
    o.host.clear();
    CHECK_THROWS_AS(bridges::mqtt::link(ioc.get_executor(), o, owner), std::invalid_argument);
    o = local_options(1883, v5, "");
    CHECK_THROWS_AS(bridges::mqtt::link(ioc.get_executor(), o, owner), std::invalid_argument);
    o = local_options(1883, v5, "x");
    o.reconnect_min = 2s;
    o.reconnect_max = 1s;
    CHECK_THROWS_AS(bridges::mqtt::link(ioc.get_executor(), o, owner), std::invalid_argument);
}
