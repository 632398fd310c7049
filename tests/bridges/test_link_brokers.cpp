// The link against real brokers on 127.0.0.1, mosquitto and strata (the
// binary built with the tests): 3.1.1 (with the bridge flag, which
// mosquitto logs as a bridge) and 5.0, subscribe and receive
// (mosquitto_pub), publish QoS 0/1 with PUBACKs (mosquitto_sub), the remote
// killed with messages in flight and restarted, backoff against a closed
// port, and TLS with a client certificate (require_certificate) made by
// openssl here.
#include "support.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <thread>

using namespace strata;
using namespace strata::bridges::mqtt;
using namespace strata::bridges::mqtt::test;
using mqtt::reason_code;

namespace {

const std::vector<std::string>& remote_kinds() {
#ifdef STRATA_BIN
    static const std::vector<std::string> kinds{"mosquitto", "strata"};
#else
    static const std::vector<std::string> kinds{"mosquitto"};
#endif
    return kinds;
}

std::unique_ptr<broker_process> remote_broker(const std::string& kind, const temp_dir& dir) {
#ifdef STRATA_BIN
    if (kind == "strata") return broker_process::strata(dir, STRATA_BIN);
#endif
    return broker_process::mosquitto(dir);
}

}  // namespace

TEST_CASE("connect, subscribe and receive, publish QoS 0 and 1 with PUBACKs", "[bridges][mosquitto][strata]") {
    const std::string kind = GENERATE(from_range(remote_kinds()));
    const auto v = GENERATE(mqtt::protocol_version::v311, mqtt::protocol_version::v5);
    INFO("remote: " << kind << ", MQTT " << (v == mqtt::protocol_version::v5 ? "5.0" : "3.1.1"));
    temp_dir dir;
    auto broker = remote_broker(kind, dir);
    broker->start();
    observer sub(*broker, dir, "obs", "up/#", 3, v);

    test_owner owner;
    auto opts = local_options(broker->port(), v, "plant-bridge");
    mqtt::subscription_request r;
    r.filter = "cmd/#";
    r.options.qos = 1;
    opts.subscriptions = {r};
    link_runner l(opts, owner);
    REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 1; }));
    if (kind == "mosquitto" && v == mqtt::protocol_version::v311) {
        // The protocol level 0x84 is Mosquitto's own bridge marker.
        CHECK(broker->log().find("New bridge connected from 127.0.0.1") != std::string::npos);
    }

    l.enqueue(message(1, "up/a", "one", 1));
    l.enqueue(message(0, "up/b", "two", 0));
    l.enqueue(message(2, "up/c", "three", 1));
    REQUIRE(owner.wait([](const test_owner& o) { return o.acks.size() == 2; }));
    for (const auto& [id, rc] : owner.acks) CHECK(((id == 1 || id == 2) && rc == reason_code::success));
    REQUIRE(sub.finished());
    auto got = sub.messages();
    std::sort(got.begin(), got.end());
    CHECK(got == std::vector<std::string>{"up/a one", "up/b two", "up/c three"});

    child_process pub({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(broker->port()), "-V",
                       cli_version(v), "-q", "1", "-t", "cmd/press-7/start", "-m", "go"},
                      dir.file("pub.out"));
    REQUIRE(pub.wait_exit(10s) == 0);
    REQUIRE(owner.wait([](const test_owner& o) { return o.messages.size() == 1; }));
    CHECK(owner.messages[0].topic == "cmd/press-7/start");
    CHECK(owner.messages[0].payload == "go");
    CHECK(owner.messages[0].qos == 1);
    const auto s = l.get().stats();
    CHECK(s.connected);
    CHECK(s.messages_out == 3);
    CHECK(s.messages_in == 1);
    CHECK(s.acks == 2);
    CHECK(s.bytes_in > 0);
    CHECK(s.bytes_out > 0);
}

TEST_CASE("mosquitto: the window follows mosquitto's Receive Maximum", "[bridges][mosquitto]") {
    temp_dir dir;
    auto broker = broker_process::mosquitto(dir, "max_inflight_messages 4\n");
    broker->start();
    test_owner owner;
    for (std::uint16_t id = 1; id <= 200; ++id) owner.enqueue(message(id, "load/x", std::to_string(id)));
    link_runner l(local_options(broker->port(), mqtt::protocol_version::v5, "window"), owner);
    REQUIRE(owner.wait([](const test_owner& o) { return o.acks.size() == 200; }));
    CHECK(owner.max_in_flight <= 4);
    CHECK(owner.max_in_flight >= 1);
}

TEST_CASE("remote killed and restarted: unacknowledged messages are resent and arrive", "[bridges][mosquitto][strata]") {
    const std::string kind = GENERATE(from_range(remote_kinds()));
    INFO("remote: " << kind);
    temp_dir dir;
    auto broker = remote_broker(kind, dir);
    broker->start();
    test_owner owner;
    link_runner l(local_options(broker->port(), mqtt::protocol_version::v5, "resend"), owner);
    REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 1; }));

    // Frozen, the remote takes the bytes (socket buffer) but acknowledges nothing.
    broker->process().signal(SIGSTOP);
    for (std::uint16_t id = 1; id <= 5; ++id) l.enqueue(message(id, "up/m", "m" + std::to_string(id)));
    REQUIRE(eventually([&] { return l.get().stats().messages_out == 5; }));
    owner.hold(true);  // resend only once the observer below is subscribed
    broker->kill();
    {
        std::lock_guard lock(owner.mutex);
        CHECK(owner.acks.empty());
    }
    REQUIRE(owner.wait([](const test_owner& o) { return !o.downs.empty(); }));
    broker->start();
    REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 2; }));
    observer sub(*broker, dir, "obs2", "up/#", 5, mqtt::protocol_version::v5);
    owner.hold(false);
    l.get().wake();

    REQUIRE(owner.wait([](const test_owner& o) { return o.acks.size() == 5; }));
    for (const auto& [id, rc] : owner.acks) CHECK(rc == reason_code::success);
    REQUIRE(sub.finished());
    CHECK(sub.messages() == std::vector<std::string>{"up/m m1", "up/m m2", "up/m m3", "up/m m4", "up/m m5"});
    CHECK(l.get().stats().messages_out == 10);
}

TEST_CASE("wake() from many threads: every message is collected and acknowledged", "[bridges][mosquitto]") {
    temp_dir dir;
    auto broker = broker_process::mosquitto(dir, "", true);
    broker->start();
    test_owner owner;
    link_runner l(local_options(broker->port(), mqtt::protocol_version::v5, "producers"), owner);
    REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 1; }));
    constexpr int threads = 4, each = 2000;
    std::vector<std::thread> producers;
    for (int t = 0; t < threads; ++t) {
        producers.emplace_back([&, t] {
            for (int i = 0; i < each; ++i) {
                const auto id = static_cast<std::uint16_t>(t * each + i + 1);
                l.enqueue(message(id, "up/" + std::to_string(t), std::to_string(i)));
            }
        });
    }
    for (auto& p : producers) p.join();
    REQUIRE(owner.wait([](const test_owner& o) { return o.acks.size() == threads * each; }, 60s));
    CHECK(l.get().stats().messages_out == threads * each);
}

TEST_CASE("backoff: attempts against a closed port thin out", "[bridges][backoff]") {
    test_owner owner;
    auto opts = local_options(free_port(), mqtt::protocol_version::v5, "closed");
    opts.reconnect_min = 20ms;
    opts.reconnect_max = 640ms;
    link_runner l(opts, owner);
    // Observe 3 s. A fixed 20 ms delay would make about 150 attempts; the
    // growing backoff makes about 13.
    CHECK_FALSE(owner.wait([](const test_owner& o) { return o.downs.size() > 40; }, 3s));
    std::lock_guard lock(owner.mutex);
    CHECK(owner.downs.size() >= 4);
    CHECK(owner.down_with("Connection refused"));
    CHECK(owner.ups.empty());
}

TEST_CASE("TLS: CA verification, client certificate, host name check", "[bridges][mosquitto][tls]") {
    temp_dir dir;
    const pki k = make_pki(dir, "");
    auto broker = broker_process::mosquitto(dir, "cafile " + k.ca + "\ncertfile " + k.server_cert + "\nkeyfile " + k.server_key +
                                                 "\nrequire_certificate true\n");
    broker->start();
    auto tls_options = [&](const std::string& id) {
        auto o = local_options(broker->port(), mqtt::protocol_version::v5, id);
        o.tls = true;
        o.ca_file = k.ca;
        o.cert_file = k.client_cert;
        o.key_file = k.client_key;
        o.server_name = "localhost";
        return o;
    };

    SECTION("trusted both ways: up, and a message goes through") {
        test_owner owner;
        link_runner l(tls_options("tls-ok"), owner);
        REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 1; }));
        l.enqueue(message(9, "up/tls", "secure"));
        REQUIRE(owner.wait([](const test_owner& o) { return o.acks.size() == 1; }));
        // 5.0: mosquitto says there is no subscriber, which is no failure.
        CHECK(owner.acks[0].second == reason_code::no_matching_subscribers);
    }
    SECTION("the address itself is in the certificate (no server name)") {
        test_owner owner;
        auto o = tls_options("tls-ip");
        o.server_name.clear();
        link_runner l(o, owner);
        REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 1; }));
    }
    SECTION("a server certificate from a CA we do not trust is refused") {
        const pki other = make_pki(dir, "other-");
        test_owner owner;
        auto o = tls_options("tls-untrusted");
        o.ca_file = other.ca;
        link_runner l(o, owner);
        REQUIRE(owner.wait([](const test_owner& o) { return !o.downs.empty(); }));
        CHECK(owner.down_with("certificate verify failed"));
        CHECK(owner.ups.empty());
    }
    SECTION("a certificate for another host name is refused") {
        test_owner owner;
        auto o = tls_options("tls-name");
        o.server_name = "enterprise.example";
        link_runner l(o, owner);
        REQUIRE(owner.wait([](const test_owner& o) { return !o.downs.empty(); }));
        CHECK(owner.down_with("TLS handshake"));
        CHECK(owner.ups.empty());
    }
    SECTION("without a client certificate mosquitto refuses the handshake") {
        test_owner owner;
        auto o = tls_options("tls-nocert");
        o.cert_file.clear();
        o.key_file.clear();
        link_runner l(o, owner);
        REQUIRE(owner.wait([](const test_owner& o) { return !o.downs.empty(); }));
        CHECK(owner.ups.empty());
    }
    SECTION("a missing CA file is named") {
        test_owner owner;
        auto o = tls_options("tls-nofile");
        o.ca_file = dir.file("missing.pem");
        link_runner l(o, owner);
        REQUIRE(owner.wait([](const test_owner& o) { return !o.downs.empty(); }));
        CHECK(owner.down_with("missing.pem"));
    }
}

// A measurement, not a check (hidden from ctest): messages per second
// through the link into mosquitto, each QoS 1 message acknowledged.
//   build/tests/bridges/test_bridges '[.throughput]'
TEST_CASE("throughput into mosquitto", "[.throughput]") {
    const auto qos = GENERATE(std::uint8_t{0}, std::uint8_t{1});
    constexpr int n = 200'000;
    temp_dir dir;
    auto broker = broker_process::mosquitto(dir, "max_inflight_messages 0\nmax_queued_messages 0\n", true);
    broker->start();
    observer sub(*broker, dir, "sink", "up/#", n, mqtt::protocol_version::v5);
    test_owner owner;
    link_runner l(local_options(broker->port(), mqtt::protocol_version::v5, "throughput"), owner);
    REQUIRE(owner.wait([](const test_owner& o) { return o.ups.size() == 1; }));
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i)
        owner.enqueue(message(static_cast<std::uint16_t>(qos ? i % 65535 + 1 : 0), "up/line-2/press-7/temperature",
                              std::string(64, 'x'), qos));
    l.get().wake();
    REQUIRE(sub.finished(120s));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    WARN("QoS " << int(qos) << ": " << n << " messages in " << s << " s = " << static_cast<long>(n / s)
                << " msgs/s delivered");
    if (qos) CHECK(owner.wait([](const test_owner& o) { return o.acks.size() == n; }));
}
