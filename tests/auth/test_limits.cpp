#include "auth/audit.hpp"
#include "auth/fair_queue.hpp"
#include "auth/identity.hpp"
#include "auth/limits.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
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

namespace {

// Holds the queue's workers until opened, so that a test can queue jobs
// behind a running one and then watch the order they run in.
struct gate {
    std::mutex m;
    std::condition_variable cv;
    bool open = false;
    void wait() {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return open; });
    }
    void release() {
        {
            std::lock_guard lock(m);
            open = true;
        }
        cv.notify_all();
    }
};

}  // namespace

TEST_CASE("fair queue: bounded per key, keys served in turn") {
    fair_queue q({.threads = 1, .per_key = 3});
    gate g;
    std::promise<void> started;
    std::mutex order_mutex;
    std::condition_variable order_changed;
    std::vector<std::string> order;
    auto job = [&](std::string name) {
        return std::function<void()>([&, name] {
            {
                std::lock_guard lock(order_mutex);
                order.push_back(name);
            }
            order_changed.notify_all();
        });
    };
    // The one worker is busy with a job of "flood" until the gate opens.
    REQUIRE(q.post("flood", [&] {
        started.set_value();
        g.wait();
    }));
    started.get_future().wait();
    REQUIRE(q.post("flood", job("f1")));
    REQUIRE(q.post("flood", job("f2")));
    // Three outstanding (one running): the fourth is refused and left as it was.
    auto extra = job("f3");
    CHECK_FALSE(q.post("flood", std::move(extra)));
    CHECK(extra);
    CHECK(q.refused() == 1);
    REQUIRE(q.post("good", job("g1")));
    REQUIRE(q.post("other", job("o1")));
    REQUIRE(q.post("other", job("o2")));
    CHECK(q.queued() == 5);
    g.release();
    {
        std::unique_lock lock(order_mutex);
        REQUIRE(order_changed.wait_for(lock, 10s, [&] { return order.size() == 5; }));
    }
    q.stop();
    // Round robin in the order the keys first queued: flood's second job
    // waits for every other key's first one.
    CHECK(order == std::vector<std::string>{"f1", "g1", "o1", "f2", "o2"});
}

TEST_CASE("fair queue: a finished job frees its key's slot; stop drops what waits") {
    fair_queue q({.threads = 2, .per_key = 1});
    std::promise<void> done;
    REQUIRE(q.post("a", [&] { done.set_value(); }));
    done.get_future().wait();
    // The slot is freed just after the job returns: poll briefly for it.
    bool posted = false;
    for (int i = 0; i < 1000 && !posted; ++i) {
        posted = q.post("a", [] {});
        if (!posted) std::this_thread::sleep_for(1ms);
    }
    CHECK(posted);

    gate g;
    std::atomic<int> ran{0};
    std::promise<void> b_started, c_started;
    REQUIRE(q.post("b", [&] { b_started.set_value(); g.wait(); ++ran; }));
    REQUIRE(q.post("c", [&] { c_started.set_value(); g.wait(); ++ran; }));
    b_started.get_future().wait();
    c_started.get_future().wait();
    REQUIRE(q.post("d", [&] { ++ran; }));  // both workers busy: waits
    std::thread opener([&] {
        // Opens the gate once stop() has begun (post() then says no); the
        // probes posted before that just wait and are dropped too.
        for (int i = 0; q.post("probe-" + std::to_string(i), [&] { ++ran; }); ++i) std::this_thread::sleep_for(1ms);
        g.release();
    });
    q.stop();  // lets b and c finish, never runs d
    opener.join();
    CHECK(ran == 2);
    CHECK_FALSE(q.post("e", [] {}));
}

TEST_CASE("fair queue: a total bound over every key") {
    fair_queue q({.threads = 1, .per_key = 2, .total = 3});
    gate g;
    std::promise<void> started;
    std::atomic<int> ran{0};
    REQUIRE(q.post("a", [&] {
        started.set_value();
        g.wait();
        ++ran;
    }));
    started.get_future().wait();
    REQUIRE(q.post("a", [&] { ++ran; }));
    CHECK_FALSE(q.post("a", [] {}));  // a's share
    REQUIRE(q.post("b", [&] { ++ran; }));
    CHECK_FALSE(q.post("c", [] {}));  // three outstanding: the total
    CHECK(q.refused() == 2);
    g.release();
    // The slots come back as the jobs finish: poll briefly.
    bool posted = false;
    for (int i = 0; i < 1000 && !posted; ++i) {
        posted = ran == 3 && q.post("c", [&] { ++ran; });
        if (!posted) std::this_thread::sleep_for(1ms);
    }
    CHECK(posted);
    q.stop();
}

TEST_CASE("fair queue: `then` runs once the job's slot is free") {
    fair_queue q({.threads = 1, .per_key = 1, .total = 1});
    std::promise<bool> again;
    std::atomic<int> ran{0};
    REQUIRE(q.post("a", [&] { ++ran; }, [&] { again.set_value(q.post("a", [&] { ++ran; })); }));
    // The caller's next job, posted from the completion, finds its slot free.
    CHECK(again.get_future().get());
    q.stop();
}

TEST_CASE("audit: long fields are cut at a character boundary and marked") {
    CHECK(clip_field("short", 8) == "short");
    CHECK(clip_field(std::string(10, 'a'), 4) == "aaaa...[truncated, 10 bytes]");
    // "aé…": the cut at 2 would split 'é' (2 bytes), so it backs off to 1.
    CHECK(clip_field("a\xc3\xa9xyz", 2) == "a...[truncated, 6 bytes]");

    const std::string filter(60 * 1024, 'f');
    const std::string client_id(60 * 1024, 'c');
    audit_event e;
    e.action = "subscribe";
    e.outcome = "refused";
    e.identity = "ana";
    e.client_id = client_id;
    e.topic = filter;
    e.reason = "not authorized";
    const std::string line = format_audit_line(e, std::chrono::system_clock::time_point{});
    CHECK(line.size() < 1024);
    const auto j = nlohmann::json::parse(line);
    CHECK(j["topic"] == std::string(256, 'f') + "...[truncated, 61440 bytes]");
    CHECK(j["client_id"] == std::string(256, 'c') + "...[truncated, 61440 bytes]");
    CHECK(j["reason"] == "not authorized");
    CHECK_FALSE(j.contains("suppressed"));
}

TEST_CASE("audit: refusal lines per subject are a token bucket, the rest summarised") {
    audit_limiter lim(3);
    const auto t = audit_limiter::clock::now();
    const audit_subject ana{"ana", {}};
    const audit_subject anon{{}, "10.0.0.7"};
    int written = 0;
    for (int i = 0; i < 10; ++i) written += lim.admit(ana, t) ? 1 : 0;
    CHECK(written == 3);  // one second's burst
    CHECK(lim.admit(anon, t));  // another subject has its own
    CHECK(lim.suppressed_total() == 7);

    auto s = lim.take_summaries(t);
    REQUIRE(s.size() == 1);
    CHECK(s[0].who == ana);
    CHECK(s[0].suppressed == 7);
    CHECK(lim.take_summaries(t).empty());  // reported once

    // Refilled at 3 a second.
    CHECK_FALSE(lim.admit(ana, t + 100ms));
    CHECK(lim.admit(ana, t + 400ms));
    // Subjects whose buckets are full again are forgotten; a new bucket
    // starts full, so nothing changes for them.
    CHECK(lim.take_summaries(t + 10s).size() == 1);
    CHECK(lim.take_summaries(t + 10s).empty());
    for (int i = 0; i < 3; ++i) CHECK(lim.admit(ana, t + 10s));

    audit_limiter unlimited(0);
    for (int i = 0; i < 100; ++i) CHECK(unlimited.admit(ana, t));
}

TEST_CASE("audit: the file rotates by size and keeps `keep` old files") {
    const auto dir = std::filesystem::temp_directory_path() / ("strata-audit-rot-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const auto path = (dir / "audit.log").string();
    const std::string line(99, 'x');  // 100 bytes with the newline
    {
        audit_log log(path, {.max_bytes = 1000, .keep = 2});
        for (int i = 0; i < 45; ++i) log.write(std::to_string(i % 10) + line.substr(1));
        log.flush();
        CHECK(log.written() == 45);
        CHECK(log.rotations() == 4);  // 10 + 10 + 10 + 10 + 5 lines
    }
    const auto size = [&](const std::string& p) { return std::filesystem::file_size(p); };
    CHECK(size(path) == 500);
    CHECK(size(path + ".1") == 1000);
    CHECK(size(path + ".2") == 1000);
    CHECK_FALSE(std::filesystem::exists(path + ".3"));

    // An existing file counts: appending to it rotates at once when full.
    {
        audit_log log(path, {.max_bytes = 1000, .keep = 0});
        for (int i = 0; i < 6; ++i) log.write(line);
        log.flush();
        CHECK(log.rotations() == 1);
    }
    CHECK(size(path) == 100);  // keep 0: the old lines are gone, no PATH.1 written
    CHECK(size(path + ".1") == 1000);  // left from before
    std::filesystem::remove_all(dir);
}
