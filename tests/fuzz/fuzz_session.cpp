// libFuzzer target for whole client sessions against the real engine.
//
// Each input is a script: a config variant (first byte), then steps, each
// for one of four clients: connect and send a CONNECT (3.1.1 or 5.0, with
// will, properties, password or SCRAM-SHA-256 credentials), SUBSCRIBE,
// UNSUBSCRIBE, PUBLISH (topics and JSON-ish payloads from dictionaries of
// the ACME namespace and of hostile values: 1e999, duplicate keys, deep
// nesting, BOM, invalid UTF-8), acknowledgements, PINGREQ, DISCONNECT,
// AUTH, raw bytes, and closing the socket (FIN or RST). Packets are built
// with the project's encoder; a step may split, corrupt or truncate one.
//
// The engine is the broker's own: a broker_core per input, built from the
// shipped example of roles and users (deploy/auth/strata.yaml, with a
// password file of the cheapest hash the file accepts) varied by the first
// byte (wide subscriptions, tight limits, per-identity limits, the audit
// topic, access rules, no roles) and one of the ACME namespace model's
// enforcement modes (or none), and connections made exactly as
// server::serve() makes them for a plain TCP listener, over real loopback sockets, all on one io_context
// that this thread polls between steps until nothing is left to do. A fresh
// core per input keeps the inputs independent (a crash reproduces from its
// input alone) and lets LeakSanitizer see what an input leaked.
//
// Oracles (a failure aborts, which libFuzzer reports as a crash):
//   - no sanitizer report, no exception out of the io_context;
//   - nothing logged at error level (the engine logs "closing after an
//     internal error" when a handler threw);
//   - what the broker sends to a client whose CONNECT went out intact
//     decodes as server packets of that client's version; no packet above
//     the Maximum Packet Size the client announced, no topic alias above its Topic Alias
//     Maximum or before it was set; CONNACK (or AUTH) first, nothing after
//     a refusing CONNACK;
//   - a CONNECT with a wrong password, an unknown user, a user without a
//     password or a wrong SCRAM proof is never accepted;
//   - with roles configured, every PUBLISH delivered to a client is one its
//     grants let it receive (a client granted nothing receives nothing);
//   - after the script every connection closes, and a fresh client can
//     CONNECT and get a PINGRESP within a bound.
//
// STRATA_FUZZ_SESSION_STATS=1 prints what the inputs reached at exit;
// STRATA_FUZZ_SESSION_TRACE=1 prints each step and each packet the clients
// receive (to read a reproducer).
#include "auth/crypto.hpp"
#include "auth/password_file.hpp"
#include "auth/policy.hpp"
#include "auth/scram.hpp"
#include "broker/core/broker_core.hpp"
#include "broker/codec/codec.hpp"
#include "broker/config.hpp"
#include "broker/net/connection.hpp"
#include "broker/core/stats.hpp"
#include "broker/core/thread_rwlock.hpp"
#include "namespace/model.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#ifndef STRATA_SOURCE_DIR
#error "STRATA_SOURCE_DIR must name the source tree (for deploy/namespace/acme.yaml)"
#endif

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace mqtt = strata::mqtt;
namespace sb = strata::broker;
namespace sa = strata::auth;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t max_clients = 4;
constexpr std::size_t max_steps = 48;
// The cheapest hash the password file accepts: a login costs ~1 ms, not 100.
constexpr std::uint32_t hash_iterations = sa::min_iterations;
// Bounds of the waits for another thread (the password worker): generous,
// since a miss is an oracle failure only where the broker must answer.
constexpr auto login_wait = 2s;
constexpr auto probe_wait = 5s;

// STRATA_FUZZ_SESSION_KNOWN: findings already reported, as '|'-separated
// substrings of their messages; a campaign goes on past them (counted).
std::uint64_t known_findings = 0;
bool known_finding(const std::string& what) {
    static const std::vector<std::string> known = [] {
        std::vector<std::string> v;
        const char* env = std::getenv("STRATA_FUZZ_SESSION_KNOWN");
        std::string_view s = env ? env : "";
        while (!s.empty()) {
            const auto bar = s.find('|');
            if (bar != 0) v.emplace_back(s.substr(0, bar));
            if (bar == std::string_view::npos) break;
            s.remove_prefix(bar + 1);
        }
        return v;
    }();
    for (const auto& k : known)
        if (what.find(k) != std::string::npos) return true;
    return false;
}

// The harness itself cannot go on.
[[noreturn]] void harness_failed(const std::string& what) {
    std::fprintf(stderr, "fuzz_session: %s\n", what.c_str());
    std::abort();
}

// An oracle failed: aborts (a crash for libFuzzer) unless it is a known
// finding, when the script goes on.
void oracle_failed(const std::string& what) {
    if (known_finding(what)) {
        ++known_findings;
        return;
    }
    std::fprintf(stderr, "session oracle failed: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

std::string printable(std::string_view s) {
    std::string out;
    for (const unsigned char c : s.substr(0, 120)) {
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char b[5];
            std::snprintf(b, sizeof b, "\\x%02x", c);
            out += b;
        }
    }
    return out;
}

// ---- what the inputs reached (STRATA_FUZZ_SESSION_STATS) ------------------

struct reach {
    std::uint64_t inputs = 0, steps = 0, connects = 0, connack_ok = 0, connack_refused = 0, scram_ok = 0,
                  publishes_received = 0, subacks = 0, disconnects_received = 0, slow_waits = 0;
    ~reach() {
        if (std::getenv("STRATA_FUZZ_SESSION_STATS") == nullptr) return;
        std::fprintf(stderr,
                     "fuzz_session: %llu inputs, %llu steps, %llu CONNECTs, %llu accepted (%llu by SCRAM), %llu "
                     "refused, %llu PUBLISHes delivered, %llu SUBACKs, %llu DISCONNECTs from the broker, %llu "
                     "waits past the login bound, %llu known findings\n",
                     (unsigned long long)inputs, (unsigned long long)steps, (unsigned long long)connects,
                     (unsigned long long)connack_ok, (unsigned long long)scram_ok,
                     (unsigned long long)connack_refused, (unsigned long long)publishes_received,
                     (unsigned long long)subacks, (unsigned long long)disconnects_received,
                     (unsigned long long)slow_waits,
                     (unsigned long long)known_findings);
    }
};
reach reached;

const bool tracing = std::getenv("STRATA_FUZZ_SESSION_TRACE") != nullptr;
#define TRACE(...)                                   \
    do {                                             \
        if (tracing) std::fprintf(stderr, __VA_ARGS__); \
    } while (0)

// ---- the error-level oracle ---------------------------------------------

// Every log line is formatted (the engine's log paths see the hostile
// strings too) and dropped; one at error level or above is a finding.
class oracle_sink final : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t buf;
        formatter_->format(msg, buf);
        if (msg.level >= spdlog::level::err) {
            oracle_failed("the broker logged at error level: " + std::string(buf.data(), buf.size()));
        }
    }
    void flush_() override {}
};

// ---- input ---------------------------------------------------------------

class reader {
public:
    reader(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
    [[nodiscard]] bool empty() const noexcept { return n_ == 0; }
    std::uint8_t u8() {
        if (n_ == 0) return 0;
        --n_;
        return *p_++;
    }
    std::uint16_t u16() { return static_cast<std::uint16_t>(u8() << 8 | u8()); }
    std::uint32_t u32() { return std::uint32_t{u16()} << 16 | u16(); }
    bool flag() { return (u8() & 1) != 0; }
    // Up to `max` bytes, the count first.
    std::string bytes(std::size_t max) {
        std::size_t len = u8() % (max + 1);
        len = std::min(len, n_);
        std::string s(reinterpret_cast<const char*>(p_), len);
        p_ += len;
        n_ -= len;
        return s;
    }
    template <typename T, std::size_t N>
    const T& pick(const std::array<T, N>& a) {
        return a[u8() % N];
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
};

// ---- dictionaries -----------------------------------------------------------

// Users of the password file (password "pw-" + name) and two that are not.
constexpr std::array<std::string_view, 8> users{"ana", "olga", "erik", "plc", "nobody", "mallory", "", "anonymous"};
bool known_user(std::string_view u) { return u == "ana" || u == "olga" || u == "erik" || u == "plc" || u == "nobody"; }
std::string password_of(std::string_view u) { return "pw-" + std::string(u); }

constexpr std::array<std::string_view, 12> client_ids{
    "c1", "c2", "c3", "", "plc", "dev-1", "$bridge/x", "ana", "a/b", "+", "c1", "c2"};

constexpr std::array<std::string_view, 40> topics{
    "acme/dresden/press-shop/line-2/cell-1/press-7/telemetry/temperature",
    "acme/dresden/press-shop/line-2/press-7/telemetry/pressure",
    "acme/dresden/press-shop/line-2/press-7/state",
    "acme/dresden/press-shop/line-2/oee",
    "acme/dresden/press-shop/line-2/press-7/oee",
    "acme/dresden/press-shop/line-2/press-7/cmd/stop",
    "acme/dresden/press-shop/line-2/safety-gate-1/cmd/open",
    "acme/dresden/press-shop/line-1/press-3/alarm",
    "acme/dresden/assembly/line-1/robot-12/telemetry/speed",
    "acme/dresden/assembly/line-1/robot-12/state",
    "acme/dresden/assembly/line-1/robot-12/cmd/reset",
    "acme/leipzig/assembly/line-1/oee",
    "acme/leipzig/assembly/line-1/spot-welder-3/telemetry/current",
    "acme/leipzig/press-shop/line-9/cell-2/press-1/state",
    "acme/dresden/press-shop/line-2/press-7",
    "acme/dresden/press-shop/line-2/press-7/unknown",
    "acme/berlin/press-shop/line-2/press-7/state",
    "acme/dresden/press-shop/line-2/Press-7/state",
    "acme",
    "sandbox/users/ana/inbox",
    "sandbox/users/olga/inbox",
    "sandbox/users/erik/notes",
    "sandbox/devices/plc/temp",
    "sandbox/devices/c1/temp",
    "sandbox/x",
    "uns/quarantine/acme/dresden/assembly/line-1/robot-12/state",
    "plc-write/press-7/setpoint",
    "$SYS/broker/audit",
    "$SYS/broker/clients/connected",
    "$share/g/acme/x",
    "a/b",
    "a//b",
    "/",
    "",
    "a/+/b",
    "a/#",
    "x\xff\xfe",
    "a\0b",
    "sandbox/users/{user}/inbox",
    "test/nosubscribe"};

constexpr std::array<std::string_view, 32> filters{
    "#",
    "+/#",
    "acme/#",
    "acme/+/+/+/oee",
    "acme/+/+/+/+/oee",
    "acme/dresden/#",
    "acme/dresden/press-shop/line-2/#",
    "acme/dresden/press-shop/line-2/press-7/state",
    "acme/dresden/+/+/safety-gate-1/#",
    "acme/leipzig/#",
    "acme/+/+/+/+/+/telemetry/#",
    "$SYS/#",
    "$SYS/broker/audit",
    "uns/quarantine/#",
    "sandbox/#",
    "sandbox/users/ana/#",
    "sandbox/users/+/inbox",
    "sandbox/devices/+/#",
    "$share/g/acme/#",
    "$share/g/#",
    "$share//#",
    "$share/g",
    "+",
    "+/+",
    "a/#/b",
    "a/b#",
    "",
    "plc-write/#",
    "test/nosubscribe",
    "sandbox/users/{user}/#",
    "\xff",
    "a/b"};

constexpr std::array<std::string_view, 24> levels{
    "acme", "dresden", "leipzig", "press-shop", "assembly", "line-2", "cell-1", "press-7", "safety-gate-1",
    "telemetry", "state", "oee", "cmd", "alarm", "sandbox", "users", "devices", "ana", "+", "#", "$SYS", "",
    "uns", "quarantine"};

// Whole payloads: valid for the model's classes, and hostile.
constexpr std::array<std::string_view, 30> payloads{
    R"({"value":21.5,"unit":"C","ts":"2024-05-01T10:00:00Z","quality":"good"})",
    R"({"value":true,"ts":"2024-05-01T10:00:00Z"})",
    R"({"state":"running","since":"2024-05-01T06:00:00Z","ts":"2024-05-01T10:00:00Z"})",
    R"({"availability":0.9,"performance":0.8,"quality":0.99,"oee":0.71,"shift":"early","ts":"2024-05-01T10:00:00Z"})",
    R"({"id":"PR-1234","severity":"critical","active":true,"text":"overpressure","ts":"2024-05-01T10:00:00Z"})",
    R"({"command":"stop","request_id":"req-00000001","ts":"2024-05-01T10:00:00Z"})",
    R"({"command":"set","request_id":"req-00000002","parameters":{"speed":1e999},"ts":"2024-05-01T10:00:00Z"})",
    R"({"value":1e999,"ts":"2024-05-01T10:00:00Z"})",
    R"({"value":-1e999,"ts":"2024-05-01T10:00:00Z"})",
    R"({"availability":1e999,"performance":0.8,"quality":0.99,"oee":0.71,"ts":"2024-05-01T10:00:00Z"})",
    R"({"value":123456789012345678901234567890123456789,"ts":"2024-05-01T10:00:00Z"})",
    R"({"value":1,"value":2,"ts":"2024-05-01T10:00:00Z"})",
    R"({"state":"running","state":"fault","ts":"2024-05-01T10:00:00Z"})",
    "\xEF\xBB\xBF{\"value\":1,\"ts\":\"2024-05-01T10:00:00Z\"}",
    "{\"value\":1,\"ts\":\"\xC3\x28\"}",
    "{\"value\":1,\"unit\":\"\xF0\x9F\x98\",\"ts\":\"2024-05-01T10:00:00Z\"}",
    R"({"value":1,"unit":"\ud800","ts":"2024-05-01T10:00:00Z"})",
    R"({"value":1,"unit":"\u0000","ts":"2024-05-01T10:00:00Z"})",
    R"({"value":NaN,"ts":"2024-05-01T10:00:00Z"})",
    R"({"value":1,"ts":"2024-13-45T99:99:99Z"})",
    R"({"value":1,"ts":"not a date"})",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{",
    "",
    "null",
    "1e999",
    "-0",
    "\xff\xfe\xfd",
    R"({"value":4.9e-324,"ts":"2024-05-01T10:00:00Z"})",
    R"({"value":1.7976931348623157e309,"ts":"2024-05-01T10:00:00Z"})"};

constexpr std::array<std::string_view, 20> numbers{
    "1e999", "-1e999", "1E400", "1e308", "1.7976931348623157e309", "123456789012345678901234567890", "-0",
    "0.5", "1", "0", "NaN", "Infinity", "18446744073709551616", "-9223372036854775809", "4.9e-324",
    "0e-99999", "2", "-1", "1.0", "0.99"};
constexpr std::array<std::string_view, 18> strings{
    "\"2024-05-01T10:00:00Z\"", "\"good\"", "\"running\"", "\"stop\"", "\"set\"", "\"req-00000001\"",
    "\"PR-1234\"", "\"critical\"", "\"early\"", "\"C\"", "\"\\ud800\"", "\"\xff\"", "\"\\u0000\"", "\"\"",
    "\"\xC3\x28\"", "\"2024-02-30T25:00:00Z\"", "\"\xEF\xBB\xBF\"", "\"x\""};
constexpr std::array<std::string_view, 22> keys{
    "value", "ts", "unit", "quality", "state", "since", "reason", "availability", "performance",
    "quality", "oee", "shift", "id", "severity", "active", "text", "command", "request_id", "parameters",
    "value", "", "\xff"};

// A JSON-ish value built from the dictionaries.
void json_value(reader& r, std::string& out, int depth) {
    const std::uint8_t k = r.u8();
    switch (depth > 6 ? k % 4 : k % 7) {
    case 0: out += r.pick(numbers); break;
    case 1: out += r.pick(strings); break;
    case 2: out += (k & 0x10) ? "true" : (k & 0x20) ? "false" : "null"; break;
    case 3: out += r.bytes(8); break;  // anything
    case 4:
    case 5: {
        out += '{';
        const int n = r.u8() % 6;
        for (int i = 0; i < n; ++i) {
            if (i) out += ',';
            out += '"';
            out += r.pick(keys);
            out += "\":";
            json_value(r, out, depth + 1);
        }
        if (r.u8() % 8 != 0) out += '}';  // sometimes unterminated
        break;
    }
    default: {
        const int n = r.u8() % 5;
        if (n == 4) {
            out.append(200 + r.u8() * 4, '[');  // deep nesting
            break;
        }
        out += '[';
        for (int i = 0; i < n; ++i) {
            if (i) out += ',';
            json_value(r, out, depth + 1);
        }
        out += ']';
        break;
    }
    }
}

std::string make_payload(reader& r) {
    const std::uint8_t k = r.u8();
    std::string p;
    switch (k % 4) {
    case 0:
    case 1: p = r.pick(payloads); break;
    case 2: json_value(r, p, 0); break;
    default: p = r.bytes(64); break;
    }
    if (k & 0x40) p.insert(0, "\xEF\xBB\xBF");
    if ((k & 0xB0) == 0xB0) p.append(2000 + r.u8() * 64, ' ');  // large
    return p;
}

std::string make_topic(reader& r, const std::array<std::string_view, 40>& dict) {
    const std::uint8_t k = r.u8();
    if (k < 160) return std::string(dict[k % dict.size()]);
    if (k < 232) {
        std::string t;
        const int n = 1 + r.u8() % 9;
        for (int i = 0; i < n; ++i) {
            if (i) t += '/';
            t += r.pick(levels);
        }
        return t;
    }
    return r.bytes(40);
}

std::string make_filter(reader& r) {
    const std::uint8_t k = r.u8();
    if (k < 200) return std::string(filters[k % filters.size()]);
    return make_topic(r, topics);
}

void user_properties(reader& r, mqtt::properties& p) {
    const int n = r.u8() % 4;
    for (int i = 0; i < n; ++i) {
        const std::uint8_t k = r.u8();
        if (k % 4 == 0) {
            p.user_properties.emplace_back("strata-broker-id", "");
        } else {
            p.user_properties.emplace_back(r.bytes(6), r.bytes(6));
        }
    }
}

template <std::size_t N>
std::uint32_t pick_u32(reader& r, const std::array<std::uint32_t, N>& a) {
    const std::uint8_t k = r.u8();
    return k < 240 ? a[k % N] : r.u32();
}

// ---- the broker side ----------------------------------------------------

struct environment {
    fs::path dir;
    sb::config base;  // roles, users, password file
    std::array<std::shared_ptr<const strata::ns::model>, 4> models{};  // none, reject, quarantine, warn
    sa::policy policy_with_roles;

    environment() {
        auto logger = std::make_shared<spdlog::logger>("strata", std::make_shared<oracle_sink>());
        logger->set_level(spdlog::level::debug);
        spdlog::set_default_logger(logger);

        char tmpl[] = "/tmp/strata-fuzz-session.XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) harness_failed("mkdtemp failed");
        dir = tmpl;
        const fs::path source = STRATA_SOURCE_DIR;
        const fs::path ns_dir = source / "deploy" / "namespace";

        sa::password_file pw;
        for (const auto u : users)
            if (known_user(u)) pw.set(sa::make_entry(std::string(u), password_of(u), hash_iterations));
        pw.save((dir / "passwd").string());

        // The shipped example of identities and roles on the ACME model
        // (deploy/auth/strata.yaml), made self-contained: our password file,
        // no persistence, no audit file, anonymous clients on loopback (the
        // probe) with a guest role, and a user without roles.
        base = sb::load_config((source / "deploy" / "auth" / "strata.yaml").string());
        base.persistence.enabled = false;
        base.auth.password_file = (dir / "passwd").string();
        base.audit = {};
        base.allow_anonymous = true;
        base.anonymous_loopback_only = true;
        base.auth.limits = {};
        base.auth.filter_wide_subscriptions = false;
        base.sys_interval = 0;
        base.threads = 1;
        base.alerts.enabled = false;
        using sa::verb;
        base.policy.roles["guest"] = {{false, verb::subscribe, "sandbox/#"},
                                      {false, verb::publish, "sandbox/#"},
                                      {true, verb::subscribe, "sandbox/users/#"}};
        base.policy.roles["device"].push_back({false, verb::subscribe, "sandbox/devices/{client_id}/#"});
        base.policy.roles["engineer"].push_back({false, verb::publish, "plc-write/#"});
        base.policy.roles["engineer"].push_back({false, verb::command, "plc-write/#"});
        base.policy.users["anonymous"] = {"guest"};
        base.policy.users["nobody"] = {};

        // The model as shipped (reject) and its other enforcement modes.
        models[1] = strata::ns::model::load((ns_dir / "acme.yaml").string());
        // The roles name the model's levels and classes: the same in every mode.
        policy_with_roles = sa::policy(base.policy, models[1]);
        std::ifstream in(ns_dir / "acme.yaml");
        std::stringstream text;
        text << in.rdbuf();
        fs::create_directory_symlink(ns_dir / "schemas", dir / "schemas");
        const std::array<std::string, 2> modes{"quarantine", "warn"};
        for (std::size_t i = 0; i < modes.size(); ++i) {
            std::string t = text.str();
            const auto at = t.find("  mode: reject");
            if (at == std::string::npos) harness_failed("acme.yaml has no 'mode: reject' to vary");
            t.replace(at, 14, "  mode: " + modes[i]);
            const fs::path p = dir / ("acme-" + modes[i] + ".yaml");
            std::ofstream(p) << t;
            models[2 + i] = strata::ns::model::load(p.string());
        }
        sb::core::thread_rwlock::bind_thread(0);
    }
    ~environment() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

environment& env() {
    static environment e;
    return e;
}

// ---- the client side ----------------------------------------------------

struct client {
    int fd = -1;
    bool eof = false;           // the broker closed (or reset) the connection
    bool connect_sent = false;  // something was sent on this socket
    // The first bytes on the socket were a whole CONNECT from the encoder:
    // the broker reads this client as `version`, and the oracles apply.
    bool intact = false;
    mqtt::protocol_version version = mqtt::protocol_version::v5;
    std::vector<std::uint8_t> rx;
    enum class phase : std::uint8_t { none, awaiting_connack, connected, refused } state = phase::none;
    bool auto_ack = false;
    // Login expectations.
    bool must_fail = false;               // wrong credentials: CONNACK success is a finding
    std::optional<std::string> identity;  // who the broker should take it for when accepted (unknown: none)
    std::optional<std::string> client_id; // unknown when assigned and not told
    std::shared_ptr<const sa::grants> grants;
    bool no_roles = false;
    // What the client announced.
    std::uint32_t max_packet = 268'435'460;
    std::uint16_t topic_alias_max = 0;
    std::map<std::uint16_t, std::string> aliases;  // broker -> client
    // Packet ids to acknowledge.
    std::deque<std::pair<std::uint8_t, std::uint16_t>> to_ack;  // (qos, id) of deliveries
    std::deque<std::uint16_t> pubrels;                           // PUBREL ids to complete
    std::uint16_t next_id = 1;
    std::uint32_t pingresps = 0;
    // SCRAM.
    std::string scram_user, scram_password, gs2_header, client_first_bare, server_first;
    bool scram_pending = false;
    bool scram_proof_good = false;
};

class session_run {
public:
    session_run(std::uint8_t variant) : env_(env()) {
        sb::config cfg = env_.base;
        roles_ = (variant & 0x01) != 0;
        if (!roles_) cfg.policy = {};
        cfg.auth.filter_wide_subscriptions = (variant & 0x02) != 0;
        if (variant & 0x04) {
            auto& l = cfg.limits;
            l.max_packet_size = 512;
            l.receive_maximum = 2;
            l.topic_alias_maximum = 2;
            l.max_queued_messages = 3;
            l.max_queued_bytes = 1024;
            l.max_inflight = 2;
            l.max_subscriptions_per_client = 3;
            l.max_session_expiry = 10;
            l.max_keepalive = 30;
        }
        if (variant & 0x08) {
            auto& l = cfg.auth.limits;
            l.connections = 2;
            l.publish_rate = 5;
            l.publish_bytes_rate = 2000;
            l.subscriptions = 3;
        }
        if (variant & 0x10) cfg.audit.topic = "$SYS/broker/audit";
        if (variant & 0x80) {
            cfg.access.push_back({true, sb::access_rule::action::subscribe, "test/nosubscribe"});
            cfg.access.push_back({true, sb::access_rule::action::publish, "acme/leipzig/#"});
        }
        core_ = std::make_unique<sb::core::broker_core>(std::move(cfg));
        // Roles that name levels and classes need a model: with them, "none" is the shipped one.
        std::size_t model = (variant >> 5) & 3;
        if (roles_ && model == 0) model = 1;
        core_->set_model(env_.models[model]);
        core_->counters().bind_thread(0);
        acceptor_.open(asio::ip::tcp::v4());
        acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
    }

    ~session_run() {
        for (auto& c : clients_) close_fd(c);
        // As server::~server(): the sessions let go of connections and
        // timers before the io_context goes, the core after it.
        core_->release_io();
        acceptor_.close();
    }

    void run_script(reader& r) {
        std::size_t steps = 0;
        while (!r.empty() && steps++ < max_steps) {
            ++reached.steps;
            const std::uint8_t op = r.u8();
            client& c = clients_[op & 3];
            const std::uint8_t mode = r.u8();
            TRACE("step %zu: client %d, kind %d, mode 0x%02x\n", steps, op & 3, (op >> 2) % 14, mode);
            switch ((op >> 2) % 14) {
            case 0:
            case 1: step_connect(c, r, mode); break;
            case 2: step_subscribe(c, r, mode); break;
            case 3:
            case 4:
            case 5: step_publish(c, r, mode); break;
            case 6: step_ack(c, r, mode); break;
            case 7: step_unsubscribe(c, r, mode); break;
            case 8: send_packet(c, mqtt::pingreq{}, mode); break;
            case 9: step_disconnect(c, r, mode); break;
            case 10: step_auth(c, r, mode); break;
            case 11: {
                const std::string raw = r.bytes(255);
                if (c.fd < 0) open_socket(c);
                send_bytes(c, {raw.begin(), raw.end()});
                break;
            }
            case 12: step_close(c, mode); break;
            default:
                // Let time pass: timers due now, the password worker.
                io_.run_for(std::chrono::milliseconds(mode % 4));
                break;
            }
            if ((mode & 0x80) == 0) pump();
        }
        pump();
    }

    // After the script: every connection closes; then the broker must
    // still serve a fresh client.
    void finish() {
        for (auto& c : clients_) close_fd(c);
        wait_until([&] { return core_->connection_count() == 0; }, probe_wait);
        if (core_->connection_count() != 0) {
            oracle_failed(std::to_string(core_->connection_count()) +
                          " connections still registered after every client closed");
        }
        if (const auto n = core_->counters().clients_connected.load(); n != 0) {
            oracle_failed("clients_connected is " + std::to_string(n) + " after every client closed");
        }
        probe();
    }

private:
    // ---- sockets ---------------------------------------------------------

    void open_socket(client& c) {
        close_fd(c);
        c = client{};
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c.fd < 0) harness_failed(std::string("socket: ") + std::strerror(errno));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port_);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            // libFuzzer's timer signal may interrupt it: the connection goes
            // on in the kernel; wait until it is done.
            if (errno != EINTR) harness_failed(std::string("connect: ") + std::strerror(errno));
            pollfd p{c.fd, POLLOUT, 0};
            while (::poll(&p, 1, -1) < 0)
                if (errno != EINTR) harness_failed(std::string("poll: ") + std::strerror(errno));
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) harness_failed(std::string("connect: ") + std::strerror(err));
        }
        const int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
        // Accepted as server::serve() does for a plain TCP listener.
        auto socket = acceptor_.accept(io_.get_executor());
        auto conn = std::make_shared<sb::net::connection>(*core_, std::move(socket));
        asio::post(io_, [conn] { conn->start(); });
    }

    static void close_fd(client& c, bool reset = false) {
        if (c.fd < 0) return;
        if (reset) {
            const linger l{1, 0};
            ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        ::close(c.fd);
        c.fd = -1;
    }

    void send_bytes(client& c, std::vector<std::uint8_t> b) {
        if (c.fd < 0 || b.empty()) return;
        if (!c.connect_sent) c.connect_sent = true;
        std::size_t off = 0;
        for (int tries = 0; off < b.size() && tries < 50; ++tries) {
            const ssize_t n = ::send(c.fd, b.data() + off, b.size() - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                pump_once();  // the broker reads, we read its replies
                continue;
            }
            return;  // closed by the broker
        }
    }

    // Sends `p` whole, or (mode's low nibble 13, 14, 15) with one bit
    // flipped, truncated, or in two pieces with the broker running between.
    void send_packet(client& c, const mqtt::packet& p, std::uint8_t mode, bool connect = false) {
        if (c.fd < 0) {
            if (!connect) return;
            open_socket(c);
        }
        std::vector<std::uint8_t> b;
        mqtt::encode(p, c.version, b);
        const bool first = !c.connect_sent;
        const unsigned param = (mode >> 4) & 7;
        bool whole = true;
        switch (mode & 0x0F) {
        case 13:  // one bit flipped
            b[param * 3 % b.size()] ^= static_cast<std::uint8_t>(1u << param);
            whole = false;
            break;
        case 14:  // truncated
            b.resize(b.size() - std::min<std::size_t>(b.size(), 1 + param));
            whole = false;
            break;
        case 15: {  // in two pieces, the broker running in between
            const std::size_t cut = 1 + param % b.size();
            std::vector<std::uint8_t> tail(b.begin() + static_cast<std::ptrdiff_t>(std::min(cut, b.size())), b.end());
            b.resize(std::min(cut, b.size()));
            send_bytes(c, std::move(b));
            pump();
            b = std::move(tail);
            break;
        }
        default: break;
        }
        if (first) c.intact = connect && whole;
        send_bytes(c, std::move(b));
    }

    // ---- running the broker ---------------------------------------------

    // Runs what is ready; returns whether anything ran or arrived.
    bool pump_once() {
        std::size_t n = 0;
        try {
            n = io_.poll();
        } catch (const std::exception& e) {
            oracle_failed(std::string("exception out of the io_context: ") + e.what());
        }
        bool got = false;
        for (auto& c : clients_) got |= receive(c);
        return n > 0 || got;
    }

    [[nodiscard]] bool awaiting_other_thread() const {
        for (const auto& c : clients_)
            if (c.fd >= 0 && !c.eof && c.intact && c.state == client::phase::awaiting_connack && !c.scram_pending)
                return true;
        return false;
    }

    // Until nothing is left to do; waits (bounded) for a password check.
    void pump() {
        const auto deadline = clock_type::now() + login_wait;
        for (;;) {
            if (pump_once()) continue;
            if (!awaiting_other_thread()) return;
            if (clock_type::now() >= deadline) {
                ++reached.slow_waits;
                return;
            }
            io_.run_one_for(1ms);
        }
    }

    template <typename Pred>
    void wait_until(Pred done, std::chrono::milliseconds bound) {
        const auto deadline = clock_type::now() + bound;
        while (!done() && clock_type::now() < deadline) {
            if (!pump_once()) io_.run_one_for(1ms);
        }
    }

    // ---- what the broker sends -------------------------------------------

    bool receive(client& c) {
        if (c.fd < 0 || c.eof) return false;
        bool got = false;
        std::array<std::uint8_t, 16384> buf;
        for (;;) {
            const ssize_t n = ::recv(c.fd, buf.data(), buf.size(), 0);
            if (n > 0) {
                c.rx.insert(c.rx.end(), buf.begin(), buf.begin() + n);
                got = true;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                c.eof = true;
                got = true;
            }
            break;
        }
        if (got) parse(c);
        return got;
    }

    void parse(client& c) {
        std::size_t off = 0;
        while (off < c.rx.size()) {
            mqtt::packet p;
            const auto r = mqtt::decode({c.rx.data() + off, c.rx.size() - off}, c.version, {}, p);
            if (r.status == mqtt::decode_status::need_more) break;
            if (r.status == mqtt::decode_status::error) {
                if (c.intact) {
                    std::string bytes;
                    for (std::size_t i = off; i < std::min(c.rx.size(), off + 32); ++i) {
                        char b[4];
                        std::snprintf(b, sizeof b, " %02x", c.rx[i]);
                        bytes += b;
                    }
                    oracle_failed(std::string("the broker sent a packet that does not decode: ") + r.detail +
                                  " (v" + std::to_string(static_cast<int>(c.version)) + ":" + bytes + ")");
                }
                c.rx.clear();
                return;
            }
            if (c.intact && r.consumed > c.max_packet) {
                const std::string what = "the broker sent a " + std::to_string(r.consumed) + "-byte packet (type " +
                                         std::to_string(static_cast<int>(mqtt::type_of(p))) +
                                         ") to a client whose Maximum Packet Size is " + std::to_string(c.max_packet);
                // A PUBLISH is dropped for that client; a reply goes
                // without its Reason String and User Properties, or the
                // connection closes.
                oracle_failed(what);
            }
            off += r.consumed;
            on_packet(c, p);
        }
        c.rx.erase(c.rx.begin(), c.rx.begin() + static_cast<std::ptrdiff_t>(off));
    }

    void on_packet(client& c, mqtt::packet& p) {
        const bool strict = c.intact;
        const auto type = mqtt::type_of(p);
        TRACE("  client %d <- packet type %d%s\n", static_cast<int>(&c - clients_.data()), static_cast<int>(type),
              strict ? "" : " (not checked)");
        if (c.state == client::phase::refused && strict)
            oracle_failed("the broker sent packet type " + std::to_string(static_cast<int>(type)) +
                          " after refusing the CONNECT");
        if (auto* ack = std::get_if<mqtt::connack>(&p)) {
            on_connack(c, *ack);
            return;
        }
        if (auto* a = std::get_if<mqtt::auth>(&p)) {
            if (c.scram_pending && a->props.authentication_data) c.server_first = *a->props.authentication_data;
            return;
        }
        if (strict && c.state != client::phase::connected)
            oracle_failed("the broker sent packet type " + std::to_string(static_cast<int>(type)) + " before CONNACK");
        switch (type) {
        case mqtt::packet_type::publish: on_publish(c, std::get<mqtt::publish>(p)); break;
        case mqtt::packet_type::pubrel: {
            const auto id = std::get<mqtt::pubrel>(p).packet_id;
            if (c.auto_ack) {
                queue_packet(c, mqtt::pubcomp{id, mqtt::reason_code::success, {}});
            } else if (c.pubrels.size() < 16) {
                c.pubrels.push_back(id);
            }
            break;
        }
        case mqtt::packet_type::suback: ++reached.subacks; break;
        case mqtt::packet_type::disconnect: ++reached.disconnects_received; break;
        case mqtt::packet_type::puback:
        case mqtt::packet_type::pubrec:
        case mqtt::packet_type::pubcomp:
        case mqtt::packet_type::unsuback:
        case mqtt::packet_type::pingresp: ++c.pingresps; break;
        default:
            if (strict) oracle_failed("the broker sent a client-only packet type " + std::to_string(static_cast<int>(type)));
        }
    }

    void on_connack(client& c, const mqtt::connack& ack) {
        TRACE("  CONNACK 0x%02x (%s)\n", static_cast<unsigned>(ack.code), mqtt::to_string(ack.code));
        if (c.state != client::phase::awaiting_connack) {
            if (c.intact && c.state != client::phase::none) oracle_failed("a CONNACK where none was expected");
            return;
        }
        if (ack.code != mqtt::reason_code::success) {
            ++reached.connack_refused;
            c.state = client::phase::refused;
            return;
        }
        ++reached.connack_ok;
        if (c.intact && c.must_fail) {
            oracle_failed("CONNECT accepted with credentials that must be refused (identity '" +
                          printable(c.identity.value_or("?")) + "')");
        }
        if (!c.scram_user.empty() && c.scram_proof_good) ++reached.scram_ok;
        c.state = client::phase::connected;
        if (ack.props.assigned_client_identifier) c.client_id = *ack.props.assigned_client_identifier;
        if (roles_ && c.identity && c.client_id) {
            c.grants = env_.policy_with_roles.compile(*c.identity, *c.client_id);
            const auto roles = env_.policy_with_roles.roles_of(*c.identity);
            c.no_roles = roles.empty();
        }
    }

    void on_publish(client& c, mqtt::publish& p) {
        ++reached.publishes_received;
        TRACE("  PUBLISH '%s' QoS %d, %zu bytes\n", printable(p.topic).c_str(), p.qos, p.payload.size());
        if (c.intact) {
            if (p.props.topic_alias) {
                const auto alias = *p.props.topic_alias;
                if (alias == 0 || alias > c.topic_alias_max)
                    oracle_failed("the broker used topic alias " + std::to_string(alias) + " above the client's maximum " +
                                  std::to_string(c.topic_alias_max));
                if (p.topic.empty()) {
                    const auto it = c.aliases.find(alias);
                    if (it == c.aliases.end()) oracle_failed("the broker used topic alias " + std::to_string(alias) + " before setting it");
                    p.topic = it->second;
                } else {
                    c.aliases[alias] = p.topic;
                }
            }
            if (c.no_roles) oracle_failed("a client granted nothing received a message on '" + printable(p.topic) + "'");
            if (c.grants && !c.grants->may_receive(p.topic)) {
                oracle_failed("'" + printable(c.identity.value_or("")) + "' (client '" + printable(c.client_id.value_or("")) +
                              "') received a message on '" + printable(p.topic) + "' outside its grants");
            }
        }
        if (p.qos == 0) return;
        if (c.auto_ack) {
            if (p.qos == 1) queue_packet(c, mqtt::puback{p.packet_id, mqtt::reason_code::success, {}});
            else queue_packet(c, mqtt::pubrec{p.packet_id, mqtt::reason_code::success, {}});
        } else if (c.to_ack.size() < 16) {
            c.to_ack.emplace_back(p.qos, p.packet_id);
        }
    }

    // An acknowledgement sent from within parse(): written at once (the
    // broker reads it on the next poll).
    void queue_packet(client& c, const mqtt::packet& p) {
        std::vector<std::uint8_t> b;
        mqtt::encode(p, c.version, b);
        if (c.fd >= 0) (void)::send(c.fd, b.data(), b.size(), MSG_NOSIGNAL);
    }

    // ---- steps -------------------------------------------------------------

    void step_connect(client& c, reader& r, std::uint8_t mode) {
        ++reached.connects;
        const std::uint8_t f = r.u8();
        // A CONNECT on a connection that already sent one is a protocol
        // error; on a fresh socket it logs in.
        if (c.fd < 0 || c.eof || (f & 0x80) != 0) open_socket(c);
        // Nothing sent on this socket yet: the CONNECT is what the broker
        // reads first, and the expectations follow from it.
        const bool fresh = !c.connect_sent;
        mqtt::connect p;
        p.version = (f & 1) ? mqtt::protocol_version::v311 : mqtt::protocol_version::v5;
        const bool v5 = p.version == mqtt::protocol_version::v5;
        p.bridge = !v5 && (f & 0x40) != 0 && (f & 0x20) != 0;
        p.clean_start = (f & 2) != 0;
        const std::uint8_t ka = r.u8();
        p.keep_alive = ka < 200 ? static_cast<std::uint16_t>(ka % 4 == 0 ? 0 : ka % 4 == 1 ? 60 : ka) : r.u16();
        const std::uint8_t idk = r.u8();
        p.client_id = idk < 240 ? std::string(client_ids[idk % client_ids.size()]) : r.bytes(30);
        const std::uint8_t cred = r.u8() % 8;
        const std::string user(r.pick(users));
        bool must_fail = false;
        std::optional<std::string> identity;
        bool scram = false;
        std::string gs2 = "n,,", first_bare;
        switch (cred) {
        case 0: identity = ""; break;  // anonymous
        case 1:
            p.username = user;
            p.password = password_of(user);
            must_fail = !known_user(user);
            if (!must_fail) identity = user;
            break;
        case 2:
            p.username = user;
            p.password = "wrong";
            must_fail = true;
            break;
        case 3:
            p.username = user;
            must_fail = true;
            break;
        case 4: p.password = password_of(user); break;
        case 5:
        case 6:
            if (v5) {
                scram = true;
                if (cred == 6 && (f & 0x10)) gs2 = "y,,";
                first_bare = "n=" + user + ",r=fuzznonce" + std::to_string(r.u8());
                p.props.authentication_method = std::string(sa::scram_method);
                p.props.authentication_data = gs2 + first_bare;
                must_fail = !known_user(user);
                if (!must_fail) identity = user;
            }
            break;
        default:
            if (v5) {
                p.props.authentication_method = (f & 0x10) ? std::string("PLAIN") : r.bytes(12);
                p.props.authentication_data = r.bytes(20);
                must_fail = true;
            }
            break;
        }
        if (v5) {
            const std::uint8_t pf = r.u8();
            if (pf & 0x01) p.props.session_expiry_interval = pick_u32(r, std::array<std::uint32_t, 5>{0, 1, 10, 3600, 0xFFFFFFFF});
            if (pf & 0x02) p.props.receive_maximum = static_cast<std::uint16_t>(pick_u32(r, std::array<std::uint32_t, 4>{1, 2, 65535, 0}));
            if (pf & 0x04) p.props.maximum_packet_size = pick_u32(r, std::array<std::uint32_t, 6>{20, 64, 128, 300, 1000, 0});
            if (pf & 0x08) p.props.topic_alias_maximum = static_cast<std::uint16_t>(pick_u32(r, std::array<std::uint32_t, 4>{1, 2, 64, 65535}));
            if (pf & 0x10) p.props.request_problem_information = r.u8() % 3;
            if (pf & 0x20) p.props.request_response_information = r.u8() % 3;
            if (pf & 0x40) user_properties(r, p.props);
        }
        if (f & 0x04) {
            mqtt::will_message w;
            w.topic = make_topic(r, topics);
            w.payload = make_payload(r);
            const std::uint8_t wf = r.u8();
            w.qos = wf % 3;
            w.retain = (wf & 4) != 0;
            if (v5 && (wf & 8)) {
                if (wf & 0x10) w.props.will_delay_interval = pick_u32(r, std::array<std::uint32_t, 3>{0, 1, 30});
                if (wf & 0x20) w.props.payload_format_indicator = r.u8() % 3;
                if (wf & 0x40) w.props.message_expiry_interval = pick_u32(r, std::array<std::uint32_t, 3>{0, 1, 60});
                if (wf & 0x80) {
                    w.props.content_type = "application/json";
                    w.props.response_topic = make_topic(r, topics);
                    w.props.correlation_data = r.bytes(8);
                    user_properties(r, w.props);
                }
            }
            p.will = std::move(w);
        }
        if (!fresh) {
            send_packet(c, p, mode, true);  // a second CONNECT: expectations stay
            return;
        }
        c.version = p.version;
        if (scram) {
            c.scram_pending = true;
            c.scram_user = user;
            c.scram_password = password_of(user);
            c.gs2_header = gs2;
            c.client_first_bare = first_bare;
        }
        c.auto_ack = (f & 0x08) != 0;
        c.must_fail = must_fail;
        c.identity = identity;
        if (!p.client_id.empty()) c.client_id = p.client_id;
        if (p.props.maximum_packet_size && *p.props.maximum_packet_size > 0) c.max_packet = *p.props.maximum_packet_size;
        c.topic_alias_max = p.props.topic_alias_maximum.value_or(0);
        c.state = client::phase::awaiting_connack;
        send_packet(c, p, mode, true);
        if (cred == 5 && c.scram_pending) {
            pump();
            send_scram_final(c, true, mode);
        }
    }

    void send_scram_final(client& c, bool good, std::uint8_t mode) {
        if (c.server_first.empty()) return;
        // server-first-message: r=NONCE,s=SALT,i=ITERATIONS
        std::string nonce, salt_b64;
        std::uint32_t iterations = 0;
        std::string_view sf = c.server_first;
        while (!sf.empty()) {
            const auto comma = sf.find(',');
            const auto attr = sf.substr(0, comma);
            if (attr.starts_with("r=")) nonce = attr.substr(2);
            if (attr.starts_with("s=")) salt_b64 = attr.substr(2);
            if (attr.starts_with("i=")) iterations = static_cast<std::uint32_t>(std::strtoul(std::string(attr.substr(2)).c_str(), nullptr, 10));
            if (comma == std::string_view::npos) break;
            sf.remove_prefix(comma + 1);
        }
        const std::string without_proof = "c=" + sa::base64_encode(c.gs2_header) + ",r=" + nonce;
        std::string proof(32, 'x');
        const auto salt = sa::base64_decode(salt_b64);
        // An unknown user's iteration count may be the default (210,000):
        // its proof cannot be right anyway, so it is not computed.
        if (good && salt && iterations > 0 && iterations <= 10 * hash_iterations) {
            const std::string auth_message = c.client_first_bare + "," + c.server_first + "," + without_proof;
            proof = sa::scram_client_proof(c.scram_password, *salt, iterations, auth_message);
            c.scram_proof_good = true;
        } else {
            c.must_fail = true;
        }
        mqtt::auth a;
        a.code = mqtt::reason_code::continue_authentication;
        a.props.authentication_method = std::string(sa::scram_method);
        a.props.authentication_data = without_proof + ",p=" + sa::base64_encode(proof);
        c.scram_pending = false;
        send_packet(c, a, mode);
    }

    void step_auth(client& c, reader& r, std::uint8_t mode) {
        const std::uint8_t k = r.u8();
        if (c.scram_pending && k % 4 < 2) {
            send_scram_final(c, k % 4 == 0, mode);
            return;
        }
        mqtt::auth a;
        a.code = k % 3 == 0 ? mqtt::reason_code::reauthenticate
                 : k % 3 == 1 ? mqtt::reason_code::continue_authentication
                              : mqtt::reason_code::success;
        if (k & 0x10) a.props.authentication_method = (k & 0x20) ? std::string(sa::scram_method) : r.bytes(10);
        if (k & 0x40) a.props.authentication_data = r.bytes(40);
        if (k & 0x80) a.props.reason_string = r.bytes(10);
        if (c.scram_pending && (k & 0x30) == 0x30) c.must_fail = true;  // a made-up final message
        c.scram_pending = false;
        send_packet(c, a, mode);
    }

    std::uint16_t packet_id(client& c, reader& r) {
        const std::uint8_t k = r.u8();
        if (k < 200) {
            if (c.next_id == 0) c.next_id = 1;
            return c.next_id++;
        }
        if (k < 240) return static_cast<std::uint16_t>(1 + k % 3);  // reused ids
        return r.u16();                                              // 0 included
    }

    void step_subscribe(client& c, reader& r, std::uint8_t mode) {
        mqtt::subscribe s;
        s.packet_id = packet_id(c, r);
        const int n = 1 + r.u8() % 3;
        for (int i = 0; i < n; ++i) {
            mqtt::subscription_request q;
            q.filter = make_filter(r);
            const std::uint8_t o = r.u8();
            q.options.qos = o % 3;
            q.options.no_local = (o & 0x04) != 0;
            q.options.retain_as_published = (o & 0x08) != 0;
            q.options.retain_handling = (o >> 4) % 4;  // 3 is a protocol error
            s.subscriptions.push_back(std::move(q));
        }
        const std::uint8_t pf = r.u8();
        if (pf & 1) s.props.subscription_identifiers.push_back(pick_u32(r, std::array<std::uint32_t, 4>{1, 2, 268'435'455, 7}) & 0x0FFFFFFF);
        if (pf & 2) user_properties(r, s.props);
        send_packet(c, s, mode);
    }

    void step_unsubscribe(client& c, reader& r, std::uint8_t mode) {
        mqtt::unsubscribe u;
        u.packet_id = packet_id(c, r);
        const int n = 1 + r.u8() % 3;
        for (int i = 0; i < n; ++i) u.filters.push_back(make_filter(r));
        if (r.u8() & 1) user_properties(r, u.props);
        send_packet(c, u, mode);
    }

    void step_publish(client& c, reader& r, std::uint8_t mode) {
        mqtt::publish p;
        p.topic = make_topic(r, topics);
        p.payload = make_payload(r);
        const std::uint8_t f = r.u8();
        p.qos = f % 3;
        p.retain = (f & 0x04) != 0;
        p.dup = (f & 0x08) != 0 && p.qos > 0;
        if (p.qos > 0) p.packet_id = packet_id(c, r);
        if (f & 0x10) {
            const std::uint8_t pf = r.u8();
            if (pf & 0x01) {
                p.props.topic_alias = static_cast<std::uint16_t>(pick_u32(r, std::array<std::uint32_t, 4>{1, 2, 3, 0}));
                if (pf & 0x02) p.topic.clear();  // use the alias
            }
            if (pf & 0x04) p.props.payload_format_indicator = r.u8() % 3;
            if (pf & 0x08) p.props.message_expiry_interval = pick_u32(r, std::array<std::uint32_t, 3>{0, 1, 3600});
            if (pf & 0x10) p.props.content_type = (r.u8() & 1) ? std::string("application/json") : r.bytes(8);
            if (pf & 0x20) {
                p.props.response_topic = make_topic(r, topics);
                p.props.correlation_data = r.bytes(16);
            }
            if (pf & 0x40) user_properties(r, p.props);
            if (pf & 0x80) p.props.subscription_identifiers.push_back(1);  // not allowed from a client
        }
        send_packet(c, p, mode);
    }

    void step_ack(client& c, reader& r, std::uint8_t mode) {
        const std::uint8_t k = r.u8();
        std::uint16_t id = 0;
        std::uint8_t kind = k % 4;  // puback, pubrec, pubrel, pubcomp
        if ((k & 0x80) == 0 && !c.pubrels.empty()) {
            id = c.pubrels.front();
            c.pubrels.pop_front();
            kind = 3;
        } else if ((k & 0x80) == 0 && !c.to_ack.empty()) {
            id = c.to_ack.front().second;
            kind = c.to_ack.front().first == 1 ? 0 : 1;
            c.to_ack.pop_front();
        } else {
            id = (k & 0x40) ? r.u16() : static_cast<std::uint16_t>(1 + k % 5);
        }
        const auto code = (k & 0x20) ? static_cast<mqtt::reason_code>(r.u8() | 0x80) : mqtt::reason_code::success;
        switch (kind) {
        case 0: send_packet(c, mqtt::puback{id, code, {}}, mode); break;
        case 1: send_packet(c, mqtt::pubrec{id, code, {}}, mode); break;
        case 2: send_packet(c, mqtt::pubrel{id, (k & 0x20) ? mqtt::reason_code::packet_identifier_not_found : mqtt::reason_code::success, {}}, mode); break;
        default: send_packet(c, mqtt::pubcomp{id, (k & 0x20) ? mqtt::reason_code::packet_identifier_not_found : mqtt::reason_code::success, {}}, mode); break;
        }
    }

    void step_disconnect(client& c, reader& r, std::uint8_t mode) {
        mqtt::disconnect d;
        const std::uint8_t k = r.u8();
        d.code = k % 4 == 0   ? mqtt::reason_code::success
                 : k % 4 == 1 ? mqtt::reason_code::disconnect_with_will
                 : k % 4 == 2 ? mqtt::reason_code::unspecified_error
                              : static_cast<mqtt::reason_code>(r.u8());
        if (k & 0x10) d.props.session_expiry_interval = pick_u32(r, std::array<std::uint32_t, 3>{0, 5, 0xFFFFFFFF});
        if (k & 0x20) d.props.reason_string = r.bytes(20);
        if (k & 0x40) user_properties(r, d.props);
        send_packet(c, d, mode);
    }

    void step_close(client& c, std::uint8_t mode) {
        close_fd(c, (mode & 1) != 0);
        c.eof = true;
    }

    // A fresh anonymous 5.0 client: CONNECT, CONNACK, PINGREQ, PINGRESP.
    void probe() {
        client& c = clients_[0];
        open_socket(c);
        c.intact = true;
        c.version = mqtt::protocol_version::v5;
        c.identity = "";
        c.client_id = "fuzz-probe";
        c.state = client::phase::awaiting_connack;
        mqtt::connect p;
        p.client_id = "fuzz-probe";
        std::vector<std::uint8_t> b;
        mqtt::encode(p, c.version, b);
        send_bytes(c, b);
        wait_until([&] { return c.state != client::phase::awaiting_connack || c.eof; }, probe_wait);
        if (c.state != client::phase::connected) {
            oracle_failed(c.state == client::phase::refused ? "the probe's CONNECT was refused"
                                                            : "the broker did not answer the probe's CONNECT");
        }
        b.clear();
        mqtt::encode(mqtt::pingreq{}, c.version, b);
        send_bytes(c, b);
        wait_until([&] { return c.pingresps > 0 || c.eof; }, probe_wait);
        if (c.pingresps == 0) oracle_failed("the broker did not answer the probe's PINGREQ");
        close_fd(c);
        wait_until([&] { return core_->connection_count() == 0; }, probe_wait);
    }

    const environment& env_;
    bool roles_ = false;
    // Destroyed after the io_context, as in server (its connections refer to it).
    std::unique_ptr<sb::core::broker_core> core_;
    asio::io_context io_{1};
    // Without it the io_context stops once it runs out of work (every
    // connection closed), and polls do nothing until restarted.
    asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
    asio::basic_socket_acceptor<asio::ip::tcp, asio::io_context::executor_type> acceptor_{io_.get_executor()};
    std::uint16_t port_ = 0;
    std::array<client, max_clients> clients_{};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    ++reached.inputs;
    reader r(data, size);
    try {
        session_run run(r.u8());
        run.run_script(r);
        run.finish();
    } catch (const std::exception& e) {
        // From the io_context: a handler of the engine threw.
        oracle_failed(std::string("exception escaped: ") + e.what());
    }
    return 0;
}
