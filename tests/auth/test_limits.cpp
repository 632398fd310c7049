#include "auth/audit.hpp"
#include "auth/identity.hpp"
#include "auth/limits.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace strata::auth;
using namespace std::chrono_literals;

TEST_CASE("identity limits: connections per identity") {
    identity_registry reg({.connections = 2});
    auto a = reg.acquire("olga");
    auto b = reg.acquire("olga");
    REQUIRE(a);
    REQUIRE(b);
    CHECK_FALSE(reg.acquire("olga"));
    CHECK(reg.acquire("erik"));  // another identity
    b.reset();
    CHECK(reg.acquire("olga"));
}

TEST_CASE("identity limits: message and byte rates are token buckets shared by the identity") {
    identity_registry reg({.publish_rate = 10, .publish_bytes_rate = 1000});
    auto a = reg.acquire("olga");
    auto b = reg.acquire("olga");
    const auto t0 = steady_clock::now();
    int ok = 0;
    for (int i = 0; i < 20; ++i) {
        auto& s = (i % 2 == 0) ? *a : *b;
        if (s.admit(10, t0) == rate_verdict::ok) ++ok;
    }
    CHECK(ok == 10);  // one second's burst, shared
    CHECK(a->admit(10, t0) == rate_verdict::too_many_messages);
    CHECK(a->admit(10, t0 + 500ms) == rate_verdict::ok);  // refilled at 10/s
    // Bytes: 1000 per second.
    identity_registry bytes({.publish_bytes_rate = 1000});
    auto c = bytes.acquire("x");
    CHECK(c->admit(900, t0) == rate_verdict::ok);
    CHECK(c->admit(200, t0) == rate_verdict::too_many_bytes);
    CHECK(c->admit(200, t0 + 200ms) == rate_verdict::ok);
}

TEST_CASE("login guard: free attempts, then doubling blocks, reset on success") {
    login_guard g({.free_attempts = 2, .initial_ms = 100, .max_ms = 350});
    const auto t = steady_clock::now();
    g.failed("10.0.0.1", t);
    CHECK(g.blocked_for("10.0.0.1", t) == 0ms);
    g.failed("10.0.0.1", t);  // the second of two free attempts blocks
    CHECK(g.blocked_for("10.0.0.1", t) == 100ms);
    g.failed("10.0.0.1", t);
    CHECK(g.blocked_for("10.0.0.1", t) == 200ms);
    g.failed("10.0.0.1", t);
    CHECK(g.blocked_for("10.0.0.1", t) == 350ms);  // capped
    CHECK(g.blocked_for("10.0.0.2", t) == 0ms);
    CHECK(g.failures() == 4);
    CHECK(g.refused() == 3);
    CHECK(g.blocked_addresses(t) == 1);
    CHECK(g.blocked_addresses(t + 1s) == 0);
    g.succeeded("10.0.0.1");
    CHECK(g.blocked_for("10.0.0.1", t) == 0ms);
}

TEST_CASE("login guard: free_attempts N checks exactly N passwords before blocking") {
    for (std::uint32_t n : {1u, 3u, 5u}) {
        login_guard g({.free_attempts = n, .initial_ms = 1000, .max_ms = 60'000});
        const auto t = steady_clock::now();
        std::uint32_t checked = 0;
        // A client retrying at once: each attempt is checked unless blocked.
        for (int attempt = 0; attempt < 20; ++attempt) {
            if (g.blocked_for("10.0.0.9", t) > 0ms) continue;
            ++checked;
            g.failed("10.0.0.9", t);
        }
        CHECK(checked == n);
    }
    // 0 cannot check fewer than one.
    login_guard zero({.free_attempts = 0, .initial_ms = 1000, .max_ms = 60'000});
    const auto t = steady_clock::now();
    CHECK(zero.blocked_for("10.0.0.9", t) == 0ms);
    zero.failed("10.0.0.9", t);
    CHECK(zero.blocked_for("10.0.0.9", t) == 1000ms);
}

TEST_CASE("login plan: anonymous, certificate, password") {
    login_request r;
    r.anonymous_allowed = true;
    CHECK(plan_login(r).kind == login_kind::anonymous);
    r.anonymous_allowed = false;
    CHECK(plan_login(r).refusal == login_refusal::not_authorized);

    r.username = "olga";
    CHECK(plan_login(r).refusal == login_refusal::bad_credentials);  // no password
    r.has_password = true;
    CHECK(plan_login(r).refusal == login_refusal::bad_credentials);  // no password file
    r.password_file = true;
    auto p = plan_login(r);
    CHECK(p.kind == login_kind::password);
    CHECK(p.identity == "olga");

    login_request c;
    c.certificate_identity = "plc-7.acme.example";
    p = plan_login(c);
    CHECK(p.kind == login_kind::certificate);
    CHECK(p.identity == "plc-7.acme.example");
    c.username = "plc-7.acme.example";
    CHECK(plan_login(c).kind == login_kind::certificate);
    c.username = "someone-else";
    CHECK(plan_login(c).refusal == login_refusal::not_authorized);

    certificate_names n{"plc-7", {"spiffe://acme/plc-7"}, {"plc-7.acme.example", "alt"}};
    CHECK(certificate_identity(n, certificate_field::cn) == "plc-7");
    CHECK(certificate_identity(n, certificate_field::san_uri) == "spiffe://acme/plc-7");
    CHECK(certificate_identity(n, certificate_field::san_dns) == "plc-7.acme.example");
    CHECK(certificate_identity({}, certificate_field::san_dns).empty());
}

TEST_CASE("audit: JSON lines written by the writer thread") {
    const auto path = std::filesystem::temp_directory_path() / ("strata-audit-" + std::to_string(::getpid()));
    std::filesystem::remove(path);
    const std::vector<std::string> roles{"operator"};
    {
        audit_log log(path.string());
        audit_event e;
        e.action = "command";
        e.outcome = "allowed";
        e.identity = "olga";
        e.roles = &roles;
        e.client_id = "hmi";
        e.address = "127.0.0.1:5000";
        e.topic = "a/cmd/stop";
        log.write(format_audit_line(e, std::chrono::system_clock::time_point{}));
        audit_event anon;
        anon.action = "login";
        anon.outcome = "failed";
        anon.reason = "bad \xff name";
        log.write(format_audit_line(anon, std::chrono::system_clock::time_point{}));
        log.flush();
        CHECK(log.written() == 2);
    }
    std::ifstream in(path);
    std::string line;
    REQUIRE(std::getline(in, line));
    const auto j = nlohmann::json::parse(line);
    CHECK(j["time"] == "1970-01-01T00:00:00.000Z");
    CHECK(j["identity"] == "olga");
    CHECK(j["roles"] == nlohmann::json::array({"operator"}));
    CHECK(j["client_id"] == "hmi");
    CHECK(j["action"] == "command");
    CHECK(j["topic"] == "a/cmd/stop");
    CHECK(j["outcome"] == "allowed");
    REQUIRE(std::getline(in, line));
    const auto k = nlohmann::json::parse(line);
    CHECK(k["identity"].is_null());
    CHECK_FALSE(k.contains("topic"));
    std::filesystem::remove(path);
}
